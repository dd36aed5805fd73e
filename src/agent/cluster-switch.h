/* A switchover asked for through the API (POST /api/v1/cluster/switchover,
 * docs/api.md): the request written by ops.c's writer, the one `bcdr
 * cluster switchover` uses, then the wait for the new leader, which
 * withdraws the request at its end. Both call etcd, so both run on the
 * agent's pool: the loop never waits on them. */
#pragma once

#include <event2/http.h>
#include <jansson.h>

struct agent;

/* How the answer goes back (on the loop thread): status code and body
 * (taken). */
typedef void (*cluster_switch_reply_fn)(struct evhttp_request *req, int code, json_t *body);

/* Checks and writes the request for service (to: the member to lead, NULL:
 * the best fit standby) on the plan the cluster engine runs on; req is
 * answered once it is written (202 {service, from, to, previous_token,
 * timeout_s}) or refused (4xx/5xx {error}). The wait goes on after it; its
 * end is an event (kind cluster). A negative return: req was not taken
 * (no cluster, out of memory), the caller answers it. */
int agent_cluster_switchover(struct agent *a, struct evhttp_request *req, const char *service,
			     const char *to, cluster_switch_reply_fn reply);
/* At the agent's stop, before its pool goes: the etcd calls of the
 * switchovers under way end (a request left behind goes with its lease). */
void agent_cluster_switchover_cancel(void);
