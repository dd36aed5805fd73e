#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "cluster/plan.h"
#include "cluster/vip.h"
#include "lib/err.h"

static void test_address_parse(void **state)
{
	static const char *const bad[] = {
		"", "10.0.0.50", "10.0.0.50/", "10.0.0.50/0", "10.0.0.50/33", "10.0.0.50/-1",
		"10.0.0.50/+24", "10.0.0.50/24x", "10.0.0.50/ 24", "/24", "10.0.0/24",
		"10.0.0.256/24", "fd00::50/129", "fd00::50/0", "fd00:::50/64", "eth0/24",
		"10.0.0.50/99999999999999999999", "10.0.0.50//24",
		"1111:2222:3333:4444:5555:6666:7777:8888:9999/64",
	};
	struct vip_address a;

	(void)state;
	assert_int_equal(vip_address_parse("10.0.0.50/24", &a), 0);
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(a.prefix, 24);
	assert_memory_equal(a.addr, "\x0a\x00\x00\x32", 4);
	assert_int_equal(vip_address_parse("10.0.0.50/32", &a), 0);
	assert_int_equal(vip_address_parse("fd00::50/64", &a), 0);
	assert_int_equal(a.family, AF_INET6);
	assert_int_equal(a.prefix, 64);
	assert_int_equal(a.addr[15], 0x50);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vip_address_parse(bad[i], &a), -EINVAL);
}

static void test_interface_valid(void **state)
{
	(void)state;
	assert_true(vip_interface_valid("eth0"));
	assert_true(vip_interface_valid("enp3s0f1.100"));
	assert_true(vip_interface_valid("123456789012345"));
	assert_false(vip_interface_valid("1234567890123456")); /* IFNAMSIZ is 16 */
	assert_false(vip_interface_valid(""));
	assert_false(vip_interface_valid("eth0:1")); /* an alias is not an interface */
	assert_false(vip_interface_valid("a/b"));
	assert_false(vip_interface_valid("eth 0"));
	assert_false(vip_interface_valid(".."));
}

static bool has_address(const char *ifname, const char *ip)
{
	struct ifaddrs *list, *i;
	char buf[INET_ADDRSTRLEN];
	bool found = false;

	assert_int_equal(getifaddrs(&list), 0);
	for (i = list; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && strcmp(i->ifa_name, ifname) == 0 &&
		    inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf,
			      sizeof(buf)) &&
		    strcmp(buf, ip) == 0)
			found = true;
	freeifaddrs(list);
	return found;
}

/* The real rtnetlink calls, in a network namespace of the test's own
 * (root only; skipped elsewhere): its loopback is the interface. */
static void test_add_remove(void **state)
{
	struct cluster_vip v = { .address = "10.213.9.9/32", .interface = "lo" };
	struct cluster_vip none = { .address = "10.213.9.9/32", .interface = "bcdrnone0" };
	char *error = NULL;

	(void)state;
	if (unshare(CLONE_NEWNET) < 0)
		skip();
	assert_int_equal(vip_add(&v, &error), 0);
	assert_true(has_address("lo", "10.213.9.9"));
	assert_int_equal(vip_add(&v, &error), 0); /* already there: added */
	assert_int_equal(vip_remove(&v, &error), 0);
	assert_false(has_address("lo", "10.213.9.9"));
	assert_int_equal(vip_remove(&v, &error), 0); /* already gone: removed */
	assert_null(error);
	assert_int_equal(vip_add(&none, &error), -ENODEV);
	assert_non_null(strstr(error, "no interface 'bcdrnone0'"));
	free(error);
	error = NULL;
	assert_int_equal(vip_remove(&none, &error), 0); /* gone with its interface */
	v.address = "fd00::9/128";
	assert_int_equal(vip_add(&v, &error), 0);
	assert_int_equal(vip_remove(&v, &error), 0);
	assert_null(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_address_parse),
		cmocka_unit_test(test_interface_valid),
		cmocka_unit_test(test_add_remove),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
