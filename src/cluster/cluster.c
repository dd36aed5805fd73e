#include "cluster/cluster.h"
#include "cluster/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/etcd.h"
#include "cluster/ops.h"
#include "cluster/role-command.h"
#include "cluster/vip.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/spawn.h"
#include "lib/strv.h"
#include "lib/timeutil.h"
#include "lib/wake.h"

/* How often the thread looks at its deadline and its commands at least. */
#define TICK (100 * USEC_PER_MSEC)
/* The shortest poll of the leader keys (a follower's failover delay). */
#define POLL_MIN (250 * USEC_PER_MSEC)

struct queued_event {
	struct queued_event *next;
	char kind[16];
	char service[CLUSTER_NAME_MAX + 1];
	char member[CLUSTER_NAME_MAX + 1];
	int64_t token;
	bool problem, initial;
	char previous[CLUSTER_NAME_MAX + 1];
	char message[512];
	struct failover_record fo;
	bool has_fo;
};

char *cluster_member_key(const char *cluster, const char *member)
{
	char *s;

	return asprintf(&s, "/%s/members/%s", cluster, member) < 0 ? NULL : s;
}

char *cluster_leader_key(const char *cluster, const char *service)
{
	char *s;

	return asprintf(&s, "/%s/services/%s/leader", cluster, service) < 0 ? NULL : s;
}

char *cluster_prefix(const char *cluster, const char *what)
{
	char *s;

	return asprintf(&s, "/%s/%s/", cluster, what) < 0 ? NULL : s;
}

/* ---- events, handed to the loop ---- */

