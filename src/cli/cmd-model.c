/* bcdr model: what availability the plan can deliver, and where it breaks.
 *   availability  exact steady state (closed forms and Markov chains)
 *   simulate      Monte Carlo: the spread of downtime, any lifetime distribution
 *   graph         the dependency graph: single points of failure, cascades
 *   measured      MTBF/MTTR from the agent's incidents, model recomputed with them
 * See docs/models.md for the models and their assumptions. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "model/availability.h"
#include "model/depgraph.h"
#include "model/edges.h"
#include "model/measured.h"
#include "model/simulate.h"
#include "plan/plan.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct model_report *, model_report_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct sim_result *, sim_result_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct depgraph_report *, depgraph_report_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct edge_list *, edge_list_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct measured_report *, measured_report_free)

/* Parses the common options only; returns CLI_CONTINUE or an exit code. */
static int parse_common_only(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = { CLI_COMMON_LONG };
	int opt, code;

	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
		code = cli_common_option(cli, opt, optarg);
		if (code != CLI_CONTINUE)
			return code;
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	return CLI_CONTINUE;
}

/* Loads the plan and its topology: section; returns 0 or an exit code. */
static int load_topology(struct cli *cli, bool acyclic, const struct topology_plan **ret)
{
	int code = cli_load_plan(cli, true);

	if (code != 0)
		return code;
	if (!cli->plan->topology) {
		log_error("'%s' has no topology: section (docs/models.md shows how to describe "
			  "the service and its components)", cli->plan->path);
		return EXIT_FAIL;
	}
	if (acyclic) {
		_cleanup_free_ char *error = NULL;

		if (topology_check_acyclic(cli->plan->topology, &error) < 0) {
			log_error("%s", error ? error : "dependency cycle");
			return EXIT_FAIL;
		}
	}
	*ret = cli->plan->topology;
	return 0;
}

static const char *fmt_seconds(double s, char *out, size_t size)
{
	if (!isfinite(s))
		return "never";
	if (s <= 0)
		return "0s";
	if (s >= 1e15)
		s = 1e15;
	return duration_format((usec_t)llround(s * USEC_PER_SEC), out, size);
}

static const char *fmt_availability(double a, double u, char *out, size_t size)
{
	int prec = (int)ceil(nines(u)) + 1;

	if (prec < 2)
		prec = 2;
	if (prec > 10)
		prec = 10;
	snprintf(out, size, "%.*f%%", prec, a * 100);
	return out;
}

static const char *method_name(int method)
{
	return method == METHOD_MARKOV ? "markov chain" : "closed form";
}

struct improvement {
	const char *component;
	const char *action;
	double saved_s, availability;
};

static int cmp_improvement(const void *a, const void *b)
{
	const struct improvement *x = a, *y = b;

	return x->saved_s < y->saved_s ? 1 : x->saved_s > y->saved_s ? -1 :
		strcmp(x->component, y->component);
}

/* The what-ifs, ranked by the service downtime they save. */
static struct improvement *rank_improvements(const struct model_report *m, size_t *ret_n)
{
	struct improvement *v = calloc(2 * m->n_components + 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; i < m->n_components; i++) {
		const struct component_report *c = &m->components[i];

		if (!c->required)
			continue;
		v[n++] = (struct improvement){ c->c->name, "halve_mttr", c->halve_mttr_saved_s,
					       c->halve_mttr_availability };
		if (c->add_replica_possible)
			v[n++] = (struct improvement){ c->c->name, "add_replica",
						       c->add_replica_saved_s,
						       c->add_replica_availability };
	}
	qsort(v, n, sizeof(*v), cmp_improvement);
	*ret_n = n;
	return v;
}

static int cmp_birnbaum(const void *a, const void *b)
{
	const struct component_report *x = *(const struct component_report *const *)a;
	const struct component_report *y = *(const struct component_report *const *)b;

	return x->birnbaum < y->birnbaum ? 1 : x->birnbaum > y->birnbaum ? -1 :
		strcmp(x->c->name, y->c->name);
}

static json_t *unit_json(const struct unit_result *u)
{
	json_t *j = json_object();

	json_set_real(j, "availability", u->availability);
	json_set_real(j, "unavailability", u->unavailability);
	json_set_real(j, "nines", nines(u->unavailability));
	json_set_real(j, "downtime_per_year_s", u->unavailability * SECONDS_PER_YEAR);
	json_set_real(j, "downtime_per_30d_s", u->unavailability * SECONDS_PER_30_DAYS);
	json_set_real(j, "mtbf_s", u->mtbf_s);
	json_set_real(j, "mttr_s", u->mttr_s);
	json_set_real(j, "failures_per_year", u->failure_rate * SECONDS_PER_YEAR);
	return j;
}

static json_t *target_json(double target, double unavailability)
{
	json_t *j = json_object();
	double allowed = (1 - target) * SECONDS_PER_YEAR;

	json_set_real(j, "availability", target);
	json_set_real(j, "allowed_downtime_per_year_s", allowed);
	json_set_real(j, "budget_left_per_year_s", allowed - unavailability * SECONDS_PER_YEAR);
	json_set_real(j, "budget_left_per_30d_s",
		      (1 - target - unavailability) * SECONDS_PER_30_DAYS);
	json_set_bool(j, "met", 1 - unavailability >= target);
	return j;
}

