#include <stddef.h>

#include "backup/commands.h"
#include "cli/cli.h"

/* Each engine declares and lists its commands in its own block, so that
 * engines written side by side do not touch the same lines. */
extern const struct command cmd_help, cmd_version, cmd_config;
/* backup: bcdr-backup.so's (backup/commands.h), stand-ins in module-commands.c */
BACKUP_COMMANDS(BACKUP_COMMAND_DECLARE)

/* agent, monitor, alert, act */
extern const struct command cmd_probe;
extern const struct command cmd_agent, cmd_status, cmd_checks, cmd_events, cmd_silence, cmd_act;
extern const struct command cmd_alert;

/* predict */
extern const struct command cmd_predict;

/* lb */
extern const struct command cmd_lb;

/* model */
extern const struct command cmd_model;

/* cluster */
extern const struct command cmd_cluster;

/* Every subcommand, in the order `bcdr help` lists them. */
const struct command *const cli_commands[] = {
	/* backup */
	BACKUP_COMMANDS(BACKUP_COMMAND_ADDRESS)

	/* agent, monitor, alert, act */
	&cmd_probe,
	&cmd_agent,
	&cmd_status,
	&cmd_checks,
	&cmd_events,
	&cmd_silence,
	&cmd_act,
	&cmd_alert,

	/* predict */
	&cmd_predict,

	/* lb */
	&cmd_lb,

	/* model */
	&cmd_model,

	/* cluster */
	&cmd_cluster,

	&cmd_config,
	&cmd_help,
	&cmd_version,
	NULL,
};
