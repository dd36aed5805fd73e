/* Blocking-with-a-deadline socket helpers for code that runs on a thread
 * of its own (probes, the HTTP client): waits bounded by a monotonic
 * deadline, optionally cut short by a cancel flag another thread sets. */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>

#include "lib/timeutil.h"

#define NET_CANCEL_POLL_MS 100 /* how soon a wait notices its cancel flag */

/* Waits until fd has one of events (POLLIN, POLLOUT: what poll() takes).
 * Returns 0, -ETIMEDOUT at the deadline (now_monotonic()), -ECANCELED once
 * *cancel is set (cancel may be NULL; read every NET_CANCEL_POLL_MS), or
 * -errno. */
int net_wait_fd(int fd, short events, usec_t deadline, const bool *cancel);

/* Connects a new non-blocking TCP socket (close-on-exec) to sa, waiting
 * for the handshake as net_wait_fd() does; nodelay turns Nagle off first.
 * Returns 0 and the socket in *ret_fd, or -errno (-ETIMEDOUT, -ECANCELED,
 * the connect's error). */
int net_connect(const struct sockaddr *sa, socklen_t len, bool nodelay, usec_t deadline,
		const bool *cancel, int *ret_fd);