static int print_availability_json(const struct topology_plan *t, const struct model_report *m,
				   double target, const struct improvement *imp, size_t n_imp,
				   const struct component_report *const *by_birnbaum, size_t n_req)
{
	_cleanup_json_ json_t *root = json_object();
	json_t *service = unit_json(&(struct unit_result){
		.availability = m->service.availability,
		.unavailability = m->service.unavailability,
		.failure_rate = m->service.failure_rate,
		.mtbf_s = m->service.mtbf_s,
		.mttr_s = m->service.mttr_s,
	});
	json_t *components = json_object(), *list = json_array(), *ranking = json_array();

	json_set_str(service, "name", t->service);
	json_object_set_new(root, "service", service);
	json_object_set_new(root, "target", target > 0 ?
			    target_json(target, m->service.unavailability) : json_null());
	for (size_t i = 0; i < m->n_components; i++) {
		const struct component_report *c = &m->components[i];
		json_t *j = unit_json(&c->result);

		json_set_str(j, "method", method_name(c->result.method));
		json_set_int(j, "states", (long long)c->result.states);
		json_set_int(j, "replicas", c->params.replicas);
		json_set_int(j, "needs", c->params.needs);
		json_set_int(j, "repair_crews", c->params.crews);
		json_set_str(j, "redundancy",
			     c->params.redundancy == REDUNDANCY_COLD ? "cold" : "active");
		json_set_real(j, "replica_mtbf_s", c->params.mtbf_s);
		json_set_real(j, "replica_mttr_s", c->params.mttr_s);
		json_set_bool(j, "required", c->required);
		json_set_real(j, "birnbaum", c->required ? c->birnbaum : 0);
		json_object_set_new(components, c->c->name, j);
	}
	json_object_set_new(root, "components", components);
	for (size_t i = 0; i < n_imp; i++) {
		json_t *j = json_object();

		json_set_str(j, "component", imp[i].component);
		json_set_str(j, "action", imp[i].action);
		json_set_real(j, "downtime_saved_per_year_s", imp[i].saved_s);
		json_set_real(j, "service_availability", imp[i].availability);
		json_array_append_new(list, j);
	}
	json_object_set_new(root, "importance", list);
	for (size_t i = 0; i < n_req; i++)
		json_array_append_new(ranking, json_string(by_birnbaum[i]->c->name));
	json_object_set_new(root, "birnbaum_ranking", ranking);
	json_set_real(root, "elapsed_s", m->elapsed_s);
	return json_print(stdout, root);
}

static void print_availability_text(const struct topology_plan *t, const struct model_report *m,
				    double target, const struct improvement *imp, size_t n_imp)
{
	char a[64], d1[64], d2[64], d3[64];
	const struct series_result *s = &m->service;

	printf("service %s: availability %s (%.2f nines)\n", t->service,
	       fmt_availability(s->availability, s->unavailability, a, sizeof(a)),
	       nines(s->unavailability));
	printf("  downtime %s per year, %s per 30 days\n",
	       fmt_seconds(s->unavailability * SECONDS_PER_YEAR, d1, sizeof(d1)),
	       fmt_seconds(s->unavailability * SECONDS_PER_30_DAYS, d2, sizeof(d2)));
	printf("  mtbf %s, mttr %s (%.3g failures per year)\n",
	       fmt_seconds(s->mtbf_s, d1, sizeof(d1)), fmt_seconds(s->mttr_s, d2, sizeof(d2)),
	       s->failure_rate * SECONDS_PER_YEAR);
	if (target > 0) {
		double allowed = (1 - target) * SECONDS_PER_YEAR;
		double left = allowed - s->unavailability * SECONDS_PER_YEAR;

		printf("  target %s allows %s per year: %s %s per year\n",
		       fmt_availability(target, 1 - target, a, sizeof(a)),
		       fmt_seconds(allowed, d1, sizeof(d1)),
		       left >= 0 ? "met, budget left" : "MISSED by",
		       fmt_seconds(fabs(left), d2, sizeof(d2)));
	}
	printf("\n%-16s %-12s %-13s %-15s %-12s %-10s %-10s %s\n", "component", "needs",
	       "method", "availability", "down/year", "mtbf", "mttr", "birnbaum");
	for (size_t i = 0; i < m->n_components; i++) {
		const struct component_report *c = &m->components[i];
		char reps[32];

		snprintf(reps, sizeof(reps), "%d of %d%s", c->params.needs, c->params.replicas,
			 c->params.redundancy == REDUNDANCY_COLD ? " cold" : "");
		printf("%-16s %-12s %-13s %-15s %-12s %-10s %-10s ", c->c->name, reps,
		       method_name(c->result.method),
		       fmt_availability(c->result.availability, c->result.unavailability, a,
					sizeof(a)),
		       fmt_seconds(c->result.unavailability * SECONDS_PER_YEAR, d1, sizeof(d1)),
		       fmt_seconds(c->result.mtbf_s, d2, sizeof(d2)),
		       fmt_seconds(c->result.mttr_s, d3, sizeof(d3)));
		if (c->required)
			printf("%.6f\n", c->birnbaum);
		else
			printf("(not required)\n");
	}
	printf("\nimprovements, by service downtime saved per year:\n");
	for (size_t i = 0; i < n_imp && i < 10; i++)
		printf("  %2zu. %-16s %-12s saves %s (service %s)\n", i + 1, imp[i].component,
		       strcmp(imp[i].action, "halve_mttr") == 0 ? "halve mttr" : "add a replica",
		       fmt_seconds(imp[i].saved_s, d1, sizeof(d1)),
		       fmt_availability(imp[i].availability, 1 - imp[i].availability, a,
					sizeof(a)));
}

static int run_availability(struct cli *cli, int argc, char **argv)
{
	const struct topology_plan *t;
	_cleanup_(model_report_freep) struct model_report *m = NULL;
	_cleanup_free_ struct improvement *imp = NULL;
	_cleanup_free_ const struct component_report **by_birnbaum = NULL;
	size_t n_imp = 0, n_req = 0;
	double target;
	int code, r;

	code = parse_common_only(cli, argc, argv);
	if (code != CLI_CONTINUE)
		return code;
	code = load_topology(cli, true, &t);
	if (code != 0)
		return code;
	r = model_evaluate(t, &m);
	if (r < 0) {
		log_error_errno(r, "cannot solve the availability model");
		return EXIT_FAIL;
	}
	imp = rank_improvements(m, &n_imp);
	by_birnbaum = calloc(m->n_components + 1, sizeof(*by_birnbaum));
	if (!imp || !by_birnbaum) {
		log_error("out of memory");
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < m->n_components; i++)
		if (m->components[i].required)
			by_birnbaum[n_req++] = &m->components[i];
	qsort(by_birnbaum, n_req, sizeof(*by_birnbaum), cmp_birnbaum);
	target = cli->plan->targets.availability;
	if (cli->json)
		print_availability_json(t, m, target, imp, n_imp, by_birnbaum, n_req);
	else
		print_availability_text(t, m, target, imp, n_imp);
	/* Missing the target is a finding: exit 3, so a pipeline can gate on it. */
	return target > 0 && m->service.availability < target ? EXIT_PROBLEMS : EXIT_OK;
}

static const struct command cmd_model_availability = {
	"availability", "steady-state availability of the service and its components",
	"model availability [-c PLAN] [--json]\n\n"
	"Computes, from the plan's topology: section, the steady-state availability of\n"
	"every component and of the service, its downtime per year and per 30 days, its\n"
	"nines, MTBF and MTTR, the error budget left against targets.availability, and\n"
	"which change buys the most: Birnbaum importance, and the service downtime saved\n"
	"if a component's MTTR were halved or it had one more replica.\n"
	"Exact methods: closed forms for independent repairs, a Markov chain for shared\n"
	"repair crews and cold standby (docs/models.md).\n"
	"Exit status 3 when the model misses targets.availability.\n\n"
	"options:\n" CLI_COMMON_HELP,
	run_availability,
};


