/* bcdr model availability: the exact steady state of the plan (closed forms
 * and Markov chains), its error budget and which change buys the most. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/model-cli.h"
#include "cli/model-switchover.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "model/availability.h"
#include "plan/plan.h"

static const char *method_name(int method)
{
	return method == METHOD_MARKOV ? "markov chain" : "closed form";
}

struct improvement {
	const char *component;
	const char *action;
	double saved_s, availability;
};

static int cmp_improvement(const void *a, const void *b)
{
	const struct improvement *x = a, *y = b;

	return x->saved_s < y->saved_s ? 1 : x->saved_s > y->saved_s ? -1 :
		strcmp(x->component, y->component);
}

/* The what-ifs, ranked by the service downtime they save. */
static struct improvement *rank_improvements(const struct model_report *m, size_t *ret_n)
{
	struct improvement *v = calloc(2 * m->n_components + 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; i < m->n_components; i++) {
		const struct component_report *c = &m->components[i];

		if (!c->required)
			continue;
		v[n++] = (struct improvement){ c->c->name, "halve_mttr", c->halve_mttr_saved_s,
					       c->halve_mttr_availability };
		if (c->add_replica_possible)
			v[n++] = (struct improvement){ c->c->name, "add_replica",
						       c->add_replica_saved_s,
						       c->add_replica_availability };
	}
	qsort(v, n, sizeof(*v), cmp_improvement);
	*ret_n = n;
	return v;
}

static int cmp_birnbaum(const void *a, const void *b)
{
	const struct component_report *x = *(const struct component_report *const *)a;
	const struct component_report *y = *(const struct component_report *const *)b;

	return x->birnbaum < y->birnbaum ? 1 : x->birnbaum > y->birnbaum ? -1 :
		strcmp(x->c->name, y->c->name);
}

static json_t *unit_json(const struct unit_result *u)
{
	json_t *j = json_object();

	json_set_real(j, "availability", u->availability);
	json_set_real(j, "unavailability", u->unavailability);
	json_set_real(j, "nines", nines(u->unavailability));
	json_set_real(j, "downtime_per_year_s", u->unavailability * SECONDS_PER_YEAR);
	json_set_real(j, "downtime_per_30d_s", u->unavailability * SECONDS_PER_30_DAYS);
	json_set_real(j, "mtbf_s", u->mtbf_s);
	json_set_real(j, "mttr_s", u->mttr_s);
	json_set_real(j, "failures_per_year", u->failure_rate * SECONDS_PER_YEAR);
	return j;
}

static json_t *target_json(double target, double unavailability)
{
	json_t *j = json_object();
	double allowed = (1 - target) * SECONDS_PER_YEAR;

	json_set_real(j, "availability", target);
	json_set_real(j, "allowed_downtime_per_year_s", allowed);
	json_set_real(j, "budget_left_per_year_s", allowed - unavailability * SECONDS_PER_YEAR);
	json_set_real(j, "budget_left_per_30d_s",
		      (1 - target - unavailability) * SECONDS_PER_30_DAYS);
	json_set_bool(j, "met", 1 - unavailability >= target);
	return j;
}

