#include "lb/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/hostport.h"

const char *const lb_algorithm_names[] = {
	"roundrobin", "leastconn", "p2c", "peak-ewma", "maglev", "first", NULL,
};

int lb_parse_address(const char *s, struct sockaddr_storage *ret, unsigned *ret_len)
{
	char host[128];
	uint16_t port;

	if (!s || hostport_split(s, strlen(s), HOSTPORT_PORT_ZERO, host, sizeof(host), &port) < 0)
		return -EINVAL;
	if (strcmp(host, "localhost") == 0 || strcmp(host, "*") == 0)
		snprintf(host, sizeof(host), "%s", strcmp(host, "*") == 0 ? "0.0.0.0" : "127.0.0.1");

	struct sockaddr_storage ss = {};
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*ret_len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*ret_len = sizeof(*in6);
	} else {
		return -EINVAL;
	}
	*ret = ss;
	return 0;
}

static int parse_address_field(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct sockaddr_storage ss;
	unsigned len;
	int r = conf_parse_scalar(ctx, node, CONF_STRING, field);

	if (r < 0)
		return r;
	if (lb_parse_address(*(char **)field, &ss, &len) < 0)
		return conf_errorf(ctx, node, "'%s' is not an address: write IP:PORT or [IPv6]:PORT",
				   *(char **)field);
	return 0;
}

static const struct conf_field backend_fields[] = {
	CONF_FIELD("name", CONF_STRING, struct lb_backend_conf, name, CONF_REQUIRED),
	CONF_CUSTOM_FIELD("address", struct lb_backend_conf, address, 0, parse_address_field),
	CONF_FIELD("service", CONF_STRING, struct lb_backend_conf, service, 0),
	CONF_RANGE("port", CONF_INT, struct lb_backend_conf, port, 0, 1, 65535),
	CONF_RANGE("weight", CONF_INT, struct lb_backend_conf, weight, 0, 0, LB_MAX_WEIGHT),
	CONF_FIELD("backup", CONF_BOOL, struct lb_backend_conf, backup, 0),
	CONF_RANGE("max_conns", CONF_UINT, struct lb_backend_conf, max_conns, 0, 0, 10000000),
	{}
};

static void backend_init(void *elem)
{
	struct lb_backend_conf *b = elem;

	b->weight = 1;
}

static int backend_parse(struct conf_ctx *ctx, const struct conf_node *item, void *elem)
{
	struct lb_backend_conf *b = elem;
	int r = conf_parse_fields(ctx, item, backend_fields, elem);

	if (r < 0)
		return r;
	if (!b->address == !b->service)
		return conf_errorf(ctx, item,
				   "backend '%s': give exactly one of address: (IP:PORT) and "
				   "service: (a cluster service whose leader it follows, with port:)",
				   b->name);
	if (b->service && !b->port)
		return conf_errorf(ctx, item,
				   "backend '%s': service: needs port: (where the leader serves)",
				   b->name);
	if (b->address && b->port)
		return conf_errorf(ctx, item,
				   "backend '%s': port: goes with service:; address: has its own",
				   b->name);
	return 0;
}

static void backend_release(void *elem)
{
	struct lb_backend_conf *b = elem;

	conf_free_fields(backend_fields, elem);
	free(b->address); /* a custom field: not freed by the table */
	b->address = NULL;
}

static const struct conf_field http_fields[] = {
	CONF_FIELD("path", CONF_STRING, struct lb_health_conf, http_path, 0),
	CONF_RANGE("expect_status", CONF_INT, struct lb_health_conf, expect_status, 0, 100, 599),
	{}
};

static int parse_tcp_check(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct lb_health_conf *h = field;

	if (node->type == CONF_NODE_MAP && node->n > 0)
		return conf_errorf(ctx, node, "tcp: takes no options: write 'tcp: {}'");
	if (node->type == CONF_NODE_SEQ)
		return conf_errorf(ctx, node, "tcp: is a map: write 'tcp: {}'");
	if (h->kind == LB_CHECK_HTTP)
		return conf_errorf(ctx, node, "a health check is either tcp: or http:, not both");
	h->kind = LB_CHECK_TCP;
	return 0;
}

