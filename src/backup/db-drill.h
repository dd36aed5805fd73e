/* The second half of a database drill (plan: drill: with load:): the
 * restored dump goes into a scratch database and the operator's query
 * decides. setup (create the scratch database), load (the restored file
 * on its standard input), verify (its output judged by expect:), then
 * teardown whatever happened. Each step is an argv with the job's
 * environment and BCDR_DRILL_FILE (the restored file's path), bounded by
 * the drill's timeout (1 h by default). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "backup/plan.h"

/* Runs the steps on file; *ret_ok and msg (one line: what verify printed,
 * or which step failed with the tool's last lines) say how it went.
 * *ret_verified_s: seconds from the call to the end of verify (before
 * teardown). Returns 0 when every step ran, whatever the outcome. */
int db_drill_run(const struct backup_job *job, const char *file, bool *ret_ok,
		 double *ret_verified_s, char *msg, size_t size);

/* Whether verify's output meets expect ("> 0", ">= 200000", "= 3",
 * "200000" meaning >=, else a text the output must contain); why on no. */
bool db_drill_expect(const char *expect, const char *output, char *why, size_t size);
