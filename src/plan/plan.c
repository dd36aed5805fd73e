#include "plan/plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/err.h"

static const struct conf_field target_fields[] = {
	CONF_FIELD("availability", CONF_PERCENT, struct plan_targets, availability, 0),
	CONF_FIELD("rto", CONF_DURATION, struct plan_targets, rto, 0),
	CONF_FIELD("rpo", CONF_DURATION, struct plan_targets, rpo, 0),
	{}
};

/* lb */
static int parse_balancers(struct conf_ctx *ctx, const struct conf_node *node, struct plan *plan)
{
	return lb_plan_parse(ctx, node, &plan->balancers);
}

static int parse_targets(struct conf_ctx *ctx, const struct conf_node *node, struct plan *plan)
{
	return conf_parse_fields(ctx, node, target_fields, &plan->targets);
}

/* model */
static int parse_topology(struct conf_ctx *ctx, const struct conf_node *node, struct plan *plan)
{
	return topology_plan_parse(ctx, node, &plan->topology);
}

/* cluster */
static int parse_cluster(struct conf_ctx *ctx, const struct conf_node *node, struct plan *plan)
{
	return cluster_plan_parse_cluster(ctx, node, &plan->cluster);
}

static int parse_services(struct conf_ctx *ctx, const struct conf_node *node, struct plan *plan)
{
	return cluster_plan_parse_services(ctx, node, &plan->cluster);
}

/* agent, monitor, alert, act */
static int parse_actions(struct conf_ctx *ctx, const struct conf_node *node, struct plan *plan)
{
	return act_plan_parse(ctx, node, &plan->actions);
}

static int parse_alerts(struct conf_ctx *ctx, const struct conf_node *node, struct plan *plan)
{
	return alert_plan_parse(ctx, node, &plan->alerts);
}

static int parse_checks(struct conf_ctx *ctx, const struct conf_node *node, struct plan *plan)
{
	return monitor_plan_parse(ctx, node, &plan->checks);
}

/* agent */
static int parse_agent(struct conf_ctx *ctx, const struct conf_node *node, struct plan *plan)
{
	return agent_settings_parse(ctx, node, &plan->agent);
}

/* Top-level sections and the engine parser of each; any other key is an
 * "unknown section" error at its line and column. */
static const struct section {
	const char *key;
	int (*parse)(struct conf_ctx *ctx, const struct conf_node *node, struct plan *plan);
} sections[] = {
	{ "targets", parse_targets },

	{ "repositories", backup_plan_parse_repositories },
	{ "backups", backup_plan_parse_backups },

	{ "agent", parse_agent },
	{ "checks", parse_checks },
	{ "actions", parse_actions },
	{ "alerts", parse_alerts },

	{ "balancers", parse_balancers },

	{ "topology", parse_topology },

	{ "cluster", parse_cluster },
	{ "services", parse_services },

	{}
};

/* agent, monitor, alert, act: a check's actions: name actions of the plan */
static int check_action_names(struct conf_ctx *ctx, const struct conf_node *root,
			      struct plan *plan)
{
	const struct conf_node *checks = conf_map_get(root, "checks");

	if (!plan->checks)
		return 0;
	for (size_t i = 0; i < plan->checks->n_checks; i++) {
		const struct check_def *c = &plan->checks->checks[i];
		const struct conf_node *at = checks;
		int r;

		for (size_t k = 0; checks && checks->type == CONF_NODE_SEQ && k < checks->n; k++) {
			const struct conf_node *name = conf_map_get(checks->items[k], "name");

			if (name && name->value && strcmp(name->value, c->name) == 0 &&
			    conf_map_get(checks->items[k], "actions"))
				at = conf_map_get(checks->items[k], "actions");
		}
		r = act_plan_check_names(ctx, plan->actions, c->name, c->actions, at);
		if (r < 0)
			return r;
	}
	return 0;
}

/* monitor: a backup check names a job of backups: */
static int check_backup_jobs(struct conf_ctx *ctx, const struct conf_node *root, struct plan *plan)
{
	const struct conf_node *checks = conf_map_get(root, "checks");

	for (size_t i = 0; plan->checks && i < plan->checks->n_checks; i++) {
		const struct check_def *c = &plan->checks->checks[i];
		const struct conf_node *at = checks;

		if (c->kind != PROBE_BACKUP || backup_plan_job(plan->backup, c->probe.backup.job))
			continue;
		if (checks && checks->type == CONF_NODE_SEQ && i < checks->n &&
		    conf_map_get(checks->items[i], "backup"))
			at = conf_map_get(checks->items[i], "backup");
		return conf_errorf(ctx, at, "check '%s' watches backup job '%s', which is not in "
				   "backups:", c->name, c->probe.backup.job);
	}
	return 0;
}

/* lb: a backend that follows a service needs the service in the plan. */
static int check_backend_services(struct conf_ctx *ctx, const struct conf_node *root,
				  struct plan *plan)
{
	const struct conf_node *bals = conf_map_get(root, "balancers");
	const struct cluster_plan *cp = plan->cluster;

