/* What a component's switch-overs cost: each time a replica in service
 * fails and a standby takes over, the component is down for the
 * switch-over time (a cluster's failover: docs/models.md, "Switch-over
 * time"). The chains of availability.c take a switch-over as instant; this
 * adds its time, to first order in switch-over time / MTBF. */
#pragma once

#include "model/availability.h"

/* Switch-overs per second of the component with parameters p and steady
 * state r: the k replicas in service fail at k/mtbf while it is up, and a
 * cold standby takes over with switch_success. 0 without a standby
 * (replicas == needs). */
double switchover_rate(const struct unit_params *p, const struct unit_result *r);
/* r with the downtime of p->switchover_s per switch-over added: the
 * unavailability, the failure rate (each switch-over is an outage), the
 * mean up and down times. Nothing when p->switchover_s is 0. */
void switchover_apply(const struct unit_params *p, struct unit_result *r);
