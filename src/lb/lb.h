/* The load balancer engine: the plan's balancers, their listeners, data
 * path, health checks and runtime state. `bcdr lb` runs it alone and
 * `bcdr agent` inside the agent; both call it from one loop thread.
 *
 * Threads: every function here is called from the thread running the
 * event_base given to lb_new() (the "control loop"): health checks, agent
 * reports, state changes, the control socket and events run there. The data
 * path runs on opts->workers threads, each with its own event loop and its
 * own SO_REUSEPORT listener on every address; with workers == 0 it runs on
 * the control loop itself. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lb/config.h"
#include "lib/buf.h"

struct event_base;
struct lb;

/* A backend's state change, for events and alerts. Strings are borrowed
 * for the duration of the callback. */
struct lb_event {
	const char *balancer;
	const char *backend;
	const char *from, *to; /* "up", "down", "drain", "maint" */
	const char *reason;    /* "health check failed: connection refused", ... */
	bool backup;           /* the backend is a backup */
	int usable_primaries;  /* primaries able to take traffic after the change */
};

typedef void (*lb_event_fn)(const struct lb_event *ev, void *userdata);

struct lb_options {
	unsigned workers;   /* data-path threads; 0: run on the given loop */
	lb_event_fn on_event; /* may be NULL; called on the control loop */
	void *userdata;
};

/* Builds the engine for plan (borrowed: copied as needed) on base. Nothing
 * is bound yet. */
int lb_new(const struct lb_plan *plan, struct event_base *base, const struct lb_options *opts,
	   struct lb **ret);
/* Binds every listener (failing with -errno and the address in *ret_error,
 * free() it, when one cannot be bound), starts the workers and the checks. */
int lb_start(struct lb *lb, char **ret_error);
/* Applies a new plan's backends (added, removed, weights, backup flags,
 * addresses) without touching the listeners or established connections.
 * Listener, algorithm or timeout changes need a restart and are reported
 * in *ret_warning (free() it; NULL when none). */
int lb_reload(struct lb *lb, const struct lb_plan *plan, char **ret_warning);
/* Stops accepting, closes every connection, joins the workers. Idempotent;
 * lb_free() calls it. */
void lb_stop(struct lb *lb);
void lb_free(struct lb *lb);

/* [{"name","listen":[..],"algorithm","connections","max_conns","accepted",
 *   "refused","failed","redispatched","backends":[{"name","address","state",
 *   "admin","health","weight","effective_weight","agent":{..},"backup",
 *   "connections","total","bytes_in","bytes_out","connect_errors",
 *   "latency":{"p50_ms","p99_ms",...}}]}]. New reference. */
json_t *lb_status_json(struct lb *lb);

/* Operator's state for a backend: "ready", "drain" (no new connections,
 * established ones continue) or "maint" (no new connections, established
 * ones closed). -BCDR_ERR_NOT_FOUND for an unknown balancer/backend,
 * -EINVAL for an unknown state. */
int lb_set_state(struct lb *lb, const char *balancer, const char *backend, const char *state);
/* New configured weight (0..LB_MAX_WEIGHT). */
int lb_set_weight(struct lb *lb, const char *balancer, const char *backend, unsigned weight);

/* Appends the Prometheus text lines (# HELP/# TYPE and samples, prefixed
 * bcdr_lb_) to out. */
int lb_metrics(struct lb *lb, struct buf *out);

/* Serves the control socket at path (a unix stream socket; one line in,
 * one JSON document out; see lb/control.h). Replaces a stale socket file. */
int lb_control_listen(struct lb *lb, const char *path);

/* What `bcdr lb` and the agent do to host a plan's balancers: lb_new(),
 * lb_start() and, when control_path is set, lb_control_listen(). Returns
 * 0 when everything runs; 1 when the balancers run but the control socket
 * could not be served; -errno when nothing runs (*ret is NULL). Except on
 * 0, *ret_error says what failed (free() it). */
int lb_host(const struct lb_plan *plan, struct event_base *base, const struct lb_options *opts,
	    const char *control_path, struct lb **ret, char **ret_error);
