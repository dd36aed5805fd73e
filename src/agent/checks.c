#include "agent/checks.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/integrate.h"
#include "agent/pool.h"
#include "agent/state.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "plan/plan.h"

/* The most a check runs early to join the batch of another (a tenth of its
 * interval at most). */
#define SCHED_SLACK_MAX (100 * USEC_PER_MSEC)

int agent_check_new(struct agent *a, const char *name, const char *kind, usec_t interval,
		    usec_t timeout, const struct check_ops *ops, void *impl,
		    struct agent_check **ret)
{
	struct agent_check *c = calloc(1, sizeof(*c));

	if (!c) {
		if (ops->free)
			ops->free(impl);
		return -ENOMEM;
	}
	c->refs = 1;
	c->agent = a;
	c->ops = ops;
	c->impl = impl;
	c->interval = interval ? interval : a->settings->interval;
	c->timeout = timeout ? timeout : 10 * USEC_PER_SEC;
	c->status = CHECK_UNKNOWN;
	c->since = now_realtime();
	c->anomaly_score = NAN;
	c->name = strdup(name);
	c->kind = strdup(kind);
	c->labels = json_object();
	if (!c->name || !c->kind || !c->labels) {
		agent_check_unref(c);
		return -ENOMEM;
	}
	json_set_str(c->labels, "check", name);
	json_set_str(c->labels, "host", a->host);
	*ret = c;
	return 0;
}

struct agent_check *agent_check_ref(struct agent_check *c)
{
	c->refs++;
	return c;
}

void agent_check_unref(struct agent_check *c)
{
	if (!c || --c->refs > 0)
		return;
	if (c->ops && c->ops->free)
		c->ops->free(c->impl);
	json_decref(c->labels);
	json_decref(c->forecast);
	free(c->name);
	free(c->kind);
	free(c->component);
	free(c->description);
	strv_free(c->actions);
	free(c);
}

struct agent_check *agent_check_find(struct agent *a, const char *name)
{
	for (size_t i = 0; i < a->n_checks; i++)
		if (strcmp(a->checks[i]->name, name) == 0)
			return a->checks[i];
	return NULL;
}

/* A confirmed change: event, saved state, incident. */
static void on_transition(struct agent_check *c, int from, int to, usec_t now)
{
	struct agent *a = c->agent;
	_cleanup_json_ json_t *data = json_object();
	struct state_check saved = { .status = to, .since = now };
	int r;

	c->status = to;
	c->since = now;
	snprintf(saved.message, sizeof(saved.message), "%.255s", c->last.message);
	json_set_str(data, "from", check_status_name(from));
	json_set_str(data, "to", check_status_name(to));
	if (c->last.has_value)
		json_set_real(data, "value", c->last.value);
	agent_event(a, "state", c->name, data, "%s -> %s: %s", check_status_name(from),
		    check_status_name(to), c->last.message);
	if (!a->state)
		return;
	r = state_check_save(a->state, c->name, &saved);
	agent_state_result(a, r, "check state");
	/* An incident is an outage: critical opens one, ok closes it. */
	if (to == CHECK_CRITICAL)
		r = state_incident_open(a->state, c->name, c->component, "critical", now);
	else if (to == CHECK_OK)
		r = state_incident_close(a->state, c->name, now);
	else
		r = 0;
	agent_state_result(a, r, "incident");
}

/* Flapping started or stopped: an event (notifications are held meanwhile). */
static void on_flap_change(struct agent_check *c)
{
	_cleanup_json_ json_t *data = json_object();

	c->flap_changed = false;
	json_set_bool(data, "flapping", c->flapping);
	json_set_int(data, "changes", c->flap_changes);
	json_set_int(data, "cycles", c->flap_window);
	json_set_str(data, "state", check_status_name((enum check_status)c->status));
	if (c->flapping)
		agent_event(c->agent, "flapping", c->name, data,
			    "started flapping: %u state changes in the last %u checks",
			    c->flap_changes, c->flap_window);
	else
		agent_event(c->agent, "flapping", c->name, data,
			    "stopped flapping, settled %s: %s",
			    check_status_name((enum check_status)c->status), c->last.message);
}

