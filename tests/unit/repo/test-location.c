#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "repo/location.h"

static struct location *parse_ok(const char *text)
{
	struct location *l = NULL;
	const char *why = NULL;
	int r = location_parse(text, &l, &why);

	if (r < 0)
		fail_msg("'%s' refused: %s", text, why ? why : "?");
	return l;
}

static void refused(const char *text)
{
	struct location *l = NULL;
	const char *why = NULL;
	int r = location_parse(text, &l, &why);

	if (r != -EINVAL)
		fail_msg("'%s' accepted (%d)", text, r);
	assert_null(l);
	assert_non_null(why);
}

static void test_local(void **state)
{
	struct location *l;

	(void)state;
	l = parse_ok("/srv/backup/repo");
	assert_int_equal(l->kind, LOCATION_LOCAL);
	assert_string_equal(l->path, "/srv/backup/repo");
	location_free(l);
	l = parse_ok("./s3:odd");
	assert_int_equal(l->kind, LOCATION_LOCAL);
	location_free(l);
	l = parse_ok("repo with spaces");
	assert_int_equal(l->kind, LOCATION_LOCAL);
	location_free(l);
	refused("");
	refused("ftp://host/x");
	refused("/a\nb");
}

static void test_rest(void **state)
{
	struct location *l;

	(void)state;
	l = parse_ok("rest:http://127.0.0.1:8000/");
	assert_int_equal(l->kind, LOCATION_REST);
	assert_false(l->tls);
	assert_string_equal(l->host, "127.0.0.1");
	assert_int_equal(l->port, 8000);
	assert_string_equal(l->path, "");
	location_free(l);
	l = parse_ok("rest:https://bob:s%40cret@backup.example.com/repos/web/");
	assert_true(l->tls);
	assert_int_equal(l->port, 0);
	assert_string_equal(l->user, "bob");
	assert_string_equal(l->password, "s@cret");
	assert_string_equal(l->path, "/repos/web");
	assert_null(strstr(l->display, "cret"));
	assert_non_null(strstr(l->display, "bob:***@backup.example.com"));
	location_free(l);
	l = parse_ok("rest:http://[::1]:9000/r");
	assert_true(l->ipv6);
	assert_string_equal(l->host, "::1");
	assert_int_equal(l->port, 9000);
	location_free(l);
	refused("rest:ftp://h/");
	refused("rest:http://");
	refused("rest:http://h:0/");
	refused("rest:http://h:65536/");
	refused("rest:http://h:80x/");
	refused("rest:http://h/a/../b");
	refused("rest:http://h/a?x=1");
	refused("rest:http://h/a b");
	refused("rest:http://h/a%20b");
	refused("rest:http://-h/");
	refused("rest:http://[::1/");
	refused("rest:http://@h/");
	refused("rest:http://u:%zz@h/");
}

static void test_s3(void **state)
{
	struct location *l;

	(void)state;
	l = parse_ok("s3:http://127.0.0.1:7480/bcdr-test/hosts/web1/");
	assert_int_equal(l->kind, LOCATION_S3);
	assert_false(l->tls);
	assert_string_equal(l->bucket, "bcdr-test");
	assert_string_equal(l->path, "hosts/web1");
	location_free(l);
	l = parse_ok("s3:s3.eu-west-1.amazonaws.com/my.bucket");
	assert_true(l->tls);
	assert_string_equal(l->host, "s3.eu-west-1.amazonaws.com");
	assert_string_equal(l->bucket, "my.bucket");
	assert_string_equal(l->path, "");
	location_free(l);
	refused("s3:https://host");
	refused("s3:https://host/");
	refused("s3:https://host/ab");
	refused("s3:https://host/-bucket");
	refused("s3:https://key:secret@host/bucket");
	refused("s3:https://host/bucket/a//b");
	refused("s3:https://host/bucket/a/./b");
}

static void test_sftp(void **state)
{
	struct location *l;

	(void)state;
	l = parse_ok("sftp:backup@vault.example.com:/srv/repo");
	assert_int_equal(l->kind, LOCATION_SFTP);
	assert_string_equal(l->user, "backup");
	assert_string_equal(l->host, "vault.example.com");
	assert_int_equal(l->port, 0);
	assert_string_equal(l->path, "/srv/repo");
	location_free(l);
	l = parse_ok("sftp:vault:2222:/srv/repo");
	assert_null(l->user);
	assert_int_equal(l->port, 2222);
	assert_string_equal(l->path, "/srv/repo");
	location_free(l);
	l = parse_ok("sftp:vault:backups");
	assert_int_equal(l->port, 0);
	assert_string_equal(l->path, "backups");
	location_free(l);
	l = parse_ok("sftp://u@[::1]:22/srv/r");
	assert_string_equal(l->host, "::1");
	assert_int_equal(l->port, 22);
	assert_string_equal(l->path, "/srv/r");
	location_free(l);
	refused("sftp:host");
	refused("sftp:host:");
	refused("sftp:-oProxyCommand=x:/p");
	refused("sftp:-u@host:/p");
	refused("sftp:u:pw@host:/p");
	refused("sftp:host:70000:/p");
}

static void test_bounds(void **state)
{
	size_t n = LOCATION_MAX + 10;
	char *big = malloc(n + 1);
	struct location *l = NULL;

	(void)state;
	memcpy(big, "rest:http://h/", 14);
	memset(big + 14, 'a', n - 14);
	big[n] = 0;
	assert_int_equal(location_parse(big, &l, NULL), -EINVAL);
	big[LOCATION_MAX] = 0;
	assert_int_equal(location_parse(big, &l, NULL), 0);
	location_free(l);
	/* a host name over 253 characters */
	memcpy(big, "rest:http://", 12);
	memset(big + 12, 'h', 300);
	big[312] = 0;
	refused(big);
	free(big);
}

static void test_garbage(void **state)
{
	uint64_t x = 88172645463325252ull;
	char buf[64];
	static const char *const prefixes[] = { "rest:", "s3:", "sftp:", "rest:http://",
						"s3:https://", "sftp://" };

	(void)state;
	for (int i = 0; i < 200000; i++) {
		const char *p = prefixes[i % 6];
		size_t pl = strlen(p), len = pl + (size_t)(i % 40);
		struct location *l = NULL;

		memcpy(buf, p, pl);
		for (size_t j = pl; j < len; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[j] = "ab:/@[]%.-1_9~ \x01\x7f\xff"[x % 21];
		}
		buf[len] = 0;
		if (location_parse(buf, &l, NULL) == 0) {
			assert_non_null(l->display);
			assert_non_null(l->path);
			if (l->kind != LOCATION_LOCAL)
				assert_non_null(l->host);
		}
		location_free(l);
	}
}

static void test_redact(void **state)
{
	char out[128];

	(void)state;
	location_redact("rest:http://u:pw@h:1/x", out, sizeof(out));
	assert_string_equal(out, "rest:http://u:***@h:1/x");
	location_redact("rest:http://u@h/x", out, sizeof(out));
	assert_string_equal(out, "rest:http://u@h/x");
	location_redact("/plain/dir", out, sizeof(out));
	assert_string_equal(out, "/plain/dir");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local),  cmocka_unit_test(test_rest),
		cmocka_unit_test(test_s3),     cmocka_unit_test(test_sftp),
		cmocka_unit_test(test_bounds), cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_redact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
