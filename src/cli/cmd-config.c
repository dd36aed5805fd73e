/* bcdr config check: load the plan and say what is wrong with it. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "lib/json.h"
#include "plan/plan.h"

static int run_config_check(struct cli *cli, int argc, char **argv)
{
	int code;

	code = cli_parse(cli, argc, argv, NULL, CLI_PARSE_NO_OPERANDS);
	if (code != CLI_CONTINUE)
		return code;
	code = cli_load_plan(cli, true);
	if (cli->json) {
		_cleanup_json_ json_t *j = json_object();

		json_set_bool(j, "valid", code == 0);
		json_set_str(j, "plan", cli->plan_path ? cli->plan_path : plan_default_path());
		json_print(stdout, j);
	} else if (code == 0 && !cli->quiet) {
		printf("%s: the plan is valid\n", cli->plan->path);
	}
	return code;
}

static const struct command cmd_config_check = {
	"check", "load the plan and report the first error with file:line:col",
	"config check [-c PLAN] [--json]\n\n"
	"Loads the plan and checks every section and the references between them.\n"
	"Exit status 0 when it is valid, 1 with file:line:col of the first error.\n",
	run_config_check,
};

static const struct command *const config_commands[] = { &cmd_config_check, NULL };

const struct command cmd_config = {
	"config", "check the plan",
	"config check [-c PLAN] [--json]",
	cli_run_group,
	.subcommands = config_commands,
};
