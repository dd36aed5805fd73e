/* A service's virtual IP (docs/cluster.md, "The VIP"): its address added
 * to and removed from an interface of this host with rtnetlink, and
 * announced after adding it (gratuitous ARPs, IPv6 neighbour
 * advertisements) so that the neighbours' caches move to this host at once
 * instead of after their timeout.
 *
 * Netlink rather than running `ip addr`: no fork and exec on the path of
 * a failover, no dependency on iproute2 being installed or on its output,
 * and errors that are errnos (EEXIST, EADDRNOTAVAIL, ENODEV) rather than
 * text. Blocking calls (a few milliseconds; the announcements 20 ms apart): run
 * them on the command thread, never on the loop. */
#pragma once

#include <stdbool.h>

struct cluster_vip;

struct vip_address {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

/* "10.0.0.50/24" or "fd00::50/64" into *ret; -EINVAL when it is not
 * ADDRESS/PREFIX (the prefix within the family's bits). */
int vip_address_parse(const char *s, struct vip_address *ret);
/* Whether s can name an interface: 1..IFNAMSIZ-1 bytes, no '/', ':' or
 * space (whether it exists is the host's, seen when the VIP is added). */
bool vip_interface_valid(const char *s);

/* How many announcements vip_add sends (20 ms apart). */
#define VIP_GARP_COUNT 3

/* Adds the address to the interface (an address already there counts as
 * added: an agent killed while leading leaves it), then announces it.
 * Fails (with a message in *ret_error) when the interface does not exist
 * or the kernel refuses. */
int vip_add(const struct cluster_vip *v, char **ret_error);
/* Removes it; an address already gone counts as removed. */
int vip_remove(const struct cluster_vip *v, char **ret_error);
/* Tells the neighbours that the address is here now, n times, 20 ms
 * apart: IPv4, a gratuitous ARP (an ARP request whose sender and target
 * are the address, from the interface's MAC, to the broadcast address);
 * IPv6, an unsolicited neighbour advertisement with the override flag, to
 * all nodes. Nothing on an interface without ARP (loopback, a tunnel). */
int vip_announce(const struct cluster_vip *v, unsigned n, char **ret_error);
