/* The exact models against the closed forms derived in docs/models.md,
 * and the Markov solver against the same forms. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <gsl/gsl_sf_gamma.h>

#include "lib/err.h"
#include "model/availability.h"
#include "model/ctmc.h"
#include "plan/plan.h"

#define HOUR 3600.0

/* Relative closeness, for unavailabilities spanning many decades. */
static void assert_rel(double got, double want, double tol)
{
	if (!(fabs(got - want) <= tol * fabs(want))) {
		print_error("got %.17g, want %.17g (relative error %.3g > %.3g)\n", got, want,
			    fabs(got - want) / fabs(want), tol);
		fail();
	}
}

static struct unit_params params(double mtbf_h, double mttr_h, int n, int k, int crews,
				 int redundancy, double p)
{
	return (struct unit_params){ mtbf_h * HOUR, mttr_h * HOUR, n, k, crews, redundancy, p };
}

/* Both solvers: unit_solve (closed form when it applies) and the chain. */
static void check_unit(const struct unit_params *p, double want_u, double tol)
{
	struct unit_result a, m;

	assert_int_equal(unit_solve(p, &a), 0);
	assert_int_equal(unit_solve_markov(p, &m), 0);
	assert_rel(a.unavailability, want_u, tol);
	assert_rel(m.unavailability, want_u, tol);
	assert_rel(a.availability, 1 - want_u, 1e-12);
	assert_rel(m.failure_rate, a.failure_rate, 1e-8);
}

static void test_single_unit(void **state)
{
	(void)state;
	/* A = MTBF / (MTBF + MTTR); failures per second = lambda * A. */
	struct unit_params p = params(1000, 2, 1, 1, 1, REDUNDANCY_ACTIVE, 1);
	struct unit_result r;

	check_unit(&p, 2.0 / 1002, 1e-12);
	assert_int_equal(unit_solve(&p, &r), 0);
	assert_int_equal(r.method, METHOD_CLOSED_FORM);
	assert_rel(r.failure_rate, (1 / (1000 * HOUR)) * (1000.0 / 1002), 1e-12);
	assert_rel(r.mtbf_s, 1000 * HOUR, 1e-12);
	assert_rel(r.mttr_s, 2 * HOUR, 1e-12);
}

static void test_two_active_two_crews(void **state)
{
	(void)state;
	double q = 2.0 / 1002;
	struct unit_params p = params(1000, 2, 2, 1, 2, REDUNDANCY_ACTIVE, 1);
	struct unit_result r;

	check_unit(&p, q * q, 1e-10);
	assert_int_equal(unit_solve(&p, &r), 0);
	assert_int_equal(r.method, METHOD_CLOSED_FORM);
	/* Down time per outage: both in repair, the first to finish ends it. */
	assert_rel(r.mttr_s, 1 * HOUR, 1e-9);
}

static void test_two_active_one_crew(void **state)
{
	(void)state;
	double rho = 2.0 / 1000;
	struct unit_params p = params(1000, 2, 2, 1, 1, REDUNDANCY_ACTIVE, 1);
	struct unit_result r;

	/* pi1 = 2 rho pi0, pi2 = rho pi1: U = 2 rho^2 / (1 + 2 rho + 2 rho^2). */
	assert_int_equal(unit_solve(&p, &r), 0);
	assert_int_equal(r.method, METHOD_MARKOV);
	assert_int_equal(r.states, 3);
	assert_rel(r.unavailability, 2 * rho * rho / (1 + 2 * rho + 2 * rho * rho), 1e-10);
	assert_rel(r.mttr_s, 2 * HOUR, 1e-9); /* one crew: a whole repair */
}

/* k of n, a crew each: the number down is binomial. */
static double binomial_unavailability(int n, int k, double a)
{
	double u = 0;

	for (int j = n - k + 1; j <= n; j++)
		u += gsl_sf_choose((unsigned)n, (unsigned)j) * pow(a, n - j) * pow(1 - a, j);
	return u;
}

