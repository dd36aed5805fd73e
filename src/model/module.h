/* The model engine's numerical part (availability, Markov chains,
 * simulation, dependency graphs) lives in a module, bcdr-model.so, that
 * the binary loads the first time one of its functions is called: GSL,
 * igraph and what they pull in (libstdc++, BLAS, LAPACK, ICU, libxml2:
 * 4.7 MiB of the agent's resident pages) stay out of every process that
 * never models, `bcdr agent` first (docs/internals.md).
 *
 * The module exports one table, bcdr_model_ops; src/model/loader.c
 * defines the functions of availability.h, depgraph.h and simulate.h in
 * the binary as calls through it. Unit tests and fuzzers link the module's
 * code directly instead. */
#pragma once

#include "lib/module.h"
#include "model/availability.h"
#include "model/depgraph.h"
#include "model/simulate.h"

#define MODEL_MODULE_NAME "bcdr-model.so"
#define MODEL_OPS_SYMBOL "bcdr_model_ops"

/* Every function of the table, once: X(return type, name, parameters,
 * arguments, what the binary's forwarder does without the module):
 *   ERR    returns -ELIBACC;
 *   FREE   does nothing (its one parameter is p, freed when set);
 *   OWN    written out in loader.c (it fills or returns a placeholder).
 * The table's members, the module's table (module.c) and the forwarders
 * (loader.c) are made from it. */
#define MODEL_OPS(X)                                                                          \
	X(void, unit_params_from, (const struct topo_component *c, struct unit_params *ret),   \
	  (c, ret), OWN)                                                                      \
	X(int, unit_solve, (const struct unit_params *p, struct unit_result *ret), (p, ret), ERR) \
	X(int, unit_solve_markov, (const struct unit_params *p, struct unit_result *ret),      \
	  (p, ret), ERR)                                                                      \
	X(void, series_combine,                                                               \
	  (const struct unit_result *units, size_t n, struct series_result *ret),             \
	  (units, n, ret), OWN)                                                               \
	X(int, model_evaluate, (const struct topology_plan *t, struct model_report **ret),     \
	  (t, ret), ERR)                                                                      \
	X(int, model_evaluate_with,                                                           \
	  (const struct topology_plan *t, const struct unit_params *params,                   \
	   struct model_report **ret),                                                        \
	  (t, params, ret), ERR)                                                              \
	X(void, model_report_free, (struct model_report *p), (p), FREE)                        \
	X(double, nines, (double unavailability), (unavailability), OWN)                       \
	X(int, depgraph_input_from_plan,                                                      \
	  (const struct topology_plan *t, struct depgraph_plan_input *ret), (t, ret), ERR)     \
	X(void, depgraph_plan_input_release, (struct depgraph_plan_input *p), (p), FREE)       \
	X(int, depgraph_analyse,                                                              \
	  (const struct depgraph_input *in, const struct depgraph_options *opts,              \
	   struct depgraph_report **ret),                                                     \
	  (in, opts, ret), ERR)                                                               \
	X(void, depgraph_report_free, (struct depgraph_report *p), (p), FREE)                  \
	X(int, simulate_run,                                                                  \
	  (const struct topology_plan *t, const struct sim_options *opts,                     \
	   struct sim_result **ret),                                                          \
	  (t, opts, ret), ERR)                                                                \
	X(void, sim_result_free, (struct sim_result *p), (p), FREE)                            \
	X(void, wilson_interval, (uint64_t x, uint64_t n, double *ret_low, double *ret_high),  \
	  (x, n, ret_low, ret_high), OWN)

#define MODEL_OPS_MEMBER(type, name, params, args, kind) type(*name) params;

struct model_ops {
	struct module_head head; /* BCDR_VERSION, sizeof(struct model_ops) */
	MODEL_OPS(MODEL_OPS_MEMBER)
};
