/* bcdr silence add|list|expire: silences on the running agent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/agentcli.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/timeutil.h"

/* --match LABEL=VALUE: into the matchers object (o->field). */
static int take_match(struct cli *cli, const struct cli_option *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	_cleanup_free_ char *key = NULL;

	if (!eq || eq == arg)
		return cli_usage_error(cli, "invalid --match '%s': expected LABEL=VALUE, "
				       "such as check=web", arg);
	key = strndup(arg, (size_t)(eq - arg));
	if (!key || json_set_str(o->field, key, eq + 1) < 0)
		return EXIT_FAIL;
	return CLI_CONTINUE;
}

static int run_add(struct cli *cli, int argc, char **argv)
{
	_cleanup_(agentcli_release) struct agentcli ac = {};
	_cleanup_json_ json_t *body = json_object(), *matchers = json_object(), *j = NULL;
	const char *comment = NULL;
	usec_t duration = 0;
	int code;
	const struct cli_option options[] = {
		{ CLI_COLUMN(27) },
		{ CLI_CALL("match", 0, take_match, matchers, "LABEL=VALUE",
			   "a label the alerts must have (repeatable)") },
		{ CLI_DURATION("for", 0, &duration, "DURATION", "how long, such as 30m or 2h"),
		  .what = "takes a duration such as 2h" },
		{ CLI_STRING("comment", 0, &comment, "TEXT", "why, for the others") },
		AGENTCLI_OPTIONS(&ac),
		{}
	};

	if (!body || !matchers)
		return EXIT_FAIL;
	code = cli_parse(cli, argc, argv, options, CLI_PARSE_NO_OPERANDS);
	if (code != CLI_CONTINUE)
		return code;
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
	if (code != CLI_CONTINUE)
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
	"  bcdr silence add --match check=web --for 2h --comment 'deploying'\n",
	run_add,
};

static const struct command cmd_silence_list = {
	"list", "list the silences",
	"silence list [--json]\n",
	run_list,
};

static const struct command cmd_silence_expire = {
	"expire", "end a silence now",
	"silence expire ID\n",
	run_expire,
};

static const struct command *const silence_commands[] = {
	&cmd_silence_add, &cmd_silence_list, &cmd_silence_expire, NULL
};

const struct command cmd_silence = {
	"silence", "silence alerts on the running agent (add, list, expire)",
	"silence add|list|expire ...",
	cli_run_group,
	.subcommands = silence_commands,
};
