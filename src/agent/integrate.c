#include "agent/integrate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "act/act.h"
#include "agent/backups.h"
#include "agent/checks.h"
#include "agent/cluster-alerts.h"
#include "agent/lb-follow.h"
#include "agent/state.h"
#include "alert/alert.h"
#include "backup/backup.h"
#include "cluster/cluster.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/hostport.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lb/lb.h"
#include "lb/report.h"
#include "monitor/monitor.h"
#include "plan/plan.h"
#include "predict/predict.h"

struct plan_ref *plan_ref_new(struct plan *take)
{
	struct plan_ref *pr = calloc(1, sizeof(*pr));

	if (!pr)
		return NULL;
	pr->refs = 1;
	pr->plan = take;
	return pr;
}

/* Atomic: the act engine's threads take references too. */
struct plan_ref *plan_ref_get(struct plan_ref *pr)
{
	__atomic_add_fetch(&pr->refs, 1, __ATOMIC_RELAXED);
	return pr;
}

void plan_ref_put(struct plan_ref *pr)
{
	if (!pr || __atomic_sub_fetch(&pr->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	plan_free(pr->plan);
	free(pr);
}

/* ---- monitor checks ---- */

struct mon_check {
	struct plan_ref *pr;
	const struct check_def *def; /* in pr->plan */
	struct probe_state *ps;
	struct probe_env env;
	struct rule_state rs;
	struct probe_result pr_result; /* written by the worker, read after */
	struct predict *predict;      /* predict: or anomaly: */
	unsigned anomalous_runs;
	uint64_t predict_saved;       /* samples of the predictor when last saved */
	usec_t predict_saved_at;
	struct agent_check *check;    /* back pointer (not a reference) */
};

static void mon_run(void *impl, struct check_result *res)
{
	struct mon_check *m = impl;
	int r;

	memset(&m->pr_result, 0, sizeof(m->pr_result));
	r = probe_run(m->def, m->ps, &m->env, &m->pr_result);
	if (r < 0) {
		res->status = CHECK_UNKNOWN;
		snprintf(res->message, sizeof(res->message), "probe failed: %s", err_str(r));
		return;
	}
	res->status = m->pr_result.status;
	res->has_value = m->pr_result.has_value;
	res->value = m->pr_result.value;
	snprintf(res->unit, sizeof(res->unit), "%s", m->pr_result.unit ? m->pr_result.unit : "");
	snprintf(res->message, sizeof(res->message), "%s", m->pr_result.message);
}

/* The predictor goes to state.db every PREDICT_SAVE_SAMPLES samples or
 * PREDICT_SAVE_INTERVAL, whichever comes first, so a restart (even a
 * kill -9) resumes it instead of starting a new probation. */
#define PREDICT_SAVE_SAMPLES 30
#define PREDICT_SAVE_INTERVAL (5 * USEC_PER_MINUTE)

static void predict_persist(struct mon_check *m, usec_t now)
{
	struct agent *a = m->check->agent;
	uint64_t n = predict_samples(m->predict);
	_cleanup_free_ void *buf = NULL;
	int r;

	if (!a || !a->state || (n < m->predict_saved + PREDICT_SAVE_SAMPLES &&
				now < m->predict_saved_at + PREDICT_SAVE_INTERVAL))
		return;
	buf = malloc(predict_saved_size());
	if (!buf)
		return;
	r = predict_save(m->predict, buf, predict_saved_size());
	if (r >= 0)
		r = state_predict_save(a->state, m->def->name, now, buf, predict_saved_size());
	agent_state_result(a, r, "predictor state");
	m->predict_saved = n;
	m->predict_saved_at = now;
}

/* Resumes the check's predictor from state.db; a missing, stale or bad
 * image starts it afresh (with a warning for the bad ones). */
static void predict_resume(struct agent *a, struct mon_check *m)
{
	_cleanup_free_ void *buf = NULL;
	size_t len = 0;
	int r;

	if (!a->state || !m->predict || !(buf = malloc(predict_saved_size())))
		return;
	r = state_predict_load(a->state, m->def->name, buf, predict_saved_size(), &len);
	if (r >= 0)
		r = predict_load(m->predict, buf, len);
	if (r == -BCDR_ERR_NOT_FOUND || r == -ESTALE || r == -EFBIG)
		return; /* none, or another build's layout: a new start */
	if (r < 0) {
		log_warning_errno(r, "check '%s': saved predictor state unusable, starting afresh",
				  m->def->name);
		return;
	}
	m->predict_saved = predict_samples(m->predict);
	m->check->anomaly_samples = m->predict_saved;
}

static void mon_predict(struct mon_check *m, struct check_result *res, usec_t now)
{
	struct agent_check *c = m->check;
	const struct check_def *def = m->def;

	if (!m->predict || !res->has_value)
		return;
	c->anomaly_score = predict_update(m->predict, now, res->value);
	c->anomaly_samples = predict_samples(m->predict);
	predict_persist(m, now);
	if (def->anomaly) {
		bool raised = predict_anomaly_rule(&m->anomalous_runs, c->anomaly_score,
						   predict_anomaly_raw(m->predict),
						   def->anomaly_above, (unsigned)def->anomaly_for);

		/* An anomaly for `for` runs is a warning, never more. */
		if (raised && m->pr_result.status == CHECK_OK) {
			m->pr_result.status = CHECK_WARNING;
			snprintf(m->pr_result.message, sizeof(m->pr_result.message),
				 "anomalous value %.6g (score %.2f)", res->value, c->anomaly_score);
		}
	}
	if (def->predict && (def->crit.set || def->warn.set)) {
		double threshold = def->crit.set ? def->crit.value : def->warn.value;
		struct predict_eta eta;
		json_t *f;

		if (predict_time_to(m->predict, threshold, !def->below,
				    def->predict_horizon ? def->predict_horizon : 4 * USEC_PER_HOUR,
				    &eta) < 0)
			return;
		f = json_object();
		if (!f)
			return;
		json_set_real(f, "threshold", threshold);
		json_set_bool(f, "crosses", eta.crosses);
		if (eta.crosses) {
			json_set_real(f, "eta_s", (double)eta.eta / 1e6);
			json_set_real(f, "earliest_s", (double)eta.earliest / 1e6);
			if (eta.latest == UINT64_MAX)
				json_object_set_new(f, "latest_s", json_null());
			else
				json_set_real(f, "latest_s", (double)eta.latest / 1e6);
		}
		json_set_real(f, "level", eta.level);
		json_set_real(f, "rate_per_s", eta.rate);
		json_decref(c->forecast);
		c->forecast = f;
	}
}

static int mon_rule(void *impl, struct check_result *res, int current, bool *ret_pending)
{
	struct mon_check *m = impl;
	struct rule_transition tr;
	usec_t now = now_realtime();

	(void)current;
	if (m->pr_result.message[0] == '\0' && res->message[0]) {
		/* probe_run itself failed: feed the bare status */
		rule_update_status(m->def, &m->rs, (enum check_status)res->status, now, &tr);
	} else {
		mon_predict(m, res, now);
		rule_update(m->def, &m->rs, &m->pr_result, now, &tr);
		res->status = m->pr_result.status;
		snprintf(res->message, sizeof(res->message), "%s", m->pr_result.message);
	}
	*ret_pending = tr.pending;
	m->check->flapping = tr.flapping;
	m->check->flap_changed = tr.flap_changed;
	m->check->flap_changes = rule_flap_changes(m->def, &m->rs);
	m->check->flap_window = (unsigned)m->def->flap_cycles;
	if (tr.flap_changed && tr.flapping)
		m->check->flap_severity = rule_recent_worst(m->def, &m->rs);
	return m->rs.state;
}

static void mon_carry(void *impl, const void *old)
{
	struct mon_check *m = impl;
	const struct mon_check *o = old;

	m->rs = o->rs;
	m->anomalous_runs = o->anomalous_runs;
	if (m->predict && o->predict) {
		/* a reload keeps what the predictor learned (same check name) */
		_cleanup_free_ void *buf = malloc(predict_saved_size());

		if (buf && predict_save(o->predict, buf, predict_saved_size()) >= 0 &&
		    predict_load(m->predict, buf, predict_saved_size()) >= 0) {
			m->predict_saved = o->predict_saved;
			m->predict_saved_at = o->predict_saved_at;
			if (m->check)
				m->check->anomaly_samples = predict_samples(m->predict);
		}
	}
	if (o->check && m->check) {
		m->check->flapping = o->check->flapping;
		m->check->flap_severity = o->check->flap_severity;
	}
}

static void mon_restore(void *impl, int status, usec_t since)
{
	struct mon_check *m = impl;

	rule_state_restore(&m->rs, (enum check_status)status, since);
}

static void mon_free(void *impl)
{
	struct mon_check *m = impl;

	if (!m)
		return;
	probe_state_free(m->ps);
	predict_free(m->predict);
	plan_ref_put(m->pr);
	free(m);
}

static const struct check_ops mon_ops = {
	.run = mon_run, .rule = mon_rule, .carry = mon_carry, .restore = mon_restore,
	.free = mon_free,
};

static int add_check(struct agent_check ***list, size_t *n, struct agent_check *c)
{
	struct agent_check **nl = realloc(*list, (*n + 1) * sizeof(**list));

	if (!nl) {
		agent_check_unref(c);
		return -ENOMEM;
	}
	nl[(*n)++] = c;
	*list = nl;
	return 0;
}

static int build_monitor_check(struct agent *a, struct plan_ref *pr, const struct check_def *def,
			       struct agent_check **ret)
{
	struct mon_check *m = calloc(1, sizeof(*m));
	struct agent_check *c;
	const char *component;
	int r;

	if (!m)
		return -ENOMEM;
	m->pr = plan_ref_get(pr);
	m->def = def;
	m->env.backup_newest = backup_job_newest_rpo;
	m->env.backup_userdata = pr->plan;
	rule_state_init(&m->rs);
	r = probe_state_new(def, &m->ps);
	if (r >= 0 && (def->predict || def->anomaly))
		r = predict_new(NULL, &m->predict);
	if (r < 0) {
		mon_free(m);
		return r;
	}
	r = agent_check_new(a, def->name, probe_kind_name(def->kind), def->interval, def->timeout,
			    &mon_ops, m, &c);
	if (r < 0)
		return r;
	m->check = c;
	predict_resume(a, m);
	for (size_t i = 0; i < def->n_labels; i++)
		json_set_str(c->labels, def->labels[i].key, def->labels[i].value);
	json_set_str(c->labels, "check", def->name);
	component = check_label(def, "component");
	if ((component && !(c->component = strdup(component))) ||
	    (def->description && !(c->description = strdup(def->description)))) {
		agent_check_unref(c);
		return -ENOMEM;
	}
	if (def->actions) {
		size_t k = 0;

		while (def->actions[k])
			k++;
		c->actions = calloc(k + 1, sizeof(char *));
		for (size_t i = 0; c->actions && i < k; i++)
			if (!(c->actions[i] = strdup(def->actions[i]))) {
				agent_check_unref(c);
				return -ENOMEM;
			}
		if (!c->actions) {
			agent_check_unref(c);
			return -ENOMEM;
		}
	}
	*ret = c;
	return 0;
}

int agent_checks_build(struct agent *a, struct plan_ref *pr, struct agent_check ***ret,
		       size_t *ret_n)
{
	const struct monitor_plan *mp = pr->plan->checks;
	struct agent_check **list = NULL;
	size_t n = 0;
	int r = 0;

	for (size_t i = 0; mp && i < mp->n_checks && r >= 0; i++) {
		struct agent_check *c;

		if (!mp->checks[i].enabled)
			continue;
		r = build_monitor_check(a, pr, &mp->checks[i], &c);
		if (r >= 0)
			r = add_check(&list, &n, c);
	}
	if (r >= 0)
		r = agent_backup_checks_build(a, pr, &list, &n);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			agent_check_unref(list[i]);
		free(list);
		return r;
	}
	*ret = list;
	*ret_n = n;
	return 0;
}

/* ---- alert and act engines ---- */

void agent_check_feed(struct agent *a, struct agent_check *c)
{
	const char *labels[2 * 16 + 1], *annotations[5];
	const char *severity = check_status_name(c->status);
	enum alert_input input;
	size_t n = 0;
	const char *key;
	json_t *v;

	char flap_summary[sizeof(c->last.message) + 128];

	/* cluster: a leader whose healthy: checks fail steps down */
	cluster_check_state(a->cluster, c->name, check_status_name(c->status));

	if (c->status == CHECK_OK)
		input = c->pending ? ALERT_INPUT_PENDING : ALERT_INPUT_OK;
	else
		input = ALERT_INPUT_FIRING;
	if (c->status == CHECK_OK)
		severity = c->pending ? check_status_name(c->last.status) : "none";
	if (c->flapping) {
		/* Held: one firing alert that says so, whose labels do not follow
		 * each change (a label change would be news). */
		input = ALERT_INPUT_FIRING;
		severity = check_status_name((enum check_status)c->flap_severity);
		snprintf(flap_summary, sizeof(flap_summary),
			 "flapping: %u state changes in the last %u checks; now %s: %s",
			 c->flap_changes, c->flap_window,
			 check_status_name((enum check_status)c->last.status), c->last.message);
	}
	if (a->alerts) {
		json_object_foreach(c->labels, key, v) {
			if (n + 2 >= ELEMENTSOF(labels) - 5 || strcmp(key, "severity") == 0 ||
			    strcmp(key, "flapping") == 0)
				continue;
			labels[n++] = key;
			labels[n++] = json_string_value(v);
		}
		labels[n++] = "severity";
		labels[n++] = severity;
		if (c->flapping) {
			labels[n++] = "flapping";
			labels[n++] = "true";
		}
		labels[n] = NULL;
		annotations[0] = "summary";
		annotations[1] = c->flapping ? flap_summary : c->last.message;
		annotations[2] = c->description ? "description" : NULL;
		annotations[3] = c->description;
		annotations[4] = NULL;
		(void)alert_engine_update(a->alerts, c->name, input, labels, annotations);
	}
	if (!a->acts || !c->actions)
		return;
	if (c->flapping && c->status == CHECK_CRITICAL) {
		/* Held: a fix applied to a check that comes and goes would act on
		 * noise (and spend the action's limit); the state it settles in
		 * decides. Said once per flapping spell. Its ok turns go through,
		 * so settling critical is a new failure to the act engine. */
		if (!c->actions_held) {
			_cleanup_json_ json_t *data = json_object();
			char names[256] = "";
			size_t off = 0;

			for (size_t i = 0; c->actions[i] && off < sizeof(names); i++)
				off += (size_t)snprintf(names + off, sizeof(names) - off, "%s'%s'",
							i ? ", " : "", c->actions[i]);
			c->actions_held = true;
			json_set_str(data, "event", "held");
			json_set_bool(data, "flapping", true);
			agent_event(a, "action", c->name, data, "actions %s held: the check is "
				    "flapping; they run if it settles critical", names);
		}
		return;
	}
	if (!c->flapping)
		c->actions_held = false;
	(void)act_engine_update(a->acts, c->name, (const char *const *)c->actions,
				c->status == CHECK_CRITICAL);
}

static void on_delivery(void *userdata, const struct alert_delivery *d)
{
	struct agent *a = userdata;
	_cleanup_json_ json_t *data = json_object();

	json_set_str(data, "receiver", d->receiver);
	json_set_str(data, "status", d->status);
	json_set_int(data, "alerts", d->n_alerts);
	json_set_int(data, "attempt", d->attempt);
	json_set_bool(data, "ok", d->ok);
	json_set_bool(data, "gave_up", d->gave_up);
	json_set_str(data, "error", d->error);
	json_set_str(data, "checks", d->checks);
	if (d->ok)
		agent_event(a, "notification", NULL, data, "%s notification of %s sent to '%s'",
			    d->status, d->checks ? d->checks : "?", d->receiver);
	else
		agent_event(a, "notification", NULL, data, "%s notification of %s to '%s' failed "
			    "(attempt %u%s): %s", d->status, d->checks ? d->checks : "?", d->receiver,
			    d->attempt, d->gave_up ? ", giving up" : "", d->error ? d->error : "?");
}

static void on_act_event(void *userdata, const struct act_event *ev)
{
	struct agent *a = userdata;
	_cleanup_json_ json_t *data = json_object();
	static const char *const kinds[] = { "run", "skipped", "escalated", "reset" };

	json_set_str(data, "action", ev->action);
	json_set_str(data, "event", kinds[ev->kind]);
	if (ev->run) {
		json_set_int(data, "exit_status", ev->run->exit_status);
		json_set_bool(data, "ok", ev->run->ok);
		json_set_bool(data, "timed_out", ev->run->timed_out);
		json_set_real(data, "duration_s", (double)ev->run->duration / 1e6);
		json_set_str(data, "output", ev->run->output);
	}
	agent_event(a, "action", ev->check, data, "action '%s' %s: %s", ev->action,
		    kinds[ev->kind], ev->message ? ev->message : "");
	/* a backup is a backup, whoever starts it: then its copies */
	if (ev->run && ev->run->kind == ACT_BACKUP && ev->run->ok && ev->run->job)
		agent_backup_job_ran(a, ev->run->job);
}

static int act_run_job(void *userdata, enum act_kind kind, const char *job, char **ret_message)
{
	struct agent *a = userdata;
	struct plan_ref *pr;
	int r;

	/* The act engine's own thread: blocking is fine here, under a
	 * reference to the plan that a reload cannot take away. */
	pthread_mutex_lock(&a->plan_lock);
	pr = plan_ref_get(a->plan_ref);
	pthread_mutex_unlock(&a->plan_lock);
	if (kind == ACT_BACKUP) {
		struct backup_job_result res = {};

		r = backup_job_run(pr->plan, job, &res);
		plan_ref_put(pr);
		*ret_message = strdup(res.message);
		return r == -BCDR_ERR_PARTIAL ? 0 : r;
	} else {
		struct backup_drill_result res = {};
		char dir[] = "/tmp/bcdr-drill-XXXXXX";

		if (!mkdtemp(dir)) {
			plan_ref_put(pr);
			return -errno;
		}
		r = backup_job_drill(pr->plan, job, dir, &res);
		plan_ref_put(pr);
		rmdir(dir);
		*ret_message = strdup(res.message);
		return r < 0 ? r : res.ok ? 0 : -BCDR_ERR_CORRUPT;
	}
}

static void lb_start_plan(struct agent *a);
static void lb_reporter_start(struct agent *a);
static void lb_follow_apply(struct agent *a, bool always);

/* ---- cluster ---- */

/* A takeover this member measured: into the history (state.db) that
 * /api/v1/cluster, /metrics and `bcdr model` read, and into its event. */
static void cluster_failover_note(struct agent *a, const struct failover_record *fo,
				  json_t *data)
{
	int r;

	json_object_set_new(data, "failover", failover_record_json(fo));
	if (!a->state)
		return;
	r = failover_log_add(state_db(a->state), fo, FAILOVER_KEEP);
	if (r < 0)
		log_warning_errno(r, "cluster: service '%s': cannot record its failover", fo->service);
}

static void on_cluster_event(void *userdata, const struct cluster_event *ev)
{
	struct agent *a = userdata;
	_cleanup_json_ json_t *data = json_object();

	json_set_str(data, "event", ev->kind);
	json_set_str(data, "service", ev->service);
	json_set_str(data, "member", ev->member);
	if (ev->token)
		json_set_int(data, "fencing_token", ev->token);
	if (ev->previous)
		json_set_str(data, "previous", ev->previous);
	json_set_bool(data, "problem", ev->problem);
	if (ev->failover)
		cluster_failover_note(a, ev->failover, data);
	agent_event(a, "cluster", NULL, data, "%s", ev->message);
	cluster_alerts_note(a->cluster_alerts, ev);
	lb_follow_apply(a, false);
}

/* The engine runs on the plan it started with, or the one a reload
 * handed it (cluster_set_plan); one that cannot start leaves the agent
 * running without it, said in the log. */
static void cluster_start_plan(struct agent *a)
{
	struct cluster_options co = {
		.member = a->host, .host = a->host, .api = a->settings->listen,
		.on_event = on_cluster_event, .userdata = a,
	};
	int r;

	if (!a->plan->cluster || !a->plan->cluster->has_cluster)
		return;
	if (!a->cluster_alerts && cluster_alerts_new(a, &a->cluster_alerts) < 0)
		log_warning("cluster '%s': its events raise no alerts (out of memory)",
			    a->plan->cluster->name);
	r = cluster_new(a->plan->cluster, a->base, &co, &a->cluster);
	if (r >= 0)
		r = cluster_start(a->cluster);
	if (r < 0) {
		log_error_errno(r, "cluster '%s': cannot start", a->plan->cluster->name);
		cluster_free(a->cluster);
		a->cluster = NULL;
		return;
	}
	a->cluster_plan = plan_ref_get(a->plan_ref);
}

/* A reload: an unchanged cluster: and services: leave the engine (and
 * leadership) alone; changed services: alone are taken in by the running
 * engine (what did not change keeps its leader; what left or changed steps
 * down); a changed cluster: stops it (this member steps down from what it
 * leads, then lets its lease go) and starts it on the new plan. Blocks the
 * loop for the demotes, as a stop does. */
static void cluster_set_plan(struct agent *a)
{
	const struct cluster_plan *old = a->cluster_plan ? a->cluster_plan->plan->cluster : NULL;
	struct cluster *c = a->cluster;

	if (cluster_plan_equal(old, a->plan->cluster) && (c || !old))
		return;
	if (c && cluster_plan_same_cluster(old, a->plan->cluster)) {
		int r = cluster_replan(c, a->plan->cluster);

		if (r >= 0) {
			agent_event(a, "cluster", NULL, NULL,
				    "the plan's services: changed: this member keeps its lease and "
				    "what did not change; what left or changed steps down");
			plan_ref_put(a->cluster_plan);
			a->cluster_plan = plan_ref_get(a->plan_ref);
			return;
		}
		log_error_errno(r, "cluster '%s': cannot take the new services in, "
			       "starting again", old->name);
	}
	if (c) {
		agent_event(a, "cluster", NULL, NULL,
			    "the plan's cluster: or services: changed: this member steps down "
			    "and joins again on the new plan");
		cluster_set_stop_reason(c, "the plan changed (reload)");
		a->cluster = NULL;
		cluster_free(c);
	}
	plan_ref_put(a->cluster_plan);
	a->cluster_plan = NULL;
	if (!a->cluster_alerts || !a->plan->cluster || !a->plan->cluster->has_cluster) {
		cluster_alerts_free(a->cluster_alerts);
		a->cluster_alerts = NULL;
	}
	cluster_start_plan(a);
}

int agent_engines_start(struct agent *a)
{
	struct alert_options ao = {
		.host = a->host, .on_delivery = on_delivery, .userdata = a,
	};
	struct act_options co = {
		.on_event = on_act_event, .run_job = act_run_job, .host = a->host,
	};
	int r;

	if (a->state) {
		ao.db = state_db(a->state);
	} else {
		/* Alerts still go out without the disk, from memory. */
		if (sqlite3_open(":memory:", &a->alert_db) != SQLITE_OK)
			return -ENOMEM;
		ao.db = a->alert_db;
	}
	r = alert_engine_new(a->plan->alerts, &ao, &a->alerts);
	if (r >= 0)
		r = alert_engine_start(a->alerts, a->base);
	if (r < 0)
		return r;
	co.userdata = a;
	co.alerts = a->alerts;
	co.db = ao.db;
	r = act_engine_new(a->plan->actions, &co, &a->acts);
	if (r >= 0)
		r = act_engine_start(a->acts, a->base);
	if (r < 0)
		return r;
	/* Balancers that cannot bind leave the agent running, degraded. */
	/* the cluster first: backends that follow its leaders ask it */
	cluster_start_plan(a);
	lb_start_plan(a);
	lb_reporter_start(a);
	lb_follow_apply(a, false);
	return 0;
}

static void on_lb_event(const struct lb_event *ev, void *userdata)
{
	struct agent *a = userdata;
	_cleanup_json_ json_t *data = json_object();

	json_set_str(data, "balancer", ev->balancer);
	json_set_str(data, "backend", ev->backend);
	json_set_str(data, "from", ev->from);
	json_set_str(data, "to", ev->to);
	json_set_bool(data, "backup", ev->backup);
	json_set_int(data, "usable_primaries", ev->usable_primaries);
	agent_event(a, "lb", NULL, data, "balancer '%s' backend '%s': %s -> %s (%s)", ev->balancer,
		    ev->backend, ev->from, ev->to, ev->reason ? ev->reason : "");
}

/* The host as HAProxy's agent-check sees it: down while a check is critical. */
static enum lb_report_state report_state(void *userdata)
{
	struct agent *a = userdata;

	for (size_t i = 0; i < a->n_checks; i++)
		if (a->checks[i]->status == CHECK_CRITICAL)
			return LB_REPORT_DOWN;
	return LB_REPORT_UP;
}

static void lb_start_plan(struct agent *a)
{
	struct lb_options lo = { .workers = 0, .on_event = on_lb_event, .userdata = a };
	_cleanup_free_ char *error = NULL, *sock = NULL;
	int r;

	if (!a->plan->balancers)
		return;
	/* lb: `bcdr lb status/set` reach the agent's balancers on its socket too. */
	if (asprintf(&sock, "%s/lb.sock", a->settings->state_dir) < 0)
		sock = NULL;
	{
		struct lb_plan *fp = NULL;
		_cleanup_free_ char *sig = NULL;

		r = lb_follow_resolve(a->plan->balancers, a->cluster, &fp, &sig);
		if (r >= 0)
			r = lb_host(fp, a->base, &lo, sock, &a->lb, &error);
		lb_follow_free(fp);
		if (a->lb) {
			free(a->lb_follow_sig);
			a->lb_follow_sig = TAKE_PTR(sig);
		}
	}
	if (r < 0) {
		snprintf(a->lb_error, sizeof(a->lb_error), "balancers: %s",
			 error ? error : err_str(r));
		log_error("%s", a->lb_error);
		return;
	}
	a->lb_error[0] = '\0';
	if (r > 0)
		log_warning("%s", error ? error : "cannot serve the balancers' control socket");
}

static void on_lb_follow_timer(evutil_socket_t fd, short what, void *userdata)
{
	(void)fd;
	(void)what;
	lb_follow_apply(userdata, false);
}

/* Points backends that follow a service at its leader, through lb_reload()
 * (the SIGHUP path: listeners and other connections stay). On each cluster
 * event, and every LB_FOLLOW_EVERY in case a look changed who leads
 * between events; always: reload even when nothing followed changed (the
 * plan did). */
#define LB_FOLLOW_EVERY (250 * USEC_PER_MSEC)
static void lb_follow_apply(struct agent *a, bool always)
{
	struct lb_plan *fp = NULL;
	_cleanup_free_ char *sig = NULL, *warning = NULL;
	bool follows = a->plan->balancers && lb_follow_needed(a->plan->balancers);
	int r;

	if (!a->lb || !a->plan->balancers)
		return;
	if (follows && !a->lb_follow_timer)
		a->lb_follow_timer = event_new(a->base, -1, EV_PERSIST, on_lb_follow_timer, a);
	if (a->lb_follow_timer) {
		struct timeval tv = { 0, LB_FOLLOW_EVERY };

		if (follows)
			event_add(a->lb_follow_timer, &tv);
		else
			event_del(a->lb_follow_timer);
	}
	if (!follows && !always)
		return;
	r = lb_follow_resolve(a->plan->balancers, a->cluster, &fp, &sig);
	if (r < 0) {
		log_error_errno(r, "balancers: cannot follow the cluster's leaders");
		return;
	}
	if (always || !a->lb_follow_sig || strcmp(sig, a->lb_follow_sig) != 0) {
		r = lb_reload(a->lb, fp, &warning);
		if (r < 0)
			log_error_errno(r, "balancers: cannot apply the plan's backends");
		if (warning)
			log_warning("balancers: %s", warning);
		free(a->lb_follow_sig);
		a->lb_follow_sig = TAKE_PTR(sig);
	}
	lb_follow_free(fp);
}

static void lb_reporter_start(struct agent *a)
{
	char host[256];
	uint16_t port;
	int r;

	if (!a->settings->lb_report_port || a->lb_reporter)
		return;
	if (hostport_split(a->settings->listen, strlen(a->settings->listen), 0, host, sizeof(host),
			   &port) < 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	r = lb_reporter_new(a->base, host, (unsigned)a->settings->lb_report_port, report_state, a,
			    &a->lb_reporter);
	if (r < 0) {
		snprintf(a->lb_error, sizeof(a->lb_error), "lb_report_port %lld: %s",
			 (long long)a->settings->lb_report_port, err_str(r));
		log_error("%s", a->lb_error);
	}
}

void agent_engines_set_plan(struct agent *a)
{
	if (a->alerts)
		(void)alert_engine_set_plan(a->alerts, a->plan->alerts);
	if (a->acts)
		(void)act_engine_set_plan(a->acts, a->plan->actions);
	if (a->lb && a->plan->balancers) {
		lb_follow_apply(a, true);
	} else if (a->lb) {
		lb_free(a->lb);
		a->lb = NULL;
	} else {
		lb_start_plan(a);
	}
	lb_reporter_start(a);
	cluster_set_plan(a);
	lb_follow_apply(a, false); /* a new cluster engine: its leaders */
}

void agent_engines_stop(struct agent *a)
{
	/* first: what this member leads steps down while the rest still runs */
	struct cluster *cluster = a->cluster;

	a->cluster = NULL;
	cluster_free(cluster);
	/* after the engine's last events, before the alert engine goes */
	cluster_alerts_free(a->cluster_alerts);
	a->cluster_alerts = NULL;
	plan_ref_put(a->cluster_plan);
	a->cluster_plan = NULL;
	lb_reporter_free(a->lb_reporter);
	a->lb_reporter = NULL;
	lb_free(a->lb);
	a->lb = NULL;
	if (a->lb_follow_timer)
		event_free(a->lb_follow_timer);
	a->lb_follow_timer = NULL;
	free(a->lb_follow_sig);
	a->lb_follow_sig = NULL;
	act_engine_free(a->acts);
	a->acts = NULL;
	alert_engine_free(a->alerts);
	a->alerts = NULL;
	if (a->alert_db)
		sqlite3_close(a->alert_db);
	a->alert_db = NULL;
}
