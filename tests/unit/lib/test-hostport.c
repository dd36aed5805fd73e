/* lib/hostport: HOST:PORT as the plan writes it and Host headers carry it;
 * garbage of every kind is refused without writing the outputs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>

#include "lib/hostport.h"

static int split(const char *s, unsigned flags, char *host, uint16_t *port)
{
	return hostport_split(s, strlen(s), flags, host, 64, port);
}

static void test_good(void **state)
{
	char host[64];
	uint16_t port;

	(void)state;
	assert_int_equal(split("127.0.0.1:8470", 0, host, &port), 1);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8470);
	assert_int_equal(split("[::1]:1", 0, host, &port), 1);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 1);
	assert_int_equal(split("db.example:5432", HOSTPORT_NAME, host, &port), 1);
	assert_string_equal(host, "db.example");
	assert_int_equal(split("h:65535", 0, host, &port), 1);
	assert_int_equal(port, 65535);
	assert_int_equal(split("*:0", HOSTPORT_PORT_ZERO, host, &port), 1);
	assert_string_equal(host, "*");
	assert_int_equal(port, 0);
	/* Host headers: the port is optional */
	assert_int_equal(split("localhost", HOSTPORT_PORT_OPTIONAL | HOSTPORT_NAME, host, &port), 0);
	assert_string_equal(host, "localhost");
	assert_int_equal(port, 0);
	assert_int_equal(split("[fe80::1]", HOSTPORT_PORT_OPTIONAL, host, &port), 0);
	assert_string_equal(host, "fe80::1");
	/* len bounds the input: no NUL needed */
	assert_int_equal(hostport_split("web:80xyz", 6, 0, host, sizeof(host), &port), 1);
	assert_string_equal(host, "web");
	assert_int_equal(port, 80);
}

static void test_garbage(void **state)
{
	static const char *const bad[] = {
		"", ":", ":80", "h:", "h:0", "h:65536", "h:99999999999", "h:-1", "h:+80", "h: 80",
		"h:80 ", "h:8x", "h:80:", "::1:80", "::1", "[::1]80", "[::1]:", "[::1", "::1]:80",
		"[]:80", "[1.2.3.4]:80", "[zz::1]:80", "[::1]:80]", "[[::1]]:80", "h::80",
	};
	char host[64] = "untouched", big[400];
	uint16_t port = 7;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (split(bad[i], 0, host, &port) != -EINVAL)
			fail_msg("'%s' was taken", bad[i]);
		assert_string_equal(host, "untouched");
		assert_int_equal(port, 7);
	}
	assert_int_equal(split("h", 0, host, &port), -EINVAL); /* the port is required */
	assert_int_equal(split("h:0", HOSTPORT_PORT_OPTIONAL, host, &port), -EINVAL);
	/* names: only what a DNS name or an address is made of */
	assert_int_equal(split("evil.com/x", HOSTPORT_PORT_OPTIONAL | HOSTPORT_NAME, host, &port),
			 -EINVAL);
	assert_int_equal(split("a b", HOSTPORT_PORT_OPTIONAL | HOSTPORT_NAME, host, &port), -EINVAL);
	assert_int_equal(split("user@h:80", HOSTPORT_NAME, host, &port), -EINVAL);
	assert_int_equal(split("*:80", HOSTPORT_NAME, host, &port), -EINVAL);
	/* an embedded NUL, a host longer than the buffer, an input over the bound */
	assert_int_equal(hostport_split("h\0x:80", 6, 0, host, sizeof(host), &port), -EINVAL);
	memset(big, 'a', sizeof(big));
	memcpy(big + 100, ":80", 3);
	assert_int_equal(hostport_split(big, 103, 0, host, sizeof(host), &port), -EINVAL);
	assert_int_equal(hostport_split(big, 103, 0, big + 200, 101, &port), 1);
	assert_int_equal(hostport_split(big, sizeof(big), HOSTPORT_PORT_OPTIONAL, big, 1,
					&port), -EINVAL);
	assert_int_equal(hostport_split(NULL, 0, 0, host, sizeof(host), &port), -EINVAL);
	assert_int_equal(port, 80);
}

static void test_loopback(void **state)
{
	(void)state;
	assert_true(hostport_is_loopback("::1"));
	assert_true(hostport_is_loopback("127.0.0.2"));
	assert_true(hostport_is_loopback("127.255.255.255"));
	assert_true(hostport_is_loopback("LocalHost"));
	assert_false(hostport_is_loopback("0.0.0.0"));
	assert_false(hostport_is_loopback("::"));
	assert_false(hostport_is_loopback("127.example.com"));
	assert_false(hostport_is_loopback("128.0.0.1"));
	assert_false(hostport_is_loopback("10.213.0.1"));
	assert_false(hostport_is_loopback(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_loopback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
