/* bcdr model simulate: Monte Carlo of the plan, the spread of downtime with
 * any lifetime distribution. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/model-cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "model/availability.h"
#include "model/simulate.h"
#include "plan/plan.h"


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
	       model_cli_fmt_availability(r->availability, 1 - r->availability, a, sizeof(a)),
	       model_cli_fmt_availability(r->ci_low, 1 - r->ci_low, b, sizeof(b)),
	       model_cli_fmt_availability(r->ci_high, 1 - r->ci_high, c, sizeof(c)));
	printf("  exact model %s: %s%s\n",
	       model_cli_fmt_availability(exact, 1 - exact, a, sizeof(a)),
	       exact >= r->ci_low && exact <= r->ci_high ? "inside the interval"
							 : "outside the interval",
	       comparable ? "" : " (it assumes exponential lifetimes and repairs)");
	printf("  mtbf %s, mttr %s (%" PRIu64 " outages)\n",
	       model_cli_fmt_seconds(r->mtbf_s, d1, sizeof(d1)),
	       model_cli_fmt_seconds(r->mttr_s, d2, sizeof(d2)), r->outages);
	printf("  yearly downtime: mean %s, median %s, p90 %s, p99 %s, worst %s\n",
	       model_cli_fmt_seconds(r->downtime_mean_s, d1, sizeof(d1)),
	       model_cli_fmt_seconds(r->downtime_p50_s, d2, sizeof(d2)),
	       model_cli_fmt_seconds(r->downtime_p90_s, d3, sizeof(d3)),
	       model_cli_fmt_seconds(r->downtime_p99_s, d4, sizeof(d4)),
	       model_cli_fmt_seconds(r->downtime_max_s, a, sizeof(a)));
	if (target > 0) {
		printf("  target %s missed in %.3g%% of 30-day months (95%%: %.3g%% to %.3g%%)\n",
		       model_cli_fmt_availability(target, 1 - target, a, sizeof(a)),
		       100 * r->p_miss_month, 100 * r->p_miss_month_low,
		       100 * r->p_miss_month_high);
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
		       model_cli_fmt_seconds((double)i * width, d1, sizeof(d1)),
		       model_cli_fmt_seconds((double)(i + 1) * width, d2, sizeof(d2)), counts[i],
		       bar, "########################################");
	}
	printf("\n%-16s %-15s %-22s %-10s %s\n", "component", "availability", "95% interval",
	       "failures", "outages");
	for (size_t i = 0; i < r->n_components; i++) {
		const struct sim_component *sc = &r->components[i];
		char iv[64];

		snprintf(iv, sizeof(iv), "+/- %.3g%%", 100 * sc->ci_half);
		printf("%-16s %-15s %-22s %-10" PRIu64 " %" PRIu64 "\n", sc->name,
		       model_cli_fmt_availability(sc->availability, 1 - sc->availability, a,
						  sizeof(a)),
		       iv, sc->failures, sc->outages);
	}
}

static int run_simulate(struct cli *cli, int argc, char **argv)
{
	struct sim_options o = { .years = 10000, .seed = 1 };
	struct progress progress = { 0 };
	const struct topology_plan *t;
	_cleanup_(sim_result_freep) struct sim_result *res = NULL;
	_cleanup_(model_report_freep) struct model_report *m = NULL;
	bool comparable = true;
	int code, r;

	int64_t years = (int64_t)o.years, seed = (int64_t)o.seed;
	const struct cli_option options[] = {
		{ CLI_COLUMN(21) },
		{ CLI_INT("years", 0, &years, "N", 2, (int64_t)SIM_MAX_YEARS,
			  "years to simulate, 2 to 1000000 (default 10000)") },
		{ CLI_INT("seed", 0, &seed, "S", 0, UINT32_MAX,
			  "random seed (default 1: the same plan gives the same report)") },
		{ CLI_FLAG("exponential", 0, &o.exponential,
			   "ignore the plan's distributions: the exact model's inputs") },
		{}
	};

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_NO_OPERANDS);
	if (code != CLI_CONTINUE)
		return code;
	o.years = (double)years;
	o.seed = (uint64_t)seed;
	code = model_cli_load_topology(cli, true, &t);
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
		if (m->components[i].required &&
		    (m->components[i].c->mtbf_dist != DIST_EXPONENTIAL ||
		     m->components[i].c->mttr_dist != DIST_EXPONENTIAL))
			comparable = false;
	if (cli->json)
		print_simulate_json(t, res, m->service.availability, comparable, o.target);
	else
		print_simulate_text(t, res, m->service.availability, comparable, o.target);
	return EXIT_OK;
}

const struct command cmd_model_simulate = {
	"simulate", "Monte Carlo of the plan: downtime spread, chance of missing the target",
	"model simulate [-c PLAN] [--years N] [--seed S] [--exponential] [--json]\n\n"
	"Simulates the plan's components failing and being repaired, replica by replica,\n"
	"for N years (default 10000) with exponential, Weibull or lognormal lifetimes and\n"
	"repairs (mtbf_dist/mttr_dist in the plan). Reports the availability with a 95%\n"
	"interval (batch means over years), the distribution of yearly downtime, and the\n"
	"chance of missing targets.availability in a 30-day month and in a year. With\n"
	"exponential inputs the exact model of 'bcdr model availability' falls inside the\n"
	"interval (19 runs in 20).\n",
	run_simulate,
};