/* simulate */

enum {
	OPT_YEARS = CLI_OPT_FIRST_FREE,
	OPT_SEED,
	OPT_EXPONENTIAL,
	OPT_EDGES,
	OPT_DOT,
	OPT_SERVICE,
	OPT_TRIALS,
	OPT_STATE_DB,
	OPT_SINCE,
};

static int parse_number(const char *s, double lo, double hi, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !(v >= lo && v <= hi))
		return -EINVAL;
	*ret = v;
	return 0;
}

struct progress {
	bool on;
	struct timespec last;
};

static void sim_progress(void *userdata, double done, double total)
{
	struct progress *p = userdata;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((double)(now.tv_sec - p->last.tv_sec) + (double)(now.tv_nsec - p->last.tv_nsec) / 1e9 <
	    0.2 && done < total)
		return;
	p->last = now;
	fprintf(stderr, "\rsimulating: year %.0f of %.0f", done, total);
	if (done >= total)
		fputs("\r\033[K", stderr);
}

/* The yearly downtime in bins of equal width, for a histogram. */
#define HIST_BINS 10
static void histogram(const struct sim_result *r, double *ret_width, uint64_t counts[HIST_BINS])
{
	double width = r->downtime_max_s / HIST_BINS;

	memset(counts, 0, HIST_BINS * sizeof(uint64_t));
	if (!(width > 0))
		width = 1;
	for (size_t i = 0; i < r->n_years; i++) {
		size_t b = (size_t)(r->yearly_downtime_s[i] / width);

		counts[b < HIST_BINS ? b : HIST_BINS - 1]++;
	}
	*ret_width = width;
}

static json_t *interval_json(double lo, double hi)
{
	json_t *a = json_array();

	json_array_append_new(a, json_real(lo));
	json_array_append_new(a, json_real(hi));
	return a;
}

static void print_simulate_json(const struct topology_plan *t, const struct sim_result *r,
				double exact, bool comparable, double target)
{
	_cleanup_json_ json_t *root = json_object();
	json_t *service = json_object(), *down = json_object(), *hist = json_array();
	json_t *components = json_object(), *ex = json_object();
	uint64_t counts[HIST_BINS];
	double width;

	json_set_str(service, "name", t->service);
	json_set_real(service, "availability", r->availability);
	json_object_set_new(service, "ci95", interval_json(r->ci_low, r->ci_high));
	json_set_real(service, "mtbf_s", r->mtbf_s);
	json_set_real(service, "mttr_s", r->mttr_s);
	json_set_int(service, "outages", (long long)r->outages);
	json_object_set_new(root, "service", service);
	json_set_real(ex, "availability", exact);
	json_set_bool(ex, "comparable", comparable);
	json_set_bool(ex, "within_interval", exact >= r->ci_low && exact <= r->ci_high);
	json_object_set_new(root, "exact", ex);
	json_set_real(down, "mean", r->downtime_mean_s);
	json_set_real(down, "sd", r->downtime_sd_s);
	json_set_real(down, "p50", r->downtime_p50_s);
	json_set_real(down, "p90", r->downtime_p90_s);
	json_set_real(down, "p99", r->downtime_p99_s);
	json_set_real(down, "max", r->downtime_max_s);
	histogram(r, &width, counts);
	for (size_t b = 0; b < HIST_BINS; b++) {
		json_t *bin = json_object();

		json_set_real(bin, "from_s", (double)b * width);
		json_set_real(bin, "to_s", (double)(b + 1) * width);
		json_set_int(bin, "years", (long long)counts[b]);
		json_array_append_new(hist, bin);
	}
	json_object_set_new(down, "histogram", hist);
	json_object_set_new(root, "yearly_downtime_s", down);
	if (target > 0) {
		json_t *tj = json_object();

		json_set_real(tj, "availability", target);
		json_set_real(tj, "p_miss_month", r->p_miss_month);
		json_object_set_new(tj, "p_miss_month_ci95",
				    interval_json(r->p_miss_month_low, r->p_miss_month_high));
		json_set_real(tj, "p_miss_year", r->p_miss_year);
		json_object_set_new(tj, "p_miss_year_ci95",
				    interval_json(r->p_miss_year_low, r->p_miss_year_high));
		json_set_int(tj, "months", (long long)r->months);
		json_set_int(tj, "months_missed", (long long)r->months_missed);
		json_set_int(tj, "years_missed", (long long)r->years_missed);
		json_object_set_new(root, "target", tj);
	} else {
		json_object_set_new(root, "target", json_null());
	}
	for (size_t i = 0; i < r->n_components; i++) {
		const struct sim_component *c = &r->components[i];
		json_t *j = json_object();

		json_set_real(j, "availability", c->availability);
		json_object_set_new(j, "ci95", interval_json(c->availability - c->ci_half,
							     c->availability + c->ci_half));
		json_set_int(j, "failures", (long long)c->failures);
		json_set_int(j, "outages", (long long)c->outages);
		json_object_set_new(components, c->name, j);
	}
	json_object_set_new(root, "components", components);
	json_set_real(root, "years", r->years);
	json_set_int(root, "seed", (long long)r->seed);
	json_set_int(root, "lifecycles", (long long)r->lifecycles);
	json_set_real(root, "elapsed_s", r->elapsed_s);
	json_set_real(root, "lifecycles_per_s", r->elapsed_s > 0 ?
		      (double)r->lifecycles / r->elapsed_s : 0);
	json_print(stdout, root);
}

