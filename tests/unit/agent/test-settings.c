#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent/settings.h"
#include "lib/err.h"
#include "plan/plan.h"

static struct plan *load(const char *text, char **error)
{
	struct plan *plan = NULL;

	*error = NULL;
	if (plan_parse("t.yaml", text, strlen(text), &plan, error) < 0)
		return NULL;
	return plan;
}

static void test_parse(void **state)
{
	char *error;
	struct plan *plan;

	(void)state;
	plan = load("agent: { listen: '[::1]:9000', state_dir: /tmp/x, interval: 2s,\n"
		    "         token_file: /etc/t, lb_report_port: 5555, retention: 7d }\n", &error);
	assert_non_null(plan);
	assert_string_equal(plan->agent->listen, "[::1]:9000");
	assert_string_equal(plan->agent->state_dir, "/tmp/x");
	assert_int_equal(plan->agent->interval, 2 * USEC_PER_SEC);
	assert_string_equal(plan->agent->token_file, "/etc/t");
	assert_int_equal(plan->agent->lb_report_port, 5555);
	assert_int_equal(plan->agent->retention, 7 * USEC_PER_DAY);
	plan_free(plan);

	plan = load("agent: {}\n", &error);
	assert_non_null(plan);
	assert_string_equal(plan->agent->listen, AGENT_DEFAULT_LISTEN);
	assert_int_equal(plan->agent->interval, AGENT_DEFAULT_INTERVAL);
	plan_free(plan);
}

static void test_errors(void **state)
{
	static const char *const bad[][2] = {
		{ "agent: { listen: nowhere }\n", "t.yaml:1:18:" },
		{ "agent: { listen: '1.2.3.4:99999' }\n", "t.yaml:1:18:" },
		{ "agent: { interval: 10ms }\n", "t.yaml:1:20:" },
		{ "agent: { lb_report_port: 0 }\n", "t.yaml:1:26:" },
		{ "agent: { bogus: 1 }\n", "t.yaml:1:10:" },
		{ "agent: [1]\n", "t.yaml:1:8:" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *error;
		struct plan *plan = load(bad[i][0], &error);

		assert_null(plan);
		assert_non_null(error);
		if (strncmp(error, bad[i][1], strlen(bad[i][1])) != 0)
			fail_msg("%s: got '%s'", bad[i][0], error);
		free(error);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
