/* The cluster engine's events as alerts, through the agent's alert engine
 * (docs/cluster.md, "Events, alerts and metrics"):
 *
 *   cluster:etcd                          critical while etcd is unreachable
 *                                         or without quorum
 *   cluster:member:MEMBER:lost            warning while a member seen before
 *                                         is gone (its lease ended)
 *   cluster:service:SERVICE:no-leader     critical while the service has no
 *                                         leader
 *   cluster:service:SERVICE:leader-changed  warning, for the plan's
 *                                         leader_changed_hold (10 min)
 *                                         after every new leader; its labels
 *                                         name the leader and the one before,
 *                                         so each change is news
 *   cluster:paused                        warning while in maintenance
 *
 * On the loop thread, like the alert engine. */
#pragma once

#include "agent/daemon.h"
#include "cluster/cluster.h"

struct cluster_alerts;

int cluster_alerts_new(struct agent *a, struct cluster_alerts **ret);
void cluster_alerts_free(struct cluster_alerts *ca);
/* One event of the engine (its on_event). NULL ca is allowed. */
void cluster_alerts_note(struct cluster_alerts *ca, const struct cluster_event *ev);