static void print_simulate_text(const struct topology_plan *t, const struct sim_result *r,
				double exact, bool comparable, double target)
{
	char a[64], b[64], c[64], d1[64], d2[64], d3[64], d4[64];
	uint64_t counts[HIST_BINS], most = 1;
	double width;

	printf("service %s: %.0f years simulated (seed %" PRIu64 ", %" PRIu64
	       " replica failures, %.2fs)\n", t->service, r->years, r->seed, r->lifecycles,
	       r->elapsed_s);
	printf("  availability %s, 95%% interval %s to %s\n",
	       fmt_availability(r->availability, 1 - r->availability, a, sizeof(a)),
	       fmt_availability(r->ci_low, 1 - r->ci_low, b, sizeof(b)),
	       fmt_availability(r->ci_high, 1 - r->ci_high, c, sizeof(c)));
	printf("  exact model %s: %s%s\n", fmt_availability(exact, 1 - exact, a, sizeof(a)),
	       exact >= r->ci_low && exact <= r->ci_high ? "inside the interval" :
	       "outside the interval",
	       comparable ? "" : " (it assumes exponential lifetimes and repairs)");
	printf("  mtbf %s, mttr %s (%" PRIu64 " outages)\n", fmt_seconds(r->mtbf_s, d1, sizeof(d1)),
	       fmt_seconds(r->mttr_s, d2, sizeof(d2)), r->outages);
	printf("  yearly downtime: mean %s, median %s, p90 %s, p99 %s, worst %s\n",
	       fmt_seconds(r->downtime_mean_s, d1, sizeof(d1)),
	       fmt_seconds(r->downtime_p50_s, d2, sizeof(d2)),
	       fmt_seconds(r->downtime_p90_s, d3, sizeof(d3)),
	       fmt_seconds(r->downtime_p99_s, d4, sizeof(d4)),
	       fmt_seconds(r->downtime_max_s, a, sizeof(a)));
	if (target > 0) {
		printf("  target %s missed in %.3g%% of 30-day months (95%%: %.3g%% to %.3g%%)\n",
		       fmt_availability(target, 1 - target, a, sizeof(a)), 100 * r->p_miss_month,
		       100 * r->p_miss_month_low, 100 * r->p_miss_month_high);
		printf("  and in %.3g%% of years (95%%: %.3g%% to %.3g%%)\n", 100 * r->p_miss_year,
		       100 * r->p_miss_year_low, 100 * r->p_miss_year_high);
	}
	histogram(r, &width, counts);
	for (size_t i = 0; i < HIST_BINS; i++)
		if (counts[i] > most)
			most = counts[i];
	printf("\nyearly downtime, years:\n");
	for (size_t i = 0; i < HIST_BINS; i++) {
		int bar = (int)(40.0 * (double)counts[i] / (double)most + 0.5);

		printf("  %9s - %-9s %8" PRIu64 " %.*s\n",
		       fmt_seconds((double)i * width, d1, sizeof(d1)),
		       fmt_seconds((double)(i + 1) * width, d2, sizeof(d2)), counts[i], bar,
		       "########################################");
	}
	printf("\n%-16s %-15s %-22s %-10s %s\n", "component", "availability", "95% interval",
	       "failures", "outages");
	for (size_t i = 0; i < r->n_components; i++) {
		const struct sim_component *sc = &r->components[i];
		char iv[64];

		snprintf(iv, sizeof(iv), "+/- %.3g%%", 100 * sc->ci_half);
		printf("%-16s %-15s %-22s %-10" PRIu64 " %" PRIu64 "\n", sc->name,
		       fmt_availability(sc->availability, 1 - sc->availability, a, sizeof(a)), iv,
		       sc->failures, sc->outages);
	}
}

static int run_simulate(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "years", required_argument, NULL, OPT_YEARS },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "exponential", no_argument, NULL, OPT_EXPONENTIAL },
		CLI_COMMON_LONG
	};
	struct sim_options o = { .years = 10000, .seed = 1 };
	struct progress progress = { 0 };
	const struct topology_plan *t;
	_cleanup_(sim_result_freep) struct sim_result *res = NULL;
	_cleanup_(model_report_freep) struct model_report *m = NULL;
	bool comparable = true;
	double v;
	int opt, code, r;

	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
		switch (opt) {
		case OPT_YEARS:
			if (parse_number(optarg, 2, SIM_MAX_YEARS, &v) < 0 || v != floor(v))
				return cli_usage_error(cli, "--years must be a whole number from 2 to "
						       "%.0f, not '%s'", SIM_MAX_YEARS, optarg);
			o.years = v;
			break;
		case OPT_SEED:
			if (parse_number(optarg, 0, 4294967295.0, &v) < 0 || v != floor(v))
				return cli_usage_error(cli, "--seed must be a whole number from 0 to "
						       "4294967295, not '%s'", optarg);
			o.seed = (uint64_t)v;
			break;
		case OPT_EXPONENTIAL:
			o.exponential = true;
			break;
		default:
			code = cli_common_option(cli, opt, optarg);
			if (code != CLI_CONTINUE)
				return code;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	code = load_topology(cli, true, &t);
	if (code != 0)
		return code;
	o.target = cli->plan->targets.availability;
	if (o.target >= 1)
		o.target = 0;
	progress.on = isatty(STDERR_FILENO) && !cli->quiet;
	if (progress.on) {
		o.progress = sim_progress;
		o.userdata = &progress;
	}
	r = model_evaluate(t, &m);
	if (r < 0) {
		log_error_errno(r, "cannot solve the availability model");
		return EXIT_FAIL;
	}
	r = simulate_run(t, &o, &res);
	if (r == -BCDR_ERR_TOO_BIG) {
		log_error("%.0f years of this plan are more than %.0g replica failures: "
			  "pass a smaller --years", o.years, SIM_MAX_EVENTS);
		return EXIT_FAIL;
	}
	if (r < 0) {
		log_error_errno(r, "cannot simulate the plan");
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < m->n_components && !o.exponential; i++)
		if (m->components[i].required && (m->components[i].c->mtbf_dist != DIST_EXPONENTIAL ||
						  m->components[i].c->mttr_dist != DIST_EXPONENTIAL))
			comparable = false;
	if (cli->json)
		print_simulate_json(t, res, m->service.availability, comparable, o.target);
	else
		print_simulate_text(t, res, m->service.availability, comparable, o.target);
	return EXIT_OK;
}

static const struct command cmd_model_simulate = {
	"simulate", "Monte Carlo of the plan: downtime spread, chance of missing the target",
	"model simulate [-c PLAN] [--years N] [--seed S] [--exponential] [--json]\n\n"
	"Simulates the plan's components failing and being repaired, replica by replica,\n"
	"for N years (default 10000) with exponential, Weibull or lognormal lifetimes and\n"
	"repairs (mtbf_dist/mttr_dist in the plan). Reports the availability with a 95%\n"
	"interval (batch means over years), the distribution of yearly downtime, and the\n"
	"chance of missing targets.availability in a 30-day month and in a year. With\n"
	"exponential inputs the exact model of 'bcdr model availability' falls inside the\n"
	"interval (19 runs in 20).\n\n"
	"options:\n"
	"      --years N      years to simulate, 2 to 1000000 (default 10000)\n"
	"      --seed S       random seed (default 1: the same plan gives the same report)\n"
	"      --exponential  ignore the plan's distributions: the exact model's inputs\n"
	CLI_COMMON_HELP,
	run_simulate,
};

