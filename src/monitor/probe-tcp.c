/* tcp: connect (non-blocking, bounded by the deadline), optionally send a
 * line and match the reply; the value is the latency in seconds. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/net.h"
#include "monitor/probes.h"

#define TCP_REPLY_MAX 4096

int probe_tcp(const struct check_def *def, usec_t deadline, struct probe_result *res)
{
	const char *host = def->probe.tcp.host;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	_cleanup_close_ int fd = -1;
	char port[8], reply[TCP_REPLY_MAX + 1], shown[80];
	size_t got = 0;
	usec_t start = now_monotonic();
	double latency;
	int r = -ECONNREFUSED;

	snprintf(port, sizeof(port), "%u", def->probe.tcp.port);
	r = getaddrinfo(host, port, &hints, &ai);
	if (r != 0) {
		probe_fail(res, CHECK_CRITICAL, "cannot resolve '%s': %s", host, gai_strerror(r));
		return 0;
	}
	r = -ECONNREFUSED;
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next)
		r = net_connect(a->ai_addr, a->ai_addrlen, false, deadline, NULL, &fd);
	freeaddrinfo(ai);
	if (fd < 0) {
		probe_fail(res, CHECK_CRITICAL, "cannot connect to %s port %s: %s", host, port,
			   r == -ETIMEDOUT ? "timed out" : strerror(-r));
		return 0;
	}
	if (def->probe.tcp.send) {
		const char *p = def->probe.tcp.send;
		size_t left = strlen(p);

		while (left) {
			ssize_t n = send(fd, p, left, MSG_NOSIGNAL);

			if (n < 0 && errno == EAGAIN)
				r = net_wait_fd(fd, POLLOUT, deadline, NULL);
			else if (n < 0 && errno != EINTR)
				r = -errno;
			else
				r = 0;
			if (r < 0) {
				probe_fail(res, CHECK_CRITICAL, "cannot send to %s port %s: %s", host,
					   port, r == -ETIMEDOUT ? "timed out" : strerror(-r));
				return 0;
			}
			if (n > 0) {
				p += n;
				left -= (size_t)n;
			}
		}
	}
	if (def->probe.tcp.expect) {
		regex_t re;
		bool matched = false;

		if (regcomp(&re, def->probe.tcp.expect, PROBE_REGEX_FLAGS) != 0) {
			probe_fail(res, CHECK_UNKNOWN, "invalid expect regular expression");
			return 0;
		}
		/* Read until the reply matches, the peer closes, the buffer is
		 * full or time is up. */
		while (!matched && got < TCP_REPLY_MAX) {
			ssize_t n = recv(fd, reply + got, TCP_REPLY_MAX - got, 0);

			if (n > 0) {
				got += (size_t)n;
				reply[got] = '\0';
				/* NUL bytes would end the text early: show them as dots. */
				for (size_t i = got - (size_t)n; i < got; i++)
					if (!reply[i])
						reply[i] = '.';
				matched = regexec(&re, reply, 0, NULL, 0) == 0;
				continue;
			}
			if (n == 0)
				break;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				r = -errno;
				break;
			}
			r = net_wait_fd(fd, POLLIN, deadline, NULL);
			if (r < 0)
				break;
		}
		regfree(&re);
		if (!matched) {
			probe_printable(reply, got, shown, sizeof(shown));
			probe_fail(res, CHECK_CRITICAL, "%s port %s: the reply %s'%s' does not match "
				   "'%s'", host, port, r == -ETIMEDOUT ? "(timed out) " : "", shown,
				   def->probe.tcp.expect);
			return 0;
		}
	}
	latency = (double)(now_monotonic() - start) / (double)USEC_PER_SEC;
	probe_set_value(res, latency, "s");
	probe_message(res, "%s port %s answered in %.1fms", host, port, latency * 1000);
	return 0;
}
