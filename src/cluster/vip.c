#include "cluster/vip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster/plan.h"
#include "lib/cleanup.h"
#include "lib/err.h"

int vip_address_parse(const char *s, struct vip_address *ret)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	char *end;
	long bits;

	if (!slash || slash == s || (size_t)(slash - s) >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	if (slash[1] < '0' || slash[1] > '9')
		return -EINVAL;
	errno = 0;
	bits = strtol(slash + 1, &end, 10);
	if (*end || errno)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (inet_pton(AF_INET, addr, ret->addr) == 1 && bits >= 1 && bits <= 32)
		ret->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, ret->addr) == 1 && bits >= 1 && bits <= 128)
		ret->family = AF_INET6;
	else
		return -EINVAL;
	ret->prefix = (unsigned)bits;
	return 0;
}

bool vip_interface_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < IFNAMSIZ && !strpbrk(s, "/ \t\n:") && strcmp(s, ".") != 0 &&
	       strcmp(s, "..") != 0;
}

/* ---- rtnetlink ---- */

struct addr_request {
	struct nlmsghdr nh;
	struct ifaddrmsg ifa;
	char attrs[64];
};

static void add_attr(struct addr_request *req, unsigned short type, const void *data, size_t len)
{
	struct rtattr *rta = (struct rtattr *)((char *)req + NLMSG_ALIGN(req->nh.nlmsg_len));

	rta->rta_type = type;
	rta->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	req->nh.nlmsg_len = NLMSG_ALIGN(req->nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

/* One RTM_NEWADDR or RTM_DELADDR, and the kernel's ack: 0 or -errno. */
static int addr_change(int type, const struct vip_address *a, unsigned ifindex)
{
	struct addr_request req = {};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	size_t alen = a->family == AF_INET ? 4 : 16;
	union {
		struct nlmsghdr nh;
		char buf[4096];
	} ack;
	struct timeval tv = { .tv_sec = 2 };
	_cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	ssize_t n;

	if (fd < 0)
		return -errno;
	/* a kernel that never answers is not waited for forever */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	req.nh.nlmsg_type = (unsigned short)type;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	if (type == RTM_NEWADDR)
		req.nh.nlmsg_flags |= NLM_F_CREATE | NLM_F_EXCL;
	req.nh.nlmsg_seq = 1;
	req.ifa.ifa_family = (unsigned char)a->family;
	req.ifa.ifa_prefixlen = (unsigned char)a->prefix;
	req.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
	req.ifa.ifa_index = ifindex;
	/* IPv6: usable at once, not "tentative" for a second of duplicate
	 * detection (the cluster, not DAD, says who holds the address) */
	if (a->family == AF_INET6)
		req.ifa.ifa_flags = IFA_F_NODAD;
	add_attr(&req, IFA_LOCAL, a->addr, alen);
	add_attr(&req, IFA_ADDRESS, a->addr, alen);
	if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	for (;;) {
		n = recv(fd, &ack, sizeof(ack), 0);
		if (n < 0)
			return errno == EAGAIN ? -BCDR_ERR_TIMEOUT : -errno;
		for (struct nlmsghdr *h = &ack.nh; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != 1)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
					return -BCDR_ERR_PROTOCOL;
				return e->error; /* 0: the ack; else -errno */
			}
		}
	}
}

static int interface_index(const struct cluster_vip *v, unsigned *ret, char **ret_error)
{
	unsigned i = if_nametoindex(v->interface);

	if (i == 0)
		return err_fail(ret_error, -ENODEV,
				"vip %s: this host has no interface '%s' (see `ip link`)",
				v->address, v->interface);
	*ret = i;
	return 0;
}

static int parse(const struct cluster_vip *v, struct vip_address *a, char **ret_error)
{
	if (vip_address_parse(v->address, a) < 0)
		return err_fail(ret_error, -EINVAL, "vip '%s' is not ADDRESS/PREFIX", v->address);
	return 0;
}

int vip_add(const struct cluster_vip *v, char **ret_error)
{
	struct vip_address a;
	unsigned ifindex = 0;
	int r = parse(v, &a, ret_error);

	if (r >= 0)
		r = interface_index(v, &ifindex, ret_error);
	if (r < 0)
		return r;
	r = addr_change(RTM_NEWADDR, &a, ifindex);
	if (r < 0 && r != -EEXIST)
		return err_fail(ret_error, r, "adding vip %s to %s: %s", v->address, v->interface,
				err_str(r));
	return vip_announce(v, VIP_GARP_COUNT, ret_error);
}

int vip_remove(const struct cluster_vip *v, char **ret_error)
{
	struct vip_address a;
	unsigned ifindex;
	int r = parse(v, &a, ret_error);

	if (r < 0)
		return r;
	ifindex = if_nametoindex(v->interface);
	if (ifindex == 0)
		return 0; /* the interface went, and the address with it */
	r = addr_change(RTM_DELADDR, &a, ifindex);
	if (r < 0 && r != -EADDRNOTAVAIL)
		return err_fail(ret_error, r, "removing vip %s from %s: %s", v->address,
				v->interface, err_str(r));
	return 0;
}

/* ---- announcing: gratuitous ARP, unsolicited neighbour advertisement ---- */