static void queue_event(struct cluster *c, const char *kind, const struct svc *s,
			const char *member, int64_t token, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* What an event says beside its message (for the agent's alerts). */
struct event_extra {
	bool problem;         /* something is wrong (it clears with a later event) */
	bool initial;         /* the first look: nothing changed */
	const char *previous; /* the leader before, or NULL */
	const struct failover_record *failover; /* "promoted" after a takeover */
};

static void queue_eventv(struct cluster *c, const char *kind, const struct svc *s,
			 const char *member, int64_t token, const struct event_extra *x,
			 const char *fmt, va_list ap)
{
	struct queued_event *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return;
	snprintf(ev->kind, sizeof(ev->kind), "%s", kind);
	snprintf(ev->service, sizeof(ev->service), "%s", s ? s->def->name : "");
	snprintf(ev->member, sizeof(ev->member), "%s", member ? member : "");
	ev->token = token;
	if (x) {
		ev->problem = x->problem;
		ev->initial = x->initial;
		snprintf(ev->previous, sizeof(ev->previous), "%s", x->previous ? x->previous : "");
		if ((ev->has_fo = x->failover != NULL))
			ev->fo = *x->failover;
	}
	vsnprintf(ev->message, sizeof(ev->message), fmt, ap);
	pthread_mutex_lock(&c->lock);
	*c->events_tail = ev;
	c->events_tail = &ev->next;
	pthread_mutex_unlock(&c->lock);
	wake_signal(c->wake);
}

static void queue_event(struct cluster *c, const char *kind, const struct svc *s,
			const char *member, int64_t token, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	queue_eventv(c, kind, s, member, token, NULL, fmt, ap);
	va_end(ap);
}

static void queue_event_x(struct cluster *c, const char *kind, const struct svc *s,
			  const char *member, int64_t token, const struct event_extra *x,
			  const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static void queue_event_x(struct cluster *c, const char *kind, const struct svc *s,
			  const char *member, int64_t token, const struct event_extra *x,
			  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	queue_eventv(c, kind, s, member, token, x, fmt, ap);
	va_end(ap);
}

static void on_wake(void *arg)
{
	struct cluster *c = arg;
	struct queued_event *list;

	pthread_mutex_lock(&c->lock);
	list = c->events;
	c->events = NULL;
	c->events_tail = &c->events;
	pthread_mutex_unlock(&c->lock);
	while (list) {
		struct queued_event *next = list->next;
		struct cluster_event ev = {
			.kind = list->kind,
			.service = list->service[0] ? list->service : NULL,
			.member = list->member[0] ? list->member : NULL,
			.token = list->token,
			.problem = list->problem,
			.initial = list->initial,
			.previous = list->previous[0] ? list->previous : NULL,
			.message = list->message,
			.failover = list->has_fo ? &list->fo : NULL,
		};

		if (c->opts.on_event)
			c->opts.on_event(c->opts.userdata, &ev);
		free(list);
		list = next;
	}
}

/* ---- checks ---- */

void cluster_check_state(struct cluster *c, const char *check, const char *status)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_checks; i++) {
		if (strcmp(c->checks[i].name, check) != 0 ||
		    strcmp(c->checks[i].status, status) == 0)
			continue;
		snprintf(c->checks[i].status, sizeof(c->checks[i].status), "%s", status);
		c->checks_changed = true;
		c->poke = true;
		pthread_cond_signal(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
}

static bool status_fit(const char *status)
{
	return strcmp(status, "ok") == 0 || strcmp(status, "warning") == 0;
}

/* Under c->lock: each service's fitness from its checks. */
static void update_fitness(struct cluster *c)
{
	for (size_t i = 0; i < c->n_svcs; i++) {
		struct svc *s = &c->svcs[i];
		bool fit = true;

		for (size_t k = 0; s->def->healthy && s->def->healthy[k]; k++)
			for (size_t j = 0; j < c->n_checks; j++)
				if (strcmp(c->checks[j].name, s->def->healthy[k]) == 0 &&
				    !status_fit(c->checks[j].status))
					fit = false;
		s->fit = fit;
	}
}

/* ---- promote and demote ---- */

static int command_start(struct cluster *c, struct svc *s, bool promote, const char *why)
{
	char token[32], *extra[7];
	struct role_command *cmd = &s->cmd;
	_cleanup_free_ char *e_token = NULL, *e_svc = NULL, *e_member = NULL, *e_cluster = NULL,
			    *e_role = NULL, *e_why = NULL;

	snprintf(token, sizeof(token), "%" PRId64, s->token);
	if (asprintf(&e_token, "BCDR_FENCING_TOKEN=%s", token) < 0 ||
	    asprintf(&e_svc, "BCDR_SERVICE=%s", s->def->name) < 0 ||
	    asprintf(&e_member, "BCDR_MEMBER=%s", c->member) < 0 ||
	    asprintf(&e_cluster, "BCDR_CLUSTER=%s", c->plan->name) < 0 ||
	    asprintf(&e_role, "BCDR_ROLE=%s", promote ? "leader" : "standby") < 0 ||
	    asprintf(&e_why, "BCDR_REASON=%s", why ? why : "") < 0)
		return -ENOMEM;
	extra[0] = e_token, extra[1] = e_svc, extra[2] = e_member, extra[3] = e_cluster;
	extra[4] = e_role, extra[5] = e_why, extra[6] = NULL;
	strv_free(cmd->envp);
	cmd->envp = spawn_default_env(extra);
	if (!cmd->envp)
		return -ENOMEM;
	return role_command_start(cmd, promote, promote ? s->def->promote : s->def->demote,
				  s->def->timeout, s->def->vip.address ? &s->def->vip : NULL);
}

/* Steps down: the demote runs first; the key goes once it has ended
 * (finish_demote). While a promote still runs, after it. */
static void begin_demote(struct cluster *c, struct svc *s, const char *why)
{
	if (s->state == SVC_PROMOTING) {
		s->demote_why = why;
		return;
	}
	if (s->state != SVC_LEADING)
		return;
	s->state = SVC_DEMOTING;
	s->demote_why = why;
	if (command_start(c, s, false, why) < 0) {
		/* cannot even start a thread: the key goes, the service is told
		 * nothing; said in the event */
		snprintf(s->cmd.message, sizeof(s->cmd.message), "demote could not start");
		s->cmd.ok = false;
		s->cmd.running = false;
	}
}

void cluster_begin_demote(struct cluster *c, struct svc *s, const char *why)
{
	begin_demote(c, s, why);
}

void cluster_update_fitness(struct cluster *c)
{
	update_fitness(c);
}

/* ---- membership ---- */

static char *member_value(struct cluster *c)
{
	_cleanup_json_ json_t *j = json_object(), *checks = json_object(), *leads = json_array();
	char since[64];

	if (!j || !checks || !leads)
		return NULL;
	json_set_str(j, "member", c->member);
	json_set_str(j, "host", c->host);
	json_set_str(j, "api", c->api);
	json_set_str(j, "address", c->address);
	json_set_str(j, "version", BCDR_VERSION);
	json_set_str(j, "started", time_format_iso(c->started_rt, since, sizeof(since)));
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_checks; i++)
		json_set_str(checks, c->checks[i].name,
			     c->checks[i].status[0] ? c->checks[i].status : "pending");
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < c->n_svcs; i++)
		if (c->svcs[i].state == SVC_LEADING)
			json_array_append_new(leads, json_string(c->svcs[i].def->name));
	json_object_set(j, "checks", checks);
	json_object_set(j, "leads", leads);
	{
		json_t *fit = json_object(), *prio = json_object();

		for (size_t i = 0; fit && prio && i < c->n_svcs; i++) {
			json_object_set_new(fit, c->svcs[i].def->name,
					    json_boolean(c->svcs[i].fit));
			json_object_set_new(prio, c->svcs[i].def->name,
					    json_integer(c->svcs[i].def->priority));
		}
		json_object_set_new(j, "fit", fit);
		json_object_set_new(j, "priority", prio);
	}
	return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

/* ---- the lease and its deadline ---- */

/* CLOCK_BOOTTIME goes on while the host is suspended, CLOCK_MONOTONIC
 * does not: after a suspend, the lease expired in etcd's time as much as
 * it did in ours. */
static usec_t now_boottime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / 1000;
}

static bool deadline_passed(struct cluster *c, usec_t now)
{
	return c->lease && (now >= c->renewed_sent + c->demote_after ||
			    now_boottime() >= c->renewed_sent_boot + c->demote_after);
}

static void note_etcd(struct cluster *c, int r)
{
	if (r >= 0 || r == -ENOENT) {
		if (!c->etcd_ok)
			queue_event_x(c, "etcd", NULL, c->member, 0, &(struct event_extra){},
				      "etcd answers again (%s)", etcd_endpoint(c->etcd));
		c->etcd_ok = true;
		return;
	}
	if (c->etcd_ok)
		queue_event_x(c, "etcd", NULL, c->member, 0, &(struct event_extra){ .problem = true },
			      "etcd unreachable or without quorum: %s", etcd_last_error(c->etcd));
	c->etcd_ok = false;
}

/* The lease is gone or cannot be trusted any more: everything we lead
 * steps down now, before anything else is tried. */
static void lease_lost(struct cluster *c, const char *why)
{
	for (size_t i = 0; i < c->n_svcs; i++)
		begin_demote(c, &c->svcs[i], why);
	if (c->lease)
		c->lost_lease = c->lease;
	c->lease = 0;
	c->next_lease_try = 0;
}

/* A lease given up on may still live in etcd (its renewals failed, or an
 * etcd election renewed it in full), and the leader keys on it with it:
 * once every demote has ended and etcd answers again (a new lease was
 * granted), it is revoked, so a standby takes over now rather than up to
 * ttl later. Never before: the key must outlive the service it names. */
static void revoke_lost_lease(struct cluster *c, usec_t now)
{
	int r;

	if (!c->lost_lease || !c->lease)
		return;
	for (size_t i = 0; i < c->n_svcs; i++)
		if (c->svcs[i].state == SVC_PROMOTING || c->svcs[i].state == SVC_DEMOTING)
			return;
	r = etcd_lease_revoke(c->etcd, c->lost_lease, now + c->renew_every);
	if (r >= 0 || r == -ENOENT)
		c->lost_lease = 0;
}

/* Checks the deadline after a call that may have blocked (or a pause):
 * true when it passed and the services were told to step down. */
static bool check_deadline(struct cluster *c)
{
	if (!deadline_passed(c, now_monotonic()))
		return false;
	lease_lost(c, "the lease could not be renewed in time");
	return true;
}

static void keep_lease(struct cluster *c, usec_t now)
{
	int64_t ttl, id, rev;
	usec_t sent = now, sent_boot = now_boottime();
	int r;

	if (!c->lease) {
		if (now < c->next_lease_try)
			return;
		r = etcd_lease_grant(c->etcd, (int64_t)(c->ttl / USEC_PER_SEC),
				     now + c->renew_every, &id);
		note_etcd(c, r);
		if (r < 0) {
			c->next_lease_try = now_monotonic() + POLL_MIN;
			return;
		}
		c->lease = id;
		c->renewed_sent = sent;
		c->renewed_sent_boot = sent_boot;
		c->member_dirty = true;
		return;
	}
	if (now < c->renewed_sent + c->renew_every || now < c->next_lease_try)
		return;
	/* a renewal that would come back after the deadline is no use */
	r = etcd_lease_keepalive(c->etcd, c->lease, c->revision, c->renewed_sent + c->demote_after,
				 &ttl, &rev);
	note_etcd(c, r);
	if (r == -ENOENT) {
		lease_lost(c, "the lease expired");
		return;
	}
	if (r < 0) {
		c->next_lease_try = now_monotonic() + POLL_MIN;
		return;
	}
	c->renewed_sent = sent;
	c->renewed_sent_boot = sent_boot;
	c->next_lease_try = 0;
	if (rev > c->revision)
		c->revision = rev;
}

static void put_member(struct cluster *c)
{
	_cleanup_free_ char *v = NULL;
	int r;

	if (!c->lease || !c->member_dirty)
		return;
	v = member_value(c);
	if (!v)
		return;
	r = etcd_put(c->etcd, c->member_key, v, c->lease, now_monotonic() + c->renew_every);
	note_etcd(c, r);
	if (r >= 0)
		c->member_dirty = false;
}

/* ---- services ---- */

static const struct etcd_kv *find_kv(const struct etcd_kv *kvs, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kvs[i].key, key) == 0)
			return &kvs[i];
	return NULL;
}