static int print_availability_json(const struct topology_plan *t, const struct model_report *m,
				   double target, const struct improvement *imp, size_t n_imp,
				   const struct component_report *const *by_birnbaum, size_t n_req,
				   const struct switchover_view *sv)
{
	_cleanup_json_ json_t *root = json_object();
	json_t *service = unit_json(&(struct unit_result){
		.availability = m->service.availability,
		.unavailability = m->service.unavailability,
		.failure_rate = m->service.failure_rate,
		.mtbf_s = m->service.mtbf_s,
		.mttr_s = m->service.mttr_s,
	});
	json_t *components = json_object(), *list = json_array(), *ranking = json_array(), *sw;

	json_set_str(service, "name", t->service);
	json_object_set_new(root, "service", service);
	json_object_set_new(root, "target", target > 0 ?
			    target_json(target, m->service.unavailability) : json_null());
	for (size_t i = 0; i < m->n_components; i++) {
		const struct component_report *c = &m->components[i];
		json_t *j = unit_json(&c->result);

		json_set_str(j, "method", method_name(c->result.method));
		json_set_int(j, "states", (long long)c->result.states);
		json_set_int(j, "replicas", c->params.replicas);
		json_set_int(j, "needs", c->params.needs);
		json_set_int(j, "repair_crews", c->params.crews);
		json_set_str(j, "redundancy",
			     c->params.redundancy == REDUNDANCY_COLD ? "cold" : "active");
		json_set_real(j, "replica_mtbf_s", c->params.mtbf_s);
		json_set_real(j, "replica_mttr_s", c->params.mttr_s);
		json_set_bool(j, "required", c->required);
		json_set_real(j, "birnbaum", c->required ? c->birnbaum : 0);
		json_object_set_new(components, c->c->name, j);
	}
	json_object_set_new(root, "components", components);
	for (size_t i = 0; i < n_imp; i++) {
		json_t *j = json_object();

		json_set_str(j, "component", imp[i].component);
		json_set_str(j, "action", imp[i].action);
		json_set_real(j, "downtime_saved_per_year_s", imp[i].saved_s);
		json_set_real(j, "service_availability", imp[i].availability);
		json_array_append_new(list, j);
	}
	json_object_set_new(root, "importance", list);
	for (size_t i = 0; i < n_req; i++)
		json_array_append_new(ranking, json_string(by_birnbaum[i]->c->name));
	json_object_set_new(root, "birnbaum_ranking", ranking);
	json_set_real(root, "elapsed_s", m->elapsed_s);
	sw = model_switchover_json(sv, t, m);
	if (sw)
		json_object_set_new(root, "switchover", sw);
	return json_print(stdout, root);
}

static void print_availability_text(const struct topology_plan *t, const struct model_report *m,
				    double target, const struct improvement *imp, size_t n_imp)
{
	char a[64], d1[64], d2[64], d3[64];
	const struct series_result *s = &m->service;

	printf("service %s: availability %s (%.2f nines)\n", t->service,
	       model_cli_fmt_availability(s->availability, s->unavailability, a, sizeof(a)),
	       nines(s->unavailability));
	printf("  downtime %s per year, %s per 30 days\n",
	       model_cli_fmt_seconds(s->unavailability * SECONDS_PER_YEAR, d1, sizeof(d1)),
	       model_cli_fmt_seconds(s->unavailability * SECONDS_PER_30_DAYS, d2, sizeof(d2)));
	printf("  mtbf %s, mttr %s (%.3g failures per year)\n",
	       model_cli_fmt_seconds(s->mtbf_s, d1, sizeof(d1)),
	       model_cli_fmt_seconds(s->mttr_s, d2, sizeof(d2)),
	       s->failure_rate * SECONDS_PER_YEAR);
	if (target > 0) {
		double allowed = (1 - target) * SECONDS_PER_YEAR;
		double left = allowed - s->unavailability * SECONDS_PER_YEAR;

		printf("  target %s allows %s per year: %s %s per year\n",
		       model_cli_fmt_availability(target, 1 - target, a, sizeof(a)),
		       model_cli_fmt_seconds(allowed, d1, sizeof(d1)),
		       left >= 0 ? "met, budget left" : "MISSED by",
		       model_cli_fmt_seconds(fabs(left), d2, sizeof(d2)));
	}
	printf("\n%-16s %-12s %-13s %-15s %-12s %-10s %-10s %s\n", "component", "needs",
	       "method", "availability", "down/year", "mtbf", "mttr", "birnbaum");
	for (size_t i = 0; i < m->n_components; i++) {
		const struct component_report *c = &m->components[i];
		char reps[32];

		snprintf(reps, sizeof(reps), "%d of %d%s", c->params.needs, c->params.replicas,
			 c->params.redundancy == REDUNDANCY_COLD ? " cold" : "");
		printf("%-16s %-12s %-13s %-15s %-12s %-10s %-10s ", c->c->name, reps,
		       method_name(c->result.method),
		       model_cli_fmt_availability(c->result.availability, c->result.unavailability,
						  a, sizeof(a)),
		       model_cli_fmt_seconds(c->result.unavailability * SECONDS_PER_YEAR, d1,
					     sizeof(d1)),
		       model_cli_fmt_seconds(c->result.mtbf_s, d2, sizeof(d2)),
		       model_cli_fmt_seconds(c->result.mttr_s, d3, sizeof(d3)));
		if (c->required)
			printf("%.6f\n", c->birnbaum);
		else
			printf("(not required)\n");
	}
	printf("\nimprovements, by service downtime saved per year:\n");
	for (size_t i = 0; i < n_imp && i < 10; i++)
		printf("  %2zu. %-16s %-12s saves %s (service %s)\n", i + 1, imp[i].component,
		       strcmp(imp[i].action, "halve_mttr") == 0 ? "halve mttr" : "add a replica",
		       model_cli_fmt_seconds(imp[i].saved_s, d1, sizeof(d1)),
		       model_cli_fmt_availability(imp[i].availability, 1 - imp[i].availability, a,
					sizeof(a)));
}

