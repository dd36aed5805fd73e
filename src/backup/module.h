/* The backup engine (repository, backup, restore, check, forget, copy and
 * their commands) lives in a module, bcdr-backup.so, that the binary loads
 * the first time it is used: libcrypto and libzstd (4.1 MiB of an idle
 * process's resident pages with libssl) stay out of every process that
 * never touches a repository, `bcdr agent` on a plan without backups:
 * first (docs/internals.md).
 *
 * The module exports one table, bcdr_backup_ops; src/backup/loader.c
 * defines the agent's seam of backup/backup.h in the binary as calls
 * through it, and src/cli/module-commands.c the backup commands (name and
 * summary, so `bcdr help` loads nothing). The plan's repositories: and
 * backups: sections (backup/plan.c) stay in the binary: `bcdr config
 * check` needs them. The module calls back into the binary for lib/, plan
 * and cli code, which the executable exports (src/exports.list). Unit
 * tests and fuzzers link the engine's code (backup_core) directly. */
#pragma once

#include "backup/backup.h"
#include "lib/module.h"

#define BACKUP_MODULE_NAME "bcdr-backup.so"
#define BACKUP_OPS_SYMBOL "bcdr_backup_ops"

struct command;

struct backup_ops {
	struct module_head head; /* BCDR_VERSION, sizeof(struct backup_ops) */

	/* The engine's commands, NULL-terminated; the binary's table lists
	 * each by name and summary, which must match. */
	const struct command *const *commands;

	int (*job_run)(const struct plan *plan, const char *job_name,
		       struct backup_job_result *ret);
	int (*job_newest)(const struct plan *plan, const char *job_name, usec_t *ret_time);
	int (*job_drill)(const struct plan *plan, const char *job_name, const char *scratch_dir,
			 struct backup_drill_result *ret);
	int (*job_copy)(const struct plan *plan, const char *job_name, const char *copy, bool keep,
			void (*each)(const char *id, const char *copy_id, uint64_t bytes,
				     void *userdata),
			void *userdata, struct backup_copy_result *ret);
	int (*job_newest_in)(const struct plan *plan, const char *job_name, const char *repo,
			     usec_t *ret_time);
};

/* The binary's side (loader.c): the module's table, loaded on first call;
 * NULL when it cannot be loaded, with the reason in *ret_why (static; also
 * logged once). */
const struct backup_ops *backup_module(const char **ret_why);
/* Why the module could not be loaded ("" when it could, or was not yet
 * tried); static. */
const char *backup_module_error(void);