/* The member named in a leader key's value. */
static void leader_of(const struct etcd_kv *kv, char *out, size_t size)
{
	_cleanup_json_ json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
	const char *m = json_string_value(json_object_get(j, "member"));

	snprintf(out, size, "%s", m && cluster_name_valid(m) ? m : "?");
}

static void note_leader(struct cluster *c, struct svc *s, const struct etcd_kv *kv)
{
	char who[CLUSTER_NAME_MAX + 1] = "";
	int64_t token = kv ? kv->create_revision : 0;

	if (kv)
		leader_of(kv, who, sizeof(who));
	/* the leader before, even when a look between saw none */
	struct event_extra x = { .problem = !kv, .initial = !s->looked,
				 .previous = s->last_leader };
	bool first = !s->looked;

	s->looked = true;
	if (token == s->seen_token && !first)
		return;
	if (kv && s->seen_token != token && !first)
		s->leader_changes++;
	if (kv && token == s->token)
		; /* ourselves: said as "promoted" */
	else if (kv)
		queue_event_x(c, "leader", s, who, token, &x,
			      "service '%s': '%s' leads (fencing token "
			      "%" PRId64 ")",
			      s->def->name, who, token);
	else
		queue_event_x(c, "leader", s, NULL, 0, &x, "service '%s' has no leader%s%s%s",
			      s->def->name, s->seen_leader[0] ? " (was '" : "", s->seen_leader,
			      s->seen_leader[0] ? "')" : "");
	snprintf(s->seen_leader, sizeof(s->seen_leader), "%s", who);
	if (kv)
		snprintf(s->last_leader, sizeof(s->last_leader), "%s", who);
	s->seen_token = token;
}

