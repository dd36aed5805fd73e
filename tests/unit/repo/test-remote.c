/* remote_error(): the message of the failure a command returns, even when
 * another thread failed with another code after it. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "repo/remote.h"

static void test_each_code_keeps_its_message(void **state)
{
	(void)state;
	remote_set_error(-ECONNRESET, "the connection to '%s' broke", "h1");
	remote_set_error(-ECONNREFUSED, "cannot connect to '%s'", "h2");
	assert_string_equal(remote_error(-ECONNRESET), "the connection to 'h1' broke");
	assert_string_equal(remote_error(-ECONNREFUSED), "cannot connect to 'h2'");
	/* the same code again: the newer message */
	remote_set_error(-ECONNRESET, "the connection to '%s' broke", "h3");
	assert_string_equal(remote_error(-ECONNRESET), "the connection to 'h3' broke");
	assert_string_equal(remote_error(-ETIMEDOUT), "");
	assert_string_equal(remote_error(0), "");
}

static void test_old_codes_make_room(void **state)
{
	(void)state;
	for (int i = 1; i <= 20; i++)
		remote_set_error(-1000 - i, "failure %d", i);
	/* the last ones are there, the first ones gave way */
	assert_string_equal(remote_error(-1020), "failure 20");
	assert_string_equal(remote_error(-1013), "failure 13");
	assert_string_equal(remote_error(-1001), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_code_keeps_its_message),
		cmocka_unit_test(test_old_codes_make_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
