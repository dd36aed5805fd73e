/* Balancer backends that follow a cluster service's leader (docs/lb.md,
 * "Following a cluster service"): the plan's balancers, with each such
 * backend's address set to the leader's, as this member's cluster engine
 * last saw it, or held down with the reason there is none. The result
 * goes to lb_new()/lb_reload(), the path a SIGHUP takes. */
#pragma once

#include <stdbool.h>

#include "lb/config.h"

struct cluster;

/* Whether a backend of p names service:. */
bool lb_follow_needed(const struct lb_plan *p);

/* The balancers of in (borrowed; it must outlive *ret) with following
 * backends resolved through c (NULL: no cluster engine runs, they are held
 * down). *ret_sig: one string of every resolved address and reason, to
 * tell whether anything changed (free() it). Free *ret with
 * lb_follow_free(). */
int lb_follow_resolve(const struct lb_plan *in, struct cluster *c, struct lb_plan **ret,
		      char **ret_sig);
void lb_follow_free(struct lb_plan *p);