static void try_lead(struct cluster *c, struct svc *s, usec_t now)
{
	_cleanup_free_ char *value = NULL;
	_cleanup_json_ json_t *j = json_object();
	struct etcd_kv holder;
	char since[64];
	bool created;
	int64_t rev;
	int r;

	/* only with time left on the lease for the promote to begin safely */
	if (!c->lease || now + c->renew_every > c->renewed_sent + c->demote_after)
		return;
	json_set_str(j, "member", c->member);
	json_set_str(j, "since", time_format_iso(now_realtime(), since, sizeof(since)));
	json_set_int(j, "since_us", (long long)now_realtime());
	value = json_dumps(j, JSON_COMPACT);
	if (!value)
		return;
	r = etcd_create(c->etcd, s->key, value, c->lease, now + c->renew_every, &created, &rev,
			&holder);
	note_etcd(c, r);
	if (r < 0)
		return;
	etcd_kv_release(&holder);
	if (!created)
		return;
	if (rev > c->revision)
		c->revision = rev;
	if (check_deadline(c)) {
		/* the create came back late: never promoted, nothing to demote;
		 * the key goes with the lease we no longer trust */
		s->retry_after = now_monotonic() + c->ttl;
		return;
	}
	s->token = rev;
	failover_watch_created(&s->fw, now);
	s->state = SVC_PROMOTING;
	s->demote_why = NULL;
	if (command_start(c, s, true, NULL) < 0) {
		s->state = SVC_LEADING;
		begin_demote(c, s, "promote could not start");
	}
}

/* Whether another live member is fit for s with a higher priority: it
 * should take the key, and we only after a grace (it may be stuck). */
static bool outranked(struct cluster *c, const struct svc *s, const struct etcd_kv *kvs, size_t n)
{
	size_t plen = strlen(c->members_prefix);

	for (size_t i = 0; i < n; i++) {
		_cleanup_json_ json_t *j = NULL;
		const json_t *prio;

		if (strncmp(kvs[i].key, c->members_prefix, plen) != 0 ||
		    strcmp(kvs[i].key, c->member_key) == 0)
			continue;
		j = json_loadb(kvs[i].value, kvs[i].value_len, 0, NULL);
		prio = json_object_get(json_object_get(j, "priority"), s->def->name);
		if (json_is_true(json_object_get(json_object_get(j, "fit"), s->def->name)) &&
		    json_is_integer(prio) && json_integer_value(prio) > s->def->priority)
			return true;
	}
	return false;
}

/* ---- operations: maintenance, switchover, members (ops.c) ---- */

static int names_add(char ***v, size_t *n, const char *name)
{
	char **g = realloc(*v, (*n + 2) * sizeof(*g));

	if (!g)
		return -ENOMEM;
	*v = g;
	if (!(g[*n] = strdup(name)))
		return -ENOMEM;
	g[++*n] = NULL;
	return 0;
}

static bool names_have(char *const *v, const char *name)
{
	for (; v && *v; v++)
		if (strcmp(*v, name) == 0)
			return true;
	return false;
}

/* What one look at the keys says beyond the leaders: whether the cluster
 * is paused, and which members came and went. */
