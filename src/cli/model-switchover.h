/* `bcdr model availability`'s switch-over times, modelled and measured:
 * the components that are cluster services (or declare `switchover:`),
 * the failover times their cluster measured (cluster/failover-log.h), read
 * from an agent's API or a state database, and the model again with the
 * measured figure (docs/models.md, "Switch-over time"). */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "cli/cli.h"
#include "cluster/failover-log.h"
#include "model/availability.h"

struct switchover_source {
	const char *agent_url, *token_file; /* --agent, --token-file */
	const char *state_db;               /* --state-db */
};

struct switchover_row {
	size_t comp;         /* index in the topology */
	const char *service; /* the cluster service measured (borrowed) */
	double modelled_s;   /* the plan's switchover:, 0 when not given */
	struct failover_stats failovers, switchovers; /* measured, unplanned and planned */
};

struct switchover_view {
	struct switchover_row *rows;
	size_t n;
	char *source;  /* where the figures came from, or NULL when nowhere */
	char *note;    /* why there are none, or NULL */
	struct model_report *measured; /* the model with the measured means, or NULL */
};

/* Fills *ret for topology t of cli's plan; m is the planned model. An exit
 * code: 0, or EXIT_FAIL when a source named on the command line cannot be
 * read (logged). */
int model_switchover_view(struct cli *cli, const struct topology_plan *t,
			  const struct switchover_source *src, struct switchover_view *ret);
void model_switchover_view_release(struct switchover_view *v);

/* The "switchover" object of --json: {source, note, components: {NAME: {...}},
 * service_availability_measured}; NULL when no component has one. */
json_t *model_switchover_json(const struct switchover_view *v, const struct topology_plan *t,
			      const struct model_report *m);
void model_switchover_print(const struct switchover_view *v, const struct topology_plan *t,
			    const struct model_report *m);
