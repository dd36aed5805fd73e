#include "cluster/failover-log.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/etcd.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/sql.h"

/* ---- the engine's watch ---- */

void failover_watch_reset(struct failover_watch *w)
{
	*w = (struct failover_watch){ 0 };
}

void failover_watch_held(struct failover_watch *w, int64_t rev)
{
	failover_watch_reset(w);
	w->held_rev = rev;
}

void failover_watch_leaderless(struct failover_watch *w, usec_t now, int64_t rev,
			       const char *last_leader, const char *members_prefix,
			       const struct etcd_kv *kvs, size_t n, bool asked)
{
	size_t plen = strlen(members_prefix);

	w->switchover |= asked;
	if (w->leaderless)
		return;
	w->leaderless = now ? now : 1;
	w->gone_rev = rev;
	snprintf(w->from, sizeof(w->from), "%s", last_leader ? last_leader : "");
	/* its member key is on the same lease as its leader key: both gone in
	 * one look is the lease's end, not a step-down (which keeps the member) */
	w->lease_ended = w->from[0] != 0;
	for (size_t i = 0; i < n && w->lease_ended; i++)
		if (strncmp(kvs[i].key, members_prefix, plen) == 0 &&
		    strcmp(kvs[i].key + plen, w->from) == 0)
			w->lease_ended = false;
}

/* At most this many reads of the history (a binary search over 2^40
 * revisions). */
#define CLASSIFY_MAX_READS 42

void failover_watch_classify(struct failover_watch *w, const char *leader_key,
			     const char *members_prefix, failover_exists_at exists_at,
			     void *userdata)
{
	_cleanup_free_ char *member_key = NULL;
	int64_t lo = w->held_rev, hi = w->gone_rev;
	bool exists;

	if (!w->lease_ended || lo <= 0 || hi <= lo ||
	    asprintf(&member_key, "%s%s", members_prefix, w->from) < 0)
		return;
	/* the key was there at lo and gone at hi: the revision it went */
	for (int i = 0; hi - lo > 1; i++) {
		int64_t mid = lo + (hi - lo) / 2;

		if (i == CLASSIFY_MAX_READS || exists_at(userdata, leader_key, mid, &exists) < 0)
			return;
		if (exists)
			lo = mid;
		else
			hi = mid;
	}
	/* one revision for both keys is the lease's end (etcd deletes a lease's
	 * keys in one); a member key that outlived it, a step-down */
	if (exists_at(userdata, member_key, hi, &exists) == 0)
		w->lease_ended = !exists;
}

struct history_read {
	struct etcd *e;
	usec_t deadline;
};

static int exists_at_etcd(void *userdata, const char *key, int64_t revision, bool *ret)
{
	struct history_read *h = userdata;

	return etcd_exists_at(h->e, key, revision, h->deadline, ret);
}

void failover_watch_classify_etcd(struct failover_watch *w, struct etcd *e,
				  const char *leader_key, const char *members_prefix,
				  usec_t deadline)
{
	struct history_read h = { e, deadline };

	failover_watch_classify(w, leader_key, members_prefix, exists_at_etcd, &h);
}

void failover_watch_created(struct failover_watch *w, usec_t now)
{
	w->created = now;
}

bool failover_watch_done(struct failover_watch *w, usec_t now, const char *service,
			 const char *member, int64_t token, usec_t ttl,
			 struct failover_record *ret)
{
	struct failover_watch x = *w;
	struct failover_record r = { .token = token, .at = now_realtime() };

	failover_watch_reset(w);
	if (!x.leaderless || !x.created || !x.from[0] || x.created < x.leaderless ||
	    now < x.created)
		return false;
	snprintf(r.service, sizeof(r.service), "%s", service);
	snprintf(r.from, sizeof(r.from), "%s", x.from);
	snprintf(r.to, sizeof(r.to), "%s", member);
	r.kind = x.switchover ? FAILOVER_SWITCHOVER : FAILOVER_UNPLANNED;
	r.lease_ended = x.lease_ended;
	r.wait_s = (double)(x.created - x.leaderless) / USEC_PER_SEC;
	r.promote_s = (double)(now - x.created) / USEC_PER_SEC;
	r.ttl_s = (double)ttl / USEC_PER_SEC;
	r.seconds = r.wait_s + r.promote_s + (r.lease_ended ? r.ttl_s : 0);
	*ret = r;
	return true;
}

/* ---- records ---- */

