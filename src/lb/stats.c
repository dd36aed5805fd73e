/* What the balancer shows: lb_status_json() for `bcdr lb status` and the
 * agent's API, lb_metrics() for Prometheus, and the latency histograms
 * both read. Called on the control loop; the counters are the workers'
 * atomics, read relaxed. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>

#include "lb/internal.h"
#include "lb/lb.h"
#include "lib/json.h"

/* Latency histogram buckets (milliseconds), the last one +Inf. */
const double lb_hist_bounds_ms[HIST_N - 1] = { 0.5, 1, 2.5, 5, 10, 25, 50, 100,
					       250, 500, 1000, 2500, 5000 };
static const char *const report_names[] = { "up", "drain", "maint", "down" };

double lb_hist_quantile(struct hist *h, double q)
{
	uint64_t counts[HIST_N], total = 0, seen = 0;

	for (size_t i = 0; i < HIST_N; i++)
		total += counts[i] = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
	if (total == 0)
		return -1;
	for (size_t i = 0; i < HIST_N; i++) {
		double lo = i ? lb_hist_bounds_ms[i - 1] : 0;
		double hi =
			i < HIST_N - 1 ? lb_hist_bounds_ms[i] : lb_hist_bounds_ms[HIST_N - 2] * 2;

		if (counts[i] && (double)(seen + counts[i]) >= q * (double)total)
			return lo +
			       (hi - lo) * (q * (double)total - (double)seen) / (double)counts[i];
		seen += counts[i];
	}
	return lb_hist_bounds_ms[HIST_N - 2];
}

static json_t *latency_json(struct hist *c, struct hist *r)
{
	json_t *j = json_object();
	double v;

	if (!j)
		return NULL;
	if ((v = lb_hist_quantile(c, 0.5)) >= 0)
		json_set_real(j, "connect_p50_ms", v);
	if ((v = lb_hist_quantile(c, 0.99)) >= 0)
		json_set_real(j, "connect_p99_ms", v);
	if ((v = lb_hist_quantile(r, 0.5)) >= 0)
		json_set_real(j, "response_p50_ms", v);
	if ((v = lb_hist_quantile(r, 0.99)) >= 0)
		json_set_real(j, "response_p99_ms", v);
	return j;
}

static json_t *backend_json(struct backend *be)
{
	json_t *j = json_object();
	char t[64];

	if (!j)
		return NULL;
	json_set_str(j, "name", be->name);
	json_set_str(j, "address", be->address);
	json_set_str(j, "state", be->state);
	json_set_str(j, "since", time_format_iso(be->since, t, sizeof(t)));
	json_set_str(j, "admin", lb_admin_names[be->admin]);
	json_set_str(j, "health", be->health == HEALTH_UP ? "up" : "down");
	if (be->held_down[0]) {
		/* what `bcdr lb status` shows: why it takes nothing */
		json_set_str(j, "held_down", be->held_down);
		json_set_str(j, "last_check", be->held_down);
	} else if (be->check_at) {
		json_set_str(j, "last_check", be->check_msg);
		json_set_str(j, "last_check_at", time_format_iso(be->check_at, t, sizeof(t)));
	} else if (be->check_msg[0]) {
		json_set_str(j, "last_check", be->check_msg);
	}
	json_set_bool(j, "backup", atomic_load(&be->backup));
	json_set_int(j, "weight", be->weight);
	/* Stored x100 (the agent's percent), shown in the weight's units. */
	json_set_real(j, "effective_weight", atomic_load(&be->eff_weight) / 100.0);
	json_set_int(j, "max_conns", atomic_load(&be->maxconn));
	json_set_int(j, "connections", atomic_load(&be->conns));
	json_set_int(j, "total", (long long)atomic_load(&be->total));
	json_set_int(j, "bytes_in", (long long)atomic_load(&be->bytes_in));
	json_set_int(j, "bytes_out", (long long)atomic_load(&be->bytes_out));
	json_set_int(j, "connect_errors", (long long)atomic_load(&be->connect_errors));
	if (be->bal->agent_port) {
		json_t *a = json_object();

		json_set_str(a, "state",
			     be->agent_state >= 0 ? report_names[be->agent_state] : "up");
		if (be->agent_pct >= 0)
			json_set_int(a, "percent", be->agent_pct);
		if (be->agent_maxconn >= 0)
			json_set_int(a, "maxconn", be->agent_maxconn);
		json_set_str(a, "last", be->agent_msg);
		json_object_set_new(j, "agent", a);
	}
	if (be->bal->algorithm == LB_ALGO_PEAK_EWMA)
		json_set_real(j, "ewma_ms", lb_load_double(&be->ewma_bits) / 1000.0);
	json_object_set_new(j, "latency", latency_json(&be->connect_lat, &be->response_lat));
	return j;
}