/* graph */

static void dot_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

static void print_graph_dot(const struct depgraph_input *in, const struct depgraph_report *r)
{
	printf("// bcdr model graph: red = single point of failure, bold = its loss cuts the\n"
	       "// service off from others, dashed = not needed by the service\n");
	printf("digraph ");
	dot_quoted(stdout, in->names[in->service]);
	printf(" {\n  rankdir=TB;\n  node [shape=box, style=rounded, fontname=\"sans\"];\n");
	for (size_t v = 0; v < in->n; v++) {
		const struct depgraph_node *nd = &r->node[v];

		printf("  n%zu [label=", v);
		if (in->replicas && v != in->service) {
			_cleanup_free_ char *label = NULL;

			if (asprintf(&label, "%s\n%d of %d", in->names[v], in->needs[v],
				     in->replicas[v]) < 0)
				label = NULL;
			dot_quoted(stdout, label ? label : in->names[v]);
		} else {
			dot_quoted(stdout, in->names[v]);
		}
		if (v == in->service)
			printf(", shape=doubleoctagon");
		else if (!nd->reachable)
			printf(", style=\"rounded,dashed\", color=gray50");
		else if (nd->spof)
			printf(", style=\"rounded,filled\", fillcolor=\"#ffd0d0\", color=red");
		if (nd->reachable && nd->dominated > 0)
			printf(", penwidth=3");
		printf("];\n");
	}
	for (size_t i = 0; i < in->n_edges; i++)
		printf("  n%u -> n%u;\n", in->edges[2 * i], in->edges[2 * i + 1]);
	printf("}\n");
}

static json_t *curve_json(const double *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_real(v[i]));
	return a;
}

static json_t *degrees_json(const struct degree_count *d, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *pair = json_array();

		json_array_append_new(pair, json_integer(d[i].degree));
		json_array_append_new(pair, json_integer((json_int_t)d[i].nodes));
		json_array_append_new(a, pair);
	}
	return a;
}

static void print_graph_json(const struct depgraph_input *in, const struct depgraph_report *r,
			     const char *cycle)
{
	_cleanup_json_ json_t *root = json_object();
	json_t *deg = json_object(), *spofs = json_array(), *arts = json_array();
	json_t *casc = json_array(), *btw = json_array(), *rob = json_object(), *nodes = json_array();
	size_t R = r->requirements;

	json_set_str(root, "service", in->names[in->service]);
	json_set_int(root, "nodes", (long long)r->nodes);
	json_set_int(root, "edges", (long long)r->edges);
	json_set_int(root, "requirements", (long long)R);
	json_set_bool(root, "acyclic", r->acyclic);
	json_set_str(root, "cycle", cycle);
	json_set_int(root, "loops_dropped", (long long)r->loops_dropped);
	json_set_int(root, "duplicates_dropped", (long long)r->duplicates_dropped);
	json_set_real(deg, "mean", r->mean_degree);
	json_set_int(deg, "max_in", r->max_in);
	json_set_int(deg, "max_out", r->max_out);
	json_object_set_new(deg, "out", degrees_json(r->out_degrees, r->n_out_degrees));
	json_object_set_new(deg, "in", degrees_json(r->in_degrees, r->n_in_degrees));
	if (r->power_law) {
		json_t *pl = json_object();

		json_set_real(pl, "alpha", r->power_law_alpha);
		json_set_real(pl, "xmin", r->power_law_xmin);
		json_object_set_new(deg, "power_law", pl);
	} else {
		json_object_set_new(deg, "power_law", json_null());
	}
	json_object_set_new(root, "degree", deg);
	for (size_t i = 0; i < R; i++) {
		size_t v = r->by_impact[i];
		json_t *c = json_object();

		if (r->node[v].spof)
			json_array_append_new(spofs, json_string(in->names[v]));
		if (r->node[v].articulation)
			json_array_append_new(arts, json_string(in->names[v]));
		json_set_str(c, "name", in->names[v]);
		json_set_int(c, "requirements_lost", (long long)r->node[v].dominated + 1);
		json_set_real(c, "share_left", (double)(R - 1 - r->node[v].dominated) / (double)R);
		json_array_append_new(casc, c);
	}
	json_object_set_new(root, "spofs", spofs);
	json_object_set_new(root, "articulation_points", arts);
	json_object_set_new(root, "cascades", casc);
	for (size_t i = 0; i < R; i++) {
		json_t *b = json_object();

		json_set_str(b, "name", in->names[r->by_betweenness[i]]);
		json_set_real(b, "betweenness", r->node[r->by_betweenness[i]].betweenness);
		json_array_append_new(btw, b);
	}
	json_object_set_new(root, "betweenness", btw);
	json_set_bool(root, "betweenness_exact", r->betweenness_exact);
	json_object_set_new(rob, "fraction_removed", curve_json(r->fraction, r->steps));
	json_object_set_new(rob, "random_mean", curve_json(r->random_mean, r->steps));
	json_object_set_new(rob, "random_sd", curve_json(r->random_sd, r->steps));
	json_object_set_new(rob, "targeted", curve_json(r->targeted, r->steps));
	json_set_int(rob, "trials", r->trials);
	json_object_set_new(root, "robustness", rob);
	for (size_t v = 0; v < r->nodes; v++) {
		const struct depgraph_node *nd = &r->node[v];
		json_t *j = json_object();

		json_set_str(j, "name", in->names[v]);
		json_set_bool(j, "requirement", nd->reachable);
		json_set_str(j, "idom", nd->idom >= 0 ? in->names[nd->idom] : NULL);
		json_set_int(j, "dominated", (long long)nd->dominated);
		json_set_bool(j, "articulation_point", nd->articulation);
		json_set_bool(j, "spof", nd->spof);
		if (nd->spare >= 0)
			json_set_int(j, "spare_replicas", nd->spare);
		json_set_real(j, "betweenness", nd->betweenness);
		json_set_int(j, "in_degree", nd->in_degree);
		json_set_int(j, "out_degree", nd->out_degree);
		json_array_append_new(nodes, j);
	}
	json_object_set_new(root, "node_detail", nodes);
	json_set_real(root, "elapsed_s", r->elapsed_s);
	{
		json_t *tj = json_object();

		json_set_real(tj, "build_s", r->build_s);
		json_set_real(tj, "dominators_s", r->dominators_s);
		json_set_real(tj, "centrality_s", r->centrality_s);
		json_set_real(tj, "robustness_s", r->robustness_s);
		json_object_set_new(root, "timings", tj);
	}
	json_print(stdout, root);
}

