/* The table bcdr-backup.so exports (backup/module.h). Everything else in
 * the module is hidden: its calls stay inside it. */
#include "backup/module.h"

#include "backup/commands.h"
#include "cli/cli.h"

BACKUP_COMMANDS(BACKUP_COMMAND_DECLARE)

static const struct command *const commands[] = { BACKUP_COMMANDS(BACKUP_COMMAND_ADDRESS) NULL };

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
