/* lib/hostport.h: HOST:PORT of the plan and of Host headers. */
#include "lib/hostport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_';
}

/* 1 to 5 digits, nothing else (no sign, no space: strtol takes both). */
static int parse_port(const char *p, size_t n, unsigned flags, uint16_t *ret)
{
	unsigned v = 0;

	if (n == 0 || n > 5)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (v > 65535 || (v == 0 && !(flags & HOSTPORT_PORT_ZERO)))
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

int hostport_split(const char *s, size_t len, unsigned flags, char *host, size_t size,
		   uint16_t *ret_port)
{
	const char *h = s, *rest;
	size_t hlen;
	uint16_t port = 0;
	bool bracket = false;

	if (!s || len == 0 || len > HOSTPORT_MAX || memchr(s, '\0', len))
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (!close)
			return -EINVAL;
		h = s + 1;
		hlen = (size_t)(close - h);
		rest = close + 1;
		bracket = true;
	} else {
		const char *colon = memchr(s, ':', len);

		hlen = colon ? (size_t)(colon - s) : len;
		rest = s + hlen;
	}
	if (hlen == 0 || hlen >= size)
		return -EINVAL;
	if (rest < s + len) {
		if (*rest != ':' ||
		    parse_port(rest + 1, (size_t)(s + len - rest - 1), flags, &port) < 0)
			return -EINVAL;
	} else if (!(flags & HOSTPORT_PORT_OPTIONAL)) {
		return -EINVAL;
	}
	if (bracket) {
		char v6[INET6_ADDRSTRLEN];
		struct in6_addr a;

		if (hlen >= sizeof(v6))
			return -EINVAL;
		memcpy(v6, h, hlen);
		v6[hlen] = '\0';
		if (inet_pton(AF_INET6, v6, &a) != 1)
			return -EINVAL;
	} else if (flags & HOSTPORT_NAME) {
		for (size_t i = 0; i < hlen; i++)
			if (!name_char(h[i]))
				return -EINVAL;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*ret_port = port;
	return rest < s + len;
}

bool hostport_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}
