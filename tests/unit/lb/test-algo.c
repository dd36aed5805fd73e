#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lb/algo.h"

static void test_swrr_is_smooth_and_weighted(void **state)
{
	struct lb_algo a;
	struct lb_cand c[3] = { { 0, 5, 0, 0 }, { 1, 1, 0, 0 }, { 2, 1, 0, 0 } };
	char seq[8] = {};

	(void)state;
	lb_algo_init(&a, LB_ALGO_ROUNDROBIN, 1);
	for (int i = 0; i < 7; i++)
		seq[i] = (char)('a' + lb_algo_pick(&a, c, 3, 0));
	/* nginx's documented sequence for weights 5, 1, 1. */
	assert_string_equal(seq, "aabacaa");
	lb_algo_release(&a);
}

static void test_leastconn_prefers_fewest_per_weight(void **state)
{
	struct lb_algo a;
	struct lb_cand c[3] = { { 0, 1, 4, 0 }, { 1, 2, 5, 0 }, { 2, 1, 2, 0 } };

	(void)state;
	lb_algo_init(&a, LB_ALGO_LEASTCONN, 2);
	/* (4+1)/1 = 5, (5+1)/2 = 3, (2+1)/1 = 3: one of b, c, never a. */
	for (int i = 0; i < 100; i++)
		assert_int_not_equal(lb_algo_pick(&a, c, 3, 0), 0);
	c[2].conns = 9;
	for (int i = 0; i < 100; i++)
		assert_int_equal(lb_algo_pick(&a, c, 3, 0), 1);
	lb_algo_release(&a);
}

static void test_p2c_avoids_the_loaded(void **state)
{
	struct lb_algo a;
	struct lb_cand c[4] = { { 0, 1, 100, 0 }, { 1, 1, 0, 0 }, { 2, 1, 0, 0 }, { 3, 1, 0, 0 } };
	int hits[4] = {};

	(void)state;
	lb_algo_init(&a, LB_ALGO_P2C, 3);
	for (int i = 0; i < 10000; i++)
		hits[lb_algo_pick(&a, c, 4, 0)]++;
	/* The loaded one wins only when drawn twice, which pick_two avoids. */
	assert_int_equal(hits[0], 0);
	for (int i = 1; i < 4; i++)
		assert_in_range(hits[i], 2800, 3900);
	lb_algo_release(&a);
}

static void test_peak_ewma_prefers_fast(void **state)
{
	struct lb_algo a;
	struct lb_cand c[2] = { { 0, 1, 0, 10000 }, { 1, 1, 0, 100 } };
	int hits[2] = {};

	(void)state;
	lb_algo_init(&a, LB_ALGO_PEAK_EWMA, 4);
	for (int i = 0; i < 1000; i++)
		hits[lb_algo_pick(&a, c, 2, 0)]++;
	assert_int_equal(hits[1], 1000);
	lb_algo_release(&a);
}

static void test_maglev_is_balanced_and_stable(void **state)
{
	struct lb_algo a;
	const char *names[4] = { "a", "b", "c", "d" };
	unsigned idx[4] = { 0, 1, 2, 3 }, w[4] = { 1, 1, 1, 1 };
	struct lb_cand c[4] = { { 0, 1, 0, 0 }, { 1, 1, 0, 0 }, { 2, 1, 0, 0 }, { 3, 1, 0, 0 } };
	unsigned count[4] = {}, before[1000], moved = 0;

	(void)state;
	lb_algo_init(&a, LB_ALGO_MAGLEV, 5);
	assert_int_equal(lb_algo_maglev_build(&a, names, idx, w, 4, 1), 0);
	for (uint32_t i = 0; i < LB_MAGLEV_SIZE; i++)
		count[a.maglev[i]]++;
	for (int i = 0; i < 4; i++)
		assert_in_range(count[i], LB_MAGLEV_SIZE / 4 - 100, LB_MAGLEV_SIZE / 4 + 100);
	for (unsigned k = 0; k < 1000; k++) {
		uint64_t h = lb_hash(&k, sizeof(k));

		before[k] = c[lb_algo_pick(&a, c, 4, h)].idx;
		assert_int_equal(c[lb_algo_pick(&a, c, 4, h)].idx, before[k]);
	}
	/* Remove d: only d's clients move. */
	assert_int_equal(lb_algo_maglev_build(&a, names, idx, w, 3, 2), 0);
	for (unsigned k = 0; k < 1000; k++) {
		uint64_t h = lb_hash(&k, sizeof(k));
		unsigned now = c[lb_algo_pick(&a, c, 3, h)].idx;

		if (before[k] != 3)
			moved += now != before[k];
		else
			assert_int_not_equal(now, 3);
	}
	assert_in_range(moved, 0, 60);
	/* Weights: 3:1 gives about three times the slots. */
	w[0] = 3;
	assert_int_equal(lb_algo_maglev_build(&a, names, idx, w, 2, 3), 0);
	memset(count, 0, sizeof(count));
	for (uint32_t i = 0; i < LB_MAGLEV_SIZE; i++)
		count[a.maglev[i]]++;
	assert_in_range(count[0], LB_MAGLEV_SIZE * 3 / 4 - 200, LB_MAGLEV_SIZE * 3 / 4 + 200);
	lb_algo_release(&a);
}

static void test_first_takes_lowest_index(void **state)
{
	struct lb_algo a;
	struct lb_cand c[3] = { { 4, 1, 9, 0 }, { 2, 1, 9, 0 }, { 7, 1, 0, 0 } };

	(void)state;
	lb_algo_init(&a, LB_ALGO_FIRST, 6);
	assert_int_equal(lb_algo_pick(&a, c, 3, 0), 1);
	lb_algo_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_swrr_is_smooth_and_weighted),
		cmocka_unit_test(test_leastconn_prefers_fewest_per_weight),
		cmocka_unit_test(test_p2c_avoids_the_loaded),
		cmocka_unit_test(test_peak_ewma_prefers_fast),
		cmocka_unit_test(test_maglev_is_balanced_and_stable),
		cmocka_unit_test(test_first_takes_lowest_index),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
