#include "agent/state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/settings.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/sql.h"

struct sample {
	char *check;
	usec_t t;
	double value;
	int status;
	bool has_value;
};

struct state {
	sqlite3 *db;
	char *path;
	char error[256];
	struct sample *samples; /* ring buffer */
	size_t head, n, cap;
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS samples(check_name TEXT NOT NULL, t_us INTEGER NOT NULL,"
	" value REAL, state INTEGER NOT NULL, step_s INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS samples_by_check ON samples(check_name, t_us);"
	"CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, t_us INTEGER NOT NULL,"
	" kind TEXT NOT NULL, check_name TEXT, message TEXT, data TEXT);"
	"CREATE INDEX IF NOT EXISTS events_by_time ON events(t_us);"
	"CREATE TABLE IF NOT EXISTS incidents(id INTEGER PRIMARY KEY,"
	" check_name TEXT NOT NULL, component TEXT, severity TEXT,"
	" started_us INTEGER NOT NULL, ended_us INTEGER);"
	"CREATE INDEX IF NOT EXISTS incidents_open ON incidents(check_name, ended_us);"
	"CREATE TABLE IF NOT EXISTS check_state(check_name TEXT PRIMARY KEY,"
	" state INTEGER NOT NULL, since_us INTEGER NOT NULL, message TEXT);"
	"CREATE TABLE IF NOT EXISTS predict_state(check_name TEXT PRIMARY KEY,"
	" t_us INTEGER NOT NULL, data BLOB NOT NULL);";

/* Keeps SQLite's message for the degraded reasons. */
static int fail(struct state *st, int rc)
{
	snprintf(st->error, sizeof(st->error), "%s", sqlite3_errmsg(st->db));
	return sql_error(rc);
}

static int failed(struct state *st, int r)
{
	if (r < 0)
		snprintf(st->error, sizeof(st->error), "%s", sqlite3_errmsg(st->db));
	return r;
}

static int exec(struct state *st, const char *sql)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : fail(st, rc);
}

/* lib/sql's prepare and bind, keeping the message of a failure. */
static int prepare(struct state *st, sqlite3_stmt **ret, const char *sql, const char *types, ...)
{
	va_list ap;
	int r;

	va_start(ap, types);
	r = sql_vprepare(st->db, ret, sql, types, ap);
	va_end(ap);
	return failed(st, r);
}

void state_close(struct state *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++)
		free(st->samples[(st->head + i) % st->cap].check);
	free(st->samples);
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

int state_open(const char *dir, struct state **ret)
{
	_cleanup_(state_closep) struct state *st = calloc(1, sizeof(*st));
	int r, rc;

	if (!st)
		return -ENOMEM;
	r = fs_mkdir_p(dir, 0700);
	if (r < 0)
		return r;
	if (asprintf(&st->path, "%s/" AGENT_STATE_DB, dir) < 0)
		return -ENOMEM;
	rc = sqlite3_open_v2(st->path, &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return st->db ? fail(st, rc) : -ENOMEM;
	sqlite3_busy_timeout(st->db, 2000);
	/* WAL: readers (bcdr model measured) never block the agent; NORMAL
	 * sync: a power cut may lose the last commit, never the database. */
	r = exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-512;");
	if (r < 0)
		return r;
	r = exec(st, schema);
	if (r < 0)
		return r;
	st->cap = 4096;
	st->samples = calloc(st->cap, sizeof(*st->samples));
	if (!st->samples)
		return -ENOMEM;
	*ret = TAKE_PTR(st);
	return 0;
}

sqlite3 *state_db(struct state *st)
{
	return st->db;
}

const char *state_last_error(struct state *st)
{
	return st->error[0] ? st->error : "no error";
}

static int step_done(struct state *st, sqlite3_stmt *s)
{
	return failed(st, sql_step_done(s));
}

int state_event_add(struct state *st, usec_t t, const char *kind, const char *check,
		    const char *message, const json_t *data, int64_t *ret_id)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	_cleanup_free_ char *text = NULL;
	int r;

	if (data && !(text = json_dumps(data, JSON_COMPACT)))
		return -ENOMEM;
	r = prepare(st, &s, "INSERT INTO events(t_us, kind, check_name, message, data)"
		    " VALUES(?,?,?,?,?)", "itttt", (long long)t, kind, check, message, text);
	if (r < 0)
		return r;
	r = step_done(st, s);
	if (r < 0)
		return r;
	if (ret_id)
		*ret_id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

static json_t *time_json(usec_t t)
{
	char when[40];

	return json_string(time_format_iso(t, when, sizeof(when)));
}

/* Rows (id, t_us, kind, check_name, message, data) as the API's array. */
static int events_json(struct state *st, sqlite3_stmt *s, json_t **ret)
{
	_cleanup_json_ json_t *list = json_array();
	int rc;

	if (!list)
		return -ENOMEM;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *e = json_object();
		const char *data = (const char *)sqlite3_column_text(s, 5);
		json_t *dj = data ? json_loads(data, 0, NULL) : NULL;

		if (!e) {
			json_decref(dj);
			return -ENOMEM;
		}
		json_array_append_new(list, e);
		json_set_int(e, "id", sqlite3_column_int64(s, 0));
		json_object_set_new(e, "time", time_json((usec_t)sqlite3_column_int64(s, 1)));
		json_set_str(e, "kind", (const char *)sqlite3_column_text(s, 2));
		json_set_str(e, "check", (const char *)sqlite3_column_text(s, 3));
		json_set_str(e, "message", (const char *)sqlite3_column_text(s, 4));
		json_object_set_new(e, "data", dj ? dj : json_object());
	}
	if (rc != SQLITE_DONE)
		return fail(st, rc);
	*ret = TAKE_PTR(list);
	return 0;
}

/* The events sql selects with ?1 = from, ?2 = kind, ?3 = check, ?4 = limit. */
static int events_select(struct state *st, const char *sql, long long from, const char *kind,
			 const char *check, unsigned limit, json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r = prepare(st, &s, sql, "itti", from, kind, check, (long long)limit);

	return r < 0 ? r : events_json(st, s, ret);
}

int state_events_query(struct state *st, usec_t since, const char *kind, const char *check,
		       unsigned limit, json_t **ret)
{
	/* The newest `limit` events, returned oldest first. */
	return events_select(st, "SELECT * FROM (SELECT id, t_us, kind, check_name, message, data"
			     " FROM events WHERE t_us >= ?1 AND (?2 IS NULL OR kind = ?2)"
			     " AND (?3 IS NULL OR check_name = ?3) ORDER BY id DESC LIMIT ?4)"
			     " ORDER BY id", (long long)since, kind, check, limit, ret);
}

int state_events_after(struct state *st, int64_t after, const char *kind, const char *check,
		       unsigned limit, json_t **ret)
{
	/* The oldest `limit` after the id: a follower misses none. */
	return events_select(st, "SELECT id, t_us, kind, check_name, message, data FROM events"
			     " WHERE id > ?1 AND (?2 IS NULL OR kind = ?2)"
			     " AND (?3 IS NULL OR check_name = ?3) ORDER BY id LIMIT ?4",
			     (long long)after, kind, check, limit, ret);
}

void state_sample_add(struct state *st, const char *check, usec_t t, bool has_value,
		      double value, int status)
{
	struct sample *smp;
	char *name = strdup(check);

	if (!name)
		return;
	if (st->n == st->cap) {
		size_t ncap = st->cap * 2;
		struct sample *ns = NULL;

		if (ncap <= STATE_SAMPLE_BUFFER_MAX)
			ns = calloc(ncap, sizeof(*ns));
		if (ns) {
			for (size_t i = 0; i < st->n; i++)
				ns[i] = st->samples[(st->head + i) % st->cap];
			free(st->samples);
			st->samples = ns;
			st->cap = ncap;
			st->head = 0;
		} else {
			/* Bounded: the oldest sample gives way. */
			free(st->samples[st->head].check);
			st->head = (st->head + 1) % st->cap;
			st->n--;
		}
	}
	smp = &st->samples[(st->head + st->n) % st->cap];
	*smp = (struct sample){ name, t, value, status, has_value };
	st->n++;
}

int state_flush(struct state *st)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r;

