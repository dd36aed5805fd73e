#include "agent/backups.h"

/* Backup jobs as checks: a scheduled run (with the job's retention), the
 * freshness of the newest snapshot against the job's rpo, in its
 * repository and in each of its copies, and restore drills against its
 * rto. They alert, are events and are metrics like any other check.
 *
 * After a run that saved a snapshot, scheduled or an action's, the run
 * check brings the job's copies up to date, one after the other, each a
 * job of its own on the worker pool (the copy started/finished/failed
 * events are written on the loop, between them). A job with copies and
 * no schedule has a run check too, which only copies. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/checks.h"
#include "agent/integrate.h"
#include "agent/pool.h"
#include "backup/backup.h"
#include "backup/module.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/log.h"
#include "plan/plan.h"

enum bk_kind { BK_RUN, BK_RPO, BK_DRILL, BK_COPY_RPO };
static const char *const bk_kind_names[] = { "backup", "rpo", "drill", "rpo" };

/* One of a run check's copies. */
struct bk_copy {
	const char *name; /* the job's copies[i] */
	/* loop side */
	usec_t started; /* realtime of the copy in flight; 0: none */
	usec_t last_time, last_success;
	bool last_ok;
	double last_duration;
	unsigned last_copied;
	usec_t newest; /* the job's newest snapshot there, as last seen */
	char last_message[512];
	/* written by the worker while in flight */
	struct backup_copy_result res;
	int r;
};

struct bk_check {
	enum bk_kind kind;
	struct plan_ref *pr;
	const struct backup_job *job;
	struct agent *agent;
	struct agent_check *check; /* the check that owns this (no reference) */
	char *scratch;          /* drills restore under here */
	size_t copy;            /* BK_COPY_RPO: which of job->copies */
	struct bk_copy *copies; /* BK_RUN: job->ncopies of them */
	size_t copying;         /* the copy in flight; job->ncopies: none */
	bool copy_again;        /* a snapshot came during the copies: one more round */
	bool copies_looked;     /* the first round after the start was made */
	/* worker side */
	bool started;
	usec_t next_due;
	bool did_run;           /* this run did the work (not just "not due") */
	int status;
	char message[512];
	double value;
	bool has_value;
	/* loop side, for /api/v1/status */
	usec_t newest;          /* 0: none known */
	usec_t last_time;
	bool last_ok;
	char last_message[512];
	double last_duration;
};

static void set(struct bk_check *b, struct check_result *res)
{
	res->status = b->status;
	res->has_value = b->has_value;
	res->value = b->value;
	snprintf(res->unit, sizeof(res->unit), "s");
	snprintf(res->message, sizeof(res->message), "%s", b->message);
}

/* rpo:JOB:COPY: the newest snapshot of the job in the copy. When the copy
 * cannot be reached, the newest seen there before still ages. */
static void copy_rpo(struct bk_check *b, usec_t now)
{
	const char *copy = b->job->copies[b->copy];
	usec_t newest = 0;
	char age[32], rpo[32], why[200] = "";
	int r = backup_job_newest_in(b->pr->plan, b->job->name, copy, &newest);

	if (r >= 0)
		b->newest = newest;
	else if (r != -BCDR_ERR_NOT_FOUND)
		snprintf(why, sizeof(why), "; cannot list its snapshots: %.150s",
			 r == -ELIBACC ? backup_module_error() : err_str(r));
	if (r == -BCDR_ERR_NOT_FOUND || (!b->newest && r < 0)) {
		b->has_value = false;
		b->status = r == -BCDR_ERR_NOT_FOUND ? CHECK_CRITICAL : CHECK_UNKNOWN;
		snprintf(b->message, sizeof(b->message), "copy '%s' holds no snapshot of '%s'%s%s",
			 copy, b->job->name,
			 r == -BCDR_ERR_NOT_FOUND ? " yet: the RPO is not met" : "", why);
		return;
	}
	newest = b->newest;
	b->has_value = true;
	b->value = now > newest ? (double)(now - newest) / 1e6 : 0;
	b->status = now - newest <= b->job->rpo || newest > now ? CHECK_OK : CHECK_CRITICAL;
	snprintf(b->message, sizeof(b->message), "copy '%s': newest snapshot %s old (rpo %s)%s%s",
		 copy,
		 duration_format(now > newest ? (now - newest) / USEC_PER_SEC * USEC_PER_SEC : 0,
				 age, sizeof(age)),
		 duration_format(b->job->rpo, rpo, sizeof(rpo)),
		 b->status == CHECK_OK ? "" : ": the RPO is missed", why);
}

