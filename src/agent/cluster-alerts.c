#include "agent/cluster-alerts.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/integrate.h"
#include "alert/alert.h"
#include "lib/cleanup.h"
#include "plan/plan.h"

/* A leader-changed alert firing until its hold ends. */
struct change {
	char service[CLUSTER_NAME_MAX + 1];
	char leader[CLUSTER_NAME_MAX + 1], previous[CLUSTER_NAME_MAX + 1];
	/* the last leader any event named: a member's own "promoted" does not
	 * say who led before it */
	char seen[CLUSTER_NAME_MAX + 1];
	char token[24];
	char summary[256];
	usec_t until; /* monotonic; 0: resolved */
};

struct cluster_alerts {
	struct agent *agent;
	struct event *timer;
	struct change *changes;
	size_t n_changes;
};

static void update(struct cluster_alerts *ca, const char *name, bool firing, const char *severity,
		   const char *const *extra, const char *summary)
{
	const char *labels[16], *ann[] = { "summary", summary, NULL };
	/* the plan the engine runs on (a reload may not have restarted it) */
	const struct plan *plan =
		ca->agent->cluster_plan ? ca->agent->cluster_plan->plan : ca->agent->plan;
	const char *cluster =
		plan && plan->cluster && plan->cluster->name ? plan->cluster->name : "";
	size_t n = 0;

	if (!ca->agent->alerts)
		return;
	labels[n++] = "cluster";
	labels[n++] = cluster;
	labels[n++] = "severity";
	labels[n++] = severity;
	labels[n++] = "host";
	labels[n++] = ca->agent->host;
	for (size_t i = 0; extra && extra[i] && n + 2 < ELEMENTSOF(labels); i += 2) {
		labels[n++] = extra[i];
		labels[n++] = extra[i + 1];
	}
	labels[n] = NULL;
	(void)alert_engine_update(ca->agent->alerts, name,
				  firing ? ALERT_INPUT_FIRING : ALERT_INPUT_OK, labels, ann);
}

static void change_update(struct cluster_alerts *ca, const struct change *ch, bool firing)
{
	char name[CLUSTER_NAME_MAX + 64];
	const char *extra[] = { "service",    ch->service,     "leader",  ch->leader, "previous",
				ch->previous, "fencing_token", ch->token, NULL };

	snprintf(name, sizeof(name), "cluster:service:%s:leader-changed", ch->service);
	update(ca, name, firing, "warning", extra, ch->summary);
}