static void run_work(void *userdata)
{
	struct agent_check *c = userdata;
	usec_t started = now_monotonic();

	memset(&c->inflight, 0, sizeof(c->inflight));
	c->inflight.status = CHECK_UNKNOWN;
	c->ops->run(c->impl, &c->inflight);
	/* The probe's own time, not its wait in the queue behind its batch. */
	c->inflight.duration = now_monotonic() - started;
}

static void run_done(void *userdata, int cancelled)
{
	struct agent_check *c = userdata;
	struct agent *a = c->agent;
	usec_t now = now_realtime();
	int status;

	c->running = false;
	if (cancelled || c->retired) {
		agent_check_unref(c);
		return;
	}
	if (c->inflight.status < 0 || c->inflight.status >= CHECK_STATUS_MAX)
		c->inflight.status = CHECK_UNKNOWN;
	c->last = c->inflight;
	c->has_result = true;
	c->last_run = now;
	c->runs++;
	c->pending = false;
	status = c->ops->rule ? c->ops->rule(c->impl, &c->last, c->status, &c->pending)
			      : c->last.status;
	if (status < 0 || status >= CHECK_STATUS_MAX)
		status = CHECK_UNKNOWN;
	if (a->state)
		state_sample_add(a->state, c->name, now, c->last.has_value, c->last.value,
				 c->last.status);
	if (status != c->status && c->status == CHECK_UNKNOWN && status == CHECK_OK && c->runs == 1 &&
	    c->pending) {
		/* First run, failing but not yet for `for:` cycles: no news. */
		c->status = status;
		c->since = now;
	} else if (status != c->status) {
		on_transition(c, c->status, status, now);
	}
	if (c->flap_changed)
		on_flap_change(c);
	agent_check_feed(a, c);
	agent_check_unref(c);
}

static void check_submit(struct agent_check *c)
{
	int r;

	if (c->running) {
		c->skipped++; /* still busy (or hung): never two runs at once */
		return;
	}
	c->running = true;
	c->run_started = now_monotonic();
	r = pool_submit(c->agent->pool, run_work, run_done, agent_check_ref(c));
	if (r < 0) {
		c->running = false;
		agent_check_unref(c);
		log_warning_errno(r, "cannot queue check '%s'", c->name);
	}
}

/* A check may run this much before it is due, to join a batch. */
static usec_t check_slack(const struct agent_check *c)
{
	return c->interval / 10 < SCHED_SLACK_MAX ? c->interval / 10 : SCHED_SLACK_MAX;
}

static void sched_arm(struct agent *a, usec_t now)
{
	usec_t next = UINT64_MAX, wait;
	struct timeval tv;

	for (size_t i = 0; i < a->n_checks; i++)
		if (a->checks[i]->due < next)
			next = a->checks[i]->due;
	if (next == UINT64_MAX) {
		event_del(a->sched_timer);
		return;
	}
	wait = next > now ? next - now : 0;
	tv = (struct timeval){ (time_t)(wait / USEC_PER_SEC), (suseconds_t)(wait % USEC_PER_SEC) };
	event_add(a->sched_timer, &tv);
}

/* The one scheduler tick: every check that is due goes to the pool in one
 * batch (one worker wake-up, one loop wake-up for its results). */
static void on_sched(evutil_socket_t fd, short what, void *userdata)
{
	struct agent *a = userdata;
	usec_t now = now_monotonic();

	(void)fd;
	(void)what;
	pool_batch_begin(a->pool);
	for (size_t i = 0; i < a->n_checks; i++) {
		struct agent_check *c = a->checks[i];

		if (c->due > now + check_slack(c))
			continue;
		/* Anchored: due times do not drift, so checks of one interval
		 * stay in one batch. Far behind (a stalled loop, a suspend):
		 * start again from now. */
		c->due += c->interval;
		if (c->due <= now)
			c->due = now + c->interval;
		check_submit(c);
	}
	pool_batch_end(a->pool);
	sched_arm(a, now);
}