	if (st->n == 0)
		return 0;
	r = exec(st, "BEGIN");
	if (r < 0)
		return r;
	r = prepare(st, &s, "INSERT INTO samples(check_name, t_us, value, state) VALUES(?,?,?,?)",
		    NULL);
	for (size_t i = 0; r >= 0 && i < st->n; i++) {
		const struct sample *smp = &st->samples[(st->head + i) % st->cap];

		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, smp->check, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)smp->t);
		if (smp->has_value)
			sqlite3_bind_double(s, 3, smp->value);
		else
			sqlite3_bind_null(s, 3);
		sqlite3_bind_int(s, 4, smp->status);
		r = step_done(st, s);
	}
	if (r >= 0)
		r = exec(st, "COMMIT");
	if (r < 0) {
		char keep[sizeof(st->error)];

		memcpy(keep, st->error, sizeof(keep));
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		memcpy(st->error, keep, sizeof(keep));
		return r;
	}
	for (size_t i = 0; i < st->n; i++)
		free(st->samples[(st->head + i) % st->cap].check);
	st->n = 0;
	st->head = 0;
	return 0;
}

int state_history(struct state *st, const char *check, usec_t since, unsigned limit,
		  json_t **ret)
{
	static const char *const names[] = { "ok", "warning", "critical", "unknown" };
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	_cleanup_json_ json_t *list = json_array();
	int r, rc;

	if (!list)
		return -ENOMEM;
	r = prepare(st, &s, "SELECT * FROM (SELECT t_us, value, state FROM samples"
		    " WHERE check_name = ?1 AND t_us >= ?2 ORDER BY t_us DESC LIMIT ?3)"
		    " ORDER BY t_us", "tii", check, (long long)since, (long long)limit);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *e = json_object();
		int status = sqlite3_column_int(s, 2);

		if (!e)
			return -ENOMEM;
		json_array_append_new(list, e);
		json_object_set_new(e, "time", time_json((usec_t)sqlite3_column_int64(s, 0)));
		if (sqlite3_column_type(s, 1) == SQLITE_NULL)
			json_object_set_new(e, "value", json_null());
		else
			json_set_real(e, "value", sqlite3_column_double(s, 1));
		json_set_str(e, "state", names[status >= 0 && status <= 3 ? status : 3]);
	}
	if (rc != SQLITE_DONE)
		return fail(st, rc);
	/* Samples still in the buffer are history too. */
	for (size_t i = 0; i < st->n; i++) {
		const struct sample *smp = &st->samples[(st->head + i) % st->cap];
		json_t *e;

		if (smp->t < since || strcmp(smp->check, check) != 0)
			continue;
		e = json_object();
		if (!e)
			return -ENOMEM;
		json_array_append_new(list, e);
		json_object_set_new(e, "time", time_json(smp->t));
		if (smp->has_value)
			json_set_real(e, "value", smp->value);
		else
			json_object_set_new(e, "value", json_null());
		json_set_str(e, "state", names[smp->status >= 0 && smp->status <= 3 ? smp->status : 3]);
	}
	while (json_array_size(list) > limit)
		json_array_remove(list, 0);
	*ret = TAKE_PTR(list);
	return 0;
}

