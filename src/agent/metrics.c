#include "agent/metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agent/backups.h"
#include "agent/checks.h"
#include "agent/integrate.h"
#include "alert/alert.h"
#include "cluster/cluster.h"
#include "lb/lb.h"
#include "lib/buf.h"
#include "agent/pool.h"
#include "agent/state.h"
#include "lib/cleanup.h"
#include "lib/json.h"

/* Label values escaped as the text format wants: \\ \" \n. */
static void add_label_value(struct evbuffer *out, const char *v)
{
	const char *p = v;

	for (; *p; p++) {
		const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;

		if (esc) {
			evbuffer_add(out, v, (size_t)(p - v));
			evbuffer_add(out, esc, 2);
			v = p + 1;
		}
	}
	evbuffer_add(out, v, (size_t)(p - v));
}

static void family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_value(struct evbuffer *out, double v)
{
	if (isnan(v))
		evbuffer_add_printf(out, " NaN\n");
	else if (isinf(v))
		evbuffer_add_printf(out, v > 0 ? " +Inf\n" : " -Inf\n");
	else if (v == floor(v) && fabs(v) < 1e15)
		evbuffer_add_printf(out, " %.0f\n", v);
	else
		evbuffer_add_printf(out, " %.17g\n", v);
}

static void check_sample(struct evbuffer *out, const char *name, const struct agent_check *c,
			 double v)
{
	evbuffer_add_printf(out, "%s{check=\"", name);
	add_label_value(out, c->name);
	evbuffer_add_printf(out, "\",kind=\"");
	add_label_value(out, c->kind);
	evbuffer_add_printf(out, "\"}");
	sample_value(out, v);
}

static void plain(struct evbuffer *out, const char *name, const char *type, const char *help,
		  double v)
{
	family(out, name, type, help);
	evbuffer_add_printf(out, "%s", name);
	sample_value(out, v);
}

