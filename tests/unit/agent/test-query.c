#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "agent/query.h"
#include "lib/err.h"

static void test_rfc3339(void **state)
{
	usec_t t;

	(void)state;
	assert_int_equal(query_parse_rfc3339("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(query_parse_rfc3339("2026-11-26T03:48:52Z", &t), 0);
	assert_int_equal(t, 1795664932ull * USEC_PER_SEC);
	assert_int_equal(query_parse_rfc3339("2026-11-26T05:48:52.25+02:00", &t), 0);
	assert_int_equal(t, 1795664932ull * USEC_PER_SEC + 250000);
	const char *bad[] = { "", "2026", "2026-11-26", "2026-11-26T03:48:52", "2026-13-01T00:00:00Z",
			      "2026-11-26T03:48:52Zjunk", "2026-11-26T03:48:52.Z", "1969-12-31T23:59:59Z",
			      "2026-11-26T03:48:52+2:00", "-026-11-26T03:48:52Z", NULL };
	for (const char **b = bad; *b; b++)
		assert_int_equal(query_parse_rfc3339(*b, &t), -EINVAL);
}

static void test_since(void **state)
{
	usec_t t, now = 1000 * USEC_PER_SEC;

	(void)state;
	assert_int_equal(query_parse_since("60", now, &t), 0);
	assert_int_equal(t, 940 * USEC_PER_SEC);
	assert_int_equal(query_parse_since("1m", now, &t), 0);
	assert_int_equal(t, 940 * USEC_PER_SEC);
	assert_int_equal(query_parse_since("5000", now, &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(query_parse_since("1970-01-01T00:00:10Z", now, &t), 0);
	assert_int_equal(t, 10 * USEC_PER_SEC);
	assert_true(query_parse_since("yesterday", now, &t) < 0);
	assert_true(query_parse_since("-5", now, &t) < 0);
	assert_true(query_parse_since("", now, &t) < 0);
}

static void test_query(void **state)
{
	static const char *const allowed[] = { "since", "kind", NULL };
	struct query q;
	char long_query[QUERY_MAX_LEN + 10];

	(void)state;
	assert_int_equal(query_parse("since=1h&kind=a%20b+c", allowed, &q), 0);
	assert_string_equal(query_get(&q, "since"), "1h");
	assert_string_equal(query_get(&q, "kind"), "a b c");
	assert_null(query_get(&q, "check"));
	query_release(&q);
	assert_int_equal(query_parse(NULL, allowed, &q), 0);
	assert_int_equal(q.n, 0);
	assert_int_equal(query_parse("kind", allowed, &q), 0);
	assert_string_equal(query_get(&q, "kind"), "");
	query_release(&q);
	assert_int_equal(query_parse("other=1", allowed, &q), -EINVAL);
	assert_int_equal(query_parse("kind=1&kind=2", allowed, &q), -EINVAL);
	assert_int_equal(query_parse("kind=%zz", allowed, &q), -EINVAL);
	assert_int_equal(query_parse("kind=%2", allowed, &q), -EINVAL);
	assert_int_equal(query_parse("kind=%00", allowed, &q), -EINVAL);
	memset(long_query, 'a', sizeof(long_query) - 1);
	long_query[sizeof(long_query) - 1] = '\0';
	assert_int_equal(query_parse(long_query, allowed, &q), -BCDR_ERR_TOO_BIG);
	{
		static const char *const many[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i",
						    "j", "k", "l", "m", "n", "o", "p", "q", NULL };

		assert_int_equal(query_parse("a&b&c&d&e&f&g&h&i&j&k&l&m&n&o&p", many, &q), 0);
		assert_int_equal(q.n, 16);
		query_release(&q);
		assert_int_equal(query_parse("a&b&c&d&e&f&g&h&i&j&k&l&m&n&o&p&q", many, &q),
				 -BCDR_ERR_TOO_BIG);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_since),
		cmocka_unit_test(test_query),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
