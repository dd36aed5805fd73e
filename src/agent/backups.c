#include "agent/backups.h"

/* Backup jobs as checks: a scheduled run (with the job's retention), the
 * freshness of the newest snapshot against the job's rpo, and restore
 * drills against its rto. They alert, are events and are metrics like any
 * other check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/checks.h"
#include "agent/integrate.h"
#include "backup/backup.h"
#include "backup/module.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "plan/plan.h"

enum bk_kind { BK_RUN, BK_RPO, BK_DRILL };
static const char *const bk_kind_names[] = { "backup", "rpo", "drill" };

struct bk_check {
	enum bk_kind kind;
	struct plan_ref *pr;
	const struct backup_job *job;
	struct agent *agent;
	char *scratch;          /* drills restore under here */
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

static void bk_run(void *impl, struct check_result *res)
{
	struct bk_check *b = impl;
	const struct plan *plan = b->pr->plan;
	usec_t now = now_realtime(), newest = 0;
	int r;

	b->did_run = false;
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
			snprintf(b->message, sizeof(b->message), "no snapshot to drill yet");
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
			snprintf(b->message, sizeof(b->message), "drill failed: %.480s",
				 dr.message[0] ? dr.message : err_str(r));
		} else if (b->job->rto && dr.duration_s * 1e6 > (double)b->job->rto) {
			b->status = CHECK_CRITICAL;
			snprintf(b->message, sizeof(b->message), "restore took %s, over the rto %s",
				 duration_format((usec_t)(dr.duration_s * 1e6), took, sizeof(took)),
				 duration_format(b->job->rto, rto, sizeof(rto)));
		} else if (b->job->db.load) { /* a database drill: what verify printed */
			b->status = CHECK_OK;
			snprintf(b->message, sizeof(b->message), "restored, %.400s in %.2fs%s%s",
				 dr.message, dr.duration_s, b->job->rto ? " (rto " : "",
				 b->job->rto ? duration_format(b->job->rto, rto, sizeof(rto)) : "");
			if (b->job->rto)
				strncat(b->message, ")", sizeof(b->message) - strlen(b->message) - 1);
		} else {
			b->status = CHECK_OK;
			snprintf(b->message, sizeof(b->message), "restored and verified %llu files, "
				 "%llu bytes in %.2fs%s%s", (unsigned long long)dr.files,
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

static int bk_rule(void *impl, struct check_result *res, int current, bool *ret_pending)
{
	struct bk_check *b = impl;
	_cleanup_json_ json_t *data = NULL;

	(void)current;
	*ret_pending = false;
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
	agent_event(b->agent, b->kind == BK_DRILL ? "drill" : "backup", NULL, data, "%s '%s' %s: %s",
		    b->kind == BK_DRILL ? "drill of" : "backup job", b->job->name,
		    b->last_ok ? "done" : "failed", res->message);
	return res->status;
}

static void bk_carry(void *impl, const void *old)
{
	struct bk_check *b = impl;
	const struct bk_check *o = old;

	if (b->kind != o->kind)
		return;
	b->started = o->started;
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
}

static void bk_free(void *impl)
{
	struct bk_check *b = impl;

	if (!b)
		return;
	plan_ref_put(b->pr);
	free(b->scratch);
	free(b);
}

static const struct check_ops bk_ops = {
	.run = bk_run, .rule = bk_rule, .carry = bk_carry, .free = bk_free,
};

int agent_backup_checks_build(struct agent *a, struct plan_ref *pr, struct agent_check ***list,
			      size_t *n)
{
	const struct backup_plan *bp = pr->plan->backup;

	for (size_t i = 0; bp && i < bp->njobs; i++) {
		const struct backup_job *job = &bp->jobs[i];

		for (int k = BK_RUN; k <= BK_DRILL; k++) {
			struct bk_check *b;
			struct agent_check *c, **nl;
			char name[300];
			usec_t every;
			int r;

			if ((k == BK_RUN && !job->schedule.text) || (k == BK_RPO && !job->rpo) ||
			    (k == BK_DRILL && !job->drill_every))
				continue;
			b = calloc(1, sizeof(*b));
			if (!b)
				return -ENOMEM;
			b->kind = (enum bk_kind)k;
			b->pr = plan_ref_get(pr);
			b->job = job;
			b->agent = a;
			b->status = CHECK_UNKNOWN;
			if (asprintf(&b->scratch, "%s/drill", a->settings->state_dir) < 0) {
				bk_free(b);
				return -ENOMEM;
			}
			snprintf(name, sizeof(name), "%s:%s", bk_kind_names[k], job->name);
			/* Schedules have minute resolution: a few seconds is enough. */
			every = k == BK_RPO ? 10 * USEC_PER_SEC : 5 * USEC_PER_SEC;
			/* Backups and drills take as long as they take: no timeout. */
			r = agent_check_new(a, name, bk_kind_names[k], every,
					    k == BK_RPO ? 60 * USEC_PER_SEC : USEC_PER_DAY, &bk_ops, b, &c);
			if (r < 0)
				return r;
			json_set_str(c->labels, "job", job->name);
			json_set_str(c->labels, "component", "backup");
			c->component = strdup("backup");
			nl = realloc(*list, (*n + 1) * sizeof(**list));
			if (!nl || !c->component) {
				agent_check_unref(c);
				return -ENOMEM;
			}
			nl[(*n)++] = c;
			*list = nl;
		}
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

static void set_time(json_t *o, const char *key, usec_t t)
{
	char when[40];

	json_set_str(o, key, t ? time_format_iso(t, when, sizeof(when)) : NULL);
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
		for (struct bk_check *b = run ? run : rpo ? rpo : drill; b; b = NULL)
			newest = b->newest;
		if (rpo && rpo->newest > newest)
			newest = rpo->newest;
		json_set_str(o, "name", job->name);
		json_set_str(o, "repository", job->repository);
		json_set_str(o, "schedule", job->schedule.text);
		set_time(o, "newest_snapshot", newest);
		if (newest)
			json_set_real(o, "age_s", now > newest ? (double)(now - newest) / 1e6 : 0);
		else
			json_object_set_new(o, "age_s", json_null());
		if (job->rpo) {
			json_set_real(o, "rpo_s", (double)job->rpo / 1e6);
			json_set_bool(o, "rpo_ok", newest && now - newest <= job->rpo);
		} else {
			json_object_set_new(o, "rpo_s", json_null());
			json_object_set_new(o, "rpo_ok", json_null());
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
			json_set_str(d, "message", drill->last_message);
			json_object_set_new(o, "last_drill", d);
		} else {
			json_object_set_new(o, "last_drill", json_null());
		}
	}
	return list;
}