static void test_k_of_n_independent(void **state)
{
	(void)state;
	static const int cases[][2] = { { 3, 2 }, { 5, 3 }, { 10, 7 }, { 4, 4 }, { 50, 1 } };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = cases[i][0], k = cases[i][1];
		struct unit_params p = params(500, 5, n, k, n, REDUNDANCY_ACTIVE, 1);

		check_unit(&p, binomial_unavailability(n, k, 500.0 / 505), 1e-8);
	}
}

static void test_k_of_n_one_crew(void **state)
{
	(void)state;
	static const int cases[][2] = { { 3, 2 }, { 5, 3 }, { 6, 1 }, { 50, 40 } };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = cases[i][0], k = cases[i][1];
		double rho = 5.0 / 500, w = 1, sum = 1, down = 0;
		struct unit_params p = params(500, 5, n, k, 1, REDUNDANCY_ACTIVE, 1);
		struct unit_result r;

		/* Birth-death: pi_j = pi_0 rho^j n! / (n - j)!. */
		for (int j = 1; j <= n; j++) {
			w *= (n - j + 1) * rho;
			sum += w;
			if (j > n - k)
				down += w;
		}
		assert_int_equal(unit_solve(&p, &r), 0);
		assert_rel(r.unavailability, down / sum, 1e-8);
	}
}

static void test_cold_standby_perfect(void **state)
{
	(void)state;
	double rho = 4.0 / 4000;
	struct unit_params one = params(4000, 4, 2, 1, 1, REDUNDANCY_COLD, 1);
	struct unit_params two = params(4000, 4, 2, 1, 2, REDUNDANCY_COLD, 1);
	struct unit_result r;

	/* One crew: U = rho^2 / (1 + rho + rho^2); two: rho^2/2 / (1 + rho + rho^2/2). */
	assert_int_equal(unit_solve(&one, &r), 0);
	assert_rel(r.unavailability, rho * rho / (1 + rho + rho * rho), 1e-10);
	assert_int_equal(unit_solve(&two, &r), 0);
	assert_rel(r.unavailability, rho * rho / 2 / (1 + rho + rho * rho / 2), 1e-10);
}

static void test_cold_standby_imperfect(void **state)
{
	(void)state;
	static const double ps[] = { 0, 0.5, 0.9, 0.99, 1 };

	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		for (int crews = 1; crews <= 2; crews++) {
			double p = ps[i], rho = 2.0 / 4000;
			double a = (1 + p * rho) / (1 + rho + p * rho * rho / crews);
			struct unit_params u = params(4000, 2, 2, 1, crews, REDUNDANCY_COLD, p);
			struct unit_result r;

			assert_int_equal(unit_solve(&u, &r), 0);
			assert_int_equal(r.method, METHOD_MARKOV);
			assert_rel(r.unavailability, 1 - a, 1e-8);
		}
	}
	/* switch_success 0: the standby never helps, a single unit remains. */
	struct unit_params u = params(4000, 2, 2, 1, 1, REDUNDANCY_COLD, 0);
	struct unit_result r;

	assert_int_equal(unit_solve(&u, &r), 0);
	assert_rel(r.unavailability, 2.0 / 4002, 1e-10);
}

/* Cold standby, one needed, any n, r and p: the level sums L_j (j failed,
 * switched or stuck) satisfy L_j = rho / min(j, r) * pi(ok_{j-1}), and a
 * share 1 - p of each level below n is stuck (docs/models.md). */
static double cold_unavailability(int n, int r, double p, double rho)
{
	double ok = 1, sum = 1, down = 0;

	for (int j = 1; j <= n; j++) {
		double level = rho / (j < r ? j : r) * ok;

		ok = j < n ? p * level : level;
		sum += level;
		down += j < n ? level - ok : level;
	}
	return down / sum;
}

