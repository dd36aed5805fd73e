/* The alert engine: what the agent feeds with check states, and what decides
 * who is told what and when (Alertmanager's discipline in one process).
 *
 *   alert states   pending -> firing -> resolved, per alert name (a check)
 *   routing        the plan's route tree picks receivers (route.h)
 *   grouping       alerts with equal group_by labels go out together, after
 *                  group_wait, changes after group_interval, an unchanged
 *                  firing group again after repeat_interval (dedup)
 *   silences       matchers on labels with an expiry: matching alerts are
 *                  not notified (stored in SQLite, survive restarts)
 *   ack            an acknowledged alert is not repeated until it changes
 *   queue          every notification is a row in SQLite before it is sent;
 *                  undelivered rows survive a crash and are retried with
 *                  exponential backoff
 *   delivery       one worker thread per receiver, each attempt bounded by
 *                  the receiver's timeout: a hanging receiver delays nothing
 *                  but itself
 *
 * Threads: every function here is called from one thread (the agent's loop
 * thread); the engine's workers hand results back through the event_base
 * (lib/wake) or, without one, through alert_engine_tick().
 *
 * Time is read through opts->now, so tests drive group_wait and friends
 * without sleeping. */
#pragma once

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "alert/route.h"
#include "lib/cleanup.h"
#include "lib/timeutil.h"

struct event_base;
struct alert_engine;

/* What the agent says about one alert (normally one check). */
enum alert_input {
	ALERT_INPUT_OK,      /* the check is fine: a firing alert resolves */
	ALERT_INPUT_PENDING, /* failing but not yet for long enough (`for:`) */
	ALERT_INPUT_FIRING,  /* failing: notify */
};

enum alert_state { ALERT_STATE_INACTIVE, ALERT_STATE_PENDING, ALERT_STATE_FIRING,
		   ALERT_STATE_RESOLVED };

/* A notification attempt finished (on the loop thread). */
struct alert_delivery {
	long long id;          /* queue row */
	const char *receiver;
	const char *group_key;
	const char *status;    /* "firing" or "resolved" */
	unsigned n_alerts;
	unsigned attempt;      /* 1 for the first */
	bool ok;
	bool gave_up;          /* no more retries (max_attempts reached) */
	const char *error;     /* NULL when ok */
	const char *checks;    /* comma-separated alert names in it */
};

struct alert_options {
	sqlite3 *db;              /* borrowed; the engine creates its tables (alert_*) */
	const char *host;         /* the host label's default; NULL: gethostname() */
	const char *external_url; /* NULL: the plan's, else "" */
	/* The clock; NULL: now_realtime(). */
	usec_t (*now)(void *userdata);
	void *now_userdata;
	/* Called on the loop thread after every delivery attempt; may be NULL. */
	void (*on_delivery)(void *userdata, const struct alert_delivery *d);
	void *userdata;
	/* Retries: first after retry_initial (default 10s), doubling up to
	 * retry_max (default 10m); a notification older than give_up (default
	 * 24h) is dropped. */
	usec_t retry_initial, retry_max, give_up;
};

/* Creates the engine for plan (borrowed; must outlive the engine, or be
 * replaced with alert_engine_set_plan()). Creates the tables in opts->db,
 * loads silences, acks and undelivered notifications. No thread runs until
 * alert_engine_start(). */
int alert_engine_new(const struct alert_plan *plan, const struct alert_options *opts,
		     struct alert_engine **ret);
/* Stops the workers (waits at most for their current attempt's timeout)
 * and frees the engine. Undelivered notifications stay in the database. */
void alert_engine_free(struct alert_engine *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct alert_engine *, alert_engine_free)

/* Starts the delivery workers and, with a base, a timer that runs
 * alert_engine_tick() when something is due. base may be NULL (tests):
 * then the caller calls alert_engine_tick(). */
int alert_engine_start(struct alert_engine *e, struct event_base *base);