static int run_availability(struct cli *cli, int argc, char **argv)
{
	const struct topology_plan *t;
	_cleanup_(model_report_freep) struct model_report *m = NULL;
	_cleanup_free_ struct improvement *imp = NULL;
	_cleanup_free_ const struct component_report **by_birnbaum = NULL;
	_cleanup_(model_switchover_view_release) struct switchover_view sv = { 0 };
	struct switchover_source src = { 0 };
	size_t n_imp = 0, n_req = 0;
	double target;
	int code, r;
	const struct cli_option options[] = {
		{ CLI_COLUMN(24) },
		{ CLI_STRING("agent", 0, &src.agent_url, "URL",
			     "the measured failovers from this agent's API") },
		{ CLI_STRING("token-file", 0, &src.token_file, "FILE",
			     "its API token (default: agent.token_file)") },
		{ CLI_STRING("state-db", 0, &src.state_db, "FILE",
			     "the measured failovers from this state database\n"
			     "(default: <agent.state_dir>/state.db of the plan)") },
		{}
	};

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_NO_OPERANDS);
	if (code != CLI_CONTINUE)
		return code;
	code = model_cli_load_topology(cli, true, &t);
	if (code != 0)
		return code;
	if (src.agent_url && src.state_db)
		return cli_usage_error(cli, "give --agent or --state-db, not both");
	r = model_evaluate(t, &m);
	if (r < 0) {
		log_error_errno(r, "cannot solve the availability model");
		return EXIT_FAIL;
	}
	code = model_switchover_view(cli, t, &src, &sv);
	if (code != 0)
		return code;
	imp = rank_improvements(m, &n_imp);
	by_birnbaum = calloc(m->n_components + 1, sizeof(*by_birnbaum));
	if (!imp || !by_birnbaum) {
		log_error("out of memory");
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < m->n_components; i++)
		if (m->components[i].required)
			by_birnbaum[n_req++] = &m->components[i];
	qsort(by_birnbaum, n_req, sizeof(*by_birnbaum), cmp_birnbaum);
	target = cli->plan->targets.availability;
	if (cli->json)
		print_availability_json(t, m, target, imp, n_imp, by_birnbaum, n_req, &sv);
	else {
		print_availability_text(t, m, target, imp, n_imp);
		model_switchover_print(&sv, t, m);
	}
	/* Missing the target is a finding: exit 3, so a pipeline can gate on it. */
	return target > 0 && m->service.availability < target ? EXIT_PROBLEMS : EXIT_OK;
}

const struct command cmd_model_availability = {
	"availability", "steady-state availability of the service and its components",
	"model availability [-c PLAN] [--agent URL | --state-db FILE] [--json]\n\n"
	"Computes, from the plan's topology: section, the steady-state availability of\n"
	"every component and of the service, its downtime per year and per 30 days, its\n"
	"nines, MTBF and MTTR, the error budget left against targets.availability, and\n"
	"which change buys the most: Birnbaum importance, and the service downtime saved\n"
	"if a component's MTTR were halved or it had one more replica.\n"
	"Exact methods: closed forms for independent repairs, a Markov chain for shared\n"
	"repair crews and cold standby (docs/models.md).\n"
	"A component that is a cluster service (or declares switchover:) shows its\n"
	"switch-over time, modelled and measured (the failovers its cluster took,\n"
	"from an agent's API or its state database), and the availability with each.\n"
	"Exit status 3 when the model misses targets.availability.\n",
	run_availability,
};
