#include "agent/lb-follow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cluster/cluster.h"
#include "lib/buf.h"

bool lb_follow_needed(const struct lb_plan *p)
{
	for (size_t b = 0; p && b < p->n_balancers; b++)
		for (size_t k = 0; k < p->balancers[b].n_backends; k++)
			if (p->balancers[b].backends[k].service)
				return true;
	return false;
}

/* One following backend: address (owned) or held_down (owned, cast). */
static int resolve_one(struct lb_backend_conf *be, struct cluster *c)
{
	char addr[256], why[640], hp[300];
	struct sockaddr_storage ss;
	unsigned len;
	int r;

	be->address = NULL;
	be->held_down = NULL;
	if (!c) {
		snprintf(why, sizeof(why),
			 "follows service '%s': the cluster engine does not run (see the log)",
			 be->service);
		return (be->held_down = strdup(why)) ? 0 : -ENOMEM;
	}
	r = cluster_leader_address(c, be->service, addr, sizeof(addr), why, sizeof(why));
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return (be->held_down = strdup(why)) ? 0 : -ENOMEM;
	snprintf(hp, sizeof(hp), strchr(addr, ':') ? "[%s]:%lld" : "%s:%lld", addr,
		 (long long)be->port);
	if (lb_parse_address(hp, &ss, &len) < 0) {
		snprintf(why, sizeof(why),
			 "service '%s': its leader's address '%s' is not an IP address "
			 "(set cluster: address: on that member)",
			 be->service, addr);
		return (be->held_down = strdup(why)) ? 0 : -ENOMEM;
	}
	return (be->address = strdup(hp)) ? 0 : -ENOMEM;
}

int lb_follow_resolve(const struct lb_plan *in, struct cluster *c, struct lb_plan **ret,
		      char **ret_sig)
{
	struct lb_plan *p = calloc(1, sizeof(*p));
	struct buf sig;
	int r = 0;

	*ret = NULL;
	*ret_sig = NULL;
	if (!p)
		return -ENOMEM;
	buf_init(&sig, 1024 * 1024);
	p->balancers = calloc(in->n_balancers ? in->n_balancers : 1, sizeof(*p->balancers));
	if (!p->balancers) {
		free(p);
		buf_release(&sig);
		return -ENOMEM;
	}
	p->n_balancers = in->n_balancers;
	for (size_t b = 0; b < in->n_balancers; b++) {
		struct lb_balancer_conf *bal = &p->balancers[b];

		*bal = in->balancers[b]; /* shallow: what is borrowed stays in */
		bal->backends = calloc(bal->n_backends, sizeof(*bal->backends));
		if (!bal->backends) {
			bal->n_backends = 0;
			r = -ENOMEM;
			break;
		}
		for (size_t k = 0; k < bal->n_backends; k++) {
			struct lb_backend_conf *be = &bal->backends[k];

			*be = in->balancers[b].backends[k];
			if (!be->service)
				continue;
			r = resolve_one(be, c);
			if (r < 0) {
				bal->n_backends = k + 1;
				break;
			}
			buf_printf(&sig, "%s/%s=%s|%s\n", bal->name, be->name,
				   be->address ? be->address : "",
				   be->held_down ? be->held_down : "");
		}
		if (r < 0)
			break;
	}
	if (r < 0) {
		lb_follow_free(p);
		buf_release(&sig);
		return r;
	}
	*ret_sig = buf_steal(&sig, NULL);
	buf_release(&sig);
	if (!*ret_sig) {
		lb_follow_free(p);
		return -ENOMEM;
	}
	*ret = p;
	return 0;
}

void lb_follow_free(struct lb_plan *p)
{
	if (!p)
		return;
	for (size_t b = 0; b < p->n_balancers; b++) {
		struct lb_balancer_conf *bal = &p->balancers[b];

		for (size_t k = 0; bal->backends && k < bal->n_backends; k++)
			if (bal->backends[k].service) {
				free(bal->backends[k].address);
				free((char *)bal->backends[k].held_down);
			}
		free(bal->backends);
	}
	free(p->balancers);
	free(p);
}
