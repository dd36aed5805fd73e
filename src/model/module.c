/* The table bcdr-model.so exports (model/module.h). Everything else in
 * the module is hidden: its calls stay inside it. */
#include "model/module.h"

__attribute__((visibility("default"))) extern const struct model_ops bcdr_model_ops;

const struct model_ops bcdr_model_ops = {
	.head = { BCDR_VERSION, sizeof(struct model_ops) },
	.unit_params_from = unit_params_from,
	.unit_solve = unit_solve,
	.unit_solve_markov = unit_solve_markov,
	.series_combine = series_combine,
	.model_evaluate = model_evaluate,
	.model_evaluate_with = model_evaluate_with,
	.model_report_free = model_report_free,
	.nines = nines,
	.depgraph_input_from_plan = depgraph_input_from_plan,
	.depgraph_plan_input_release = depgraph_plan_input_release,
	.depgraph_analyse = depgraph_analyse,
	.depgraph_report_free = depgraph_report_free,
	.simulate_run = simulate_run,
	.sim_result_free = sim_result_free,
	.wilson_interval = wilson_interval,
};
