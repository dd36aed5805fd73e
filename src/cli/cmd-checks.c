/* bcdr checks: the running agent's checks, or one with its history. */
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/agentcli.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/json.h"


static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

static void format_value(const json_t *c, char *out, size_t size)
{
	const json_t *v = json_object_get(c, "value");
	const char *unit = json_string_value(json_object_get(c, "unit"));

	if (json_is_number(v))
		snprintf(out, size, "%.4g%s%s", json_number_value(v), unit ? " " : "",
			 unit ? unit : "");
	else
		snprintf(out, size, "-");
}

static void print_list(const json_t *list)
{
	const json_t *c;
	size_t i;

	printf("%-24s %-9s %-9s %-14s %-12s %s\n", "NAME", "KIND", "STATE", "VALUE", "SINCE",
	       "MESSAGE");
	json_array_foreach(list, i, c) {
		char value[48], age[48];

		char state[32];

		format_value(c, value, sizeof(value));
		snprintf(state, sizeof(state), "%s%s", str(c, "state"),
			 json_is_true(json_object_get(c, "flapping")) ? ",flapping" : "");
		printf("%-24s %-9s %-9s %-14s %-12s %s\n", str(c, "name"), str(c, "kind"),
		       state, value,
		       agentcli_age(json_string_value(json_object_get(c, "since")), age, sizeof(age)),
		       str(c, "message"));
	}
}

static void print_one(const json_t *c)
{
	const json_t *h = json_object_get(c, "history"), *e;
	char value[48], age[48];
	size_t i;

	format_value(c, value, sizeof(value));
	printf("check     %s (%s)\n", str(c, "name"), str(c, "kind"));
	printf("state     %s since %s (%s)%s\n", str(c, "state"), str(c, "since"),
	       agentcli_age(json_string_value(json_object_get(c, "since")), age, sizeof(age)),
	       json_is_true(json_object_get(c, "flapping")) ?
		       ", flapping: notifications held" : "");
	printf("last run  %s: %s, %s\n", str(c, "last_run"), str(c, "severity"), value);
	printf("message   %s\n", str(c, "message"));
	if (json_array_size(h) > 0)
		printf("history   %zu samples\n", json_array_size(h));
	json_array_foreach(h, i, e) {
		const json_t *v = json_object_get(e, "value");

		if (json_is_number(v))
			printf("  %s  %-9s %.6g\n", str(e, "time"), str(e, "state"),
			       json_number_value(v));
		else
			printf("  %s  %s\n", str(e, "time"), str(e, "state"));
	}
}

static int run_checks(struct cli *cli, int argc, char **argv)
{
	_cleanup_(agentcli_release) struct agentcli ac = {};
	_cleanup_json_ json_t *j = NULL;
	_cleanup_free_ char *path = NULL, *ename = NULL, *esince = NULL;
	const char *since = NULL;
	int code;

	const struct cli_option options[] = {
		{ CLI_COLUMN(24) },
		{ CLI_STRING("since", 0, &since, "WHEN", "history from WHEN (with NAME)") },
		AGENTCLI_OPTIONS(&ac),
		{}
	};

	code = cli_parse(cli, argc, argv, options, 0);
	if (code != CLI_CONTINUE)
		return code;
	if (argc - optind > 1)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	if (since && optind == argc)
		return cli_usage_error(cli, "--since needs a check NAME");
	code = agentcli_connect(cli, &ac);
	if (code != 0)
		return code;
	if (optind < argc) {
		ename = evhttp_encode_uri(argv[optind]);
		esince = since ? evhttp_encode_uri(since) : NULL;
		if (!ename || (since && !esince) ||
		    asprintf(&path, "/api/v1/checks/%s%s%s", ename, since ? "?since=" : "",
			     since ? esince : "") < 0)
			return EXIT_FAIL;
	}
	code = agentcli_call(&ac, "GET", path ? path : "/api/v1/checks", NULL, &j);
	if (code != 0)
		return code;
	if (cli->json)
		json_print(stdout, j);
	else if (path)
		print_one(j);
	else
		print_list(j);
	return EXIT_OK;
}

const struct command cmd_checks = {
	"checks", "the running agent's checks and their states",
	"checks [NAME [--since WHEN]] [--agent URL] [--token-file FILE] [--json]\n\n"
	"Lists every check of the running agent with its confirmed state, last value\n"
	"and message; with NAME, that check and its history (default the last hour;\n"
	"--since takes an RFC 3339 time, seconds ago or a duration such as 1d).\n",
	run_checks,
	.help_runs = true,
};
