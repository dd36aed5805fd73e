/* The cluster engine: this agent as a member of a cluster on etcd, and
 * the leader of the services it is fit for (docs/cluster.md).
 *
 * It runs on a thread of its own (every etcd call blocks, with a
 * deadline), with promote and demote commands on short-lived threads of
 * their own so that a slow command never delays a lease renewal. What the
 * loop must know (leader changes, etcd trouble) is queued and handed over
 * through lib/wake: on_event runs on the loop thread.
 *
 * Keys: /<name>/members/<member> (JSON: addresses, version, check states)
 * and /<name>/services/<service>/leader (JSON: member, since), both on the
 * member's lease of cluster.ttl. The fencing token handed to promote is the
 * leader key's create revision: it grows with every new leader. */
#pragma once

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/failover-log.h"
#include "cluster/plan.h"
#include "lib/cleanup.h"

struct cluster;

struct cluster_event {
	/* "promoted", "demoted", "leader" (seen), "etcd", "member" (lost or
	 * joined), "paused" (or resumed) */
	const char *kind;
	const char *service;  /* NULL but for promoted, demoted and leader */
	const char *member;   /* the leader's name ("leader"), the member's, or ours */
	int64_t token;        /* the fencing token, 0 when none */
	bool problem;         /* etcd lost, a member lost, no leader, paused */
	bool initial;         /* "leader": the first look, not a change */
	const char *previous; /* "leader": who led before, or NULL */
	const char *message;  /* one line for people */
	/* "promoted" after a failover or switchover this member took over:
	 * what it measured (cluster/failover-log.h), else NULL */
	const struct failover_record *failover;
};

struct cluster_options {
	const char *member; /* the plan's member:, else this (the host name) */
	const char *host;   /* host name, for the member key */
	const char *api;    /* the agent's listen address, for the member key */
	void (*on_event)(void *userdata, const struct cluster_event *ev);
	void *userdata;
};

/* The engine for plan p (borrowed: it must outlive the engine), on base. */
int cluster_new(const struct cluster_plan *p, struct event_base *base,
		const struct cluster_options *o, struct cluster **ret);
/* Starts its thread. */
int cluster_start(struct cluster *c);

struct etcd;
/* The etcd client the plan's cluster: section describes (endpoints, TLS,
 * auth); cancel, when set, cuts its waits short. */
int cluster_etcd_new(const struct cluster_plan *p, const bool *cancel, struct etcd **ret);
/* Stops it: demotes what it leads (demote runs, then the leader key goes),
 * revokes its lease (the member key goes), joins the thread. NULL is
 * allowed. On the loop thread. */
void cluster_free(struct cluster *c);
/* A reload that keeps the cluster: section (cluster_plan_same_cluster()
 * of the running plan and p; -EINVAL otherwise): the engine goes on with
 * its lease and with plan p (borrowed: it must outlive the engine; the old
 * one may go once this returns). A service of p defined as before keeps
 * its leader and fencing token, nothing runs; one that left p or changed
 * steps down (demote, then its key goes), a changed one joins again as a
 * standby. Blocks until those demotes ended. On the loop thread. */
int cluster_replan(struct cluster *c, const struct cluster_plan *p);
/* The reason cluster_free()'s step-downs give (BCDR_REASON, the events):
 * "the agent stops" unless said otherwise here (why is copied). */
void cluster_set_stop_reason(struct cluster *c, const char *why);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct cluster *, cluster_free)

/* The confirmed state of a check ("ok", "warning", "critical", "unknown"):
 * a service is fit to lead while each of its healthy: checks is ok or
 * warning. Checks no service names are ignored. Cheap; any thread. */
void cluster_check_state(struct cluster *c, const char *check, const char *status);

/* What this member knows of the cluster, from its last look at etcd
 * (no etcd call: the loop thread may ask): `bcdr cluster status --json`'s
 * document, and "self": member, etcd_reachable, lease, renewed_ago_s,
 * ttl_s, services: {NAME: {role, leader_changes}}. A new reference. */
json_t *cluster_status_json(struct cluster *c);

/* Where the current leader of service serves, as this member saw it at
 * its last look at etcd (no etcd call: the loop thread may ask): the
 * leader member's address (cluster: address:, else its host name) into
 * addr. -ENOENT when the service has no leader (or an unknown service),
 * -ENXIO when its leader's member key gives no address; why says it in
 * words either way. This member counts as leader from its promotion to
 * its demotion, whatever the last look showed. */
int cluster_leader_address(struct cluster *c, const char *service, char *addr, size_t addr_size,
			   char *why, size_t why_size);

/* The key of a member, a service's leader key, and their prefixes
 * (free() them); the CLI reads them too. */
char *cluster_member_key(const char *cluster, const char *member);
char *cluster_leader_key(const char *cluster, const char *service);
char *cluster_prefix(const char *cluster, const char *what); /* "/<cluster>/<what>/" */
