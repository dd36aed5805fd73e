/* What runs around a plan's backup job: its environment (bcdr's own plus
 * env: read from files), the before: hooks (the first that fails stops the
 * backup) and the after: hooks (run whatever happened, told the outcome in
 * BCDR_OUTCOME, BCDR_MESSAGE, BCDR_SNAPSHOT). Argument vectors, never a
 * shell; each hook has a 1 h bound. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "backup/plan.h"

/* This process's environment with the job's env: files added (over a
 * variable of the same name), plus BCDR_JOB; a NULL-terminated vector
 * (strv_free() it). A file that cannot be read: -errno, and why. */
int job_env(const struct backup_job *job, char ***ret, char *why, size_t why_size);

/* Runs the hooks of l in order with envp; the first that fails stops the
 * rest: its message ("before hook 'fsfreeze' failed (exit status 1): ...")
 * goes to msg and -ECHILD is returned. */
int hooks_run(const struct argv_list *l, char *const *envp, const char *what, char *msg,
	      size_t size);

/* The after: hooks with the outcome added to envp; every hook runs. The
 * first failure is described in msg (returns -ECHILD), else msg is "". */
int hooks_run_after(const struct backup_job *job, char *const *envp, bool ok,
		    const char *message, const char *snapshot, char *msg, size_t size);

/* The last component of a program's path, for messages. */
const char *hooks_program_name(const char *path);

/* One step's output, its last lines on one line ("a / b"), in out. */
void hooks_output_tail(const char *output, size_t len, char *out, size_t size);
