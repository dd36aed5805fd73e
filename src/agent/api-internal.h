/* What the API's modules share (api.c routes and answers; api-events.c
 * answers /events and parks its long polls): the server, one request, and
 * the ways to answer it. */
#pragma once

#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>

#include "agent/api.h"
#include "agent/hostguard.h"
#include "agent/query.h"
#include "lib/timeutil.h"

#define EVENTS_DEFAULT_LIMIT 100u
#define EVENTS_MAX_LIMIT 10000u
/* Long polls of /events?after=ID&wait=S: at most this long, this many at
 * once (more are answered at once, as without wait). */
#define EVENTS_WAIT_MAX 60
#define EVENTS_WAITERS_MAX 64u

/* A request for the events after an id, parked until one comes. */
struct waiter {
	struct api *api;
	struct evhttp_request *req;
	struct event *timer;
	long long after;
	char *kind, *check;
	unsigned limit;
};

struct api {
	struct agent *agent;
	struct evhttp *http;
	bool reads_need_token;
	struct host_guard guard;
	/* Open connections, counted from evhttp's new-connection callback to
	 * the connection's close callback. At max_conns, evhttp's listener
	 * pauses and `refuser`, a second listener on the same socket, closes
	 * what it accepts; below it again, they swap back. */
	struct evconnlistener *listener, *refuser;
	size_t n_conns, max_conns;
	struct bufferevent **pending; /* new, until their connection is known */
	size_t n_pending;
	struct event *adopt; /* takes them, once evhttp made it */
	bool closing;        /* in api_free: leave the listeners be */
	struct waiter *waiters[EVENTS_WAITERS_MAX];
	size_t n_waiters;
	struct event *events_added; /* answers the waiters, off the caller's stack */
};

/* One request being answered. */
struct call {
	struct api *api;
	struct agent *agent;
	struct evhttp_request *req;
	enum evhttp_cmd_type method;
	const char *path;  /* below /api/v1, starting with '/' */
	const char *query; /* raw, may be NULL */
};

void api_send_json(struct call *c, int code, json_t *j);
void api_send_empty_list(struct call *c);
void api_send_error(struct call *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Maps an error code to the status it deserves. */
void api_send_errno(struct call *c, int r, const char *what);
/* Parses the query with the allowed keys; answers 400 itself on failure. */
int api_parse_query(struct call *c, const char *const *allowed, struct query *q);
int api_parse_since(struct call *c, const struct query *q, usec_t dflt, usec_t *ret);

/* GET /api/v1/events (api-events.c). */
void api_get_events(struct call *c);
/* The long polls' wake-up (api_events_added()); 0 or -ENOMEM. */
int api_events_init(struct api *api);
/* Answers every parked poll and frees the wake-up. */
void api_events_stop(struct api *api);
