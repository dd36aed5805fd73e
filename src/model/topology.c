#include "model/topology.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"

const char *const lifetime_dist_names[] = { "exponential", "weibull", "lognormal", NULL };
static const char *const redundancy_names[] = { "active", "cold", NULL };

static const struct conf_field component_fields[] = {
	CONF_FIELD("name", CONF_STRING, struct topo_component, name, CONF_REQUIRED),
	CONF_FIELD("mtbf", CONF_DURATION, struct topo_component, mtbf, 0),
	CONF_FIELD("mttr", CONF_DURATION, struct topo_component, mttr, 0),
	CONF_FIELD("availability", CONF_PERCENT, struct topo_component, availability, 0),
	CONF_RANGE("replicas", CONF_INT, struct topo_component, replicas, 0, 1,
		   TOPOLOGY_MAX_REPLICAS),
	CONF_RANGE("needs", CONF_INT, struct topo_component, needs, 0, 1, TOPOLOGY_MAX_REPLICAS),
	CONF_RANGE("repair_crews", CONF_INT, struct topo_component, repair_crews, 0, 1,
		   TOPOLOGY_MAX_REPLICAS),
	CONF_ENUM_FIELD("redundancy", struct topo_component, redundancy, 0, redundancy_names),
	CONF_FIELD("switch_success", CONF_PERCENT, struct topo_component, switch_success, 0),
	CONF_FIELD("switchover", CONF_DURATION, struct topo_component, switchover, 0),
	CONF_FIELD("cluster_service", CONF_STRING, struct topo_component, cluster_service, 0),
	CONF_FIELD("depends_on", CONF_STRV, struct topo_component, depends_on, 0),
	CONF_ENUM_FIELD("mtbf_dist", struct topo_component, mtbf_dist, 0, lifetime_dist_names),
	CONF_ENUM_FIELD("mttr_dist", struct topo_component, mttr_dist, 0, lifetime_dist_names),
	CONF_RANGE("mtbf_shape", CONF_DOUBLE, struct topo_component, mtbf_shape, 0, 0.05, 100),
	CONF_RANGE("mttr_shape", CONF_DOUBLE, struct topo_component, mttr_shape, 0, 0.05, 100),
	{}
};

static void component_init(void *elem)
{
	struct topo_component *c = elem;

	c->replicas = 1;
	c->needs = 1;
	c->switch_success = 1;
}

static void component_release(void *elem)
{
	struct topo_component *c = elem;

	conf_free_fields(component_fields, c);
}

/* Checks a lifetime or repair distribution: a shape goes with weibull or
 * lognormal; a shape alone means weibull. */
static int check_dist(struct conf_ctx *ctx, const struct conf_node *map, const char *what,
		      int *dist, double shape, bool *has_shape)
{
	char dist_key[16], shape_key[16];
	const struct conf_node *dist_node, *shape_node;

	snprintf(dist_key, sizeof(dist_key), "%s_dist", what);
	snprintf(shape_key, sizeof(shape_key), "%s_shape", what);
	dist_node = conf_map_get(map, dist_key);
	shape_node = conf_map_get(map, shape_key);
	*has_shape = shape_node != NULL;
	(void)shape;
	if (shape_node && !dist_node)
		*dist = DIST_WEIBULL;
	if (*dist == DIST_EXPONENTIAL && shape_node)
		return conf_errorf(ctx, shape_node,
				   "'%s' applies to %s_dist: weibull or lognormal, not exponential",
				   shape_key, what);
	if (*dist != DIST_EXPONENTIAL && !shape_node)
		return conf_errorf(ctx, dist_node,
				   "'%s: %s' needs '%s' (the Weibull shape, or the lognormal sigma)",
				   dist_key, lifetime_dist_names[*dist], shape_key);
	return 0;
}