/* Swaps in a reloaded plan (SIGHUP); alerts and silences are kept, groups
 * are rebuilt from the new routes. */
int alert_engine_set_plan(struct alert_engine *e, const struct alert_plan *plan);

/* Feeds the state of alert name. labels and annotations are NULL-terminated
 * key, value, key, value, ... arrays (borrowed): labels check, host,
 * severity, component; annotations summary, description. Idempotent: the
 * agent may call it after every evaluation; only changes count. alertname
 * is set to name. Returns 1 when the alert's state changed, 0 if not. */
int alert_engine_update(struct alert_engine *e, const char *name, enum alert_input input,
			const char *const *labels, const char *const *annotations);

/* Runs due group flushes, hands due notifications to the workers and
 * applies finished deliveries. Returns the time of the next due work (0:
 * none). The timer of alert_engine_start() calls it; tests call it. */
usec_t alert_engine_tick(struct alert_engine *e);

/* Blocks until the workers are idle and nothing is due now (tests and
 * `bcdr alert test`); at most timeout. Returns 0 or -BCDR_ERR_TIMEOUT. */
int alert_engine_flush(struct alert_engine *e, usec_t timeout);

/* State of one alert (ALERT_STATE_INACTIVE when unknown). */
enum alert_state alert_engine_state(struct alert_engine *e, const char *name);
/* Alerts firing now (and not resolved), silenced or not. */
unsigned alert_engine_firing(struct alert_engine *e);

/* Counters for /metrics. */
struct alert_stats {
	unsigned firing, pending, silenced, silences;
	unsigned long long queued;    /* notifications waiting for delivery */
	unsigned long long delivered; /* since start */
	unsigned long long failed;    /* failed attempts since start */
};
void alert_engine_stats(struct alert_engine *e, struct alert_stats *ret);

/* --- API (new references; the caller json_decref()s them) --- */

/* GET /api/v1/alerts: [{"labels","annotations","state","starts_at","ends_at",
 * "silenced","acked","fingerprint"}], firing and pending first, then the
 * recently resolved. */
json_t *alert_engine_alerts_json(struct alert_engine *e);

/* POST /api/v1/alerts/ack {"check": NAME}: acknowledges the alert of that
 * check; -BCDR_ERR_NOT_FOUND when none is firing. */
int alert_engine_ack(struct alert_engine *e, const char *check);

/* GET /api/v1/silences: [{"id","matchers":{},"comment","created_by",
 * "starts_at","ends_at","active"}], active first. */
json_t *alert_engine_silences_json(struct alert_engine *e);

/* POST /api/v1/silences with the request body (untrusted, at most 64 KiB):
 * {"matchers":{"check":"web"},"duration_s":7200,"comment":"...",
 * "created_by":"..."} (or "ends_at" RFC 3339 instead of duration_s).
 * On success *ret_id is the new silence's id (free() it); on
 * -BCDR_ERR_USAGE *ret_error (free() it) says what is wrong with the body. */
int alert_engine_silence_add_json(struct alert_engine *e, const char *body, size_t len,
				  char **ret_id, char **ret_error);
/* The same, from values: matchers are label, pattern, label, pattern,
 * ..., NULL; duration > 0. */
int alert_engine_silence_add(struct alert_engine *e, const char *const *matchers, usec_t duration,
			     const char *comment, const char *created_by, char **ret_id);
/* DELETE /api/v1/silences/ID: ends it now; -BCDR_ERR_NOT_FOUND if unknown
 * or already expired. */
int alert_engine_silence_expire(struct alert_engine *e, const char *id);

/* --- one-shot delivery, for `bcdr alert test` --- */

/* Sends a test notification (one firing alert "bcdr-test") through
 * receiver now, synchronously; on failure *ret_error (free() it) says why. */
int alert_receiver_test(const struct alert_receiver *receiver, const char *host,
			const char *external_url, char **ret_error);
