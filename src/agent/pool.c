#include "agent/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "lib/cleanup.h"
#include "lib/timeutil.h"
#include "lib/wake.h"

/* A thread is added when the oldest queued job has waited this long: the
 * threads there are cannot keep up, or are stuck in probes that never
 * return. The agent submits every due check at once each tick; one thread
 * clears 100 quick probes well within it, so the pool stays small (each
 * thread holds a stack and its share of malloc's memory for good). */
#define GROW_AFTER (100 * USEC_PER_MSEC)
/* A batch goes to one worker; when its oldest queued job has waited this
 * long (a slow probe ahead of it, or one that never returns), an idle
 * worker is woken to take the rest, and the results so far go to the loop. */
#define HELP_AFTER (25 * USEC_PER_MSEC)

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
	bool busy;
	usec_t job_started; /* monotonic, while busy */
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t wake, exited;
	struct job *queue, **queue_tail;
	struct job *finished, **finished_tail;
	struct worker *workers;
	struct wake *done;
	bool done_pending;     /* done signalled, on_done not yet run */
	struct event *help_ev; /* checks the backlog while jobs are queued */
	bool help_armed;
	unsigned threads, busy, queued, max;
	unsigned long long completed;
	bool batching;         /* between pool_batch_begin() and _end() */
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
		w->busy = true;
		w->job_started = now_monotonic();
		pthread_mutex_unlock(&pool->lock);

		job->work(job->arg);

		pthread_mutex_lock(&pool->lock);
		w->busy = false;
		pool->busy--;
		pool->completed++;
		job->next = NULL;
		*pool->finished_tail = job;
		pool->finished_tail = &job->next;
		/* The loop is woken once the queue is empty: on_done takes the
		 * whole list, so a batch costs one wake-up. While jobs remain,
		 * this worker goes on with them and the help timer delivers what
		 * is done if the batch takes long. */
		if (!pool->queue && !pool->done_pending && !pool->stopping) {
			pool->done_pending = true;
			wake_signal(pool->done);
		}
	}
	w->exited = true;
	pthread_cond_broadcast(&pool->exited);
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* On the loop thread: run the completions the workers queued. */
static void on_done(void *userdata)
{
	struct pool *pool = userdata;
	struct job *list;
	bool idle;

	pthread_mutex_lock(&pool->lock);
	list = pool->finished;
	pool->finished = NULL;
	pool->finished_tail = &pool->finished;
	pool->done_pending = false;
	/* Nothing queued: the help timer has nothing to watch. */
	idle = !pool->queue && pool->help_armed;
	if (idle)
		pool->help_armed = false;
	pthread_mutex_unlock(&pool->lock);
	if (idle && pool->help_ev)
		event_del(pool->help_ev);
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

/* On the loop thread, every HELP_AFTER while jobs are queued: the results
 * so far go to the loop, an idle worker joins a batch that has waited
 * HELP_AFTER, and a new thread a backlog that has lasted GROW_AFTER. */
static void on_help_check(evutil_socket_t fd, short what, void *userdata)
{
	struct pool *pool = userdata;
	const struct timeval again = { 0, HELP_AFTER };
	bool rearm = false, deliver;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&pool->lock);
	pool->help_armed = false;
	deliver = pool->finished != NULL;
	if (pool->queue && !pool->stopping) {
		usec_t waited = now_monotonic() - pool->queue->queued_at;

		if (waited >= HELP_AFTER && pool->busy < pool->threads)
			pthread_cond_signal(&pool->wake);
		else if (waited >= GROW_AFTER && pool->threads < pool->max)
			(void)spawn(pool);
		pool->help_armed = rearm = true;
	}
	pthread_mutex_unlock(&pool->lock);
	if (rearm)
		event_add(pool->help_ev, &again);
	if (deliver)
		on_done(pool);
}

/* Called with the lock held: watch the queue from the loop. */
static bool help_arm(struct pool *pool)
{
	if (pool->help_armed)
		return false;
	pool->help_armed = true;
	return true;
}

static void help_start(struct pool *pool)
{
	const struct timeval after = { 0, HELP_AFTER };

	event_add(pool->help_ev, &after);
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
	r = wake_new(base, on_done, pool, &pool->done);
	pool->help_ev = evtimer_new(base, on_help_check, pool);
	if (r < 0 || !pool->help_ev) {
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
	on_done(pool);
	while ((job = pool->queue)) {
		pool->queue = job->next;
		job->done(job->arg, 1);
		free(job);
	}
	wake_free(pool->done);
	pool->done = NULL;
	if (pool->help_ev)
		event_free(pool->help_ev);
	pool->help_ev = NULL;
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
	struct job *job = calloc(1, sizeof(*job));
	bool arm;

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
	arm = help_arm(pool);
	if (!pool->batching)
		pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	if (arm)
		help_start(pool);
	return 0;
}

void pool_batch_begin(struct pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	pool->batching = true;
	pthread_mutex_unlock(&pool->lock);
}

void pool_batch_end(struct pool *pool)
{
	usec_t now = now_monotonic();
	bool working = false;

	pthread_mutex_lock(&pool->lock);
	pool->batching = false;
	/* A worker in a job that started lately goes on with the queue when
	 * it is done: it takes the batch, no other needs waking. One in a
	 * long job (a backup, a hung probe) does not count. */
	for (struct worker *w = pool->workers; w && !working; w = w->next)
		working = w->busy && now - w->job_started < HELP_AFTER;
	if (pool->queue && !working)
		pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
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
