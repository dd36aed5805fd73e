/* The alert engine's discipline with a clock the test drives: group_wait,
 * group_interval, repeat_interval, dedup, resolve, silences, acks, the
 * queue's retries and its survival across a restart. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "alert/alert.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "plan/plan.h"

static usec_t clock_now;

static usec_t test_now(void *userdata)
{
	(void)userdata;
	return clock_now;
}

#define T0 ((usec_t)1800000000 * USEC_PER_SEC)
#define S(n) ((usec_t)(n) * USEC_PER_SEC)

static struct plan *load(const char *text)
{
	struct plan *plan = NULL;
	char *error = NULL;
	int r = plan_parse("test.yaml", text, strlen(text), &plan, &error);

	if (r < 0)
		fail_msg("plan: %s", error);
	free(error);
	return plan;
}

static char *plan_error(const char *text)
{
	struct plan *plan = NULL;
	char *error = NULL;

	if (plan_parse("test.yaml", text, strlen(text), &plan, &error) >= 0) {
		plan_free(plan);
		return NULL;
	}
	return error;
}

static const char basic_plan[] =
	"alerts:\n"
	"  receivers:\n"
	"    - name: ops\n"
	"      log: { path: /dev/null }\n"
	"    - name: pager\n"
	"      log: { path: /dev/null }\n"
	"  route:\n"
	"    receiver: ops\n"
	"    group_by: [check]\n"
	"    group_wait: 10s\n"
	"    group_interval: 1m\n"
	"    repeat_interval: 1h\n"
	"    routes:\n"
	"      - match: { severity: critical }\n"
	"        receiver: pager\n"
	"        group_wait: 0s\n";

struct fixture {
	struct plan *plan;
	sqlite3 *db;
	struct alert_engine *e;
	char dbpath[64];
};

static void open_engine(struct fixture *f)
{
	struct alert_options o = { .db = f->db, .host = "web-1", .now = test_now };

	assert_int_equal(alert_engine_new(f->plan->alerts, &o, &f->e), 0);
}

static int setup_with(void **state, const char *text)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dbpath, sizeof(f->dbpath), "/tmp/bcdr-test-alert-%d.db", (int)getpid());
	unlink(f->dbpath);
	f->plan = load(text);
	assert_int_equal(sqlite3_open(f->dbpath, &f->db), SQLITE_OK);
	/* a test's database need not survive a power cut: no fsync */
	sqlite3_exec(f->db, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
	clock_now = T0;
	open_engine(f);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, basic_plan);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	alert_engine_free(f->e);
	sqlite3_close(f->db);
	plan_free(f->plan);
	unlink(f->dbpath);
	free(f);
	return 0;
}

