/* The dependency graph: nodes are the service and its components (or the
 * nodes of an edge list), an edge a -> b says a needs b. igraph does the
 * graph work: dominators from the service, articulation points,
 * betweenness, degrees; cascades and robustness curves are breadth-first
 * searches over its adjacency lists. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "model/edges.h"
#include "model/topology.h"

struct depgraph_input {
	const char *const *names;  /* borrowed */
	size_t n;
	const uint32_t *edges;     /* 2 * n_edges: from, to */
	size_t n_edges;
	size_t service;            /* the root */
	const int *replicas;       /* per node, NULL when unknown (edge lists) */
	const int *needs;
};

/* The plan's graph: node 0 is the service, then the components in plan
 * order. Owns its arrays; names are borrowed from the plan. */
struct depgraph_plan_input {
	struct depgraph_input in;
	const char **names;
	uint32_t *edges;
	int *replicas, *needs;
};
int depgraph_input_from_plan(const struct topology_plan *t, struct depgraph_plan_input *ret);
void depgraph_plan_input_release(struct depgraph_plan_input *p);

struct depgraph_options {
	unsigned trials;  /* random-failure runs averaged (default 20) */
	unsigned steps;   /* points of the robustness curves, 0% to 100% (default 20) */
	uint64_t seed;
	/* Above this many nodes, betweenness counts only paths of at most
	 * betweenness_cutoff edges (0: always exact). */
	size_t exact_betweenness_max;
	double betweenness_cutoff;
};

struct depgraph_node {
	int64_t idom;         /* immediate dominator; -1 the service, -2 unreachable */
	size_t dominated;     /* requirements lost with this node (not counting it) */
	bool reachable;       /* a requirement of the service */
	bool articulation;    /* articulation point of the undirected graph */
	bool spof;            /* single point of failure (see docs/models.md) */
	int spare;            /* replicas - needs, -1 when unknown */
	double betweenness;
	int64_t in_degree, out_degree;
};

struct degree_count {
	int64_t degree;
	size_t nodes;
};

struct depgraph_report {
	size_t nodes, edges, requirements;
	size_t loops_dropped, duplicates_dropped;
	bool acyclic;
	struct depgraph_node *node;
	size_t *by_betweenness, *by_impact; /* requirements, ranked */
	struct degree_count *out_degrees, *in_degrees; /* nonzero counts, by degree */
	size_t n_out_degrees, n_in_degrees;
	double mean_degree;
	int64_t max_in, max_out;
	bool power_law;       /* fitted (100 nodes or more) */
	double power_law_alpha, power_law_xmin;
	bool betweenness_exact;
	double betweenness_cutoff;
	/* Robustness: share of requirements still reachable after removing
	 * the fraction[i] of them at random (mean, sd) or by betweenness. */
	size_t steps;
	double *fraction, *random_mean, *random_sd, *targeted;
	unsigned trials;
	double elapsed_s;
	/* Where the time went: building the graph, the dominator tree, degrees,
	 * articulation points and betweenness, the robustness curves. */
	double build_s, dominators_s, centrality_s, robustness_s;
};

int depgraph_analyse(const struct depgraph_input *in, const struct depgraph_options *o,
		     struct depgraph_report **ret);
void depgraph_report_free(struct depgraph_report *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct depgraph_report *, depgraph_report_free)