static void bk_run(void *impl, struct check_result *res)
{
	struct bk_check *b = impl;
	const struct plan *plan = b->pr->plan;
	usec_t now = now_realtime(), newest = 0;
	int r = 0;

	b->did_run = false;
	if (b->kind == BK_COPY_RPO) {
		copy_rpo(b, now);
		set(b, res);
		return;
	}
	if (b->kind == BK_RUN && !b->job->schedule.text) {
		/* copies only: the runs come from actions or bcdr backup --job */
		b->status = CHECK_OK;
		snprintf(b->message, sizeof(b->message),
			 "no schedule: run by an action or 'bcdr backup --job %.200s'",
			 b->job->name);
		set(b, res);
		return;
	}
	/* A drill looks where it restores from. */
	if (b->kind == BK_DRILL)
		r = backup_job_newest_in(plan, b->job->name, b->job->drill_repo->name, &newest);
	else
		r = backup_job_newest(plan, b->job->name, &newest);
	if (r >= 0)
		b->newest = newest;
	switch (b->kind) {
	case BK_RUN: {
		struct backup_job_result jr = {};
		usec_t t0;

		if (!b->started) {
			/* Due now when the newest snapshot is older than one period. */
			b->next_due = r >= 0 ? schedule_next(&b->job->schedule, newest) : now;
			b->started = true;
			b->status = CHECK_OK;
			snprintf(b->message, sizeof(b->message), "next run %s",
				 b->next_due <= now ? "now" : "scheduled");
		}
		if (now < b->next_due)
			break;
		t0 = now_monotonic();
		r = backup_job_run(plan, b->job->name, &jr);
		b->did_run = true;
		b->has_value = true;
		b->value = (double)(now_monotonic() - t0) / 1e6;
		b->status = r >= 0 ? CHECK_OK : r == -BCDR_ERR_PARTIAL ? CHECK_WARNING : CHECK_CRITICAL;
		snprintf(b->message, sizeof(b->message), "%s", jr.message[0] ? jr.message : err_str(r));
		b->next_due = schedule_next(&b->job->schedule, now_realtime());
		if (r >= 0 || r == -BCDR_ERR_PARTIAL)
			b->newest = jr.time ? jr.time : now_realtime();
		break;
	}
	case BK_RPO: {
		char age[32], rpo[32];

		if (r < 0) {
			b->status = r == -BCDR_ERR_NOT_FOUND ? CHECK_CRITICAL : CHECK_UNKNOWN;
			b->has_value = false;
			snprintf(b->message, sizeof(b->message), "%.500s",
				 r == -BCDR_ERR_NOT_FOUND ? "no snapshot yet: the RPO is not met"
				 : r == -ELIBACC	  ? backup_module_error()
							  : err_str(r));
			break;
		}
		b->has_value = true;
		b->value = now > newest ? (double)(now - newest) / 1e6 : 0;
		b->status = now - newest <= b->job->rpo || newest > now ? CHECK_OK : CHECK_CRITICAL;
		snprintf(b->message, sizeof(b->message), "newest snapshot %s old (rpo %s)%s",
			 duration_format(now > newest ? (now - newest) / USEC_PER_SEC * USEC_PER_SEC
						      : 0, age, sizeof(age)),
			 duration_format(b->job->rpo, rpo, sizeof(rpo)),
			 b->status == CHECK_OK ? "" : ": the RPO is missed");
		break;
	}
	case BK_COPY_RPO: /* above */
		break;
	case BK_DRILL: {
		struct backup_drill_result dr = {};
		char took[32], rto[32];

		if (!b->started) {
			b->started = true;
			b->status = CHECK_OK;
			b->next_due = now; /* the first drill as soon as there is a snapshot */
			snprintf(b->message, sizeof(b->message), "no drill yet");
		}
		if (now < b->next_due)
			break;
		if (r < 0) {
			snprintf(b->message, sizeof(b->message), "no snapshot to drill in '%s' yet",
				 b->job->drill_repo->name);
			break;
		}
		r = fs_mkdir_p(b->scratch, 0700);
		if (r >= 0)
			r = backup_job_drill(plan, b->job->name, b->scratch, &dr);
		b->did_run = true;
		b->next_due = now_realtime() + b->job->drill_every;
		b->has_value = true;
		b->value = dr.duration_s;
		if (r < 0 || !dr.ok) {
			b->status = CHECK_CRITICAL;
			snprintf(b->message, sizeof(b->message),
				 "drill from '%.100s' failed: %.380s", b->job->drill_repo->name,
				 dr.message[0] ? dr.message : err_str(r));
		} else if (b->job->rto && dr.duration_s * 1e6 > (double)b->job->rto) {
			b->status = CHECK_CRITICAL;
			snprintf(b->message, sizeof(b->message),
				 "restore from '%s' took %s, over the "
				 "rto %s",
				 b->job->drill_repo->name,
				 duration_format((usec_t)(dr.duration_s * 1e6), took, sizeof(took)),
				 duration_format(b->job->rto, rto, sizeof(rto)));
		} else if (b->job->db.load) { /* a database drill: what verify printed */
			b->status = CHECK_OK;
			snprintf(b->message, sizeof(b->message),
				 "restored from '%s', %.300s in "
				 "%.2fs%s%s",
				 b->job->drill_repo->name, dr.message, dr.duration_s,
				 b->job->rto ? " (rto " : "",
				 b->job->rto ? duration_format(b->job->rto, rto, sizeof(rto)) : "");
			if (b->job->rto)
				strncat(b->message, ")", sizeof(b->message) - strlen(b->message) - 1);
		} else {
			b->status = CHECK_OK;
			snprintf(b->message, sizeof(b->message),
				 "restored from '%s' and verified "
				 "%llu files, %llu bytes in %.2fs%s%s",
				 b->job->drill_repo->name, (unsigned long long)dr.files,
				 (unsigned long long)dr.bytes, dr.duration_s,
				 b->job->rto ? " (rto " : "",
				 b->job->rto ? duration_format(b->job->rto, rto, sizeof(rto)) : "");
			if (b->job->rto)
				strncat(b->message, ")", sizeof(b->message) - strlen(b->message) - 1);
		}
		break;
	}
	}
	set(b, res);
}

