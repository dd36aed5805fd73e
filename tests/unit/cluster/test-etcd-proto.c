#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/etcd-proto.h"
#include "lib/err.h"

#define S(lit) (lit), strlen(lit)

static void test_base64(void **state)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const coded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					     "Zm9vYmFy" };
	static const char *const bad[] = { "Zg=", "Z===", "Zm9v=", "Zg==Zg==", "Z=g=", "Zm9\n",
					   "Zm9v!A==", "====", "Zh==", "Zm9=" /* non-zero spare bits */ };
	char *out;
	size_t len;

	(void)state;
	for (size_t i = 0; i < 7; i++) {
		assert_int_equal(etcd_b64_encode(plain[i], strlen(plain[i]), &out), 0);
		assert_string_equal(out, coded[i]);
		free(out);
		assert_int_equal(etcd_b64_decode(coded[i], strlen(coded[i]), &out, &len), 0);
		assert_int_equal(len, strlen(plain[i]));
		assert_memory_equal(out, plain[i], len);
		free(out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(etcd_b64_decode(bad[i], strlen(bad[i]), &out, &len), -EINVAL);
	/* every byte value survives */
	char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	assert_int_equal(etcd_b64_encode(all, 256, &out), 0);
	char *back;
	assert_int_equal(etcd_b64_decode(out, strlen(out), &back, &len), 0);
	assert_int_equal(len, 256);
	assert_memory_equal(back, all, 256);
	free(back);
	free(out);
}

static void test_prefix_end(void **state)
{
	char *end;

	(void)state;
	assert_int_equal(etcd_prefix_end("/shop/", &end), 0);
	assert_string_equal(end, "/shop0");
	free(end);
	assert_int_equal(etcd_prefix_end("a\xff\xff", &end), 0);
	assert_string_equal(end, "b");
	free(end);
	assert_int_equal(etcd_prefix_end("\xff", &end), 0);
	assert_string_equal(end, "");
	free(end);
}

static void test_requests(void **state)
{
	char *s;

	(void)state;
	s = etcd_req_create("/shop/services/db/leader", "web-1", 7587);
	assert_non_null(s);
	/* key and value in base64, the lease and the revision as strings */
	assert_non_null(strstr(s, "\"create_revision\":\"0\""));
	assert_non_null(strstr(s, "\"target\":\"CREATE\""));
	assert_non_null(strstr(s, "\"lease\":\"7587\""));
	assert_non_null(strstr(s, "\"value\":\"d2ViLTE=\""));
	assert_non_null(strstr(s, "\"failure\":[{\"request_range\""));
	free(s);
	s = etcd_req_delete_if("k", 42);
	assert_non_null(strstr(s, "\"create_revision\":\"42\""));
	assert_non_null(strstr(s, "request_delete_range"));
	free(s);
	s = etcd_req_range("/a/", "/a0");
	assert_string_equal(s, "{\"key\":\"L2Ev\",\"range_end\":\"L2Ew\"}");
	free(s);
	s = etcd_req_range("\xff", ""); /* to the end: one NUL byte */
	assert_non_null(strstr(s, "\"range_end\":\"AA==\""));
	free(s);
	s = etcd_req_range_at("/a/", 1234);
	assert_string_equal(s, "{\"key\":\"L2Ev\",\"revision\":\"1234\"}");
	free(s);
	s = etcd_req_grant(5);
	assert_string_equal(s, "{\"TTL\":\"5\"}");
	free(s);
	s = etcd_req_lease(-3);
	assert_string_equal(s, "{\"ID\":\"-3\"}");
	free(s);
	s = etcd_req_put("k", "v", 0);
	assert_null(strstr(s, "lease"));
	free(s);
}

/* Answers as etcd 3.4.23 wrote them in tests/e2e (copied from a run). */
static void test_parse_real_answers(void **state)
{
	const char *txn_ok = "{\"header\":{\"cluster_id\":\"74326320605380515\",\"member_id\":"
			     "\"11096946884633667148\",\"revision\":\"2\",\"raft_term\":\"3\"},"
			     "\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":"
			     "{\"revision\":\"2\"}}}]}";
	const char *txn_lost = "{\"header\":{\"revision\":\"9\"},\"responses\":[{\"response_range\":"
			       "{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"YQ==\","
			       "\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\","
			       "\"value\":\"eA==\",\"lease\":\"77\"}],\"count\":\"1\"}}]}";
	const char *ka = "{\"result\":{\"header\":{\"revision\":\"2\"},\"ID\":\"2759759047299493642\","
			 "\"TTL\":\"5\"}}\n";
	const char *ka_gone = "{\"result\":{\"header\":{\"revision\":\"2\"},\"ID\":\"123\"}}\n";
	const char *grant = "{\"header\":{\"revision\":\"2\"},\"ID\":\"2759759047299493642\","
			    "\"TTL\":\"5\"}";
	const char *err = "{\"error\":\"etcdserver: requested lease not found\",\"code\":5,"
			  "\"message\":\"etcdserver: requested lease not found\"}";
	const char *stream_err = "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":"
				 "\"etcdserver: no leader\",\"http_status\":\"Service Unavailable\"}}";
	struct etcd_kv holder, *kvs;
	size_t n;
	bool ok;
	int64_t rev, id, ttl;
	const char *prefix;
	char msg[64];

	(void)state;
	assert_int_equal(etcd_parse_txn(S(txn_ok), &ok, &rev, &holder), 0);
	assert_true(ok);
	assert_int_equal(rev, 2);
	assert_null(holder.key);
	assert_int_equal(etcd_parse_txn(S(txn_lost), &ok, &rev, &holder), 0);
	assert_false(ok); /* `succeeded` omitted */
	assert_string_equal(holder.key, "a");
	assert_string_equal(holder.value, "x");
	assert_int_equal(holder.create_revision, 2);
	assert_int_equal(holder.lease, 77);
	etcd_kv_release(&holder);
	assert_int_equal(etcd_parse_keepalive(S(ka), &ttl, &rev), 0);
	assert_int_equal(rev, 2);
	assert_int_equal(ttl, 5);
	assert_int_equal(etcd_parse_keepalive(S(ka_gone), &ttl, &rev), -ENOENT);
	assert_int_equal(etcd_parse_grant(S(grant), &id, &ttl), 0);
	assert_int_equal(id, 2759759047299493642LL);
	assert_int_equal(etcd_parse_error(S(err), msg, sizeof(msg)), -ENOENT);
	assert_string_equal(msg, "etcdserver: requested lease not found");
	assert_int_equal(etcd_parse_keepalive(S(err), &ttl, &rev), -ENOENT);
	assert_int_equal(etcd_parse_error(S(stream_err), msg, sizeof(msg)), -EAGAIN);
	assert_string_equal(msg, "etcdserver: no leader");
	assert_int_equal(etcd_parse_error(S(grant), msg, sizeof(msg)), 0);
	assert_int_equal(etcd_parse_range(S("{\"header\":{\"revision\":\"4\"}}"), &kvs, &n, &rev),
			 0);
	assert_int_equal(n, 0);
	assert_int_equal(rev, 4);
	etcd_kvs_free(kvs, n);
	assert_int_equal(etcd_parse_version(S("{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}"),
					    &prefix), 0);
	assert_string_equal(prefix, "/v3");
	assert_int_equal(etcd_parse_version(S("{\"etcdserver\":\"3.3.11\",\"etcdcluster\":\"3.3.0\"}"),
					    &prefix), 0);
	assert_string_equal(prefix, "/v3beta");
	assert_int_equal(etcd_parse_version(S("{\"etcdserver\":\"2.3.8\"}"), &prefix),
			 -BCDR_ERR_UNSUPPORTED);
}

static void test_parse_garbage(void **state)
{
	static const char *const bodies[] = {
		"", "null", "[]", "\"x\"", "{", "{\"header\":1}", "{\"header\":{\"revision\":\"x\"}}",
		"{\"header\":{\"revision\":\"99999999999999999999\"}}",
		"{\"header\":{\"revision\":\"-\"}}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":{}}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[1]}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"!!!!\"}]}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"value\":\"eA==\"}]}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"YQ==\",\"lease\":true}]}",
		"{\"header\":{\"revision\":\"1\"},\"header\":{\"revision\":\"2\"}}",
		"{\"header\":{\"revision\":\"1\"},\"succeeded\":\"yes\"}",
		"{\"header\":{\"revision\":\"1\"},\"responses\":[{\"response_range\":[]}]}",
		"{\"result\":[]}", "{\"result\":{\"TTL\":{}}}", "{\"error\":[]}",
		"{\"ID\":\"0\",\"TTL\":\"5\"}", "{\"token\":\"a\\r\\nX-Evil: 1\"}",
	};
	struct etcd_kv *kvs, holder;
	size_t n;
	bool ok;
	int64_t rev, id, ttl;
	char *token;

	(void)state;
	/* those a range must refuse (the first nine) */
	for (size_t i = 0; i < 9; i++)
		assert_true(etcd_parse_range(bodies[i], strlen(bodies[i]), &kvs, &n, &rev) < 0);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		const char *b = bodies[i];
		size_t len = strlen(b);

		/* some are valid answers of another call: no crash, no leak */
		if (etcd_parse_range(b, len, &kvs, &n, &rev) == 0)
			etcd_kvs_free(kvs, n);
		if (etcd_parse_txn(b, len, &ok, &rev, &holder) == 0)
			etcd_kv_release(&holder);
		assert_true(etcd_parse_grant(b, len, &id, &ttl) < 0);
		assert_true(etcd_parse_keepalive(b, len, &ttl, &rev) < 0);
		assert_true(etcd_parse_auth(b, len, &token) < 0);
	}
	/* a body over the bound is refused before it is parsed */
	char *big = malloc(ETCD_RESPONSE_MAX + 2);
	memset(big, ' ', ETCD_RESPONSE_MAX + 1);
	big[ETCD_RESPONSE_MAX + 1] = 0;
	assert_int_equal(etcd_parse_range(big, ETCD_RESPONSE_MAX + 1, &kvs, &n, &rev),
			 -BCDR_ERR_TOO_BIG);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_parse_real_answers),
		cmocka_unit_test(test_parse_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
