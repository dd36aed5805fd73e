/* The cluster engine's state, shared by its modules (cluster.c, the
 * engine; replan.c, a reload) and by nothing else: the engine's API is
 * cluster/cluster.h. What each field is guarded by is said beside it. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/cluster.h"
#include "cluster/role-command.h"
#include "lib/timeutil.h"

struct etcd_kv;
struct queued_event;

enum svc_state { SVC_FOLLOWER, SVC_PROMOTING, SVC_LEADING, SVC_DEMOTING };

struct svc {
	const struct cluster_service *def;
	char *key;
	enum svc_state state;
	int64_t token;          /* our leader key's create revision, while we hold it */
	const char *demote_why; /* a demotion waiting for the promote to end */
	usec_t retry_after;     /* monotonic: no new attempt to lead before */
	struct role_command cmd;
	bool fit;                               /* its checks allow it to lead */
	bool retiring; /* a reload removed or changed it: it steps down first */
	usec_t leaderless_since;  /* monotonic: when it was first seen without a leader */
	struct failover_watch fw; /* the failover we may take over, measured */
	char seen_leader[CLUSTER_NAME_MAX + 1]; /* who held the key at the last look */
	int64_t seen_token;
	/* operations (ops.c) */
	bool looked;            /* seen at least one look at the keys */
	char last_leader[CLUSTER_NAME_MAX + 1]; /* the last one seen, "" before any */
	uint64_t leader_changes; /* new leaders seen after the first look */
	char why[CLUSTER_NAME_MAX + 64]; /* a demote's reason that names someone */
	/* published for cluster_status_json(), under c->lock */
	const char *pub_role;
	uint64_t pub_changes;
};

struct check_slot {
	char *name;
	char status[16]; /* "" until the first evaluation */
};

struct cluster {
	const struct cluster_plan *plan;
	struct cluster_options opts;
	char *member, *host, *api, *address;
	struct wake *wake;
	pthread_t thread;
	bool started;

	pthread_mutex_t lock; /* guards what follows, up to the thread's own */
	pthread_cond_t cond;  /* CLOCK_MONOTONIC */
	bool stop, poke;
	struct check_slot *checks;
	size_t n_checks;
	bool checks_changed;
	struct queued_event *events, **events_tail;
	const struct cluster_plan *next_plan; /* cluster_replan() waits for it */
	int replan_result;
	pthread_cond_t adopted; /* next_plan taken: cluster_replan() returns */

	/* the engine's thread only */
	bool cancel; /* atomic: ends an etcd call at stop */
	struct etcd *etcd;
	int64_t lease;
	int64_t lost_lease;       /* given up on (lease_lost), revoked once safe */
	usec_t renewed_sent;      /* when the last successful grant/renewal was sent */
	usec_t renewed_sent_boot; /* the same on CLOCK_BOOTTIME */
	usec_t next_lease_try, next_poll;
	usec_t ttl, renew_every, demote_after, poll_every;
	bool etcd_ok;
	bool member_dirty;
	int64_t revision; /* the newest store revision an answer showed */
	char *member_key, *prefix, *members_prefix; /* "/<name>/", "/<name>/members/" */
	struct svc *svcs;
	size_t n_svcs;
	usec_t started_rt;
	const struct cluster_plan *adopting; /* next_plan, while it is taken in */

	/* operations (ops.c): maintenance, members seen, the last look */
	char *paused_key;
	char stop_why[128]; /* cluster_set_stop_reason() */
	bool paused, looked;
	char **members_seen; /* at the last look */
	/* published for cluster_status_json(), under lock */
	struct etcd_kv *snap_kvs;
	size_t snap_n;
	int64_t snap_rev;
	char snap_endpoint[256];
	bool pub_etcd_ok, pub_lease;
	usec_t pub_renewed_sent;
};

/* cluster.c, for replan.c (the engine's thread) */
void cluster_begin_demote(struct cluster *c, struct svc *s, const char *why);
void cluster_update_fitness(struct cluster *c); /* under c->lock */
/* replan.c, for cluster.c: a step of a reload, between two of the engine's */
void cluster_adopt_plan(struct cluster *c);
