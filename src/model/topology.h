/* The plan's topology: section: the service, the components it needs (in
 * series), each with its replicas, repair crews and redundancy, and the
 * dependency edges between them. docs/models.md states what every key
 * means in the models. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/cleanup.h"
#include "lib/conf.h"
#include "lib/timeutil.h"

/* Hard limits: a plan is written by a person, and the exact models grow
 * with the replicas (a dense Markov chain of 2 * (replicas + 1) states). */
#define TOPOLOGY_MAX_COMPONENTS 10000
#define TOPOLOGY_MAX_REPLICAS 200
/* Time scale given to a component known only by its availability. */
#define TOPOLOGY_DEFAULT_MTTR (1 * USEC_PER_HOUR)

enum redundancy { REDUNDANCY_ACTIVE, REDUNDANCY_COLD };

/* Distributions of lifetimes and repairs (for the Monte Carlo; the exact
 * models assume exponential ones). */
enum lifetime_dist { DIST_EXPONENTIAL, DIST_WEIBULL, DIST_LOGNORMAL };

struct topo_component {
	char *name;
	usec_t mtbf;           /* one replica's mean time between failures */
	usec_t mttr;           /* mean time to repair one replica */
	double availability;   /* given instead of mtbf (0 when unset) */
	int64_t replicas;      /* default 1 */
	int64_t needs;         /* k of replicas must be up, default 1 */
	int64_t repair_crews;  /* default: one per replica */
	int redundancy;        /* enum redundancy */
	double switch_success; /* cold standby: chance a standby takes over, default 1 */
	usec_t switchover;     /* the service's outage per switch-over to a standby, 0 instant */
	char *cluster_service; /* the cluster service whose failovers are measured (NULL: name) */
	char **depends_on;     /* names of other components (NULL-terminated) */
	int mtbf_dist, mttr_dist; /* enum lifetime_dist */
	double mtbf_shape, mttr_shape; /* Weibull shape, or lognormal sigma */
	bool has_mtbf_shape, has_mttr_shape;
	unsigned line, col;    /* where the component starts, for messages */
	bool crews_given;      /* repair_crews was written (else one per replica) */
};

struct topology_plan {
	char *service;
	char **requires;       /* the components the service needs (series) */
	struct topo_component *components;
	size_t n_components;
	/* Filled by topology_plan_validate(): */
	char *cycle;           /* "a -> b -> a" when depends_on has a cycle, else NULL */
	unsigned cycle_line, cycle_col;
	char *file;            /* plan file, for messages about the cycle */
};

/* Parses the topology: map into *ret (topology_plan_free() it). Checks
 * every component on its own (mtbf/mttr or availability, needs <= replicas). */
int topology_plan_parse(struct conf_ctx *ctx, const struct conf_node *node,
			struct topology_plan **ret);
/* Checks names across the section: requires and depends_on must name
 * components; records (does not refuse) a dependency cycle. */
int topology_plan_validate(struct conf_ctx *ctx, struct topology_plan *t);
void topology_plan_free(struct topology_plan *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct topology_plan *, topology_plan_free)

/* Index of the component called name, or -1. */
ssize_t topology_find(const struct topology_plan *t, const char *name);

/* Marks in required[] (n_components bools) every component the service
 * needs: the requires list and, transitively, what those depend on. */
void topology_required(const struct topology_plan *t, bool *required);

/* The models refuse a cycle: returns -BCDR_ERR_CONFIG with *ret_error
 * (free() it) saying "file:line:col: ..." when there is one, else 0. */
int topology_check_acyclic(const struct topology_plan *t, char **ret_error);

extern const char *const lifetime_dist_names[];
