/* The failovers a member measures: the watch over one gap (a lease that
 * ended, a step-down, a switchover, nothing to measure), the records as
 * JSON and garbage, the bounded history in SQLite with its totals, and
 * the quantiles. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/failover-log.h"
#include "lib/err.h"

#define S USEC_PER_SEC
#define PREFIX "/shop/members/"

static struct etcd_kv kv(const char *key)
{
	return (struct etcd_kv){ .key = (char *)key, .key_len = strlen(key) };
}

static void test_watch_lease_ended(void **state)
{
	(void)state;
	struct failover_watch w = { 0 };
	struct etcd_kv kvs[] = { kv(PREFIX "b"), kv("/shop/services/db/switchover-not") };
	struct failover_record r;

	/* a's member key went with its leader key: its lease ended */
	failover_watch_leaderless(&w, 100 * S, 20, "a", PREFIX, kvs, 2, false);
	/* later looks of the same gap change nothing */
	failover_watch_leaderless(&w, 100 * S + 300000, 21, "a", PREFIX, kvs, 2, false);
	failover_watch_created(&w, 100 * S + 500000);
	assert_true(failover_watch_done(&w, 100 * S + 800000, "db", "b", 42, 3 * S, &r));
	assert_string_equal(r.service, "db");
	assert_string_equal(r.from, "a");
	assert_string_equal(r.to, "b");
	assert_int_equal(r.token, 42);
	assert_int_equal(r.kind, FAILOVER_UNPLANNED);
	assert_true(r.lease_ended);
	assert_true(fabs(r.wait_s - 0.5) < 1e-9);
	assert_true(fabs(r.promote_s - 0.3) < 1e-9);
	/* the ttl the lease took to end, then what we saw */
	assert_true(fabs(r.seconds - 3.8) < 1e-9);
	/* the watch is spent */
	assert_false(failover_watch_done(&w, 101 * S, "db", "b", 42, 3 * S, &r));
}

static void test_watch_stepped_down(void **state)
{
	(void)state;
	struct failover_watch w = { 0 };
	struct etcd_kv kvs[] = { kv(PREFIX "a"), kv(PREFIX "b") };
	struct failover_record r;

	/* a is still a member: it stepped down (deleted its key) */
	failover_watch_leaderless(&w, 10 * S, 20, "a", PREFIX, kvs, 2, false);
	/* and we were asked: a switchover */
	failover_watch_leaderless(&w, 10 * S + 1, 20, "a", PREFIX, kvs, 2, true);
	failover_watch_created(&w, 10 * S + 100000);
	assert_true(failover_watch_done(&w, 10 * S + 200000, "db", "b", 7, 3 * S, &r));
	assert_false(r.lease_ended);
	assert_int_equal(r.kind, FAILOVER_SWITCHOVER);
	assert_true(fabs(r.seconds - 0.2) < 1e-9);
}

static void test_watch_nothing(void **state)
{
	(void)state;
	struct failover_watch w = { 0 };
	struct failover_record r;

	/* the first leader of a fresh cluster: no leader before */
	failover_watch_leaderless(&w, 10 * S, 20, "", PREFIX, NULL, 0, false);
	failover_watch_created(&w, 11 * S);
	assert_false(failover_watch_done(&w, 12 * S, "db", "b", 1, 3 * S, &r));
	/* another took it meanwhile: the gap we saw is not ours */
	failover_watch_leaderless(&w, 10 * S, 20, "a", PREFIX, NULL, 0, false);
	failover_watch_reset(&w);
	failover_watch_created(&w, 11 * S);
	assert_false(failover_watch_done(&w, 12 * S, "db", "b", 1, 3 * S, &r));
	/* never created the key (a promote without a gap seen) */
	failover_watch_leaderless(&w, 10 * S, 20, "a", PREFIX, NULL, 0, false);
	assert_false(failover_watch_done(&w, 12 * S, "db", "b", 1, 3 * S, &r));
}

/* A made-up store history: the leader key lives until leader_gone, a's
 * member key until member_gone (revisions); reads fail from fail_at. */
struct history {
	int64_t leader_gone, member_gone, fail_at;
	int reads;
};

static int exists_at(void *userdata, const char *key, int64_t rev, bool *ret)
{
	struct history *h = userdata;

	h->reads++;
	if (h->fail_at && rev >= h->fail_at)
		return -EIO;
	if (strcmp(key, "/shop/services/db/leader") == 0)
		*ret = rev < h->leader_gone;
	else if (strcmp(key, PREFIX "a") == 0)
		*ret = rev < h->member_gone;
	else
		fail_msg("read of '%s'", key);
	return 0;
}

