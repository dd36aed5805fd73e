/* `bcdr agent`: one process, one libevent loop in the main thread, a worker
 * pool for blocking work, the SQLite state, the HTTP API. This header is
 * internal, shared by the agent's own modules (checks, api, metrics); the
 * rest of bcdr includes agent/agent.h. */
#pragma once

#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/agent.h"
#include "agent/settings.h"
#include "monitor/monitor.h" /* enum check_status */
#include "lib/timeutil.h"

struct plan;
struct pool;
struct state;
struct api;
struct agent_check;
struct plan_ref;
struct alert_engine;
struct act_engine;
struct lb;
struct lb_reporter;
struct cluster;
struct cluster_alerts;

struct agent {
	struct event_base *base;
	struct plan_ref *plan_ref; /* the running plan */
	struct plan *plan;         /* plan_ref->plan */
	pthread_mutex_t plan_lock; /* guards plan_ref for threads (act jobs) */
	struct alert_engine *alerts;
	struct act_engine *acts;
	struct lb *lb;              /* the plan's balancers, or NULL */
	struct lb_reporter *lb_reporter; /* agent.lb_report_port, or NULL */
	char lb_error[256];         /* why the balancers could not start */
	struct event *lb_follow_timer; /* re-reads followed leaders (lb-follow.h) */
	char *lb_follow_sig;        /* what the balancers last got from it */
	struct cluster *cluster;    /* the plan's cluster:, or NULL (integrate.c) */
	struct plan_ref *cluster_plan; /* the plan it runs on: kept over reloads */
	struct cluster_alerts *cluster_alerts; /* its events as alerts (cluster-alerts.c) */
	sqlite3 *alert_db;         /* in memory when the state cannot be opened */
	char *plan_path;
	struct agent_settings *settings; /* taken from the plan (or defaults), owned */
	struct pool *pool;
	struct state *state;       /* NULL while state_dir cannot be opened */
	char state_error[256];     /* why state is NULL or its last write failed */
	bool state_write_failed;
	struct api *api;
	char *token;               /* bearer token, NULL when none could be had */
	char *host;                /* hostname, for labels and status */
	usec_t started;            /* realtime */
	usec_t started_mono;
	struct agent_check **checks;
	size_t n_checks;
	struct event *sched_timer; /* the next due check (checks.c) */
	struct event *sig_hup, *sig_term, *sig_int, *flush_timer, *maintain_timer;
	unsigned long long reloads, reload_failures;
	unsigned long long http_requests, http_errors;
	unsigned long long http_refused;     /* connections closed at api_max_connections */
	unsigned long long http_misdirected; /* requests answered 421 (Host) */
	size_t http_connections;             /* open API connections */
	int exit_code;
};

/* Degraded reasons as a new JSON array of strings (empty: healthy). */
json_t *agent_degraded_reasons(struct agent *a);

/* Appends an event to the state (logged when the state cannot take it). */
void agent_event(struct agent *a, const char *kind, const char *check, const json_t *data,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Notes the outcome of a state write: failures make the agent degraded
 * until a later write succeeds. */
void agent_state_result(struct agent *a, int r, const char *what);