int state_incident_open(struct state *st, const char *check, const char *component,
			const char *severity, usec_t t)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r;

	r = prepare(st, &s, "INSERT INTO incidents(check_name, component, severity, started_us)"
		    " SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM incidents"
		    " WHERE check_name = ?1 AND ended_us IS NULL)", "ttti", check, component,
		    severity, (long long)t);
	if (r < 0)
		return r;
	return step_done(st, s);
}

int state_incident_close(struct state *st, const char *check, usec_t t)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r;

	r = prepare(st, &s, "UPDATE incidents SET ended_us = ?2 WHERE check_name = ?1"
		    " AND ended_us IS NULL", "ti", check, (long long)t);
	if (r < 0)
		return r;
	return step_done(st, s);
}

int state_incidents_query(struct state *st, usec_t since, json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	_cleanup_json_ json_t *list = json_array();
	usec_t now = now_realtime();
	int r, rc;

	if (!list)
		return -ENOMEM;
	r = prepare(st, &s, "SELECT id, check_name, component, severity, started_us, ended_us"
		    " FROM incidents WHERE started_us >= ?1 OR ended_us IS NULL"
		    " OR ended_us >= ?1 ORDER BY id LIMIT 10000", "i", (long long)since);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *e = json_object();
		usec_t start = (usec_t)sqlite3_column_int64(s, 4);
		bool open = sqlite3_column_type(s, 5) == SQLITE_NULL;
		usec_t end = open ? now : (usec_t)sqlite3_column_int64(s, 5);

		if (!e)
			return -ENOMEM;
		json_array_append_new(list, e);
		json_set_int(e, "id", sqlite3_column_int64(s, 0));
		json_set_str(e, "check", (const char *)sqlite3_column_text(s, 1));
		json_set_str(e, "component", (const char *)sqlite3_column_text(s, 2));
		json_set_str(e, "severity", (const char *)sqlite3_column_text(s, 3));
		json_object_set_new(e, "started_at", time_json(start));
		json_object_set_new(e, "ended_at", open ? json_null() : time_json(end));
		json_set_real(e, "duration_s", end > start ? (double)(end - start) / 1e6 : 0.0);
	}
	if (rc != SQLITE_DONE)
		return fail(st, rc);
	*ret = TAKE_PTR(list);
	return 0;
}

int state_check_save(struct state *st, const char *check, const struct state_check *c)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r;

	r = prepare(st, &s, "INSERT OR REPLACE INTO check_state(check_name, state, since_us,"
		    " message) VALUES(?,?,?,?)", "tiit", check, (long long)c->status,
		    (long long)c->since, c->message);
	if (r < 0)
		return r;
	return step_done(st, s);
}

