/* Steady-state availability of the plan's components and of the service:
 * closed forms where repairs are independent, a continuous-time Markov
 * chain (model/ctmc.h) for shared repair crews and cold standby. The
 * derivations are in docs/models.md. Times are in seconds. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "lib/cleanup.h"
#include "model/topology.h"

#define SECONDS_PER_YEAR (365.0 * 86400)
#define SECONDS_PER_30_DAYS (30.0 * 86400)

/* One component as the models see it. */
struct unit_params {
	double mtbf_s, mttr_s; /* of one replica */
	int replicas, needs, crews;
	int redundancy;        /* enum redundancy */
	double switch_success; /* cold standby only */
	double switchover_s;   /* down per switch-over to a standby, 0: instant */
};

enum unit_method { METHOD_CLOSED_FORM, METHOD_MARKOV };

struct unit_result {
	double availability;
	double unavailability; /* computed directly, not as 1 - availability */
	double failure_rate;   /* how often the component goes down, per second */
	double mtbf_s, mttr_s; /* mean up time and mean down time of the component */
	int method;            /* enum unit_method */
	size_t states;         /* of the Markov chain, 0 for a closed form */
};

/* The parameters of a plan component (availability given: mtbf derived
 * from it and the mttr time scale). */
void unit_params_from(const struct topo_component *c, struct unit_params *ret);

/* Steady state of one component. Returns -EINVAL for parameters out of
 * range, -EDOM if the chain cannot be solved. */
int unit_solve(const struct unit_params *p, struct unit_result *ret);
/* The same, always through the Markov chain (tests compare both). */
int unit_solve_markov(const struct unit_params *p, struct unit_result *ret);

/* A service needing all of its components (series, independent). */
struct series_result {
	double availability, unavailability;
	double failure_rate, mtbf_s, mttr_s;
};
void series_combine(const struct unit_result *units, size_t n, struct series_result *ret);

struct component_report {
	const struct topo_component *c; /* borrowed from the plan */
	bool required;                   /* the service needs it */
	struct unit_params params;
	struct unit_result result;
	double birnbaum;                 /* d A_service / d A_component */
	/* What-if: yearly service downtime saved, and the service availability. */
	double halve_mttr_saved_s, halve_mttr_availability;
	double add_replica_saved_s, add_replica_availability;
	bool add_replica_possible;
};

struct model_report {
	struct component_report *components; /* in plan order */
	size_t n_components;
	struct series_result service;
	double elapsed_s;     /* time to solve every component and what-if */
};

/* Evaluates the plan's topology. Fails with -BCDR_ERR_CONFIG on a cycle. */
int model_evaluate(const struct topology_plan *t, struct model_report **ret);
/* Same with the component parameters given (n = t->n_components), for the
 * model recomputed with measured figures. */
int model_evaluate_with(const struct topology_plan *t, const struct unit_params *params,
			struct model_report **ret);
void model_report_free(struct model_report *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct model_report *, model_report_free)

/* Nines of an availability: -log10(1 - A) (inf for A = 1). */
double nines(double unavailability);