json_t *lb_status_json(struct lb *lb)
{
	json_t *all = json_array();

	if (!all)
		return NULL;
	for (size_t b = 0; b < lb->n_balancers; b++) {
		struct balancer *bal = &lb->balancers[b];
		json_t *j = json_object(), *listen = json_array(), *bes = json_array();

		if (!j || !listen || !bes) {
			json_decref(j);
			json_decref(listen);
			json_decref(bes);
			json_decref(all);
			return NULL;
		}
		json_set_str(j, "name", bal->name);
		for (char **l = bal->listen; *l; l++)
			json_array_append_new(listen, json_string(*l));
		json_object_set_new(j, "listen", listen);
		json_set_str(j, "algorithm", lb_algorithm_names[bal->algorithm]);
		json_set_int(j, "connections", atomic_load(&bal->conns));
		json_set_int(j, "max_conns", bal->max_conns);
		json_set_int(j, "accepted", (long long)atomic_load(&bal->accepted));
		json_set_int(j, "refused", (long long)atomic_load(&bal->refused));
		json_set_int(j, "failed", (long long)atomic_load(&bal->failed));
		json_set_int(j, "redispatched", (long long)atomic_load(&bal->redispatched));
		json_set_int(j, "usable_primaries", lb_usable_primaries(bal));
		/* of LB_MAX_BACKENDS: the backends, and removed ones not yet reused */
		json_set_int(j, "backend_slots", atomic_load(&bal->n_backends));
		for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++)
			if (!bal->backends[i]->removed || atomic_load(&bal->backends[i]->conns))
				json_array_append_new(bes, backend_json(bal->backends[i]));
		json_object_set_new(j, "backends", bes);
		json_array_append_new(all, j);
	}
	return all;
}

typedef uint64_t (*backend_value_fn)(struct backend *be);

static uint64_t v_up(struct backend *be) { return atomic_load(&be->usable); }
static uint64_t v_weight(struct backend *be) { return atomic_load(&be->eff_weight); }
static uint64_t v_conns(struct backend *be) { return atomic_load(&be->conns); }
static uint64_t v_total(struct backend *be) { return atomic_load(&be->total); }
static uint64_t v_in(struct backend *be) { return atomic_load(&be->bytes_in); }
static uint64_t v_out(struct backend *be) { return atomic_load(&be->bytes_out); }
static uint64_t v_errors(struct backend *be) { return atomic_load(&be->connect_errors); }

static void metric_backends(struct lb *lb, struct buf *out, const char *name, const char *type,
			    const char *help, backend_value_fn fn)
{
	buf_printf(out, "# HELP bcdr_lb_backend_%s %s\n# TYPE bcdr_lb_backend_%s %s\n", name, help,
		   name, type);
	for (size_t b = 0; b < lb->n_balancers; b++) {
		struct balancer *bal = &lb->balancers[b];

		for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++) {
			struct backend *be = bal->backends[i];

			if (!be->removed)
				buf_printf(
					out,
					"bcdr_lb_backend_%s{balancer=\"%s\",backend=\"%s\"} %llu\n",
					name, bal->name, be->name, (unsigned long long)fn(be));
		}
	}
}