static const char *const kind_names[] = { "failover", "switchover" };

const char *failover_kind_name(int kind)
{
	return kind == FAILOVER_SWITCHOVER ? kind_names[1] : kind_names[0];
}

json_t *failover_record_json(const struct failover_record *r)
{
	json_t *j = json_object();
	char at[64];

	if (!j)
		return NULL;
	json_set_str(j, "service", r->service);
	json_set_str(j, "kind", failover_kind_name(r->kind));
	json_set_str(j, "from", r->from);
	json_set_str(j, "to", r->to);
	json_set_int(j, "fencing_token", (long long)r->token);
	json_set_str(j, "at", time_format_iso(r->at, at, sizeof(at)));
	json_set_int(j, "at_us", (long long)r->at);
	json_set_bool(j, "lease_ended", r->lease_ended);
	json_set_real(j, "wait_s", r->wait_s);
	json_set_real(j, "promote_s", r->promote_s);
	json_set_real(j, "ttl_s", r->ttl_s);
	json_set_real(j, "seconds", r->seconds);
	return j;
}

static bool get_name(const json_t *j, const char *key, char *out, size_t size)
{
	const char *s = json_string_value(json_object_get(j, key));

	if (!s || !cluster_name_valid(s))
		return false;
	snprintf(out, size, "%s", s);
	return true;
}

static bool get_time(const json_t *j, const char *key, double *ret)
{
	const json_t *v = json_object_get(j, key);
	double d = json_number_value(v);

	if (!json_is_number(v) || !isfinite(d) || d < 0 || d > 1e9)
		return false;
	*ret = d;
	return true;
}

int failover_record_from_json(const json_t *j, struct failover_record *ret)
{
	struct failover_record r = { 0 };
	const char *kind = json_string_value(json_object_get(j, "kind"));
	json_int_t at = json_integer_value(json_object_get(j, "at_us"));

	if (!json_is_object(j) || !kind || !get_name(j, "service", r.service, sizeof(r.service)) ||
	    !get_name(j, "from", r.from, sizeof(r.from)) ||
	    !get_name(j, "to", r.to, sizeof(r.to)) || !get_time(j, "wait_s", &r.wait_s) ||
	    !get_time(j, "promote_s", &r.promote_s) || !get_time(j, "ttl_s", &r.ttl_s) ||
	    !get_time(j, "seconds", &r.seconds) || at < 0)
		return -EINVAL;
	if (strcmp(kind, kind_names[0]) == 0)
		r.kind = FAILOVER_UNPLANNED;
	else if (strcmp(kind, kind_names[1]) == 0)
		r.kind = FAILOVER_SWITCHOVER;
	else
		return -EINVAL;
	r.token = json_integer_value(json_object_get(j, "fencing_token"));
	r.at = (usec_t)at;
	r.lease_ended = json_is_true(json_object_get(j, "lease_ended"));
	*ret = r;
	return 0;
}

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double failover_quantile(double *v, size_t n, double q)
{
	size_t rank;

	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	/* nearest rank: the smallest value with at least q of them at or below */
	rank = (size_t)ceil(q * (double)n);
	return v[rank ? rank - 1 : 0];
}

void failover_stats_of(const double *v, size_t n, struct failover_stats *ret)
{
	struct failover_stats s = { n, NAN, NAN, NAN, NAN, NAN };
	_cleanup_free_ double *w = n ? malloc(n * sizeof(*w)) : NULL;
	double sum = 0;

	if (n && w) {
		memcpy(w, v, n * sizeof(*w));
		s.median_s = failover_quantile(w, n, 0.5);
		s.p95_s = failover_quantile(w, n, 0.95);
		s.min_s = w[0];
		s.max_s = w[n - 1];
		for (size_t i = 0; i < n; i++)
			sum += w[i];
		s.mean_s = sum / (double)n;
	} else
		s.count = 0;
	*ret = s;
}

/* ---- the history in state.db ---- */

