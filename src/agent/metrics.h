/* /metrics in the Prometheus text format (version 0.0.4): check states,
 * probe values and durations, backup age, drill times, agent self-metrics.
 * `promtool check metrics` finds nothing to say about it. */
#pragma once

#include <event2/buffer.h>

#include "agent/daemon.h"

int metrics_render(struct agent *a, struct evbuffer *out);
