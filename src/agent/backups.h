/* The plan's backup jobs as agent checks: scheduled runs (and the copies
 * after every run, an action's too), RPO freshness and restore drills,
 * each run on the worker pool through the backup module. */
#pragma once

#include <jansson.h>
#include <stddef.h>

struct agent;
struct agent_check;
struct plan_ref;

/* Appends the checks of the plan's backup jobs to *list (n entries, grown
 * as needed); each holds a reference on pr. */
int agent_backup_checks_build(struct agent *a, struct plan_ref *pr, struct agent_check ***list,
			      size_t *n);

/* A run of the job outside its schedule (an action's) saved a snapshot:
 * its copies are brought up to date as after a scheduled run. Loop
 * thread. */
void agent_backup_job_ran(struct agent *a, const char *job);

/* The "backups" list of /api/v1/status (new array). */
json_t *agent_backups_json(struct agent *a);