static int parse_component(struct conf_ctx *ctx, const struct conf_node *item, void *elem)
{
	struct topo_component *c = elem;
	const struct conf_node *n;
	int r;

	r = conf_parse_fields(ctx, item, component_fields, c);
	if (r < 0)
		return r;
	c->line = item->line;
	c->col = item->col;
	if (!c->name[0])
		return conf_errorf(ctx, conf_map_get(item, "name"), "a component needs a name");
	n = conf_map_get(item, "availability");
	if (n && conf_map_get(item, "mtbf"))
		return conf_errorf(ctx, n, "component '%s': give either 'availability' or 'mtbf' "
				   "and 'mttr', not both", c->name);
	if (n) {
		if (c->availability <= 0 || c->availability >= 1)
			return conf_errorf(ctx, n, "component '%s': 'availability' must be above 0%% "
					   "and below 100%%", c->name);
		if (!conf_map_get(item, "mttr"))
			c->mttr = TOPOLOGY_DEFAULT_MTTR;
	} else if (!conf_map_get(item, "mtbf")) {
		return conf_errorf(ctx, item, "component '%s' needs 'mtbf' and 'mttr' (or "
				   "'availability' for a bought service)", c->name);
	} else if (!conf_map_get(item, "mttr")) {
		return conf_errorf(ctx, item, "component '%s' needs 'mttr' beside 'mtbf'", c->name);
	}
	if ((n = conf_map_get(item, "mtbf")) && c->mtbf == 0)
		return conf_errorf(ctx, n, "component '%s': 'mtbf' must be positive", c->name);
	if ((n = conf_map_get(item, "mttr")) && c->mttr == 0)
		return conf_errorf(ctx, n, "component '%s': 'mttr' must be positive", c->name);
	if (c->needs > c->replicas)
		return conf_errorf(ctx, conf_map_get(item, "needs"),
				   "component '%s' needs %lld replicas but has only %lld",
				   c->name, (long long)c->needs, (long long)c->replicas);
	c->crews_given = conf_map_get(item, "repair_crews") != NULL;
	if (!c->crews_given)
		c->repair_crews = c->replicas;
	else if (c->repair_crews > c->replicas)
		return conf_errorf(ctx, conf_map_get(item, "repair_crews"),
				   "component '%s': %lld repair crews for %lld replicas (at most one "
				   "crew works on a replica)", c->name, (long long)c->repair_crews,
				   (long long)c->replicas);
	n = conf_map_get(item, "switch_success");
	if (n && c->redundancy != REDUNDANCY_COLD)
		return conf_errorf(ctx, n, "component '%s': 'switch_success' applies to "
				   "'redundancy: cold' only", c->name);
	n = conf_map_get(item, "switchover");
	if (n && c->replicas <= c->needs)
		return conf_errorf(ctx, n, "component '%s': 'switchover' needs a standby to switch "
				   "to (replicas above needs)", c->name);
	r = check_dist(ctx, item, "mtbf", &c->mtbf_dist, c->mtbf_shape, &c->has_mtbf_shape);
	if (r < 0)
		return r;
	return check_dist(ctx, item, "mttr", &c->mttr_dist, c->mttr_shape, &c->has_mttr_shape);
}

static int parse_components(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct topology_plan *t = (struct topology_plan *)((char *)field -
		offsetof(struct topology_plan, components));
	void *array = NULL;
	size_t n = 0;
	int r;

	if (node->type == CONF_NODE_SEQ && node->n > TOPOLOGY_MAX_COMPONENTS)
		return conf_errorf(ctx, node, "more than %d components", TOPOLOGY_MAX_COMPONENTS);
	r = conf_parse_list(ctx, node, sizeof(struct topo_component), component_init,
			    parse_component, component_release, &array, &n);
	if (r < 0)
		return r;
	t->components = array;
	t->n_components = n;
	return 0;
}

static const struct conf_field topology_fields[] = {
	CONF_FIELD("service", CONF_STRING, struct topology_plan, service, CONF_REQUIRED),
	CONF_FIELD("requires", CONF_STRV, struct topology_plan, requires, CONF_REQUIRED),
	CONF_CUSTOM_FIELD("components", struct topology_plan, components, CONF_REQUIRED,
			  parse_components),
	{}
};

void topology_plan_free(struct topology_plan *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_components; i++)
		component_release(&t->components[i]);
	free(t->components);
	free(t->service);
	strv_free(t->requires);
	free(t->cycle);
	free(t->file);
	free(t);
}