struct arp_packet {
	uint16_t htype, ptype;
	uint8_t hlen, plen;
	uint16_t op;
	uint8_t sha[ETH_ALEN], spa[4], tha[ETH_ALEN], tpa[4];
} __attribute__((packed));

struct na_packet {
	struct nd_neighbor_advert na;
	struct nd_opt_hdr opt;
	uint8_t mac[ETH_ALEN];
} __attribute__((packed));

/* A socket for the ARP (IPv4) and the packet to send, into *pkt: a
 * request whose sender and target are the address, to the broadcast
 * address; Linux (and most hosts) update an entry they hold for it, and
 * nobody answers. */
static int arp_socket(const struct vip_address *a, unsigned ifindex, const uint8_t *mac,
		      struct arp_packet *p, struct sockaddr_ll *to)
{
	int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));

	if (fd < 0)
		return -errno;
	p->htype = htons(ARPHRD_ETHER);
	p->ptype = htons(ETH_P_IP);
	p->hlen = ETH_ALEN;
	p->plen = 4;
	p->op = htons(ARPOP_REQUEST);
	memcpy(p->sha, mac, ETH_ALEN);
	memcpy(p->spa, a->addr, 4);
	memcpy(p->tpa, a->addr, 4);
	to->sll_family = AF_PACKET;
	to->sll_protocol = htons(ETH_P_ARP);
	to->sll_ifindex = (int)ifindex;
	to->sll_halen = ETH_ALEN;
	memset(to->sll_addr, 0xff, ETH_ALEN);
	return fd;
}

/* IPv6: an unsolicited neighbour advertisement (RFC 4861, 7.2.6) from the
 * address to all nodes, with the override flag and our MAC: a host that
 * holds an entry for the address takes the new MAC. Hop limit 255, or
 * receivers drop it; the kernel fills in the checksum. */
static int na_socket(const struct vip_address *a, unsigned ifindex, const uint8_t *mac,
		     struct na_packet *p, struct sockaddr_in6 *to)
{
	struct sockaddr_in6 from = { .sin6_family = AF_INET6 };
	int hops = 255, idx = (int)ifindex;
	int fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);

	if (fd < 0)
		return -errno;
	memcpy(&from.sin6_addr, a->addr, 16);
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx)) < 0 ||
	    bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	p->na.nd_na_type = ND_NEIGHBOR_ADVERT;
	p->na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE;
	memcpy(&p->na.nd_na_target, a->addr, 16);
	p->opt.nd_opt_type = ND_OPT_TARGET_LINKADDR;
	p->opt.nd_opt_len = 1; /* in 8 bytes: the header and the MAC */
	memcpy(p->mac, mac, ETH_ALEN);
	to->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "ff02::1", &to->sin6_addr);
	to->sin6_scope_id = ifindex;
	return fd;
}

int vip_announce(const struct cluster_vip *v, unsigned n, char **ret_error)
{
	struct vip_address a;
	struct ifreq ifr = {};
	struct arp_packet arp = {};
	struct na_packet na = {};
	struct sockaddr_ll to4 = {};
	struct sockaddr_in6 to6 = {};
	unsigned ifindex = 0;
	_cleanup_close_ int ctl = -1, fd = -1;
	int r;

	if (vip_address_parse(v->address, &a) < 0)
		return err_fail(ret_error, -EINVAL, "vip '%s' is not ADDRESS/PREFIX", v->address);
	r = interface_index(v, &ifindex, ret_error);
	if (r < 0)
		return r;
	ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ctl < 0)
		return err_fail(ret_error, -errno, "vip %s: %s", v->address, strerror(errno));
	strncpy(ifr.ifr_name, v->interface, IFNAMSIZ - 1);
	if (ioctl(ctl, SIOCGIFFLAGS, &ifr) < 0)
		return err_fail(ret_error, -errno, "vip %s: interface %s: %s", v->address,
				v->interface, strerror(errno));
	if (ifr.ifr_flags & (IFF_NOARP | IFF_LOOPBACK))
		return 0;
	if (ioctl(ctl, SIOCGIFHWADDR, &ifr) < 0)
		return err_fail(ret_error, -errno, "vip %s: interface %s: %s", v->address,
				v->interface, strerror(errno));
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
		return 0; /* no Ethernet, no neighbours to tell */
	fd = a.family == AF_INET
		     ? arp_socket(&a, ifindex, (const uint8_t *)ifr.ifr_hwaddr.sa_data, &arp, &to4)
		     : na_socket(&a, ifindex, (const uint8_t *)ifr.ifr_hwaddr.sa_data, &na, &to6);
	if (fd < 0)
		return err_fail(ret_error, fd, "vip %s: no socket to announce it on %s: %s",
				v->address, v->interface, err_str(fd));
	for (unsigned i = 0; i < n; i++) {
		ssize_t k;

		if (i > 0)
			nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000 * 1000 }, NULL);
		k = a.family == AF_INET
			    ? sendto(fd, &arp, sizeof(arp), 0, (struct sockaddr *)&to4, sizeof(to4))
			    : sendto(fd, &na, sizeof(na), 0, (struct sockaddr *)&to6, sizeof(to6));
		if (k < 0)
			return err_fail(ret_error, -errno, "vip %s: announcing it on %s: %s",
					v->address, v->interface, strerror(errno));
	}
	return 0;
}