static void look_ops(struct cluster *c, const struct etcd_kv *kvs, size_t n)
{
	bool paused = cluster_kvs_find(kvs, n, c->paused_key) != NULL;
	size_t plen = strlen(c->members_prefix);
	char **now_seen = NULL;
	size_t n_seen = 0;

	if (paused != c->paused)
		queue_event_x(c, "paused", NULL, NULL, 0, &(struct event_extra){ .problem = paused },
			      paused ? "cluster '%s' is paused: nobody takes a service over or "
				       "steps down on its checks"
				     : "cluster '%s' resumed: leaders follow their checks again",
			      c->plan->name);
	c->paused = paused;
	for (size_t i = 0; i < n; i++)
		if (strncmp(kvs[i].key, c->members_prefix, plen) == 0 &&
		    names_add(&now_seen, &n_seen, kvs[i].key + plen) < 0) {
			strv_free(now_seen);
			return;
		}
	if (c->looked) {
		/* our own key is not news: its loss is the lease's, said as such */
		for (char **m = c->members_seen; m && *m; m++)
			if (strcmp(*m, c->member) != 0 && !names_have(now_seen, *m))
				queue_event_x(c, "member", NULL, *m, 0,
					      &(struct event_extra){ .problem = true },
					      "member '%s' is lost: its lease ended (the agent "
					      "stopped, or its host is down or cut off)",
					      *m);
		for (char **m = now_seen; m && *m; m++)
			if (strcmp(*m, c->member) != 0 && !names_have(c->members_seen, *m))
				queue_event_x(c, "member", NULL, *m, 0, &(struct event_extra){},
					      "member '%s' joined", *m);
	}
	strv_free(c->members_seen);
	c->members_seen = now_seen;
	c->looked = true;
}

/* Whether follower s may try to take its free key now. */
static bool may_lead(struct cluster *c, const struct svc *s, enum cluster_switchover_role role,
		     usec_t now, const struct etcd_kv *kvs, size_t n)
{
	if (c->paused || role == CLUSTER_SWITCHOVER_HOLD)
		return false;
	if (role == CLUSTER_SWITCHOVER_TAKE)
		return true; /* asked for: no grace, no priority */
	return now >= s->retry_after &&
	       (now >= s->leaderless_since + c->renew_every || !outranked(c, s, kvs, n));
}

static void hand_over(struct cluster *c, struct svc *s, const char *target)
{
	snprintf(s->why, sizeof(s->why), "switchover to '%s'", target);
	begin_demote(c, s, s->why);
}

/* The last look, kept for cluster_status_json() (takes kvs). */
static void keep_look(struct cluster *c, struct etcd_kv *kvs, size_t n, int64_t rev)
{
	struct etcd_kv *old;
	size_t old_n;

	pthread_mutex_lock(&c->lock);
	old = c->snap_kvs, old_n = c->snap_n;
	c->snap_kvs = kvs, c->snap_n = n, c->snap_rev = rev;
	snprintf(c->snap_endpoint, sizeof(c->snap_endpoint), "%s", etcd_endpoint(c->etcd));
	pthread_mutex_unlock(&c->lock);
	etcd_kvs_free(old, old_n);
}

static const char *role_name(enum svc_state st)
{
	static const char *const names[] = { "standby", "promoting", "leader", "demoting" };

	return names[st];
}

/* After each step: what cluster_status_json() tells of this member. */
static void publish(struct cluster *c)
{
	pthread_mutex_lock(&c->lock);
	c->pub_etcd_ok = c->etcd_ok;
	c->pub_lease = c->lease != 0;
	c->pub_renewed_sent = c->renewed_sent;
	for (size_t i = 0; i < c->n_svcs; i++) {
		c->svcs[i].pub_role = role_name(c->svcs[i].state);
		c->svcs[i].pub_changes = c->svcs[i].leader_changes;
	}
	pthread_mutex_unlock(&c->lock);
}

json_t *cluster_status_json(struct cluster *c)
{
	json_t *st, *self, *svcs;
	usec_t now = now_monotonic();

	pthread_mutex_lock(&c->lock);
	st = cluster_status_build(c->plan, c->snap_kvs, c->snap_n,
				  c->snap_endpoint[0] ? c->snap_endpoint : NULL, c->snap_rev);
	self = json_object();
	svcs = json_object();
	if (!st || !self || !svcs) {
		pthread_mutex_unlock(&c->lock);
		json_decref(st);
		json_decref(self);
		json_decref(svcs);
		return NULL;
	}
	json_set_str(self, "member", c->member);
	json_set_bool(self, "etcd_reachable", c->pub_etcd_ok);
	json_set_bool(self, "lease", c->pub_lease);
	if (c->pub_lease)
		json_set_real(self, "renewed_ago_s", (double)(now - c->pub_renewed_sent) / 1e6);
	json_set_real(self, "ttl_s", (double)c->ttl / 1e6);
	for (size_t i = 0; i < c->n_svcs; i++) {
		json_t *o = json_pack("{s:s,s:I}", "role",
				      c->svcs[i].pub_role ? c->svcs[i].pub_role : "standby",
				      "leader_changes", (json_int_t)c->svcs[i].pub_changes);

		json_object_set_new(svcs, c->svcs[i].def->name, o);
	}
	pthread_mutex_unlock(&c->lock);
	json_object_set_new(self, "services", svcs);
	/* the last look is this member's view: paused as it sees it */
	json_object_set_new(st, "self", self);
	return st;
}

