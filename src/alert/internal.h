/* The alert engine's own structures, shared by its files and by no one
 * else (alert/alert.h is the public face): alert.c holds the alerts, groups,
 * silences and the queue in SQLite; delivery.c the worker threads that
 * deliver the queue's notifications, one per receiver. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "alert/alert.h"
#include "alert/receiver.h"
#include "lib/timeutil.h"
#include "lib/wake.h"

struct event;
struct event_base;
struct silence;

#define MAX_ROUTES_PER_ALERT 16
#define RESOLVED_KEEP USEC_PER_HOUR /* resolved alerts stay visible in the API */
#define TICK_MIN (10 * USEC_PER_MSEC)
#define TICK_MAX USEC_PER_SEC

struct alert {
	char *name;
	json_t *labels;      /* object, with alertname */
	json_t *annotations; /* object */
	enum alert_state state;
	usec_t starts_at, ends_at, pending_since;
	bool acked;
	char fingerprint[17];
};

struct group {
	char *key;
	char *receiver;
	unsigned route_id;
	json_t *group_labels;
	usec_t next_flush;
	/* the notification log: what the receiver was last told */
	json_t *last_firing; /* array of fingerprints, sorted */
	usec_t last_notified;
};

struct job {
	long long id;
	struct alert_receiver receiver; /* a private copy: the plan may be reloaded */
	json_t *message;
	unsigned attempt;
	/* result */
	bool done;
	int r;
	char *error;
};

struct worker {
	struct alert_engine *e;
	char *receiver;
	pthread_t thread;
	bool started;
	struct job *job; /* guarded by e->lock */
};

struct alert_engine {
	const struct alert_plan *plan;
	struct alert_options opts;
	char *host, *external_url;
	sqlite3 *db;

	struct alert **alerts;
	size_t n_alerts;
	struct group **groups;
	size_t n_groups;
	struct silence **silences;
	size_t n_silences;

	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
	struct worker **workers;
	size_t n_workers;
	struct wake *done; /* workers -> loop: a delivery finished */

	struct event_base *base;
	struct event *ev_timer;
	unsigned long long delivered, failed;
};

static inline usec_t alert_now(struct alert_engine *e)
{
	return e->opts.now ? e->opts.now(e->opts.now_userdata) : now_realtime();
}

/* ---- delivery.c (loop thread, but for the workers themselves) ---- */

char *alert_dup_or_null(const char *s);
void alert_job_free(struct job *j);
/* Applies finished deliveries to the queue. */
void alert_collect_results(struct alert_engine *e);
/* Hands each idle worker its receiver's oldest due notification; a group's
 * notifications go out in order. Returns the next retry time (0: none). */
usec_t alert_dispatch(struct alert_engine *e, usec_t t);
