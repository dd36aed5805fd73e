/* bcdr events: the running agent's event history. */
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "cli/agentcli.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/json.h"

enum { OPT_SINCE = AGENTCLI_OPT_FIRST_FREE, OPT_KIND, OPT_CHECK, OPT_LIMIT };

static int add_param(struct buf *b, const char *key, const char *value)
{
	_cleanup_free_ char *e = NULL;

	if (!value)
		return 0;
	e = evhttp_encode_uri(value);
	if (!e)
		return -1;
	return buf_printf(b, "%c%s=%s", strchr(b->data, '?') ? '&' : '?', key, e);
}

static void print_events(const json_t *list)
{
	const json_t *e;
	size_t i;

	json_array_foreach(list, i, e) {
		const char *check = json_string_value(json_object_get(e, "check"));

		printf("%s  %-12s %s%s%s\n", json_string_value(json_object_get(e, "time")),
		       json_string_value(json_object_get(e, "kind")), check ? check : "",
		       check ? ": " : "", json_string_value(json_object_get(e, "message")) ?: "");
	}
}

static int run_events(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "kind", required_argument, NULL, OPT_KIND },
		{ "check", required_argument, NULL, OPT_CHECK },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		AGENTCLI_LONG, CLI_COMMON_LONG
	};
	_cleanup_(agentcli_release) struct agentcli ac = {};
	_cleanup_(buf_release) struct buf path;
	_cleanup_json_ json_t *j = NULL;
	const char *since = NULL, *kind = NULL, *check = NULL, *limit = NULL;
	int opt, code;

	buf_init(&path, 8192);
	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
		switch (opt) {
		case OPT_SINCE: since = optarg; continue;
		case OPT_KIND: kind = optarg; continue;
		case OPT_CHECK: check = optarg; continue;
		case OPT_LIMIT: limit = optarg; continue;
		}
		code = agentcli_option(cli, &ac, opt, optarg);
		if (code != CLI_CONTINUE)
			return code;
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (buf_append_str(&path, "/api/v1/events") < 0 || add_param(&path, "since", since) < 0 ||
	    add_param(&path, "kind", kind) < 0 || add_param(&path, "check", check) < 0 ||
	    add_param(&path, "limit", limit) < 0)
		return cli_usage_error(cli, "options too long");
	code = agentcli_connect(cli, &ac);
	if (code == 0)
		code = agentcli_call(&ac, "GET", path.data, NULL, &j);
	if (code != 0)
		return code;
	if (cli->json)
		json_print(stdout, j);
	else
		print_events(j);
	return EXIT_OK;
}

const struct command cmd_events = {
	"events", "the running agent's events: state changes, actions, backups, drills",
	"events [--since WHEN] [--kind KIND] [--check NAME] [--limit N] [--json]\n\n"
	"The newest events of the running agent (default 100), oldest first. KIND is\n"
	"state, flapping, action, notification, backup, drill, lb or agent; WHEN an\n"
	"RFC 3339 time, seconds ago, or a duration such as 2h.\n\n"
	"options:\n"
	"      --since WHEN      events from WHEN on\n"
	"      --kind KIND       only events of KIND\n"
	"      --check NAME      only events of check NAME\n"
	"      --limit N         at most N events (1 to 10000)\n" AGENTCLI_HELP CLI_COMMON_HELP,
	run_events,
};
