/* The API's guard against DNS rebinding: a web page the operator visits
 * can point a name it owns at 127.0.0.1 and read the API from the
 * browser, which sends that name as the Host header. So every request's
 * Host must name the listener: its IP (any IP for 0.0.0.0 and [::]),
 * localhost, this machine's host name or a name of agent.api_hosts, each
 * with or without the listener's port (docs/api.md). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "lib/hostport.h"

struct host_guard {
	char host[HOSTPORT_MAX + 1]; /* the listener's host, without brackets */
	uint16_t port;
	int family; /* AF_INET, AF_INET6; 0: a name */
	unsigned char addr[16];
	bool any_ip;                     /* 0.0.0.0 or [::]: every IP literal names it */
	char hostname[HOSTPORT_MAX + 1]; /* gethostname(), "" when it failed */
};

/* From agent.listen ("host:port", validated by the plan). */
int host_guard_init(struct host_guard *g, const char *listen);

/* True when value, a Host header (NULL: none; outside input, any bytes),
 * names the listener; names are agent.api_hosts (NULL-terminated, may be
 * NULL). */
bool host_guard_allows(const struct host_guard *g, const char *value, char *const *names);

/* True when name is fit for agent.api_hosts: a host name or an IP, no port. */
bool host_guard_name_valid(const char *name);
