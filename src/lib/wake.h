/* Waking a libevent loop from another thread: the one way bcdr's engines
 * hand work finished on a thread back to their loop (the agent's pool, the
 * alert and action engines, the balancer's workers and control loop).
 *
 * An eventfd the loop watches: wake_signal() is one write(2), so it is safe
 * from any thread, needs no evthread locking on the base (the balancer's
 * data-path loops run without it), and signals sent before the loop gets to
 * them coalesce into one callback. The callback runs on the loop thread. */
#pragma once

#include <event2/event.h>

#include "lib/cleanup.h"

struct wake;

/* Watches a new eventfd on base; cb(arg) runs on the loop after signals. */
int wake_new(struct event_base *base, void (*cb)(void *arg), void *arg, struct wake **ret);
/* Stops watching and closes the eventfd; NULL is allowed. Call it on the
 * loop thread once no other thread can signal any more. */
void wake_free(struct wake *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct wake *, wake_free);

/* From any thread: the callback runs soon on the loop. NULL is allowed (an
 * engine used without a loop, as the CLI does, has nothing to wake). */
void wake_signal(struct wake *w);
