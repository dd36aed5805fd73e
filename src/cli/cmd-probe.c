/* bcdr probe: run the plan's checks once, here, without the agent. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/backup.h"
#include "cli/cli.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "monitor/monitor.h"
#include "plan/plan.h"

#define PROBE_THREADS 8

struct job {
	const struct check_def *def;
	struct probe_result result;
	int r;
};

struct pool {
	struct job *jobs;
	size_t n;
	atomic_size_t next;
	struct probe_env env;
};

static void *worker(void *arg)
{
	struct pool *pool = arg;

	for (;;) {
		size_t i = atomic_fetch_add(&pool->next, 1);

		if (i >= pool->n)
			return NULL;
		pool->jobs[i].r = probe_run(pool->jobs[i].def, NULL, &pool->env,
					    &pool->jobs[i].result);
	}
}

/* "93.1%", "1.2 MiB", "3.2ms", "42 days", "0.52". */
static const char *format_value(const struct probe_result *res, char *out, size_t size)
{
	if (!res->has_value)
		return "-";
	if (strcmp(res->unit, "bytes") == 0)
		return size_format((uint64_t)(res->value < 0 ? 0 : res->value), out, size);
	if (strcmp(res->unit, "bytes/s") == 0) {
		char s[32];

		snprintf(out, size, "%s/s", size_format((uint64_t)res->value, s, sizeof(s)));
	} else if (strcmp(res->unit, "s") == 0) {
		if (res->value < 1)
			snprintf(out, size, "%.1fms", res->value * 1000);
		else
			duration_format((usec_t)(res->value * (double)USEC_PER_SEC), out, size);
	} else if (strcmp(res->unit, "%") == 0) {
		snprintf(out, size, "%.1f%%", res->value);
	} else if (strcmp(res->unit, "days") == 0) {
		snprintf(out, size, "%.1f days", res->value);
	} else {
		snprintf(out, size, "%g", res->value);
	}
	return out;
}

static json_t *result_json(const struct check_def *def, const struct probe_result *res)
{
	json_t *j = json_object(), *labels = json_object();

	if (!j || !labels) {
		json_decref(j);
		json_decref(labels);
		return NULL;
	}
	json_set_str(j, "name", def->name);
	json_set_str(j, "kind", probe_kind_name(def->kind));
	json_set_str(j, "status", check_status_name(res->status));
	if (res->has_value)
		json_set_real(j, "value", res->value);
	else
		json_object_set_new(j, "value", json_null());
	json_set_str(j, "unit", res->unit);
	json_set_str(j, "message", res->message);
	json_set_real(j, "duration_s", (double)res->duration / (double)USEC_PER_SEC);
	json_set_bool(j, "changed", res->changed);
	for (size_t i = 0; i < def->n_labels; i++)
		json_set_str(labels, def->labels[i].key, def->labels[i].value);
	json_object_set_new(j, "labels", labels);
	return j;
}

static int run_probe(struct cli *cli, int argc, char **argv)
{
	const struct monitor_plan *mp;
	_cleanup_free_ struct job *jobs = NULL;
	pthread_t threads[PROBE_THREADS];
	struct pool pool = { 0 };
	size_t n = 0, n_threads, not_ok = 0;
	int code;

	char **names;
	size_t n_names;

	/* Options may come before or after the names. */
	code = cli_parse(cli, argc, argv, NULL, CLI_PARSE_PERMUTE);
	if (code != CLI_CONTINUE)
		return code;
	names = argv + optind;
	n_names = (size_t)(argc - optind);
	code = cli_load_plan(cli, true);
	if (code != 0)
		return code;
	mp = cli->plan->checks;
	for (size_t i = 0; i < n_names; i++)
		if (!monitor_plan_find(mp, names[i])) {
			log_error("no check named '%s' in '%s' (names are case-sensitive)", names[i],
				  cli->plan->path);
			return EXIT_FAIL;
		}
	if (!mp || !mp->n_checks) {
		log_error("the plan '%s' has no checks: section", cli->plan->path);
		return EXIT_FAIL;
	}
	jobs = calloc(mp->n_checks, sizeof(*jobs));
	if (!jobs) {
		log_error_errno(-ENOMEM, "cannot run the checks");
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < mp->n_checks; i++) {
		const struct check_def *def = &mp->checks[i];
		bool wanted = n_names ? false : def->enabled;

		for (size_t a = 0; a < n_names; a++)
			if (strcmp(names[a], def->name) == 0)
				wanted = true;
		if (wanted)
			jobs[n++].def = def;
	}
	/* Checks run side by side, so a slow one costs its own timeout only. */
	pool.jobs = jobs;
	pool.n = n;
	pool.env.backup_newest = backup_job_newest_rpo;
	pool.env.backup_userdata = cli->plan;
	n_threads = n < PROBE_THREADS ? n : PROBE_THREADS;
	for (size_t i = 0; i < n_threads; i++)
		if (pthread_create(&threads[i], NULL, worker, &pool) != 0) {
			n_threads = i;
			break;
		}
	if (n_threads == 0)
		worker(&pool);
	for (size_t i = 0; i < n_threads; i++)
		pthread_join(threads[i], NULL);

	if (cli->json) {
		_cleanup_json_ json_t *arr = json_array();

		if (!arr)
			return EXIT_FAIL;
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, result_json(jobs[i].def, &jobs[i].result));
		json_print(stdout, arr);
	} else {
		size_t w = 5;

		for (size_t i = 0; i < n; i++)
			if (strlen(jobs[i].def->name) > w)
				w = strlen(jobs[i].def->name);
		if (!cli->quiet)
			printf("%-8s  %-*s  %-10s  %-8s  %s\n", "STATUS", (int)w, "CHECK", "VALUE",
			       "TOOK", "MESSAGE");
		for (size_t i = 0; i < n; i++) {
			const struct probe_result *res = &jobs[i].result;
			char v[48], d[32];

			if (cli->quiet && res->status == CHECK_OK)
				continue;
			if (res->duration < USEC_PER_SEC)
				snprintf(d, sizeof(d), "%.1fms", (double)res->duration / 1000.0);
			else
				duration_format(res->duration, d, sizeof(d));
			printf("%-8s  %-*s  %-10s  %-8s  %s\n", check_status_name(res->status), (int)w,
			       jobs[i].def->name, format_value(res, v, sizeof(v)), d, res->message);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (jobs[i].r < 0) {
			log_error_errno(jobs[i].r, "cannot run check '%s'", jobs[i].def->name);
			return EXIT_FAIL;
		}
		if (jobs[i].result.status != CHECK_OK)
			not_ok++;
	}
	return not_ok ? EXIT_PROBLEMS : EXIT_OK;
}

const struct command cmd_probe = {
	"probe", "run the plan's checks once, here, without the agent",
	"probe [-c PLAN] [--json] [NAME...]\n\n"
	"Runs the checks of the plan (or only those named) once on this host, side by\n"
	"side, each bounded by its timeout, and prints status, value, duration and\n"
	"message of each. Thresholds apply; `for`, `recover` and flap detection need\n"
	"several cycles and belong to the agent. Rates (cpu, net, io, process cpu)\n"
	"are sampled over 250ms. Disabled checks run only when named.\n"
	"Exit status 0 when every check is ok, 3 when some are not, 1 on failure.\n",
	run_probe,
	.help_runs = true,
};
