/* bcdr silence add|list|expire: silences on the running agent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/agentcli.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/timeutil.h"

enum { OPT_MATCH = AGENTCLI_OPT_FIRST_FREE, OPT_FOR, OPT_COMMENT };

static const struct option options[] = {
	{ "match", required_argument, NULL, OPT_MATCH },
	{ "for", required_argument, NULL, OPT_FOR },
	{ "comment", required_argument, NULL, OPT_COMMENT },
	AGENTCLI_LONG, CLI_COMMON_LONG
};

static int run_add(struct cli *cli, int argc, char **argv)
{
	_cleanup_(agentcli_release) struct agentcli ac = {};
	_cleanup_json_ json_t *body = json_object(), *matchers = json_object(), *j = NULL;
	const char *comment = NULL;
	usec_t duration = 0;
	int opt, code;

	if (!body || !matchers)
		return EXIT_FAIL;
	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
		const char *eq;

		switch (opt) {
		case OPT_MATCH:
			eq = strchr(optarg, '=');
			if (!eq || eq == optarg)
				return cli_usage_error(cli, "invalid --match '%s': expected LABEL=VALUE, "
						       "such as check=web", optarg);
			{
				_cleanup_free_ char *key = strndup(optarg, (size_t)(eq - optarg));

				if (!key || json_set_str(matchers, key, eq + 1) < 0)
					return EXIT_FAIL;
			}
			continue;
		case OPT_FOR:
			if (duration_parse(optarg, &duration) < 0 || duration == 0)
				return cli_usage_error(cli, "invalid --for '%s': a duration such as 2h",
						       optarg);
			continue;
		case OPT_COMMENT:
			comment = optarg;
			continue;
		}
		code = agentcli_option(cli, &ac, opt, optarg);
		if (code != CLI_CONTINUE)
			return code;
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (json_object_size(matchers) == 0)
		return cli_usage_error(cli, "a silence needs at least one --match LABEL=VALUE");
	if (!duration)
		return cli_usage_error(cli, "a silence needs --for DURATION");
	json_object_set(body, "matchers", matchers);
	json_set_int(body, "duration_s", (long long)(duration / USEC_PER_SEC));
	if (comment)
		json_set_str(body, "comment", comment);
	code = agentcli_request(cli, &ac, "POST", "/api/v1/silences", body, &j);
	if (code != 0)
		return code;
	if (cli->json) {
		json_print(stdout, j);
	} else {
		json_t *id = json_object_get(j, "id");

		if (json_is_integer(id))
			printf("silence %lld added\n", json_integer_value(id));
		else
			printf("silence %s added\n", json_string_value(id) ?: "?");
	}
	return EXIT_OK;
}

static int run_list(struct cli *cli, int argc, char **argv)
{
	_cleanup_(agentcli_release) struct agentcli ac = {};
	_cleanup_json_ json_t *j = NULL;
	const json_t *s;
	size_t i;
	int code;

	code = agentcli_get_list(cli, &ac, argc, argv, "/api/v1/silences", &j);
	if (code != CLI_CONTINUE)
		return code;
	printf("%-6s %-30s %-22s %s\n", "ID", "MATCHERS", "ENDS", "COMMENT");
	json_array_foreach(j, i, s) {
		_cleanup_free_ char *m = json_dumps(json_object_get(s, "matchers"), JSON_COMPACT);
		const json_t *id = json_object_get(s, "id");
		char idbuf[32];

		if (json_is_integer(id))
			snprintf(idbuf, sizeof(idbuf), "%lld", json_integer_value(id));
		else
			snprintf(idbuf, sizeof(idbuf), "%s", json_string_value(id) ?: "?");
		printf("%-6s %-30s %-22s %s\n", idbuf, m ? m : "-",
		       json_string_value(json_object_get(s, "ends_at")) ?: "-",
		       json_string_value(json_object_get(s, "comment")) ?: "");
	}
	return EXIT_OK;
}

static int run_expire(struct cli *cli, int argc, char **argv)
{
	_cleanup_(agentcli_release) struct agentcli ac = {};
	int code;

	code = agentcli_name_command(cli, &ac, argc, argv, "expire takes one silence ID", "DELETE",
				     "/api/v1/silences/%s");
	if (code != 0)
		return code;
	if (!cli->quiet && !cli->json)
		printf("silence %s expired\n", argv[optind]);
	return EXIT_OK;
}

static const struct command cmd_silence_add = {
	"add", "silence alerts matching labels for a while",
	"silence add --match LABEL=VALUE [--match ...] --for DURATION [--comment TEXT]\n\n"
	"Alerts whose labels match every --match are not sent while the silence\n"
	"lasts (they still fire and show in the API). Example:\n"
	"  bcdr silence add --match check=web --for 2h --comment 'deploying'\n\n"
	"options:\n"
	"      --match LABEL=VALUE  a label the alerts must have (repeatable)\n"
	"      --for DURATION       how long, such as 30m or 2h\n"
	"      --comment TEXT       why, for the others\n" AGENTCLI_HELP CLI_COMMON_HELP,
	run_add,
};

static const struct command cmd_silence_list = {
	"list", "list the silences",
	"silence list [--json]\n\noptions:\n" AGENTCLI_HELP CLI_COMMON_HELP,
	run_list,
};

static const struct command cmd_silence_expire = {
	"expire", "end a silence now",
	"silence expire ID\n\noptions:\n" AGENTCLI_HELP CLI_COMMON_HELP,
	run_expire,
};

static const struct command *const silence_commands[] = {
	&cmd_silence_add, &cmd_silence_list, &cmd_silence_expire, NULL
};

static int run_silence(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, "silence", silence_commands, argc - 1, argv + 1);
}

const struct command cmd_silence = {
	"silence", "silence alerts on the running agent (add, list, expire)",
	"silence add|list|expire ...",
	run_silence,
};
