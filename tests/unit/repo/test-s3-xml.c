#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/err.h"
#include "repo/backend-rest.h"
#include "repo/backend-s3.h"
#include "repo/location.h"
#include "repo/s3-xml.h"

struct seen {
	char keys[8][128];
	uint64_t sizes[8];
	int n;
};

static int collect(const char *key, uint64_t size, void *userdata)
{
	struct seen *s = userdata;

	if (s->n < 8) {
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
		s->sizes[s->n] = size;
	}
	s->n++;
	return 0;
}

static const char page_v2[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	"<Name>b</Name><Prefix>p/data/</Prefix><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
	"<NextContinuationToken>1/abc+def=</NextContinuationToken>"
	"<Contents><Key>p/data/aa</Key><LastModified>x</LastModified><ETag>&quot;e&quot;</ETag>"
	"<Size>123</Size><StorageClass>STANDARD</StorageClass></Contents>"
	"<Contents><Key>p/data/b&amp;b</Key><Size>0</Size></Contents>"
	"</ListBucketResult>";

static void test_list_v2(void **state)
{
	struct s3_list_page page;
	struct seen s = {};

	(void)state;
	assert_int_equal(s3_list_parse(page_v2, strlen(page_v2), &page, collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.keys[0], "p/data/aa");
	assert_int_equal(s.sizes[0], 123);
	assert_string_equal(s.keys[1], "p/data/b&b");
	assert_true(page.truncated);
	assert_string_equal(page.next_token, "1/abc+def=");
	/* v1 without NextMarker: the last key */
	assert_string_equal(page.next_marker, "p/data/b&b");
}

static void test_list_empty_and_bad(void **state)
{
	static const char empty[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
				    "</ListBucketResult>";
	static const char *const bad[] = {
		"", "<html>nope</html>", "<ListBucketResult><Contents><Key>a</Key></Contents>"
		"</ListBucketResult>",
		"<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>a&bogus;</Key><Size>1</Size></Contents>"
		"</ListBucketResult>",
		"<ListBucketResult><Contents><Key>a</Key><Size>1</Size>",
		"<ListBucketResult><Contents><Key>a<b/></Key><Size>1</Size></Contents>"
		"</ListBucketResult>",
	};
	struct s3_list_page page;
	struct seen s = {};

	(void)state;
	assert_int_equal(s3_list_parse(empty, strlen(empty), &page, collect, &s), 0);
	assert_int_equal(s.n, 0);
	assert_false(page.truncated);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(s3_list_parse(bad[i], strlen(bad[i]), &page, collect, &s),
				 -BCDR_ERR_PROTOCOL);
}

static void test_error(void **state)
{
	static const char e[] = "<?xml version=\"1.0\"?><Error><Code>RequestTimeTooSkewed</Code>"
				"<Message>The difference &lt;is&gt; too large</Message></Error>";
	char code[32], msg[64];

	(void)state;
	assert_int_equal(s3_error_parse(e, strlen(e), code, sizeof(code), msg, sizeof(msg)), 0);
	assert_string_equal(code, "RequestTimeTooSkewed");
	assert_string_equal(msg, "The difference <is> too large");
	assert_int_equal(s3_error_parse("<a/>", 4, code, sizeof(code), msg, sizeof(msg)),
			 -BCDR_ERR_PROTOCOL);
}

static void test_credentials_file(void **state)
{
	static const char f[] = "[default]\naws_access_key_id = AK1\naws_secret_access_key=SK1\n"
				"\n# comment\n[profile other]\n  aws_access_key_id = AK2 \r\n"
				"aws_secret_access_key = SK2\naws_session_token = T2\n";
	char id[32], sk[32], tok[32];

	(void)state;
	assert_int_equal(s3_credentials_parse(f, strlen(f), "default", id, sizeof(id), sk,
					      sizeof(sk), tok, sizeof(tok)), 0);
	assert_string_equal(id, "AK1");
	assert_string_equal(sk, "SK1");
	assert_string_equal(tok, "");
	assert_int_equal(s3_credentials_parse(f, strlen(f), "other", id, sizeof(id), sk,
					      sizeof(sk), tok, sizeof(tok)), 0);
	assert_string_equal(id, "AK2");
	assert_string_equal(tok, "T2");
	assert_int_equal(s3_credentials_parse(f, strlen(f), "none", id, sizeof(id), sk,
					      sizeof(sk), tok, sizeof(tok)), -ENOENT);
	assert_int_equal(s3_credentials_parse(f, strlen(f), "other", id, 3, sk, sizeof(sk), tok,
					      sizeof(tok)), -BCDR_ERR_TOO_BIG);
}

static void test_uri_encode(void **state)
{
	char out[64];

	(void)state;
	s3_uri_encode("a b/c+d=~", false, out, sizeof(out));
	assert_string_equal(out, "a%20b%2Fc%2Bd%3D~");
	s3_uri_encode("p/q", true, out, sizeof(out));
	assert_string_equal(out, "p/q");
}

/* s3_virtual_host() of location text under addressing a. */
static int vhost(const char *text, enum s3_addressing a)
{
	struct location *loc = NULL;
	const char *why = NULL;
	int r;

	assert_int_equal(location_parse(text, &loc, NULL), 0);
	r = s3_virtual_host(loc, a, &why);
	if (r < 0)
		assert_non_null(why);
	location_free(loc);
	return r;
}

static void test_virtual_host(void **state)
{
	(void)state;
	/* auto: the stores that want it, when the bucket can be a host name */
	assert_int_equal(vhost("s3:https://s3.amazonaws.com/acme/x", S3_ADDRESSING_AUTO), 1);
	assert_int_equal(vhost("s3:https://s3.eu-west-1.amazonaws.com/acme", S3_ADDRESSING_AUTO),
			 1);
	assert_int_equal(
		vhost("s3:https://S3.CN-NORTH-1.AMAZONAWS.COM.CN/acme", S3_ADDRESSING_AUTO), 1);
	assert_int_equal(vhost("s3:https://storage.googleapis.com/acme", S3_ADDRESSING_AUTO), 1);
	assert_int_equal(vhost("s3:https://oss-cn-hangzhou.aliyuncs.com/acme", S3_ADDRESSING_AUTO),
			 1);
	/* a dotted bucket over https would not match the wildcard certificate */
	assert_int_equal(vhost("s3:https://s3.amazonaws.com/acme.backup", S3_ADDRESSING_AUTO), 0);
	assert_int_equal(vhost("s3:http://s3.amazonaws.com/acme.backup", S3_ADDRESSING_AUTO), 1);
	/* legacy names that are no host names */
	assert_int_equal(vhost("s3:https://s3.amazonaws.com/Acme", S3_ADDRESSING_AUTO), 0);
	assert_int_equal(vhost("s3:https://s3.amazonaws.com/acme_web", S3_ADDRESSING_AUTO), 0);
	/* look-alikes and everything else: path style */
	assert_int_equal(vhost("s3:https://notamazonaws.com/acme", S3_ADDRESSING_AUTO), 0);
	assert_int_equal(vhost("s3:https://amazonaws.com.evil.net/acme", S3_ADDRESSING_AUTO), 0);
	assert_int_equal(vhost("s3:http://localhost:7480/acme", S3_ADDRESSING_AUTO), 0);
	assert_int_equal(vhost("s3:https://minio.example.com/acme", S3_ADDRESSING_AUTO), 0);
	assert_int_equal(vhost("s3:http://127.0.0.1:9000/acme", S3_ADDRESSING_AUTO), 0);
	/* asked for */
	assert_int_equal(vhost("s3:http://localhost:7480/acme", S3_ADDRESSING_VIRTUAL_HOST), 1);
	assert_int_equal(vhost("s3:https://s3.amazonaws.com/acme", S3_ADDRESSING_PATH), 0);
	assert_int_equal(vhost("s3:http://127.0.0.1:9000/acme", S3_ADDRESSING_VIRTUAL_HOST),
			 -EINVAL);
	assert_int_equal(vhost("s3:http://[::1]:9000/acme", S3_ADDRESSING_VIRTUAL_HOST), -EINVAL);
	assert_int_equal(vhost("s3:http://localhost/Acme", S3_ADDRESSING_VIRTUAL_HOST), -EINVAL);
	assert_int_equal(vhost("s3:http://localhost/a_b", S3_ADDRESSING_VIRTUAL_HOST), -EINVAL);
	assert_int_equal(vhost("s3:http://localhost/192.168.1.1", S3_ADDRESSING_VIRTUAL_HOST),
			 -EINVAL);
	assert_int_equal(vhost("s3:http://localhost/a..b", S3_ADDRESSING_VIRTUAL_HOST), -EINVAL);
}

static void test_rest_list(void **state)
{
	static const char v2[] = "[{\"name\":\"ab12\",\"size\":5},{\"name\":\"cd\",\"size\":0}]";
	static const char v1[] = "[\"ab12\"]";
	static const char *const bad[] = { "{}", "[{\"name\":\"../x\",\"size\":1}]",
					   "[{\"name\":\"a\",\"size\":-1}]", "[{\"name\":1}]", "[" };
	struct seen s = {};
	bool isv1;

	(void)state;
	assert_int_equal(rest_list_parse((const uint8_t *)v2, strlen(v2), collect, &s, &isv1), 0);
	assert_false(isv1);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.sizes[0], 5);
	assert_int_equal(rest_list_parse((const uint8_t *)v1, strlen(v1), collect, &s, &isv1), 0);
	assert_true(isv1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(rest_list_parse((const uint8_t *)bad[i], strlen(bad[i]), collect, &s,
						 &isv1), -BCDR_ERR_PROTOCOL);
}

static void test_garbage(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	char buf[256];
	struct s3_list_page page;
	struct seen s;

	(void)state;
	for (int i = 0; i < 100000; i++) {
		size_t len = (size_t)(i % 255);
		char code[16], msg[16], id[8], sk[8], tok[8];

		memcpy(buf, page_v2, len);
		for (int k = 0; k < 4 && len; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[x % len] = "<>/&;#x1 \n[]="[x % 13];
		}
		s.n = 0;
		s3_list_parse(buf, len, &page, collect, &s);
		s3_error_parse(buf, len, code, sizeof(code), msg, sizeof(msg));
		s3_credentials_parse(buf, len, "default", id, sizeof(id), sk, sizeof(sk), tok,
				     sizeof(tok));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_v2),    cmocka_unit_test(test_list_empty_and_bad),
		cmocka_unit_test(test_error),      cmocka_unit_test(test_credentials_file),
		cmocka_unit_test(test_uri_encode), cmocka_unit_test(test_rest_list),
		cmocka_unit_test(test_garbage),    cmocka_unit_test(test_virtual_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