static void print_graph_text(const struct depgraph_input *in, const struct depgraph_report *r,
			     const char *cycle, size_t top)
{
	size_t R = r->requirements, shown = 0;

	printf("dependency graph of %s: %zu nodes, %zu edges, %zu requirements reachable from "
	       "the service (%.2fs)\n", in->names[in->service], r->nodes, r->edges, R,
	       r->elapsed_s);
	if (cycle)
		printf("  cycle: %s (the availability model refuses it)\n", cycle);
	else if (!r->acyclic)
		printf("  the graph has cycles\n");
	if (r->loops_dropped || r->duplicates_dropped)
		printf("  ignored %zu self loops and %zu repeated edges\n", r->loops_dropped,
		       r->duplicates_dropped);
	printf("  degree: mean %.2f, max out %" PRId64 ", max in %" PRId64, r->mean_degree,
	       r->max_out, r->max_in);
	if (r->power_law)
		printf("; out-degrees fit a power law, alpha %.2f from %.0f", r->power_law_alpha,
		       r->power_law_xmin);
	printf("\n  out-degree distribution (degree:nodes):");
	for (size_t i = 0; i < r->n_out_degrees && i < 12; i++)
		printf(" %" PRId64 ":%zu", r->out_degrees[i].degree, r->out_degrees[i].nodes);
	printf("%s\n", r->n_out_degrees > 12 ? " ..." : "");

	printf("\nsingle points of failure (%s):\n", in->replicas ?
	       "one failure takes the service down" : "their loss cuts the service off from others");
	for (size_t i = 0; i < R; i++) {
		size_t v = r->by_impact[i];

		if (!r->node[v].spof)
			continue;
		if (shown++ >= top) {
			printf("  ...\n");
			break;
		}
		printf("  %-24s cuts off %zu of %zu requirements%s\n", in->names[v],
		       r->node[v].dominated + 1, R, r->node[v].articulation ? ", articulation point" : "");
	}
	if (!shown)
		printf("  none\n");
	printf("\ncascades: requirements left when one node is lost (worst first):\n");
	for (size_t i = 0; i < R && i < top; i++) {
		size_t v = r->by_impact[i];
		char spare[32] = "";

		if (r->node[v].spare > 0)
			snprintf(spare, sizeof(spare), " (%d spare)", r->node[v].spare);
		printf("  %-24s %6.1f%% left%s\n", in->names[v],
		       100.0 * (double)(R - 1 - r->node[v].dominated) / (double)R, spare);
	}
	printf("\nbetweenness (paths between others through it)%s:\n",
	       r->betweenness_exact ? "" : ", paths of bounded length");
	for (size_t i = 0; i < R && i < top; i++)
		printf("  %2zu. %-24s %.6g\n", i + 1, in->names[r->by_betweenness[i]],
		       r->node[r->by_betweenness[i]].betweenness);
	printf("\nrobustness: requirements still reachable after removing a share of them\n");
	printf("  %-9s %-22s %s\n", "removed", "random (mean +/- sd)", "targeted (betweenness)");
	for (size_t i = 0; i < r->steps; i++)
		printf("  %5.0f%%    %6.1f%% +/- %-10.1f %6.1f%%\n", 100 * r->fraction[i],
		       100 * r->random_mean[i], 100 * r->random_sd[i], 100 * r->targeted[i]);
}

static int run_graph(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "dot", no_argument, NULL, OPT_DOT },
		{ "edges", required_argument, NULL, OPT_EDGES },
		{ "service", required_argument, NULL, OPT_SERVICE },
		{ "trials", required_argument, NULL, OPT_TRIALS },
		{ "seed", required_argument, NULL, OPT_SEED },
		CLI_COMMON_LONG
	};
	struct depgraph_options o = { .trials = 20, .steps = 20, .seed = 1,
				      .exact_betweenness_max = 0, .betweenness_cutoff = -1 };
	struct depgraph_plan_input pin = { 0 };
	struct depgraph_input in;
	_cleanup_(edge_list_freep) struct edge_list *edges = NULL;
	_cleanup_(depgraph_report_freep) struct depgraph_report *rep = NULL;
	const char *edges_path = NULL, *service = NULL, *cycle = NULL;
	bool dot = false;
	double v;
	int opt, code, r;

	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
		switch (opt) {
		case OPT_DOT:
			dot = true;
			break;
		case OPT_EDGES:
			edges_path = optarg;
			break;
		case OPT_SERVICE:
			service = optarg;
			break;
		case OPT_TRIALS:
			if (parse_number(optarg, 1, 10000, &v) < 0 || v != floor(v))
				return cli_usage_error(cli, "--trials must be a whole number from 1 "
						       "to 10000, not '%s'", optarg);
			o.trials = (unsigned)v;
			break;
		case OPT_SEED:
			if (parse_number(optarg, 0, 4294967295.0, &v) < 0 || v != floor(v))
				return cli_usage_error(cli, "--seed must be a whole number from 0 to "
						       "4294967295, not '%s'", optarg);
			o.seed = (uint64_t)v;
			break;
		default:
			code = cli_common_option(cli, opt, optarg);
			if (code != CLI_CONTINUE)
				return code;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (dot && cli->json)
		return cli_usage_error(cli, "--dot and --json are two outputs: choose one");
	if (edges_path) {
		_cleanup_free_ char *error = NULL;
		int64_t root = 0;

		r = edges_load(edges_path, &edges, &error);
		if (r < 0) {
			log_error("%s", error ? error : err_str(r));
			return EXIT_FAIL;
		}
		if (service && (root = edge_list_find(edges, service)) < 0) {
			log_error("--service '%s' is not a node of '%s'", service, edges_path);
			return EXIT_FAIL;
		}
		in = (struct depgraph_input){
			.names = (const char *const *)edges->names, .n = edges->n_names,
			.edges = edges->edges, .n_edges = edges->n_edges, .service = (size_t)root,
		};
	} else {
		const struct topology_plan *t;

		if (service)
			return cli_usage_error(cli, "--service goes with --edges (a plan names its "
					       "service)");
		code = load_topology(cli, false, &t);
		if (code != 0)
			return code;
		r = depgraph_input_from_plan(t, &pin);
		if (r < 0) {
			log_error_errno(r, "cannot build the graph");
			return EXIT_FAIL;
		}
		in = pin.in;
		cycle = t->cycle;
	}
	r = depgraph_analyse(&in, &o, &rep);
	if (r < 0) {
		depgraph_plan_input_release(&pin);
		log_error_errno(r, "cannot analyse the graph");
		return EXIT_FAIL;
	}
	if (dot)
		print_graph_dot(&in, rep);
	else if (cli->json)
		print_graph_json(&in, rep, cycle);
	else
		print_graph_text(&in, rep, cycle, 10);
	depgraph_plan_input_release(&pin);
	return EXIT_OK;
}

