/* parallel_for(): every turn once on several threads, each thread's state
 * set up and torn down once, the first error stops the turns not begun. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/parallel.h"

#define TURNS 1000

struct run {
	atomic_int done[TURNS];
	atomic_int setups, turns;
	atomic_int busy; /* threads torn down after a turn or more */
	int fail_at;     /* this turn fails, -1: none */
	int fail_setups; /* this many setups fail */
};

/* A thread's state: its own count of turns. */
struct mine {
	struct run *run;
	int turns;
};

static int setup(void *userdata, void **ret)
{
	struct run *run = userdata;
	struct mine *m;

	if (atomic_fetch_add(&run->setups, 1) < run->fail_setups)
		return -EIO;
	if (!(m = calloc(1, sizeof(*m))))
		return -ENOMEM;
	m->run = run;
	*ret = m;
	return 0;
}

static void teardown(void *state)
{
	struct mine *m = state;

	if (m->turns)
		atomic_fetch_add(&m->run->busy, 1);
	free(m);
}

static int turn(size_t i, void *state, void *userdata)
{
	struct run *run = userdata;

	((struct mine *)state)->turns++;
	atomic_fetch_add(&run->done[i], 1);
	atomic_fetch_add(&run->turns, 1);
	usleep(100); /* long enough that the other threads get turns */
	return (int)i == run->fail_at ? -ENOSPC : 0;
}

static const struct parallel_ops ops = { .setup = setup, .teardown = teardown, .turn = turn };

static void test_every_turn_once_on_several_threads(void **state)
{
	struct run *run = calloc(1, sizeof(*run));

	(void)state;
	run->fail_at = -1;
	assert_int_equal(parallel_for(TURNS, 4, &ops, run), 0);
	for (int i = 0; i < TURNS; i++)
		assert_int_equal(atomic_load(&run->done[i]), 1);
	assert_int_equal(atomic_load(&run->setups), 4);
	assert_true(atomic_load(&run->busy) > 1); /* the turns were shared */
	free(run);
}

static void test_first_error_stops_the_rest(void **state)
{
	struct run *run = calloc(1, sizeof(*run));

	(void)state;
	run->fail_at = 10;
	assert_int_equal(parallel_for(TURNS, 3, &ops, run), -ENOSPC);
	assert_int_equal(atomic_load(&run->done[10]), 1);
	assert_true(atomic_load(&run->turns) < TURNS);
	/* alone, the failing thread takes no turn after its failure */
	memset(run, 0, sizeof(*run));
	run->fail_at = 0;
	assert_int_equal(parallel_for(TURNS, 1, &ops, run), -ENOSPC);
	assert_int_equal(atomic_load(&run->turns), 1);
	free(run);
}

static void test_a_failed_setup_is_the_error(void **state)
{
	struct run *run = calloc(1, sizeof(*run));

	(void)state;
	run->fail_at = -1;
	run->fail_setups = 100;
	assert_int_equal(parallel_for(TURNS, 2, &ops, run), -EIO);
	assert_true(atomic_load(&run->turns) < TURNS);
	free(run);
}

static void test_fewer_turns_than_threads_and_none(void **state)
{
	struct run *run = calloc(1, sizeof(*run));

	(void)state;
	run->fail_at = -1;
	assert_int_equal(parallel_for(2, 16, &ops, run), 0);
	assert_int_equal(atomic_load(&run->turns), 2);
	assert_true(atomic_load(&run->setups) <= 2); /* no thread without a turn */
	assert_int_equal(parallel_for(0, 16, &ops, run), 0);
	assert_int_equal(atomic_load(&run->turns), 2);
	assert_int_equal(parallel_for(1, 1000, &ops, run), 0); /* capped, not refused */
	assert_int_equal(atomic_load(&run->turns), 3);
	free(run);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_turn_once_on_several_threads),
		cmocka_unit_test(test_first_error_stops_the_rest),
		cmocka_unit_test(test_a_failed_setup_is_the_error),
		cmocka_unit_test(test_fewer_turns_than_threads_and_none),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