static bool classify(int64_t held, int64_t gone, struct history *h)
{
	struct failover_watch w = { 0 };

	failover_watch_held(&w, held);
	failover_watch_leaderless(&w, 10 * S, gone, "a", PREFIX, NULL, 0, false);
	assert_true(w.lease_ended); /* the look's guess: both keys gone */
	failover_watch_classify(&w, "/shop/services/db/leader", PREFIX, exists_at, h);
	return w.lease_ended;
}

static void test_watch_classify(void **state)
{
	(void)state;
	struct history h = { .leader_gone = 1234, .member_gone = 1234 };

	/* both keys in one revision: etcd ended the lease */
	assert_true(classify(1000, 2000, &h));
	assert_true(h.reads > 2 && h.reads <= 12); /* a binary search, then the member */
	/* the key deleted, the lease revoked one revision later: a stop */
	h = (struct history){ .leader_gone = 1234, .member_gone = 1235 };
	assert_false(classify(1000, 2000, &h));
	h = (struct history){ .leader_gone = 1001, .member_gone = 1002 };
	assert_false(classify(1000, 1002, &h));
	/* adjacent looks: no search, the member's read alone */
	h = (struct history){ .leader_gone = 1001, .member_gone = 1001 };
	assert_true(classify(1000, 1001, &h));
	assert_int_equal(h.reads, 1);
	/* the history compacted (or etcd gone): the guess stays */
	h = (struct history){ .leader_gone = 1234, .member_gone = 1235, .fail_at = 1 };
	assert_true(classify(1000, 2000, &h));
	assert_int_equal(h.reads, 1);
	/* no look saw the key held (we started after it went): nothing read */
	h = (struct history){ .leader_gone = 1234, .member_gone = 1235 };
	assert_true(classify(0, 2000, &h));
	assert_int_equal(h.reads, 0);
}

static struct failover_record record(const char *service, int kind, double seconds)
{
	struct failover_record r = { .token = 3, .at = 1700000000 * S, .kind = kind,
				     .wait_s = seconds / 2, .promote_s = seconds / 2,
				     .ttl_s = 3, .seconds = seconds };

	snprintf(r.service, sizeof(r.service), "%s", service);
	snprintf(r.from, sizeof(r.from), "a");
	snprintf(r.to, sizeof(r.to), "b");
	return r;
}

static void test_json(void **state)
{
	(void)state;
	struct failover_record r = record("db", FAILOVER_SWITCHOVER, 1.5), back;
	json_t *j = failover_record_json(&r);
	static const char *const garbage[] = {
		"[]", "{}", "null",
		"{\"service\":\"db\",\"kind\":\"failover\",\"from\":\"a\",\"to\":\"b\","
		"\"wait_s\":-1,\"promote_s\":0,\"ttl_s\":3,\"seconds\":1}",
		"{\"service\":\"db\",\"kind\":\"reboot\",\"from\":\"a\",\"to\":\"b\","
		"\"wait_s\":0,\"promote_s\":0,\"ttl_s\":3,\"seconds\":1}",
		"{\"service\":\"d/b\",\"kind\":\"failover\",\"from\":\"a\",\"to\":\"b\","
		"\"wait_s\":0,\"promote_s\":0,\"ttl_s\":3,\"seconds\":1}",
		"{\"service\":\"db\",\"kind\":\"failover\",\"from\":\"a\",\"to\":\"b\","
		"\"wait_s\":0,\"promote_s\":0,\"ttl_s\":3,\"seconds\":\"1\"}",
		"{\"service\":\"db\",\"kind\":\"failover\",\"from\":\"a\",\"to\":\"b\","
		"\"wait_s\":0,\"promote_s\":0,\"ttl_s\":3,\"seconds\":1e300}",
	};

	assert_int_equal(failover_record_from_json(j, &back), 0);
	assert_string_equal(back.service, "db");
	assert_string_equal(back.from, "a");
	assert_string_equal(back.to, "b");
	assert_int_equal(back.kind, FAILOVER_SWITCHOVER);
	assert_int_equal(back.token, 3);
	assert_int_equal(back.at, r.at);
	assert_false(back.lease_ended);
	assert_true(back.seconds == 1.5 && back.wait_s == 0.75 && back.promote_s == 0.75 &&
		    back.ttl_s == 3);
	json_decref(j);
	for (size_t i = 0; i < sizeof(garbage) / sizeof(*garbage); i++) {
		json_t *g = json_loads(garbage[i], JSON_DECODE_ANY, NULL);

		assert_non_null(g);
		assert_int_equal(failover_record_from_json(g, &back), -EINVAL);
		json_decref(g);
	}
}