static const struct command cmd_model_graph = {
	"graph", "dependency graph: single points of failure, cascades, robustness",
	"model graph [-c PLAN] [--edges FILE.csv [--service NODE]] [--dot | --json]\n"
	"            [--trials N] [--seed S]\n\n"
	"Analyses the dependency graph of the plan's topology (the service needs its\n"
	"requires, each component its depends_on), or of any edge list: nodes, edges,\n"
	"degree distribution, single points of failure, dominators from the service\n"
	"(what each node's loss cuts off), articulation points, betweenness, and\n"
	"cascades: the share of the service's requirements still reachable when one node\n"
	"is lost, and as a growing share is removed at random or most-between first.\n"
	"Cycles are shown, not refused. igraph does the graph work.\n\n"
	"options:\n"
	"      --edges FILE   a CSV edge list, one 'from,to' a line (from needs to)\n"
	"      --service NODE the root in the edge list (default: its first node)\n"
	"      --dot          Graphviz output, single points of failure in red\n"
	"      --trials N     random-failure runs averaged (default 20)\n"
	"      --seed S       random seed (default 1)\n"
	CLI_COMMON_HELP,
	run_graph,
};

/* measured */

static json_t *real_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *service_figures_json(const struct series_result *s)
{
	json_t *j = json_object();

	json_set_real(j, "availability", s->availability);
	json_set_real(j, "downtime_per_year_s", s->unavailability * SECONDS_PER_YEAR);
	json_set_real(j, "mtbf_s", s->mtbf_s);
	json_set_real(j, "mttr_s", s->mttr_s);
	return j;
}

static void print_measured_json(const char *db, const struct topology_plan *t,
				const struct measured_report *mr, const struct model_report *planned,
				const struct model_report *measured, double target)
{
	_cleanup_json_ json_t *root = json_object();
	json_t *comps = json_object(), *unknown = json_array(), *service = json_object();
	json_t *observed = json_object();
	char from[64], to[64];

	json_set_str(root, "state_db", db);
	json_set_str(root, "from", time_format_iso(mr->from, from, sizeof(from)));
	json_set_str(root, "to", time_format_iso(mr->to, to, sizeof(to)));
	json_set_real(root, "observed_s", mr->observed_s);
	for (size_t i = 0; i < mr->n_components; i++) {
		const struct measured_component *mc = &mr->components[i];
		json_t *j, *p;

		if (!mc->in_topology) {
			json_array_append_new(unknown, json_string(mc->name));
			continue;
		}
		j = json_object();
		p = json_object();
		json_set_int(j, "incidents", (long long)mc->incidents);
		json_set_int(j, "outages", (long long)mc->outages);
		json_set_bool(j, "open", mc->open);
		json_set_real(j, "downtime_s", mc->downtime_s);
		json_set_real(j, "availability", mc->availability);
		json_object_set_new(j, "mtbf_s", real_or_null(mc->mtbf_s));
		json_object_set_new(j, "mttr_s", real_or_null(mc->mttr_s));
		json_object_set_new(j, "mtbf_lower_bound_s", real_or_null(mc->mtbf_lower_s));
		json_set_bool(j, "required", planned->components[i].required);
		json_set_str(j, "model_input", mc->outages ? "measured" : "planned");
		json_set_real(p, "availability", planned->components[i].result.availability);
		json_set_real(p, "mtbf_s", planned->components[i].result.mtbf_s);
		json_set_real(p, "mttr_s", planned->components[i].result.mttr_s);
		json_object_set_new(j, "planned", p);
		json_object_set_new(comps, mc->name, j);
	}
	json_object_set_new(root, "components", comps);
	json_object_set_new(root, "unknown_components", unknown);
	json_set_str(service, "name", t->service);
	json_set_real(observed, "availability", mr->service_availability);
	json_set_int(observed, "outages", (long long)mr->service_outages);
	json_set_real(observed, "downtime_s", mr->service_downtime_s);
	json_object_set_new(service, "observed", observed);
	json_object_set_new(service, "modelled_measured", service_figures_json(&measured->service));
	json_object_set_new(service, "modelled_planned", service_figures_json(&planned->service));
	json_object_set_new(root, "service", service);
	if (target > 0) {
		json_t *tj = json_object();

		json_set_real(tj, "availability", target);
		json_set_bool(tj, "observed_met", mr->service_availability >= target);
		json_set_bool(tj, "modelled_measured_met", measured->service.availability >= target);
		json_set_real(tj, "budget_left_s", (1 - target) * mr->observed_s -
			      mr->service_downtime_s);
		json_object_set_new(root, "target", tj);
	} else {
		json_object_set_new(root, "target", json_null());
	}
	json_print(stdout, root);
}

