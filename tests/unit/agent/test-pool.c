#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>
#include <event2/thread.h>

#include "agent/pool.h"
#include "lib/timeutil.h"

struct job {
	struct event_base *base;
	int sleep_ms;
	int done;
	int *remaining;
	pthread_t ran_on;
	usec_t done_at;
};

static void work(void *arg)
{
	struct job *j = arg;

	j->ran_on = pthread_self();
	usleep((useconds_t)j->sleep_ms * 1000);
}

static void done(void *arg, int cancelled)
{
	struct job *j = arg;

	j->done = cancelled ? -1 : 1;
	j->done_at = now_monotonic();
	if (--*j->remaining == 0)
		event_base_loopbreak(j->base);
}

/* A job that blocks does not hold back the others: the pool grows. */
static void test_blocked_job_does_not_block_others(void **state)
{
	struct event_base *base;
	struct pool *pool;
	struct job jobs[6];
	int remaining = 5;
	struct pool_stats st;

	(void)state;
	assert_int_equal(evthread_use_pthreads(), 0);
	base = event_base_new();
	assert_non_null(base);
	assert_int_equal(pool_new(base, 1, 8, &pool), 0);
	/* the blocker runs 30 s (past the end of the test); the five others must finish long before */
	jobs[0] = (struct job){ base, 30000, 0, &(int){ 100 } };
	assert_int_equal(pool_submit(pool, work, done, &jobs[0]), 0);
	for (int i = 1; i < 6; i++) {
		jobs[i] = (struct job){ base, 10, 0, &remaining };
		assert_int_equal(pool_submit(pool, work, done, &jobs[i]), 0);
	}
	struct timeval limit = { 2, 0 };
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	for (int i = 1; i < 6; i++)
		assert_int_equal(jobs[i].done, 1);
	assert_int_equal(jobs[0].done, 0);
	pool_get_stats(pool, &st);
	assert_true(st.threads >= 2);
	pool_free(pool); /* the blocker is left behind, not waited for */
	event_base_free(base);
}

/* A batch of quick jobs runs on one worker, though two are idle: one
 * thread wake-up for the lot. The loop does not run until they are done,
 * so no help is sent (it would be after 25 ms on a loaded machine). */
static void test_batch_runs_on_one_worker(void **state)
{
	struct event_base *base = event_base_new();
	struct pool *pool;
	struct job jobs[50];
	int remaining = 50;
	struct pool_stats st;

	(void)state;
	assert_non_null(base);
	assert_int_equal(pool_new(base, 2, 8, &pool), 0);
	usleep(200 * 1000); /* both threads up and waiting, as in a running agent */
	pool_batch_begin(pool);
	for (int i = 0; i < 50; i++) {
		jobs[i] = (struct job){ base, 0, 0, &remaining, 0, 0 };
		assert_int_equal(pool_submit(pool, work, done, &jobs[i]), 0);
	}
	pool_batch_end(pool);
	for (int i = 0; i < 500; i++) {
		pool_get_stats(pool, &st);
		if (st.completed == 50)
			break;
		usleep(10 * 1000);
	}
	assert_int_equal(st.completed, 50);
	struct timeval limit = { 5, 0 };
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	assert_int_equal(remaining, 0);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(jobs[i].done, 1);
		assert_true(pthread_equal(jobs[i].ran_on, jobs[0].ran_on));
	}
	pool_get_stats(pool, &st);
	assert_int_equal(st.threads, 2);
	pool_free(pool);
	event_base_free(base);
}

/* A job in a batch that never returns holds back neither the rest of its
 * batch (an idle worker takes it over) nor their results (delivered while
 * the blocker still runs). */
static void test_batch_blocker_does_not_hold_the_rest(void **state)
{
	struct event_base *base = event_base_new();
	struct pool *pool;
	struct job jobs[6];
	int remaining = 5;
	usec_t start;

	(void)state;
	assert_non_null(base);
	assert_int_equal(pool_new(base, 2, 8, &pool), 0);
	start = now_monotonic();
	pool_batch_begin(pool);
	jobs[0] = (struct job){ base, 30000, 0, &(int){ 100 }, 0, 0 };
	assert_int_equal(pool_submit(pool, work, done, &jobs[0]), 0);
	for (int i = 1; i < 6; i++) {
		jobs[i] = (struct job){ base, 5, 0, &remaining, 0, 0 };
		assert_int_equal(pool_submit(pool, work, done, &jobs[i]), 0);
	}
	pool_batch_end(pool);
	struct timeval limit = { 2, 0 };
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	assert_int_equal(jobs[0].done, 0);
	for (int i = 1; i < 6; i++) {
		assert_int_equal(jobs[i].done, 1);
		assert_true(jobs[i].done_at - start < 1500 * USEC_PER_MSEC);
		assert_false(pthread_equal(jobs[i].ran_on, jobs[0].ran_on));
	}
	pool_free(pool);
	event_base_free(base);
}

/* A batch where the first quick job is followed by one that blocks: the
 * quick job's result arrives though the queue's last job never ends. */
static void test_batch_results_delivered_before_blocker_ends(void **state)
{
	struct event_base *base = event_base_new();
	struct pool *pool;
	struct job jobs[2];
	int remaining = 1;

	(void)state;
	assert_non_null(base);
	assert_int_equal(pool_new(base, 1, 1, &pool), 0);
	pool_batch_begin(pool);
	jobs[0] = (struct job){ base, 1, 0, &remaining, 0, 0 };
	jobs[1] = (struct job){ base, 30000, 0, &(int){ 100 }, 0, 0 };
	assert_int_equal(pool_submit(pool, work, done, &jobs[0]), 0);
	assert_int_equal(pool_submit(pool, work, done, &jobs[1]), 0);
	pool_batch_end(pool);
	struct timeval limit = { 2, 0 };
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	assert_int_equal(jobs[0].done, 1);
	assert_int_equal(jobs[1].done, 0);
	pool_free(pool);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocked_job_does_not_block_others),
		cmocka_unit_test(test_batch_runs_on_one_worker),
		cmocka_unit_test(test_batch_blocker_does_not_hold_the_rest),
		cmocka_unit_test(test_batch_results_delivered_before_blocker_ends),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
