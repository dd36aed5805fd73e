#include "cluster/plan.h"

#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/etcd.h"
#include "cluster/vip.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "plan/plan.h"

bool cluster_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CLUSTER_NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

static int parse_name(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	char **s = field;
	int r = conf_parse_scalar(ctx, node, CONF_STRING, s);

	if (r < 0)
		return r;
	if (!cluster_name_valid(*s))
		return conf_errorf(ctx, node,
				   "'%s' is not a usable name: 1 to %d letters, digits, "
				   "'-', '_' or '.' (it becomes part of etcd keys)",
				   *s, CLUSTER_NAME_MAX);
	return 0;
}

static int parse_endpoints(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	char ***v = field;
	size_t n = 0;
	int r = conf_parse_scalar(ctx, node, CONF_STRV, v);

	if (r < 0)
		return r;
	for (char **s = *v; *s; s++, n++) {
		const char *rest;

		if (strncmp(*s, "http://", 7) == 0)
			rest = *s + 7;
		else if (strncmp(*s, "https://", 8) == 0)
			rest = *s + 8;
		else
			return conf_errorf(ctx, node,
					   "etcd endpoint '%s' is not an http:// or "
					   "https:// URL",
					   *s);
		/* user:password@ would end up in logs: username/password_file */
		if (!*rest || strchr(rest, '@'))
			return conf_errorf(ctx, node,
					   "etcd endpoint '%s': write http(s)://HOST:PORT "
					   "(credentials go in username: and password_file:)",
					   *s);
	}
	if (n == 0 || n > ETCD_ENDPOINTS_MAX)
		return conf_errorf(ctx, node, "etcd: needs 1 to %d endpoints", ETCD_ENDPOINTS_MAX);
	return 0;
}

/* An IP address or a host name: it is joined with a port by balancers
 * that follow a service (docs/lb.md), so nothing else fits. */
