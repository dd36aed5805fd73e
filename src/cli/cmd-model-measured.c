/* bcdr model measured: MTBF and MTTR from the agent's incidents, and the
 * model recomputed with them. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/settings.h"
#include "cli/model-cli.h"
#include "cli/model-switchover.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "model/availability.h"
#include "model/measured.h"
#include "plan/plan.h"


static json_t *real_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *service_figures_json(const struct series_result *s)
{
	json_t *j = json_object();

	json_set_real(j, "availability", s->availability);
	json_set_real(j, "downtime_per_year_s", s->unavailability * SECONDS_PER_YEAR);
	json_set_real(j, "mtbf_s", s->mtbf_s);
	json_set_real(j, "mttr_s", s->mttr_s);
	return j;
}

static void print_measured_json(const char *db, const struct topology_plan *t,
				const struct measured_report *mr,
				const struct model_report *planned,
				const struct model_report *measured, double target, json_t *switchover)
{
	_cleanup_json_ json_t *root = json_object();
	json_t *comps = json_object(), *unknown = json_array(), *service = json_object();
	json_t *observed = json_object();
	char from[64], to[64];

	json_set_str(root, "state_db", db);
	json_set_str(root, "from", time_format_iso(mr->from, from, sizeof(from)));
	json_set_str(root, "to", time_format_iso(mr->to, to, sizeof(to)));
	json_set_real(root, "observed_s", mr->observed_s);
	for (size_t i = 0; i < mr->n_components; i++) {
		const struct measured_component *mc = &mr->components[i];
		json_t *j, *p;

		if (!mc->in_topology) {
			json_array_append_new(unknown, json_string(mc->name));
			continue;
		}
		j = json_object();
		p = json_object();
		json_set_int(j, "incidents", (long long)mc->incidents);
		json_set_int(j, "outages", (long long)mc->outages);
		json_set_bool(j, "open", mc->open);
		json_set_real(j, "downtime_s", mc->downtime_s);
		json_set_real(j, "availability", mc->availability);
		json_object_set_new(j, "mtbf_s", real_or_null(mc->mtbf_s));
		json_object_set_new(j, "mttr_s", real_or_null(mc->mttr_s));
		json_object_set_new(j, "mtbf_lower_bound_s", real_or_null(mc->mtbf_lower_s));
		json_set_bool(j, "required", planned->components[i].required);
		json_set_str(j, "model_input", mc->outages ? "measured" : "planned");
		json_set_real(p, "availability", planned->components[i].result.availability);
		json_set_real(p, "mtbf_s", planned->components[i].result.mtbf_s);
		json_set_real(p, "mttr_s", planned->components[i].result.mttr_s);
		json_object_set_new(j, "planned", p);
		json_object_set_new(comps, mc->name, j);
	}
	json_object_set_new(root, "components", comps);
	json_object_set_new(root, "unknown_components", unknown);
	json_set_str(service, "name", t->service);
	json_set_real(observed, "availability", mr->service_availability);
	json_set_int(observed, "outages", (long long)mr->service_outages);
	json_set_real(observed, "downtime_s", mr->service_downtime_s);
	json_object_set_new(service, "observed", observed);
	json_object_set_new(service, "modelled_measured", service_figures_json(&measured->service));
	json_object_set_new(service, "modelled_planned", service_figures_json(&planned->service));
	json_object_set_new(root, "service", service);
	if (target > 0) {
		json_t *tj = json_object();

		json_set_real(tj, "availability", target);
		json_set_bool(tj, "observed_met", mr->service_availability >= target);
		json_set_bool(tj, "modelled_measured_met",
			      measured->service.availability >= target);
		json_set_real(tj, "budget_left_s", (1 - target) * mr->observed_s -
			      mr->service_downtime_s);
		json_object_set_new(root, "target", tj);
	} else {
		json_object_set_new(root, "target", json_null());
	}
	if (switchover)
		json_object_set_new(root, "switchover", switchover);
	json_print(stdout, root);
}

static void print_measured_text(const char *db, const struct topology_plan *t,
				const struct measured_report *mr,
				const struct model_report *planned,
				const struct model_report *measured, double target)
{
	char a[64], b[64], d1[64], d2[64], d3[64], d4[64], from[64];
	bool unknown = false;

	printf("incidents in '%s' since %s (%s observed)\n\n", db,
	       time_format_iso(mr->from, from, sizeof(from)),
	       model_cli_fmt_seconds(mr->observed_s, d1, sizeof(d1)));
	printf("%-16s %-8s %-11s %-14s %-14s %-22s %s\n", "component", "outages", "downtime",
	       "availability", "planned", "mtbf measured/planned", "mttr measured/planned");
	for (size_t i = 0; i < mr->n_components; i++) {
		const struct measured_component *mc = &mr->components[i];
		const struct unit_result *p;
		char mtbf[64], mttr[64];

		if (!mc->in_topology) {
			unknown = true;
			continue;
		}
		p = &planned->components[i].result;
		if (mc->outages) {
			snprintf(mtbf, sizeof(mtbf), "%s / %s",
				 model_cli_fmt_seconds(mc->mtbf_s, d1, sizeof(d1)),
				 model_cli_fmt_seconds(p->mtbf_s, d2, sizeof(d2)));
			snprintf(mttr, sizeof(mttr), "%s / %s",
				 model_cli_fmt_seconds(mc->mttr_s, d3, sizeof(d3)),
				 model_cli_fmt_seconds(p->mttr_s, d4, sizeof(d4)));
		} else {
			snprintf(mtbf, sizeof(mtbf), ">= %s / %s",
				 model_cli_fmt_seconds(mc->mtbf_lower_s, d1, sizeof(d1)),
				 model_cli_fmt_seconds(p->mtbf_s, d2, sizeof(d2)));
			snprintf(mttr, sizeof(mttr), "- / %s",
				 model_cli_fmt_seconds(p->mttr_s, d4, sizeof(d4)));
		}
		printf("%-16s %-8" PRIu64 " %-11s %-14s %-14s %-22s %s%s\n", mc->name, mc->outages,
		       model_cli_fmt_seconds(mc->downtime_s, d3, sizeof(d3)),
		       model_cli_fmt_availability(mc->availability, 1 - mc->availability, a,
						  sizeof(a)),
		       model_cli_fmt_availability(p->availability, p->unavailability, b, sizeof(b)),
		       mtbf, mttr, mc->open ? " (down now)" : "");
	}
	printf("\nservice %s:\n", t->service);
	printf("  observed                 %-14s %" PRIu64 " outages, %s down\n",
	       model_cli_fmt_availability(mr->service_availability, 1 - mr->service_availability, a,
				sizeof(a)),
	       mr->service_outages, model_cli_fmt_seconds(mr->service_downtime_s, d1, sizeof(d1)));
	printf("  model, measured inputs   %-14s %s down per year\n",
	       model_cli_fmt_availability(measured->service.availability,
					  measured->service.unavailability, a, sizeof(a)),
	       model_cli_fmt_seconds(measured->service.unavailability * SECONDS_PER_YEAR, d1,
				     sizeof(d1)));
	printf("  model, planned inputs    %-14s %s down per year\n",
	       model_cli_fmt_availability(planned->service.availability,
					  planned->service.unavailability, a, sizeof(a)),
	       model_cli_fmt_seconds(planned->service.unavailability * SECONDS_PER_YEAR, d1,
				     sizeof(d1)));
	if (target > 0) {
		double left = (1 - target) * mr->observed_s - mr->service_downtime_s;

		printf("  target %s: %s so far (%s %s for the time observed)\n",
		       model_cli_fmt_availability(target, 1 - target, a, sizeof(a)),
		       mr->service_availability >= target ? "met" : "MISSED",
		       model_cli_fmt_seconds(fabs(left), d1, sizeof(d1)),
		       left >= 0 ? "of error budget left" : "over the error budget");
	}
	if (unknown) {
		printf("\nincidents of components not in the topology:");
		for (size_t i = 0; i < mr->n_components; i++)
			if (!mr->components[i].in_topology)
				printf(" %s", mr->components[i].name);
		printf("\n");
	}
}

static int run_measured(struct cli *cli, int argc, char **argv)
{
	const struct topology_plan *t;
	_cleanup_(measured_report_freep) struct measured_report *mr = NULL;
	_cleanup_(model_report_freep) struct model_report *planned = NULL, *measured = NULL;
	_cleanup_free_ struct unit_params *params = NULL;
	_cleanup_free_ char *db_alloc = NULL, *error = NULL;
	_cleanup_(model_switchover_view_release) struct switchover_view sv = { 0 };
	const char *db = NULL;
	usec_t since = 0, now = now_realtime(), ago = 0;
	int code, r;

	const struct cli_option options[] = {
		{ CLI_COLUMN(24) },
		{ CLI_STRING("state-db", 0, &db, "FILE",
			     "the agent's state database (default: from the plan)") },
		{ CLI_DURATION("since", 0, &ago, "DURATION",
			       "only the last DURATION (default: all the agent recorded)"),
		  .min = 1, .what = "takes a duration such as 30d or 12h" },
		{}
	};

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_NO_OPERANDS);
	if (code != CLI_CONTINUE)
		return code;
	if (ago >= now)
		return cli_usage_error(cli, "--since reaches back before 1970");
	if (ago)
		since = now - ago;
	code = model_cli_load_topology(cli, true, &t);
	if (code != 0)
		return code;
	if (!db) {
		db_alloc = agent_state_db_path(cli->plan->agent);
		if (!db_alloc) {
			log_error(
				"'%s' has no agent: section to say where the agent keeps its state; "
				"pass --state-db FILE",
				cli->plan->path);
			return EXIT_FAIL;
		}
		db = db_alloc;
	}
	r = measured_read(db, since, now, t, &mr, &error);
	if (r < 0) {
		log_error("%s", error ? error : err_str(r));
		return EXIT_FAIL;
	}
	params = calloc(t->n_components + 1, sizeof(*params));
	if (!params) {
		log_error("out of memory");
		return EXIT_FAIL;
	}
	measured_params(t, mr, params);
	r = model_evaluate(t, &planned);
	if (r >= 0)
		r = model_evaluate_with(t, params, &measured);
	if (r < 0) {
		log_error_errno(r, "cannot solve the availability model");
		return EXIT_FAIL;
	}
	/* the switch-over times the cluster measured, from the same database */
	code = model_switchover_view(cli, t, &(struct switchover_source){ .state_db = db }, &sv);
	if (code != 0)
		return code;
	if (cli->json)
		print_measured_json(db, t, mr, planned, measured, cli->plan->targets.availability,
				    model_switchover_json(&sv, t, planned));
	else {
		print_measured_text(db, t, mr, planned, measured, cli->plan->targets.availability);
		model_switchover_print(&sv, t, planned);
	}
	return EXIT_OK;
}

const struct command cmd_model_measured = {
	"measured", "MTBF and MTTR the agent observed, and the model recomputed with them",
	"model measured [-c PLAN] [--state-db FILE] [--since DURATION] [--json]\n\n"
	"Reads the agent's incident history (<agent.state_dir>/state.db, read-only):\n"
	"per component (checks carry a component: label), the outages, downtime,\n"
	"availability, MTBF and MTTR observed, beside the planned ones; and the service:\n"
	"observed (the union of its components' outages), the model with the measured\n"
	"figures, and the model with the planned ones; and the switch-over times the\n"
	"cluster measured (as `bcdr model availability` shows them).\n",
	run_measured,
};
