#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>
#include <event2/thread.h>

#include "agent/pool.h"

struct job {
	struct event_base *base;
	int sleep_ms;
	int done;
	int *remaining;
};

static void work(void *arg)
{
	struct job *j = arg;

	usleep((useconds_t)j->sleep_ms * 1000);
}

static void done(void *arg, int cancelled)
{
	struct job *j = arg;

	j->done = cancelled ? -1 : 1;
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
	/* the blocker runs 3 s; the five others must finish long before */
	jobs[0] = (struct job){ base, 3000, 0, &(int){ 100 } };
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocked_job_does_not_block_others),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
