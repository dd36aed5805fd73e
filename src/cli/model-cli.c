/* The helpers of the bcdr model commands (cli/model-cli.h). */
#include "cli/model-cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "model/availability.h"
#include "plan/plan.h"

int model_cli_load_topology(struct cli *cli, bool acyclic, const struct topology_plan **ret)
{
	int code = cli_load_plan(cli, true);

	if (code != 0)
		return code;
	if (!cli->plan->topology) {
		log_error("'%s' has no topology: section (docs/models.md shows how to describe "
			  "the service and its components)", cli->plan->path);
		return EXIT_FAIL;
	}
	if (acyclic) {
		_cleanup_free_ char *error = NULL;

		if (topology_check_acyclic(cli->plan->topology, &error) < 0) {
			log_error("%s", error ? error : "dependency cycle");
			return EXIT_FAIL;
		}
	}
	*ret = cli->plan->topology;
	return 0;
}

const char *model_cli_fmt_seconds(double s, char *out, size_t size)
{
	if (!isfinite(s))
		return "never";
	if (s <= 0)
		return "0s";
	if (s >= 1e15)
		s = 1e15;
	return duration_format((usec_t)llround(s * USEC_PER_SEC), out, size);
}

const char *model_cli_fmt_availability(double a, double u, char *out, size_t size)
{
	int prec = (int)ceil(nines(u)) + 1;

	if (prec < 2)
		prec = 2;
	if (prec > 10)
		prec = 10;
	snprintf(out, size, "%.*f%%", prec, a * 100);
	return out;
}
