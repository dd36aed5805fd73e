#include "model/switchover.h"

#include <math.h>

double switchover_rate(const struct unit_params *p, const struct unit_result *r)
{
	double s = p->redundancy == REDUNDANCY_COLD ? p->switch_success : 1;

	if (p->replicas <= p->needs || !(p->mtbf_s > 0))
		return 0;
	/* A standby is there but in the states where exactly k are up, whose
	 * share is O(mttr/mtbf): first order, like t/MTBF itself. */
	return p->needs / p->mtbf_s * r->availability * s;
}

void switchover_apply(const struct unit_params *p, struct unit_result *r)
{
	double f, add;

	if (!(p->switchover_s > 0))
		return;
	f = switchover_rate(p, r);
	add = fmin(f * p->switchover_s, r->availability);
	if (!(add > 0))
		return;
	r->unavailability += add;
	r->availability -= add;
	r->failure_rate += f;
	r->mtbf_s = r->failure_rate > 0 ? r->availability / r->failure_rate : INFINITY;
	r->mttr_s = r->failure_rate > 0 ? r->unavailability / r->failure_rate : 0;
}
