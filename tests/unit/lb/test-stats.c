/* lb/stats.c's latency histogram: buckets by upper bound (le), quantiles
 * interpolated inside their bucket, +Inf beyond the last bound. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lb/internal.h"

static void test_histogram(void **state)
{
	struct hist h;

	(void)state;
	memset(&h, 0, sizeof(h));
	assert_true(lb_hist_quantile(&h, 0.5) == -1);
	/* 100 samples of 3 ms fall in (2.5, 5]: quantiles interpolate in it. */
	for (int i = 0; i < 100; i++)
		lb_hist_add(&h, 3000);
	assert_int_equal(atomic_load(&h.count), 100);
	assert_int_equal(atomic_load(&h.sum_us), 300000);
	assert_int_equal(atomic_load(&h.bucket[3]), 100);
	assert_true(lb_hist_quantile(&h, 0.5) == 2.5 + 2.5 * 0.5);
	assert_true(lb_hist_quantile(&h, 1.0) == 5);
	/* One slow sample beyond the last bound counts in +Inf. */
	lb_hist_add(&h, 60 * USEC_PER_SEC);
	assert_int_equal(atomic_load(&h.bucket[HIST_N - 1]), 1);
	assert_true(lb_hist_quantile(&h, 0.5) < 5);
	assert_true(lb_hist_quantile(&h, 1.0) > 5000);
	/* The bound itself belongs to its bucket (le). */
	memset(&h, 0, sizeof(h));
	lb_hist_add(&h, 1000);
	assert_int_equal(atomic_load(&h.bucket[1]), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_histogram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
