#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/ops.h"
#include "lib/json.h"

#define KV(k, v) { (char *)(k), sizeof(k) - 1, (char *)(v), sizeof(v) - 1, 7, 7, 1, 0 }

static const struct etcd_kv kvs[] = {
	KV("/shop/members/a", "{\"fit\":{\"db\":true},\"priority\":{\"db\":100}}"),
	KV("/shop/members/b", "{\"fit\":{\"db\":true},\"priority\":{\"db\":100}}"),
	KV("/shop/members/c", "{\"fit\":{\"db\":false},\"priority\":{\"db\":100}}"),
	KV("/shop/paused", "{\"by\":\"root@h\",\"since\":\"x\"}"),
	KV("/shop/services/db/leader", "{\"member\":\"a\"}"),
	KV("/shop/services/db/switchover", "{\"from\":\"a\",\"to\":\"b\"}"),
	KV("/shop/services/web/switchover", "{\"from\":\"a\",\"to\":\"c\"}"),
};
#define N (sizeof(kvs) / sizeof(kvs[0]))

static void test_keys(void **state)
{
	char *k;

	(void)state;
	k = cluster_paused_key("shop");
	assert_string_equal(k, "/shop/paused");
	free(k);
	k = cluster_switchover_key("shop", "db");
	assert_string_equal(k, "/shop/services/db/switchover");
	free(k);
}

static void test_parse_garbage(void **state)
{
	static const char *const bad[] = { "", "[]", "{}", "null", "{\"from\":\"a\"}",
					   "{\"from\":\"a\",\"to\":\"../x\"}",
					   "{\"from\":1,\"to\":\"b\"}", "{\"from\":\"a\",\"to\":\"\"}",
					   "\xff\xfe{" };
	struct cluster_switchover so;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct etcd_kv kv = { (char *)"k", 1, (char *)bad[i], strlen(bad[i]), 1, 1, 1, 0 };

		assert_int_equal(cluster_switchover_parse(&kv, &so), -EINVAL);
	}
	assert_int_equal(cluster_switchover_parse(&kvs[5], &so), 0);
	assert_string_equal(so.from, "a");
	assert_string_equal(so.to, "b");
}

static void test_roles(void **state)
{
	char target[CLUSTER_NAME_MAX + 1];

	(void)state;
	/* the leader a hands db over to b, alive and fit */
	assert_int_equal(cluster_switchover_role(kvs, N, "shop", "db", "a", true, target),
			 CLUSTER_SWITCHOVER_HAND_OVER);
	assert_string_equal(target, "b");
	assert_int_equal(cluster_switchover_role(kvs, N, "shop", "db", "b", false, NULL),
			 CLUSTER_SWITCHOVER_TAKE);
	assert_int_equal(cluster_switchover_role(kvs, N, "shop", "db", "c", false, NULL),
			 CLUSTER_SWITCHOVER_HOLD);
	/* a request against another leader is stale for us */
	assert_int_equal(cluster_switchover_role(kvs, N, "shop", "db", "b", true, NULL),
			 CLUSTER_SWITCHOVER_NONE);
	/* never to an unfit target (c), nor to a member with no key */
	assert_int_equal(cluster_switchover_role(kvs, N, "shop", "web", "a", true, NULL),
			 CLUSTER_SWITCHOVER_NONE);
	assert_int_equal(cluster_switchover_role(kvs, N, "shop", "other", "a", true, NULL),
			 CLUSTER_SWITCHOVER_NONE);
	assert_false(cluster_kvs_member_fit(kvs, N, "shop", "zz", "db"));
	assert_true(cluster_kvs_member_fit(kvs, N, "shop", "b", "db"));
	assert_false(cluster_kvs_member_fit(kvs, N, "shop", "b", "web"));
}