/* ---- copies, one at a time: work on the pool, events on the loop ---- */

static void copy_start(struct agent_check *c);

/* One copy at a time in the agent: a chain of a check that a reload
 * replaced may still be finishing while the new check's starts. */
static pthread_mutex_t copy_lock = PTHREAD_MUTEX_INITIALIZER;

static void copy_work(void *arg)
{
	struct agent_check *c = arg;
	struct bk_check *b = c->impl;
	struct bk_copy *cp = &b->copies[b->copying];

	memset(&cp->res, 0, sizeof(cp->res));
	pthread_mutex_lock(&copy_lock);
	cp->r = backup_job_copy(b->pr->plan, b->job->name, cp->name, true, NULL, NULL, &cp->res);
	pthread_mutex_unlock(&copy_lock);
}

static void copy_done(void *arg, int cancelled)
{
	struct agent_check *c = arg;
	struct bk_check *b = c->impl;
	struct bk_copy *cp = &b->copies[b->copying];
	_cleanup_json_ json_t *data = NULL;

	cp->started = 0;
	if (cancelled || c->retired) { /* stopping, or replaced: its next run catches up */
		b->copying = b->job->ncopies;
		agent_check_unref(c);
		return;
	}
	cp->last_time = now_realtime();
	cp->last_ok = cp->r >= 0;
	cp->last_duration = cp->res.duration_s;
	cp->last_copied = cp->res.copied;
	if (cp->res.newest > cp->newest)
		cp->newest = cp->res.newest;
	if (cp->last_ok)
		cp->last_success = cp->last_time;
	snprintf(cp->last_message, sizeof(cp->last_message), "%s",
		 cp->res.message[0] ? cp->res.message : err_str(cp->r));
	data = json_object();
	json_set_str(data, "job", b->job->name);
	json_set_str(data, "copy", cp->name);
	json_set_bool(data, "ok", cp->last_ok);
	json_set_int(data, "snapshots", cp->res.copied);
	json_set_int(data, "bytes", (long long)cp->res.bytes_copied);
	json_set_real(data, "duration_s", cp->res.duration_s);
	agent_event(b->agent, "copy", c->name, data, "copy of backup job '%s' to '%s' %s: %s",
		    b->job->name, cp->name, cp->last_ok ? "finished" : "failed", cp->last_message);
	b->copying++;
	if (b->copying == b->job->ncopies && b->copy_again) {
		b->copy_again = false;
		b->copying = 0;
	}
	if (b->copying < b->job->ncopies)
		copy_start(c); /* takes over the reference */
	else
		agent_check_unref(c);
}

