/* The switch-over times of `bcdr model availability` (cli/model-switchover.h). */
#include "cli/model-switchover.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/client.h"
#include "agent/settings.h"
#include "cli/agentcli.h"
#include "cli/model-cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "plan/plan.h"

/* The cluster service a component stands for: cluster_service:, else a
 * service of the plan's cluster of its name, else (with switchover:) its
 * name; NULL when it has nothing to do with switch-overs. */
static const char *service_of(const struct plan *p, const struct topo_component *c)
{
	if (c->cluster_service)
		return c->cluster_service;
	for (size_t i = 0; p->cluster && i < p->cluster->n_services; i++)
		if (strcmp(p->cluster->services[i].name, c->name) == 0)
			return c->name;
	return c->switchover ? c->name : NULL;
}

static int from_agent(struct cli *cli, const struct switchover_source *src, json_t **ret,
		      char **ret_source)
{
	struct agentcli ac = { .url = src->agent_url, .token_file = src->token_file };
	_cleanup_json_ json_t *j = NULL;
	int code = agentcli_request(cli, &ac, "GET", "/api/v1/cluster", NULL, &j);
	json_t *doc = json_object_get(j, "failovers");

	if (code == 0 && asprintf(ret_source, "%s/api/v1/cluster", agent_client_url(ac.client)) < 0)
		*ret_source = NULL;
	agentcli_release(&ac);
	if (code != 0)
		return code;
	if (!json_is_object(doc)) {
		log_error("the agent's /api/v1/cluster has no failovers (an older agent, or its "
			  "state cannot be read)");
		return EXIT_FAIL;
	}
	*ret = json_incref(doc);
	return 0;
}

/* state.db, read-only. *ret stays NULL (with a note) when it is not there
 * and was not asked for by name. */
static int from_db(const char *path, bool named, json_t **ret, char **ret_note)
{
	_cleanup_free_ char *error = NULL;

	if (!named && access(path, F_OK) < 0) {
		if (asprintf(ret_note, "no failovers measured: '%s' does not exist (pass --agent URL "
			     "or --state-db FILE)", path) < 0)
			*ret_note = NULL;
		return 0;
	}
	if (failover_log_read(path, ret, &error) < 0) {
		log_error("%s", error ? error : "out of memory");
		return EXIT_FAIL;
	}
	return 0;
}

static int read_source(struct cli *cli, const struct switchover_source *src, json_t **ret,
		       struct switchover_view *v)
{
	_cleanup_free_ char *dflt = NULL;
	const char *path = src->state_db;

	if (src->agent_url)
		return from_agent(cli, src, ret, &v->source);
	if (!path)
		path = dflt = agent_state_db_path(cli->plan->agent);
	if (!path) {
		v->note = strdup("no failovers measured: the plan has no agent: section (pass "
				 "--agent URL or --state-db FILE)");
		return 0;
	}
	v->source = strdup(path);
	return from_db(path, src->state_db != NULL, ret, &v->note);
}

static int fill_row(const json_t *doc, struct switchover_row *row)
{
	for (int k = FAILOVER_UNPLANNED; k <= FAILOVER_SWITCHOVER; k++) {
		_cleanup_free_ double *times = NULL;
		size_t n = 0;
		int r = doc ? failover_log_times(doc, row->service, k, &times, &n) : 0;

		if (r < 0)
			return r;
		failover_stats_of(times, n, k == FAILOVER_UNPLANNED ? &row->failovers
								   : &row->switchovers);
	}
	return 0;
}

/* The model again, each measured component with the mean of its unplanned
 * failovers as its switch-over time: the mean, as downtime adds up. */
static int evaluate_measured(const struct topology_plan *t, struct switchover_view *v)
{
	_cleanup_free_ struct unit_params *params = calloc(t->n_components + 1, sizeof(*params));
	bool any = false;

	if (!params)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_components; i++)
		unit_params_from(&t->components[i], &params[i]);
	for (size_t i = 0; i < v->n; i++)
		if (v->rows[i].failovers.count) {
			params[v->rows[i].comp].switchover_s = v->rows[i].failovers.mean_s;
			any = true;
		}
	return any ? model_evaluate_with(t, params, &v->measured) : 0;
}

int model_switchover_view(struct cli *cli, const struct topology_plan *t,
			  const struct switchover_source *src, struct switchover_view *ret)
{
	struct switchover_view v = { .rows = calloc(t->n_components + 1, sizeof(*v.rows)) };
	_cleanup_json_ json_t *doc = NULL;
	int code, r = 0;

	if (!v.rows)
		return log_error("out of memory"), EXIT_FAIL;
	for (size_t i = 0; i < t->n_components; i++) {
		const char *s = service_of(cli->plan, &t->components[i]);

		if (s)
			v.rows[v.n++] = (struct switchover_row){
				.comp = i, .service = s,
				.modelled_s = (double)t->components[i].switchover / USEC_PER_SEC,
			};
	}
	/* nothing to measure: no source is read (the plain model stays offline) */
	code = v.n ? read_source(cli, src, &doc, &v) : 0;
	for (size_t i = 0; code == 0 && r >= 0 && i < v.n; i++)
		r = fill_row(doc, &v.rows[i]);
	if (code == 0 && r >= 0)
		r = evaluate_measured(t, &v);
	if (code == 0 && r < 0) {
		log_error_errno(r, "cannot use the measured failovers");
		code = EXIT_FAIL;
	}
	if (code != 0) {
		model_switchover_view_release(&v);
		return code;
	}
	*ret = v;
	return 0;
}

