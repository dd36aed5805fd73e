/* Backend state and the health and agent checks, on the control loop:
 * checks decide a backend's health, the operator its admin state, an agent
 * its weight and limits; lb_backend_refresh() folds them into what the
 * workers read (usable, effective weight, maxconn) and reports changes. */
#include <errno.h>
#include <event2/event.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include "lb/internal.h"
#include "lb/report.h"
#include "lib/http-response.h"

#define RAMP_TICK_USEC (100 * USEC_PER_MSEC)

static void notify_workers(struct lb *lb)
{
	for (size_t i = 0; i < lb->n_workers; i++)
		wake_signal(lb->workers[i].notify);
}

int lb_usable_primaries(struct balancer *bal)
{
	unsigned nb = atomic_load(&bal->n_backends);
	int n = 0;

	for (unsigned i = 0; i < nb; i++)
		n += !atomic_load(&bal->backends[i]->backup) &&
		     atomic_load(&bal->backends[i]->usable);
	return n;
}

static const char *backend_state(const struct backend *be)
{
	if (be->removed)
		return "removed";
	if (be->admin == ADMIN_MAINT || be->agent_state == LB_REPORT_MAINT)
		return "maint";
	if (be->held_down[0] || be->health == HEALTH_DOWN || be->agent_state == LB_REPORT_DOWN)
		return "down";
	if (be->admin == ADMIN_DRAIN || be->agent_state == LB_REPORT_DRAIN)
		return "drain";
	return "up";
}

static bool ramping(const struct backend *be, usec_t now)
{
	return be->bal->slow_start && be->up_since && now - be->up_since < be->bal->slow_start;
}

void lb_backend_refresh(struct backend *be, const char *reason)
{
	struct balancer *bal = be->bal;
	struct lb *lb = bal->lb;
	usec_t now = now_monotonic();
	const char *state = backend_state(be);
	bool up = strcmp(state, "up") == 0;
	unsigned eff = 0, mc = (unsigned)be->conf_max_conns;
	bool changed;

	if (up) {
		double w = (double)be->weight * (be->agent_pct >= 0 ? be->agent_pct : 100);

		if (ramping(be, now)) {
			double f = (double)(now - be->up_since) / (double)bal->slow_start;

			w *= f > 0.01 ? f : 0.01;
			if (!event_pending(lb->ramp, EV_TIMEOUT, NULL)) {
				struct timeval tv = lb_tv_of(RAMP_TICK_USEC);

				event_add(lb->ramp, &tv);
			}
		}
		eff = (unsigned)ceil(w);
		if (be->weight == 0 || be->agent_pct == 0)
			eff = 0;
	}
	if (be->agent_maxconn > 0 && (mc == 0 || (unsigned)be->agent_maxconn < mc))
		mc = (unsigned)be->agent_maxconn;
	changed =
		atomic_load(&be->eff_weight) != eff || atomic_load(&be->usable) != (up && eff > 0);
	atomic_store(&be->maxconn, mc);
	atomic_store(&be->eff_weight, eff);
	atomic_store(&be->usable, up && eff > 0);
	if (changed)
		atomic_fetch_add_explicit(&bal->generation, 1, memory_order_release);
	if (strcmp(state, be->state) == 0)
		return;
	if (!strcmp(state, "down") || !strcmp(state, "maint") || !strcmp(state, "removed")) {
		/* Established connections to a dead backend end now, not at
		 * their idle timeout (a removed one keeps them). */
		if (strcmp(state, "removed") != 0) {
			atomic_fetch_add(&be->kill_gen, 1);
			notify_workers(lb);
		}
	}
	if (lb->opts.on_event) {
		struct lb_event ev = {
			.balancer = bal->name,
			.backend = be->name,
			.from = be->state,
			.to = state,
			.reason = reason,
			.backup = atomic_load(&be->backup),
			.usable_primaries = lb_usable_primaries(bal),
		};

		lb->opts.on_event(&ev, lb->opts.userdata);
	}
	be->state = state;
	be->since = now_realtime();
}

void lb_on_ramp(evutil_socket_t fd, short what, void *arg)
{
	struct lb *lb = arg;

	(void)fd;
	(void)what;
	for (size_t b = 0; b < lb->n_balancers; b++) {
		struct balancer *bal = &lb->balancers[b];

		for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++)
			if (bal->backends[i]->up_since)
				lb_backend_refresh(bal->backends[i], "slow start");
	}
}

static void probe_schedule(struct probe *p, usec_t delay);

