/* bcdr agent: the daemon. */
#include <stdio.h>
#include <unistd.h>

#include "agent/agent.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "plan/plan.h"

static int run_agent(struct cli *cli, int argc, char **argv)
{
	struct agent_options opts = {};
	struct plan *plan;
	int code;

	code = cli_parse(cli, argc, argv, NULL, CLI_PARSE_NO_OPERANDS);
	if (code != CLI_CONTINUE)
		return code;
	code = cli_load_plan(cli, true);
	if (code != 0)
		return code;
	opts.plan_path = cli->plan->path;
	opts.foreground_banner = !cli->quiet;
	plan = TAKE_PTR(cli->plan);
	return agent_run(plan, &opts);
}

const struct command cmd_agent = {
	"agent", "run the agent: checks, alerts, actions, backups, drills, the API",
	"agent [-c PLAN] [-q] [-v]\n\n"
	"Runs the plan continuously in the foreground until SIGTERM or Ctrl-C: every\n"
	"check at its interval, alerts and actions on state changes, backup jobs on\n"
	"their schedule, restore drills, balancers. Serves the HTTP API, /metrics,\n"
	"/healthz and the dashboard on agent.listen (default 127.0.0.1:8470) and keeps\n"
	"its state in agent.state_dir (default /var/lib/bcdr).\n\n"
	"SIGHUP reloads the plan; an invalid plan is rejected (file:line:col in the\n"
	"log and the events) and the running one stays. contrib/bcdr.service runs it\n"
	"under systemd. See docs/agent.md.\n",
	run_agent,
	.help_runs = true,
};
