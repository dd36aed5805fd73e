#include "agent/api-internal.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "agent/daemon.h"
#include "agent/state.h"
#include "lib/cleanup.h"
#include "lib/json.h"

static int parse_limit(struct call *c, const struct query *q, unsigned *ret)
{
	const char *s = query_get(q, "limit");
	char *end;
	unsigned long v;

	if (!s) {
		*ret = EVENTS_DEFAULT_LIMIT;
		return 0;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v < 1 || v > EVENTS_MAX_LIMIT || s[0] == '-') {
		api_send_error(c, 400, "invalid limit '%.32s': a number from 1 to %u", s,
			       EVENTS_MAX_LIMIT);
		return -EINVAL;
	}
	*ret = (unsigned)v;
	return 0;
}

static void waiter_free(struct waiter *w)
{
	if (!w)
		return;
	if (w->timer)
		event_free(w->timer);
	free(w->kind);
	free(w->check);
	free(w);
}

/* Answers w with the events after its id (an empty list at its deadline)
 * and drops it. On a connection the client closed meanwhile, libevent
 * frees the request instead of sending. */
static void waiter_answer(struct waiter *w)
{
	struct api *api = w->api;
	struct call c = { .api = api, .agent = api->agent, .req = w->req };
	_cleanup_json_ json_t *list = NULL;

	for (size_t i = 0; i < api->n_waiters; i++)
		if (api->waiters[i] == w) {
			api->waiters[i] = api->waiters[--api->n_waiters];
			break;
		}
	if (api->agent->state && state_events_after(api->agent->state, w->after, w->kind, w->check,
						    w->limit, &list) >= 0)
		api_send_json(&c, 200, list);
	else
		api_send_empty_list(&c);
	waiter_free(w);
}

static void on_waiter_timeout(evutil_socket_t fd, short what, void *userdata)
{
	(void)fd;
	(void)what;
	waiter_answer(userdata);
}

/* New events: every waiter whose query now has some is answered. */
static void on_events_added(evutil_socket_t fd, short what, void *userdata)
{
	struct api *api = userdata;

	(void)fd;
	(void)what;
	for (size_t i = api->n_waiters; i-- > 0;) {
		struct waiter *w = api->waiters[i];
		_cleanup_json_ json_t *list = NULL;

		if (!api->agent->state ||
		    state_events_after(api->agent->state, w->after, w->kind, w->check, 1, &list) <
			    0 ||
		    json_array_size(list) > 0)
			waiter_answer(w);
	}
}

void api_events_added(struct api *api)
{
	if (api && api->n_waiters && api->events_added)
		event_active(api->events_added, EV_TIMEOUT, 0);
}

/* Parks c until an event after `after` comes or wait seconds pass; false
 * when it cannot (too many waiting): the caller answers now. */
static bool waiter_park(struct call *c, long long after, const char *kind, const char *check,
			unsigned limit, unsigned wait)
{
	struct api *api = c->api;
	struct evhttp_connection *evcon = evhttp_request_get_connection(c->req);
	struct timeval tv = { (time_t)wait, 0 };
	struct waiter *w;

	if (api->n_waiters >= EVENTS_WAITERS_MAX || !api->events_added)
		return false;
	w = calloc(1, sizeof(*w));
	if (!w)
		return false;
	w->api = api;
	w->req = c->req;
	w->after = after;
	w->limit = limit;
	w->timer = evtimer_new(api->agent->base, on_waiter_timeout, w);
	if (!w->timer || (kind && !(w->kind = strdup(kind))) ||
	    (check && !(w->check = strdup(check))) || event_add(w->timer, &tv) < 0) {
		waiter_free(w);
		return false;
	}
	/* The connection's own timeout (10 s) must not end the wait first. */
	if (evcon)
		evhttp_connection_set_timeout(evcon, (int)wait + 10);
	api->waiters[api->n_waiters++] = w;
	return true;
}

static int parse_wait(struct call *c, const struct query *q, bool after, unsigned *ret)
{
	const char *s = query_get(q, "wait");
	char *end;
	unsigned long v;

	*ret = 0;
	if (!s)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v > EVENTS_WAIT_MAX || s[0] == '-') {
		api_send_error(c, 400, "invalid wait '%.32s': seconds from 0 to %d", s,
			       EVENTS_WAIT_MAX);
		return -EINVAL;
	}
	if (!after) {
		api_send_error(c, 400, "wait needs after: it waits for the events after an id");
		return -EINVAL;
	}
	*ret = (unsigned)v;
	return 0;
}

void api_get_events(struct call *c)
{
	static const char *const allowed[] = { "since", "kind", "check", "limit",
					       "after", "wait", NULL };
	static const char *const kinds[] = { "state",   "flapping", "action", "notification",
					     "backup",  "copy",     "drill",  "lb",
					     "cluster", "agent",    NULL };
	_cleanup_(query_release) struct query q = {};
	_cleanup_json_ json_t *list = NULL;
	const char *kind, *after;
	long long after_id = 0;
	unsigned limit, wait;
	usec_t since;
	bool known = false;
	int r;

	if (api_parse_query(c, allowed, &q) < 0 || api_parse_since(c, &q, 0, &since) < 0 ||
	    parse_limit(c, &q, &limit) < 0)
		return;
	/* after=ID: the oldest events past ID (what `bcdr events --follow` polls) */
	after = query_get(&q, "after");
	if (after) {
		char *end;

		errno = 0;
		after_id = strtoll(after, &end, 10);
		if (errno || *end || end == after || after_id < 0) {
			api_send_error(c, 400, "invalid after '%.32s': an event id (0 or more)",
				       after);
			return;
		}
		if (query_get(&q, "since")) {
			api_send_error(c, 400, "since and after exclude each other");
			return;
		}
	}
	if (parse_wait(c, &q, after != NULL, &wait) < 0)
		return;
	kind = query_get(&q, "kind");
	for (const char *const *k = kinds; kind && *k; k++)
		known = known || strcmp(*k, kind) == 0;
	if (kind && !known) {
		api_send_error(c, 400,
			       "invalid kind '%.32s': state, flapping, action, notification, "
			       "backup, copy, drill, lb, cluster or agent",
			       kind);
		return;
	}
	if (!c->agent->state) {
		api_send_error(c, 503, "the state database is unavailable: %s",
			       c->agent->state_error);
		return;
	}
	if (after)
		r = state_events_after(c->agent->state, after_id, kind, query_get(&q, "check"),
				       limit, &list);
	else
		r = state_events_query(c->agent->state, since, kind, query_get(&q, "check"), limit,
				       &list);
	if (r < 0) {
		api_send_errno(c, r, "cannot read the events");
		return;
	}
	/* wait=S: nothing yet, answer when something comes (a long poll) */
	if (wait && json_array_size(list) == 0 && c->method == EVHTTP_REQ_GET &&
	    waiter_park(c, after_id, kind, query_get(&q, "check"), limit, wait))
		return;
	api_send_json(c, 200, list);
}

int api_events_init(struct api *api)
{
	api->events_added = event_new(api->agent->base, -1, 0, on_events_added, api);
	return api->events_added ? 0 : -ENOMEM;
}

void api_events_stop(struct api *api)
{
	while (api->n_waiters)
		waiter_answer(api->waiters[0]);
	if (api->events_added)
		event_free(api->events_added);
	api->events_added = NULL;
}