void agent_checks_install(struct agent *a, struct agent_check **checks, size_t n)
{
	struct agent_check **old = a->checks;
	size_t n_old = a->n_checks;
	usec_t now = now_monotonic();

	for (size_t i = 0; i < n; i++) {
		struct agent_check *c = checks[i];
		struct agent_check *prev = NULL;
		struct state_check saved;

		for (size_t j = 0; j < n_old; j++)
			if (strcmp(old[j]->name, c->name) == 0)
				prev = old[j];
		if (prev && prev->ops == c->ops && c->ops->carry)
			c->ops->carry(c->impl, prev->impl);
		/* A check the reload keeps keeps its turn; new ones run now. */
		c->due = prev && prev->interval == c->interval ? prev->due : now;
		if (prev) {
			c->status = prev->status;
			c->since = prev->since;
			c->last = prev->last;
			c->has_result = prev->has_result;
			c->last_run = prev->last_run;
			c->runs = prev->runs;
		} else if (a->state && state_check_load(a->state, c->name, &saved) >= 0) {
			/* Restarted: the confirmed state survives, so a check that
			 * was failing is not announced again as new. */
			c->status = saved.status;
			c->since = saved.since;
			if (c->ops->restore)
				c->ops->restore(c->impl, saved.status, saved.since);
			snprintf(c->last.message, sizeof(c->last.message), "%s", saved.message);
		}
	}
	for (size_t j = 0; j < n_old; j++) {
		old[j]->retired = true;
		agent_check_unref(old[j]);
	}
	free(old);
	a->checks = checks;
	a->n_checks = n;
	if (!a->sched_timer && n)
		a->sched_timer = evtimer_new(a->base, on_sched, a);
	if (a->sched_timer)
		sched_arm(a, now);
	else if (n)
		log_error("cannot schedule the checks: out of memory");
}

void agent_checks_clear(struct agent *a)
{
	agent_checks_install(a, NULL, 0);
	if (a->sched_timer)
		event_free(a->sched_timer);
	a->sched_timer = NULL;
}

static void set_time(json_t *o, const char *key, usec_t t)
{
	char when[40];

	if (t)
		json_set_str(o, key, time_format_iso(t, when, sizeof(when)));
	else
		json_object_set_new(o, key, json_null());
}

json_t *agent_check_json(const struct agent_check *c)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_set_str(o, "name", c->name);
	json_set_str(o, "kind", c->kind);
	json_set_str(o, "state", check_status_name(c->status));
	json_set_str(o, "severity", c->has_result ? check_status_name(c->last.status) : "unknown");
	set_time(o, "since", c->since);
	if (c->has_result && c->last.has_value)
		json_set_real(o, "value", c->last.value);
	else
		json_object_set_new(o, "value", json_null());
	json_set_str(o, "unit", c->last.unit[0] ? c->last.unit : NULL);
	json_set_str(o, "message", c->last.message);
	json_object_set(o, "labels", c->labels);
	set_time(o, "last_run", c->last_run);
	json_set_real(o, "duration_s", (double)c->last.duration / 1e6);
	json_set_real(o, "interval_s", (double)c->interval / 1e6);
	json_set_bool(o, "running", c->running);
	json_set_bool(o, "pending", c->pending);
	json_set_bool(o, "flapping", c->flapping);
	json_set_real(o, "anomaly_score", c->anomaly_score);
	if (!isnan(c->anomaly_score) || c->anomaly_samples)
		json_set_int(o, "anomaly_samples", (json_int_t)c->anomaly_samples);
	json_object_set_new(o, "forecast", c->forecast ? json_incref(c->forecast) : json_null());
	return o;
}
