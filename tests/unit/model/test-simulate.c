/* The Monte Carlo against the exact models: seeded runs, so the result is
 * the same every time, with a tolerance derived from the run's own 95%
 * interval (widened to 99.9%: 3.29 / 1.96 of the half width). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/err.h"
#include "model/availability.h"
#include "model/simulate.h"
#include "plan/plan.h"

#define WIDEN (3.2905 / 1.95996)

static struct plan *load(const char *text)
{
	struct plan *plan = NULL;
	char *error = NULL;

	if (plan_parse("s.yaml", text, strlen(text), &plan, &error) < 0) {
		print_error("%s\n", error);
		free(error);
		fail();
	}
	return plan;
}

/* Checks every required component and the service against the exact model. */
static void check_agrees(const char *text, double years, uint64_t seed, bool exponential)
{
	struct plan *plan = load(text);
	struct model_report *m = NULL;
	struct sim_result *r = NULL;
	struct sim_options o = { .years = years, .seed = seed, .exponential = exponential };
	size_t k = 0;

	assert_int_equal(model_evaluate(plan->topology, &m), 0);
	assert_int_equal(simulate_run(plan->topology, &o, &r), 0);
	for (size_t i = 0; i < m->n_components; i++) {
		const struct component_report *c = &m->components[i];
		const struct sim_component *s;

		if (!c->required)
			continue;
		s = &r->components[k++];
		assert_string_equal(s->name, c->c->name);
		assert_true(s->ci_half > 0);
		if (fabs(s->availability - c->result.availability) > WIDEN * s->ci_half) {
			print_error("%s: simulated %.9f +/- %.3g, exact %.9f\n", s->name,
				    s->availability, s->ci_half, c->result.availability);
			fail();
		}
	}
	assert_int_equal(k, r->n_components);
	double half = (r->ci_high - r->ci_low) / 2, mid = (r->ci_high + r->ci_low) / 2;

	assert_true(half > 0);
	if (fabs(mid - m->service.availability) > WIDEN * half) {
		print_error("service: simulated %.9f +/- %.3g, exact %.9f\n", mid, half,
			    m->service.availability);
		fail();
	}
	/* The interval is around the point estimate (the mean of the years). */
	assert_true(fabs(mid - r->availability) < 1e-9);
	sim_result_free(r);
	model_report_free(m);
	plan_free(plan);
}

#define HEAD "topology:\n  service: s\n  requires: [a]\n  components:\n"

static void test_single_and_shared_crews(void **state)
{
	(void)state;
	check_agrees(HEAD
		     "    - { name: a, mtbf: 100h, mttr: 10h, depends_on: [b, c] }\n"
		     "    - { name: b, mtbf: 50h, mttr: 10h, replicas: 2, repair_crews: 1 }\n"
		     "    - { name: c, mtbf: 40h, mttr: 10h, replicas: 5, needs: 3, repair_crews: 2 }\n",
		     400, 7, false);
}

static void test_cold_standby(void **state)
{
	(void)state;
	check_agrees(HEAD
		     "    - { name: a, mtbf: 30h, mttr: 10h, replicas: 2, redundancy: cold,\n"
		     "        switch_success: 0.8, repair_crews: 1, depends_on: [b] }\n"
		     "    - { name: b, mtbf: 20h, mttr: 5h, replicas: 4, needs: 2, redundancy: cold,\n"
		     "        switch_success: 0.9, repair_crews: 2 }\n",
		     400, 11, false);
}

static void test_distributions_ignored_with_exponential(void **state)
{
	(void)state;
	check_agrees(HEAD
		     "    - { name: a, mtbf: 30h, mttr: 10h, replicas: 3, needs: 2, repair_crews: 1,\n"
		     "        mtbf_shape: 3, mttr_dist: lognormal, mttr_shape: 1.5 }\n",
		     400, 3, true);
}

/* With a crew per replica, availability depends only on the means
 * (alternating renewal process): Weibull and lognormal must agree too. */
static void test_insensitive_to_distribution(void **state)
{
	(void)state;
	check_agrees(HEAD
		     "    - { name: a, mtbf: 30h, mttr: 10h, mtbf_shape: 2.5, depends_on: [b] }\n"
		     "    - { name: b, mtbf: 20h, mttr: 4h, replicas: 3, needs: 2,\n"
		     "        mtbf_dist: lognormal, mtbf_shape: 0.7, mttr_dist: weibull, mttr_shape: 0.8 }\n",
		     400, 5, false);
}

static void test_target_windows(void **state)
{
	(void)state;
	struct plan *plan = load("targets: { availability: 99% }\n" HEAD
				 "    - { name: a, mtbf: 100h, mttr: 1h }\n");
	struct sim_result *r = NULL, *r2 = NULL;
	struct sim_options o = { .years = 50, .seed = 1, .target = 0.99 };

	assert_int_equal(simulate_run(plan->topology, &o, &r), 0);
	assert_int_equal(r->n_years, 50);
	assert_int_equal(r->months, (uint64_t)(50 * 365 / 30));
	/* U = 1/101 < 1%: most windows meet the target, some do not. */
	assert_true(r->p_miss_month > 0 && r->p_miss_month < 0.5);
	assert_true(r->p_miss_month_low <= r->p_miss_month && r->p_miss_month <= r->p_miss_month_high);
	assert_true(r->downtime_p50_s <= r->downtime_p90_s && r->downtime_p90_s <= r->downtime_max_s);
	/* Same seed, same result. */
	assert_int_equal(simulate_run(plan->topology, &o, &r2), 0);
	assert_true(r->availability == r2->availability);
	assert_int_equal(r->lifecycles, r2->lifecycles);
	sim_result_free(r2);
	o.seed = 2;
	assert_int_equal(simulate_run(plan->topology, &o, &r2), 0);
	assert_true(r->availability != r2->availability);
	sim_result_free(r2);
	sim_result_free(r);
	o.years = 1;
	assert_int_equal(simulate_run(plan->topology, &o, &r), -EINVAL);
	o.years = 2.5;
	assert_int_equal(simulate_run(plan->topology, &o, &r), -EINVAL);
	plan_free(plan);
}

static void test_wilson(void **state)
{
	(void)state;
	double lo, hi;

	wilson_interval(0, 100, &lo, &hi);
	assert_true(lo < 1e-12 && hi > 0.03 && hi < 0.04); /* 3.7% */
	wilson_interval(50, 100, &lo, &hi);
	assert_true(fabs(lo - 0.4038) < 1e-3 && fabs(hi - 0.5962) < 1e-3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_and_shared_crews),
		cmocka_unit_test(test_cold_standby),
		cmocka_unit_test(test_distributions_ignored_with_exponential),
		cmocka_unit_test(test_insensitive_to_distribution),
		cmocka_unit_test(test_target_windows),
		cmocka_unit_test(test_wilson),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
