/* A small pool of worker threads for blocking work (probes, backups,
 * drills) next to the libevent loop. Work runs on a worker; its completion
 * runs on the loop thread (woken through lib/wake), so results never touch
 * loop state from a worker.
 *
 * The pool starts with min threads and grows, up to max, by one thread each
 * time the oldest queued job has waited 100 ms: a probe that never returns
 * ties up one thread, not the others, and a burst of quick jobs adds none.
 *
 * Wake-ups cost more than quick jobs: the loop is woken once the queue is
 * empty (one wake-up for every completion since), and jobs submitted as a
 * batch wake one worker, which runs them one after the other. When a batch
 * has waited 25 ms (a slow job ahead), idle workers join in one by one and
 * the results so far are delivered. */
#pragma once

#include <event2/event.h>

struct pool;

int pool_new(struct event_base *base, unsigned min, unsigned max, struct pool **ret);
/* Stops the workers: queued jobs are completed with cancelled set; a
 * worker stuck in a job longer than a second is left behind (detached). */
void pool_free(struct pool *pool);

/* Queues work(arg) for a worker, then done(arg, cancelled) on the loop. */
int pool_submit(struct pool *pool, void (*work)(void *arg), void (*done)(void *arg, int cancelled),
		void *arg);

/* Jobs submitted between these two go to one worker (see above). */
void pool_batch_begin(struct pool *pool);
void pool_batch_end(struct pool *pool);

struct pool_stats {
	unsigned threads, busy, queued;
	unsigned long long completed;
};
void pool_get_stats(struct pool *pool, struct pool_stats *ret);
