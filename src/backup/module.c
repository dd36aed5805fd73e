/* The table bcdr-backup.so exports (backup/module.h). Everything else in
 * the module is hidden: its calls stay inside it. */
#include "backup/module.h"

#include "cli/cli.h"

extern const struct command cmd_init, cmd_backup, cmd_snapshots, cmd_restore, cmd_check,
	cmd_key, cmd_ls, cmd_diff, cmd_forget, cmd_prune, cmd_stats, cmd_copy, cmd_dump;

static const struct command *const commands[] = {
	&cmd_init, &cmd_backup, &cmd_snapshots, &cmd_ls, &cmd_diff, &cmd_restore,
	&cmd_dump, &cmd_check, &cmd_forget, &cmd_prune, &cmd_stats, &cmd_copy, &cmd_key,
	NULL,
};

__attribute__((visibility("default"))) extern const struct backup_ops bcdr_backup_ops;

const struct backup_ops bcdr_backup_ops = {
	.head = { BCDR_VERSION, sizeof(struct backup_ops) },
	.commands = commands,
	.job_run = backup_job_run,
	.job_newest = backup_job_newest,
	.job_drill = backup_job_drill,
	.job_copy = backup_job_copy,
	.job_newest_in = backup_job_newest_in,
};
