/* The metric-file reader: formats, header, garbage, the line limit. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/err.h"
#include "predict/series.h"

static void test_times(void **state)
{
	usec_t t;

	(void)state;
	assert_int_equal(series_parse_time("2014-04-01 00:05:00", &t), 0);
	assert_int_equal(t, (usec_t)1396310700 * USEC_PER_SEC);
	assert_int_equal(series_parse_time("2014-04-01T00:05:00Z", &t), 0);
	assert_int_equal(t, (usec_t)1396310700 * USEC_PER_SEC);
	assert_int_equal(series_parse_time("2014-04-01T02:05:00+02:00", &t), 0);
	assert_int_equal(t, (usec_t)1396310700 * USEC_PER_SEC);
	assert_int_equal(series_parse_time("2014-04-01T00:05:00.25Z", &t), 0);
	assert_int_equal(t, (usec_t)1396310700 * USEC_PER_SEC + 250 * USEC_PER_MSEC);
	assert_int_equal(series_parse_time("1396310700", &t), 0);
	assert_int_equal(t, (usec_t)1396310700 * USEC_PER_SEC);
	assert_int_equal(series_parse_time("2016-02-29", &t), 0);
	static const char *const bad[] = { "", "timestamp", "2014-13-01 00:00:00",
		"2015-02-29 00:00:00", "2014-04-01 24:00:00", "2014-04-01 00:00:00junk",
		"-5", "1e400", "1.2.3x", "2014-04-01 00:00:00+25:00", "1969-12-31 23:59:59",
		"99999999999999", NULL };
	for (int i = 0; bad[i]; i++) {
		t = 7;
		assert_true(series_parse_time(bad[i], &t) < 0);
		assert_int_equal(t, 7);
	}
}

static FILE *from(const char *text)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");

	assert_non_null(f);
	return f;
}

static void test_rows(void **state)
{
	static const char text[] =
		"timestamp,value\r\n"
		"2014-04-01 00:00:00,20.5\r\n"
		"\n"
		"# a comment\n"
		"\"2014-04-01 00:05:00\", \"21\" ,extra\n"
		"2014-04-01 00:10:00,\n"
		"2014-04-01 00:15:00,nan\n"
		"garbage,1\n"
		"2014-04-01 00:20:00,abc\n"
		"2014-04-01 00:25:00,1e999\n"
		"2014-04-01 00:30:00,-3";
	struct series_reader *r = malloc(sizeof(*r));
	struct series_row row;
	FILE *f = from(text);

	(void)state;
	series_reader_init(r, f);
	assert_int_equal(series_next(r, &row), 1);
	assert_true(r->header_seen);
	assert_true(row.time_ok && row.value_ok);
	assert_true(row.value == 20.5);
	assert_int_equal(row.line, 2);
	assert_string_equal(row.time_text, "2014-04-01 00:00:00");
	assert_int_equal(series_next(r, &row), 1);
	assert_true(row.value == 21);
	assert_string_equal(row.value_text, "21");
	assert_int_equal(series_next(r, &row), 1);
	assert_false(row.value_ok); /* empty */
	assert_true(isnan(row.value));
	assert_int_equal(series_next(r, &row), 1);
	assert_false(row.value_ok); /* nan */
	assert_int_equal(series_next(r, &row), 1);
	assert_false(row.time_ok); /* garbage timestamp after the header */
	assert_string_equal(row.time_text, "garbage");
	assert_int_equal(series_next(r, &row), 1);
	assert_false(row.value_ok); /* abc */
	assert_int_equal(series_next(r, &row), 1);
	assert_false(row.value_ok); /* overflow */
	assert_int_equal(series_next(r, &row), 1);
	assert_true(row.value == -3); /* no final newline */
	assert_int_equal(series_next(r, &row), 0);
	assert_int_equal(series_next(r, &row), 0);
	fclose(f);
	free(r);
}

static void test_line_limit(void **state)
{
	size_t n = SERIES_MAX_LINE + 10;
	char *text = malloc(n + 64);
	struct series_reader *r = malloc(sizeof(*r));
	struct series_row row;
	FILE *f;

	(void)state;
	strcpy(text, "2014-04-01 00:00:00,1\n");
	memset(text + strlen(text), '9', n);
	text[22 + n] = 0;
	f = from(text);
	series_reader_init(r, f);
	assert_int_equal(series_next(r, &row), 1);
	assert_int_equal(series_next(r, &row), -BCDR_ERR_TOO_BIG);
	fclose(f);
	/* exactly at the limit is fine */
	memset(text, ' ', SERIES_MAX_LINE);
	memcpy(text, "1396310700,5", 12);
	text[SERIES_MAX_LINE] = 0;
	f = from(text);
	series_reader_init(r, f);
	assert_int_equal(series_next(r, &row), 1);
	assert_true(row.value == 5);
	fclose(f);
	free(r);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_line_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