static void test_quantiles(void **state)
{
	(void)state;
	double v[20], one = 4;
	struct failover_stats st;

	for (int i = 0; i < 20; i++)
		v[i] = 20 - i; /* 20 .. 1, unsorted */
	failover_stats_of(v, 20, &st);
	assert_int_equal(st.count, 20);
	assert_true(st.median_s == 10); /* nearest rank: the 10th of 20 */
	assert_true(st.p95_s == 19);    /* the 19th */
	assert_true(st.min_s == 1 && st.max_s == 20 && st.mean_s == 10.5);
	assert_true(v[0] == 20); /* the input is not reordered */
	failover_stats_of(&one, 1, &st);
	assert_true(st.median_s == 4 && st.p95_s == 4);
	failover_stats_of(NULL, 0, &st);
	assert_int_equal(st.count, 0);
	assert_true(isnan(st.median_s));
}

static void test_history(void **state)
{
	(void)state;
	sqlite3 *db;
	json_t *doc;
	double *times;
	size_t n;

	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	/* no table yet: an agent that never took anything over */
	assert_int_equal(failover_log_json(db, NULL, &doc), -BCDR_ERR_NOT_FOUND);
	for (int i = 1; i <= 12; i++) {
		struct failover_record r = record("db", i % 4 ? FAILOVER_UNPLANNED
							   : FAILOVER_SWITCHOVER, i);

		assert_int_equal(failover_log_add(db, &r, 5), 0);
	}
	struct failover_record other = record("web", FAILOVER_UNPLANNED, 0.25);
	assert_int_equal(failover_log_add(db, &other, 5), 0);
	assert_int_equal(failover_log_json(db, NULL, &doc), 0);
	/* the newest 5 of db (8..12), oldest first; totals over all 12 */
	json_t *o = json_object_get(doc, "db");
	assert_int_equal(json_array_size(json_object_get(o, "recent")), 5);
	assert_int_equal(json_integer_value(json_object_get(
		json_array_get(json_object_get(o, "recent"), 0), "fencing_token")), 3);
	assert_true(json_number_value(json_object_get(
		json_array_get(json_object_get(o, "recent"), 0), "seconds")) == 8);
	assert_int_equal(json_integer_value(json_object_get(o, "total")), 12);
	assert_true(json_real_value(json_object_get(o, "total_seconds")) == 78);
	assert_int_equal(json_integer_value(json_object_get(o, "count")), 5);
	assert_true(json_real_value(json_object_get(o, "median_s")) == 10);
	/* by kind: 8 and 12 were switchovers */
	assert_int_equal(json_integer_value(json_object_get(
		json_object_get(json_object_get(o, "by_kind"), "switchover"), "count")), 2);
	assert_int_equal(failover_log_times(doc, "db", FAILOVER_UNPLANNED, &times, &n), 0);
	assert_int_equal(n, 3);
	assert_true(times[0] == 9 && times[1] == 10 && times[2] == 11);
	free(times);
	assert_int_equal(failover_log_times(doc, "web", -1, &times, &n), 0);
	assert_int_equal(n, 1);
	free(times);
	assert_int_equal(failover_log_times(doc, "nothing", -1, &times, &n), 0);
	assert_int_equal(n, 0);
	assert_null(times);
	json_decref(doc);
	/* one service only */
	assert_int_equal(failover_log_json(db, "web", &doc), 0);
	assert_int_equal(json_object_size(doc), 1);
	json_decref(doc);
	/* a row that is not a record is skipped, not fatal */
	assert_int_equal(sqlite3_exec(db, "INSERT INTO cluster_failovers(service, t_us, record)"
				      " VALUES('web', 1, 'garbage'), ('web', 2, '{\"a\":1}')",
				      NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(failover_log_json(db, "web", &doc), 0);
	assert_int_equal(json_array_size(json_object_get(json_object_get(doc, "web"), "recent")),
			 1);
	json_decref(doc);
	sqlite3_close(db);
}

static void test_times_garbage(void **state)
{
	(void)state;
	static const char *const docs[] = {
		"{\"db\":{\"recent\":{}}}",
		"{\"db\":{\"recent\":[1]}}",
		"{\"db\":{\"recent\":[{\"service\":\"web\",\"kind\":\"failover\",\"from\":\"a\","
		"\"to\":\"b\",\"wait_s\":0,\"promote_s\":0,\"ttl_s\":3,\"seconds\":1}]}}",
	};
	double *times = NULL;
	size_t n;

	for (size_t i = 0; i < sizeof(docs) / sizeof(*docs); i++) {
		json_t *d = json_loads(docs[i], 0, NULL);

		assert_non_null(d);
		assert_int_equal(failover_log_times(d, "db", -1, &times, &n), -EINVAL);
		json_decref(d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch_lease_ended),
		cmocka_unit_test(test_watch_stepped_down),
		cmocka_unit_test(test_watch_nothing),
		cmocka_unit_test(test_watch_classify),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_quantiles),
		cmocka_unit_test(test_history),
		cmocka_unit_test(test_times_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