int cluster_leader_address(struct cluster *c, const char *service, char *addr, size_t addr_size,
			   char *why, size_t why_size)
{
	bool leads = false;
	int r;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_svcs; i++)
		if (strcmp(c->svcs[i].def->name, service) == 0 && c->svcs[i].pub_role)
			leads = !strcmp(c->svcs[i].pub_role, "leader") ||
				!strcmp(c->svcs[i].pub_role, "promoting");
	r = cluster_kvs_leader_address(c->snap_kvs, c->snap_n, c->plan->name, service, c->member,
				       leads, c->address, addr, addr_size, why, why_size);
	pthread_mutex_unlock(&c->lock);
	return r;
}

static void poll_services(struct cluster *c, usec_t now)
{
	struct etcd_kv *kvs = NULL;
	size_t n = 0;
	int64_t rev;
	int r;

	if (now < c->next_poll)
		return;
	c->next_poll = now + c->poll_every;
	/* the members too: who else is fit, with what priority */
	r = etcd_range_prefix(c->etcd, c->prefix, now + c->renew_every, &kvs, &n, &rev);
	note_etcd(c, r);
	if (r < 0)
		return;
	/* An answer older than one seen before comes from a member that lags
	 * (seen from an etcd member resumed after a SIGSTOP): it may not know
	 * our own key yet, and "no key" from it would make us step down. */
	if (rev < c->revision) {
		etcd_kvs_free(kvs, n);
		return;
	}
	c->revision = rev;
	look_ops(c, kvs, n);
	for (size_t i = 0; i < c->n_svcs; i++) {
		struct svc *s = &c->svcs[i];
		const struct etcd_kv *kv = find_kv(kvs, n, s->key);
		bool holds = s->state == SVC_LEADING && kv && kv->create_revision == s->token;
		char target[CLUSTER_NAME_MAX + 1] = "";
		enum cluster_switchover_role role = cluster_switchover_role(
			kvs, n, c->plan->name, s->def->name, c->member, holds, target);

		note_leader(c, s, kv);
		if (kv && s->state == SVC_FOLLOWER)
			failover_watch_held(&s->fw, rev);
		else if (!kv)
			failover_watch_leaderless(&s->fw, now, rev, s->last_leader,
						  c->members_prefix, kvs, n,
						  role == CLUSTER_SWITCHOVER_TAKE);
		if (kv)
			s->leaderless_since = 0;
		else if (!s->leaderless_since)
			s->leaderless_since = now;
		if (s->state == SVC_LEADING && (!kv || kv->create_revision != s->token))
			begin_demote(c, s, "its leader key is gone");
		else if (holds && role == CLUSTER_SWITCHOVER_HAND_OVER)
			hand_over(c, s, target);
		else if (s->state == SVC_FOLLOWER && !kv && s->fit && !c->adopting &&
			 may_lead(c, s, role, now, kvs, n) && !check_deadline(c))
			try_lead(c, s, now_monotonic());
	}
	keep_look(c, kvs, n, rev);
}

/* Our own promotion, as a look would see it: a step-down before the next
 * look must still end in a "no leader" event (the alert, docs/cluster.md). */
static void note_own_leader(struct cluster *c, struct svc *s)
{
	if (s->seen_token == s->token)
		return;
	if (s->looked)
		s->leader_changes++;
	snprintf(s->seen_leader, sizeof(s->seen_leader), "%s", c->member);
	snprintf(s->last_leader, sizeof(s->last_leader), "%s", c->member);
	s->seen_token = s->token;
}

/* Commands that ended: the next state. */
static void finish_commands(struct cluster *c, usec_t now)
{
	for (size_t i = 0; i < c->n_svcs; i++) {
		struct svc *s = &c->svcs[i];

		if (!role_command_finished(&s->cmd))
			continue;
		if (s->state == SVC_PROMOTING) {
			s->state = SVC_LEADING;
			c->member_dirty = true;
			note_own_leader(c, s);
			if (s->cmd.ok && !s->demote_why) {
				struct failover_record fo;
				bool took;

				/* its reads come before the next renewal */
				failover_watch_classify_etcd(&s->fw, c->etcd, s->key, c->members_prefix,
							     now_monotonic() + c->renew_every / 4);
				took = failover_watch_done(&s->fw, now, s->def->name, c->member, s->token,
							   c->ttl, &fo);

				queue_event_x(c, "promoted", s, c->member, s->token,
					      &(struct event_extra){ .failover = took ? &fo : NULL },
					      "'%s' leads service "
					      "'%s' (fencing token %" PRId64 ")",
					      c->member, s->def->name, s->token);
			} else {
				failover_watch_reset(&s->fw);
				if (!s->cmd.ok)
					queue_event(c, "promoted", s, c->member, s->token, "%s",
						    s->cmd.message);
				begin_demote(c, s,
					     s->demote_why ? s->demote_why : "promote failed");
			}
		} else if (s->state == SVC_DEMOTING) {
			bool deleted = false;

			/* only now that the service stood down may another lead */
			if (c->lease && s->token && !deadline_passed(c, now)) {
				int r = etcd_delete_if(c->etcd, s->key, s->token,
						       now + c->renew_every, &deleted);
				note_etcd(c, r);
			}
			queue_event(c, "demoted", s, c->member, s->token,
				    "'%s' stepped down from "
				    "service '%s' (fencing token %" PRId64 "): %s%s%s",
				    c->member, s->def->name, s->token,
				    s->demote_why ? s->demote_why : "", s->cmd.ok ? "" : "; ",
				    s->cmd.ok ? "" : s->cmd.message);
			s->state = SVC_FOLLOWER;
			s->token = 0;
			s->demote_why = NULL;
			/* not again at once: another member's turn (it may be fit) */
			s->retry_after = now + c->ttl;
			c->member_dirty = true;
		}
	}
}