static void test_status(void **state)
{
	struct cluster_service svcs[] = { { .name = (char *)"db" }, { .name = (char *)"web" } };
	struct cluster_plan p = { .has_cluster = true, .name = (char *)"shop",
				  .services = svcs, .n_services = 2 };
	_cleanup_json_ json_t *st = cluster_status_build(&p, kvs, N, "http://e", 9);
	const json_t *db, *web;

	(void)state;
	assert_non_null(st);
	assert_true(json_is_true(json_object_get(st, "paused")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(st, "pause"), "by")),
			    "root@h");
	assert_int_equal(json_array_size(json_object_get(st, "members")), 3);
	db = json_array_get(json_object_get(st, "services"), 0);
	web = json_array_get(json_object_get(st, "services"), 1);
	assert_string_equal(json_string_value(json_object_get(db, "leader")), "a");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(db, "switchover"), "to")), "b");
	assert_true(json_is_null(json_object_get(web, "leader")));
	assert_int_equal(json_array_size(json_object_get(db, "standbys")), 2);
	/* nothing at all: not paused, no members */
	json_decref(st);
	st = cluster_status_build(&p, NULL, 0, NULL, 0);
	assert_non_null(st);
	assert_true(json_is_false(json_object_get(st, "paused")));
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(st, "services"), 0),
						 "switchover")));
}

static void test_leader_address(void **state)
{
	static const struct etcd_kv lk[] = {
		KV("/shop/members/a", "{\"address\":\"10.0.0.2\",\"host\":\"h-a\"}"),
		KV("/shop/members/b", "{\"host\":\"h-b\"}"),
		KV("/shop/members/c", "[1,2]"),
		KV("/shop/services/db/leader", "{\"member\":\"a\"}"),
		KV("/shop/services/web/leader", "{\"member\":\"b\"}"),
		KV("/shop/services/mq/leader", "{\"member\":\"c\"}"),
		KV("/shop/services/gone/leader", "{\"member\":\"z\"}"),
		KV("/shop/services/bad/leader", "{\"member\":\"../x\"}"),
	};
	size_t n = sizeof(lk) / sizeof(lk[0]);
	char addr[64], why[256];

	(void)state;
	assert_int_equal(cluster_kvs_leader_address(lk, n, "shop", "db", "b", false, "10.0.0.3",
						    addr, sizeof(addr), why, sizeof(why)), 0);
	assert_string_equal(addr, "10.0.0.2");
	/* no address: the host name */
	assert_int_equal(cluster_kvs_leader_address(lk, n, "shop", "web", "a", false, "x", addr,
						    sizeof(addr), why, sizeof(why)), 0);
	assert_string_equal(addr, "h-b");
	assert_int_equal(cluster_kvs_leader_address(lk, n, "shop", "mq", "a", false, "x", addr,
						    sizeof(addr), why, sizeof(why)), -ENXIO);
	assert_int_equal(cluster_kvs_leader_address(lk, n, "shop", "gone", "a", false, "x", addr,
						    sizeof(addr), why, sizeof(why)), -ENXIO);
	assert_non_null(strstr(why, "gone"));
	assert_int_equal(cluster_kvs_leader_address(lk, n, "shop", "bad", "a", false, "x", addr,
						    sizeof(addr), why, sizeof(why)), -ENOENT);
	assert_int_equal(cluster_kvs_leader_address(lk, n, "shop", "none", "a", false, "x", addr,
						    sizeof(addr), why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "service 'none' has no leader");
	/* ourselves: a look from before a demotion leads nowhere, one from
	 * before a promotion does not matter */
	assert_int_equal(cluster_kvs_leader_address(lk, n, "shop", "db", "a", false, "10.0.0.2",
						    addr, sizeof(addr), why, sizeof(why)), -ENOENT);
	assert_int_equal(cluster_kvs_leader_address(NULL, 0, "shop", "db", "b", true, "10.0.0.3",
						    addr, sizeof(addr), why, sizeof(why)), 0);
	assert_string_equal(addr, "10.0.0.3");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_parse_garbage),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_leader_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
