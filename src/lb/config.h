/* The plan's balancers: section, parsed into typed structs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/conf.h"
#include "lib/timeutil.h"

/* Hard limits: a plan is written by a person, and tables are sized by them. */
#define LB_MAX_BALANCERS 64
#define LB_MAX_BACKENDS 256
#define LB_MAX_LISTEN 16
#define LB_MAX_WEIGHT 1000

enum lb_algorithm {
	LB_ALGO_ROUNDROBIN, /* smooth weighted round robin (nginx) */
	LB_ALGO_LEASTCONN,  /* fewest connections per unit of weight */
	LB_ALGO_P2C,        /* two random choices, the less loaded wins */
	LB_ALGO_PEAK_EWMA,  /* Finagle's peak-EWMA latency x outstanding, with P2C */
	LB_ALGO_MAGLEV,     /* consistent hashing of the client address */
	LB_ALGO_FIRST,      /* the first backend with room */
};

extern const char *const lb_algorithm_names[]; /* NULL-terminated, by enum */

enum lb_check_kind { LB_CHECK_NONE, LB_CHECK_TCP, LB_CHECK_HTTP };

struct lb_health_conf {
	enum lb_check_kind kind; /* NONE when the plan has no health: */
	char *http_path;         /* http: GET this path, default "/" */
	int64_t expect_status;   /* http: expected status, default 200 */
	usec_t interval;         /* between checks, default 1s */
	usec_t fastinter;        /* between checks while a state changes, 200ms */
	usec_t timeout;          /* of one check, default min(interval, 1s) */
	int64_t rise, fall;      /* consecutive results to change state: 2, 3 */
};

struct lb_backend_conf {
	char *name;
	char *address;     /* "host:port" or "[v6]:port"; NULL when service is set */
	char *service;     /* follow this cluster service's leader, at port */
	int64_t port;      /* with service: */
	/* Not in the plan: the host of a following backend sets address to
	 * the leader's, or this (borrowed) to why there is none: the backend
	 * then takes no connections. */
	const char *held_down;
	int64_t weight;    /* 0..LB_MAX_WEIGHT, default 1 */
	bool backup;       /* serves only while no primary is usable */
	uint64_t max_conns; /* 0: no limit */
};

struct lb_balancer_conf {
	char *name;
	char **listen; /* "host:port" */
	int algorithm;
	struct lb_health_conf health;
	int64_t agent_port; /* 0: none; else read agent-check lines on it */
	struct lb_backend_conf *backends;
	size_t n_backends;
	usec_t connect_timeout; /* default 2s */
	usec_t idle_timeout;    /* default 60s */
	int64_t retries;        /* connect attempts beyond the first, default 2 */
	uint64_t max_conns;     /* client connections at once, default 10000 */
	usec_t slow_start;      /* ramp of a recovered backend's weight, default 0 */
	bool connect_on_data;   /* connect to a backend on the client's first bytes */
};

struct lb_plan {
	struct lb_balancer_conf *balancers;
	size_t n_balancers;
};

/* Parses the balancers: sequence into *ret (lb_plan_free() it). */
int lb_plan_parse(struct conf_ctx *ctx, const struct conf_node *node, struct lb_plan **ret);
void lb_plan_free(struct lb_plan *plan);

/* conf's address, or "-" for a following backend without one. */
const char *lb_backend_conf_address(const struct lb_backend_conf *conf);

/* Splits "host:port" / "[v6]:port" into a numeric socket address (no DNS:
 * "localhost" is accepted as 127.0.0.1). Returns 0 or -EINVAL. */
struct sockaddr_storage;
int lb_parse_address(const char *s, struct sockaddr_storage *ret, unsigned *ret_len);