static void step(struct cluster *c)
{
	usec_t now = now_monotonic();
	bool changed;

	/* first of all: after a pause, the deadline may be behind us */
	check_deadline(c);
	pthread_mutex_lock(&c->lock);
	update_fitness(c);
	changed = c->checks_changed;
	c->checks_changed = false;
	pthread_mutex_unlock(&c->lock);
	if (changed)
		c->member_dirty = true;
	for (size_t i = 0; i < c->n_svcs; i++)
		if (!c->svcs[i].fit && !c->paused) /* in maintenance, checks move nothing */
			begin_demote(c, &c->svcs[i], "its healthy: checks are not ok");
	finish_commands(c, now);
	cluster_adopt_plan(c);
	keep_lease(c, now);
	if (check_deadline(c))
		return;
	if (!c->lease)
		return;
	revoke_lost_lease(c, now);
	poll_services(c, now_monotonic());
	if (check_deadline(c))
		return;
	put_member(c);
}

static usec_t next_wake(struct cluster *c, usec_t now)
{
	usec_t t = now + c->poll_every;

	if (c->lease && c->renewed_sent + c->renew_every < t)
		t = c->renewed_sent + c->renew_every;
	if (c->lease && c->renewed_sent + c->demote_after < t)
		t = c->renewed_sent + c->demote_after;
	if (c->next_lease_try && c->next_lease_try < t)
		t = c->next_lease_try;
	for (size_t i = 0; i < c->n_svcs; i++)
		if (c->svcs[i].cmd.running && now + TICK < t)
			t = now + TICK;
	return t > now ? t : now;
}

static void wait_until(struct cluster *c, usec_t until)
{
	struct timespec ts = { .tv_sec = (time_t)(until / USEC_PER_SEC),
			       .tv_nsec = (long)(until % USEC_PER_SEC) * 1000 };

	pthread_mutex_lock(&c->lock);
	while (!c->stop && !c->poke && now_monotonic() < until)
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT)
			break;
	c->poke = false;
	pthread_mutex_unlock(&c->lock);
}

static void sleep_tick(void)
{
	struct timespec ts = { 0, (long)(TICK * 1000) };

	nanosleep(&ts, NULL);
}

/* At stop: step down from everything, then let the lease go. */
static void shut_down(struct cluster *c)
{
	usec_t give_up = now_monotonic() + 60 * USEC_PER_SEC;

	/* cluster_free() cancelled the call in flight before it said stop;
	 * the calls from here on must run */
	__atomic_store_n(&c->cancel, false, __ATOMIC_RELAXED);
	for (size_t i = 0; i < c->n_svcs; i++) {
		struct svc *s = &c->svcs[i];

		while (!role_command_finished(&s->cmd))
			sleep_tick();
		if (s->state == SVC_PROMOTING)
			s->state = SVC_LEADING;
		begin_demote(c, s, c->stop_why[0] ? c->stop_why : "the agent stops");
	}
	for (;;) {
		bool busy = false;

		check_deadline(c);
		finish_commands(c, now_monotonic());
		for (size_t i = 0; i < c->n_svcs; i++)
			busy |= c->svcs[i].state != SVC_FOLLOWER;
		if (!busy || now_monotonic() > give_up)
			break;
		sleep_tick();
	}
	if (c->lease)
		(void)etcd_lease_revoke(c->etcd, c->lease, now_monotonic() + c->renew_every);
	c->lease = 0;
}

static void *cluster_main(void *arg)
{
	struct cluster *c = arg;

	/* a VIP that an agent killed while leading left on this host goes:
	 * we lead nothing yet, and two hosts must not answer for it */
	for (size_t i = 0; i < c->n_svcs; i++)
		if (c->svcs[i].def->vip.address) {
			_cleanup_free_ char *error = NULL;

			if (vip_remove(&c->svcs[i].def->vip, &error) < 0)
				log_warning("cluster: service '%s': %s", c->svcs[i].def->name, error);
		}
	for (;;) {
		bool stop;

		pthread_mutex_lock(&c->lock);
		stop = c->stop;
		pthread_mutex_unlock(&c->lock);
		if (stop)
			break;
		step(c);
		publish(c);
		wait_until(c, next_wake(c, now_monotonic()));
	}
	shut_down(c);
	return NULL;
}

