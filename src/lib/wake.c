#include "lib/wake.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct wake {
	int fd;
	struct event *ev;
	void (*cb)(void *arg);
	void *arg;
};

static void on_wake(evutil_socket_t fd, short what, void *userdata)
{
	struct wake *w = userdata;
	uint64_t n;

	(void)what;
	/* one read resets the counter, however many signals came */
	if (read(fd, &n, sizeof(n)) < 0)
		(void)0; /* EAGAIN: another callback already took it */
	w->cb(w->arg);
}

int wake_new(struct event_base *base, void (*cb)(void *arg), void *arg, struct wake **ret)
{
	_cleanup_(wake_freep) struct wake *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->cb = cb;
	w->arg = arg;
	w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->fd < 0)
		return -errno;
	w->ev = event_new(base, w->fd, EV_READ | EV_PERSIST, on_wake, w);
	if (!w->ev || event_add(w->ev, NULL) < 0)
		return -ENOMEM;
	*ret = TAKE_PTR(w);
	return 0;
}

void wake_free(struct wake *w)
{
	if (!w)
		return;
	if (w->ev)
		event_free(w->ev);
	if (w->fd >= 0)
		close(w->fd);
	free(w);
}

void wake_signal(struct wake *w)
{
	uint64_t one = 1;

	if (w && write(w->fd, &one, sizeof(one)) < 0)
		(void)0; /* the counter is saturated: the loop is awake anyway */
}
