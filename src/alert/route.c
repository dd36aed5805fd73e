#include "alert/route.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/hostport.h"

#define UNSET ((usec_t)-1)
#define MAX_ROUTE_DEPTH 16

/* ---- receivers ---- */

static const struct conf_field email_fields[] = {
	CONF_FIELD("to", CONF_STRV, struct alert_email, to, CONF_REQUIRED),
	CONF_FIELD("from", CONF_STRING, struct alert_email, from, CONF_REQUIRED),
	CONF_FIELD("smtp", CONF_STRING, struct alert_email, smtp, CONF_REQUIRED),
	CONF_FIELD("username", CONF_STRING, struct alert_email, username, 0),
	CONF_FIELD("password_file", CONF_STRING, struct alert_email, password_file, 0),
	CONF_FIELD("require_tls", CONF_BOOL, struct alert_email, require_tls, 0),
	{}
};

static const struct conf_field webhook_fields[] = {
	CONF_FIELD("url", CONF_STRING, struct alert_webhook, url, CONF_REQUIRED),
	CONF_FIELD("alertmanager", CONF_BOOL, struct alert_webhook, alertmanager, 0),
	CONF_FIELD("bearer_token_file", CONF_STRING, struct alert_webhook, bearer_token_file, 0),
	CONF_RANGE("max_alerts", CONF_UINT, struct alert_webhook, max_alerts, 0, 0, 100000),
	{}
};

static const struct conf_field exec_fields[] = {
	CONF_FIELD("argv", CONF_STRV, struct alert_exec, argv, CONF_REQUIRED),
	{}
};

static const struct conf_field log_fields[] = {
	CONF_FIELD("path", CONF_STRING, struct alert_log, path, 0),
	{}
};

static int set_kind(struct conf_ctx *ctx, const struct conf_node *node, struct alert_receiver *r,
		    enum alert_receiver_kind kind)
{
	/* kind starts as -1 (see receiver_init): a second kind is an error */
	if ((int)r->kind != -1)
		return conf_errorf(ctx, node,
				   "a receiver has one kind: email, webhook, exec or log");
	r->kind = kind;
	return 0;
}

static bool url_has_scheme(const char *url, const char *const *schemes)
{
	for (; *schemes; schemes++)
		if (strncmp(url, *schemes, strlen(*schemes)) == 0)
			return true;
	return false;
}

/* True when the smtp:// URL's host is a loopback address; a URL whose host
 * cannot be read is not (TLS stays required). */
static bool smtp_on_loopback(const char *url)
{
	const char *a = strstr(url, "://"), *at;
	char host[HOSTPORT_MAX + 1];
	uint16_t port;
	size_t n;

	if (!a)
		return false;
	a += 3;
	n = strcspn(a, "/?#");
	at = memrchr(a, '@', n); /* smtp://user@host: the user is not the host */
	if (at) {
		n -= (size_t)(at + 1 - a);
		a = at + 1;
	}
	return hostport_split(a, n, HOSTPORT_PORT_OPTIONAL, host, sizeof(host), &port) >= 0 &&
	       hostport_is_loopback(host);
}

static int parse_email(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	static const char *const schemes[] = { "smtp://", "smtps://", NULL };
	struct alert_receiver *r = field;
	int k = set_kind(ctx, node, r, ALERT_RECEIVER_EMAIL);

	if (k < 0)
		return k;
	k = conf_parse_fields(ctx, node, email_fields, &r->email);
	if (k < 0)
		return k;
	if (!r->email.to[0])
		return conf_errorf(ctx, node, "'to' needs at least one address");
	if (!url_has_scheme(r->email.smtp, schemes))
		return conf_errorf(ctx, conf_map_get(node, "smtp"),
				   "'smtp' must be smtp://HOST[:PORT] or smtps://HOST[:PORT], not '%s'",
				   r->email.smtp);
	if (r->email.password_file && !r->email.username)
		return conf_errorf(ctx, conf_map_get(node, "password_file"),
				   "'password_file' needs 'username'");
	/* Credentials and alert text cross the network in clear only when the
	 * plan says so; a relay on this host (postfix on 127.0.0.1) rarely
	 * has a certificate and the mail never leaves the machine. */
	if (!conf_map_get(node, "require_tls"))
		r->email.require_tls = !smtp_on_loopback(r->email.smtp);
	return 0;
}