static void health_result(struct backend *be, bool ok, const char *msg)
{
	struct balancer *bal = be->bal;
	char reason[192];

	snprintf(be->check_msg, sizeof(be->check_msg), "%s", msg);
	be->check_at = now_realtime();
	if (ok) {
		be->fail_run = 0;
		be->ok_run++;
		if (be->health == HEALTH_DOWN && be->ok_run >= bal->health.rise) {
			be->health = HEALTH_UP;
			be->up_since = bal->slow_start ? now_monotonic() : 0;
			snprintf(reason, sizeof(reason), "health check passed %d times: %s",
				 be->ok_run, msg);
			lb_backend_refresh(be, reason);
		}
	} else {
		be->ok_run = 0;
		be->fail_run++;
		if (be->health == HEALTH_UP && be->fail_run >= bal->health.fall) {
			be->health = HEALTH_DOWN;
			be->up_since = 0;
			snprintf(reason, sizeof(reason), "health check failed %d times: %s",
				 be->fail_run, msg);
			lb_backend_refresh(be, reason);
		}
	}
}

static void agent_result(struct backend *be, bool ok, const char *msg,
			 const struct lb_agent_report *rep)
{
	char reason[160];

	if (!ok || !rep) {
		/* HAProxy's rule: an agent that cannot be reached changes nothing. */
		snprintf(be->agent_msg, sizeof(be->agent_msg), "%s", msg);
		return;
	}
	snprintf(be->agent_msg, sizeof(be->agent_msg), "%s", msg);
	if (rep->state >= 0)
		be->agent_state = rep->state == LB_REPORT_UP ? -1 : rep->state;
	if (rep->percent >= 0)
		be->agent_pct = rep->percent;
	if (rep->maxconn >= 0)
		be->agent_maxconn = rep->maxconn;
	snprintf(reason, sizeof(reason), "agent reported '%s'", msg);
	lb_backend_refresh(be, reason);
}

static void probe_finish(struct probe *p, bool ok, const char *msg)
{
	struct backend *be = p->be;
	struct balancer *bal = be->bal;
	usec_t next;

	if (p->io) {
		event_free(p->io);
		p->io = NULL;
	}
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
	if (p->kind == PROBE_AGENT) {
		struct lb_agent_report rep;
		char line[64];
		size_t n = strcspn(p->buf, "\r\n");

		snprintf(line, sizeof(line), "%.*s", (int)n, p->buf);
		if (ok && lb_agent_parse(p->buf, p->len, &rep) == 0)
			agent_result(be, true, line, &rep);
		else
			agent_result(be, false, ok ? "agent sent no known word" : msg, NULL);
		probe_schedule(p, bal->health.interval);
		return;
	}
	health_result(be, ok, msg);
	/* While a state changes, and while down, check at fastinter. */
	if (be->health == HEALTH_DOWN || be->fail_run > 0)
		next = bal->health.fastinter;
	else if (bal->health.kind == LB_CHECK_NONE)
		return; /* passive only: checks run while the backend is down */
	else
		next = bal->health.interval;
	probe_schedule(p, next);
}

/* The status line is all a check reads: lib/http-response parses the
 * first line of the reply (the probe reads up to it), so a check accepts
 * what the HTTP client does. */
static void probe_eval_http(struct probe *p)
{
	struct http_response_parser rp;
	const char *nl = memchr(p->buf, '\n', p->len);
	size_t used;
	int status;
	char msg[96];

	http_response_parser_init(&rp, false, 0, NULL, NULL);
	(void)http_response_parser_feed(&rp, p->buf, nl ? (size_t)(nl - p->buf) + 1 : p->len,
					&used);
	status = rp.status;
	http_response_parser_release(&rp);
	if (!status) {
		probe_finish(p, false, "not an HTTP response");
		return;
	}
	snprintf(msg, sizeof(msg), "HTTP status %d", status);
	probe_finish(p, status == p->be->bal->health.expect_status, msg);
}

