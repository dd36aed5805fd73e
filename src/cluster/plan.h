/* The plan's cluster: and services: sections (docs/plan-reference.md,
 * docs/cluster.md), parsed into typed structs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/conf.h"
#include "lib/timeutil.h"

struct plan;

/* Hard limits: a plan is written by a person. */
#define CLUSTER_MAX_SERVICES 256
#define CLUSTER_NAME_MAX 64 /* cluster, member and service names */
#define CLUSTER_CHANGE_HOLD (10 * USEC_PER_MINUTE) /* leader_changed_hold's default */

struct cluster_vip {
	char *address;   /* "10.0.0.50/24"; NULL: the service has no VIP */
	char *interface; /* "eth0" */
};

struct cluster_service {
	char *name;
	char **healthy; /* check names that must be ok to lead, NULL-terminated */
	char **promote; /* argument vector run on becoming leader, or NULL */
	char **demote;  /* run on stepping down, or NULL */
	struct cluster_vip vip;
	int64_t priority; /* higher is preferred, 0..1000, default 100 */
	usec_t timeout;   /* of promote and demote, default 10s */
};

struct cluster_plan {
	/* cluster: */
	bool has_cluster; /* the plan has a cluster: section */
	char *name;       /* key prefix in etcd: /<name>/ */
	char *member;     /* this member's name; NULL: the host name */
	char *address;    /* where others reach this member's services; NULL: the host name */
	char **etcd;      /* client URLs, NULL-terminated */
	char *ca_file, *cert_file, *key_file;
	char *username, *password_file;
	usec_t ttl; /* leader and member leases, default 5s */
	/* how long cluster:service:S:leader-changed fires after a change,
	 * default CLUSTER_CHANGE_HOLD; an alert setting: not compared by
	 * cluster_plan_equal(), the agent reads it from its current plan */
	usec_t leader_changed_hold;
	/* services: */
	struct cluster_service *services;
	size_t n_services;
};

/* The cluster: and services: sections, in either order, into *ret (made
 * on the first; cluster_plan_free() it). */
int cluster_plan_parse_cluster(struct conf_ctx *ctx, const struct conf_node *node,
			       struct cluster_plan **ret);
int cluster_plan_parse_services(struct conf_ctx *ctx, const struct conf_node *node,
				struct cluster_plan **ret);
/* Across sections: services: needs cluster:, healthy: names checks of the plan. */
int cluster_plan_validate(struct conf_ctx *ctx, const struct conf_node *root, struct plan *plan);
void cluster_plan_free(struct cluster_plan *p);
/* Whether a and b (either may be NULL) describe the same cluster and
 * services, field by field (a reload that changes nothing keeps the engine
 * running). The password file's content is not compared, nor
 * leader_changed_hold (an alert's, the engine does not use it). */
bool cluster_plan_equal(const struct cluster_plan *a, const struct cluster_plan *b);
/* Whether a and b describe the same cluster: section (name, member,
 * address, etcd and its credentials, ttl), whatever their services: a
 * reload between them carries the engine and its lease over. */
bool cluster_plan_same_cluster(const struct cluster_plan *a, const struct cluster_plan *b);
/* Whether two services are defined alike, field by field: a reload keeps
 * the leadership of one that did not change. */
bool cluster_service_equal(const struct cluster_service *a, const struct cluster_service *b);

/* Whether s is a usable cluster, member or service name (letters, digits,
 * '-', '_', '.'; 1..CLUSTER_NAME_MAX): they become parts of etcd keys. */
bool cluster_name_valid(const char *s);
