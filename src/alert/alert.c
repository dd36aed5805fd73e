/* The alert engine (alert/alert.h): alerts, grouping, silences, the
 * notification queue in SQLite, and the engine's life; the delivery
 * workers are in alert/delivery.c, the shared structures in
 * alert/internal.h. */
#include "alert/alert.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "alert/internal.h"
#include "alert/receiver.h"
#include "alert/silence.h"
#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/sql.h"
#include "lib/strv.h"

/* ---- SQLite ---- */

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS alert_queue ("
	" id INTEGER PRIMARY KEY, receiver TEXT NOT NULL, group_key TEXT NOT NULL,"
	" status TEXT NOT NULL, checks TEXT NOT NULL, n_alerts INTEGER NOT NULL,"
	" payload TEXT NOT NULL, created_us INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
	" next_us INTEGER NOT NULL, delivered_us INTEGER, gave_up INTEGER NOT NULL DEFAULT 0,"
	" error TEXT);"
	"CREATE INDEX IF NOT EXISTS alert_queue_due ON alert_queue(receiver, delivered_us, gave_up);"
	"CREATE TABLE IF NOT EXISTS alert_alerts ("
	" name TEXT PRIMARY KEY, labels TEXT NOT NULL, annotations TEXT NOT NULL,"
	" state INTEGER NOT NULL, starts_us INTEGER, ends_us INTEGER, pending_us INTEGER,"
	" acked INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS alert_nflog ("
	" group_key TEXT PRIMARY KEY, receiver TEXT NOT NULL, firing TEXT NOT NULL,"
	" notified_us INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS alert_silences ("
	" id TEXT PRIMARY KEY, matchers TEXT NOT NULL, comment TEXT, created_by TEXT,"
	" starts_us INTEGER NOT NULL, ends_us INTEGER NOT NULL);";

static char *json_text(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

static int save_alert(struct alert_engine *e, const struct alert *a)
{
	_cleanup_free_ char *labels = json_text(a->labels), *ann = json_text(a->annotations);

	if (!labels || !ann)
		return -ENOMEM;
	return sql_exec(e->db,
			"INSERT OR REPLACE INTO alert_alerts(name, labels, annotations, state,"
			" starts_us, ends_us, pending_us, acked) VALUES (?,?,?,?,?,?,?,?)",
			"tttiiiii", a->name, labels, ann, (long long)a->state,
			(long long)a->starts_at, (long long)a->ends_at,
			(long long)a->pending_since, (long long)a->acked);
}

static int save_group(struct alert_engine *e, const struct group *g)
{
	_cleanup_free_ char *firing = json_text(g->last_firing);

	if (!firing)
		return -ENOMEM;
	return sql_exec(e->db,
			"INSERT OR REPLACE INTO alert_nflog(group_key, receiver, firing, notified_us)"
			" VALUES (?,?,?,?)",
			"ttti", g->key, g->receiver, firing, (long long)g->last_notified);
}

/* ---- alerts ---- */

static void alert_free(struct alert *a)
{
	if (!a)
		return;
	free(a->name);
	json_decref(a->labels);
	json_decref(a->annotations);
	free(a);
}

static struct alert *alert_find(struct alert_engine *e, const char *name)
{
	for (size_t i = 0; i < e->n_alerts; i++)
		if (strcmp(e->alerts[i]->name, name) == 0)
			return e->alerts[i];
	return NULL;
}

static void fingerprint(const json_t *labels, char out[17])
{
	_cleanup_free_ char *text = json_text(labels);
	uint64_t h = 14695981039346656037ULL;

	for (const char *p = text ? text : ""; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ULL;
	}
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static const char *alert_label(void *userdata, const char *name)
{
	const struct alert *a = userdata;

	return json_string_value(json_object_get(a->labels, name));
}

static bool alert_silenced(struct alert_engine *e, const struct alert *a, usec_t t)
{
	for (size_t i = 0; i < e->n_silences; i++)
		if (silence_active(e->silences[i], t) &&
		    silence_matches(e->silences[i], alert_label, (void *)a))
			return true;
	return false;
}

/* ---- groups ---- */

static void group_free(struct group *g)
{
	if (!g)
		return;
	free(g->key);
	free(g->receiver);
	json_decref(g->group_labels);
	json_decref(g->last_firing);
	free(g);
}

/* The key and labels of the group alert a falls in under route. */
static int group_key_of(const struct alert_route *route, const struct alert *a, char **ret_key,
			json_t **ret_labels)
{
	_cleanup_json_ json_t *labels = json_object();
	_cleanup_free_ char *text = NULL;
	char *key = NULL;
	bool all = false;

	if (!labels)
		return -ENOMEM;
	for (size_t i = 0; route->group_by && route->group_by[i]; i++)
		if (strcmp(route->group_by[i], "...") == 0)
			all = true;
	if (all) {
		json_object_update(labels, a->labels);
	} else {
		for (size_t i = 0; route->group_by && route->group_by[i]; i++) {
			json_t *v = json_object_get(a->labels, route->group_by[i]);

			if (v)
				json_object_set(labels, route->group_by[i], v);
		}
	}
	text = json_text(labels);
	if (!text || asprintf(&key, "{route=%u}:%s", route->id, text) < 0)
		return -ENOMEM;
	*ret_key = key;
	*ret_labels = TAKE_PTR(labels);
	return 0;
}

static struct group *group_find(struct alert_engine *e, const char *key)
{
	for (size_t i = 0; i < e->n_groups; i++)
		if (strcmp(e->groups[i]->key, key) == 0)
			return e->groups[i];
	return NULL;
}

static void group_load_nflog(struct alert_engine *e, struct group *g)
{
	sqlite3_stmt *st;

	if (sql_prepare(e->db, &st, "SELECT firing, notified_us FROM alert_nflog WHERE group_key=?",
			"t", g->key) < 0)
		return;
	if (sqlite3_step(st) == SQLITE_ROW) {
		json_t *f = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);

		if (json_is_array(f)) {
			json_decref(g->last_firing);
			g->last_firing = f;
		} else {
			json_decref(f);
		}
		g->last_notified = (usec_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
}

/* Makes sure alert a's groups exist; a new group first flushes after
 * group_wait. */
static int alert_place(struct alert_engine *e, struct alert *a)
{
	const struct alert_route *routes[MAX_ROUTES_PER_ALERT];
	size_t n = alert_plan_match(e->plan, alert_label, a, routes, MAX_ROUTES_PER_ALERT);

	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *key = NULL;
		_cleanup_json_ json_t *labels = NULL;
		struct group *g, **grown;
		int r = group_key_of(routes[i], a, &key, &labels);

		if (r < 0)
			return r;
		if (group_find(e, key))
			continue;
		g = calloc(1, sizeof(*g));
		grown = realloc(e->groups, (e->n_groups + 1) * sizeof(*grown));
		if (!g || !grown) {
			free(g);
			if (grown)
				e->groups = grown;
			return -ENOMEM;
		}
		e->groups = grown;
		g->key = TAKE_PTR(key);
		g->group_labels = TAKE_PTR(labels);
		g->route_id = routes[i]->id;
		g->receiver = strdup(routes[i]->receiver);
		g->last_firing = json_array();
		g->next_flush = alert_now(e) + routes[i]->group_wait;
		if (!g->receiver || !g->last_firing) {
			group_free(g);
			return -ENOMEM;
		}
		group_load_nflog(e, g);
		e->groups[e->n_groups++] = g;
	}
	return 0;
}

static const struct alert_route *route_by_id(const struct alert_route *r, unsigned id)
{
	if (r->id == id)
		return r;
	for (size_t i = 0; i < r->n_routes; i++) {
		const struct alert_route *found = route_by_id(&r->routes[i], id);

		if (found)
			return found;
	}
	return NULL;
}

static bool alert_in_group(struct alert_engine *e, struct alert *a, const struct group *g)
{
	const struct alert_route *routes[MAX_ROUTES_PER_ALERT];
	size_t n = alert_plan_match(e->plan, alert_label, a, routes, MAX_ROUTES_PER_ALERT);

	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *key = NULL;
		_cleanup_json_ json_t *labels = NULL;

		if (routes[i]->id != g->route_id)
			continue;
		if (group_key_of(routes[i], a, &key, &labels) < 0)
			return false;
		if (strcmp(key, g->key) == 0)
			return true;
	}
	return false;
}

static bool fp_in(const json_t *array, const char *fp)
{
	size_t i;
	json_t *v;

	json_array_foreach(array, i, v)
		if (strcmp(json_string_value(v), fp) == 0)
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *alert_json_am(struct alert_engine *e, const struct alert *a, bool firing)
{
	const char *check = alert_label((void *)a, "check");
	char start[64], end[64], url[1024] = "";

	time_format_iso(a->starts_at, start, sizeof(start));
	if (firing)
		snprintf(end, sizeof(end), "0001-01-01T00:00:00Z");
	else
		time_format_iso(a->ends_at, end, sizeof(end));
	/* where the check's history is: the agent's API */
	if (e->external_url[0])
		snprintf(url, sizeof(url), "%s/api/v1/checks/%s", e->external_url,
			 check ? check : a->name);
	return json_pack("{s:s,s:O,s:O,s:s,s:s,s:s,s:s}", "status", firing ? "firing" : "resolved",
			 "labels", a->labels, "annotations", a->annotations, "startsAt", start,
			 "endsAt", end, "generatorURL", url,
			 "fingerprint", a->fingerprint);
}

/* Labels (or annotations) every alert of the list shares. */
static json_t *common(json_t *alerts, const char *field)
{
	json_t *out = NULL, *a;
	size_t i;

	json_array_foreach(alerts, i, a) {
		json_t *obj = json_object_get(a, field);
		const char *key;
		json_t *v;
		void *tmp;

		if (!out) {
			out = json_deep_copy(obj);
			continue;
		}
		json_object_foreach_safe(out, tmp, key, v) {
			json_t *other = json_object_get(obj, key);

			if (!other || !json_equal(other, v))
				json_object_del(out, key);
		}
	}
	return out ? out : json_object();
}

static int enqueue(struct alert_engine *e, const struct group *g, json_t *message,
		   const char *status, const char *checks, size_t n_alerts)
{
	_cleanup_free_ char *payload = json_dumps(message, JSON_COMPACT);
	usec_t t = alert_now(e);

	if (!payload)
		return -ENOMEM;
	return sql_exec(e->db,
			"INSERT INTO alert_queue(receiver, group_key, status, checks, n_alerts, payload,"
			" created_us, next_us) VALUES (?,?,?,?,?,?,?,?)",
			"ttttitii", g->receiver, g->key, status, checks, (long long)n_alerts, payload,
			(long long)t, (long long)t);
}

/* Alertmanager's flush: tell the receiver when the group changed (a new
 * firing alert, or alerts it was told about resolved) or, for an unchanged
 * firing group, when repeat_interval has passed since it was last told. */
static int group_flush(struct alert_engine *e, struct group *g, usec_t t, bool *ret_drop)
{
	const struct alert_route *route = route_by_id(&e->plan->route, g->route_id);
	_cleanup_json_ json_t *alerts = json_array(), *firing_fps = json_array();
	_cleanup_free_ const char **fps = NULL;
	struct buf checks;
	size_t n_firing = 0, n_resolved = 0, n_fps = 0;
	bool changed = false, any_unacked = false, any_member = false;
	int r = 0;

	*ret_drop = false;
	if (!alerts || !firing_fps)
		return -ENOMEM;
	buf_init(&checks, 64 * 1024);
	fps = calloc(e->n_alerts + 1, sizeof(char *));
	if (!fps)
		return -ENOMEM;
	for (size_t i = 0; i < e->n_alerts; i++) {
		struct alert *a = e->alerts[i];
		bool was_told = fp_in(g->last_firing, a->fingerprint);

		if (a->state != ALERT_STATE_FIRING && a->state != ALERT_STATE_RESOLVED)
			continue;
		if (!alert_in_group(e, a, g))
			continue;
		any_member = any_member || a->state == ALERT_STATE_FIRING;
		if (a->state == ALERT_STATE_FIRING) {
			if (alert_silenced(e, a, t))
				continue;
			fps[n_fps++] = a->fingerprint;
			if (!was_told)
				changed = true;
			if (!a->acked)
				any_unacked = true;
			json_array_append_new(alerts, alert_json_am(e, a, true));
			n_firing++;
		} else if (was_told) {
			if (e->plan->send_resolved) {
				json_array_append_new(alerts, alert_json_am(e, a, false));
				n_resolved++;
			}
			changed = true; /* the receiver believes it is still firing */
		} else {
			continue;
		}
		buf_printf(&checks, "%s%s", checks.len ? "," : "", a->name);
	}
	qsort(fps, n_fps, sizeof(char *), cmp_str);
	for (size_t i = 0; i < n_fps; i++)
		json_array_append_new(firing_fps, json_string(fps[i]));
	if (!changed && n_firing && any_unacked && route &&
	    t >= g->last_notified + route->repeat_interval)
		changed = true;
	if (changed && (n_firing || n_resolved)) {
		const char *status = n_firing ? "firing" : "resolved";
		_cleanup_json_ json_t *message = json_pack(
			"{s:s,s:s,s:i,s:s,s:s,s:O,s:o,s:o,s:s,s:O}", "version", "4", "groupKey",
			g->key, "truncatedAlerts", 0, "status", status, "receiver", g->receiver,
			"groupLabels", g->group_labels, "commonLabels", common(alerts, "labels"),
			"commonAnnotations", common(alerts, "annotations"), "externalURL",
			e->external_url, "alerts", alerts);

		if (!message) {
			buf_release(&checks);
			return -ENOMEM;
		}
		r = enqueue(e, g, message, status, checks.data ? checks.data : "",
			    n_firing + n_resolved);
	}
	buf_release(&checks);
	if (r < 0)
		return r;
	if (changed && (n_firing || n_resolved)) {
		json_decref(g->last_firing);
		g->last_firing = json_incref(firing_fps);
		g->last_notified = t;
		r = save_group(e, g);
		if (r < 0)
			return r;
	} else if (changed && !n_firing && !n_resolved) {
		/* resolved while silenced, or with send_resolved off: forget quietly */
		json_decref(g->last_firing);
		g->last_firing = json_incref(firing_fps);
		save_group(e, g);
	}
	if (!any_member && json_array_size(g->last_firing) == 0) {
		*ret_drop = true;
		sql_exec(e->db, "DELETE FROM alert_nflog WHERE group_key=?", "t", g->key);
	}
	g->next_flush = t + (route ? route->group_interval : 5 * USEC_PER_MINUTE);
	return 0;
}

/* ---- the engine ---- */

static void purge_resolved(struct alert_engine *e, usec_t t)
{
	size_t k = 0;

	for (size_t i = 0; i < e->n_alerts; i++) {
		struct alert *a = e->alerts[i];
		bool told = false;

		if (a->state == ALERT_STATE_RESOLVED && t > a->ends_at + RESOLVED_KEEP) {
			for (size_t g = 0; g < e->n_groups && !told; g++)
				told = fp_in(e->groups[g]->last_firing, a->fingerprint);
			if (!told) {
				sql_exec(e->db, "DELETE FROM alert_alerts WHERE name=?", "t", a->name);
				alert_free(a);
				continue;
			}
		}
		e->alerts[k++] = a;
	}
	e->n_alerts = k;
}

usec_t alert_engine_tick(struct alert_engine *e)
{
	usec_t t = alert_now(e), next = 0, retry;
	size_t k = 0;

	alert_collect_results(e);
	for (size_t i = 0; i < e->n_groups; i++) {
		struct group *g = e->groups[i];
		bool drop = false;

		if (e->plan && g->next_flush && g->next_flush <= t)
			group_flush(e, g, t, &drop);
		if (drop) {
			group_free(g);
			continue;
		}
		if (g->next_flush && (!next || g->next_flush < next))
			next = g->next_flush;
		e->groups[k++] = g;
	}
	e->n_groups = k;
	purge_resolved(e, t);
	retry = alert_dispatch(e, t);
	if (retry && (!next || retry < next))
		next = retry;
	return next;
}

static void schedule(struct alert_engine *e, usec_t next)
{
	usec_t t = alert_now(e), wait = TICK_MAX;
	struct timeval tv;

	if (!e->ev_timer)
		return;
	if (next && next > t && next - t < wait)
		wait = next - t;
	else if (next && next <= t)
		wait = TICK_MIN;
	if (wait < TICK_MIN)
		wait = TICK_MIN;
	tv.tv_sec = (time_t)(wait / USEC_PER_SEC);
	tv.tv_usec = (suseconds_t)(wait % USEC_PER_SEC);
	evtimer_add(e->ev_timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *userdata)
{
	struct alert_engine *e = userdata;

	(void)fd;
	(void)what;
	schedule(e, alert_engine_tick(e));
}

static void on_done(void *userdata)
{
	struct alert_engine *e = userdata;

	/* a worker is free: apply its result and give it the next one now */
	schedule(e, alert_engine_tick(e));
}

static int load_state(struct alert_engine *e)
{
	sqlite3_stmt *st;
	int r;

	r = sql_prepare(e->db, &st,
			"SELECT name, labels, annotations, state, starts_us, ends_us, pending_us, acked"
			" FROM alert_alerts", "");
	if (r < 0)
		return r;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct alert *a = calloc(1, sizeof(*a)), **grown;

		grown = realloc(e->alerts, (e->n_alerts + 1) * sizeof(*grown));
		if (grown)
			e->alerts = grown;
		if (!a || !grown) {
			free(a);
			sqlite3_finalize(st);
			return -ENOMEM;
		}
		a->name = alert_dup_or_null((const char *)sqlite3_column_text(st, 0));
		a->labels = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
		a->annotations = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
		a->state = (enum alert_state)sqlite3_column_int(st, 3);
		a->starts_at = (usec_t)sqlite3_column_int64(st, 4);
		a->ends_at = (usec_t)sqlite3_column_int64(st, 5);
		a->pending_since = (usec_t)sqlite3_column_int64(st, 6);
		a->acked = sqlite3_column_int(st, 7) != 0;
		if (!a->name || !json_is_object(a->labels) || !json_is_object(a->annotations) ||
		    a->state > ALERT_STATE_RESOLVED) {
			alert_free(a);
			continue;
		}
		fingerprint(a->labels, a->fingerprint);
		e->alerts[e->n_alerts++] = a;
	}
	sqlite3_finalize(st);
	r = silence_load_all(e->db, &e->silences, &e->n_silences);
	if (r < 0)
		return r;
	for (size_t i = 0; i < e->n_alerts; i++)
		if (e->alerts[i]->state == ALERT_STATE_FIRING ||
		    e->alerts[i]->state == ALERT_STATE_RESOLVED) {
			r = alert_place(e, e->alerts[i]);
			if (r < 0)
				return r;
		}
	return 0;
}

void alert_engine_free(struct alert_engine *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	__atomic_store_n(&e->stopping, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&e->wake);
	pthread_mutex_unlock(&e->lock);
	for (size_t i = 0; i < e->n_workers; i++) {
		if (e->workers[i]->started)
			pthread_join(e->workers[i]->thread, NULL);
		alert_job_free(e->workers[i]->job);
		free(e->workers[i]->receiver);
		free(e->workers[i]);
	}
	free(e->workers);
	if (e->ev_timer)
		event_free(e->ev_timer);
	wake_free(e->done);
	for (size_t i = 0; i < e->n_alerts; i++)
		alert_free(e->alerts[i]);
	free(e->alerts);
	for (size_t i = 0; i < e->n_groups; i++)
		group_free(e->groups[i]);
	free(e->groups);
	for (size_t i = 0; i < e->n_silences; i++)
		silence_free(e->silences[i]);
	free(e->silences);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->wake);
	free(e->host);
	free(e->external_url);
	free(e);
}


int alert_engine_new(const struct alert_plan *plan, const struct alert_options *opts,
		     struct alert_engine **ret)
{
	_cleanup_(alert_engine_freep) struct alert_engine *e = calloc(1, sizeof(*e));
	char host[256] = "";
	const char *url;
	char *errmsg = NULL;
	int r;

	if (!e)
		return -ENOMEM;
	if (!opts || !opts->db) {
		free(e);
		e = NULL;
		return -EINVAL;
	}
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->wake, NULL);
	e->plan = plan;
	e->opts = *opts;
	e->db = opts->db;
	if (!e->opts.retry_initial)
		e->opts.retry_initial = 10 * USEC_PER_SEC;
	if (!e->opts.retry_max)
		e->opts.retry_max = 10 * USEC_PER_MINUTE;
	if (!e->opts.give_up)
		e->opts.give_up = 24 * USEC_PER_HOUR;
	if (!opts->host)
		gethostname(host, sizeof(host) - 1);
	url = opts->external_url ? opts->external_url :
	      plan && plan->external_url ? plan->external_url : "";
	e->host = strdup(opts->host ? opts->host : host);
	e->external_url = strdup(url);
	if (!e->host || !e->external_url)
		return -ENOMEM;
	if (sqlite3_exec(e->db, schema, NULL, NULL, &errmsg) != SQLITE_OK) {
		sqlite3_free(errmsg);
		return -EIO;
	}
	r = load_state(e);
	if (r < 0)
		return r;
	/* a restart is a fresh start for what is still undelivered: try now */
	sql_exec(e->db, "UPDATE alert_queue SET next_us=? WHERE delivered_us IS NULL AND gave_up=0"
		 " AND next_us>?", "ii", (long long)alert_now(e), (long long)alert_now(e));
	*ret = TAKE_PTR(e);
	return 0;
}

int alert_engine_start(struct alert_engine *e, struct event_base *base)
{
	struct wake *done;
	int r;

	if (!base)
		return 0;
	e->base = base;
	e->ev_timer = evtimer_new(base, on_timer, e);
	if (!e->ev_timer)
		return -ENOMEM;
	r = wake_new(base, on_done, e, &done);
	if (r < 0)
		return r;
	pthread_mutex_lock(&e->lock);
	e->done = done;
	pthread_mutex_unlock(&e->lock);
	schedule(e, alert_engine_tick(e));
	return 0;
}

int alert_engine_set_plan(struct alert_engine *e, const struct alert_plan *plan)
{
	int r = 0;

	e->plan = plan;
	if (plan && plan->external_url && !e->opts.external_url) {
		char *url = strdup(plan->external_url);

		if (!url)
			return -ENOMEM;
		free(e->external_url);
		e->external_url = url;
	}
	/* groups belong to routes: rebuild them, keeping what receivers were told */
	for (size_t i = 0; i < e->n_groups; i++)
		group_free(e->groups[i]);
	e->n_groups = 0;
	for (size_t i = 0; i < e->n_alerts && r >= 0; i++)
		if (e->alerts[i]->state == ALERT_STATE_FIRING ||
		    e->alerts[i]->state == ALERT_STATE_RESOLVED)
			r = alert_place(e, e->alerts[i]);
	schedule(e, alert_engine_tick(e));
	return r;
}

static json_t *pairs_object(const char *const *kv)
{
	json_t *o = json_object();

	for (size_t i = 0; o && kv && kv[i] && kv[i + 1]; i += 2)
		if (json_object_set_new(o, kv[i], json_string(kv[i + 1])) < 0) {
			json_decref(o);
			return NULL;
		}
	return o;
}

int alert_engine_update(struct alert_engine *e, const char *name, enum alert_input input,
			const char *const *labels, const char *const *annotations)
{
	struct alert *a = alert_find(e, name);
	_cleanup_json_ json_t *l = NULL, *ann = NULL;
	enum alert_state old = a ? a->state : ALERT_STATE_INACTIVE, want;
	bool changed = false;
	usec_t t = alert_now(e);
	int r;

	if (input == ALERT_INPUT_OK) {
		if (!a || old == ALERT_STATE_RESOLVED || old == ALERT_STATE_INACTIVE)
			return 0;
		want = old == ALERT_STATE_PENDING ? ALERT_STATE_INACTIVE : ALERT_STATE_RESOLVED;
	} else {
		want = input == ALERT_INPUT_FIRING ? ALERT_STATE_FIRING : ALERT_STATE_PENDING;
		if (old == ALERT_STATE_FIRING && want == ALERT_STATE_PENDING)
			want = ALERT_STATE_FIRING; /* still failing */
	}
	l = pairs_object(labels);
	ann = pairs_object(annotations);
	if (!l || !ann)
		return -ENOMEM;
	if (json_object_set_new(l, "alertname", json_string(name)) < 0)
		return -ENOMEM;
	if (!json_object_get(l, "host") && json_object_set_new(l, "host", json_string(e->host)) < 0)
		return -ENOMEM;
	if (want == ALERT_STATE_INACTIVE) {
		/* pending that never fired: gone without a trace */
		for (size_t i = 0; i < e->n_alerts; i++)
			if (e->alerts[i] == a) {
				e->alerts[i] = e->alerts[--e->n_alerts];
				break;
			}
		sql_exec(e->db, "DELETE FROM alert_alerts WHERE name=?", "t", name);
		alert_free(a);
		return 1;
	}
	if (!a) {
		struct alert **grown = realloc(e->alerts, (e->n_alerts + 1) * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		e->alerts = grown;
		a = calloc(1, sizeof(*a));
		if (!a || !(a->name = strdup(name))) {
			free(a);
			return -ENOMEM;
		}
		a->labels = json_object();
		a->annotations = json_object();
		e->alerts[e->n_alerts++] = a;
		changed = true;
	}
	if (want == ALERT_STATE_RESOLVED) {
		/* a resolved alert keeps the labels it fired with */
		a->ends_at = t;
		a->state = want;
		a->acked = false;
		r = save_alert(e, a);
		return r < 0 ? r : 1;
	}
	if (old == ALERT_STATE_RESOLVED) {
		a->acked = false;
		changed = true;
	}
	if (!json_equal(a->labels, l)) {
		json_decref(a->labels);
		a->labels = json_incref(l);
		if (want == ALERT_STATE_FIRING && old == ALERT_STATE_FIRING)
			a->acked = false; /* it changed (severity): the ack was for the old */
		fingerprint(a->labels, a->fingerprint);
		changed = true;
	}
	/* annotations (a summary with the latest value) change every cycle:
	 * kept, not news, and stored only with the next real change */
	if (!json_equal(a->annotations, ann)) {
		json_decref(a->annotations);
		a->annotations = json_incref(ann);
	}
	if (want != old) {
		if (want == ALERT_STATE_PENDING || old != ALERT_STATE_PENDING)
			a->pending_since = t;
		if (want == ALERT_STATE_FIRING)
			a->starts_at = t;
		a->ends_at = 0;
		a->state = want;
		changed = true;
	}
	if (!changed)
		return 0;
	r = save_alert(e, a);
	if (r < 0)
		return r;
	if (a->state == ALERT_STATE_FIRING) {
		r = alert_place(e, a);
		if (r < 0)
			return r;
		/* a new group may be due at once (group_wait 0): look soon */
		schedule(e, alert_now(e));
	}
	return 1;
}

int alert_engine_flush(struct alert_engine *e, usec_t timeout)
{
	usec_t until = now_monotonic() + timeout;

	for (;;) {
		bool busy = false;
		usec_t next;

		next = alert_engine_tick(e);
		pthread_mutex_lock(&e->lock);
		for (size_t i = 0; i < e->n_workers; i++)
			busy = busy || e->workers[i]->job;
		pthread_mutex_unlock(&e->lock);
		if (!busy && (!next || next > alert_now(e)))
			return 0;
		if (now_monotonic() >= until)
			return -BCDR_ERR_TIMEOUT;
		usleep(5000);
	}
}

enum alert_state alert_engine_state(struct alert_engine *e, const char *name)
{
	struct alert *a = alert_find(e, name);

	return a ? a->state : ALERT_STATE_INACTIVE;
}

unsigned alert_engine_firing(struct alert_engine *e)
{
	unsigned n = 0;

	for (size_t i = 0; i < e->n_alerts; i++)
		n += e->alerts[i]->state == ALERT_STATE_FIRING;
	return n;
}

void alert_engine_stats(struct alert_engine *e, struct alert_stats *ret)
{
	usec_t t = alert_now(e);
	sqlite3_stmt *st;

	*ret = (struct alert_stats){ .delivered = e->delivered, .failed = e->failed };
	for (size_t i = 0; i < e->n_alerts; i++) {
		const struct alert *a = e->alerts[i];

		ret->firing += a->state == ALERT_STATE_FIRING;
		ret->pending += a->state == ALERT_STATE_PENDING;
		ret->silenced += a->state == ALERT_STATE_FIRING && alert_silenced(e, a, t);
	}
	for (size_t i = 0; i < e->n_silences; i++)
		ret->silences += silence_active(e->silences[i], t);
	if (sql_prepare(e->db, &st, "SELECT count(*) FROM alert_queue WHERE delivered_us IS NULL"
			" AND gave_up=0", "") == 0) {
		if (sqlite3_step(st) == SQLITE_ROW)
			ret->queued = (unsigned long long)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
}

static const char *state_name(enum alert_state s)
{
	static const char *const names[] = { "inactive", "pending", "firing", "resolved" };

	return s <= ALERT_STATE_RESOLVED ? names[s] : "unknown";
}

json_t *alert_engine_alerts_json(struct alert_engine *e)
{
	json_t *out = json_array();
	usec_t t = alert_now(e);

	if (!out)
		return NULL;
	/* firing, then pending, then resolved */
	for (int pass = 0; pass < 3; pass++) {
		static const enum alert_state order[] = { ALERT_STATE_FIRING, ALERT_STATE_PENDING,
							  ALERT_STATE_RESOLVED };

		for (size_t i = 0; i < e->n_alerts; i++) {
			const struct alert *a = e->alerts[i];
			char start[64], end[64];
			json_t *j;

			if (a->state != order[pass])
				continue;
			j = json_pack("{s:O,s:O,s:s,s:o,s:o,s:b,s:b,s:s}", "labels", a->labels,
				      "annotations", a->annotations, "state", state_name(a->state),
				      "starts_at",
				      a->starts_at ? json_string(time_format_iso(a->starts_at, start,
										 sizeof(start)))
						   : json_null(),
				      "ends_at",
				      a->ends_at ? json_string(time_format_iso(a->ends_at, end,
									       sizeof(end)))
						 : json_null(),
				      "silenced", a->state == ALERT_STATE_FIRING && alert_silenced(e, a, t),
				      "acked", a->acked, "fingerprint", a->fingerprint);
			if (!j || json_array_append_new(out, j) < 0) {
				json_decref(out);
				return NULL;
			}
		}
	}
	return out;
}

int alert_engine_ack(struct alert_engine *e, const char *check)
{
	int found = 0;

	for (size_t i = 0; i < e->n_alerts; i++) {
		struct alert *a = e->alerts[i];
		const char *c = alert_label(a, "check");

		if (a->state != ALERT_STATE_FIRING)
			continue;
		if (strcmp(a->name, check) != 0 && !(c && strcmp(c, check) == 0))
			continue;
		if (!a->acked) {
			a->acked = true;
			save_alert(e, a);
		}
		found++;
	}
	return found ? 0 : -BCDR_ERR_NOT_FOUND;
}

json_t *alert_engine_silences_json(struct alert_engine *e)
{
	json_t *out = json_array();
	usec_t t = alert_now(e);

	if (!out)
		return NULL;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < e->n_silences; i++) {
			bool active = silence_active(e->silences[i], t);
			json_t *j;

			if (active != (pass == 0))
				continue;
			j = silence_json(e->silences[i], t);
			if (!j || json_array_append_new(out, j) < 0) {
				json_decref(out);
				return NULL;
			}
		}
	return out;
}

static int silence_store(struct alert_engine *e, struct silence *s, char **ret_id)
{
	struct silence **grown;
	char *id;
	int r;

	r = silence_save(e->db, s);
	if (r < 0) {
		silence_free(s);
		return r;
	}
	id = strdup(s->id);
	grown = realloc(e->silences, (e->n_silences + 1) * sizeof(*grown));
	if (!id || !grown) {
		free(id);
		if (grown)
			e->silences = grown;
		silence_free(s);
		return -ENOMEM;
	}
	e->silences = grown;
	e->silences[e->n_silences++] = s;
	*ret_id = id;
	return 0;
}

int alert_engine_silence_add_json(struct alert_engine *e, const char *body, size_t len,
				  char **ret_id, char **ret_error)
{
	struct silence *s = NULL;
	int r = silence_parse_json(body, len, alert_now(e), &s, ret_error);

	if (r < 0)
		return r;
	return silence_store(e, s, ret_id);
}

int alert_engine_silence_add(struct alert_engine *e, const char *const *matchers, usec_t duration,
			     const char *comment, const char *created_by, char **ret_id)
{
	struct silence *s = NULL;
	usec_t t = alert_now(e);
	int r;

	if (duration == 0)
		return -EINVAL;
	r = silence_new(matchers, t, t + duration, comment, created_by, &s);
	if (r < 0)
		return r;
	return silence_store(e, s, ret_id);
}

int alert_engine_silence_expire(struct alert_engine *e, const char *id)
{
	usec_t t = alert_now(e);

	for (size_t i = 0; i < e->n_silences; i++) {
		struct silence *s = e->silences[i];

		if (strcmp(s->id, id) != 0)
			continue;
		if (!silence_active(s, t) && s->starts_at <= t)
			return -BCDR_ERR_NOT_FOUND;
		s->ends_at = t;
		if (s->starts_at > t)
			s->starts_at = t;
		return silence_save(e->db, s);
	}
	return -BCDR_ERR_NOT_FOUND;
}