static void metric_hist(struct lb *lb, struct buf *out, const char *name, const char *help,
			size_t offset)
{
	buf_printf(out, "# HELP bcdr_lb_backend_%s %s\n# TYPE bcdr_lb_backend_%s histogram\n", name,
		   help, name);
	for (size_t b = 0; b < lb->n_balancers; b++) {
		struct balancer *bal = &lb->balancers[b];

		for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++) {
			struct backend *be = bal->backends[i];
			struct hist *h = (struct hist *)((char *)be + offset);
			uint64_t cum = 0;

			if (be->removed)
				continue;
			for (size_t k = 0; k < HIST_N; k++) {
				char le[32];

				cum += atomic_load(&h->bucket[k]);
				if (k < HIST_N - 1)
					snprintf(le, sizeof(le), "%g",
						 lb_hist_bounds_ms[k] / 1000.0);
				else
					snprintf(le, sizeof(le), "+Inf");
				buf_printf(
					out,
					"bcdr_lb_backend_%s_bucket{balancer=\"%s\",backend=\"%s\","
					"le=\"%s\"} %llu\n",
					name, bal->name, be->name, le, (unsigned long long)cum);
			}
			buf_printf(out,
				   "bcdr_lb_backend_%s_sum{balancer=\"%s\",backend=\"%s\"} %.6f\n",
				   name, bal->name, be->name,
				   (double)atomic_load(&h->sum_us) / 1e6);
			buf_printf(
				out,
				"bcdr_lb_backend_%s_count{balancer=\"%s\",backend=\"%s\"} %llu\n",
				name, bal->name, be->name,
				(unsigned long long)atomic_load(&h->count));
		}
	}
}

static void metric_balancers(struct lb *lb, struct buf *out, const char *name, const char *type,
			     const char *help, size_t offset, bool is64)
{
	buf_printf(out, "# HELP bcdr_lb_%s %s\n# TYPE bcdr_lb_%s %s\n", name, help, name, type);
	for (size_t b = 0; b < lb->n_balancers; b++) {
		struct balancer *bal = &lb->balancers[b];
		unsigned long long v =
			is64 ? atomic_load((_Atomic uint64_t *)((char *)bal + offset))
			     : atomic_load((_Atomic unsigned *)((char *)bal + offset));

		buf_printf(out, "bcdr_lb_%s{balancer=\"%s\"} %llu\n", name, bal->name, v);
	}
}

int lb_metrics(struct lb *lb, struct buf *out)
{
	metric_balancers(lb, out, "connections", "gauge", "client connections open",
			 offsetof(struct balancer, conns), false);
	metric_balancers(lb, out, "accepted_total", "counter", "client connections accepted",
			 offsetof(struct balancer, accepted), true);
	metric_balancers(lb, out, "refused_total", "counter",
			 "client connections refused (max_conns, out of fds)",
			 offsetof(struct balancer, refused), true);
	metric_balancers(lb, out, "failed_total", "counter",
			 "client connections closed for want of a backend",
			 offsetof(struct balancer, failed), true);
	metric_balancers(lb, out, "redispatched_total", "counter",
			 "connects retried after a failure",
			 offsetof(struct balancer, redispatched), true);
	metric_backends(lb, out, "up", "gauge", "1 when the backend takes new connections", v_up);
	metric_backends(lb, out, "effective_weight_percent", "gauge",
			"100 x weight x agent report x slow start", v_weight);
	metric_backends(lb, out, "connections", "gauge", "connections open", v_conns);
	metric_backends(lb, out, "connections_total", "counter", "connections opened", v_total);
	metric_backends(lb, out, "bytes_in_total", "counter", "bytes from clients", v_in);
	metric_backends(lb, out, "bytes_out_total", "counter", "bytes to clients", v_out);
	metric_backends(lb, out, "connect_errors_total", "counter", "failed connects", v_errors);
	metric_hist(lb, out, "connect_seconds", "time to connect",
		    offsetof(struct backend, connect_lat));
	metric_hist(lb, out, "response_seconds", "time to the first byte of a response",
		    offsetof(struct backend, response_lat));
	return out->data || lb->n_balancers == 0 ? 0 : -ENOMEM;
}