static int parse_webhook(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	static const char *const schemes[] = { "http://", "https://", NULL };
	struct alert_receiver *r = field;
	int k = set_kind(ctx, node, r, ALERT_RECEIVER_WEBHOOK);

	if (k < 0)
		return k;
	if (node->type == CONF_NODE_SCALAR)
		k = conf_parse_scalar(ctx, node, CONF_STRING, &r->webhook.url);
	else
		k = conf_parse_fields(ctx, node, webhook_fields, &r->webhook);
	if (k < 0)
		return k;
	if (!url_has_scheme(r->webhook.url, schemes))
		return conf_errorf(ctx, node, "a webhook url starts with http:// or https://, not '%s'",
				   r->webhook.url);
	return 0;
}

static int check_argv(struct conf_ctx *ctx, const struct conf_node *node, char **argv)
{
	if (!argv || !argv[0] || !argv[0][0])
		return conf_errorf(ctx, node, "expected a command as a list: [/path/to/program, arg, ...]");
	return 0;
}

static int parse_exec(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct alert_receiver *r = field;
	int k = set_kind(ctx, node, r, ALERT_RECEIVER_EXEC);

	if (k < 0)
		return k;
	if (node->type == CONF_NODE_MAP)
		k = conf_parse_fields(ctx, node, exec_fields, &r->exec);
	else
		k = conf_parse_scalar(ctx, node, CONF_STRV, &r->exec.argv);
	if (k < 0)
		return k;
	return check_argv(ctx, node, r->exec.argv);
}

static int parse_log(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct alert_receiver *r = field;
	int k = set_kind(ctx, node, r, ALERT_RECEIVER_LOG);

	if (k < 0)
		return k;
	if (node->type == CONF_NODE_SCALAR) {
		/* `log: true`, `log: {}` or `log: /path/file` */
		if (strcmp(node->value, "true") == 0 && !node->quoted)
			return 0;
		return conf_parse_scalar(ctx, node, CONF_STRING, &r->log.path);
	}
	return conf_parse_fields(ctx, node, log_fields, &r->log);
}

static const struct conf_field receiver_fields[] = {
	CONF_FIELD("name", CONF_STRING, struct alert_receiver, name, CONF_REQUIRED),
	CONF_RANGE("timeout", CONF_DURATION, struct alert_receiver, timeout, 0, 0.001, 600),
	{ "email", CONF_CUSTOM, 0, 0, 0, 0, NULL, parse_email },
	{ "webhook", CONF_CUSTOM, 0, 0, 0, 0, NULL, parse_webhook },
	{ "exec", CONF_CUSTOM, 0, 0, 0, 0, NULL, parse_exec },
	{ "log", CONF_CUSTOM, 0, 0, 0, 0, NULL, parse_log },
	{}
};

static void receiver_init(void *elem)
{
	struct alert_receiver *r = elem;

	r->kind = (enum alert_receiver_kind)-1;
	r->timeout = 10 * USEC_PER_SEC;
}

static void receiver_release(void *elem)
{
	struct alert_receiver *r = elem;

	conf_free_fields(receiver_fields, r);
	conf_free_fields(email_fields, &r->email);
	conf_free_fields(webhook_fields, &r->webhook);
	conf_free_fields(exec_fields, &r->exec);
	conf_free_fields(log_fields, &r->log);
}

static int parse_receiver(struct conf_ctx *ctx, const struct conf_node *item, void *elem)
{
	struct alert_receiver *r = elem;
	int k = conf_parse_fields(ctx, item, receiver_fields, r);

	if (k < 0)
		return k;
	if ((int)r->kind == -1)
		return conf_errorf(ctx, item,
				   "receiver '%s' needs one of: email, webhook, exec, log", r->name);
	return 0;
}

/* ---- routes ---- */

static void route_release(struct alert_route *route)
{
	free(route->receiver);
	strv_free(route->group_by);
	for (size_t i = 0; i < route->n_match; i++) {
		free(route->match[i].label);
		free(route->match[i].pattern);
	}
	free(route->match);
	for (size_t i = 0; i < route->n_routes; i++)
		route_release(&route->routes[i]);
	free(route->routes);
	memset(route, 0, sizeof(*route));
}

static int parse_match(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct alert_route *route = (struct alert_route *)((char *)field -
							   offsetof(struct alert_route, match));

	if (node->type != CONF_NODE_MAP)
		return conf_errorf(ctx, node, "'match' is a map of label: pattern");
	route->match = calloc(node->n ? node->n : 1, sizeof(*route->match));
	if (!route->match)
		return -ENOMEM;
	for (size_t i = 0; i < node->n; i++) {
		const struct conf_node *v = node->pairs[i].value;

		if (v->type != CONF_NODE_SCALAR)
			return conf_errorf(ctx, v, "a label pattern is a single value");
		route->match[i].label = strdup(node->pairs[i].key->value);
		route->match[i].pattern = strdup(v->value);
		route->n_match = i + 1;
		if (!route->match[i].label || !route->match[i].pattern)
			return -ENOMEM;
	}
	return 0;
}

