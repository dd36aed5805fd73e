#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "backup/forget.h"

/* Snapshots every `step` seconds from a fixed local time, oldest first. */
static struct snapshot **series(size_t n, long step, struct snapshot *store)
{
	struct snapshot **v = calloc(n, sizeof(*v));
	struct tm tm = { .tm_year = 2026 - 1900, .tm_mon = 0, .tm_mday = 1, .tm_hour = 0,
			 .tm_isdst = -1 };
	time_t t0 = mktime(&tm);

	for (size_t i = 0; i < n; i++) {
		store[i].time = (usec_t)(t0 + (long)i * step) * USEC_PER_SEC;
		v[i] = &store[i];
	}
	return v;
}

static size_t count(const bool *keep, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += keep[i];
	return k;
}

static void test_keep_last(void **state)
{
	struct snapshot store[10] = {};
	struct snapshot **v = series(10, 60, store);
	struct keep_policy k = { .last = 3, -1, -1, -1, -1, -1 };
	bool keep[10];

	(void)state;
	keep_policy_apply(&k, v, 10, keep);
	assert_int_equal(count(keep, 10), 3);
	assert_true(keep[9] && keep[8] && keep[7] && !keep[6]);
	free(v);
}

static void test_daily_keeps_newest_of_each_day(void **state)
{
	/* Every 6 hours for 10 days: 40 snapshots, 4 a day. */
	struct snapshot store[40] = {};
	struct snapshot **v = series(40, 6 * 3600, store);
	struct keep_policy k = { .last = -1, .hourly = -1, .daily = 7, .weekly = -1,
				 .monthly = -1, .yearly = -1 };
	bool keep[40];

	(void)state;
	keep_policy_apply(&k, v, 40, keep);
	assert_int_equal(count(keep, 40), 7);
	/* The newest of each of the last 7 days: positions 39, 35, ..., 15. */
	for (int d = 0; d < 7; d++)
		assert_true(keep[39 - 4 * d]);
	assert_false(keep[11]);
	free(v);
}

static void test_buckets_combine(void **state)
{
	/* Hourly for 3 days. */
	struct snapshot store[72] = {};
	struct snapshot **v = series(72, 3600, store);
	struct keep_policy k = { .last = 2, .hourly = 5, .daily = 3, .weekly = -1, .monthly = 1,
				 .yearly = 1 };
	bool keep[72];

	(void)state;
	keep_policy_apply(&k, v, 72, keep);
	/* last 2 and hourly 5 overlap (71..67); daily adds the ends of days 1
	 * and 0 (47, 23); monthly and yearly pick 71 again. */
	assert_int_equal(count(keep, 72), 7);
	assert_true(keep[23] && keep[47] && keep[67] && !keep[66]);
	free(v);
}

static void test_empty_policy_is_unset(void **state)
{
	struct keep_policy k = { -1, -1, -1, -1, -1, -1 };

	(void)state;
	assert_false(keep_policy_set(&k));
	k.weekly = 1;
	assert_true(keep_policy_set(&k));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keep_last),
		cmocka_unit_test(test_daily_keeps_newest_of_each_day),
		cmocka_unit_test(test_buckets_combine),
		cmocka_unit_test(test_empty_policy_is_unset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
