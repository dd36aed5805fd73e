/* agent/hostguard.h: which Host headers name the API's listener. */
#include "agent/hostguard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The address of host when it is an IP literal: its family, else 0. */
static int ip_literal(const char *host, unsigned char addr[16])
{
	if (inet_pton(AF_INET, host, addr) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, host, addr) == 1)
		return AF_INET6;
	return 0;
}

/* "Name." is "name": a fully qualified name may end in a dot. */
static bool same_name(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la && a[la - 1] == '.')
		la--;
	if (lb && b[lb - 1] == '.')
		lb--;
	return la && la == lb && strncasecmp(a, b, la) == 0;
}

int host_guard_init(struct host_guard *g, const char *listen)
{
	int r;

	*g = (struct host_guard){};
	r = hostport_split(listen, strlen(listen), 0, g->host, sizeof(g->host), &g->port);
	if (r < 0)
		return r;
	g->family = ip_literal(g->host, g->addr);
	g->any_ip = strcmp(g->host, "0.0.0.0") == 0 || strcmp(g->host, "::") == 0;
	if (gethostname(g->hostname, sizeof(g->hostname) - 1) < 0)
		g->hostname[0] = '\0';
	g->hostname[sizeof(g->hostname) - 1] = '\0';
	return 0;
}

bool host_guard_allows(const struct host_guard *g, const char *value, char *const *names)
{
	char host[HOSTPORT_MAX + 1];
	unsigned char addr[16];
	uint16_t port;
	int r, family;

	if (!value)
		return false;
	r = hostport_split(value, strnlen(value, HOSTPORT_MAX + 1),
			   HOSTPORT_PORT_OPTIONAL | HOSTPORT_NAME, host, sizeof(host), &port);
	if (r < 0 || (r > 0 && port != g->port))
		return false;
	family = ip_literal(host, addr);
	if (family) {
		/* The listener's own address, or any when it listens on all of
		 * them (an IP cannot be rebound: only a name can). */
		if (g->any_ip ||
		    (family == g->family && memcmp(addr, g->addr, family == AF_INET ? 4 : 16) == 0))
			return true;
		if (!g->family && same_name(g->host, "localhost") && hostport_is_loopback(host))
			return true;
	} else if (same_name(host, "localhost") || same_name(host, g->hostname) ||
		   (!g->family && same_name(host, g->host))) {
		return true;
	}
	for (char *const *n = names; n && *n; n++)
		if (same_name(host, *n))
			return true;
	return false;
}

bool host_guard_name_valid(const char *name)
{
	char host[HOSTPORT_MAX + 1];
	uint16_t port;

	return hostport_split(name, strlen(name), HOSTPORT_PORT_OPTIONAL | HOSTPORT_NAME, host,
			      sizeof(host), &port) == 0 &&
	       name[0] != '[';
}
