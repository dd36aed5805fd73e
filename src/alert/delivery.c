/* The alert engine's delivery: one worker thread per receiver takes the
 * oldest due notification of its receiver from the queue (alert_dispatch),
 * delivers it with a private copy of the receiver (the plan may be
 * reloaded meanwhile) and hands the result back to the loop thread, which
 * records it and schedules retries with backoff (alert_collect_results). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alert/internal.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/sql.h"
#include "lib/strv.h"

/* ---- receivers copied for a worker ---- */

char *alert_dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void receiver_copy_release(struct alert_receiver *r)
{
	free(r->name);
	strv_free(r->email.to);
	free(r->email.from);
	free(r->email.smtp);
	free(r->email.username);
	free(r->email.password_file);
	free(r->webhook.url);
	free(r->webhook.bearer_token_file);
	strv_free(r->exec.argv);
	free(r->log.path);
	memset(r, 0, sizeof(*r));
}

static int receiver_copy(const struct alert_receiver *from, struct alert_receiver *to)
{
	*to = *from;
	to->name = alert_dup_or_null(from->name);
	to->email.to = strv_copy(from->email.to);
	to->email.from = alert_dup_or_null(from->email.from);
	to->email.smtp = alert_dup_or_null(from->email.smtp);
	to->email.username = alert_dup_or_null(from->email.username);
	to->email.password_file = alert_dup_or_null(from->email.password_file);
	to->webhook.url = alert_dup_or_null(from->webhook.url);
	to->webhook.bearer_token_file = alert_dup_or_null(from->webhook.bearer_token_file);
	to->exec.argv = strv_copy(from->exec.argv);
	to->log.path = alert_dup_or_null(from->log.path);
	if ((from->name && !to->name) || (from->email.to && !to->email.to) ||
	    (from->email.from && !to->email.from) || (from->email.smtp && !to->email.smtp) ||
	    (from->email.username && !to->email.username) ||
	    (from->email.password_file && !to->email.password_file) ||
	    (from->webhook.url && !to->webhook.url) ||
	    (from->webhook.bearer_token_file && !to->webhook.bearer_token_file) ||
	    (from->exec.argv && !to->exec.argv) || (from->log.path && !to->log.path)) {
		receiver_copy_release(to);
		return -ENOMEM;
	}
	return 0;
}

void alert_job_free(struct job *j)
{
	if (!j)
		return;
	receiver_copy_release(&j->receiver);
	json_decref(j->message);
	free(j->error);
	free(j);
}

/* ---- workers ---- */

