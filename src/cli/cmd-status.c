/* bcdr status: the running agent's summary. */
#include <stdio.h>
#include <string.h>

#include "cli/agentcli.h"
#include "cli/cli.h"
#include "lib/json.h"
#include "lib/timeutil.h"

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

/* "backup    NAME: newest snapshot 3h ago", the start of a line. */
static void print_newest(const char *what, const json_t *item)
{
	char age[48];

	printf("%s%s: newest snapshot %s", what, str(item, "name"),
	       agentcli_age(json_string_value(json_object_get(item, "newest_snapshot")), age,
			    sizeof(age)));
}

/* A backup job's copies:, one line each under it. */
static void print_copies(const json_t *copies)
{
	const json_t *c;
	size_t i;

	json_array_foreach(copies, i, c) {
		const json_t *last = json_object_get(c, "last_copy");
		const json_t *ok = json_object_get(c, "rpo_ok");

		print_newest("  copy    ", c);
		printf("%s", json_is_boolean(ok) ? json_is_true(ok) ? " (rpo ok)" : " (rpo MISSED)" : "");
		if (json_is_object(last))
			printf(", last copy %s", json_is_true(json_object_get(last, "ok")) ? "ok"
					       : "FAILED");
		printf("\n");
	}
}

static void print_status(const json_t *j)
{
	const json_t *checks = json_object_get(j, "checks"), *reasons = json_object_get(j, "reasons");
	const json_t *backups = json_object_get(j, "backups"), *item;
	const json_t *avail = json_object_get(j, "availability");
	char d[32];
	size_t i;

	printf("agent     %s, bcdr %s, up %s\n", str(j, "host"), str(j, "version"),
	       duration_format((usec_t)json_number_value(json_object_get(j, "uptime_s")) *
				       USEC_PER_SEC, d, sizeof(d)));
	if (json_is_true(json_object_get(j, "degraded"))) {
		printf("health    degraded\n");
		json_array_foreach(reasons, i, item)
			printf("          - %s\n", json_string_value(item));
	} else {
		printf("health    ok\n");
	}
	printf("checks    %lld ok, %lld warning, %lld critical, %lld unknown\n",
	       json_integer_value(json_object_get(checks, "ok")),
	       json_integer_value(json_object_get(checks, "warning")),
	       json_integer_value(json_object_get(checks, "critical")),
	       json_integer_value(json_object_get(checks, "unknown")));
	printf("alerts    %lld firing\n", json_integer_value(json_object_get(j, "alerts_firing")));
	json_array_foreach(backups, i, item) {
		const json_t *run = json_object_get(item, "last_run");
		const json_t *drill = json_object_get(item, "last_drill");

		print_newest("backup    ", item);
		printf(" (rpo %s: %s)",
		       duration_format((usec_t)json_number_value(json_object_get(item, "rpo_s")) *
					       USEC_PER_SEC, d, sizeof(d)),
		       json_is_true(json_object_get(item, "rpo_ok")) ? "ok" : "MISSED");
		if (json_is_object(run))
			printf(", last run %s", json_is_true(json_object_get(run, "ok")) ? "ok" : "failed");
		if (json_is_object(drill))
			printf(", last drill %.1fs %s", json_number_value(json_object_get(drill,
										"duration_s")),
			       json_is_true(json_object_get(drill, "ok")) ? "ok" : "FAILED");
		if (json_is_object(drill) && json_is_string(json_object_get(drill, "repository")))
			printf(" from '%s'", str(drill, "repository"));
		printf("\n");
		print_copies(json_object_get(item, "copies"));
	}
	if (json_is_number(json_object_get(avail, "target")))
		printf("target    availability %.4g%%\n",
		       100 * json_number_value(json_object_get(avail, "target")));
}

static int run_status(struct cli *cli, int argc, char **argv)
{
	_cleanup_(agentcli_release) struct agentcli ac = {};
	_cleanup_json_ json_t *j = NULL;
	int code;

	code = agentcli_parse(cli, &ac, argc, argv);
	if (code != CLI_CONTINUE)
		return code;
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	code = agentcli_request(cli, &ac, "GET", "/api/v1/status", NULL, &j);
	if (code != 0)
		return code;
	if (cli->json)
		json_print(stdout, j);
	else
		print_status(j);
	/* Problems (degraded, critical checks) make exit status 3 for scripts. */
	if (json_is_true(json_object_get(j, "degraded")) ||
	    json_integer_value(json_object_get(json_object_get(j, "checks"), "critical")) > 0)
		return EXIT_PROBLEMS;
	return EXIT_OK;
}

const struct command cmd_status = {
	"status", "summary of the running agent: health, checks, alerts, backups",
	"status [--agent URL] [--token-file FILE] [--json]\n\n"
	"Asks the running agent (bcdr agent) for its summary. Exit status 0 when\n"
	"healthy with no critical check, 3 when degraded or a check is critical,\n"
	"1 when the agent cannot be reached.\n",
	run_status,
	.help_runs = true,
};