static int parse_http_check(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct lb_health_conf *h = field;
	int r;

	if (h->kind == LB_CHECK_TCP)
		return conf_errorf(ctx, node, "a health check is either tcp: or http:, not both");
	r = conf_parse_map(ctx, node, "http:", http_fields, h);
	if (r < 0)
		return r;
	if (h->http_path && (h->http_path[0] != '/' || strpbrk(h->http_path, " \r\n")))
		return conf_errorf(ctx, node, "http: path '%s' must start with / and have no spaces",
				   h->http_path);
	h->kind = LB_CHECK_HTTP;
	return 0;
}

static const struct conf_field health_fields[] = {
	{ "tcp", CONF_CUSTOM, 0, 0, 0, 0, NULL, parse_tcp_check },
	{ "http", CONF_CUSTOM, 0, 0, 0, 0, NULL, parse_http_check },
	CONF_FIELD("interval", CONF_DURATION, struct lb_health_conf, interval, 0),
	CONF_FIELD("fastinter", CONF_DURATION, struct lb_health_conf, fastinter, 0),
	CONF_FIELD("timeout", CONF_DURATION, struct lb_health_conf, timeout, 0),
	CONF_RANGE("rise", CONF_INT, struct lb_health_conf, rise, 0, 1, 100),
	CONF_RANGE("fall", CONF_INT, struct lb_health_conf, fall, 0, 1, 100),
	{}
};

static int parse_health(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct lb_health_conf *h = field;
	int r = conf_parse_map(ctx, node, "health:", health_fields, h);

	if (r < 0)
		return r;
	if (h->kind == LB_CHECK_NONE)
		h->kind = LB_CHECK_TCP; /* health: { interval: 2s } means a tcp check */
	if (h->interval < 10 * USEC_PER_MSEC || h->fastinter < 10 * USEC_PER_MSEC)
		return conf_errorf(ctx, node, "health: interval and fastinter must be at least 10ms");
	return 0;
}

static const struct conf_field timeout_fields[] = {
	CONF_FIELD("connect", CONF_DURATION, struct lb_balancer_conf, connect_timeout, 0),
	CONF_FIELD("idle", CONF_DURATION, struct lb_balancer_conf, idle_timeout, 0),
	{}
};

static int parse_timeouts(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct lb_balancer_conf *b = (struct lb_balancer_conf *)((char *)field -
		offsetof(struct lb_balancer_conf, connect_timeout));
	int r = conf_parse_map(ctx, node, "timeouts:", timeout_fields, b);

	if (r < 0)
		return r;
	if (b->connect_timeout < USEC_PER_MSEC || b->idle_timeout < USEC_PER_MSEC)
		return conf_errorf(ctx, node, "timeouts must be at least 1ms");
	return 0;
}

static int parse_backends(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct lb_balancer_conf *b = (struct lb_balancer_conf *)((char *)field -
		offsetof(struct lb_balancer_conf, backends));
	int r = conf_expect(ctx, node, CONF_NODE_SEQ, "backends:");

	if (r < 0)
		return r;
	if (node->n == 0)
		return conf_errorf(ctx, node, "backends: needs at least one backend");
	if (node->n > LB_MAX_BACKENDS)
		return conf_errorf(ctx, node, "at most %d backends per balancer", LB_MAX_BACKENDS);
	r = conf_parse_list(ctx, node, sizeof(struct lb_backend_conf), backend_init, backend_parse,
			    backend_release, (void **)&b->backends, &b->n_backends);
	if (r < 0)
		return r;
	for (size_t i = 0; i < b->n_backends; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(b->backends[i].name, b->backends[j].name) == 0)
				return conf_errorf(ctx, node->items[i],
						   "backend '%s' is named twice", b->backends[i].name);
	return 0;
}

static int parse_listen(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	char ***v = field;
	struct sockaddr_storage ss;
	unsigned len;
	size_t n = 0;
	int r = conf_parse_scalar(ctx, node, CONF_STRV, v);

	if (r < 0)
		return r;
	for (char **s = *v; *s; s++, n++)
		if (lb_parse_address(*s, &ss, &len) < 0)
			return conf_errorf(ctx, node, "listen '%s' is not an address: write IP:PORT", *s);
	if (n == 0 || n > LB_MAX_LISTEN)
		return conf_errorf(ctx, node, "listen: needs 1 to %d addresses", LB_MAX_LISTEN);
	return 0;
}

