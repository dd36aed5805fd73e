/* What the `bcdr model` commands share: one file a subcommand
 * (cmd-model-<name>.c), the group in cmd-model.c, the helpers here. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cli/cli.h"

struct topology_plan;

extern const struct command cmd_model_availability;
extern const struct command cmd_model_simulate;
extern const struct command cmd_model_graph;
extern const struct command cmd_model_measured;

/* Loads the plan and its topology: section (acyclic: refusing dependency
 * cycles), logging what is wrong; returns 0 or an exit code. */
int model_cli_load_topology(struct cli *cli, bool acyclic, const struct topology_plan **ret);
/* "3h 2m", "never" for infinity, "0s" for nothing; in out. */
const char *model_cli_fmt_seconds(double s, char *out, size_t size);
/* Availability a (unavailability u) with as many decimals as its nines
 * need, as "99.95%"; in out. */
const char *model_cli_fmt_availability(double a, double u, char *out, size_t size);
