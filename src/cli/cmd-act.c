/* bcdr act list|reset: the running agent's automated actions. */
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/agentcli.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/json.h"

static const struct option options[] = { AGENTCLI_LONG, CLI_COMMON_LONG };

static int run_list(struct cli *cli, int argc, char **argv)
{
	_cleanup_(agentcli_release) struct agentcli ac = {};
	_cleanup_json_ json_t *j = NULL;
	const json_t *a;
	size_t i;
	int opt, code;

	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
		code = agentcli_option(cli, &ac, opt, optarg);
		if (code != CLI_CONTINUE)
			return code;
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	code = agentcli_connect(cli, &ac);
	if (code == 0)
		code = agentcli_call(&ac, "GET", "/api/v1/actions", NULL, &j);
	if (code != 0)
		return code;
	if (cli->json) {
		json_print(stdout, j);
		return EXIT_OK;
	}
	json_array_foreach(j, i, a) {
		_cleanup_free_ char *text = json_dumps(a, JSON_COMPACT);

		printf("%s\n", text ? text : "?");
	}
	return EXIT_OK;
}

static int run_reset(struct cli *cli, int argc, char **argv)
{
	_cleanup_(agentcli_release) struct agentcli ac = {};
	_cleanup_free_ char *path = NULL, *ename = NULL;
	int opt, code;

	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, options, NULL)) != -1) {
		code = agentcli_option(cli, &ac, opt, optarg);
		if (code != CLI_CONTINUE)
			return code;
	}
	if (argc - optind != 1)
		return cli_usage_error(cli, "reset takes one action NAME");
	ename = evhttp_encode_uri(argv[optind]);
	if (!ename || asprintf(&path, "/api/v1/actions/%s/reset", ename) < 0)
		return EXIT_FAIL;
	code = agentcli_connect(cli, &ac);
	if (code == 0)
		code = agentcli_call(&ac, "POST", path, NULL, NULL);
	if (code != 0)
		return code;
	if (!cli->quiet && !cli->json)
		printf("action '%s' reset: it may act again\n", argv[optind]);
	return EXIT_OK;
}

static const struct command cmd_act_list = {
	"list", "the actions, their runs and limits",
	"act list [--json]\n\noptions:\n" AGENTCLI_HELP CLI_COMMON_HELP,
	run_list,
};

static const struct command cmd_act_reset = {
	"reset", "let an action that hit its limit act again",
	"act reset NAME\n\n"
	"An action that ran `limit` times within its window stops and escalates;\n"
	"reset clears its count so the agent may run it again.\n\n"
	"options:\n" AGENTCLI_HELP CLI_COMMON_HELP,
	run_reset,
};

static const struct command *const act_commands[] = { &cmd_act_list, &cmd_act_reset, NULL };

static int run_act(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, "act", act_commands, argc - 1, argv + 1);
}

const struct command cmd_act = {
	"act", "the running agent's actions (list, reset)",
	"act list|reset ...",
	run_act,
};