static int parse_member_address(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	char **s = field;
	int r = conf_parse_scalar(ctx, node, CONF_STRING, s);
	size_t n;

	if (r < 0)
		return r;
	n = strlen(*s);
	if (n == 0 || n > 253 ||
	    strspn(*s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.:") != n)
		return conf_errorf(ctx, node,
				   "address '%s' is not an IP address or a host name "
				   "(write 10.0.0.1, fd00::1 or db-1.example.net, without a port)",
				   *s);
	return 0;
}

static const struct conf_field cluster_fields[] = {
	CONF_CUSTOM_FIELD("name", struct cluster_plan, name, CONF_REQUIRED, parse_name),
	CONF_CUSTOM_FIELD("member", struct cluster_plan, member, 0, parse_name),
	CONF_CUSTOM_FIELD("address", struct cluster_plan, address, 0, parse_member_address),
	CONF_CUSTOM_FIELD("etcd", struct cluster_plan, etcd, CONF_REQUIRED, parse_endpoints),
	CONF_FIELD("ca_file", CONF_STRING, struct cluster_plan, ca_file, 0),
	CONF_FIELD("cert_file", CONF_STRING, struct cluster_plan, cert_file, 0),
	CONF_FIELD("key_file", CONF_STRING, struct cluster_plan, key_file, 0),
	CONF_FIELD("username", CONF_STRING, struct cluster_plan, username, 0),
	CONF_FIELD("password_file", CONF_STRING, struct cluster_plan, password_file, 0),
	CONF_RANGE("ttl", CONF_DURATION, struct cluster_plan, ttl, 0, 2, 3600), /* seconds */
	CONF_RANGE("leader_changed_hold", CONF_DURATION, struct cluster_plan, leader_changed_hold,
		   0, 1, 86400),
	{}
};

static int parse_vip_address(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	char **s = field;
	struct vip_address a;
	int r = conf_parse_scalar(ctx, node, CONF_STRING, s);

	if (r < 0)
		return r;
	if (vip_address_parse(*s, &a) < 0)
		return conf_errorf(ctx, node,
				   "vip address '%s' is not ADDRESS/PREFIX (10.0.0.50/24 or "
				   "fd00::50/64)",
				   *s);
	return 0;
}

static int parse_interface(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	char **s = field;
	int r = conf_parse_scalar(ctx, node, CONF_STRING, s);

	if (r < 0)
		return r;
	if (!vip_interface_valid(*s))
		return conf_errorf(ctx, node,
				   "'%s' is not an interface name (1 to %d characters, no '/', "
				   "':' or space)",
				   *s, IFNAMSIZ - 1);
	return 0;
}

static const struct conf_field vip_fields[] = {
	CONF_CUSTOM_FIELD("address", struct cluster_vip, address, CONF_REQUIRED, parse_vip_address),
	CONF_CUSTOM_FIELD("interface", struct cluster_vip, interface, CONF_REQUIRED,
			  parse_interface),
	{}
};

static int parse_vip(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	return conf_parse_map(ctx, node, "vip:", vip_fields, field);
}

static int parse_argv(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	char ***v = field;
	int r = conf_parse_scalar(ctx, node, CONF_STRV, v);

	if (r < 0)
		return r;
	if (!(*v)[0] || !(*v)[0][0])
		return conf_errorf(ctx, node, "a command is a list: [program, arguments...]");
	return 0;
}

static const struct conf_field service_fields[] = {
	CONF_CUSTOM_FIELD("name", struct cluster_service, name, CONF_REQUIRED, parse_name),
	CONF_FIELD("healthy", CONF_STRV, struct cluster_service, healthy, 0),
	CONF_CUSTOM_FIELD("promote", struct cluster_service, promote, 0, parse_argv),
	CONF_CUSTOM_FIELD("demote", struct cluster_service, demote, 0, parse_argv),
	CONF_CUSTOM_FIELD("vip", struct cluster_service, vip, 0, parse_vip),
	CONF_RANGE("priority", CONF_INT, struct cluster_service, priority, 0, 0, 1000),
	CONF_RANGE("timeout", CONF_DURATION, struct cluster_service, timeout, 0, 0.001, 3600),
	{}
};

static void service_init(void *elem)
{
	struct cluster_service *s = elem;

	s->priority = 100;
	s->timeout = 10 * USEC_PER_SEC;
}

static void service_release(void *elem)
{
	struct cluster_service *s = elem;

	free(s->name);
	strv_free(s->healthy);
	strv_free(s->promote);
	strv_free(s->demote);
	free(s->vip.address);
	free(s->vip.interface);
	memset(s, 0, sizeof(*s));
}

static int service_parse(struct conf_ctx *ctx, const struct conf_node *item, void *elem)
{
	return conf_parse_map(ctx, item, "a service", service_fields, elem);
}

void cluster_plan_free(struct cluster_plan *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->member);
	free(p->address);
	strv_free(p->etcd);
	free(p->ca_file);
	free(p->cert_file);
	free(p->key_file);
	free(p->username);
	free(p->password_file);
	for (size_t i = 0; i < p->n_services; i++)
		service_release(&p->services[i]);
	free(p->services);
	free(p);
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool strv_eq(char *const *a, char *const *b)
{
	for (; a && b && *a && *b; a++, b++)
		if (strcmp(*a, *b) != 0)
			return false;
	return (!a || !*a) && (!b || !*b);
}

bool cluster_service_equal(const struct cluster_service *a, const struct cluster_service *b)
{
	return str_eq(a->name, b->name) && strv_eq(a->healthy, b->healthy) &&
	       strv_eq(a->promote, b->promote) && strv_eq(a->demote, b->demote) &&
	       str_eq(a->vip.address, b->vip.address) && str_eq(a->vip.interface, b->vip.interface) &&
	       a->priority == b->priority && a->timeout == b->timeout;
}

bool cluster_plan_same_cluster(const struct cluster_plan *a, const struct cluster_plan *b)
{
	if (!a || !b || !a->has_cluster || !b->has_cluster)
		return false;
	return str_eq(a->name, b->name) && str_eq(a->member, b->member) &&
	       str_eq(a->address, b->address) && strv_eq(a->etcd, b->etcd) &&
	       str_eq(a->ca_file, b->ca_file) && str_eq(a->cert_file, b->cert_file) &&
	       str_eq(a->key_file, b->key_file) && str_eq(a->username, b->username) &&
	       str_eq(a->password_file, b->password_file) && a->ttl == b->ttl;
}

bool cluster_plan_equal(const struct cluster_plan *a, const struct cluster_plan *b)
{
	bool ha = a && a->has_cluster, hb = b && b->has_cluster;

	if (!ha || !hb)
		return ha == hb;
	if (!cluster_plan_same_cluster(a, b) || a->n_services != b->n_services)
		return false;
	for (size_t i = 0; i < a->n_services; i++)
		if (!cluster_service_equal(&a->services[i], &b->services[i]))
			return false;
	return true;
}

static int get(struct cluster_plan **ret)
{
	if (!*ret && !(*ret = calloc(1, sizeof(**ret))))
		return -ENOMEM;
	return 0;
}

int cluster_plan_parse_cluster(struct conf_ctx *ctx, const struct conf_node *node,
			       struct cluster_plan **ret)
{
	struct cluster_plan *p;
	int r = get(ret);

	if (r < 0)
		return r;
	p = *ret;
	p->ttl = 5 * USEC_PER_SEC;
	p->leader_changed_hold = CLUSTER_CHANGE_HOLD;
	r = conf_parse_map(ctx, node, "cluster:", cluster_fields, p);
	if (r < 0)
		return r;
	p->has_cluster = true;
	if (!!p->cert_file != !!p->key_file)
		return conf_errorf(ctx, node, "cluster: cert_file and key_file go together");
	if (!!p->username != !!p->password_file)
		return conf_errorf(ctx, node,
				   "cluster: username needs password_file (and the "
				   "other way round)");
	if (p->ttl % USEC_PER_SEC)
		return conf_errorf(ctx, conf_map_get(node, "ttl"),
				   "cluster: ttl is a whole number of seconds (etcd's leases are)");
	return 0;
}

int cluster_plan_parse_services(struct conf_ctx *ctx, const struct conf_node *node,
				struct cluster_plan **ret)
{
	struct cluster_plan *p;
	int r = get(ret);

	if (r < 0)
		return r;
	p = *ret;
	r = conf_expect(ctx, node, CONF_NODE_SEQ, "services:");
	if (r < 0)
		return r;
	if (node->n > CLUSTER_MAX_SERVICES)
		return conf_errorf(ctx, node, "at most %d services", CLUSTER_MAX_SERVICES);
	r = conf_parse_list(ctx, node, sizeof(struct cluster_service), service_init, service_parse,
			    service_release, (void **)&p->services, &p->n_services);
	if (r < 0)
		return r;
	for (size_t i = 0; i < p->n_services; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(p->services[i].name, p->services[j].name) == 0)
				return conf_errorf(ctx, node->items[i],
						   "service '%s' is named twice",
						   p->services[i].name);
	return 0;
}

static bool plan_has_check(const struct plan *plan, const char *name)
{
	for (size_t i = 0; plan->checks && i < plan->checks->n_checks; i++)
		if (strcmp(plan->checks->checks[i].name, name) == 0)
			return true;
	return false;
}

int cluster_plan_validate(struct conf_ctx *ctx, const struct conf_node *root, struct plan *plan)
{
	const struct cluster_plan *p = plan->cluster;
	const struct conf_node *services = conf_map_get(root, "services");

	if (!p)
		return 0;
	if (!p->has_cluster)
		return conf_errorf(ctx, services,
				   "services: needs a cluster: section (name, etcd)");
	for (size_t i = 0; i < p->n_services; i++) {
		const struct cluster_service *s = &p->services[i];
		const struct conf_node *item = services ? services->items[i] : root;
		const struct conf_node *at = conf_map_get(item, "healthy");

		for (size_t k = 0; s->healthy && s->healthy[k]; k++)
			if (!plan_has_check(plan, s->healthy[k]))
				return conf_errorf(ctx, at ? at : item,
						   "service '%s': healthy: names "
						   "check '%s', which is not in checks:",
						   s->name, s->healthy[k]);
	}
	return 0;
}
