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
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/ip6.h>
#include <netpacket/packet.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <unistd.h>
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

static void mac_of(const char *ifname, unsigned char *mac)
{
	struct ifreq ifr = {};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	assert_int_equal(ioctl(fd, SIOCGIFHWADDR, &ifr), 0);
	memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	close(fd);
}

/* A packet socket on ifname for one ethertype, 2 s per read. */
static int listen_on(const char *ifname, unsigned short proto)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(proto) };
	struct timeval tv = { .tv_sec = 2 };
	int fd = socket(AF_PACKET, SOCK_DGRAM, htons(proto));

	assert_true(fd >= 0);
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	assert_int_equal(bind(fd, (struct sockaddr *)&sll, sizeof(sll)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	return fd;
}

/* What goes on the wire, seen from the other end of a veth pair in a
 * namespace of the test's own (root only): three gratuitous ARPs for an
 * IPv4 VIP, three unsolicited neighbour advertisements for an IPv6 one. */
static void test_announce_on_the_wire(void **state)
{
	struct cluster_vip v4 = { .address = "10.213.9.9/24", .interface = "va" };
	struct cluster_vip v6 = { .address = "fd00::9/64", .interface = "va" };
	unsigned char mac[ETH_ALEN], buf[1500];
	char *error = NULL;
	int fd, seen = 0;

	(void)state;
	if (unshare(CLONE_NEWNET) < 0 ||
	    system("ip link add name va type veth peer name vb && ip link set va up && "
		   "ip link set vb up") != 0)
		skip();
	mac_of("va", mac);

	fd = listen_on("vb", ETH_P_ARP);
	assert_int_equal(vip_add(&v4, &error), 0);
	while (seen < VIP_GARP_COUNT) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		assert_true(n >= 28); /* three, within 2 s each */
		/* Ethernet/IPv4, 6/4, request; sender = target = the VIP */
		assert_memory_equal(buf, "\x00\x01\x08\x00\x06\x04\x00\x01", 8);
		assert_memory_equal(buf + 8, mac, ETH_ALEN);
		assert_memory_equal(buf + 14, "\x0a\xd5\x09\x09", 4);
		assert_memory_equal(buf + 24, "\x0a\xd5\x09\x09", 4);
		seen++;
	}
	close(fd);

	fd = listen_on("vb", ETH_P_IPV6);
	assert_int_equal(vip_add(&v6, &error), 0);
	assert_null(error);
	for (seen = 0; seen < VIP_GARP_COUNT;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		const struct ip6_hdr *ip = (const void *)buf;
		const struct nd_neighbor_advert *na = (const void *)(buf + sizeof(*ip));
		struct in6_addr vip, all;

		assert_true(n > 0);
		inet_pton(AF_INET6, "fd00::9", &vip);
		inet_pton(AF_INET6, "ff02::1", &all);
		if ((size_t)n < sizeof(*ip) + sizeof(*na) + 8 || ip->ip6_nxt != IPPROTO_ICMPV6 ||
		    na->nd_na_type != ND_NEIGHBOR_ADVERT)
			continue; /* the kernel's own: MLD, router solicitations */
		assert_int_equal(ip->ip6_hlim, 255);
		assert_memory_equal(&ip->ip6_src, &vip, 16);
		assert_memory_equal(&ip->ip6_dst, &all, 16);
		assert_true(na->nd_na_flags_reserved & ND_NA_FLAG_OVERRIDE);
		assert_false(na->nd_na_flags_reserved & ND_NA_FLAG_SOLICITED);
		assert_memory_equal(&na->nd_na_target, &vip, 16);
		/* the target link-layer address option: type 2, 8 bytes, our MAC */
		assert_int_equal(buf[sizeof(*ip) + sizeof(*na)], ND_OPT_TARGET_LINKADDR);
		assert_int_equal(buf[sizeof(*ip) + sizeof(*na) + 1], 1);
		assert_memory_equal(buf + sizeof(*ip) + sizeof(*na) + 2, mac, ETH_ALEN);
		seen++;
	}
	close(fd);
	assert_int_equal(vip_remove(&v4, &error), 0);
	assert_int_equal(vip_remove(&v6, &error), 0);
	assert_null(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_address_parse),
		cmocka_unit_test(test_interface_valid),
		cmocka_unit_test(test_add_remove),
		cmocka_unit_test(test_announce_on_the_wire),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