/* Starts copies[b->copying] under the reference the caller holds on c. */
static void copy_start(struct agent_check *c)
{
	struct bk_check *b = c->impl;
	struct bk_copy *cp = &b->copies[b->copying];
	_cleanup_json_ json_t *data = json_object();
	int r;

	cp->started = now_realtime();
	json_set_str(data, "job", b->job->name);
	json_set_str(data, "copy", cp->name);
	agent_event(b->agent, "copy", c->name, data, "copy of backup job '%s' to '%s' started",
		    b->job->name, cp->name);
	r = pool_submit(b->agent->pool, copy_work, copy_done, c);
	if (r < 0) {
		cp->started = 0;
		b->copying = b->job->ncopies;
		log_warning_errno(r, "cannot queue the copies of '%s'", b->job->name);
		agent_check_unref(c);
	}
}

static void copies_after_run(struct bk_check *b)
{
	if (!b->job->ncopies)
		return;
	if (b->copying < b->job->ncopies) { /* still going: one more round after */
		b->copy_again = true;
		return;
	}
	b->copying = 0;
	copy_start(agent_check_ref(b->check));
}

static int bk_rule(void *impl, struct check_result *res, int current, bool *ret_pending)
{
	struct bk_check *b = impl;
	_cleanup_json_ json_t *data = NULL;

	(void)current;
	*ret_pending = false;
	/* An agent that starts catches up on what its copies missed while it
	 * was down, before the first run is due. */
	if (b->kind == BK_RUN && !b->copies_looked) {
		b->copies_looked = true;
		if (!b->did_run)
			copies_after_run(b);
	}
	if (!b->did_run)
		return res->status;
	b->last_time = now_realtime();
	b->last_ok = res->status == CHECK_OK || (b->kind == BK_RUN && res->status == CHECK_WARNING);
	b->last_duration = res->value;
	snprintf(b->last_message, sizeof(b->last_message), "%s", res->message);
	data = json_object();
	json_set_str(data, "job", b->job->name);
	json_set_bool(data, "ok", b->last_ok);
	json_set_real(data, "duration_s", res->value);
	if (b->kind == BK_DRILL && b->job->rto)
		json_set_real(data, "rto_s", (double)b->job->rto / 1e6);
	if (b->kind == BK_DRILL)
		json_set_str(data, "repository", b->job->drill_repo->name);
	agent_event(b->agent, b->kind == BK_DRILL ? "drill" : "backup", NULL, data, "%s '%s' %s: %s",
		    b->kind == BK_DRILL ? "drill of" : "backup job", b->job->name,
		    b->last_ok ? "done" : "failed", res->message);
	if (b->kind == BK_RUN && b->last_ok)
		copies_after_run(b);
	return res->status;
}

