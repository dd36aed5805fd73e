/* Operations on a running cluster (docs/cluster.md, "Operations"):
 * a graceful switchover of a service's leader, and maintenance mode.
 * Both go through keys every member reads with its look at the cluster,
 * so they work from any host with the plan, without an agent:
 *
 *   /<name>/paused                     {"by","since"}; no lease: it stays
 *                                      until `bcdr cluster resume`
 *   /<name>/services/<svc>/switchover  {"from","to","requested","timeout_s"},
 *                                      on a lease of the request's timeout
 *                                      (it vanishes when the caller dies)
 *
 * The pure functions read one range of /<name>/ (what a member's poll and
 * `bcdr cluster status` get) and decide; cluster.c asks them what a
 * member should do. The blocking ones are the commands' (any thread). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cluster/etcd-proto.h"
#include "cluster/plan.h"
#include "lib/timeutil.h"

struct etcd;

char *cluster_paused_key(const char *cluster);
char *cluster_switchover_key(const char *cluster, const char *service);

/* The kv of key in kvs, or NULL. */
const struct etcd_kv *cluster_kvs_find(const struct etcd_kv *kvs, size_t n, const char *key);

/* A switchover request: who leads (from) and who is to lead (to). */
struct cluster_switchover {
	char from[CLUSTER_NAME_MAX + 1];
	char to[CLUSTER_NAME_MAX + 1];
};
/* -EINVAL when kv's value is not a request with two usable names. */
int cluster_switchover_parse(const struct etcd_kv *kv, struct cluster_switchover *ret);

/* Whether member has a member key in kvs (it is alive) that says it is
 * fit for service. */
bool cluster_kvs_member_fit(const struct etcd_kv *kvs, size_t n, const char *cluster,
			    const char *member, const char *service);

enum cluster_switchover_role {
	CLUSTER_SWITCHOVER_NONE,      /* no request (or one that is not ours to act on) */
	CLUSTER_SWITCHOVER_HAND_OVER, /* we lead, the target is alive and fit: step down */
	CLUSTER_SWITCHOVER_TAKE,      /* we are the target: take the key when it goes */
	CLUSTER_SWITCHOVER_HOLD,      /* someone else is the target: leave the key to it */
};
/* What the switchover request in kvs (if any) asks of member for service;
 * leading: whether member holds the service's leader key. ret_target (may
 * be NULL, CLUSTER_NAME_MAX + 1 bytes) gets the target's name. */
enum cluster_switchover_role cluster_switchover_role(const struct etcd_kv *kvs, size_t n,
						     const char *cluster, const char *service,
						     const char *member, bool leading,
						     char *ret_target);

/* Who leads service in kvs and where it serves: the leader key's member,
 * then that member's key's "address" (else "host") into addr. self and
 * self_leads: this member and whether it leads now, which overrides a
 * look that is older than its promotion or demotion (self_address is
 * then its address). -ENOENT: no leader; -ENXIO: no address in the
 * leader's member key; why says it in words. */
int cluster_kvs_leader_address(const struct etcd_kv *kvs, size_t n, const char *cluster,
			       const char *service, const char *self, bool self_leads,
			       const char *self_address, char *addr, size_t addr_size, char *why,
			       size_t why_size);

/* `bcdr cluster status --json` from one range of /<name>/ (a new
 * reference): members, services with leader, token, standbys and a
 * switchover under way, and whether the cluster is paused. */
json_t *cluster_status_build(const struct cluster_plan *p, const struct etcd_kv *kvs, size_t n,
			     const char *endpoint, int64_t revision);

/* Moves service's leadership: to (NULL: the fit standby of the highest
 * priority) must be alive and fit, the service must have a leader and the
 * cluster must not be paused; then the request is written, the leader
 * steps down (demote, then its key goes) and the target takes the key
 * while the others hold back. Waits until the target leads (its promote
 * ended) or timeout; the request is withdrawn either way. *ret: {service,
 * from, to, previous_token, fencing_token, took_s}. */
int cluster_switchover_run(const struct cluster_plan *p, struct etcd *e, const char *service,
			   const char *to, usec_t timeout, json_t **ret, char **ret_error);

/* cluster_switchover_run() in two halves, for a caller that must not
 * block on the wait (the agent's API): the checks and the request written
 * (on a lease of timeout; *ret says what it asks), then the wait, which
 * withdraws the request (revokes its lease) at its end, done or not. */
struct cluster_switchover_request {
	char service[CLUSTER_NAME_MAX + 1];
	char from[CLUSTER_NAME_MAX + 1], to[CLUSTER_NAME_MAX + 1];
	int64_t previous_token; /* the leader key's create revision at the request */
	int64_t lease;          /* the request's */
	usec_t start, deadline; /* monotonic */
};
int cluster_switchover_request(const struct cluster_plan *p, struct etcd *e, const char *service,
			       const char *to, usec_t timeout, struct cluster_switchover_request *ret,
			       char **ret_error);
int cluster_switchover_wait(const struct cluster_plan *p, struct etcd *e,
			    const struct cluster_switchover_request *rq, json_t **ret,
			    char **ret_error);
/* What a switchover waits by default: twice the service's timeout: and
 * twice ttl, at least 30 s. */
usec_t cluster_switchover_default_timeout(const struct cluster_plan *p, const char *service);

/* Pauses (by: who asked, for the record) or resumes the cluster. *ret:
 * {cluster, paused, by, since, changed}. */
int cluster_pause_set(const struct cluster_plan *p, struct etcd *e, bool pause, const char *by,
		      usec_t deadline, json_t **ret, char **ret_error);
