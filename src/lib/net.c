/* lib/net.h: the deadline-bounded waits and connects of the probes and
 * the HTTP client. */
#include "lib/net.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include "lib/cleanup.h"

static bool cancelled(const bool *cancel)
{
	return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED);
}

int net_wait_fd(int fd, short events, usec_t deadline, const bool *cancel)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		usec_t now = now_monotonic();
		int ms, n;

		if (cancelled(cancel))
			return -ECANCELED;
		if (now >= deadline)
			return -ETIMEDOUT;
		ms = (int)((deadline - now + 999) / 1000);
		if (cancel && ms > NET_CANCEL_POLL_MS)
			ms = NET_CANCEL_POLL_MS;
		n = poll(&p, 1, ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int net_connect(const struct sockaddr *sa, socklen_t len, bool nodelay, usec_t deadline,
		const bool *cancel, int *ret_fd)
{
	_cleanup_close_ int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
					IPPROTO_TCP);
	socklen_t elen = sizeof(int);
	int one = 1, err = 0, r;

	if (fd < 0)
		return -errno;
	if (nodelay)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS)
			return -errno;
		r = net_wait_fd(fd, POLLOUT, deadline, cancel);
		if (r < 0)
			return r;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			return -errno;
		if (err)
			return -err;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}
