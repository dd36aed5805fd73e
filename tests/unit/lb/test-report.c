#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lb/report.h"
#include "lib/err.h"

static void test_parse_haproxy_words(void **state)
{
	struct lb_agent_report r;

	(void)state;
	assert_int_equal(lb_agent_parse("75%\n", 4, &r), 0);
	assert_int_equal(r.percent, 75);
	assert_int_equal(r.state, -1);
	assert_int_equal(lb_agent_parse("up 50%, maxconn:30", 18, &r), 0);
	assert_int_equal(r.state, LB_REPORT_UP);
	assert_int_equal(r.percent, 50);
	assert_int_equal(r.maxconn, 30);
	assert_int_equal(lb_agent_parse("DRAIN", 5, &r), 0);
	assert_int_equal(r.state, LB_REPORT_DRAIN);
	assert_int_equal(lb_agent_parse("maint #why", 10, &r), 0);
	assert_int_equal(r.state, LB_REPORT_MAINT);
	assert_int_equal(lb_agent_parse("stopped", 7, &r), 0);
	assert_int_equal(r.state, LB_REPORT_DOWN);
	assert_int_equal(lb_agent_parse("hello", 5, &r), -BCDR_ERR_PROTOCOL);
	assert_int_equal(lb_agent_parse("101%", 4, &r), -BCDR_ERR_PROTOCOL);
	assert_int_equal(lb_agent_parse("%", 1, &r), -BCDR_ERR_PROTOCOL);
	assert_int_equal(lb_agent_parse("", 0, &r), -BCDR_ERR_PROTOCOL);
	assert_int_equal(lb_agent_parse("up\0 50%", 7, &r), 0);
	assert_int_equal(r.percent, -1); /* a NUL ends the line */
}

static void test_format_and_capacity(void **state)
{
	char line[32];

	(void)state;
	assert_int_equal(lb_report_capacity(0.25, 0.1), 75);
	assert_int_equal(lb_report_capacity(0.1, 0.6), 40);
	assert_int_equal(lb_report_capacity(1.0, 3.0), 1);
	assert_int_equal(lb_report_capacity(0, 0), 100);
	assert_true(lb_report_format(LB_REPORT_UP, 75, line, sizeof(line)) > 0);
	assert_string_equal(line, "up 75%\n");
	assert_true(lb_report_format(LB_REPORT_DOWN, 75, line, sizeof(line)) > 0);
	assert_string_equal(line, "down\n");
	assert_int_equal(lb_report_format(LB_REPORT_UP, 75, line, 3), -ENOBUFS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_haproxy_words),
		cmocka_unit_test(test_format_and_capacity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
