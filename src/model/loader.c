/* The binary's side of bcdr-model.so (model/module.h): the model's
 * functions, each a call through the module's table, loaded on first use.
 * lib/module.h finds and checks it. */
#include "model/module.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>

#include "lib/log.h"

static const struct model_ops *loaded;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void)
{
	char why[PATH_MAX + 256];
	const void *table;

	if (module_load(MODEL_MODULE_NAME, MODEL_OPS_SYMBOL, sizeof(struct model_ops),
			"the model engine", &table, why, sizeof(why)) < 0)
		log_error("%s", why);
	else
		loaded = table;
}

static const struct model_ops *ops(void)
{
	pthread_once(&load_once, load);
	return loaded;
}

/* A missing or broken module fails the call with -ELIBACC (the cause was
 * logged once); a function with nothing to return leaves its result
 * unset, as its callers fail on the next call anyway. */

void unit_params_from(const struct topo_component *c, struct unit_params *ret)
{
	const struct model_ops *o = ops();

	if (o)
		o->unit_params_from(c, ret);
	else
		*ret = (struct unit_params){ 0 };
}

int unit_solve(const struct unit_params *p, struct unit_result *ret)
{
	const struct model_ops *o = ops();

	return o ? o->unit_solve(p, ret) : -ELIBACC;
}

int unit_solve_markov(const struct unit_params *p, struct unit_result *ret)
{
	const struct model_ops *o = ops();

	return o ? o->unit_solve_markov(p, ret) : -ELIBACC;
}

void series_combine(const struct unit_result *units, size_t n, struct series_result *ret)
{
	const struct model_ops *o = ops();

	if (o)
		o->series_combine(units, n, ret);
	else
		*ret = (struct series_result){ NAN, NAN, NAN, NAN, NAN };
}

int model_evaluate(const struct topology_plan *t, struct model_report **ret)
{
	const struct model_ops *o = ops();

	return o ? o->model_evaluate(t, ret) : -ELIBACC;
}

int model_evaluate_with(const struct topology_plan *t, const struct unit_params *params,
			struct model_report **ret)
{
	const struct model_ops *o = ops();

	return o ? o->model_evaluate_with(t, params, ret) : -ELIBACC;
}

void model_report_free(struct model_report *r)
{
	const struct model_ops *o;

	if (r && (o = ops()))
		o->model_report_free(r);
}

double nines(double unavailability)
{
	const struct model_ops *o = ops();

	return o ? o->nines(unavailability) : NAN;
}

int depgraph_input_from_plan(const struct topology_plan *t, struct depgraph_plan_input *ret)
{
	const struct model_ops *o = ops();

	return o ? o->depgraph_input_from_plan(t, ret) : -ELIBACC;
}

void depgraph_plan_input_release(struct depgraph_plan_input *p)
{
	const struct model_ops *o;

	if (p && (o = ops()))
		o->depgraph_plan_input_release(p);
}

int depgraph_analyse(const struct depgraph_input *in, const struct depgraph_options *opts,
		     struct depgraph_report **ret)
{
	const struct model_ops *o = ops();

	return o ? o->depgraph_analyse(in, opts, ret) : -ELIBACC;
}

void depgraph_report_free(struct depgraph_report *r)
{
	const struct model_ops *o;

	if (r && (o = ops()))
		o->depgraph_report_free(r);
}

int simulate_run(const struct topology_plan *t, const struct sim_options *opts,
		 struct sim_result **ret)
{
	const struct model_ops *o = ops();

	return o ? o->simulate_run(t, opts, ret) : -ELIBACC;
}

void sim_result_free(struct sim_result *r)
{
	const struct model_ops *o;

	if (r && (o = ops()))
		o->sim_result_free(r);
}

void wilson_interval(uint64_t x, uint64_t n, double *ret_low, double *ret_high)
{
	const struct model_ops *o = ops();

	if (o) {
		o->wilson_interval(x, n, ret_low, ret_high);
	} else {
		*ret_low = NAN;
		*ret_high = NAN;
	}
}