static void test_cold_standby_general(void **state)
{
	(void)state;
	static const int cases[][2] = { { 3, 1 }, { 5, 2 }, { 8, 8 }, { 50, 5 } };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (double p = 0.5; p <= 1; p += 0.25) {
			int n = cases[i][0], r = cases[i][1];
			struct unit_params u = params(100, 10, n, 1, r, REDUNDANCY_COLD, p);
			struct unit_result res;

			assert_int_equal(unit_solve(&u, &res), 0);
			assert_rel(res.unavailability, cold_unavailability(n, r, p, 0.1), 1e-9);
		}
}

static void test_series(void **state)
{
	(void)state;
	struct unit_result u[3];
	struct unit_params p[3] = {
		params(1000, 1, 1, 1, 1, REDUNDANCY_ACTIVE, 1),
		params(2000, 4, 1, 1, 1, REDUNDANCY_ACTIVE, 1),
		params(500, 0.5, 1, 1, 1, REDUNDANCY_ACTIVE, 1),
	};
	struct series_result s;
	double a = 1, lambda = 0;

	for (int i = 0; i < 3; i++) {
		assert_int_equal(unit_solve(&p[i], &u[i]), 0);
		a *= p[i].mtbf_s / (p[i].mtbf_s + p[i].mttr_s);
		lambda += 1 / p[i].mtbf_s;
	}
	series_combine(u, 3, &s);
	assert_rel(s.availability, a, 1e-12);
	assert_rel(s.unavailability, 1 - a, 1e-9);
	/* Single units in series: up time ends at the first failure. */
	assert_rel(s.mtbf_s, 1 / lambda, 1e-9);
}

static void test_ctmc_errors(void **state)
{
	(void)state;
	gsl_matrix *Q = gsl_matrix_calloc(3, 3);
	gsl_vector *pi = gsl_vector_alloc(3);

	/* Two absorbing states: no unique steady state. */
	gsl_matrix_set(Q, 1, 0, 1);
	gsl_matrix_set(Q, 1, 2, 1);
	ctmc_fill_diagonal(Q);
	assert_int_equal(ctmc_steady_state(Q, pi), -EDOM);
	assert_int_equal(ctmc_steady_state_lu(Q, pi), -EDOM);
	gsl_matrix_set(Q, 0, 1, -1);
	assert_int_equal(ctmc_steady_state(Q, pi), -EINVAL);
	/* A cycle 0 -> 1 -> 2 -> 0 with rates 1, 2, 4: pi proportional to 4, 2, 1. */
	gsl_matrix_set_zero(Q);
	gsl_matrix_set(Q, 0, 1, 1);
	gsl_matrix_set(Q, 1, 2, 2);
	gsl_matrix_set(Q, 2, 0, 4);
	ctmc_fill_diagonal(Q);
	assert_int_equal(ctmc_steady_state(Q, pi), 0);
	assert_rel(gsl_vector_get(pi, 0), 4.0 / 7, 1e-12);
	assert_rel(gsl_vector_get(pi, 2), 1.0 / 7, 1e-12);
	gsl_matrix_free(Q);
	gsl_vector_free(pi);
}

/* The two solvers agree on the chains the models build (GSL's LU only to
 * ~1e-16 absolute, so the comparison is absolute). */
static void test_lu_agrees(void **state)
{
	(void)state;
	for (int n = 1; n <= 12; n++) {
		size_t size = (size_t)n + 1;
		gsl_matrix *Q = gsl_matrix_calloc(size, size);
		gsl_vector *a = gsl_vector_alloc(size), *b = gsl_vector_alloc(size);

		/* n replicas, one crew, a cold standby chain with rates of a few
		 * decades apart. */
		for (int j = 0; j < n; j++) {
			gsl_matrix_set(Q, (size_t)j, (size_t)j + 1, 0.001 * (n - j));
			gsl_matrix_set(Q, (size_t)j + 1, (size_t)j, 0.5);
		}
		ctmc_fill_diagonal(Q);
		assert_int_equal(ctmc_steady_state(Q, a), 0);
		assert_int_equal(ctmc_steady_state_lu(Q, b), 0);
		for (size_t i = 0; i < size; i++)
			assert_true(fabs(gsl_vector_get(a, i) - gsl_vector_get(b, i)) < 1e-13);
		gsl_matrix_free(Q);
		gsl_vector_free(a);
		gsl_vector_free(b);
	}
}