static void self_metrics(struct agent *a, struct evbuffer *out)
{
	_cleanup_json_ json_t *reasons = agent_degraded_reasons(a);
	struct pool_stats ps = {};
	struct rusage ru = {};
	long pages = 0, rss = 0;
	FILE *f;

	family(out, "bcdr_agent_info", "gauge", "Version and host of the agent (always 1).");
	evbuffer_add_printf(out, "bcdr_agent_info{version=\"");
	add_label_value(out, BCDR_VERSION);
	evbuffer_add_printf(out, "\",host=\"");
	add_label_value(out, a->host);
	evbuffer_add_printf(out, "\"} 1\n");
	plain(out, "bcdr_agent_start_time_seconds", "gauge", "Start time of the agent (Unix time).",
	      (double)(a->started / USEC_PER_SEC));
	plain(out, "bcdr_agent_degraded", "gauge",
	      "1 when the agent is degraded (see /healthz for why), else 0.",
	      reasons && json_array_size(reasons) > 0 ? 1 : 0);
	plain(out, "bcdr_agent_reloads_total", "counter", "Plan reloads that took effect.",
	      (double)a->reloads);
	plain(out, "bcdr_agent_reload_failures_total", "counter",
	      "Plan reloads rejected (the running plan stayed).", (double)a->reload_failures);
	plain(out, "bcdr_agent_http_requests_total", "counter", "HTTP requests served.",
	      (double)a->http_requests);
	plain(out, "bcdr_agent_http_errors_total", "counter", "HTTP requests answered with an error.",
	      (double)a->http_errors);
	plain(out, "bcdr_agent_http_connections", "gauge", "Open API connections.",
	      (double)a->http_connections);
	plain(out, "bcdr_agent_http_connections_refused_total", "counter",
	      "API connections closed at once: agent.api_max_connections were open.",
	      (double)a->http_refused);
	plain(out, "bcdr_agent_http_misdirected_total", "counter",
	      "Requests answered 421: their Host does not name the agent (agent.api_hosts).",
	      (double)a->http_misdirected);
	pool_get_stats(a->pool, &ps);
	plain(out, "bcdr_agent_worker_threads", "gauge", "Worker threads in the pool.", ps.threads);
	plain(out, "bcdr_agent_worker_busy", "gauge", "Worker threads running a job.", ps.busy);
	plain(out, "bcdr_agent_jobs_queued", "gauge", "Jobs waiting for a worker.", ps.queued);
	plain(out, "bcdr_agent_jobs_completed_total", "counter", "Jobs the workers completed.",
	      (double)ps.completed);
	plain(out, "bcdr_agent_state_bytes", "gauge", "Size of state.db and its WAL.",
	      a->state ? (double)state_size(a->state) : 0);
	getrusage(RUSAGE_SELF, &ru);
	plain(out, "process_cpu_seconds_total", "counter", "User and system CPU time spent.",
	      (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	f = fopen("/proc/self/statm", "re");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	plain(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
	      (double)rss * (double)sysconf(_SC_PAGESIZE));
	plain(out, "process_start_time_seconds", "gauge", "Start time of the process (Unix time).",
	      (double)(a->started / USEC_PER_SEC));
}

static void job_sample(struct evbuffer *out, const char *name, const char *job, double v)
{
	evbuffer_add_printf(out, "%s{job=\"", name);
	add_label_value(out, job);
	evbuffer_add_printf(out, "\"}");
	sample_value(out, v);
}

static void copy_sample(struct evbuffer *out, const char *name, const json_t *job,
			const json_t *copy, double v)
{
	evbuffer_add_printf(out, "%s{job=\"", name);
	add_label_value(out, json_string_value(json_object_get(job, "name")));
	evbuffer_add_printf(out, "\",copy=\"");
	add_label_value(out, json_string_value(json_object_get(copy, "name")));
	evbuffer_add_printf(out, "\"}");
	sample_value(out, v);
}

/* Per job and copy (copies:), from the same JSON as the API's. */
static void copy_metrics(struct evbuffer *out, const json_t *jobs)
{
	static const struct {
		const char *name, *help, *obj, *key;
	} fams[] = {
		{ "bcdr_backup_copy_age_seconds", "Age of the job's newest snapshot in the copy.",
		  NULL, "age_s" },
		{ "bcdr_backup_copy_rpo_ok", "1 when the copy's newest snapshot is within the RPO.",
		  NULL, "rpo_ok" },
		{ "bcdr_backup_copy_last_success_timestamp_seconds",
		  "When the agent last brought the copy up to date.", NULL, "last_success_unix" },
		{ "bcdr_backup_copy_duration_seconds", "How long the last copy took.", "last_copy",
		  "duration_s" },
		{ "bcdr_backup_copy_ok", "1 when the last copy succeeded.", "last_copy", "ok" },
	};
	const json_t *j, *c;
	size_t i, k;

	for (size_t f = 0; f < ELEMENTSOF(fams); f++) {
		bool head = false;

		json_array_foreach (jobs, i, j) {
			json_array_foreach (json_object_get(j, "copies"), k, c) {
				const json_t *o = fams[f].obj ? json_object_get(c, fams[f].obj) : c;
				const json_t *v = json_object_get(o, fams[f].key);

				if (!json_is_number(v) && !json_is_boolean(v))
					continue;
				if (!head)
					family(out, fams[f].name, "gauge", fams[f].help);
				head = true;
				copy_sample(out, fams[f].name, j, c,
					    json_is_boolean(v) ? json_is_true(v)
							       : json_number_value(v));
			}
		}
	}
}

static void backup_metrics(struct agent *a, struct evbuffer *out)
{
	_cleanup_json_ json_t *jobs = agent_backups_json(a);
	static const struct {
		const char *name, *help, *obj, *key;
	} fams[] = {
		{ "bcdr_backup_age_seconds", "Age of the job's newest snapshot.", NULL, "age_s" },
		{ "bcdr_backup_rpo_seconds", "The job's recovery point objective.", NULL, "rpo_s" },
		{ "bcdr_backup_last_run_duration_seconds", "How long the last backup run took.",
		  "last_run", "duration_s" },
		{ "bcdr_drill_duration_seconds", "How long the last restore drill took.",
		  "last_drill", "duration_s" },
		{ "bcdr_drill_rto_seconds", "The job's recovery time objective.", "last_drill",
		  "rto_s" },
	};
	const json_t *j;
	size_t i;

	if (json_array_size(jobs) == 0)
		return;
	for (size_t f = 0; f < ELEMENTSOF(fams); f++) {
		family(out, fams[f].name, "gauge", fams[f].help);
		json_array_foreach(jobs, i, j) {
			const json_t *o = fams[f].obj ? json_object_get(j, fams[f].obj) : j;
			const json_t *v = json_object_get(o, fams[f].key);

			if (json_is_number(v))
				job_sample(out, fams[f].name,
					   json_string_value(json_object_get(j, "name")),
					   json_number_value(v));
		}
	}
	family(out, "bcdr_backup_rpo_ok", "gauge", "1 when the newest snapshot is within the RPO.");
	json_array_foreach(jobs, i, j)
		if (json_is_boolean(json_object_get(j, "rpo_ok")))
			job_sample(out, "bcdr_backup_rpo_ok", json_string_value(json_object_get(j, "name")),
				   json_is_true(json_object_get(j, "rpo_ok")));
	family(out, "bcdr_backup_rpo_met", "gauge",
	       "1 when the newest snapshot is within the RPO in the repository and every copy.");
	json_array_foreach(jobs, i, j)
		if (json_is_boolean(json_object_get(j, "rpo_met")))
			job_sample(out, "bcdr_backup_rpo_met",
				   json_string_value(json_object_get(j, "name")),
				   json_is_true(json_object_get(j, "rpo_met")));
	family(out, "bcdr_drill_ok", "gauge", "1 when the last restore drill passed.");
	json_array_foreach(jobs, i, j) {
		const json_t *d = json_object_get(j, "last_drill");

		if (json_is_object(d))
			job_sample(out, "bcdr_drill_ok", json_string_value(json_object_get(j, "name")),
				   json_is_true(json_object_get(d, "ok")));
	}
	copy_metrics(out, jobs);
}

static void alert_metrics(struct agent *a, struct evbuffer *out)
{
	struct alert_stats st = {};

	if (!a->alerts)
		return;
	alert_engine_stats(a->alerts, &st);
	plain(out, "bcdr_alerts_firing", "gauge", "Alerts firing now.", st.firing);
	plain(out, "bcdr_alerts_pending", "gauge", "Alerts pending (waiting for `for:`).",
	      st.pending);
	plain(out, "bcdr_alerts_silenced", "gauge", "Firing alerts that a silence holds back.",
	      st.silenced);
	plain(out, "bcdr_silences_active", "gauge", "Active silences.", st.silences);
	plain(out, "bcdr_notifications_queued", "gauge", "Notifications waiting for delivery.",
	      (double)st.queued);
	plain(out, "bcdr_notifications_delivered_total", "counter",
	      "Notifications delivered since the agent started.", (double)st.delivered);
	plain(out, "bcdr_notifications_failed_total", "counter",
	      "Failed delivery attempts since the agent started.", (double)st.failed);
}

static void service_sample(struct evbuffer *out, const char *name, const char *service, double v)
{
	evbuffer_add_printf(out, "%s{service=\"", name);
	add_label_value(out, service);
	evbuffer_add_printf(out, "\"}");
	sample_value(out, v);
}

/* This member's view of the cluster (its last look at etcd). */
static void cluster_metrics(struct agent *a, struct evbuffer *out)
{
	_cleanup_json_ json_t *st = a->cluster ? cluster_status_json(a->cluster) : NULL;
	const json_t *self = json_object_get(st, "self"), *svc;
	const json_t *roles = json_object_get(self, "services");
	const json_t *age = json_object_get(self, "renewed_ago_s");
	static const struct {
		const char *name, *type, *help;
	} fams[] = {
		{ "bcdr_cluster_is_leader", "gauge", "1 while this member leads the service, else 0." },
		{ "bcdr_cluster_service_has_leader", "gauge",
		  "1 when the service has a leader (any member), else 0." },
		{ "bcdr_cluster_leader_changes_total", "counter",
		  "New leaders of the service this member saw since it started." },
		{ "bcdr_cluster_fencing_token", "gauge",
		  "The fencing token of the service's leader (its key's create revision)." },
	};
	size_t i;

	if (!st)
		return;
	plain(out, "bcdr_cluster_etcd_reachable", "gauge",
	      "1 when etcd answered this member's last call, else 0.",
	      json_is_true(json_object_get(self, "etcd_reachable")));
	plain(out, "bcdr_cluster_members", "gauge", "Live members of the cluster (member keys).",
	      (double)json_array_size(json_object_get(st, "members")));
	plain(out, "bcdr_cluster_paused", "gauge", "1 while the cluster is paused (maintenance).",
	      json_is_true(json_object_get(st, "paused")));
	if (json_is_number(age))
		plain(out, "bcdr_cluster_lease_renewal_age_seconds", "gauge",
		      "Time since this member sent its last successful lease renewal.",
		      json_number_value(age));
	for (size_t f = 0; f < ELEMENTSOF(fams); f++) {
		family(out, fams[f].name, fams[f].type, fams[f].help);
		json_array_foreach (json_object_get(st, "services"), i, svc) {
			const char *name = json_string_value(json_object_get(svc, "name"));
			const json_t *me = json_object_get(roles, name ? name : "");
			const json_t *token = json_object_get(svc, "fencing_token");
			bool has = json_is_string(json_object_get(svc, "leader"));

			if (!name)
				continue;
			if (f == 0)
				service_sample(out, fams[f].name, name,
					       strcmp(json_string_value(json_object_get(me, "role"))
							      ?: "",
						      "leader") == 0);
			else if (f == 1)
				service_sample(out, fams[f].name, name, has);
			else if (f == 2)
				service_sample(out, fams[f].name, name,
					       (double)json_integer_value(
						       json_object_get(me, "leader_changes")));
			else if (has && json_is_integer(token))
				service_sample(out, fams[f].name, name,
					       (double)json_integer_value(token));
		}
	}
}

/* The switch-over times of the failovers this member took over: a summary
 * per service, its quantiles over the history kept (the last
 * FAILOVER_KEEP), its sum and count since the state began. */
static void failover_metrics(struct agent *a, struct evbuffer *out)
{
	static const char name[] = "bcdr_cluster_failover_seconds";
	_cleanup_json_ json_t *doc = NULL;
	const char *service;
	const json_t *o;

	if (!a->cluster || !a->state || failover_log_json(state_db(a->state), NULL, &doc) < 0)
		return;
	family(out, name, "summary",
	       "Switch-over time of the failovers this member took over (docs/cluster.md).");
	json_object_foreach(doc, service, o) {
		static const struct {
			const char *q, *key;
		} qs[] = { { "0.5", "median_s" }, { "0.95", "p95_s" } };

		for (size_t i = 0; i < ELEMENTSOF(qs); i++) {
			const json_t *v = json_object_get(o, qs[i].key);

			if (!json_is_number(v))
				continue;
			evbuffer_add_printf(out, "%s{service=\"", name);
			add_label_value(out, service);
			evbuffer_add_printf(out, "\",quantile=\"%s\"}", qs[i].q);
			sample_value(out, json_number_value(v));
		}
		service_sample(out, "bcdr_cluster_failover_seconds_sum", service,
			       json_number_value(json_object_get(o, "total_seconds")));
		service_sample(out, "bcdr_cluster_failover_seconds_count", service,
			       (double)json_integer_value(json_object_get(o, "total")));
	}
}

int metrics_render(struct agent *a, struct evbuffer *out)
{
	self_metrics(a, out);
	alert_metrics(a, out);
	cluster_metrics(a, out);
	failover_metrics(a, out);
	backup_metrics(a, out);
	if (a->lb) {
		struct buf b;

		buf_init(&b, 64u << 20);
		if (lb_metrics(a->lb, &b) >= 0 && b.data)
			evbuffer_add(out, b.data, b.len);
		buf_release(&b);
	}
	if (a->n_checks == 0)
		return 0;
	family(out, "bcdr_check_state", "gauge",
	       "Confirmed state of a check: 0 ok, 1 warning, 2 critical, 3 unknown.");
	for (size_t i = 0; i < a->n_checks; i++)
		check_sample(out, "bcdr_check_state", a->checks[i], a->checks[i]->status);
	family(out, "bcdr_check_up", "gauge", "1 when the check is ok, else 0.");
	for (size_t i = 0; i < a->n_checks; i++)
		check_sample(out, "bcdr_check_up", a->checks[i], a->checks[i]->status == CHECK_OK);
	family(out, "bcdr_check_flapping", "gauge",
	       "1 while the check flaps (its notifications are held), else 0.");
	for (size_t i = 0; i < a->n_checks; i++)
		check_sample(out, "bcdr_check_flapping", a->checks[i], a->checks[i]->flapping);
	family(out, "bcdr_check_value", "gauge",
	       "Last value the check's probe measured (unit in the API).");
	for (size_t i = 0; i < a->n_checks; i++) {
		const struct agent_check *c = a->checks[i];

		if (c->has_result && c->last.has_value)
			check_sample(out, "bcdr_check_value", c, c->last.value);
	}
	family(out, "bcdr_check_duration_seconds", "gauge", "How long the last run took.");
	for (size_t i = 0; i < a->n_checks; i++)
		if (a->checks[i]->has_result)
			check_sample(out, "bcdr_check_duration_seconds", a->checks[i],
				     (double)a->checks[i]->last.duration / 1e6);
	family(out, "bcdr_check_last_run_timestamp_seconds", "gauge",
	       "When the check last completed (Unix time).");
	for (size_t i = 0; i < a->n_checks; i++)
		if (a->checks[i]->last_run)
			check_sample(out, "bcdr_check_last_run_timestamp_seconds", a->checks[i],
				     (double)a->checks[i]->last_run / 1e6);
	family(out, "bcdr_check_runs_total", "counter", "Runs of the check since the agent started.");
	for (size_t i = 0; i < a->n_checks; i++)
		check_sample(out, "bcdr_check_runs_total", a->checks[i], (double)a->checks[i]->runs);
	family(out, "bcdr_check_skipped_total", "counter",
	       "Turns skipped because the previous run had not returned.");
	for (size_t i = 0; i < a->n_checks; i++)
		check_sample(out, "bcdr_check_skipped_total", a->checks[i],
			     (double)a->checks[i]->skipped);
	family(out, "bcdr_check_anomaly_score", "gauge",
	       "Anomaly score of the check's value, 0 to 1 (checks with anomaly:).");
	for (size_t i = 0; i < a->n_checks; i++)
		if (!isnan(a->checks[i]->anomaly_score))
			check_sample(out, "bcdr_check_anomaly_score", a->checks[i],
				     a->checks[i]->anomaly_score);
	return 0;
}
