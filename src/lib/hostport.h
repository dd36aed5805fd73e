/* HOST:PORT, the one spelling of an endpoint in the plan (agent.listen, a
 * balancer's backends and listeners, a tcp check) and in the Host header
 * the agent's API checks: "host:port", "[v6]:port", the port optional
 * where the caller says so. A Host header is outside input: bounded, no
 * allocation, fuzzed (tests/fuzz/fuzz-hostport.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTPORT_MAX 255 /* longest input taken (a DNS name, ":", a port) */

enum {
	HOSTPORT_PORT_OPTIONAL = 1 << 0, /* "host" alone: *ret_port = 0, returns 0 */
	HOSTPORT_PORT_ZERO = 1 << 1,     /* port 0 is fine (an ephemeral listener) */
	HOSTPORT_NAME = 1 << 2,          /* host is a DNS name or an IP: [A-Za-z0-9._-] */
};

/* Splits the len bytes at s (no NUL needed) into host, without brackets
 * and NUL-terminated in size bytes, and port. A host with a colon must be
 * bracketed, and a bracketed one must be an IPv6 address. Returns 1 when a
 * port was given, 0 when not (HOSTPORT_PORT_OPTIONAL), -EINVAL otherwise;
 * host and *ret_port are written only on success. */
int hostport_split(const char *s, size_t len, unsigned flags, char *host, size_t size,
		   uint16_t *ret_port);

/* True when host (no brackets) is a loopback address: 127.0.0.0/8, ::1,
 * localhost. */
bool hostport_is_loopback(const char *host);