static const struct conf_field balancer_fields[] = {
	CONF_FIELD("name", CONF_STRING, struct lb_balancer_conf, name, CONF_REQUIRED),
	CONF_CUSTOM_FIELD("listen", struct lb_balancer_conf, listen, CONF_REQUIRED, parse_listen),
	CONF_ENUM_FIELD("algorithm", struct lb_balancer_conf, algorithm, 0, lb_algorithm_names),
	CONF_CUSTOM_FIELD("health", struct lb_balancer_conf, health, 0, parse_health),
	CONF_RANGE("agent_port", CONF_INT, struct lb_balancer_conf, agent_port, 0, 1, 65535),
	CONF_CUSTOM_FIELD("backends", struct lb_balancer_conf, backends, CONF_REQUIRED,
			  parse_backends),
	CONF_CUSTOM_FIELD("timeouts", struct lb_balancer_conf, connect_timeout, 0, parse_timeouts),
	CONF_RANGE("retries", CONF_INT, struct lb_balancer_conf, retries, 0, 0, 100),
	CONF_RANGE("max_conns", CONF_UINT, struct lb_balancer_conf, max_conns, 0, 1, 10000000),
	CONF_FIELD("slow_start", CONF_DURATION, struct lb_balancer_conf, slow_start, 0),
	CONF_FIELD("connect_on_data", CONF_BOOL, struct lb_balancer_conf, connect_on_data, 0),
	{}
};

static void balancer_init(void *elem)
{
	struct lb_balancer_conf *b = elem;

	b->algorithm = LB_ALGO_ROUNDROBIN;
	b->health.interval = USEC_PER_SEC;
	b->health.fastinter = 200 * USEC_PER_MSEC;
	b->health.rise = 2;
	b->health.fall = 3;
	b->health.expect_status = 200;
	b->connect_timeout = 2 * USEC_PER_SEC;
	b->idle_timeout = 60 * USEC_PER_SEC;
	b->retries = 2;
	b->max_conns = 10000;
}

static void balancer_release(void *elem)
{
	struct lb_balancer_conf *b = elem;

	for (size_t i = 0; i < b->n_backends; i++)
		backend_release(&b->backends[i]);
	free(b->backends);
	b->backends = NULL;
	b->n_backends = 0;
	free(b->health.http_path);
	b->health.http_path = NULL;
	strv_free(b->listen);
	b->listen = NULL;
	free(b->name);
	b->name = NULL;
}

static int balancer_parse(struct conf_ctx *ctx, const struct conf_node *item, void *elem)
{
	struct lb_balancer_conf *b = elem;
	int r = conf_parse_map(ctx, item, "a balancer", balancer_fields, b);

	if (r < 0)
		return r;
	if (b->health.kind == LB_CHECK_HTTP && !b->health.http_path &&
	    !(b->health.http_path = strdup("/")))
		return -ENOMEM;
	if (b->health.timeout == 0)
		b->health.timeout = b->health.interval < USEC_PER_SEC ? b->health.interval
								       : USEC_PER_SEC;
	return 0;
}

void lb_plan_free(struct lb_plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; i < plan->n_balancers; i++)
		balancer_release(&plan->balancers[i]);
	free(plan->balancers);
	free(plan);
}

int lb_plan_parse(struct conf_ctx *ctx, const struct conf_node *node, struct lb_plan **ret)
{
	struct lb_plan *plan;
	int r = conf_expect(ctx, node, CONF_NODE_SEQ, "balancers:");

	if (r < 0)
		return r;
	if (node->n > LB_MAX_BALANCERS)
		return conf_errorf(ctx, node, "at most %d balancers", LB_MAX_BALANCERS);
	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return -ENOMEM;
	r = conf_parse_list(ctx, node, sizeof(struct lb_balancer_conf), balancer_init,
			    balancer_parse, balancer_release, (void **)&plan->balancers,
			    &plan->n_balancers);
	if (r < 0) {
		free(plan);
		return r;
	}
	for (size_t i = 0; i < plan->n_balancers; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(plan->balancers[i].name, plan->balancers[j].name) != 0)
				continue;
			r = conf_errorf(ctx, node->items[i], "balancer '%s' is named twice",
					plan->balancers[i].name);
			lb_plan_free(plan);
			return r;
		}
	}
	*ret = plan;
	return 0;
}
