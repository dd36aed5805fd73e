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

#define FORWARD_ERR(type, name, params, args)          \
	type name params                               \
	{                                              \
		const struct model_ops *o = ops();     \
                                                       \
		return o ? o->name args : -ELIBACC;    \
	}
#define FORWARD_FREE(type, name, params, args)         \
	type name params                               \
	{                                              \
		const struct model_ops *o;             \
                                                       \
		if (p && (o = ops()))                  \
			o->name args;                  \
	}
#define FORWARD_OWN(type, name, params, args)
#define FORWARD(type, name, params, args, kind) FORWARD_##kind(type, name, params, args)

MODEL_OPS(FORWARD)

/* The OWN ones: a placeholder result without the module. */

void unit_params_from(const struct topo_component *c, struct unit_params *ret)
{
	const struct model_ops *o = ops();

	if (o)
		o->unit_params_from(c, ret);
	else
		*ret = (struct unit_params){ 0 };
}

void series_combine(const struct unit_result *units, size_t n, struct series_result *ret)
{
	const struct model_ops *o = ops();

	if (o)
		o->series_combine(units, n, ret);
	else
		*ret = (struct series_result){ NAN, NAN, NAN, NAN, NAN };
}

double nines(double unavailability)
{
	const struct model_ops *o = ops();

	return o ? o->nines(unavailability) : NAN;
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
