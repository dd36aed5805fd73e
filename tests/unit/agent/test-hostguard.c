/* agent/hostguard: which Host headers name the API's listener (DNS
 * rebinding), with garbage and overlong values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <stdio.h>
#include <unistd.h>

#include "agent/hostguard.h"

static void test_loopback_listener(void **state)
{
	char *names[] = { "agent.example.com", "BCDR-proxy", NULL };
	char hostname[256] = "", with_port[300];
	struct host_guard g;

	(void)state;
	assert_int_equal(host_guard_init(&g, "127.0.0.1:8470"), 0);
	static const char *const good[] = {
		"127.0.0.1", "127.0.0.1:8470", "localhost", "localhost:8470", "LOCALHOST.",
		"agent.example.com", "agent.example.com:8470", "bcdr-proxy", "agent.example.com.",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!host_guard_allows(&g, good[i], names))
			fail_msg("'%s' was refused", good[i]);
	static const char *const bad[] = {
		"evil.example", "evil.example:8470", "127.0.0.1:8471", "localhost:80", "127.0.0.2",
		"[::1]:8470", "10.0.0.1", "", ":8470", "localhost:", "localhost:8470:1",
		"agent.example.com.evil", "localhost/x", "localhost 8470", "local\thost",
		"127.0.0.1:08470x", "[127.0.0.1]", "localhost:-8470", "0x7f.1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (host_guard_allows(&g, bad[i], names))
			fail_msg("'%s' was allowed", bad[i]);
	assert_false(host_guard_allows(&g, NULL, names));
	assert_false(host_guard_allows(&g, "agent.example.com", NULL));
	/* this machine's name, with and without the port */
	if (gethostname(hostname, sizeof(hostname) - 1) == 0 && hostname[0]) {
		assert_true(host_guard_allows(&g, hostname, NULL));
		snprintf(with_port, sizeof(with_port), "%s:8470", hostname);
		assert_true(host_guard_allows(&g, with_port, NULL));
	}
}

static void test_other_listeners(void **state)
{
	struct host_guard g;

	(void)state;
	assert_int_equal(host_guard_init(&g, "[::1]:9000"), 0);
	assert_true(host_guard_allows(&g, "[::1]:9000", NULL));
	assert_true(host_guard_allows(&g, "[0:0::1]", NULL));
	assert_true(host_guard_allows(&g, "localhost:9000", NULL));
	assert_false(host_guard_allows(&g, "127.0.0.1:9000", NULL));
	assert_false(host_guard_allows(&g, "[::2]:9000", NULL));
	assert_false(host_guard_allows(&g, "::1", NULL));
	/* every address: any IP literal names it, names still must be known */
	assert_int_equal(host_guard_init(&g, "0.0.0.0:8470"), 0);
	assert_true(host_guard_allows(&g, "192.0.2.7:8470", NULL));
	assert_true(host_guard_allows(&g, "[2001:db8::1]", NULL));
	assert_false(host_guard_allows(&g, "192.0.2.7:1", NULL));
	assert_false(host_guard_allows(&g, "rebind.evil.example:8470", NULL));
	/* a listener given by name */
	assert_int_equal(host_guard_init(&g, "localhost:8470"), 0);
	assert_true(host_guard_allows(&g, "127.0.0.1:8470", NULL));
	assert_true(host_guard_allows(&g, "[::1]:8470", NULL));
	assert_false(host_guard_allows(&g, "10.1.1.1:8470", NULL));
}

static void test_garbage(void **state)
{
	struct host_guard g;
	char big[20000];

	(void)state;
	assert_int_equal(host_guard_init(&g, "127.0.0.1:8470"), 0);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_false(host_guard_allows(&g, big, NULL));
	memcpy(big, "localhost:8470", 14); /* a valid start, overlong */
	assert_false(host_guard_allows(&g, big, NULL));
	big[HOSTPORT_MAX] = '\0';
	assert_false(host_guard_allows(&g, big, NULL));
	for (int c = 1; c < 256; c++) {
		char v[16];

		snprintf(v, sizeof(v), "localhost%c", c);
		if (c != '.' && c != ':' && host_guard_allows(&g, v, NULL))
			fail_msg("'localhost' + byte %d was allowed", c);
	}
	assert_true(host_guard_name_valid("agent.example.com"));
	assert_true(host_guard_name_valid("192.0.2.1"));
	assert_false(host_guard_name_valid("agent.example.com:8470"));
	assert_false(host_guard_name_valid("http://agent"));
	assert_false(host_guard_name_valid("[::1]"));
	assert_false(host_guard_name_valid(""));
	assert_false(host_guard_name_valid("a b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loopback_listener),
		cmocka_unit_test(test_other_listeners),
		cmocka_unit_test(test_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
