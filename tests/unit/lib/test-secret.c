#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/err.h"
#include "lib/secret.h"

static char path[] = "/tmp/bcdr-secret-XXXXXX";

static void put(const void *data, size_t len, mode_t mode)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static char *read_ok(size_t max)
{
	char *s = NULL;

	assert_int_equal(secret_read_file(path, max, &s), 0);
	return s;
}

static void test_one_newline_stripped(void **state)
{
	char *s;

	(void)state;
	put("pw\n", 3, 0600);
	s = read_ok(100);
	assert_string_equal(s, "pw");
	secret_free(s);
	put("pw\r\n", 4, 0400);
	s = read_ok(100);
	assert_string_equal(s, "pw");
	secret_free(s);
	put("a b\n\n", 5, 0600); /* one newline only: the rest is the secret's */
	s = read_ok(100);
	assert_string_equal(s, "a b\n");
	secret_free(s);
	put("", 0, 0600);
	s = read_ok(100);
	assert_string_equal(s, "");
	secret_free(s);
}

static void test_mode_size_garbage(void **state)
{
	char big[200], msg[300], *s = NULL;

	(void)state;
	for (mode_t m = 0; m < 0100; m++) {
		if (!(m & 077))
			continue;
		put("pw\n", 3, 0600 | m);
		assert_int_equal(secret_read_file(path, 100, &s), -BCDR_ERR_INSECURE);
		assert_null(s);
	}
	secret_message(-BCDR_ERR_INSECURE, "password", path, msg, sizeof(msg));
	assert_non_null(strstr(msg, "chmod 600 /tmp/bcdr-secret-"));
	memset(big, 'x', sizeof(big));
	put(big, 101, 0600);
	assert_int_equal(secret_read_file(path, 100, &s), -BCDR_ERR_TOO_BIG);
	put(big, 100, 0600);
	s = read_ok(100);
	assert_int_equal(strlen(s), 100);
	secret_free(s);
	put("a\0b", 3, 0600);
	assert_int_equal(secret_read_file(path, 100, &s), -EILSEQ);
	assert_int_equal(secret_read_file("/nonexistent/x", 100, &s), -ENOENT);
	secret_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_newline_stripped),
		cmocka_unit_test(test_mode_size_garbage),
	};
	int fd = mkstemp(path), r;

	if (fd < 0)
		return 1;
	close(fd);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(path);
	return r;
}