static void arm(struct cluster_alerts *ca)
{
	usec_t next = 0, now = now_monotonic();
	struct timeval tv;

	for (size_t i = 0; i < ca->n_changes; i++)
		if (ca->changes[i].until && (!next || ca->changes[i].until < next))
			next = ca->changes[i].until;
	if (!next) {
		evtimer_del(ca->timer);
		return;
	}
	next = next > now ? next - now : 0;
	tv.tv_sec = (time_t)(next / USEC_PER_SEC);
	tv.tv_usec = (suseconds_t)(next % USEC_PER_SEC);
	evtimer_add(ca->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct cluster_alerts *ca = arg;
	usec_t now = now_monotonic();

	(void)fd, (void)what;
	for (size_t i = 0; i < ca->n_changes; i++)
		if (ca->changes[i].until && ca->changes[i].until <= now) {
			ca->changes[i].until = 0;
			change_update(ca, &ca->changes[i], false);
		}
	arm(ca);
}

int cluster_alerts_new(struct agent *a, struct cluster_alerts **ret)
{
	struct cluster_alerts *ca = calloc(1, sizeof(*ca));

	if (!ca)
		return -ENOMEM;
	ca->agent = a;
	ca->timer = evtimer_new(a->base, on_timer, ca);
	if (!ca->timer) {
		free(ca);
		return -ENOMEM;
	}
	*ret = ca;
	return 0;
}

void cluster_alerts_free(struct cluster_alerts *ca)
{
	if (!ca)
		return;
	event_free(ca->timer);
	free(ca->changes);
	free(ca);
}

static struct change *change_get(struct cluster_alerts *ca, const char *service)
{
	struct change *g;

	for (size_t i = 0; i < ca->n_changes; i++)
		if (strcmp(ca->changes[i].service, service) == 0)
			return &ca->changes[i];
	g = realloc(ca->changes, (ca->n_changes + 1) * sizeof(*g));
	if (!g)
		return NULL;
	ca->changes = g;
	g = &g[ca->n_changes++];
	memset(g, 0, sizeof(*g));
	snprintf(g->service, sizeof(g->service), "%s", service);
	return g;
}

/* From the plan of the last reload: a changed hold needs no restart of the
 * engine, it applies from the next change on. */
static usec_t change_hold(const struct cluster_alerts *ca)
{
	const struct plan *plan = ca->agent->plan;

	if (plan && plan->cluster && plan->cluster->has_cluster &&
	    plan->cluster->leader_changed_hold)
		return plan->cluster->leader_changed_hold;
	return CLUSTER_CHANGE_HOLD;
}

/* A service has a leader (seen, or us): no-leader resolves; a change is news. */
static void has_leader(struct cluster_alerts *ca, const struct cluster_event *ev)
{
	char name[CLUSTER_NAME_MAX + 64];
	const char *extra[] = { "service", ev->service, NULL };
	struct change *ch;

	snprintf(name, sizeof(name), "cluster:service:%s:no-leader", ev->service);
	update(ca, name, false, "critical", extra, ev->message);
	ch = change_get(ca, ev->service);
	if (!ch)
		return;
	if (ev->previous && ev->previous[0])
		snprintf(ch->seen, sizeof(ch->seen), "%s", ev->previous);
	if (ev->initial) {
		/* what the agent found at its start is no change */
		snprintf(ch->seen, sizeof(ch->seen), "%s", ev->member ? ev->member : "");
		return;
	}
	if (ch->until && strcmp(ch->leader, ev->member ? ev->member : "") == 0 && ch->token[0] &&
	    strtoll(ch->token, NULL, 10) == ev->token)
		return;
	snprintf(ch->previous, sizeof(ch->previous), "%s", ch->seen);
	snprintf(ch->seen, sizeof(ch->seen), "%s", ev->member ? ev->member : "");
	snprintf(ch->leader, sizeof(ch->leader), "%s", ev->member ? ev->member : "");
	snprintf(ch->token, sizeof(ch->token), "%" PRId64, ev->token);
	snprintf(ch->summary, sizeof(ch->summary), "service '%s': '%s' leads now%s%s%s",
		 ev->service, ch->leader, ch->previous[0] ? " (was '" : "", ch->previous,
		 ch->previous[0] ? "')" : "");
	ch->until = now_monotonic() + change_hold(ca);
	change_update(ca, ch, true);
	arm(ca);
}

void cluster_alerts_note(struct cluster_alerts *ca, const struct cluster_event *ev)
{
	char name[CLUSTER_NAME_MAX + 64];

	if (!ca)
		return;
	if (strcmp(ev->kind, "etcd") == 0) {
		update(ca, "cluster:etcd", ev->problem, "critical", NULL, ev->message);
	} else if (strcmp(ev->kind, "paused") == 0) {
		update(ca, "cluster:paused", ev->problem, "warning", NULL, ev->message);
	} else if (strcmp(ev->kind, "member") == 0 && ev->member) {
		const char *extra[] = { "member", ev->member, NULL };

		snprintf(name, sizeof(name), "cluster:member:%s:lost", ev->member);
		update(ca, name, ev->problem, "warning", extra, ev->message);
	} else if (strcmp(ev->kind, "leader") == 0 && ev->service) {
		if (ev->member) {
			has_leader(ca, ev);
		} else {
			const char *extra[] = { "service", ev->service, NULL };

			snprintf(name, sizeof(name), "cluster:service:%s:no-leader", ev->service);
			update(ca, name, true, "critical", extra, ev->message);
		}
	} else if (strcmp(ev->kind, "promoted") == 0 && ev->service && ev->member) {
		has_leader(ca, ev);
	}
}
