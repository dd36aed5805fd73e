#include "agent/cluster-switch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent/daemon.h"
#include "agent/integrate.h"
#include "agent/pool.h"
#include "cluster/cluster.h"
#include "cluster/etcd.h"
#include "cluster/ops.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "plan/plan.h"

struct switch_job {
	struct switch_job *next; /* in jobs, on the loop thread */
	struct agent *agent;
	bool cancel; /* atomic: the agent stops, its etcd calls end */
	struct plan_ref *pr; /* the plan the engine ran on when asked */
	struct etcd *etcd;
	struct evhttp_request *req; /* until answered */
	cluster_switch_reply_fn reply;
	char service[CLUSTER_NAME_MAX + 1], to[CLUSTER_NAME_MAX + 1];
	struct cluster_switchover_request rq;
	int r;
	char *error;
	json_t *res;
};

/* The jobs under way: one agent per process. */
static struct switch_job *jobs;

static void job_free(struct switch_job *j)
{
	for (struct switch_job **p = &jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
	etcd_free(j->etcd);
	plan_ref_put(j->pr);
	free(j->error);
	json_decref(j->res);
	free(j);
}

static const struct cluster_plan *job_plan(const struct switch_job *j)
{
	return j->pr->plan->cluster;
}

/* The status a refusal deserves. */
static int refusal_code(int r)
{
	return r == -BCDR_ERR_NOT_FOUND ? 404
	     : r == -EBUSY || r == -EALREADY || r == -EAGAIN ? 409
	     : r == -ENOMEM ? 500 : 503; /* etcd could not be asked */
}

static void wait_work(void *arg)
{
	struct switch_job *j = arg;

	j->r = cluster_switchover_wait(job_plan(j), j->etcd, &j->rq, &j->res, &j->error);
}

static void wait_done(void *arg, int cancelled)
{
	struct switch_job *j = arg;

	if (cancelled || __atomic_load_n(&j->cancel, __ATOMIC_RELAXED))
		; /* the agent stops: the request goes with its lease */
	else if (j->r >= 0)
		agent_event(j->agent, "cluster", NULL, j->res,
			    "switchover of service '%s' asked through the API: '%s' leads now",
			    j->rq.service, j->rq.to);
	else
		agent_event(j->agent, "cluster", NULL, NULL,
			    "switchover of service '%s' asked through the API failed: %s",
			    j->rq.service, j->error ? j->error : err_str(j->r));
	job_free(j);
}

static void request_work(void *arg)
{
	struct switch_job *j = arg;
	const struct cluster_plan *p = job_plan(j);

	j->r = cluster_switchover_request(p, j->etcd, j->service, j->to[0] ? j->to : NULL,
					  cluster_switchover_default_timeout(p, j->service), &j->rq,
					  &j->error);
}

static void request_done(void *arg, int cancelled)
{
	struct switch_job *j = arg;
	json_t *body;

	if (cancelled || j->r < 0) {
		body = json_object();
		json_set_str(body, "error", cancelled ? "the agent stops"
					    : j->error ? j->error : err_str(j->r));
		j->reply(j->req, cancelled ? 503 : refusal_code(j->r), body);
		job_free(j);
		return;
	}
	body = json_pack("{s:s,s:s,s:s,s:I,s:I}", "service", j->rq.service, "from", j->rq.from,
			 "to", j->rq.to, "previous_token", (json_int_t)j->rq.previous_token,
			 "timeout_s", (json_int_t)((j->rq.deadline - j->rq.start) / USEC_PER_SEC));
	agent_event(j->agent, "cluster", NULL, body,
		    "switchover of service '%s' from '%s' to '%s' asked through the API",
		    j->rq.service, j->rq.from, j->rq.to);
	j->reply(j->req, 202, body);
	j->req = NULL;
	if (pool_submit(j->agent->pool, wait_work, wait_done, j) < 0) {
		/* nobody waits: the request ends with its lease */
		log_warning("cluster: switchover of service '%s': cannot wait for it", j->rq.service);
		job_free(j);
	}
}

int agent_cluster_switchover(struct agent *a, struct evhttp_request *req, const char *service,
			     const char *to, cluster_switch_reply_fn reply)
{
	struct switch_job *j;
	int r;

	if (!a->cluster || !a->cluster_plan)
		return -ENOENT;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->agent = a;
	j->pr = plan_ref_get(a->cluster_plan);
	j->req = req;
	j->reply = reply;
	snprintf(j->service, sizeof(j->service), "%s", service);
	snprintf(j->to, sizeof(j->to), "%s", to ? to : "");
	j->next = jobs;
	jobs = j;
	r = cluster_etcd_new(job_plan(j), &j->cancel, &j->etcd);
	/* the connection's own timeout (10 s) must not end it before the
	 * answer: the request's etcd calls may take 5 s each */
	if (r >= 0 && evhttp_request_get_connection(req))
		evhttp_connection_set_timeout(evhttp_request_get_connection(req), 30);
	if (r >= 0)
		r = pool_submit(a->pool, request_work, request_done, j);
	if (r < 0)
		job_free(j);
	return r;
}

void agent_cluster_switchover_cancel(void)
{
	for (struct switch_job *j = jobs; j; j = j->next)
		__atomic_store_n(&j->cancel, true, __ATOMIC_RELAXED);
}
