#include "lb/control.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lb/lb.h"
#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"

struct lb_control {
	struct evconnlistener *listener;
	struct lb *lb;
	char *path;
};

static bool copy_word(char *dst, size_t size, const char *src, size_t len)
{
	if (len == 0 || len >= size)
		return false;
	memcpy(dst, src, len);
	dst[len] = 0;
	return true;
}

int lb_control_parse(const char *line, size_t len, struct lb_control_request *ret,
		     const char **ret_error)
{
	struct lb_control_request req = {};
	const char *words[4];
	size_t lens[4], n = 0, i = 0;
	const char *slash;

	if (len > LB_CONTROL_MAX_LINE) {
		*ret_error = "request too long";
		return -EINVAL;
	}
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	while (i < len) {
		while (i < len && line[i] == ' ')
			i++;
		if (i == len)
			break;
		if (n == 4) {
			*ret_error = "too many words";
			return -EINVAL;
		}
		words[n] = line + i;
		while (i < len && line[i] != ' ') {
			if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) {
				*ret_error = "control characters in the request";
				return -EINVAL;
			}
			i++;
		}
		lens[n] = (size_t)(line + i - words[n]);
		n++;
	}
	if (n == 1 && lens[0] == 6 && memcmp(words[0], "status", 6) == 0) {
		req.op = LB_CONTROL_STATUS;
		*ret = req;
		return 0;
	}
	if (n < 3 || lens[0] != 3 || memcmp(words[0], "set", 3) != 0) {
		*ret_error = "expected 'status' or 'set BALANCER/BACKEND ready|drain|maint|weight N'";
		return -EINVAL;
	}
	slash = memchr(words[1], '/', lens[1]);
	if (!slash || !copy_word(req.balancer, sizeof(req.balancer), words[1],
				 (size_t)(slash - words[1])) ||
	    !copy_word(req.backend, sizeof(req.backend), slash + 1,
		       lens[1] - (size_t)(slash + 1 - words[1]))) {
		*ret_error = "name the backend as BALANCER/BACKEND";
		return -EINVAL;
	}
	if (n == 3) {
		if (!copy_word(req.state, sizeof(req.state), words[2], lens[2]) ||
		    (strcmp(req.state, "ready") && strcmp(req.state, "drain") &&
		     strcmp(req.state, "maint"))) {
			*ret_error = "the state is one of ready, drain, maint";
			return -EINVAL;
		}
		req.op = LB_CONTROL_SET_STATE;
		*ret = req;
		return 0;
	}
	if (n == 4 && lens[2] == 6 && memcmp(words[2], "weight", 6) == 0) {
		char num[16], *end;
		unsigned long v;

		if (!copy_word(num, sizeof(num), words[3], lens[3]) || num[0] < '0' || num[0] > '9') {
			*ret_error = "the weight is a number from 0 to 1000";
			return -EINVAL;
		}
		errno = 0;
		v = strtoul(num, &end, 10);
		if (errno || *end || v > LB_MAX_WEIGHT) {
			*ret_error = "the weight is a number from 0 to 1000";
			return -EINVAL;
		}
		req.op = LB_CONTROL_SET_WEIGHT;
		req.weight = (unsigned)v;
		*ret = req;
		return 0;
	}
	*ret_error = "expected 'set BALANCER/BACKEND ready|drain|maint|weight N'";
	return -EINVAL;
}

static json_t *handle(struct lb *lb, const char *line, size_t len)
{
	struct lb_control_request req;
	const char *error = NULL;
	json_t *reply = json_object();
	int r = lb_control_parse(line, len, &req, &error);

	if (!reply)
		return NULL;
	if (r >= 0 && req.op == LB_CONTROL_STATUS) {
		json_set_bool(reply, "ok", 1);
		json_object_set_new(reply, "balancers", lb_status_json(lb));
		return reply;
	}
	if (r >= 0 && req.op == LB_CONTROL_SET_STATE)
		r = lb_set_state(lb, req.balancer, req.backend, req.state);
	else if (r >= 0)
		r = lb_set_weight(lb, req.balancer, req.backend, req.weight);
	if (r == -BCDR_ERR_NOT_FOUND)
		error = "no such balancer/backend";
	else if (r < 0 && !error)
		error = err_str(r);
	json_set_bool(reply, "ok", r >= 0);
	if (r < 0)
		json_set_str(reply, "error", error);
	return reply;
}

