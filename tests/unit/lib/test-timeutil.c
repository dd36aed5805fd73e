#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/timeutil.h"

static void test_duration_parse(void **state)
{
	usec_t d;

	(void)state;
	assert_int_equal(duration_parse("200ms", &d), 0);
	assert_int_equal(d, 200 * USEC_PER_MSEC);
	assert_int_equal(duration_parse("1h30m", &d), 0);
	assert_int_equal(d, 90 * USEC_PER_MINUTE);
	assert_int_equal(duration_parse("2.5s", &d), 0);
	assert_int_equal(d, 2500 * USEC_PER_MSEC);
	assert_int_equal(duration_parse("7d", &d), 0);
	assert_int_equal(d, 7 * USEC_PER_DAY);
	assert_int_equal(duration_parse("8760h", &d), 0);
	assert_int_equal(d, USEC_PER_YEAR);
	assert_int_equal(duration_parse("1w", &d), 0);
	assert_int_equal(d, USEC_PER_WEEK);
}

static void test_duration_rejects(void **state)
{
	static const char *const bad[] = { "", "10", "-5s", "5x", "s", "1h 30m", "nan", "inf", "1e300y", NULL };
	usec_t d = 12345;

	(void)state;
	for (int i = 0; bad[i]; i++) {
		assert_true(duration_parse(bad[i], &d) < 0);
		assert_int_equal(d, 12345); /* untouched on failure */
	}
}

static void test_duration_format(void **state)
{
	char out[32];

	(void)state;
	assert_string_equal(duration_format(3 * USEC_PER_HOUR + 10 * USEC_PER_MINUTE + 5 * USEC_PER_SEC, out, sizeof(out)), "3h10m");
	assert_string_equal(duration_format(250 * USEC_PER_MSEC, out, sizeof(out)), "250ms");
	assert_string_equal(duration_format(0, out, sizeof(out)), "0ms");
	assert_string_equal(duration_format(2 * USEC_PER_DAY, out, sizeof(out)), "2d");
	assert_string_equal(duration_format(45 * USEC_PER_SEC, out, sizeof(out)), "45s");
	assert_string_equal(duration_format(1500 * USEC_PER_MSEC, out, sizeof(out)), "1500ms");
	assert_string_equal(duration_format(12500 * USEC_PER_MSEC, out, sizeof(out)), "12s");
}

static void test_size(void **state)
{
	uint64_t v;
	char out[32];

	(void)state;
	assert_int_equal(size_parse("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(size_parse("512MiB", &v), 0);
	assert_int_equal(v, 512ull << 20);
	assert_int_equal(size_parse("2G", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(size_parse("10KB", &v), 0);
	assert_int_equal(v, 10240);
	assert_true(size_parse("10Q", &v) < 0);
	assert_true(size_parse("-1", &v) < 0);
	assert_true(size_parse("1GiBs", &v) < 0);
	assert_string_equal(size_format(812, out, sizeof(out)), "812 B");
	assert_string_equal(size_format(3ull << 29, out, sizeof(out)), "1.50 GiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_duration_rejects),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
