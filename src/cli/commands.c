#include <stddef.h>

#include "cli/cli.h"

/* Each engine declares and lists its commands in its own block, so that
 * engines written side by side do not touch the same lines. */
extern const struct command cmd_help, cmd_version, cmd_config;
/* backup: bcdr-backup.so's, listed by name and summary in module-commands.c */
extern const struct command cmd_init, cmd_backup, cmd_snapshots, cmd_restore, cmd_check,
	cmd_key, cmd_ls, cmd_diff, cmd_forget, cmd_prune, cmd_stats, cmd_copy,
	cmd_dump;

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
	&cmd_init,
	&cmd_backup,
	&cmd_snapshots,
	&cmd_ls,
	&cmd_diff,
	&cmd_restore,
	&cmd_dump,
	&cmd_check,
	&cmd_forget,
	&cmd_prune,
	&cmd_stats,
	&cmd_copy,
	&cmd_key,

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
