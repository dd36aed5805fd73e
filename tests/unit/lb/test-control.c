#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lb/control.h"

static int parse(const char *s, struct lb_control_request *req)
{
	const char *error = NULL;
	int r = lb_control_parse(s, strlen(s), req, &error);

	if (r < 0)
		assert_non_null(error);
	return r;
}

static void test_requests(void **state)
{
	struct lb_control_request req;

	(void)state;
	assert_int_equal(parse("status\n", &req), 0);
	assert_int_equal(req.op, LB_CONTROL_STATUS);
	assert_int_equal(parse("set web/a drain", &req), 0);
	assert_int_equal(req.op, LB_CONTROL_SET_STATE);
	assert_string_equal(req.balancer, "web");
	assert_string_equal(req.backend, "a");
	assert_string_equal(req.state, "drain");
	assert_int_equal(parse("set  web/b  weight  250\r\n", &req), 0);
	assert_int_equal(req.op, LB_CONTROL_SET_WEIGHT);
	assert_int_equal(req.weight, 250);
}

static void test_refusals(void **state)
{
	struct lb_control_request req;
	char big[2000];

	(void)state;
	assert_true(parse("", &req) < 0);
	assert_true(parse("status now", &req) < 0);
	assert_true(parse("set web drain", &req) < 0);
	assert_true(parse("set /a drain", &req) < 0);
	assert_true(parse("set web/ drain", &req) < 0);
	assert_true(parse("set web/a up", &req) < 0);
	assert_true(parse("set web/a weight 1001", &req) < 0);
	assert_true(parse("set web/a weight -1", &req) < 0);
	assert_true(parse("set web/a weight 1x", &req) < 0);
	assert_true(parse("set web/a\tdrain", &req) < 0);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_true(parse(big, &req) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
