/* The alert routing tree (src/alert/route.c): Alertmanager's walk,
 * inheritance down the tree, and the plan errors that point at a route. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alert/route.h"
#include "plan/plan.h"
#include "plan-helpers.h"

static const char tree[] =
	"alerts:\n"
	"  receivers:\n"
	"    - name: ops\n"
	"      log: {}\n"
	"    - name: db-team\n"
	"      log: {}\n"
	"    - name: pager\n"
	"      log: {}\n"
	"    - name: audit\n"
	"      log: {}\n"
	"  route:\n"
	"    receiver: ops\n"
	"    group_wait: 10s\n"
	"    routes:\n"
	"      - match: { component: 'db-*' }\n"
	"        receiver: db-team\n"
	"        repeat_interval: 1h\n"
	"        routes:\n"
	"          - match: { severity: critical }\n"
	"            receiver: pager\n"
	"      - match: { severity: critical }\n"
	"        receiver: audit\n"
	"        continue: true\n"
	"      - match: { severity: critical }\n"
	"        group_by: [host]\n";

struct labels {
	const char *component, *severity;
};

static const char *lookup(void *userdata, const char *name)
{
	const struct labels *l = userdata;

	if (strcmp(name, "component") == 0)
		return l->component;
	if (strcmp(name, "severity") == 0)
		return l->severity;
	return NULL;
}

static struct plan *parse(const char *text)
{
	struct plan *p = NULL;
	char *err = NULL;

	if (plan_parse("t.yaml", text, strlen(text), &p, &err) < 0)
		fail_msg("plan: %s", err);
	return p;
}

static size_t route(const struct plan *p, const char *component, const char *severity,
		    const struct alert_route **ret, size_t max)
{
	struct labels l = { component, severity };

	return alert_plan_match(p->alerts, lookup, &l, ret, max);
}

/* The deepest matching child takes the alert, with what it inherits. */
static void test_deepest_match_inherits(void **state)
{
	struct plan *p = parse(tree);
	const struct alert_route *got[4];

	(void)state;
	assert_int_equal(route(p, "db-main", "critical", got, 4), 1);
	assert_string_equal(got[0]->receiver, "pager");
	assert_int_equal(got[0]->repeat_interval, USEC_PER_HOUR);  /* from db-* */
	assert_int_equal(got[0]->group_wait, 10 * USEC_PER_SEC);    /* from the top */
	assert_int_equal(got[0]->group_interval, 5 * USEC_PER_MINUTE); /* default */
	assert_string_equal(got[0]->group_by[0], "check");         /* default */

	/* a warning of the database: its route, not the child's */
	assert_int_equal(route(p, "db-main", "warning", got, 4), 1);
	assert_string_equal(got[0]->receiver, "db-team");
	plan_free(p);
}

/* `continue` lets the next siblings match too; without it the walk stops. */
static void test_continue(void **state)
{
	struct plan *p = parse(tree);
	const struct alert_route *got[4];

	(void)state;
	assert_int_equal(route(p, "web", "critical", got, 4), 2);
	assert_string_equal(got[0]->receiver, "audit");
	assert_string_equal(got[1]->receiver, "ops"); /* inherited by the last child */
	assert_string_equal(got[1]->group_by[0], "host");
	assert_null(got[1]->group_by[1]);
	/* room for one: the first is kept */
	assert_int_equal(route(p, "web", "critical", got, 1), 1);
	assert_string_equal(got[0]->receiver, "audit");
	assert_int_equal(route(p, "web", "critical", got, 0), 0);
	plan_free(p);
}

/* Nothing below matches: the top route takes it. A label the alert does
 * not have never matches, not even a '*' glob. */
static void test_fallback_and_missing_label(void **state)
{
	struct plan *p = parse(tree);
	const struct alert_route *got[4];

	(void)state;
	assert_int_equal(route(p, "web", "warning", got, 4), 1);
	assert_ptr_equal(got[0], &p->alerts->route);
	assert_int_equal(route(p, NULL, "warning", got, 4), 1);
	assert_string_equal(got[0]->receiver, "ops");
	plan_free(p);
}

/* Preorder ids, part of the group keys: stable for the same plan. */
static void test_ids_preorder(void **state)
{
	struct plan *p = parse(tree);
	const struct alert_route *top = &p->alerts->route;

	(void)state;
	assert_int_equal(top->id, 0);
	assert_int_equal(top->routes[0].id, 1);
	assert_int_equal(top->routes[0].routes[0].id, 2);
	assert_int_equal(top->routes[1].id, 3);
	assert_int_equal(top->routes[2].id, 4);
	plan_free(p);
}

static void test_plan_errors(void **state)
{
	(void)state;
	plan_expect_error("alerts:\n  receivers: [{name: ops, log: {}}]\n"
		     "  route: {receiver: ops, match: {check: x}}\n",
		     "no 'match' here");
	plan_expect_error("alerts:\n  receivers: [{name: ops, log: {}}]\n  route: {group_wait: 1s}\n",
		     "needs a 'receiver'");
	plan_expect_error("alerts:\n  receivers: [{name: ops, log: {}}]\n"
		     "  route:\n    receiver: ops\n    routes:\n      - receiver: nobody\n",
		     "t.yaml:6");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deepest_match_inherits),
		cmocka_unit_test(test_continue),
		cmocka_unit_test(test_fallback_and_missing_label),
		cmocka_unit_test(test_ids_preorder),
		cmocka_unit_test(test_plan_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
