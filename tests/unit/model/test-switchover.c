/* The switch-over time in the model: the first-order cost of switchover.c
 * against an exact Markov chain with a switching state, the plan's keys,
 * and the service recomputed with a measured figure. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/err.h"
#include "model/availability.h"
#include "model/ctmc.h"
#include "model/switchover.h"
#include "plan/plan.h"

/* Two active replicas, two crews, one in service; a switch-over takes an
 * exponential time of mean t. States: 0 both up (serving), 1 switching
 * with one failed, 2 switching with none failed (the failed one repaired
 * meanwhile), 3 one up serving, 4 both failed. Down: 1, 2, 4. */
static double exact_unavailability(double mtbf, double mttr, double t)
{
	double l = 1 / mtbf, m = 1 / mttr, s = 1 / t, down;
	gsl_matrix *Q = gsl_matrix_calloc(5, 5);
	gsl_vector *pi = gsl_vector_alloc(5);

	gsl_matrix_set(Q, 0, 1, l); /* the one in service fails: a switch-over */
	gsl_matrix_set(Q, 0, 3, l); /* the standby fails: nothing to switch */
	gsl_matrix_set(Q, 1, 3, s);
	gsl_matrix_set(Q, 1, 2, m);
	gsl_matrix_set(Q, 1, 4, l);
	gsl_matrix_set(Q, 2, 0, s);
	gsl_matrix_set(Q, 2, 1, l);
	gsl_matrix_set(Q, 3, 0, m);
	gsl_matrix_set(Q, 3, 4, l);
	gsl_matrix_set(Q, 4, 3, 2 * m);
	ctmc_fill_diagonal(Q);
	assert_int_equal(ctmc_steady_state(Q, pi), 0);
	down = gsl_vector_get(pi, 1) + gsl_vector_get(pi, 2) + gsl_vector_get(pi, 4);
	gsl_matrix_free(Q);
	gsl_vector_free(pi);
	return down;
}

static void test_against_chain(void **state)
{
	(void)state;
	static const double ts[] = { 1, 5, 30, 300 };

	for (size_t i = 0; i < 4; i++) {
		struct unit_params p = { .mtbf_s = 1000 * 3600.0, .mttr_s = 3600, .replicas = 2,
					 .needs = 1, .crews = 2, .switch_success = 1,
					 .switchover_s = ts[i] };
		struct unit_result r;
		double base, base_rate, base_a, exact = exact_unavailability(p.mtbf_s, p.mttr_s, ts[i]);

		assert_int_equal(unit_solve(&p, &r), 0);
		base = r.unavailability;
		base_rate = r.failure_rate;
		base_a = r.availability;
		switchover_apply(&p, &r);
		/* the part the switch-overs add, within 1% (first order in t/mttr) */
		assert_true(fabs((r.unavailability - base) - (exact - base)) <
			    0.01 * (exact - base));
		assert_true(fabs(r.availability + r.unavailability - 1) < 1e-12);
		/* each switch-over is an outage: the one in service fails at 1/mtbf */
		assert_true(fabs(r.failure_rate - base_rate - base_a / p.mtbf_s) < 1e-15);
	}
}

static void test_rate(void **state)
{
	(void)state;
	struct unit_result r = { .availability = 0.999, .unavailability = 0.001 };
	struct unit_params p = { .mtbf_s = 100, .mttr_s = 1, .replicas = 3, .needs = 2,
				 .crews = 3, .redundancy = REDUNDANCY_COLD, .switch_success = 0.5,
				 .switchover_s = 2 };

	/* the two in service fail at 2/100; half the switches succeed */
	assert_true(fabs(switchover_rate(&p, &r) - 2.0 / 100 * 0.999 * 0.5) < 1e-15);
	p.replicas = 2; /* no standby: nothing to switch to */
	assert_true(switchover_rate(&p, &r) == 0);
	switchover_apply(&p, &r);
	assert_true(r.unavailability == 0.001);
	p.replicas = 3;
	p.switchover_s = 0; /* instant: the chain's figure stays */
	switchover_apply(&p, &r);
	assert_true(r.unavailability == 0.001);
	/* a switch-over longer than the time up: down, not below 0 */
	p.switchover_s = 1e9;
	switchover_apply(&p, &r);
	assert_true(r.availability == 0 && r.unavailability > 0.999);
}

static const char plan_text[] =
	"topology:\n  service: shop\n  requires: [db, app]\n  components:\n"
	"    - { name: db, mtbf: 1000h, mttr: 1h, replicas: 2, switchover: 30s }\n"
	"    - { name: app, mtbf: 1000h, mttr: 1h, replicas: 2, cluster_service: app-svc }\n";

static void test_plan(void **state)
{
	(void)state;
	struct plan *plan = NULL;
	struct model_report *m = NULL, *mm = NULL;
	struct unit_params params[2];
	char *error = NULL;
	double f;

	assert_int_equal(plan_parse("s.yaml", plan_text, strlen(plan_text), &plan, &error), 0);
	assert_int_equal(plan->topology->components[0].switchover, 30 * 1000000ULL);
	assert_string_equal(plan->topology->components[1].cluster_service, "app-svc");
	assert_int_equal(model_evaluate(plan->topology, &m), 0);
	/* db: the chain's unavailability plus a failover a 1000h, 30 s each */
	f = 1 / (1000 * 3600.0) * m->components[1].result.availability;
	assert_true(fabs(m->components[0].result.unavailability -
			 (m->components[1].result.unavailability + f * 30)) < 1e-12);
	/* the measured figure replaces the planned one, the service follows */
	for (int i = 0; i < 2; i++)
		unit_params_from(&plan->topology->components[i], &params[i]);
	params[0].switchover_s = 3;
	params[1].switchover_s = 3;
	assert_int_equal(model_evaluate_with(plan->topology, params, &mm), 0);
	assert_true(mm->components[0].result.unavailability < m->components[0].result.unavailability);
	assert_true(fabs(mm->components[0].result.unavailability -
			 mm->components[1].result.unavailability) < 1e-15);
	assert_true(fabs(mm->service.unavailability -
			 (1 - mm->components[0].result.availability *
				      mm->components[1].result.availability)) < 1e-12);
	model_report_free(m);
	model_report_free(mm);
	plan_free(plan);
}

static void test_plan_errors(void **state)
{
	(void)state;
	static const char *const bad[] = {
		/* nothing to switch to */
		"topology:\n  service: s\n  requires: [a]\n  components:\n"
		"    - { name: a, mtbf: 10h, mttr: 1h, switchover: 5s }\n",
		"topology:\n  service: s\n  requires: [a]\n  components:\n"
		"    - { name: a, mtbf: 10h, mttr: 1h, replicas: 2, needs: 2, switchover: 5s }\n",
		"topology:\n  service: s\n  requires: [a]\n  components:\n"
		"    - { name: a, mtbf: 10h, mttr: 1h, replicas: 2, switchover: soon }\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct plan *plan = NULL;
		char *error = NULL;

		assert_true(plan_parse("s.yaml", bad[i], strlen(bad[i]), &plan, &error) < 0);
		assert_non_null(error);
		free(error);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_against_chain),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_plan_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
