/* HOST:PORT and Host headers (outside bytes from any HTTP client, and the
 * plan's tcp checks and balancer addresses): hostport_split with every flag
 * combination, the API's host guard, lb_parse_address. The first byte picks
 * the flags; the rest is the value, with no NUL after it for the split. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent/hostguard.h"
#include "lb/config.h"
#include "lib/hostport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct host_guard g4, g6, gany;
	static bool ready;
	char *names[] = { "agent.example.com", "proxy", NULL };
	char host[HOSTPORT_MAX + 1], small[8];
	struct sockaddr_storage ss;
	unsigned flags, len;
	uint16_t port;
	char *copy, *exact;
	int r;

	if (!ready) {
		if (host_guard_init(&g4, "127.0.0.1:8470") < 0 ||
		    host_guard_init(&g6, "[::1]:1") < 0 || host_guard_init(&gany, "0.0.0.0:80") < 0)
			abort();
		ready = true;
	}
	if (size < 1 || size > 4096)
		return 0;
	flags = data[0] & 7;
	data++;
	size--;
	/* exactly size bytes on the heap: a read past the value is caught */
	exact = malloc(size ? size : 1);
	copy = malloc(size + 1);
	if (!exact || !copy)
		abort();
	memcpy(exact, data, size);
	memcpy(copy, data, size);
	copy[size] = '\0';
	r = hostport_split(exact, size, flags, host, sizeof(host), &port);
	if (r >= 0) {
		if (strlen(host) == 0 || strlen(host) > size || (r == 0 && port != 0) ||
		    (r == 0 && !(flags & HOSTPORT_PORT_OPTIONAL)) ||
		    (port == 0 && r == 1 && !(flags & HOSTPORT_PORT_ZERO)))
			abort();
		(void)hostport_is_loopback(host);
	}
	(void)hostport_split(exact, size, flags, small, sizeof(small), &port);
	(void)host_guard_allows(&g4, copy, names);
	(void)host_guard_allows(&g6, copy, NULL);
	(void)host_guard_allows(&gany, copy, names);
	(void)host_guard_name_valid(copy);
	(void)lb_parse_address(copy, &ss, &len);
	free(exact);
	free(copy);
	return 0;
}