static void on_written(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct lb_control *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);

	if (!line) {
		if (evbuffer_get_length(in) > LB_CONTROL_MAX_LINE)
			bufferevent_free(bev);
		return;
	}
	_cleanup_json_ json_t *reply = handle(c->lb, line, len);
	char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;

	free(line);
	bufferevent_disable(bev, EV_READ);
	if (!text || bufferevent_write(bev, text, strlen(text)) < 0 ||
	    bufferevent_write(bev, "\n", 1) < 0) {
		free(text);
		bufferevent_free(bev);
		return;
	}
	free(text);
	bufferevent_setcb(bev, NULL, on_written, on_event, c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	struct lb_control *c = arg;
	struct bufferevent *bev =
		bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
	struct timeval tv = { 5, 0 };

	(void)sa;
	(void)len;
	if (!bev) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, on_read, NULL, on_event, c);
	bufferevent_setwatermark(bev, EV_READ, 0, LB_CONTROL_MAX_LINE + 2);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ);
}

void lb_control_free(struct lb_control *c)
{
	if (!c)
		return;
	if (c->listener) {
		evconnlistener_free(c->listener);
		unlink(c->path);
	}
	free(c->path);
	free(c);
}

static int fill_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

/* Binds and listens under a temporary name, then renames it into place:
 * whoever sees the socket file can connect at once, and only its owner
 * ever can (it changes backends). Returns the listening fd. */
static int listen_unix(const char *path)
{
	struct sockaddr_un sun;
	char tmp[sizeof(sun.sun_path)];
	int fd, r;

	if (snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	r = fill_addr(tmp, &sun);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(tmp);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(tmp, 0600) < 0 ||
	    listen(fd, 16) < 0 || rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		close(fd);
		return r;
	}
	return fd;
}

int lb_control_new(struct event_base *base, const char *path, struct lb *lb,
		   struct lb_control **ret)
{
	struct sockaddr_un sun;
	struct lb_control *c;
	_cleanup_free_ char *dir = NULL;
	char *slash;
	int r = fill_addr(path, &sun), fd;

	if (r < 0)
		return r;
	/* A socket file left by a process that died is replaced (the rename in
	 * listen_unix); one that answers belongs to a running balancer. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	fd = listen_unix(path);
	if (fd < 0)
		return fd;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(path))) {
		free(c);
		unlink(path);
		close(fd);
		return -ENOMEM;
	}
	c->lb = lb;
	c->listener = evconnlistener_new(base, on_accept, c,
					  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (!c->listener) {
		r = errno ? -errno : -ENOMEM;
		unlink(path);
		close(fd);
		free(c->path);
		free(c);
		return r;
	}
	*ret = c;
	return 0;
}

int lb_control_request(const char *path, const char *line, usec_t timeout, char **ret_reply)
{
	struct sockaddr_un sun;
	_cleanup_close_ int fd = -1;
	struct buf reply;
	usec_t deadline = now_monotonic() + timeout;
	size_t len = strlen(line);
	int r = fill_addr(path, &sun);

	if (r < 0)
		return r;
	if (len > LB_CONTROL_MAX_LINE)
		return -BCDR_ERR_TOO_BIG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return -errno;
	if (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len || send(fd, "\n", 1, MSG_NOSIGNAL) != 1)
		return -EIO;
	buf_init(&reply, LB_CONTROL_MAX_REPLY);
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		usec_t now = now_monotonic();
		char chunk[16384];
		ssize_t n;

		if (now >= deadline) {
			r = -BCDR_ERR_TIMEOUT;
			break;
		}
		r = poll(&p, 1, (int)((deadline - now) / USEC_PER_MSEC) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			r = r < 0 ? -errno : -BCDR_ERR_TIMEOUT;
			break;
		}
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0) {
			r = reply.len ? 0 : -BCDR_ERR_PROTOCOL;
			break;
		}
		r = buf_append(&reply, chunk, (size_t)n);
		if (r < 0)
			break;
	}
	if (r < 0) {
		buf_release(&reply);
		return r;
	}
	*ret_reply = buf_steal(&reply, NULL);
	return 0;
}
