#include "agent/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "lib/cleanup.h"
#include "lib/timeutil.h"

/* A thread is added when the oldest queued job has waited this long: the
 * threads there are cannot keep up, or are stuck in probes that never
 * return. The agent submits every due check at once each tick; two threads
 * clear 100 quick probes well within it, so the pool stays small (each
 * thread holds a stack and its share of malloc's memory for good). */
#define GROW_AFTER (100 * USEC_PER_MSEC)

struct job {
	struct job *next;
	void (*work)(void *arg);
	void (*done)(void *arg, int cancelled);
	void *arg;
	usec_t queued_at;
};

struct worker {
	struct worker *next;
	pthread_t thread;
	struct pool *pool;
	bool exited;
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t wake, exited;
	struct job *queue, **queue_tail;
	struct job *finished, **finished_tail;
	struct worker *workers;
	struct event *done_ev;
	struct event *grow_ev; /* checks the backlog while jobs are queued */
	bool grow_armed;
	unsigned threads, busy, queued, max;
	unsigned long long completed;
	bool stopping;
};

static void *worker_main(void *userdata)
{
	struct worker *w = userdata;
	struct pool *pool = w->pool;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		struct job *job;

		while (!pool->queue && !pool->stopping)
			pthread_cond_wait(&pool->wake, &pool->lock);
		if (pool->stopping)
			break;
		job = pool->queue;
		pool->queue = job->next;
		if (!pool->queue)
			pool->queue_tail = &pool->queue;
		pool->queued--;
		pool->busy++;
		pthread_mutex_unlock(&pool->lock);

		job->work(job->arg);

		pthread_mutex_lock(&pool->lock);
		pool->busy--;
		pool->completed++;
		job->next = NULL;
		/* Only the first completion of a batch wakes the loop: on_done
		 * takes the whole list, so the others ride along with it. */
		if (!pool->finished && !pool->stopping)
			event_active(pool->done_ev, EV_READ, 0);
		*pool->finished_tail = job;
		pool->finished_tail = &job->next;
	}
	w->exited = true;
	pthread_cond_broadcast(&pool->exited);
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* On the loop thread: run the completions the workers queued. */
static void on_done(evutil_socket_t fd, short what, void *userdata)
{
	struct pool *pool = userdata;
	struct job *list;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&pool->lock);
	list = pool->finished;
	pool->finished = NULL;
	pool->finished_tail = &pool->finished;
	pthread_mutex_unlock(&pool->lock);
	while (list) {
		struct job *next = list->next;

		list->done(list->arg, 0);
		free(list);
		list = next;
	}
}

/* Called with the lock held. */
static int spawn(struct pool *pool)
{
	struct worker *w = calloc(1, sizeof(*w));
	pthread_attr_t attr;
	int r;

	if (!w)
		return -ENOMEM;
	w->pool = pool;
	pthread_attr_init(&attr);
	/* Probes need little stack; 256 KiB keeps RSS low with many threads. */
	pthread_attr_setstacksize(&attr, 256 * 1024);
	r = pthread_create(&w->thread, &attr, worker_main, w);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		free(w);
		return -r;
	}
	w->next = pool->workers;
	pool->workers = w;
	pool->threads++;
	return 0;
}

/* On the loop thread, every GROW_AFTER while jobs are queued. */
static void on_grow_check(evutil_socket_t fd, short what, void *userdata)
{
	struct pool *pool = userdata;
	const struct timeval again = { 0, GROW_AFTER };
	bool rearm = false;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&pool->lock);
	pool->grow_armed = false;
	if (pool->queue && !pool->stopping) {
		if (now_monotonic() - pool->queue->queued_at >= GROW_AFTER &&
		    pool->threads < pool->max)
			(void)spawn(pool);
		pool->grow_armed = rearm = true;
	}
	pthread_mutex_unlock(&pool->lock);
	if (rearm)
		event_add(pool->grow_ev, &again);
}

int pool_new(struct event_base *base, unsigned min, unsigned max, struct pool **ret)
{
	struct pool *pool = calloc(1, sizeof(*pool));
	int r = 0;

	if (!pool)
		return -ENOMEM;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	pthread_cond_init(&pool->exited, NULL);
	pool->queue_tail = &pool->queue;
	pool->finished_tail = &pool->finished;
	pool->max = max < 1 ? 1 : max;
	pool->done_ev = event_new(base, -1, 0, on_done, pool);
	pool->grow_ev = evtimer_new(base, on_grow_check, pool);
	if (!pool->done_ev || !pool->grow_ev) {
		pool_free(pool);
		return -ENOMEM;
	}
	pthread_mutex_lock(&pool->lock);
	for (unsigned i = 0; i < min && r >= 0; i++)
		r = spawn(pool);
	pthread_mutex_unlock(&pool->lock);
	if (r < 0) {
		pool_free(pool);
		return r;
	}
	*ret = pool;
	return 0;
}

void pool_free(struct pool *pool)
{
	struct timespec deadline;
	struct worker *w;
	struct job *job;

	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->wake);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 1;
	for (;;) {
		bool all = true;

		for (w = pool->workers; w; w = w->next)
			all = all && w->exited;
		if (all || pthread_cond_timedwait(&pool->exited, &pool->lock, &deadline) == ETIMEDOUT)
			break;
	}
	/* Every thread is now either gone or stuck in a job that never returns;
	 * the stuck ones keep the pool alive (leaked on purpose: they may still
	 * touch it). */
	bool stuck = false;
	while ((w = pool->workers)) {
		pool->workers = w->next;
		if (w->exited) {
			pthread_join(w->thread, NULL);
			free(w);
		} else {
			pthread_detach(w->thread);
			stuck = true;
		}
	}
	pthread_mutex_unlock(&pool->lock);
	on_done(-1, 0, pool);
	while ((job = pool->queue)) {
		pool->queue = job->next;
		job->done(job->arg, 1);
		free(job);
	}
	if (pool->done_ev)
		event_free(pool->done_ev);
	pool->done_ev = NULL;
	if (pool->grow_ev)
		event_free(pool->grow_ev);
	pool->grow_ev = NULL;
	if (stuck)
		return;
	pthread_cond_destroy(&pool->wake);
	pthread_cond_destroy(&pool->exited);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

int pool_submit(struct pool *pool, void (*work)(void *arg), void (*done)(void *arg, int cancelled),
		void *arg)
{
	const struct timeval grow_after = { 0, GROW_AFTER };
	struct job *job = calloc(1, sizeof(*job));
	bool arm = false;

	if (!job)
		return -ENOMEM;
	job->work = work;
	job->done = done;
	job->arg = arg;
	job->queued_at = now_monotonic();
	pthread_mutex_lock(&pool->lock);
	*pool->queue_tail = job;
	pool->queue_tail = &job->next;
	pool->queued++;
	/* Grow only on a backlog that lasts (GROW_AFTER), not on a burst of
	 * quick jobs that the threads there are absorb. */
	if (!pool->grow_armed)
		pool->grow_armed = arm = true;
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	if (arm)
		event_add(pool->grow_ev, &grow_after);
	return 0;
}

void pool_get_stats(struct pool *pool, struct pool_stats *ret)
{
	pthread_mutex_lock(&pool->lock);
	ret->threads = pool->threads;
	ret->busy = pool->busy;
	ret->queued = pool->queued;
	ret->completed = pool->completed;
	pthread_mutex_unlock(&pool->lock);
}
