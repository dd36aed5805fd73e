/* The agent's durable state: <state_dir>/state.db, SQLite in WAL mode.
 *
 * Tables: samples (probe values; raw for a day, then 5-minute averages
 * until the retention), events (state changes, actions, notifications,
 * backups, drills, agent life), incidents (the schema in CONTRACTS.md,
 * read by `bcdr model measured`), check_state (each check's confirmed
 * state, so a restart neither forgets nor re-announces it), predict_state
 * (each check's predictor, so a restart does not start a new probation).
 *
 * Samples are buffered in memory and written in one transaction per flush,
 * so 100 checks a second cost one commit, not a hundred. Every write
 * reports failure (a full or read-only disk) so the agent can say it is
 * degraded; the buffer is bounded and drops the oldest samples. */
#pragma once

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/timeutil.h"

#define STATE_SAMPLE_BUFFER_MAX 100000u
#define STATE_RAW_KEEP USEC_PER_DAY
#define STATE_BUCKET (5 * USEC_PER_MINUTE)

struct state;

/* Creates dir if needed and opens (or creates) dir/state.db. */
int state_open(const char *dir, struct state **ret);
void state_close(struct state *st);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct state *, state_close)

/* The connection, for engines that keep their own tables (alert). */
sqlite3 *state_db(struct state *st);
/* SQLite's message for the last failure, for degraded reasons. */
const char *state_last_error(struct state *st);

/* Appends one event; data (borrowed, may be NULL) is stored as JSON. */
int state_event_add(struct state *st, usec_t t, const char *kind, const char *check,
		    const char *message, const json_t *data, int64_t *ret_id);
/* Events with time >= since (0: all), optional kind/check filters, newest
 * last, at most limit: a new JSON array (the API's shape). */
int state_events_query(struct state *st, usec_t since, const char *kind, const char *check,
		       unsigned limit, json_t **ret);
/* Events with id > after, oldest first, at most limit (for followers). */
int state_events_after(struct state *st, int64_t after, const char *kind, const char *check,
		       unsigned limit, json_t **ret);

/* Buffers one sample (state: 0 ok .. 3 unknown). has_value false: NULL. */
void state_sample_add(struct state *st, const char *check, usec_t t, bool has_value,
		      double value, int status);
/* Writes the buffered samples; on failure they stay buffered. */
int state_flush(struct state *st);
/* Samples of a check since t, oldest first: [{"time","value","state"}]. */
int state_history(struct state *st, const char *check, usec_t since, unsigned limit,
		  json_t **ret);

/* Opens an incident for check unless one is open; closes it. */
int state_incident_open(struct state *st, const char *check, const char *component,
			const char *severity, usec_t t);
int state_incident_close(struct state *st, const char *check, usec_t t);
/* Incidents started or still open since t: [{"id","check","component",
 * "severity","started_at","ended_at","duration_s"}]. */
int state_incidents_query(struct state *st, usec_t since, json_t **ret);

/* The confirmed state of a check, kept across restarts. */
struct state_check {
	int status;      /* 0 ok, 1 warning, 2 critical, 3 unknown */
	usec_t since;
	char message[256];
};
int state_check_save(struct state *st, const char *check, const struct state_check *c);
/* -BCDR_ERR_NOT_FOUND when the check has no saved state. */
int state_check_load(struct state *st, const char *check, struct state_check *ret);

/* A check's predictor, as predict_save() wrote it (opaque bytes here), so a
 * restart does not start its anomaly detector over. load copies at most
 * cap bytes (-EFBIG when the stored one is larger). */
int state_predict_save(struct state *st, const char *check, usec_t t, const void *data,
		       size_t len);
/* -BCDR_ERR_NOT_FOUND when the check has none. */
int state_predict_load(struct state *st, const char *check, void *buf, size_t cap,
		       size_t *ret_len);

/* Downsamples raw samples older than STATE_RAW_KEEP into STATE_BUCKET
 * averages and deletes samples and events older than retention. */
int state_maintain(struct state *st, usec_t now, usec_t retention);

/* Bytes of state.db and its WAL, for /metrics. */
uint64_t state_size(struct state *st);
