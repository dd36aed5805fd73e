/* The topology: section: defaults, and every bad plan refused with
 * file:line:col and a message that says what to change. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/err.h"
#include "model/topology.h"
#include "plan/plan.h"

/* Parses text; returns the error (free() it) or NULL and the plan. */
static char *parse(const char *text, struct plan **ret)
{
	struct plan *plan = NULL;
	char *error = NULL;
	int r = plan_parse("t.yaml", text, strlen(text), &plan, &error);

	if (r < 0) {
		assert_non_null(error);
		return error;
	}
	assert_null(error);
	if (ret)
		*ret = plan;
	else
		plan_free(plan);
	return NULL;
}

static void expect_error(const char *text, const char *want)
{
	char *error = parse(text, NULL);

	if (!error || !strstr(error, want)) {
		print_error("plan:\n%s\nerror: %s\nwanted: %s\n", text, error ? error : "(none)",
			    want);
		free(error);
		fail();
	}
	free(error);
}

#define HEAD "topology:\n  service: shop\n  requires: [a]\n  components:\n"

static void test_defaults(void **state)
{
	(void)state;
	struct plan *plan = NULL;
	const struct topo_component *c;

	assert_null(parse(HEAD "    - { name: a, mtbf: 100h, mttr: 1h, replicas: 3 }\n"
			  "    - { name: b, availability: 99.9% }\n", &plan));
	c = &plan->topology->components[0];
	assert_int_equal(c->replicas, 3);
	assert_int_equal(c->needs, 1);
	assert_int_equal(c->repair_crews, 3);
	assert_int_equal(c->redundancy, REDUNDANCY_ACTIVE);
	assert_int_equal(c->mtbf, 100 * USEC_PER_HOUR);
	assert_int_equal(c->mtbf_dist, DIST_EXPONENTIAL);
	c = &plan->topology->components[1];
	assert_int_equal(c->mttr, TOPOLOGY_DEFAULT_MTTR);
	assert_true(c->availability > 0.9989 && c->availability < 0.9991);
	assert_null(plan->topology->cycle);
	plan_free(plan);
}

static void test_distributions(void **state)
{
	(void)state;
	struct plan *plan = NULL;
	const struct topo_component *c;

	assert_null(parse(HEAD "    - { name: a, mtbf: 100h, mttr: 1h, mtbf_shape: 2,\n"
			  "        mttr_dist: lognormal, mttr_shape: 0.5 }\n", &plan));
	c = &plan->topology->components[0];
	assert_int_equal(c->mtbf_dist, DIST_WEIBULL); /* a shape alone means Weibull */
	assert_int_equal(c->mttr_dist, DIST_LOGNORMAL);
	plan_free(plan);
	expect_error(HEAD "    - { name: a, mtbf: 100h, mttr: 1h, mttr_dist: weibull }\n",
		     "t.yaml:5:51: 'mttr_dist: weibull' needs 'mttr_shape'");
	expect_error(HEAD "    - { name: a, mtbf: 100h, mttr: 1h, mtbf_dist: exponential,"
		     " mtbf_shape: 2 }\n", "'mtbf_shape' applies to mtbf_dist: weibull");
}

