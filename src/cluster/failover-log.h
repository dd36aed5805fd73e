/* The failovers a member takes part in, measured by the member that takes
 * over on its own monotonic clock (docs/cluster.md, "Failover times"), and
 * their bounded history per service in the agent's state.db (table
 * cluster_failovers, with all-time totals in cluster_failover_totals), which
 * `bcdr model availability` reads as the measured switch-over time.
 *
 * The engine keeps one failover_watch per service: the look that first
 * saw the service without a leader, the create of the key, the promote's
 * end; failover_watch_done() turns them into a record. */
#pragma once

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd-proto.h"
#include "cluster/plan.h"
#include "lib/timeutil.h"

/* Records kept per service (the oldest go first). */
#define FAILOVER_KEEP 100
/* Records read back at most, whatever the table holds (a bound on a file
 * that is not ours). */
#define FAILOVER_READ_MAX 100000

enum failover_kind { FAILOVER_UNPLANNED, FAILOVER_SWITCHOVER };

struct failover_record {
	char service[CLUSTER_NAME_MAX + 1];
	char from[CLUSTER_NAME_MAX + 1]; /* the leader before */
	char to[CLUSTER_NAME_MAX + 1];   /* the member that took over */
	int64_t token;                   /* the new fencing token */
	usec_t at;                       /* realtime: the promote's end */
	int kind;                        /* enum failover_kind */
	bool lease_ended;   /* the old leader's member key went with its leader key */
	double wait_s;      /* seen leaderless -> the key created */
	double promote_s;   /* the key created -> promote done */
	double ttl_s;       /* the cluster's ttl then */
	/* The switch-over time: wait + promote, and, when the old leader's
	 * lease ended (it died, froze or was cut off), the ttl its loss took
	 * to show (nobody sees it sooner). */
	double seconds;
};

struct failover_watch {
	int64_t held_rev;  /* store revision of the last look that saw the key held */
	int64_t gone_rev;  /* ... of the first look that saw it gone */
	usec_t leaderless; /* monotonic: the first look without a leader, 0 none */
	usec_t created;    /* monotonic: our create of the key */
	bool lease_ended, switchover;
	char from[CLUSTER_NAME_MAX + 1];
};

/* A look saw the service without a leader; last_leader is who led before
 * ("" before any: not a failover), members_prefix with kvs says whether
 * its member key is still there, asked whether we are a switchover's
 * target. Only the first look of a gap counts. */
void failover_watch_leaderless(struct failover_watch *w, usec_t now, int64_t rev,
			       const char *last_leader, const char *members_prefix,
			       const struct etcd_kv *kvs, size_t n, bool asked);
/* A look at store revision rev saw the key held by another: nothing to
 * measure (yet). */
void failover_watch_held(struct failover_watch *w, int64_t rev);
void failover_watch_reset(struct failover_watch *w);
/* Tells, after our promote, a lease that ended from a leader that deleted
 * its key and then revoked its lease (an agent that stopped) when one look
 * saw both gone: exists_at(userdata, key, rev) reads the store's history
 * (etcd_exists_at()) to find the revision the leader key went and whether
 * the old leader's member key went in the same one. Without the history
 * (compacted, an error), the look's guess stays. */
typedef int (*failover_exists_at)(void *userdata, const char *key, int64_t revision,
				  bool *ret_exists);
void failover_watch_classify(struct failover_watch *w, const char *leader_key,
			     const char *members_prefix, failover_exists_at exists_at,
			     void *userdata);
/* The same through etcd_exists_at(), every read within deadline. */
struct etcd;
void failover_watch_classify_etcd(struct failover_watch *w, struct etcd *e,
				  const char *leader_key, const char *members_prefix,
				  usec_t deadline);
/* We created the key. */
void failover_watch_created(struct failover_watch *w, usec_t now);
/* Our promote ended well at now: true with *ret filled when it was a
 * failover (a leader before, a gap seen); the watch is reset either way. */
bool failover_watch_done(struct failover_watch *w, usec_t now, const char *service,
			 const char *member, int64_t token, usec_t ttl,
			 struct failover_record *ret);

const char *failover_kind_name(int kind);
json_t *failover_record_json(const struct failover_record *r);
/* -EINVAL when j is not a record (names checked, times finite, >= 0). */
int failover_record_from_json(const json_t *j, struct failover_record *ret);

/* Creates the tables if needed. */
int failover_log_init(sqlite3 *db);
/* Appends r, keeps the newest keep of its service, adds to the totals. */
int failover_log_add(sqlite3 *db, const struct failover_record *r, unsigned keep);

struct failover_stats {
	uint64_t count;  /* in the window read */
	double median_s, p95_s, min_s, max_s, mean_s; /* NAN without any */
};
/* Nearest-rank quantile q of v[n] (sorted in place). */
double failover_quantile(double *v, size_t n, double q);
void failover_stats_of(const double *v, size_t n, struct failover_stats *ret);

/* The history as the API gives it: {SERVICE: {"count", "median_s", "p95_s",
 * "max_s", "total": N, "total_seconds": S, "by_kind": {KIND: {count,
 * median_s, p95_s}}, "recent": [record, oldest first]}}. service NULL: all.
 * -BCDR_ERR_NOT_FOUND when db has no such table (an older agent's). */
int failover_log_json(sqlite3 *db, const char *service, json_t **ret);
/* failover_log_json() of the state database at path, opened read-only
 * beside the agent that writes it: an empty object when it has no such
 * table. On failure *ret_error (free() it) says what, naming path. */
int failover_log_read(const char *path, json_t **ret, char **ret_error);
/* The switch-over times (seconds) of service's records of kind (-1: any)
 * in a history document as failover_log_json() makes it (the API's
 * "failovers"), into a new array *ret_v (free() it; NULL when none).
 * Records that are garbage are -EINVAL; a service without any is 0, none. */
int failover_log_times(const json_t *doc, const char *service, int kind, double **ret_v,
		       size_t *ret_n);