	for (size_t b = 0; plan->balancers && b < plan->balancers->n_balancers; b++) {
		const struct lb_balancer_conf *bal = &plan->balancers->balancers[b];
		const struct conf_node *bn = bals && b < bals->n ? bals->items[b] : root;
		const struct conf_node *bes = conf_map_get(bn, "backends");

		for (size_t k = 0; k < bal->n_backends; k++) {
			const struct lb_backend_conf *be = &bal->backends[k];
			const struct conf_node *at = bes && k < bes->n ? bes->items[k] : bn;
			bool known = false;

			if (!be->service)
				continue;
			if (!cp || !cp->has_cluster)
				return conf_errorf(ctx, at,
						   "balancer '%s' backend '%s': service: needs a "
						   "cluster: section (the leader is read from it)",
						   bal->name, be->name);
			for (size_t i = 0; i < cp->n_services; i++)
				known = known || !strcmp(cp->services[i].name, be->service);
			if (!known)
				return conf_errorf(ctx, at,
						   "balancer '%s' backend '%s': service '%s' is not "
						   "in services:",
						   bal->name, be->name, be->service);
		}
	}
	return 0;
}

/* Checks run once every section is parsed: references across sections. */
static int (*const validators[])(struct conf_ctx *ctx, const struct conf_node *root,
				 struct plan *plan) = {
	/* backup */
	backup_plan_validate,

	/* agent, monitor, alert, act */
	check_action_names,
	check_backup_jobs,

	/* lb */
	check_backend_services,

	/* model */

	/* cluster */
	cluster_plan_validate,

	NULL,
};

const char *plan_default_path(void)
{
	static const char *const candidates[] = { "bcdr.yaml", "/etc/bcdr/bcdr.yaml" };

	for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
		if (access(candidates[i], F_OK) == 0)
			return candidates[i];
	return NULL;
}

int plan_new_empty(struct plan **ret)
{
	struct plan *plan = calloc(1, sizeof(*plan));

	if (!plan)
		return -ENOMEM;
	*ret = plan;
	return 0;
}

void plan_free(struct plan *plan)
{
	if (!plan)
		return;
	/* backup */
	backup_plan_free(plan->backup);

	/* agent, monitor, alert, act */
	act_plan_free(plan->actions);
	alert_plan_free(plan->alerts);
	monitor_plan_free(plan->checks);
	agent_settings_free(plan->agent);

	/* lb */
	lb_plan_free(plan->balancers);

	/* model */
	topology_plan_free(plan->topology);

	/* cluster */
	cluster_plan_free(plan->cluster);

	free(plan->path);
	free(plan);
}

static int plan_from_doc(struct conf_ctx *ctx, const struct conf_doc *doc, struct plan *plan)
{
	const struct conf_node *root = doc->root;
	int r;

	if (!root)
		return 0; /* an empty file is an empty plan */
	if (root->type != CONF_NODE_MAP)
		return conf_errorf(ctx, root, "a plan is a map of sections (targets:, backups:, ...)");
	for (size_t i = 0; i < root->n; i++) {
		const struct conf_node *key = root->pairs[i].key;
		const struct section *s = sections;

		while (s->key && strcmp(s->key, key->value) != 0)
			s++;
		if (!s->key)
			return conf_errorf(ctx, key, "unknown section '%s'", key->value);
		if (!s->parse)
			return conf_errorf(ctx, key, "section '%s' is not supported by this build of bcdr",
					   key->value);
		r = s->parse(ctx, root->pairs[i].value, plan);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; validators[i]; i++) {
		r = validators[i](ctx, root, plan);
		if (r < 0)
			return r;
	}
	return 0;
}

static int plan_finish(struct conf_ctx *ctx, int r, struct conf_doc *doc, const char *path,
		       struct plan **ret, char **ret_error)
{
	_cleanup_(plan_freep) struct plan *plan = NULL;

	if (r >= 0)
		r = plan_new_empty(&plan);
	if (r >= 0 && path && !(plan->path = strdup(path)))
		r = -ENOMEM;
	if (r >= 0)
		r = plan_from_doc(ctx, doc, plan);
	if (r < 0) {
		if (ret_error)
			*ret_error = ctx->error ? TAKE_PTR(ctx->error) : strdup(err_str(r));
		conf_ctx_release(ctx);
		return r == -BCDR_ERR_CONFIG || r == -ENOMEM ? r : -BCDR_ERR_CONFIG;
	}
	conf_ctx_release(ctx);
	*ret = TAKE_PTR(plan);
	return 0;
}

int plan_load(const char *path, struct plan **ret, char **ret_error)
{
	struct conf_ctx ctx = { .file = path };
	_cleanup_(conf_doc_freep) struct conf_doc *doc = NULL;
	int r = conf_doc_load(&ctx, path, &doc);

	return plan_finish(&ctx, r, doc, path, ret, ret_error);
}

int plan_parse(const char *name, const char *text, size_t len, struct plan **ret, char **ret_error)
{
	struct conf_ctx ctx = { .file = name };
	_cleanup_(conf_doc_freep) struct conf_doc *doc = NULL;
	int r = conf_doc_parse(&ctx, name, text, len, &doc);

	return plan_finish(&ctx, r, doc, NULL, ret, ret_error);
}