static void probe_io(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	struct balancer *bal = p->be->bal;

	if (what & EV_TIMEOUT) {
		probe_finish(p, false, p->connected ? "timed out waiting for a reply"
						    : "connect timed out");
		return;
	}
	if (!p->connected) {
		int err = 0;
		socklen_t len = sizeof(err);
		struct timeval tv = lb_tv_of(bal->health.timeout);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			char msg[96];

			snprintf(msg, sizeof(msg), "connect: %s", strerror(err));
			probe_finish(p, false, msg);
			return;
		}
		p->connected = true;
		if (p->kind == PROBE_HEALTH && bal->health.kind != LB_CHECK_HTTP) {
			probe_finish(p, true, "connected");
			return;
		}
		if (p->kind == PROBE_HEALTH) {
			char req[512];
			int n = snprintf(req, sizeof(req),
					 "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: bcdr-lb\r\n"
					 "Connection: close\r\n\r\n",
					 bal->health.http_path, p->be->address);

			if (n < 0 || (size_t)n >= sizeof(req) ||
			    send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
				probe_finish(p, false, "cannot send the request");
				return;
			}
		}
		event_free(p->io);
		p->io = event_new(bal->lb->base, fd, EV_READ | EV_PERSIST, probe_io, p);
		if (!p->io || event_add(p->io, &tv) < 0) {
			probe_finish(p, false, "out of memory");
			return;
		}
		return;
	}
	for (;;) {
		ssize_t n = recv(fd, p->buf + p->len, sizeof(p->buf) - 1 - p->len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			char msg[96];

			snprintf(msg, sizeof(msg), "read: %s", strerror(errno));
			probe_finish(p, false, msg);
			return;
		}
		p->len += (size_t)n;
		p->buf[p->len] = 0;
		if (n == 0 || memchr(p->buf, '\n', p->len) || p->len == sizeof(p->buf) - 1)
			break;
	}
	if (p->len == 0) {
		probe_finish(p, false, "closed without a reply");
		return;
	}
	if (p->kind == PROBE_HEALTH)
		probe_eval_http(p);
	else
		probe_finish(p, true, "");
}

static void probe_start(evutil_socket_t fd_unused, short what, void *arg)
{
	struct probe *p = arg;
	struct backend *be = p->be;
	struct balancer *bal = be->bal;
	struct sockaddr_storage ss = be->addr;
	struct timeval tv = lb_tv_of(bal->health.timeout);
	int fd;

	(void)fd_unused;
	(void)what;
	if (p->io)
		return;
	if (p->kind == PROBE_AGENT) {
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)bal->agent_port);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)bal->agent_port);
	}
	p->len = 0;
	p->buf[0] = 0;
	p->connected = false;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		probe_finish(p, false, "cannot create a socket");
		return;
	}
	p->fd = fd;
	if (connect(fd, (struct sockaddr *)&ss, be->addrlen) < 0 && errno != EINPROGRESS) {
		char msg[96];

		snprintf(msg, sizeof(msg), "connect: %s", strerror(errno));
		probe_finish(p, false, msg);
		return;
	}
	p->io = event_new(bal->lb->base, fd, EV_WRITE, probe_io, p);
	if (!p->io || event_add(p->io, &tv) < 0)
		probe_finish(p, false, "out of memory");
}

static void probe_schedule(struct probe *p, usec_t delay)
{
	struct timeval tv = lb_tv_of(delay);

	event_add(p->timer, &tv);
}

void lb_probe_free(struct probe *p)
{
	if (!p)
		return;
	if (p->io)
		event_free(p->io);
	if (p->fd >= 0)
		close(p->fd);
	if (p->timer)
		event_free(p->timer);
	free(p);
}

int lb_probe_new(struct backend *be, enum lb_probe_kind kind, struct probe **ret)
{
	struct probe *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->be = be;
	p->kind = kind;
	p->fd = -1;
	p->timer = evtimer_new(be->bal->lb->base, probe_start, p);
	if (!p->timer) {
		free(p);
		return -ENOMEM;
	}
	*ret = p;
	return 0;
}

/* Passive failures reported by the workers: a failed connect counts at once. */
void lb_on_notify(void *arg)
{
	struct lb *lb = arg;

	for (size_t b = 0; b < lb->n_balancers; b++) {
		struct balancer *bal = &lb->balancers[b];

		for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++) {
			struct backend *be = bal->backends[i];
			unsigned n = atomic_exchange(&be->passive_fails, 0);
			char reason[128];

			if (n == 0 || be->health == HEALTH_DOWN || be->removed)
				continue;
			snprintf(reason, sizeof(reason), "connect failed: %s",
				 strerror(atomic_load(&be->last_errno)));
			be->health = HEALTH_DOWN;
			be->ok_run = 0;
			be->fail_run = bal->health.fall;
			be->up_since = 0;
			snprintf(be->check_msg, sizeof(be->check_msg), "%s", reason);
			lb_backend_refresh(be, reason);
			/* Checks now decide when it comes back. */
			if (be->check && !be->check->io) {
				event_del(be->check->timer);
				probe_schedule(be->check, bal->health.fastinter);
			}
		}
	}
}

void lb_backend_start_checks(struct backend *be)
{
	if (be->bal->health.kind != LB_CHECK_NONE)
		probe_schedule(be->check, 0);
	if (be->agent)
		probe_schedule(be->agent, 0);
}