void model_switchover_view_release(struct switchover_view *v)
{
	free(v->rows);
	free(v->source);
	free(v->note);
	model_report_free(v->measured);
	*v = (struct switchover_view){ 0 };
}

/* Switch-over times are seconds: "3.10s" reads better than "3100ms". */
static const char *fmt_time(double s, char *out, size_t size)
{
	if (s >= 0 && s < 60) {
		snprintf(out, size, "%.2fs", s);
		return out;
	}
	return model_cli_fmt_seconds(s, out, size);
}

static json_t *stats_json(const struct failover_stats *s)
{
	json_t *j = json_object();

	json_set_int(j, "count", (long long)s->count);
	json_set_real(j, "median_s", s->median_s);
	json_set_real(j, "p95_s", s->p95_s);
	json_set_real(j, "mean_s", s->mean_s);
	json_set_real(j, "max_s", s->max_s);
	return j;
}

/* The component's result with the measured figure (the planned one when
 * nothing was measured). */
static const struct unit_result *measured_result(const struct switchover_view *v,
						 const struct model_report *m, size_t comp)
{
	return v->measured ? &v->measured->components[comp].result : &m->components[comp].result;
}

json_t *model_switchover_json(const struct switchover_view *v, const struct topology_plan *t,
			      const struct model_report *m)
{
	json_t *j, *comps;

	if (!v->n)
		return NULL;
	j = json_object();
	comps = json_object();
	json_set_str(j, "source", v->source);
	json_set_str(j, "note", v->note);
	for (size_t i = 0; i < v->n; i++) {
		const struct switchover_row *row = &v->rows[i];
		json_t *o = json_object();

		json_set_str(o, "cluster_service", row->service);
		json_set_real(o, "modelled_s", row->modelled_s);
		json_object_set_new(o, "measured", stats_json(&row->failovers));
		json_object_set_new(o, "switchovers", stats_json(&row->switchovers));
		json_set_real(o, "availability_modelled", m->components[row->comp].result.availability);
		json_set_real(o, "availability_measured",
			      measured_result(v, m, row->comp)->availability);
		json_object_set_new(comps, t->components[row->comp].name, o);
	}
	json_object_set_new(j, "components", comps);
	json_set_real(j, "service_availability_modelled", m->service.availability);
	json_set_real(j, "service_availability_measured",
		      (v->measured ? v->measured : m)->service.availability);
	return j;
}

void model_switchover_print(const struct switchover_view *v, const struct topology_plan *t,
			    const struct model_report *m)
{
	char a[64], b[64], d1[64], d2[64], d3[64];
	const struct model_report *mm = v->measured ? v->measured : m;

	if (!v->n)
		return;
	printf("\nswitch-over time, modelled vs measured (%s):\n",
	       v->source ? v->source : "nothing measured");
	if (v->note)
		printf("  %s\n", v->note);
	printf("  %-16s %-10s %-26s %-15s %s\n", "component", "modelled",
	       "measured: median p95 (n)", "availability", "with measured");
	for (size_t i = 0; i < v->n; i++) {
		const struct switchover_row *row = &v->rows[i];
		const struct unit_result *pu = &m->components[row->comp].result;
		const struct unit_result *mu = measured_result(v, m, row->comp);
		char meas[160];

		if (row->failovers.count)
			snprintf(meas, sizeof(meas), "%s %s (%llu)",
				 fmt_time(row->failovers.median_s, d2, sizeof(d2)),
				 fmt_time(row->failovers.p95_s, d3, sizeof(d3)),
				 (unsigned long long)row->failovers.count);
		else
			snprintf(meas, sizeof(meas), "none");
		printf("  %-16s %-10s %-26s %-15s %s\n", t->components[row->comp].name,
		       row->modelled_s > 0 ? fmt_time(row->modelled_s, d1, sizeof(d1))
					   : "instant",
		       meas, model_cli_fmt_availability(pu->availability, pu->unavailability, a,
							sizeof(a)),
		       model_cli_fmt_availability(mu->availability, mu->unavailability, b,
						  sizeof(b)));
		if (row->switchovers.count)
			printf("  %-16s switchovers (planned): median %s (%llu), not in the model\n",
			       "", fmt_time(row->switchovers.median_s, d1, sizeof(d1)),
			       (unsigned long long)row->switchovers.count);
	}
	printf("  service: %s modelled, %s with the measured switch-over times\n",
	       model_cli_fmt_availability(m->service.availability, m->service.unavailability, a,
					  sizeof(a)),
	       model_cli_fmt_availability(mm->service.availability, mm->service.unavailability, b,
					  sizeof(b)));
}