int failover_log_init(sqlite3 *db)
{
	int rc = sqlite3_exec(db,
			      "CREATE TABLE IF NOT EXISTS cluster_failovers(id INTEGER PRIMARY KEY,"
			      " service TEXT NOT NULL, t_us INTEGER NOT NULL, record TEXT NOT NULL);"
			      "CREATE INDEX IF NOT EXISTS cluster_failovers_service"
			      " ON cluster_failovers(service, id);"
			      "CREATE TABLE IF NOT EXISTS cluster_failover_totals(service TEXT"
			      " PRIMARY KEY, count INTEGER NOT NULL, seconds REAL NOT NULL);",
			      NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sql_error(rc);
}

static int exec_bound(sqlite3 *db, const char *sql, const char *service, const char *text,
		      double d, sqlite3_int64 i)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);

	if (rc != SQLITE_OK)
		return sql_error(rc);
	sqlite3_bind_text(s, 1, service, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(s) >= 2)
		sqlite3_bind_int64(s, 2, i);
	if (sqlite3_bind_parameter_count(s) >= 3) {
		if (text)
			sqlite3_bind_text(s, 3, text, -1, SQLITE_STATIC);
		else
			sqlite3_bind_double(s, 3, d);
	}
	rc = sqlite3_step(s);
	return rc == SQLITE_DONE ? 0 : sql_error(rc);
}

int failover_log_add(sqlite3 *db, const struct failover_record *r, unsigned keep)
{
	_cleanup_json_ json_t *j = failover_record_json(r);
	_cleanup_free_ char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	int rc;

	if (!text)
		return -ENOMEM;
	rc = failover_log_init(db);
	if (rc < 0)
		return rc;
	/* one transaction: the record, the trim and the totals agree */
	if ((rc = sqlite3_exec(db, "SAVEPOINT failover", NULL, NULL, NULL)) != SQLITE_OK)
		return sql_error(rc);
	rc = exec_bound(db, "INSERT INTO cluster_failovers(service, t_us, record) VALUES(?1, ?2, ?3)",
			r->service, text, 0, (sqlite3_int64)r->at);
	if (rc >= 0)
		rc = exec_bound(db, "DELETE FROM cluster_failovers WHERE service = ?1 AND id NOT IN"
				" (SELECT id FROM cluster_failovers WHERE service = ?1"
				" ORDER BY id DESC LIMIT ?2)", r->service, NULL, 0, keep);
	if (rc >= 0)
		rc = exec_bound(db, "INSERT INTO cluster_failover_totals(service, count, seconds)"
				" VALUES(?1, ?2, ?3) ON CONFLICT(service) DO UPDATE SET"
				" count = count + 1, seconds = seconds + excluded.seconds",
				r->service, NULL, r->seconds, 1);
	sqlite3_exec(db, rc >= 0 ? "RELEASE failover" : "ROLLBACK TO failover; RELEASE failover",
		     NULL, NULL, NULL);
	return rc;
}

/* 1 when db has the table, 0 when not, < 0 when db cannot be read (not
 * a database, say). */
static int has_table(sqlite3 *db, const char *name)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND"
				    " name = ?1", -1, &s, NULL);

	if (rc != SQLITE_OK)
		return sql_error(rc);
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sql_error(rc);
}

static void stats_json(json_t *o, const double *v, size_t n)
{
	struct failover_stats st;

	failover_stats_of(v, n, &st);
	json_set_int(o, "count", (long long)st.count);
	json_set_real(o, "median_s", st.median_s);
	json_set_real(o, "p95_s", st.p95_s);
	json_set_real(o, "max_s", st.max_s);
}

/* Adds the summary of every service's "recent" list to its object. */
static int summarize(json_t *doc)
{
	const char *name;
	json_t *o;

	json_object_foreach(doc, name, o) {
		_cleanup_free_ double *v = NULL;
		json_t *by_kind = json_object();
		size_t n = 0;
		int r;

		if (!by_kind)
			return -ENOMEM;
		json_object_set_new(o, "by_kind", by_kind);
		r = failover_log_times(doc, name, -1, &v, &n);
		if (r < 0)
			return r;
		stats_json(o, v, n);
		for (int k = FAILOVER_UNPLANNED; k <= FAILOVER_SWITCHOVER; k++) {
			_cleanup_free_ double *kv = NULL;
			json_t *ko = json_object();
			size_t kn = 0;

			if (!ko || failover_log_times(doc, name, k, &kv, &kn) < 0) {
				json_decref(ko);
				return -ENOMEM;
			}
			stats_json(ko, kv, kn);
			json_object_set_new(by_kind, failover_kind_name(k), ko);
		}
	}
	return 0;
}

static json_t *service_obj(json_t *doc, const char *service)
{
	json_t *o = json_object_get(doc, service);

	if (o)
		return o;
	o = json_pack("{s:[],s:I,s:f}", "recent", "total", (json_int_t)0, "total_seconds", 0.0);
	if (o)
		json_object_set_new(doc, service, o);
	return o;
}

