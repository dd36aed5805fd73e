#include <stddef.h>

#include "cli/cli.h"

extern const struct command cmd_help, cmd_version, cmd_config;

/* Every subcommand, in the order `bcdr help` lists them. */
const struct command *const cli_commands[] = {
	&cmd_config,
	&cmd_help,
	&cmd_version,
	NULL,
};
