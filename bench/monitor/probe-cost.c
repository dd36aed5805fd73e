/* CPU cost of each probe kind, in steady state: loads a plan, runs every
 * check once to warm up (rates, connections), then CYCLES cycles, and
 * prints CPU time (user + system, from getrusage) per probe and per cycle.
 * Usage: probe-cost PLAN CYCLES */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "monitor/monitor.h"
#include "plan/plan.h"

static double cpu_seconds(void)
{
	struct rusage u;

	getrusage(RUSAGE_SELF, &u);
	return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
	       (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
	double per_kind[PROBE_KIND_MAX] = { 0 }, start;
	unsigned runs[PROBE_KIND_MAX] = { 0 }, not_ok = 0;
	struct probe_state **ps;
	struct probe_result res;
	struct plan *plan;
	char *error = NULL;
	size_t n;
	int cycles;

	if (argc != 3 || (cycles = atoi(argv[2])) < 1) {
		fprintf(stderr, "usage: probe-cost PLAN CYCLES\n");
		return 2;
	}
	if (plan_load(argv[1], &plan, &error) < 0 || !plan->checks) {
		fprintf(stderr, "probe-cost: %s\n", error ? error : "no checks");
		return 1;
	}
	monitor_global_init();
	n = plan->checks->n_checks;
	ps = calloc(n, sizeof(*ps));
	for (size_t i = 0; i < n; i++)
		probe_state_new(&plan->checks->checks[i], &ps[i]);
	for (size_t i = 0; i < n; i++)
		probe_run(&plan->checks->checks[i], ps[i], NULL, &res);
	start = cpu_seconds();
	for (int c = 0; c < cycles; c++)
		for (size_t i = 0; i < n; i++) {
			const struct check_def *def = &plan->checks->checks[i];
			double t = cpu_seconds();

			probe_run(def, ps[i], NULL, &res);
			per_kind[def->kind] += cpu_seconds() - t;
			runs[def->kind]++;
			if (res.status != CHECK_OK && c == 0 && not_ok++ < 3)
				fprintf(stderr, "probe-cost: %s is %s: %s\n", def->name,
					check_status_name(res.status), res.message);
		}
	printf("%zu checks: %.2f ms of CPU per cycle (%.2f%% of a core at a 1 s interval)\n", n,
	       (cpu_seconds() - start) / cycles * 1e3, (cpu_seconds() - start) / cycles * 100);
	for (int k = 0; k < PROBE_KIND_MAX; k++)
		if (runs[k])
			printf("  %-8s %7.1f us per probe\n", probe_kind_name(k),
			       per_kind[k] / runs[k] * 1e6);
	for (size_t i = 0; i < n; i++)
		probe_state_free(ps[i]);
	free(ps);
	plan_free(plan);
	return 0;
}