static int read_totals(sqlite3 *db, const char *service, json_t *doc)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, "SELECT service, count, seconds FROM"
				    " cluster_failover_totals WHERE ?1 IS NULL OR service = ?1"
				    " LIMIT 100000", -1, &s, NULL);

	if (rc != SQLITE_OK)
		return sql_error(rc);
	sqlite3_bind_text(s, 1, service, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 0);
		json_t *o;

		if (!name || !cluster_name_valid(name))
			continue;
		if (!(o = service_obj(doc, name)))
			return -ENOMEM;
		json_object_set_new(o, "total", json_integer(sqlite3_column_int64(s, 1)));
		json_object_set_new(o, "total_seconds", json_real(sqlite3_column_double(s, 2)));
	}
	return rc == SQLITE_DONE ? 0 : sql_error(rc);
}

int failover_log_json(sqlite3 *db, const char *service, json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	_cleanup_json_ json_t *doc = json_object();
	int rc;

	if (!doc)
		return -ENOMEM;
	if ((rc = has_table(db, "cluster_failovers")) <= 0 ||
	    (rc = has_table(db, "cluster_failover_totals")) <= 0)
		return rc < 0 ? rc : -BCDR_ERR_NOT_FOUND;
	rc = sqlite3_prepare_v2(db, "SELECT record FROM cluster_failovers"
				" WHERE ?1 IS NULL OR service = ?1 ORDER BY id LIMIT ?2", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sql_error(rc);
	sqlite3_bind_text(s, 1, service, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, FAILOVER_READ_MAX);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(s, 0);
		_cleanup_json_ json_t *j = text ? json_loads(text, 0, NULL) : NULL;
		struct failover_record r;
		json_t *o;

		/* a row that is not a record (a hand-edited file) is skipped */
		if (!j || failover_record_from_json(j, &r) < 0)
			continue;
		if (!(o = service_obj(doc, r.service)))
			return -ENOMEM;
		json_array_append_new(json_object_get(o, "recent"), failover_record_json(&r));
	}
	if (rc != SQLITE_DONE)
		return sql_error(rc);
	rc = read_totals(db, service, doc);
	if (rc >= 0)
		rc = summarize(doc);
	if (rc < 0)
		return rc;
	*ret = TAKE_PTR(doc);
	return 0;
}

int failover_log_read(const char *path, json_t **ret, char **ret_error)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), r;

	*ret = NULL;
	*ret_error = NULL;
	if (rc != SQLITE_OK) {
		r = sql_error(rc);
		if (asprintf(ret_error, "cannot open '%s': %s", path,
			     db ? sqlite3_errmsg(db) : err_str(r)) < 0)
			*ret_error = NULL;
		sqlite3_close(db);
		return r;
	}
	sqlite3_busy_timeout(db, 5000);
	r = failover_log_json(db, NULL, ret);
	if (r == -BCDR_ERR_NOT_FOUND) { /* an agent that never took a service over */
		*ret = json_object();
		r = *ret ? 0 : -ENOMEM;
	} else if (r < 0 &&
		   asprintf(ret_error, "cannot read the failovers in '%s': %s", path,
			    r == -EIO || r == -BCDR_ERR_CORRUPT ? sqlite3_errmsg(db) : err_str(r)) < 0) {
		*ret_error = NULL;
	}
	sqlite3_close(db);
	return r;
}

int failover_log_times(const json_t *doc, const char *service, int kind, double **ret_v,
		       size_t *ret_n)
{
	const json_t *recent = json_object_get(json_object_get(doc, service), "recent");
	_cleanup_free_ double *v = NULL;
	size_t n = 0, i;
	const json_t *e;

	if (recent && !json_is_array(recent))
		return -EINVAL;
	if (json_array_size(recent) > FAILOVER_READ_MAX)
		return -BCDR_ERR_TOO_BIG;
	if (json_array_size(recent) && !(v = calloc(json_array_size(recent), sizeof(*v))))
		return -ENOMEM;
	json_array_foreach(recent, i, e) {
		struct failover_record r;

		if (failover_record_from_json(e, &r) < 0 || strcmp(r.service, service) != 0)
			return -EINVAL;
		if (kind < 0 || r.kind == kind)
			v[n++] = r.seconds;
	}
	*ret_v = n ? TAKE_PTR(v) : NULL;
	*ret_n = n;
	return 0;
}