static int parse_route_node(struct conf_ctx *ctx, const struct conf_node *node,
			    struct alert_route *route, unsigned depth);

static int parse_routes(struct conf_ctx *ctx, const struct conf_node *node, void *field);

static const struct conf_field route_fields[] = {
	CONF_FIELD("receiver", CONF_STRING, struct alert_route, receiver, 0),
	CONF_FIELD("group_by", CONF_STRV, struct alert_route, group_by, 0),
	CONF_FIELD("group_wait", CONF_DURATION, struct alert_route, group_wait, 0),
	CONF_RANGE("group_interval", CONF_DURATION, struct alert_route, group_interval, 0, 0.001,
		   1e9),
	CONF_RANGE("repeat_interval", CONF_DURATION, struct alert_route, repeat_interval, 0, 0.001,
		   1e9),
	CONF_FIELD("continue", CONF_BOOL, struct alert_route, cont, 0),
	CONF_CUSTOM_FIELD("match", struct alert_route, match, 0, parse_match),
	CONF_CUSTOM_FIELD("routes", struct alert_route, routes, 0, parse_routes),
	{}
};

static unsigned route_depth_now; /* depth of the route being parsed (parse is single-threaded) */

static int parse_routes(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct alert_route *route = (struct alert_route *)((char *)field -
							   offsetof(struct alert_route, routes));
	unsigned depth = route_depth_now;
	int k;

	if (node->type != CONF_NODE_SEQ)
		return conf_errorf(ctx, node, "'routes' is a list of routes");
	route->routes = calloc(node->n ? node->n : 1, sizeof(*route->routes));
	if (!route->routes)
		return -ENOMEM;
	for (size_t i = 0; i < node->n; i++) {
		route->n_routes = i + 1;
		k = parse_route_node(ctx, node->items[i], &route->routes[i], depth + 1);
		route_depth_now = depth;
		if (k < 0)
			return k;
	}
	return 0;
}

static int parse_route_node(struct conf_ctx *ctx, const struct conf_node *node,
			    struct alert_route *route, unsigned depth)
{
	if (depth > MAX_ROUTE_DEPTH)
		return conf_errorf(ctx, node, "routes nest at most %u deep", MAX_ROUTE_DEPTH);
	route->group_wait = route->group_interval = route->repeat_interval = UNSET;
	route->line = node->line;
	route->col = node->col;
	route_depth_now = depth;
	return conf_parse_fields(ctx, node, route_fields, route);
}

