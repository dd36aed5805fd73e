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

struct model_ops {
	struct module_head head; /* BCDR_VERSION, sizeof(struct model_ops) */

	void (*unit_params_from)(const struct topo_component *c, struct unit_params *ret);
	int (*unit_solve)(const struct unit_params *p, struct unit_result *ret);
	int (*unit_solve_markov)(const struct unit_params *p, struct unit_result *ret);
	void (*series_combine)(const struct unit_result *units, size_t n,
			       struct series_result *ret);
	int (*model_evaluate)(const struct topology_plan *t, struct model_report **ret);
	int (*model_evaluate_with)(const struct topology_plan *t, const struct unit_params *params,
				   struct model_report **ret);
	void (*model_report_free)(struct model_report *r);
	double (*nines)(double unavailability);

	int (*depgraph_input_from_plan)(const struct topology_plan *t,
					struct depgraph_plan_input *ret);
	void (*depgraph_plan_input_release)(struct depgraph_plan_input *p);
	int (*depgraph_analyse)(const struct depgraph_input *in, const struct depgraph_options *o,
				struct depgraph_report **ret);
	void (*depgraph_report_free)(struct depgraph_report *r);

	int (*simulate_run)(const struct topology_plan *t, const struct sim_options *o,
			    struct sim_result **ret);
	void (*sim_result_free)(struct sim_result *r);
	void (*wilson_interval)(uint64_t x, uint64_t n, double *ret_low, double *ret_high);
};