static void bk_carry(void *impl, const void *old)
{
	struct bk_check *b = impl;
	const struct bk_check *o = old;

	if (b->kind != o->kind)
		return;
	b->started = o->started;
	b->copies_looked = o->copies_looked;
	b->next_due = o->next_due;
	b->status = o->status;
	b->newest = o->newest;
	b->last_time = o->last_time;
	b->last_ok = o->last_ok;
	b->last_duration = o->last_duration;
	b->value = o->value;
	b->has_value = o->has_value;
	memcpy(b->message, o->message, sizeof(b->message));
	memcpy(b->last_message, o->last_message, sizeof(b->last_message));
	for (size_t i = 0; b->copies && o->copies && i < b->job->ncopies; i++)
		for (size_t k = 0; k < o->job->ncopies; k++) {
			struct bk_copy *n = &b->copies[i];
			const struct bk_copy *p = &o->copies[k];

			if (strcmp(n->name, p->name) != 0)
				continue;
			n->last_time = p->last_time;
			n->last_success = p->last_success;
			n->last_ok = p->last_ok;
			n->last_duration = p->last_duration;
			n->last_copied = p->last_copied;
			n->newest = p->newest;
			memcpy(n->last_message, p->last_message, sizeof(n->last_message));
		}
}

static void bk_free(void *impl)
{
	struct bk_check *b = impl;

	if (!b)
		return;
	plan_ref_put(b->pr);
	free(b->scratch);
	free(b->copies);
	free(b);
}

static const struct check_ops bk_ops = {
	.run = bk_run, .rule = bk_rule, .carry = bk_carry, .free = bk_free,
};

/* How often a check looks: RPO checks a quarter of a short RPO (at most
 * every 10 s, a copy's every minute), run checks as often as a short
 * schedule (at most every 5 s). */
static usec_t check_every(const struct backup_job *job, enum bk_kind k)
{
	usec_t every = k == BK_RPO ? 10 * USEC_PER_SEC : 5 * USEC_PER_SEC;

	/* A copy is often a remote store, where each look costs requests. */
	if (k == BK_COPY_RPO)
		every = USEC_PER_MINUTE;
	if ((k == BK_RPO || k == BK_COPY_RPO) && job->rpo / 4 < every)
		every = job->rpo / 4;
	if (k == BK_RUN && job->schedule.every && job->schedule.every < every)
		every = job->schedule.every;
	if (k == BK_RUN && !job->schedule.text) /* nothing to run, nothing to look at */
		every = USEC_PER_HOUR;
	return every < USEC_PER_SEC ? USEC_PER_SEC : every;
}

static int add_check(struct agent *a, struct plan_ref *pr, const struct backup_job *job,
		     enum bk_kind k, size_t copy, struct agent_check ***list, size_t *n)
{
	struct bk_check *b;
	struct agent_check *c, **nl;
	char name[300];
	bool rpo = k == BK_RPO || k == BK_COPY_RPO;
	int r;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->kind = k;
	b->pr = plan_ref_get(pr);
	b->job = job;
	b->agent = a;
	b->status = CHECK_UNKNOWN;
	b->copy = copy;
	b->copying = job->ncopies;
	if (asprintf(&b->scratch, "%s/drill", a->settings->state_dir) < 0) {
		b->scratch = NULL;
		bk_free(b);
		return -ENOMEM;
	}
	if (k == BK_RUN && job->ncopies) {
		if (!(b->copies = calloc(job->ncopies, sizeof(*b->copies)))) {
			bk_free(b);
			return -ENOMEM;
		}
		for (size_t i = 0; i < job->ncopies; i++)
			b->copies[i].name = job->copies[i];
	}
	if (k == BK_COPY_RPO)
		snprintf(name, sizeof(name), "rpo:%s:%s", job->name, job->copies[copy]);
	else
		snprintf(name, sizeof(name), "%s:%s", bk_kind_names[k], job->name);
	/* Backups and drills take as long as they take: no timeout. */
	r = agent_check_new(a, name, bk_kind_names[k], check_every(job, k),
			    rpo ? 60 * USEC_PER_SEC : USEC_PER_DAY, &bk_ops, b, &c);
	if (r < 0)
		return r;
	b->check = c;
	json_set_str(c->labels, "job", job->name);
	if (k == BK_COPY_RPO)
		json_set_str(c->labels, "copy", job->copies[copy]);
	json_set_str(c->labels, "component", "backup");
	c->component = strdup("backup");
	nl = realloc(*list, (*n + 1) * sizeof(**list));
	if (!nl || !c->component) {
		agent_check_unref(c);
		return -ENOMEM;
	}
	nl[(*n)++] = c;
	*list = nl;
	return 0;
}