static void *worker_main(void *userdata)
{
	struct worker *w = userdata;
	struct alert_engine *e = w->e;

	pthread_mutex_lock(&e->lock);
	for (;;) {
		struct job *j = w->job;
		char *error = NULL;
		int r;

		if (e->stopping)
			break;
		if (!j || j->done) {
			pthread_cond_wait(&e->wake, &e->lock);
			continue;
		}
		pthread_mutex_unlock(&e->lock);
		r = alert_receiver_deliver_cancellable(&j->receiver, j->message, &e->stopping,
						       &error);
		pthread_mutex_lock(&e->lock);
		j->r = r;
		j->error = error;
		j->done = true;
		wake_signal(e->done);
		pthread_cond_broadcast(&e->wake);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

static struct worker *worker_for(struct alert_engine *e, const char *receiver)
{
	struct worker *w, **grown;

	for (size_t i = 0; i < e->n_workers; i++)
		if (strcmp(e->workers[i]->receiver, receiver) == 0)
			return e->workers[i];
	w = calloc(1, sizeof(*w));
	grown = realloc(e->workers, (e->n_workers + 1) * sizeof(*grown));
	if (grown)
		e->workers = grown;
	if (!w || !grown || !(w->receiver = strdup(receiver))) {
		free(w);
		return NULL;
	}
	w->e = e;
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		free(w->receiver);
		free(w);
		return NULL;
	}
	w->started = true;
	e->workers[e->n_workers++] = w;
	return w;
}

void alert_collect_results(struct alert_engine *e)
{
	for (size_t i = 0; i < e->n_workers; i++) {
		struct worker *w = e->workers[i];
		struct job *j;
		usec_t t;

		pthread_mutex_lock(&e->lock);
		j = w->job && w->job->done ? TAKE_PTR(w->job) : NULL;
		pthread_mutex_unlock(&e->lock);
		if (!j)
			continue;
		t = alert_now(e);
		{
			sqlite3_stmt *st;
			_cleanup_free_ char *group_key = NULL, *status = NULL, *checks = NULL;
			usec_t created = t;
			unsigned n_alerts = 0;
			bool gave_up = false;

			if (sql_prepare(e->db, &st,
					"SELECT group_key, status, checks, n_alerts, created_us"
					" FROM alert_queue WHERE id=?", "i", j->id) == 0) {
				if (sqlite3_step(st) == SQLITE_ROW) {
					group_key = alert_dup_or_null(
						(const char *)sqlite3_column_text(st, 0));
					status = alert_dup_or_null(
						(const char *)sqlite3_column_text(st, 1));
					checks = alert_dup_or_null(
						(const char *)sqlite3_column_text(st, 2));
					n_alerts = (unsigned)sqlite3_column_int(st, 3);
					created = (usec_t)sqlite3_column_int64(st, 4);
				}
				sqlite3_finalize(st);
			}
			if (j->r >= 0) {
				e->delivered++;
				sql_exec(
					e->db,
					"UPDATE alert_queue SET delivered_us=?, attempts=?, error=NULL"
					" WHERE id=?",
					"iii", (long long)t, (long long)j->attempt, j->id);
			} else {
				usec_t backoff = e->opts.retry_initial;

				e->failed++;
				for (unsigned k = 1; k < j->attempt && backoff < e->opts.retry_max;
				     k++)
					backoff *= 2;
				if (backoff > e->opts.retry_max)
					backoff = e->opts.retry_max;
				gave_up = t + backoff > created + e->opts.give_up;
				sql_exec(
					e->db,
					"UPDATE alert_queue SET attempts=?, next_us=?, gave_up=?, error=?"
					" WHERE id=?",
					"iiiti", (long long)j->attempt, (long long)(t + backoff),
					(long long)gave_up, j->error ? j->error : err_str(j->r),
					j->id);
			}
			if (e->opts.on_delivery) {
				struct alert_delivery d = {
					.id = j->id,
					.receiver = j->receiver.name,
					.group_key = group_key ? group_key : "",
					.status = status ? status : "",
					.n_alerts = n_alerts,
					.attempt = j->attempt,
					.ok = j->r >= 0,
					.gave_up = gave_up,
					.error = j->r >= 0 ? NULL
							   : (j->error ? j->error : err_str(j->r)),
					.checks = checks ? checks : "",
				};

				e->opts.on_delivery(e->opts.userdata, &d);
			}
		}
		alert_job_free(j);
	}
}

usec_t alert_dispatch(struct alert_engine *e, usec_t t)
{
	usec_t next = 0;
	sqlite3_stmt *st;

	if (!e->plan)
		return 0;
	for (size_t i = 0; i < e->plan->n_receivers; i++) {
		const struct alert_receiver *rcv = &e->plan->receivers[i];
		struct worker *w = worker_for(e, rcv->name);
		struct job *j;
		bool busy;

		if (!w)
			continue;
		pthread_mutex_lock(&e->lock);
		busy = w->job != NULL;
		pthread_mutex_unlock(&e->lock);
		if (busy)
			continue;
		if (sql_prepare(
			    e->db, &st,
			    "SELECT id, payload, attempts, next_us FROM alert_queue q"
			    " WHERE receiver=? AND delivered_us IS NULL AND gave_up=0 AND NOT EXISTS"
			    " (SELECT 1 FROM alert_queue o WHERE o.receiver=q.receiver AND"
			    "  o.group_key=q.group_key AND o.id<q.id AND o.delivered_us IS NULL"
			    "  AND o.gave_up=0) ORDER BY next_us, id LIMIT 1",
			    "t", rcv->name) < 0)
			continue;
		if (sqlite3_step(st) != SQLITE_ROW) {
			sqlite3_finalize(st);
			continue;
		}
		if ((usec_t)sqlite3_column_int64(st, 3) > t) {
			usec_t due = (usec_t)sqlite3_column_int64(st, 3);

			if (!next || due < next)
				next = due;
			sqlite3_finalize(st);
			continue;
		}
		j = calloc(1, sizeof(*j));
		if (!j || receiver_copy(rcv, &j->receiver) < 0) {
			free(j);
			sqlite3_finalize(st);
			continue;
		}
		j->id = sqlite3_column_int64(st, 0);
		j->attempt = (unsigned)sqlite3_column_int(st, 2) + 1;
		j->message = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
		sqlite3_finalize(st);
		if (!j->message) {
			sql_exec(e->db,
				 "UPDATE alert_queue SET gave_up=1, error='unreadable payload'"
				 " WHERE id=?",
				 "i", j->id);
			alert_job_free(j);
			continue;
		}
		pthread_mutex_lock(&e->lock);
		w->job = j;
		pthread_cond_broadcast(&e->wake);
		pthread_mutex_unlock(&e->lock);
	}
	/* notifications for receivers gone from the plan (after a reload) */
	{
		_cleanup_json_ json_t *names = json_array();
		_cleanup_free_ char *text = NULL;

		for (size_t i = 0; names && i < e->plan->n_receivers; i++)
			json_array_append_new(names, json_string(e->plan->receivers[i].name));
		text = names ? json_dumps(names, JSON_COMPACT) : NULL;
		if (text)
			sql_exec(
				e->db,
				"UPDATE alert_queue SET gave_up=1, error='receiver not in the plan'"
				" WHERE delivered_us IS NULL AND gave_up=0 AND receiver NOT IN"
				" (SELECT value FROM json_each(?))",
				"t", text);
	}
	return next;
}

int alert_receiver_test(const struct alert_receiver *receiver, const char *host,
			const char *external_url, char **ret_error)
{
	char hostname[256] = "", start[64];
	_cleanup_json_ json_t *message = NULL;
	const char *h = host;

	if (!h) {
		gethostname(hostname, sizeof(hostname) - 1);
		h = hostname;
	}
	time_format_iso(now_realtime(), start, sizeof(start));
	message = json_pack(
		"{s:s,s:s,s:i,s:s,s:s,s:{s:s},s:{s:s,s:s,s:s,s:s},s:{s:s,s:s},s:s,"
		"s:[{s:s,s:{s:s,s:s,s:s,s:s},s:{s:s,s:s},s:s,s:s,s:s,s:s}]}",
		"version", "4", "groupKey", "{test}:{alertname=\"bcdr-test\"}", "truncatedAlerts",
		0, "status", "firing", "receiver", receiver->name, "groupLabels", "alertname",
		"bcdr-test", "commonLabels", "alertname", "bcdr-test", "check", "bcdr-test", "host",
		h, "severity", "info", "commonAnnotations", "summary",
		"test notification from bcdr", "description",
		"sent by `bcdr alert test`: this receiver works", "externalURL",
		external_url ? external_url : "", "alerts", "status", "firing", "labels",
		"alertname", "bcdr-test", "check", "bcdr-test", "host", h, "severity", "info",
		"annotations", "summary", "test notification from bcdr", "description",
		"sent by `bcdr alert test`: this receiver works", "startsAt", start, "endsAt",
		"0001-01-01T00:00:00Z", "generatorURL", "", "fingerprint", "0000000000000000");
	if (!message)
		return -ENOMEM;
	return alert_receiver_deliver(receiver, message, ret_error);
}
