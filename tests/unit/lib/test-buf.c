#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/err.h"

static void test_append_and_printf(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(buf_append_str(&b, "ab"), 0);
	assert_int_equal(buf_printf(&b, "-%d-", 42), 0);
	assert_string_equal(b.data, "ab-42-");
	assert_int_equal(b.len, 6);
	buf_release(&b);
}

static void test_limit_is_hard(void **state)
{
	struct buf b;
	char block[100];

	(void)state;
	memset(block, 'x', sizeof(block));
	buf_init(&b, 250);
	assert_int_equal(buf_append(&b, block, 100), 0);
	assert_int_equal(buf_append(&b, block, 100), 0);
	assert_int_equal(buf_append(&b, block, 100), -BCDR_ERR_TOO_BIG);
	assert_int_equal(b.len, 200); /* a refused append changes nothing */
	assert_int_equal(buf_append(&b, block, 50), 0);
	assert_int_equal(buf_append(&b, block, 1), -BCDR_ERR_TOO_BIG);
	assert_int_equal(buf_printf(&b, "%s", "y"), -BCDR_ERR_TOO_BIG);
	buf_release(&b);
}

static void test_steal_empties(void **state)
{
	struct buf b;
	size_t len;
	char *s;

	(void)state;
	buf_init(&b, 64);
	s = buf_steal(&b, &len);
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);
	buf_append_str(&b, "hello");
	s = buf_steal(&b, &len);
	assert_string_equal(s, "hello");
	assert_int_equal(len, 5);
	assert_null(b.data);
	free(s);
}

/* Exactly what is asked the first time; then by half again at least, so
 * growing a byte at a time reallocates a few dozen times, not each time. */
static void test_bytes_reserve_grows_geometrically(void **state)
{
	uint8_t *b = NULL;
	size_t cap = 0, grows = 0, last = 0;

	(void)state;
	assert_int_equal(bytes_reserve(&b, &cap, 100), 0);
	assert_int_equal(cap, 100);
	memset(b, 7, 100);
	for (size_t need = 101; need <= 100000; need++) {
		assert_int_equal(bytes_reserve(&b, &cap, need), 0);
		assert_true(cap >= need);
		grows += cap != last;
		last = cap;
	}
	assert_true(grows < 30);
	assert_int_equal(b[99], 7); /* contents kept */
	assert_int_equal(bytes_reserve(&b, &cap, 10), 0); /* never shrinks */
	assert_true(cap >= 100000);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_and_printf),
		cmocka_unit_test(test_limit_is_hard),
		cmocka_unit_test(test_steal_empties),
		cmocka_unit_test(test_bytes_reserve_grows_geometrically),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