int agent_backup_checks_build(struct agent *a, struct plan_ref *pr, struct agent_check ***list,
			      size_t *n)
{
	const struct backup_plan *bp = pr->plan->backup;
	int r;

	for (size_t i = 0; bp && i < bp->njobs; i++) {
		const struct backup_job *job = &bp->jobs[i];

		if ((job->schedule.text || job->ncopies) &&
		    (r = add_check(a, pr, job, BK_RUN, 0, list, n)) < 0)
			return r;
		if (job->rpo && (r = add_check(a, pr, job, BK_RPO, 0, list, n)) < 0)
			return r;
		for (size_t k = 0; job->rpo && k < job->ncopies; k++)
			if ((r = add_check(a, pr, job, BK_COPY_RPO, k, list, n)) < 0)
				return r;
		if (job->drill_every && (r = add_check(a, pr, job, BK_DRILL, 0, list, n)) < 0)
			return r;
	}
	return 0;
}

static struct bk_check *find(struct agent *a, const char *job, enum bk_kind kind)
{
	for (size_t i = 0; i < a->n_checks; i++) {
		struct agent_check *c = a->checks[i];
		struct bk_check *b = c->impl;

		if (c->ops == &bk_ops && b->kind == kind && strcmp(b->job->name, job) == 0)
			return b;
	}
	return NULL;
}

void agent_backup_job_ran(struct agent *a, const char *job)
{
	struct bk_check *b = find(a, job, BK_RUN);

	if (b && b->job->ncopies)
		copies_after_run(b);
}

static struct bk_check *find_copy_rpo(struct agent *a, const char *job, size_t copy)
{
	for (size_t i = 0; i < a->n_checks; i++) {
		struct agent_check *c = a->checks[i];
		struct bk_check *b = c->impl;

		if (c->ops == &bk_ops && b->kind == BK_COPY_RPO && b->copy == copy &&
		    strcmp(b->job->name, job) == 0)
			return b;
	}
	return NULL;
}

static void set_time(json_t *o, const char *key, usec_t t)
{
	char when[40];

	json_set_str(o, key, t ? time_format_iso(t, when, sizeof(when)) : NULL);
}

/* The job's copies: where each stands, for the API, metrics and dashboard. */
static json_t *copies_json(struct agent *a, const struct backup_job *job,
			   const struct bk_check *run, usec_t now)
{
	json_t *list = json_array();

	for (size_t k = 0; list && k < job->ncopies; k++) {
		const struct bk_copy *cp = run ? &run->copies[k] : NULL;
		const struct bk_check *rpo = find_copy_rpo(a, job->name, k);
		usec_t newest = rpo ? rpo->newest : 0;
		json_t *o = json_object();

		if (!o)
			break;
		json_array_append_new(list, o);
		if (cp && cp->newest > newest)
			newest = cp->newest;
		json_set_str(o, "name", job->copies[k]);
		set_time(o, "newest_snapshot", newest);
		if (newest)
			json_set_real(o, "age_s", now > newest ? (double)(now - newest) / 1e6 : 0);
		else
			json_object_set_new(o, "age_s", json_null());
		if (job->rpo)
			json_set_bool(o, "rpo_ok", newest && now - newest <= job->rpo);
		else
			json_object_set_new(o, "rpo_ok", json_null());
		json_set_bool(o, "copying", cp && cp->started);
		set_time(o, "last_success", cp ? cp->last_success : 0);
		if (cp && cp->last_success)
			json_set_real(o, "last_success_unix", (double)cp->last_success / 1e6);
		else
			json_object_set_new(o, "last_success_unix", json_null());
		if (cp && cp->last_time) {
			json_t *l = json_object();

			set_time(l, "time", cp->last_time);
			json_set_bool(l, "ok", cp->last_ok);
			json_set_int(l, "snapshots", cp->last_copied);
			json_set_str(l, "message", cp->last_message);
			json_set_real(l, "duration_s", cp->last_duration);
			json_object_set_new(o, "last_copy", l);
		} else {
			json_object_set_new(o, "last_copy", json_null());
		}
	}
	return list;
}

