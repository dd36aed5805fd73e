/* bcdr model: what availability the plan can deliver, and where it breaks.
 *   availability  exact steady state (closed forms and Markov chains)
 *   simulate      Monte Carlo: the spread of downtime, any lifetime distribution
 *   graph         the dependency graph: single points of failure, cascades
 *   measured      MTBF/MTTR from the agent's incidents, model recomputed with them
 * See docs/models.md for the models and their assumptions. */
#include "cli/cli.h"
#include "cli/model-cli.h"

static const struct command *const model_commands[] = {
	&cmd_model_availability,
	&cmd_model_simulate,
	&cmd_model_graph,
	&cmd_model_measured,
	NULL,
};

const struct command cmd_model = {
	"model", "availability model of the plan",
	"model COMMAND [OPTIONS]\n\n"
	"commands: availability, simulate, graph, measured\n",
	cli_run_group,
	.subcommands = model_commands,
};