static void test_bad_values(void **state)
{
	(void)state;
	expect_error(HEAD "    - { name: a, mttr: 1h }\n",
		     "t.yaml:5:7: component 'a' needs 'mtbf' and 'mttr'");
	expect_error(HEAD "    - { name: a, mtbf: 10h }\n", "t.yaml:5:7: component 'a' needs 'mttr'");
	expect_error(HEAD "    - { name: a, mtbf: 0s, mttr: 1h }\n",
		     "t.yaml:5:24: component 'a': 'mtbf' must be positive");
	expect_error(HEAD "    - { name: a, mtbf: 10h, mttr: 0h }\n",
		     "t.yaml:5:35: component 'a': 'mttr' must be positive");
	expect_error(HEAD "    - { name: a, mtbf: -10h, mttr: 1h }\n", "t.yaml:5:24: expected a duration");
	expect_error(HEAD "    - { name: a, mtbf: 10h, mttr: 1h, replicas: 2, needs: 3 }\n",
		     "t.yaml:5:59: component 'a' needs 3 replicas but has only 2");
	expect_error(HEAD "    - { name: a, mtbf: 10h, mttr: 1h, replicas: 0 }\n",
		     "'replicas' must be from 1 to 200");
	expect_error(HEAD "    - { name: a, mtbf: 10h, mttr: 1h, replicas: 2, repair_crews: 3 }\n",
		     "3 repair crews for 2 replicas");
	expect_error(HEAD "    - { name: a, availability: 100% }\n",
		     "t.yaml:5:32: component 'a': 'availability' must be above 0% and below 100%");
	expect_error(HEAD "    - { name: a, availability: 99%, mtbf: 1h }\n", "not both");
	expect_error(HEAD "    - { name: a, mtbf: 10h, mttr: 1h, switch_success: 0.9 }\n",
		     "'switch_success' applies to 'redundancy: cold' only");
	expect_error(HEAD "    - { name: a, mtbf: 10h, mttr: 1h, redundancy: warm }\n",
		     "'redundancy' must be one of: active, cold");
	expect_error(HEAD "    - { name: a, mtbf: 10h, mttr: 1h, colour: red }\n",
		     "unknown key 'colour'");
	expect_error("topology:\n  service: shop\n  components: []\n",
		     "missing required key 'requires'");
	expect_error("topology:\n  service: shop\n  requires: []\n  components: []\n",
		     "t.yaml:3:13: 'requires' must name at least one component");
}

static void test_bad_names(void **state)
{
	(void)state;
	expect_error(HEAD "    - { name: b, mtbf: 10h, mttr: 1h }\n",
		     "t.yaml:3:14: 'requires' names 'a', which is not a component");
	expect_error(HEAD "    - { name: a, mtbf: 10h, mttr: 1h, depends_on: [b, c] }\n"
		     "    - { name: b, mtbf: 10h, mttr: 1h }\n",
		     "t.yaml:5:55: component 'a' depends on 'c', which is not a component");
	expect_error(HEAD "    - { name: a, mtbf: 10h, mttr: 1h }\n"
		     "    - { name: a, mtbf: 10h, mttr: 1h }\n",
		     "t.yaml:6:15: component 'a' is defined twice");
	expect_error(HEAD "    - { name: a, mtbf: 10h, mttr: 1h }\n"
		     "    - { name: shop, mtbf: 10h, mttr: 1h }\n",
		     "has the name of the service");
}

static void test_cycle_recorded(void **state)
{
	(void)state;
	struct plan *plan = NULL;
	char *error = NULL;

	/* A cycle is valid in the plan (the graph view draws it) but refused
	 * by the availability models. */
	assert_null(parse(HEAD "    - { name: a, mtbf: 10h, mttr: 1h, depends_on: [b] }\n"
			  "    - { name: b, mtbf: 10h, mttr: 1h, depends_on: [c] }\n"
			  "    - { name: c, mtbf: 10h, mttr: 1h, depends_on: [a] }\n", &plan));
	assert_non_null(plan->topology->cycle);
	assert_string_equal(plan->topology->cycle, "a -> b -> c -> a");
	assert_int_equal(topology_check_acyclic(plan->topology, &error), -BCDR_ERR_CONFIG);
	assert_non_null(strstr(error, "t.yaml:7:7: dependency cycle a -> b -> c -> a"));
	free(error);
	plan_free(plan);
	assert_null(parse(HEAD "    - { name: a, mtbf: 10h, mttr: 1h, depends_on: [a] }\n", &plan));
	assert_string_equal(plan->topology->cycle, "a -> a");
	plan_free(plan);
}

static void test_required_closure(void **state)
{
	(void)state;
	struct plan *plan = NULL;
	bool req[4];

	assert_null(parse(HEAD "    - { name: a, mtbf: 10h, mttr: 1h, depends_on: [b] }\n"
			  "    - { name: b, mtbf: 10h, mttr: 1h, depends_on: [c] }\n"
			  "    - { name: c, mtbf: 10h, mttr: 1h }\n"
			  "    - { name: d, mtbf: 10h, mttr: 1h, depends_on: [a] }\n", &plan));
	topology_required(plan->topology, req);
	assert_true(req[0] && req[1] && req[2]);
	assert_false(req[3]);
	plan_free(plan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_distributions),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_cycle_recorded),
		cmocka_unit_test(test_required_closure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
