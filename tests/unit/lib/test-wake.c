#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/wake.h"

struct counter {
	struct event_base *base;
	int calls;
};

static void on_wake(void *arg)
{
	struct counter *c = arg;

	c->calls++;
	event_base_loopbreak(c->base);
}

static void *signal_from_thread(void *arg)
{
	usleep(20 * 1000); /* the loop is asleep by now */
	wake_signal(arg);
	return NULL;
}

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Another thread's signal wakes a loop that has nothing else to do, on a
 * base made without evthread locking (the balancer's workers). */
static void test_signal_from_another_thread(void **state)
{
	struct counter c = { event_base_new(), 0 };
	struct wake *w;
	pthread_t t;

	(void)state;
	assert_int_equal(wake_new(c.base, on_wake, &c, &w), 0);
	assert_int_equal(pthread_create(&t, NULL, signal_from_thread, w), 0);
	assert_int_equal(event_base_dispatch(c.base), 0);
	pthread_join(t, NULL);
	assert_int_equal(c.calls, 1);
	wake_free(w);
	event_base_free(c.base);
}

/* Signals sent before the loop runs come as one callback. */
static void test_signals_coalesce(void **state)
{
	struct counter c = { event_base_new(), 0 };
	struct wake *w;

	(void)state;
	assert_int_equal(wake_new(c.base, on_wake, &c, &w), 0);
	for (int i = 0; i < 1000; i++)
		wake_signal(w);
	assert_int_equal(event_base_loop(c.base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
	assert_int_equal(c.calls, 1);
	/* nothing pending any more: a second pass runs no callback */
	assert_int_equal(event_base_loop(c.base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
	assert_int_equal(c.calls, 1);
	wake_free(w);
	event_base_free(c.base);
}

/* NULL is a wake-up of nothing (an engine used without a loop); freeing
 * gives the descriptor back. */
static void test_null_and_free(void **state)
{
	struct event_base *base = event_base_new();
	unsigned before = open_fds();
	struct wake *w;

	(void)state;
	wake_signal(NULL);
	wake_free(NULL);
	assert_int_equal(wake_new(base, on_wake, NULL, &w), 0);
	assert_int_equal(open_fds(), before + 1);
	wake_free(w);
	assert_int_equal(open_fds(), before);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signal_from_another_thread),
		cmocka_unit_test(test_signals_coalesce),
		cmocka_unit_test(test_null_and_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