/* Steps sql ("... WHERE check_name = ?") to its row for check: 0 with *ret
 * on it, -BCDR_ERR_NOT_FOUND, or a failure. */
static int check_row(struct state *st, sqlite3_stmt **ret, const char *sql, const char *check)
{
	int r = prepare(st, ret, sql, "t", check), rc;

	if (r < 0)
		return r;
	rc = sqlite3_step(*ret);
	if (rc == SQLITE_DONE)
		return -BCDR_ERR_NOT_FOUND;
	return rc == SQLITE_ROW ? 0 : fail(st, rc);
}

int state_check_load(struct state *st, const char *check, struct state_check *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	struct state_check c = {};
	const char *msg;
	int r;

	r = check_row(st, &s, "SELECT state, since_us, message FROM check_state WHERE check_name = ?",
		      check);
	if (r < 0)
		return r;
	c.status = sqlite3_column_int(s, 0);
	if (c.status < 0 || c.status > 3)
		c.status = 3;
	c.since = (usec_t)sqlite3_column_int64(s, 1);
	msg = (const char *)sqlite3_column_text(s, 2);
	snprintf(c.message, sizeof(c.message), "%s", msg ? msg : "");
	*ret = c;
	return 0;
}

int state_predict_save(struct state *st, const char *check, usec_t t, const void *data,
		       size_t len)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int r, rc;

	r = prepare(st, &s, "INSERT OR REPLACE INTO predict_state(check_name, t_us, data)"
		    " VALUES(?,?,?)", "ti", check, (long long)t);
	if (r < 0)
		return r;
	rc = sqlite3_bind_blob(s, 3, data, (int)len, SQLITE_TRANSIENT);
	if (rc != SQLITE_OK)
		return fail(st, rc);
	return step_done(st, s);
}

int state_predict_load(struct state *st, const char *check, void *buf, size_t cap,
		       size_t *ret_len)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	const void *data;
	int r, n;

	r = check_row(st, &s, "SELECT data FROM predict_state WHERE check_name = ?", check);
	if (r < 0)
		return r;
	data = sqlite3_column_blob(s, 0);
	n = sqlite3_column_bytes(s, 0);
	if (n < 0 || (size_t)n > cap)
		return -EFBIG;
	if (n > 0)
		memcpy(buf, data, (size_t)n);
	*ret_len = (size_t)n;
	return 0;
}

int state_maintain(struct state *st, usec_t now, usec_t retention)
{
	_cleanup_stmt_ sqlite3_stmt *agg = NULL, *del = NULL, *old = NULL, *oldev = NULL;
	sqlite3_int64 raw_before = (sqlite3_int64)(now > STATE_RAW_KEEP ? now - STATE_RAW_KEEP : 0);
	sqlite3_int64 keep_after = (sqlite3_int64)(now > retention ? now - retention : 0);
	sqlite3_int64 bucket = (sqlite3_int64)STATE_BUCKET;
	int r;

	r = exec(st, "BEGIN");
	if (r < 0)
		return r;
	/* One row per check and bucket: the mean value and the worst state. */
	r = prepare(st, &agg, "INSERT INTO samples(check_name, t_us, value, state, step_s)"
		    " SELECT check_name, (t_us / ?2) * ?2, avg(value), max(state), ?3"
		    " FROM samples WHERE step_s = 0 AND t_us < (?1 / ?2) * ?2"
		    " GROUP BY check_name, t_us / ?2", "iii", raw_before, bucket,
		    bucket / (sqlite3_int64)USEC_PER_SEC);
	if (r >= 0)
		r = step_done(st, agg);
	if (r >= 0)
		r = prepare(st, &del, "DELETE FROM samples WHERE step_s = 0 AND t_us < (?1 / ?2) * ?2",
			    "ii", raw_before, bucket);
	if (r >= 0)
		r = step_done(st, del);
	if (r >= 0)
		r = prepare(st, &old, "DELETE FROM samples WHERE t_us < ?1", "i", keep_after);
	if (r >= 0)
		r = step_done(st, old);
	if (r >= 0)
		r = prepare(st, &oldev, "DELETE FROM events WHERE t_us < ?1", "i", keep_after);
	if (r >= 0)
		r = step_done(st, oldev);
	if (r >= 0)
		r = exec(st, "COMMIT");
	if (r < 0) {
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	return 0;
}

uint64_t state_size(struct state *st)
{
	char wal[4096];
	struct stat a = {}, b = {};

	stat(st->path, &a);
	snprintf(wal, sizeof(wal), "%s-wal", st->path);
	stat(wal, &b);
	return (uint64_t)a.st_size + (uint64_t)b.st_size;
}
