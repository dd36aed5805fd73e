/* The control socket of a running balancer: a unix stream socket taking
 * one request line and answering one JSON document, so `bcdr lb status`
 * and `bcdr lb set` reach `bcdr lb` (or the agent) without HTTP.
 *
 *   status                          -> {"ok":true,"balancers":[...]}
 *   set BALANCER/BACKEND ready|drain|maint
 *   set BALANCER/BACKEND weight N   -> {"ok":true} or {"ok":false,"error":"..."}
 */
#pragma once

#include <stddef.h>

#include "lib/timeutil.h"

struct event_base;
struct lb;
struct lb_control;

#define LB_CONTROL_MAX_LINE 1024
#define LB_CONTROL_MAX_REPLY (16u << 20)
#define LB_CONTROL_DEFAULT_PATH "/run/bcdr/lb.sock"

enum lb_control_op { LB_CONTROL_STATUS, LB_CONTROL_SET_STATE, LB_CONTROL_SET_WEIGHT };

struct lb_control_request {
	enum lb_control_op op;
	char balancer[128];
	char backend[128];
	char state[8];
	unsigned weight;
};

/* Parses one request line (without or with its newline). -EINVAL with a
 * message in *ret_error (static) when it is not one. */
int lb_control_parse(const char *line, size_t len, struct lb_control_request *ret,
		     const char **ret_error);

/* Serves path on base for lb (borrowed). */
int lb_control_new(struct event_base *base, const char *path, struct lb *lb,
		   struct lb_control **ret);
void lb_control_free(struct lb_control *c);

/* Client side: sends line to the socket at path and returns the reply (a
 * JSON document, free() it). Bounded by timeout and LB_CONTROL_MAX_REPLY. */
int lb_control_request(const char *path, const char *line, usec_t timeout, char **ret_reply);