ssize_t topology_find(const struct topology_plan *t, const char *name)
{
	for (size_t i = 0; i < t->n_components; i++)
		if (strcmp(t->components[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

/* The node of the i-th item of a list-valued key, for messages. */
static const struct conf_node *list_item(const struct conf_node *map, const char *key, size_t i)
{
	const struct conf_node *list = conf_map_get(map, key);

	if (list && list->type == CONF_NODE_SEQ && i < list->n)
		return list->items[i];
	return list ? list : map;
}

int topology_plan_parse(struct conf_ctx *ctx, const struct conf_node *node,
			struct topology_plan **ret)
{
	_cleanup_(topology_plan_freep) struct topology_plan *t = calloc(1, sizeof(*t));
	const struct conf_node *comps;
	int r;

	if (!t)
		return -ENOMEM;
	r = conf_parse_fields(ctx, node, topology_fields, t);
	if (r < 0)
		return r;
	if (ctx->file && !(t->file = strdup(ctx->file)))
		return -ENOMEM;
	if (!t->requires[0])
		return conf_errorf(ctx, conf_map_get(node, "requires"),
				   "'requires' must name at least one component");
	comps = conf_map_get(node, "components");
	for (size_t i = 0; i < t->n_components; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(t->components[i].name, t->components[j].name) == 0)
				return conf_errorf(ctx, conf_map_get(comps->items[i], "name"),
						   "component '%s' is defined twice",
						   t->components[i].name);
	for (size_t i = 0; t->requires[i]; i++)
		if (topology_find(t, t->requires[i]) < 0)
			return conf_errorf(ctx, list_item(node, "requires", i),
					   "'requires' names '%s', which is not a component",
					   t->requires[i]);
	for (size_t i = 0; i < t->n_components; i++) {
		struct topo_component *c = &t->components[i];

		if (strcmp(c->name, t->service) == 0)
			return conf_errorf(ctx, conf_map_get(comps->items[i], "name"),
					   "component '%s' has the name of the service", c->name);
		for (size_t j = 0; c->depends_on && c->depends_on[j]; j++) {
			if (topology_find(t, c->depends_on[j]) < 0)
				return conf_errorf(ctx, list_item(comps->items[i], "depends_on", j),
						   "component '%s' depends on '%s', which is not a "
						   "component", c->name, c->depends_on[j]);
		}
	}
	r = topology_plan_validate(ctx, t);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(t);
	return 0;
}

/* Depth-first search for a cycle along depends_on; colour 0 new, 1 on the
 * path, 2 done. Iterative: a plan may hold thousands of components. */
static int find_cycle(struct topology_plan *t)
{
	size_t n = t->n_components;
	_cleanup_free_ unsigned char *colour = calloc(n ? n : 1, 1);
	_cleanup_free_ size_t *stack = calloc(n ? n : 1, sizeof(size_t));
	_cleanup_free_ size_t *next = calloc(n ? n : 1, sizeof(size_t));

	if (!colour || !stack || !next)
		return -ENOMEM;
	for (size_t root = 0; root < n; root++) {
		size_t depth = 0;

		if (colour[root])
			continue;
		stack[depth++] = root;
		colour[root] = 1;
		next[root] = 0;
		while (depth > 0) {
			size_t v = stack[depth - 1];
			char **deps = t->components[v].depends_on;

			if (!deps || !deps[next[v]]) {
				colour[v] = 2;
				depth--;
				continue;
			}
			size_t w = (size_t)topology_find(t, deps[next[v]++]);

			if (colour[w] == 0) {
				colour[w] = 1;
				next[w] = 0;
				stack[depth++] = w;
			} else if (colour[w] == 1) {
				struct buf b;
				size_t from = 0;

				while (stack[from] != w)
					from++;
				buf_init(&b, 1u << 20);
				for (size_t i = from; i < depth; i++)
					buf_printf(&b, "%s -> ", t->components[stack[i]].name);
				buf_printf(&b, "%s", t->components[w].name);
				t->cycle = buf_steal(&b, NULL);
				if (!t->cycle)
					return -ENOMEM;
				t->cycle_line = t->components[v].line;
				t->cycle_col = t->components[v].col;
				return 1;
			}
		}
	}
	return 0;
}

int topology_plan_validate(struct conf_ctx *ctx, struct topology_plan *t)
{
	int r;

	(void)ctx;
	free(t->cycle);
	t->cycle = NULL;
	r = find_cycle(t);
	return r < 0 ? r : 0;
}

int topology_check_acyclic(const struct topology_plan *t, char **ret_error)
{
	char *msg;

	if (!t->cycle)
		return 0;
	if (asprintf(&msg, "%s:%u:%u: dependency cycle %s: the availability model needs "
		     "acyclic depends_on ('bcdr model graph' shows the cycle)",
		     t->file ? t->file : "<plan>", t->cycle_line, t->cycle_col, t->cycle) < 0)
		return -ENOMEM;
	*ret_error = msg;
	return -BCDR_ERR_CONFIG;
}

void topology_required(const struct topology_plan *t, bool *required)
{
	size_t n = t->n_components, top = 0;
	_cleanup_free_ size_t *stack = calloc(n ? n : 1, sizeof(size_t));

	memset(required, 0, n * sizeof(bool));
	if (!stack)
		return;
	for (size_t i = 0; t->requires[i]; i++) {
		ssize_t k = topology_find(t, t->requires[i]);

		if (k >= 0 && !required[k]) {
			required[k] = true;
			stack[top++] = (size_t)k;
		}
	}
	while (top > 0) {
		const struct topo_component *c = &t->components[stack[--top]];

		for (size_t j = 0; c->depends_on && c->depends_on[j]; j++) {
			ssize_t k = topology_find(t, c->depends_on[j]);

			if (k >= 0 && !required[k]) {
				required[k] = true;
				stack[top++] = (size_t)k;
			}
		}
	}
}