/* Children inherit what they do not set; ids number the tree in preorder. */
static int route_inherit(struct alert_route *route, const struct alert_route *parent, unsigned *id)
{
	route->id = (*id)++;
	if (parent) {
		if (!route->receiver && parent->receiver && !(route->receiver = strdup(parent->receiver)))
			return -ENOMEM;
		if (!route->group_by && parent->group_by) {
			size_t n = 0;

			while (parent->group_by[n])
				n++;
			route->group_by = calloc(n + 1, sizeof(char *));
			if (!route->group_by)
				return -ENOMEM;
			for (size_t i = 0; i < n; i++)
				if (!(route->group_by[i] = strdup(parent->group_by[i])))
					return -ENOMEM;
		}
		if (route->group_wait == UNSET)
			route->group_wait = parent->group_wait;
		if (route->group_interval == UNSET)
			route->group_interval = parent->group_interval;
		if (route->repeat_interval == UNSET)
			route->repeat_interval = parent->repeat_interval;
	} else {
		if (!route->group_by) {
			route->group_by = calloc(2, sizeof(char *));
			if (!route->group_by || !(route->group_by[0] = strdup("check")))
				return -ENOMEM;
		}
		if (route->group_wait == UNSET)
			route->group_wait = 30 * USEC_PER_SEC;
		if (route->group_interval == UNSET)
			route->group_interval = 5 * USEC_PER_MINUTE;
		if (route->repeat_interval == UNSET)
			route->repeat_interval = 4 * USEC_PER_HOUR;
	}
	for (size_t i = 0; i < route->n_routes; i++) {
		int r = route_inherit(&route->routes[i], route, id);

		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_root_route(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct alert_route *route = field;
	int r;

	r = parse_route_node(ctx, node, route, 0);
	if (r < 0)
		return r;
	if (route->n_match)
		return conf_errorf(ctx, node, "the top route matches every alert: no 'match' here");
	if (!route->receiver)
		return conf_errorf(ctx, node, "the top route needs a 'receiver'");
	return 0;
}

static int parse_receivers(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct alert_plan *plan = (struct alert_plan *)((char *)field -
							offsetof(struct alert_plan, receivers));
	int r = conf_parse_list(ctx, node, sizeof(struct alert_receiver), receiver_init,
				parse_receiver, receiver_release, (void **)&plan->receivers,
				&plan->n_receivers);

	if (r < 0)
		return r;
	for (size_t i = 0; i < plan->n_receivers; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(plan->receivers[i].name, plan->receivers[j].name) == 0)
				return conf_errorf(ctx, node->items[i], "receiver '%s' is defined twice",
						   plan->receivers[i].name);
	return 0;
}

static const struct conf_field plan_fields[] = {
	CONF_CUSTOM_FIELD("receivers", struct alert_plan, receivers, CONF_REQUIRED, parse_receivers),
	CONF_CUSTOM_FIELD("route", struct alert_plan, route, CONF_REQUIRED, parse_root_route),
	CONF_FIELD("external_url", CONF_STRING, struct alert_plan, external_url, 0),
	CONF_FIELD("send_resolved", CONF_BOOL, struct alert_plan, send_resolved, 0),
	{}
};

void alert_plan_free(struct alert_plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; i < plan->n_receivers; i++)
		receiver_release(&plan->receivers[i]);
	free(plan->receivers);
	route_release(&plan->route);
	free(plan->external_url);
	free(plan);
}


int alert_plan_parse(struct conf_ctx *ctx, const struct conf_node *node, struct alert_plan **ret)
{
	_cleanup_(alert_plan_freep) struct alert_plan *plan = calloc(1, sizeof(*plan));
	unsigned id = 0;
	int r;

	if (!plan)
		return -ENOMEM;
	plan->send_resolved = true;
	r = conf_parse_fields(ctx, node, plan_fields, plan);
	if (r < 0)
		return r;
	r = route_inherit(&plan->route, NULL, &id);
	if (r < 0)
		return r;
	r = alert_plan_check_receivers(ctx, plan);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(plan);
	return 0;
}

const struct alert_receiver *alert_plan_receiver(const struct alert_plan *plan, const char *name)
{
	if (!plan || !name)
		return NULL;
	for (size_t i = 0; i < plan->n_receivers; i++)
		if (strcmp(plan->receivers[i].name, name) == 0)
			return &plan->receivers[i];
	return NULL;
}

static int check_route(struct conf_ctx *ctx, const struct alert_plan *plan,
		       const struct alert_route *route)
{
	if (route->receiver && !alert_plan_receiver(plan, route->receiver)) {
		struct conf_node at = { .line = route->line, .col = route->col };

		return conf_errorf(ctx, &at, "route names unknown receiver '%s'", route->receiver);
	}
	for (size_t i = 0; i < route->n_routes; i++) {
		int r = check_route(ctx, plan, &route->routes[i]);

		if (r < 0)
			return r;
	}
	return 0;
}

int alert_plan_check_receivers(struct conf_ctx *ctx, const struct alert_plan *plan)
{
	return check_route(ctx, plan, &plan->route);
}

bool alert_matchers_match(const struct alert_matcher *m, size_t n, alert_label_fn labels,
			  void *userdata)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = labels(userdata, m[i].label);

		if (!v || fnmatch(m[i].pattern, v, 0) != 0)
			return false;
	}
	return true;
}

/* Alertmanager's walk: a route that matches hands the alert to its first
 * matching child (and further children while `continue` is set); when no
 * child takes it, the route itself does. */
static size_t match_route(const struct alert_route *route, alert_label_fn labels, void *userdata,
			  const struct alert_route **ret, size_t max, size_t n)
{
	size_t before = n;

	if (!alert_matchers_match(route->match, route->n_match, labels, userdata))
		return n;
	for (size_t i = 0; i < route->n_routes; i++) {
		const struct alert_route *child = &route->routes[i];
		size_t got = match_route(child, labels, userdata, ret, max, n);

		if (got > n) {
			n = got;
			if (!child->cont)
				break;
		}
	}
	if (n == before && n < max)
		ret[n++] = route;
	return n;
}

size_t alert_plan_match(const struct alert_plan *plan, alert_label_fn labels, void *userdata,
			const struct alert_route **ret, size_t max)
{
	if (!plan || max == 0)
		return 0;
	return match_route(&plan->route, labels, userdata, ret, max, 0);
}