static void print_measured_text(const char *db, const struct topology_plan *t,
				const struct measured_report *mr, const struct model_report *planned,
				const struct model_report *measured, double target)
{
	char a[64], b[64], d1[64], d2[64], d3[64], d4[64], from[64];
	bool unknown = false;

	printf("incidents in '%s' since %s (%s observed)\n\n", db,
	       time_format_iso(mr->from, from, sizeof(from)),
	       fmt_seconds(mr->observed_s, d1, sizeof(d1)));
	printf("%-16s %-8s %-11s %-14s %-14s %-22s %s\n", "component", "outages", "downtime",
	       "availability", "planned", "mtbf measured/planned", "mttr measured/planned");
	for (size_t i = 0; i < mr->n_components; i++) {
		const struct measured_component *mc = &mr->components[i];
		const struct unit_result *p;
		char mtbf[64], mttr[64];

		if (!mc->in_topology) {
			unknown = true;
			continue;
		}
		p = &planned->components[i].result;
		if (mc->outages) {
			snprintf(mtbf, sizeof(mtbf), "%s / %s", fmt_seconds(mc->mtbf_s, d1, sizeof(d1)),
				 fmt_seconds(p->mtbf_s, d2, sizeof(d2)));
			snprintf(mttr, sizeof(mttr), "%s / %s", fmt_seconds(mc->mttr_s, d3, sizeof(d3)),
				 fmt_seconds(p->mttr_s, d4, sizeof(d4)));
		} else {
			snprintf(mtbf, sizeof(mtbf), ">= %s / %s",
				 fmt_seconds(mc->mtbf_lower_s, d1, sizeof(d1)),
				 fmt_seconds(p->mtbf_s, d2, sizeof(d2)));
			snprintf(mttr, sizeof(mttr), "- / %s", fmt_seconds(p->mttr_s, d4, sizeof(d4)));
		}
		printf("%-16s %-8" PRIu64 " %-11s %-14s %-14s %-22s %s%s\n", mc->name, mc->outages,
		       fmt_seconds(mc->downtime_s, d3, sizeof(d3)),
		       fmt_availability(mc->availability, 1 - mc->availability, a, sizeof(a)),
		       fmt_availability(p->availability, p->unavailability, b, sizeof(b)), mtbf, mttr,
		       mc->open ? " (down now)" : "");
	}
	printf("\nservice %s:\n", t->service);
	printf("  observed                 %-14s %" PRIu64 " outages, %s down\n",
	       fmt_availability(mr->service_availability, 1 - mr->service_availability, a,
				sizeof(a)),
	       mr->service_outages, fmt_seconds(mr->service_downtime_s, d1, sizeof(d1)));
	printf("  model, measured inputs   %-14s %s down per year\n",
	       fmt_availability(measured->service.availability, measured->service.unavailability,
				a, sizeof(a)),
	       fmt_seconds(measured->service.unavailability * SECONDS_PER_YEAR, d1, sizeof(d1)));
	printf("  model, planned inputs    %-14s %s down per year\n",
	       fmt_availability(planned->service.availability, planned->service.unavailability, a,
				sizeof(a)),
	       fmt_seconds(planned->service.unavailability * SECONDS_PER_YEAR, d1, sizeof(d1)));
	if (target > 0) {
		double left = (1 - target) * mr->observed_s - mr->service_downtime_s;

		printf("  target %s: %s so far (%s %s for the time observed)\n",
		       fmt_availability(target, 1 - target, a, sizeof(a)),
		       mr->service_availability >= target ? "met" : "MISSED",
		       fmt_seconds(fabs(left), d1, sizeof(d1)),
		       left >= 0 ? "of error budget left" : "over the error budget");
	}
	if (unknown) {
		printf("\nincidents of components not in the topology:");
		for (size_t i = 0; i < mr->n_components; i++)
			if (!mr->components[i].in_topology)
				printf(" %s", mr->components[i].name);
		printf("\n");
	}
}

static int run_measured(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "state-db", required_argument, NULL, OPT_STATE_DB },
		{ "since", required_argument, NULL, OPT_SINCE },
		CLI_COMMON_LONG
	};
	const struct topology_plan *t;
	_cleanup_(measured_report_freep) struct measured_report *mr = NULL;
	_cleanup_(model_report_freep) struct model_report *planned = NULL, *measured = NULL;
	_cleanup_free_ struct unit_params *params = NULL;
	_cleanup_free_ char *db_alloc = NULL, *error = NULL;
	const char *db = NULL;
	usec_t since = 0, now = now_realtime(), ago;
	int opt, code, r;

	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
		switch (opt) {
		case OPT_STATE_DB:
			db = optarg;
			break;
		case OPT_SINCE:
			if (duration_parse(optarg, &ago) < 0 || ago == 0 || ago >= now)
				return cli_usage_error(cli, "--since takes a duration such as 30d or "
						       "12h, not '%s'", optarg);
			since = now - ago;
			break;
		default:
			code = cli_common_option(cli, opt, optarg);
			if (code != CLI_CONTINUE)
				return code;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	code = load_topology(cli, true, &t);
	if (code != 0)
		return code;
	if (!db) {
		if (cli->plan->agent && cli->plan->agent->state_dir &&
		    asprintf(&db_alloc, "%s/state.db", cli->plan->agent->state_dir) < 0)
			db_alloc = NULL;
		if (!db_alloc) {
			log_error("'%s' has no agent: section to say where the agent keeps its state; "
				  "pass --state-db FILE", cli->plan->path);
			return EXIT_FAIL;
		}
		db = db_alloc;
	}
	r = measured_read(db, since, now, t, &mr, &error);
	if (r < 0) {
		log_error("%s", error ? error : err_str(r));
		return EXIT_FAIL;
	}
	params = calloc(t->n_components + 1, sizeof(*params));
	if (!params) {
		log_error("out of memory");
		return EXIT_FAIL;
	}
	measured_params(t, mr, params);
	r = model_evaluate(t, &planned);
	if (r >= 0)
		r = model_evaluate_with(t, params, &measured);
	if (r < 0) {
		log_error_errno(r, "cannot solve the availability model");
		return EXIT_FAIL;
	}
	if (cli->json)
		print_measured_json(db, t, mr, planned, measured, cli->plan->targets.availability);
	else
		print_measured_text(db, t, mr, planned, measured, cli->plan->targets.availability);
	return EXIT_OK;
}

static const struct command cmd_model_measured = {
	"measured", "MTBF and MTTR the agent observed, and the model recomputed with them",
	"model measured [-c PLAN] [--state-db FILE] [--since DURATION] [--json]\n\n"
	"Reads the agent's incident history (<agent.state_dir>/state.db, read-only):\n"
	"per component (checks carry a component: label), the outages, downtime,\n"
	"availability, MTBF and MTTR observed, beside the planned ones; and the service:\n"
	"observed (the union of its components' outages), the model with the measured\n"
	"figures, and the model with the planned ones.\n\n"
	"options:\n"
	"      --state-db FILE   the agent's state database (default: from the plan)\n"
	"      --since DURATION  only the last DURATION (default: all the agent recorded)\n"
	CLI_COMMON_HELP,
	run_measured,
};

static const struct command *const model_commands[] = {
	&cmd_model_availability,
	&cmd_model_simulate,
	&cmd_model_graph,
	&cmd_model_measured,
	NULL,
};

static int run_model(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, "model", model_commands, argc - 1, argv + 1);
}

const struct command cmd_model = {
	"model", "availability model of the plan",
	"model COMMAND [OPTIONS]\n\n"
	"commands: availability, simulate, graph, measured\n",
	run_model,
};
