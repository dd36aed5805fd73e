#include "lb/lb.h"

#include <errno.h>
#include <stdlib.h>

#include "lib/err.h"

/* The data path lands next; this keeps the seam building meanwhile. */
struct lb {
	int unused;
};

int lb_new(const struct lb_plan *plan, struct event_base *base, const struct lb_options *opts,
	   struct lb **ret)
{
	(void)plan;
	(void)base;
	(void)opts;
	(void)ret;
	return -BCDR_ERR_UNSUPPORTED;
}

int lb_start(struct lb *lb, char **ret_error)
{
	(void)lb;
	(void)ret_error;
	return -BCDR_ERR_UNSUPPORTED;
}

int lb_reload(struct lb *lb, const struct lb_plan *plan, char **ret_warning)
{
	(void)lb;
	(void)plan;
	(void)ret_warning;
	return -BCDR_ERR_UNSUPPORTED;
}

void lb_stop(struct lb *lb)
{
	(void)lb;
}

void lb_free(struct lb *lb)
{
	free(lb);
}

json_t *lb_status_json(struct lb *lb)
{
	(void)lb;
	return json_array();
}

int lb_set_state(struct lb *lb, const char *balancer, const char *backend, const char *state)
{
	(void)lb;
	(void)balancer;
	(void)backend;
	(void)state;
	return -BCDR_ERR_UNSUPPORTED;
}

int lb_set_weight(struct lb *lb, const char *balancer, const char *backend, unsigned weight)
{
	(void)lb;
	(void)balancer;
	(void)backend;
	(void)weight;
	return -BCDR_ERR_UNSUPPORTED;
}

int lb_metrics(struct lb *lb, struct buf *out)
{
	(void)lb;
	(void)out;
	return 0;
}

int lb_control_listen(struct lb *lb, const char *path)
{
	(void)lb;
	(void)path;
	return -BCDR_ERR_UNSUPPORTED;
}