/* ---- lifecycle ---- */

static int add_check(struct cluster *c, const char *name)
{
	struct check_slot *n;

	for (size_t i = 0; i < c->n_checks; i++)
		if (strcmp(c->checks[i].name, name) == 0)
			return 0;
	n = realloc(c->checks, (c->n_checks + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	c->checks = n;
	memset(&n[c->n_checks], 0, sizeof(*n));
	if (!(n[c->n_checks].name = strdup(name)))
		return -ENOMEM;
	c->n_checks++;
	return 0;
}

int cluster_etcd_new(const struct cluster_plan *p, const bool *cancel, struct etcd **ret)
{
	struct etcd_options eo = {
		.endpoints = p->etcd,
		.ca_file = p->ca_file,
		.cert_file = p->cert_file,
		.key_file = p->key_file,
		.username = p->username,
		.password_file = p->password_file,
		.cancel = cancel,
	};

	return etcd_new(&eo, ret);
}

int cluster_new(const struct cluster_plan *p, struct event_base *base,
		const struct cluster_options *o, struct cluster **ret)
{
	_cleanup_(cluster_freep) struct cluster *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;
	int r;

	if (!c)
		return -ENOMEM;
	c->plan = p;
	c->opts = *o;
	c->events_tail = &c->events;
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&c->adopted, NULL);
	c->member = strdup(p->member ? p->member : o->member ? o->member : "localhost");
	c->host = strdup(o->host ? o->host : "");
	c->api = strdup(o->api ? o->api : "");
	c->address = strdup(p->address ? p->address : c->host);
	if (!c->member || !c->host || !c->api || !c->address)
		return -ENOMEM;
	if (!cluster_name_valid(c->member))
		return -EINVAL; /* a host name with odd characters: say member: */
	c->ttl = p->ttl;
	c->renew_every = p->ttl / 3;
	c->demote_after = p->ttl - p->ttl / 3;
	c->poll_every = p->ttl / 10 > POLL_MIN ? p->ttl / 10 : POLL_MIN;
	c->etcd_ok = true;
	c->started_rt = now_realtime();
	c->member_key = cluster_member_key(p->name, c->member);
	c->paused_key = cluster_paused_key(p->name);
	c->members_prefix = cluster_prefix(p->name, "members");
	if (c->members_prefix && asprintf(&c->prefix, "/%s/", p->name) < 0)
		c->prefix = NULL;
	if (!c->member_key || !c->members_prefix || !c->prefix || !c->paused_key)
		return -ENOMEM;
	c->svcs = calloc(p->n_services ? p->n_services : 1, sizeof(*c->svcs));
	if (!c->svcs)
		return -ENOMEM;
	c->n_svcs = p->n_services;
	for (size_t i = 0; i < p->n_services; i++) {
		struct svc *s = &c->svcs[i];

		s->def = &p->services[i];
		s->key = cluster_leader_key(p->name, s->def->name);
		if (!s->key)
			return -ENOMEM;
		for (size_t k = 0; s->def->healthy && s->def->healthy[k]; k++) {
			r = add_check(c, s->def->healthy[k]);
			if (r < 0)
				return r;
		}
	}
	update_fitness(c);
	r = cluster_etcd_new(p, &c->cancel, &c->etcd);
	if (r < 0)
		return r;
	if (base) {
		r = wake_new(base, on_wake, c, &c->wake);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(c);
	return 0;
}

int cluster_start(struct cluster *c)
{
	if (pthread_create(&c->thread, NULL, cluster_main, c) != 0)
		return -EAGAIN;
	c->started = true;
	return 0;
}

void cluster_set_stop_reason(struct cluster *c, const char *why)
{
	if (c)
		snprintf(c->stop_why, sizeof(c->stop_why), "%s", why ? why : "");
}

void cluster_free(struct cluster *c)
{
	if (!c)
		return;
	if (c->started) {
		/* a call in flight ends now (shut_down's own calls run afresh) */
		__atomic_store_n(&c->cancel, true, __ATOMIC_RELAXED);
		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
		on_wake(c); /* the last events (demoted) reach the agent */
	}
	for (size_t i = 0; i < c->n_svcs; i++) {
		free(c->svcs[i].key);
		strv_free(c->svcs[i].cmd.envp);
	}
	free(c->svcs);
	for (size_t i = 0; i < c->n_checks; i++)
		free(c->checks[i].name);
	free(c->checks);
	while (c->events) {
		struct queued_event *next = c->events->next;

		free(c->events);
		c->events = next;
	}
	etcd_free(c->etcd);
	wake_free(c->wake);
	free(c->member_key);
	free(c->paused_key);
	strv_free(c->members_seen);
	etcd_kvs_free(c->snap_kvs, c->snap_n);
	free(c->prefix);
	free(c->members_prefix);
	free(c->member);
	free(c->host);
	free(c->api);
	free(c->address);
	pthread_cond_destroy(&c->cond);
	pthread_cond_destroy(&c->adopted);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
