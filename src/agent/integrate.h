/* The engines the agent ties together: the monitor's checks (probes on the
 * pool, rules on the loop), the alert and act engines fed with every
 * evaluation, predictors on checks with predict:/anomaly:, and the backup
 * jobs (scheduled runs, RPO freshness, restore drills) as checks. */
#pragma once

#include <jansson.h>

#include "agent/daemon.h"

struct agent_check;

/* A plan shared by the agent and the checks built from it: a reload
 * replaces the agent's, and the old one lives until its last run ends. */
struct plan_ref {
	unsigned refs;
	struct plan *plan;
};
struct plan_ref *plan_ref_new(struct plan *take);
struct plan_ref *plan_ref_get(struct plan_ref *pr);
void plan_ref_put(struct plan_ref *pr);

/* Builds the checks of the plan (monitor checks, backup jobs, RPO, drills)
 * into a new array; each holds a reference on pr. */
int agent_checks_build(struct agent *a, struct plan_ref *pr, struct agent_check ***ret,
		       size_t *ret_n);
/* After every evaluation: tells the alert and act engines. */
void agent_check_feed(struct agent *a, struct agent_check *c);

/* Creates and starts the alert and act engines for the running plan. */
int agent_engines_start(struct agent *a);
/* Hands a reloaded plan to the engines. */
void agent_engines_set_plan(struct agent *a);
void agent_engines_stop(struct agent *a);