static void test_params_refused(void **state)
{
	(void)state;
	struct unit_result r;
	struct unit_params bad[] = {
		params(0, 1, 1, 1, 1, REDUNDANCY_ACTIVE, 1),
		params(10, -1, 1, 1, 1, REDUNDANCY_ACTIVE, 1),
		params(10, 1, 2, 3, 1, REDUNDANCY_ACTIVE, 1),
		params(10, 1, 2, 1, 3, REDUNDANCY_ACTIVE, 1),
		params(10, 1, 2, 1, 1, REDUNDANCY_COLD, 1.5),
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(unit_solve(&bad[i], &r), -EINVAL);
}

static const char plan_text[] =
	"targets: { availability: 99.9% }\n"
	"topology:\n"
	"  service: shop\n"
	"  requires: [web]\n"
	"  components:\n"
	"    - { name: web, mtbf: 1000h, mttr: 1h, depends_on: [db] }\n"
	"    - { name: db, mtbf: 2000h, mttr: 2h, replicas: 2, repair_crews: 1 }\n"
	"    - { name: spare, availability: 99%, mttr: 2h }\n";

static void test_model_evaluate(void **state)
{
	(void)state;
	struct plan *plan = NULL;
	struct model_report *m = NULL;
	char *error = NULL;
	double a_web = 1000.0 / 1001, rho = 1.0 / 1000;
	double u_db = 2 * rho * rho / (1 + 2 * rho + 2 * rho * rho);

	assert_int_equal(plan_parse("p.yaml", plan_text, strlen(plan_text), &plan, &error), 0);
	assert_int_equal(model_evaluate(plan->topology, &m), 0);
	assert_int_equal(m->n_components, 3);
	assert_true(m->components[0].required && m->components[1].required);
	assert_false(m->components[2].required); /* nothing depends on it */
	assert_rel(m->components[2].params.mtbf_s, 2 * HOUR * 99, 1e-12);
	assert_rel(m->service.availability, a_web * (1 - u_db), 1e-12);
	/* Birnbaum in series: the product of the others' availabilities. */
	assert_rel(m->components[0].birnbaum, 1 - u_db, 1e-12);
	/* Halving web's MTTR: A_web' = 1000 / 1000.5. */
	assert_rel(m->components[0].halve_mttr_availability, 1000 / 1000.5 * (1 - u_db), 1e-12);
	assert_rel(m->components[0].halve_mttr_saved_s,
		   ((1 - a_web * (1 - u_db)) - (1 - 1000 / 1000.5 * (1 - u_db))) * SECONDS_PER_YEAR,
		   1e-6);
	/* Another web replica, a crew each: U_web = (1 / 1001)^2. */
	assert_true(m->components[0].add_replica_possible);
	assert_rel(m->components[0].add_replica_availability,
		   (1 - 1.0 / 1001 / 1001) * (1 - u_db), 1e-12);
	model_report_free(m);
	plan_free(plan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_unit),
		cmocka_unit_test(test_two_active_two_crews),
		cmocka_unit_test(test_two_active_one_crew),
		cmocka_unit_test(test_k_of_n_independent),
		cmocka_unit_test(test_k_of_n_one_crew),
		cmocka_unit_test(test_cold_standby_perfect),
		cmocka_unit_test(test_cold_standby_imperfect),
		cmocka_unit_test(test_cold_standby_general),
		cmocka_unit_test(test_series),
		cmocka_unit_test(test_ctmc_errors),
		cmocka_unit_test(test_lu_agrees),
		cmocka_unit_test(test_params_refused),
		cmocka_unit_test(test_model_evaluate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
