/* bcdr act list|reset: the running agent's automated actions. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/agentcli.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/json.h"

static int run_list(struct cli *cli, int argc, char **argv)
{
	_cleanup_(agentcli_release) struct agentcli ac = {};
	_cleanup_json_ json_t *j = NULL;
	const json_t *a;
	size_t i;
	int code;

	code = agentcli_get_list(cli, &ac, argc, argv, "/api/v1/actions", &j);
	if (code != CLI_CONTINUE)
		return code;
	printf("%-24s %-8s %-10s %-9s %s\n", "NAME", "KIND", "STATE", "RUNS", "LAST RUN");
	json_array_foreach(j, i, a) {
		const json_t *limit = json_object_get(a, "limit"), *last = json_object_get(a, "last_run");
		char runs[32], when[48];

		if (json_integer_value(json_object_get(limit, "count")) > 0)
			snprintf(runs, sizeof(runs), "%lld/%lld",
				 json_integer_value(json_object_get(a, "runs_in_window")),
				 json_integer_value(json_object_get(limit, "count")));
		else
			snprintf(runs, sizeof(runs), "%lld",
				 json_integer_value(json_object_get(a, "runs_in_window")));
		printf("%-24s %-8s %-10s %-9s %s%s%s\n", json_string_value(json_object_get(a, "name")),
		       json_string_value(json_object_get(a, "kind")) ?: "-",
		       json_string_value(json_object_get(a, "state")) ?: "-", runs,
		       agentcli_age(json_string_value(json_object_get(last, "time")), when,
				    sizeof(when)),
		       json_is_object(last) ? ": " : "",
		       json_string_value(json_object_get(last, "message")) ?: "");
	}
	return EXIT_OK;
}

static int run_reset(struct cli *cli, int argc, char **argv)
{
	_cleanup_(agentcli_release) struct agentcli ac = {};
	int code;

	code = agentcli_name_command(cli, &ac, argc, argv, "reset takes one action NAME", "POST",
				     "/api/v1/actions/%s/reset");
	if (code != CLI_CONTINUE)
		return code;
	if (!cli->quiet && !cli->json)
		printf("action '%s' reset: it may act again\n", argv[optind]);
	return EXIT_OK;
}

static const struct command cmd_act_list = {
	"list", "the actions, their runs and limits",
	"act list [--json]\n",
	run_list,
};

static const struct command cmd_act_reset = {
	"reset", "let an action that hit its limit act again",
	"act reset NAME\n\n"
	"An action that ran `limit` times within its window stops and escalates;\n"
	"reset clears its count so the agent may run it again.\n",
	run_reset,
};

static const struct command *const act_commands[] = { &cmd_act_list, &cmd_act_reset, NULL };

const struct command cmd_act = {
	"act", "the running agent's actions (list, reset)",
	"act list|reset ...",
	cli_run_group,
	.subcommands = act_commands,
};