json_t *agent_backups_json(struct agent *a)
{
	const struct backup_plan *bp = a->plan->backup;
	json_t *list = json_array();
	usec_t now = now_realtime();

	for (size_t i = 0; list && bp && i < bp->njobs; i++) {
		const struct backup_job *job = &bp->jobs[i];
		struct bk_check *run = find(a, job->name, BK_RUN), *rpo = find(a, job->name, BK_RPO);
		struct bk_check *drill = find(a, job->name, BK_DRILL);
		usec_t newest = 0;
		json_t *o = json_object();

		if (!o)
			break;
		json_array_append_new(list, o);
		/* (a drill from a copy sees the copy's newest, not the job's) */
		for (struct bk_check *b = run                                     ? run
					  : rpo                                   ? rpo
					  : drill && job->drill_repo == job->repo ? drill
										  : NULL;
		     b; b = NULL)
			newest = b->newest;
		if (rpo && rpo->newest > newest)
			newest = rpo->newest;
		json_set_str(o, "name", job->name);
		json_set_str(o, "repository", job->repository);
		json_set_str(o, "schedule", job->schedule.text);
		json_object_set_new(o, "copies", copies_json(a, job, run, now));
		json_set_str(o, "drill_from", job->drill_every ? job->drill_repo->name : NULL);
		set_time(o, "newest_snapshot", newest);
		if (newest)
			json_set_real(o, "age_s", now > newest ? (double)(now - newest) / 1e6 : 0);
		else
			json_object_set_new(o, "age_s", json_null());
		if (job->rpo) {
			bool met = newest && now - newest <= job->rpo;
			const json_t *c;
			size_t k;

			json_set_real(o, "rpo_s", (double)job->rpo / 1e6);
			json_set_bool(o, "rpo_ok", met);
			/* 3-2-1: met only when every copy is fresh too */
			json_array_foreach(json_object_get(o, "copies"), k, c)
				met = met && json_is_true(json_object_get(c, "rpo_ok"));
			json_set_bool(o, "rpo_met", met);
		} else {
			json_object_set_new(o, "rpo_s", json_null());
			json_object_set_new(o, "rpo_ok", json_null());
			json_object_set_new(o, "rpo_met", json_null());
		}
		if (run && run->last_time) {
			json_t *r = json_object();

			set_time(r, "time", run->last_time);
			json_set_bool(r, "ok", run->last_ok);
			json_set_str(r, "message", run->last_message);
			json_set_real(r, "duration_s", run->last_duration);
			json_object_set_new(o, "last_run", r);
		} else {
			json_object_set_new(o, "last_run", json_null());
		}
		if (drill && drill->last_time) {
			json_t *d = json_object();

			set_time(d, "time", drill->last_time);
			json_set_real(d, "duration_s", drill->last_duration);
			if (job->rto)
				json_set_real(d, "rto_s", (double)job->rto / 1e6);
			else
				json_object_set_new(d, "rto_s", json_null());
			json_set_bool(d, "ok", drill->last_ok);
			json_set_str(d, "repository", job->drill_repo->name);
			json_set_str(d, "message", drill->last_message);
			json_object_set_new(o, "last_drill", d);
		} else {
			json_object_set_new(o, "last_drill", json_null());
		}
	}
	return list;
}