static long long count(struct fixture *f, const char *where)
{
	char sql[512];
	sqlite3_stmt *st;
	long long n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM alert_queue WHERE %s", where);
	assert_int_equal(sqlite3_prepare_v2(f->db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* The payload of the newest queued notification, parsed. */
static json_t *last_payload(struct fixture *f)
{
	sqlite3_stmt *st;
	json_t *j = NULL;

	assert_int_equal(sqlite3_prepare_v2(f->db, "SELECT payload FROM alert_queue ORDER BY id DESC"
					    " LIMIT 1", -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		j = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
	sqlite3_finalize(st);
	assert_non_null(j);
	return j;
}

static void fire(struct fixture *f, const char *check, const char *severity)
{
	const char *labels[] = { "check", check, "severity", severity, "component", "www", NULL };
	const char *ann[] = { "summary", "it is down", NULL };

	alert_engine_update(f->e, check, ALERT_INPUT_FIRING, labels, ann);
}

static void ok(struct fixture *f, const char *check)
{
	alert_engine_update(f->e, check, ALERT_INPUT_OK, NULL, NULL);
}

static void at(struct fixture *f, usec_t offset)
{
	clock_now = T0 + offset;
	alert_engine_tick(f->e);
}

static void test_plan_errors(void **state)
{
	char *e;

	(void)state;
	e = plan_error("alerts:\n  receivers:\n    - name: a\n      log: {}\n"
		       "  route: { receiver: nobody }\n");
	assert_non_null(e);
	assert_non_null(strstr(e, "test.yaml:5:10: route names unknown receiver 'nobody'"));
	free(e);
	e = plan_error("alerts:\n  receivers:\n    - name: a\n  route: { receiver: a }\n");
	assert_non_null(strstr(e, "needs one of: email, webhook, exec, log"));
	free(e);
	e = plan_error("alerts:\n  receivers:\n    - name: a\n      webhook: ftp://x\n"
		       "  route: { receiver: a }\n");
	assert_non_null(strstr(e, "http:// or https://"));
	free(e);
	e = plan_error("alerts:\n  receivers:\n    - name: a\n      log: {}\n      exec: [/bin/true]\n"
		       "  route: { receiver: a }\n");
	assert_non_null(strstr(e, "one kind"));
	free(e);
	e = plan_error("alerts:\n  receivers:\n    - name: a\n      log: {}\n    - name: a\n"
		       "      log: {}\n  route: { receiver: a }\n");
	assert_non_null(strstr(e, "defined twice"));
	free(e);
}

static void test_route_inherits(void **state)
{
	struct fixture *f = *state;
	const struct alert_route *child = &f->plan->alerts->route.routes[0];

	assert_string_equal(child->receiver, "pager");
	assert_int_equal(child->group_wait, 0);
	assert_int_equal(child->group_interval, USEC_PER_MINUTE);
	assert_int_equal(child->repeat_interval, USEC_PER_HOUR);
	assert_string_equal(child->group_by[0], "check");
}

/* require_tls: on unless the SMTP server is on loopback; the plan's word wins. */
static void test_email_require_tls_default(void **state)
{
	static const struct {
		const char *smtp, *extra;
		bool want;
	} cases[] = {
		{ "smtp://127.0.0.1:2525", "", false },
		{ "smtp://127.9.8.7", "", false },
		{ "smtp://localhost:25", "", false },
		{ "smtp://[::1]:25/", "", false },
		{ "smtp://user@127.0.0.1:25", "", false },
		{ "smtp://mail.example.com:587", "", true },
		{ "smtp://10.213.0.1:25", "", true },
		{ "smtp://127.0.0.1.evil.example", "", true },
		{ "smtp://localhost@mail.example.com", "", true },
		{ "smtp://[::1", "", true },
		{ "smtps://mail.example.com", "", true },
		{ "smtp://127.0.0.1", ", require_tls: true", true },
		{ "smtp://mail.example.com", ", require_tls: false", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512];
		struct plan *plan;

		snprintf(text, sizeof(text),
			 "alerts:\n  receivers:\n    - name: m\n      email: { to: [a@b.c], from: "
			 "x@y.z, smtp: '%s'%s }\n  route: { receiver: m }\n",
			 cases[i].smtp, cases[i].extra);
		plan = load(text);
		if (plan->alerts->receivers[0].email.require_tls != cases[i].want)
			fail_msg("%s%s: require_tls %d", cases[i].smtp, cases[i].extra,
				 !cases[i].want);
		plan_free(plan);
	}
}

static void test_group_wait_then_dedup_then_repeat(void **state)
{
	struct fixture *f = *state;
	json_t *p;

	fire(f, "web", "warning");
	assert_int_equal(alert_engine_state(f->e, "web"), ALERT_STATE_FIRING);
	at(f, S(5));
	assert_int_equal(count(f, "1"), 0); /* group_wait is 10s */
	at(f, S(10));
	assert_int_equal(count(f, "1"), 1);
	p = last_payload(f);
	assert_string_equal(json_string_value(json_object_get(p, "version")), "4");
	assert_string_equal(json_string_value(json_object_get(p, "status")), "firing");
	assert_string_equal(json_string_value(json_object_get(p, "receiver")), "ops");
	assert_string_equal(json_string_value(json_object_get(json_object_get(p, "groupLabels"),
							      "check")), "web");
	assert_string_equal(json_string_value(json_object_get(json_object_get(p, "commonLabels"),
							      "host")), "web-1");
	assert_int_equal(json_array_size(json_object_get(p, "alerts")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
		json_object_get(p, "alerts"), 0), "endsAt")), "0001-01-01T00:00:00Z");
	json_decref(p);
	/* fed again each cycle: nothing new */
	fire(f, "web", "warning");
	at(f, S(70));
	at(f, S(130));
	assert_int_equal(count(f, "1"), 1);
	/* repeat_interval: 1h after the first notification */
	at(f, S(3590));
	assert_int_equal(count(f, "1"), 1);
	at(f, S(3610) + S(60));
	assert_int_equal(count(f, "1"), 2);
}

static void test_resolve(void **state)
{
	struct fixture *f = *state;
	json_t *p, *a;

	fire(f, "web", "warning");
	at(f, S(10));
	ok(f, "web");
	assert_int_equal(alert_engine_state(f->e, "web"), ALERT_STATE_RESOLVED);
	at(f, S(30));
	assert_int_equal(count(f, "1"), 1); /* group_interval: next flush at 70s */
	at(f, S(70));
	assert_int_equal(count(f, "1"), 2);
	p = last_payload(f);
	assert_string_equal(json_string_value(json_object_get(p, "status")), "resolved");
	a = json_array_get(json_object_get(p, "alerts"), 0);
	assert_string_equal(json_string_value(json_object_get(a, "status")), "resolved");
	assert_string_not_equal(json_string_value(json_object_get(a, "endsAt")),
				"0001-01-01T00:00:00Z");
	json_decref(p);
	at(f, S(200));
	at(f, S(4000));
	assert_int_equal(count(f, "1"), 2); /* told once, then the group is gone */
}

static void test_resolved_before_group_wait_is_silent(void **state)
{
	struct fixture *f = *state;

	fire(f, "web", "warning");
	at(f, S(3));
	ok(f, "web");
	at(f, S(10));
	at(f, S(100));
	assert_int_equal(count(f, "1"), 0);
}

static void test_grouping_and_routes(void **state)
{
	struct fixture *f = *state;
	json_t *p;

	fire(f, "db", "critical"); /* child route: pager, group_wait 0 */
	at(f, 0);
	assert_int_equal(count(f, "receiver='pager'"), 1);
	p = last_payload(f);
	assert_string_equal(json_string_value(json_object_get(p, "receiver")), "pager");
	json_decref(p);
	fire(f, "web", "warning");
	fire(f, "cpu", "warning");
	at(f, S(10));
	/* group_by check: one notification each */
	assert_int_equal(count(f, "receiver='ops'"), 2);
}

static void test_group_change_notifies(void **state)
{
	struct fixture *f = *state;

	teardown(state);
	setup_with(state,
		   "alerts:\n  receivers:\n    - name: ops\n      log: { path: /dev/null }\n"
		   "  route: { receiver: ops, group_by: [component], group_wait: 10s,"
		   " group_interval: 1m, repeat_interval: 4h }\n");
	f = *state;
	fire(f, "web", "warning");
	at(f, S(10));
	assert_int_equal(count(f, "1"), 1);
	fire(f, "api", "warning"); /* same component: same group, changed */
	at(f, S(30));
	assert_int_equal(count(f, "1"), 1); /* waits for group_interval */
	at(f, S(70));
	assert_int_equal(count(f, "1"), 2);
	{
		json_t *p = last_payload(f);

		assert_int_equal(json_array_size(json_object_get(p, "alerts")), 2);
		json_decref(p);
	}
}

static void test_silence(void **state)
{
	struct fixture *f = *state;
	const char *m[] = { "check", "we*", NULL };
	char *id = NULL, *error = NULL;
	json_t *list;

	assert_int_equal(alert_engine_silence_add(f->e, m, S(100), "maintenance", "me", &id), 0);
	fire(f, "web", "warning");
	at(f, S(10));
	at(f, S(70));
	assert_int_equal(count(f, "1"), 0);
	list = alert_engine_alerts_json(f->e);
	assert_true(json_is_true(json_object_get(json_array_get(list, 0), "silenced")));
	json_decref(list);
	/* expiry: the group is news again */
	at(f, S(130));
	assert_int_equal(count(f, "1"), 1);
	assert_int_equal(alert_engine_silence_expire(f->e, id), -BCDR_ERR_NOT_FOUND);
	free(id);

	/* the API's body */
	{
		const char *body = "{\"matchers\":{\"check\":\"x\"},\"duration_s\":60}";

		assert_int_equal(alert_engine_silence_add_json(f->e, body, strlen(body), &id, &error),
				 0);
	}
	assert_int_equal(strlen(id), 32);
	assert_int_equal(alert_engine_silence_expire(f->e, id), 0);
	free(id);
	id = NULL;
	assert_int_equal(alert_engine_silence_add_json(f->e, "{\"matchers\":{}}", 15, &id, &error),
			 -BCDR_ERR_USAGE);
	assert_non_null(strstr(error, "matchers"));
	free(error);
	error = NULL;
	assert_int_equal(alert_engine_silence_add_json(f->e, "[1", 2, &id, &error), -BCDR_ERR_USAGE);
	free(error);
	list = alert_engine_silences_json(f->e);
	assert_int_equal(json_array_size(list), 2);
	json_decref(list);
}

static void test_ack_stops_repeats(void **state)
{
	struct fixture *f = *state;

	const char *labels[] = { "check", "web", "severity", "warning", "component", "www", NULL };
	const char *ann[] = { "summary", "latency 2.5s", NULL };

	fire(f, "web", "warning");
	at(f, S(10));
	assert_int_equal(alert_engine_ack(f->e, "web"), 0);
	assert_int_equal(alert_engine_ack(f->e, "nothing"), -BCDR_ERR_NOT_FOUND);
	/* a new summary each cycle is neither news nor the end of the ack */
	assert_int_equal(alert_engine_update(f->e, "web", ALERT_INPUT_FIRING, labels, ann), 0);
	at(f, S(7200));
	assert_int_equal(count(f, "1"), 1);
	{
		json_t *list = alert_engine_alerts_json(f->e);
		json_t *one = json_array_get(list, 0);

		assert_true(json_is_true(json_object_get(one, "acked")));
		assert_string_equal(json_string_value(json_object_get(json_object_get(
			one, "annotations"), "summary")), "latency 2.5s");
		json_decref(list);
	}
	/* a change (severity) is news, and drops the ack */
	fire(f, "web", "critical");
	at(f, S(7300));
	assert_true(count(f, "1") >= 2);
}

static void test_queue_survives_restart(void **state)
{
	struct fixture *f = *state;

	fire(f, "web", "warning");
	at(f, S(10));
	assert_int_equal(count(f, "delivered_us IS NULL"), 1);
	/* restart: a new engine on the same database */
	alert_engine_free(f->e);
	sqlite3_close(f->db);
	assert_int_equal(sqlite3_open(f->dbpath, &f->db), SQLITE_OK);
	open_engine(f);
	assert_int_equal(alert_engine_state(f->e, "web"), ALERT_STATE_FIRING);
	/* fed again after restart: known, not news */
	fire(f, "web", "warning");
	at(f, S(20));
	at(f, S(80));
	assert_int_equal(count(f, "1"), 1);
	assert_int_equal(alert_engine_start(f->e, NULL), 0);
	assert_int_equal(alert_engine_flush(f->e, S(10)), 0);
	assert_int_equal(count(f, "delivered_us IS NOT NULL"), 1);
}

static void test_retry_backoff(void **state)
{
	struct fixture *f = *state;
	struct alert_stats st;

	teardown(state);
	setup_with(state,
		   "alerts:\n  receivers:\n    - name: broken\n      exec: [/bin/false]\n"
		   "  route: { receiver: broken, group_wait: 0s }\n");
	f = *state;
	assert_int_equal(alert_engine_start(f->e, NULL), 0);
	fire(f, "web", "warning");
	assert_int_equal(alert_engine_flush(f->e, S(10)), 0);
	assert_int_equal(count(f, "attempts=1 AND delivered_us IS NULL"), 1);
	/* not before the backoff (10s) */
	clock_now = T0 + S(5);
	assert_int_equal(alert_engine_flush(f->e, S(10)), 0);
	assert_int_equal(count(f, "attempts=1"), 1);
	clock_now = T0 + S(11);
	assert_int_equal(alert_engine_flush(f->e, S(10)), 0);
	assert_int_equal(count(f, "attempts=2"), 1);
	/* then 20s */
	clock_now = T0 + S(25);
	assert_int_equal(alert_engine_flush(f->e, S(10)), 0);
	assert_int_equal(count(f, "attempts=2"), 1);
	clock_now = T0 + S(32);
	assert_int_equal(alert_engine_flush(f->e, S(10)), 0);
	assert_int_equal(count(f, "attempts=3"), 1);
	assert_int_equal(count(f, "error LIKE '%exit status 1%'"), 1);
	alert_engine_stats(f->e, &st);
	assert_int_equal(st.failed, 3);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.firing, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_errors),
		cmocka_unit_test(test_email_require_tls_default),
		cmocka_unit_test_setup_teardown(test_route_inherits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_wait_then_dedup_then_repeat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolved_before_group_wait_is_silent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_grouping_and_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_change_notifies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ack_stops_repeats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_survives_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_backoff, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
