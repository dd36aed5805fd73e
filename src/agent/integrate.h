/* The engines the agent ties together: the monitor's checks (probes on the
 * pool, rules on the loop), the alert and act engines fed with every
 * evaluation, predictors on checks with predict:/anomaly:, and the backup
 * jobs (scheduled runs, RPO freshness, restore drills) as checks. */
#pragma once

#include <jansson.h>

#include "agent/daemon.h"

/* Creates and starts the alert and act engines for the running plan. */
int agent_engines_start(struct agent *a);
/* Hands a reloaded plan to the engines. */
void agent_engines_set_plan(struct agent *a);
void agent_engines_stop(struct agent *a);

/* The "backups" list of /api/v1/status (new array). */
json_t *agent_backups_json(struct agent *a);
