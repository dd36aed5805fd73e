/* The continuity plan: one YAML file, one section per concern. The loader
 * hands each top-level key to the engine that owns it (see the table in
 * plan.c) and then checks references across sections. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "lib/cleanup.h"
#include "lib/conf.h"
#include "lib/timeutil.h"
/* Engine headers, one block per engine. */
/* backup */
#include "backup/plan.h"

/* agent, monitor, alert, act */
#include "act/act.h"
#include "alert/route.h"
#include "monitor/monitor.h"
#include "agent/settings.h"

/* lb */
#include "lb/config.h"

/* model */
#include "model/topology.h"

/* cluster */
#include "cluster/plan.h"

/* What the business expects of the plan, measured by the engines. */
struct plan_targets {
	double availability; /* fraction, 0 when unset */
	usec_t rto;          /* 0 when unset */
	usec_t rpo;          /* 0 when unset */
};

struct plan {
	char *path; /* where it was loaded from, NULL for an empty plan */
	struct plan_targets targets;
	/* Each engine adds its sections here as pointers to its own structs,
	 * NULL when the plan does not have the section; one block per engine. */
	/* backup: repositories, backups */
	struct backup_plan *backup;

	/* agent, monitor, alert, act: agent, checks, actions, alerts */
	struct act_plan *actions;
	struct alert_plan *alerts;
	struct monitor_plan *checks; /* NULL when the plan has no checks: */
	struct agent_settings *agent; /* NULL: defaults (agent_settings_new) */

	/* lb: balancers */
	struct lb_plan *balancers;

	/* model: topology */
	struct topology_plan *topology;

	/* cluster: cluster, services */
	struct cluster_plan *cluster;

};

/* The plan used when -c is not given: ./bcdr.yaml, else /etc/bcdr/bcdr.yaml;
 * NULL when neither exists. Static string. */
const char *plan_default_path(void);

/* Loads and checks the plan at path into *ret (plan_free() it). On failure
 * *ret_error (free() it) says "file:line:col: message". */
int plan_load(const char *path, struct plan **ret, char **ret_error);
/* Same, from text; name is used in messages. */
int plan_parse(const char *name, const char *text, size_t len, struct plan **ret, char **ret_error);
/* A plan with no sections, for commands run without one. */
int plan_new_empty(struct plan **ret);
void plan_free(struct plan *plan);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct plan *, plan_free)
