/* The act engine with real programs and a clock the test drives: runs and
 * their events, the sliding-window limit, escalation (with its alert),
 * recovery and reset, timeouts, bounded output, background restarts. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "act/act.h"
#include "lib/spawn.h"
#include "alert/alert.h"
#include "lib/err.h"
#include "plan/plan.h"

static usec_t clock_now;

static usec_t test_now(void *userdata)
{
	(void)userdata;
	return clock_now;
}

#define T0 ((usec_t)1800000000 * USEC_PER_SEC)
#define S(n) ((usec_t)(n) * USEC_PER_SEC)

struct events {
	int runs, ok_runs, escalated, resets, skipped;
	char last_output[256];
	char last_message[256];
	int last_exit;
};

static void on_event(void *userdata, const struct act_event *ev)
{
	struct events *evs = userdata;

	switch (ev->kind) {
	case ACT_EVENT_RUN:
		evs->runs++;
		evs->ok_runs += ev->run->ok;
		evs->last_exit = ev->run->exit_status;
		snprintf(evs->last_output, sizeof(evs->last_output), "%s", ev->run->output);
		snprintf(evs->last_message, sizeof(evs->last_message), "%s", ev->run->message);
		break;
	case ACT_EVENT_ESCALATED:
		evs->escalated++;
		break;
	case ACT_EVENT_RESET:
		evs->resets++;
		break;
	case ACT_EVENT_SKIPPED:
		evs->skipped++;
		break;
	}
}

static int run_job(void *userdata, enum act_kind kind, const char *job, char **ret_message)
{
	(void)userdata;
	if (strcmp(job, "good") == 0)
		return 0;
	if (asprintf(ret_message, "%s '%s' failed", kind == ACT_BACKUP ? "backup" : "drill", job) < 0)
		*ret_message = NULL;
	return -EIO;
}

static struct plan *load(const char *text)
{
	struct plan *plan = NULL;
	char *error = NULL;

	if (plan_parse("test.yaml", text, strlen(text), &plan, &error) < 0)
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

static void test_limit_parse(void **state)
{
	unsigned n;
	usec_t w;

	(void)state;
	assert_int_equal(act_limit_parse("3 within 10m", &n, &w), 0);
	assert_int_equal(n, 3);
	assert_int_equal(w, 10 * USEC_PER_MINUTE);
	assert_int_equal(act_limit_parse("none", &n, &w), 0);
	assert_int_equal(n, 0);
	assert_true(act_limit_parse("3 in 10m", &n, &w) < 0);
	assert_true(act_limit_parse("0 within 1m", &n, &w) < 0);
	assert_true(act_limit_parse("3 within", &n, &w) < 0);
	assert_true(act_limit_parse("x within 1m", &n, &w) < 0);
}

static void test_plan_errors(void **state)
{
	char *e;

	(void)state;
	e = plan_error("actions:\n  - name: a\n    limit: 3 per hour\n    exec: [/bin/true]\n");
	assert_non_null(strstr(e, "test.yaml:3:12: expected a limit such as '3 within 10m'"));
	free(e);
	e = plan_error("actions:\n  - name: a\n");
	assert_non_null(strstr(e, "needs one of: exec, restart, backup, drill"));
	free(e);
	e = plan_error("actions:\n  - name: a\n    exec: [/bin/true]\n    backup: nightly\n");
	assert_non_null(strstr(e, "one kind"));
	free(e);
	e = plan_error("actions:\n  - name: a\n    exec: /bin/true\n  - name: a\n    exec: /bin/true\n");
	assert_non_null(strstr(e, "defined twice"));
	free(e);
	e = plan_error("actions:\n  - name: a\n    restart: [/bin/true]\n");
	assert_non_null(strstr(e, "'restart' is a map"));
	free(e);
	/* a check naming an action that does not exist */
	e = plan_error("checks:\n  - name: web\n    file: { path: /etc/hostname }\n"
		       "    actions: [a, nope]\nactions:\n  - name: a\n    exec: [/bin/true]\n");
	assert_non_null(e);
	assert_non_null(strstr(e, "test.yaml:4:18: check 'web' names unknown action 'nope'"));
	free(e);
	e = plan_error("checks:\n  - name: web\n    file: { path: /etc/hostname }\n"
		       "    actions: [a]\n");
	assert_non_null(strstr(e, "the plan has no actions: section"));
	free(e);
}

static void test_exec_and_limit(void **state)
{
	struct plan *plan = load("actions:\n"
				 "  - name: fix\n"
				 "    exec: [/bin/sh, -c, 'echo fixing $BCDR_CHECK; exit 3']\n"
				 "    limit: 2 within 10m\n"
				 "    retry: 0s\n");
	struct events evs = { 0 };
	struct act_options o = { .now = test_now, .on_event = on_event, .userdata = &evs };
	const char *actions[] = { "fix", NULL };
	struct act_engine *e;
	json_t *list;

	(void)state;
	clock_now = T0;
	assert_int_equal(act_engine_new(plan->actions, &o, &e), 0);
	/* entering failing runs it; staying failing does not (retry 0) */
	assert_int_equal(act_engine_update(e, "web", actions, true), 1);
	assert_int_equal(act_engine_wait(e, S(10)), 0);
	assert_int_equal(evs.runs, 1);
	assert_int_equal(evs.last_exit, 3);
	assert_string_equal(evs.last_output, "fixing web\n");
	assert_string_equal(evs.last_message, "exit status 3");
	assert_int_equal(act_engine_update(e, "web", actions, true), 0);
	/* recover, fail again: second run */
	act_engine_update(e, "web", actions, false);
	clock_now += S(60);
	assert_int_equal(act_engine_update(e, "web", actions, true), 1);
	assert_int_equal(act_engine_wait(e, S(10)), 0);
	/* third failure within the window: escalation, no run */
	act_engine_update(e, "web", actions, false);
	clock_now += S(60);
	assert_int_equal(act_engine_update(e, "web", actions, true), 0);
	assert_int_equal(act_engine_wait(e, S(10)), 0);
	assert_int_equal(evs.runs, 2);
	assert_int_equal(evs.escalated, 1);
	list = act_engine_actions_json(e);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "state")),
			    "escalated");
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0),
							      "escalated_by")), "web");
	json_decref(list);
	/* escalated: an operator run is refused too */
	assert_int_equal(act_engine_run(e, "fix", NULL), -BCDR_ERR_LOCKED);
	/* reset by an operator while the check still fails: acting again at once */
	assert_int_equal(act_engine_reset(e, "fix"), 0);
	assert_int_equal(act_engine_reset(e, "nope"), -BCDR_ERR_NOT_FOUND);
	assert_int_equal(evs.resets, 1);
	assert_int_equal(act_engine_update(e, "web", actions, true), 1);
	assert_int_equal(act_engine_wait(e, S(10)), 0);
	assert_int_equal(evs.runs, 3);
	assert_int_equal(act_engine_update(e, "web", actions, true), 0); /* once, not each cycle */
	assert_int_equal(act_engine_run(e, "fix", "web"), 0);
	assert_int_equal(act_engine_wait(e, S(10)), 0);
	assert_int_equal(evs.runs, 4);
	assert_int_equal(evs.skipped, 0);
	act_engine_free(e);
	plan_free(plan);
}

static void test_window_slides_and_recovery_clears(void **state)
{
	struct plan *plan = load("actions:\n"
				 "  - name: fix\n"
				 "    exec: [/bin/true]\n"
				 "    limit: 1 within 5m\n"
				 "    retry: 1m\n");
	struct events evs = { 0 };
	struct act_options o = { .now = test_now, .on_event = on_event, .userdata = &evs };
	const char *actions[] = { "fix", NULL };
	struct act_engine *e;

	(void)state;
	clock_now = T0;
	assert_int_equal(act_engine_new(plan->actions, &o, &e), 0);
	assert_int_equal(act_engine_update(e, "web", actions, true), 1);
	act_engine_wait(e, S(10));
	/* retry after 1m: over the limit, escalates */
	clock_now += S(30);
	assert_int_equal(act_engine_update(e, "web", actions, true), 0);
	assert_int_equal(evs.escalated, 0);
	clock_now += S(31);
	assert_int_equal(act_engine_update(e, "web", actions, true), 0);
	assert_int_equal(evs.escalated, 1);
	/* the check recovers: the escalation ends */
	act_engine_update(e, "web", actions, false);
	assert_int_equal(evs.resets, 1);
	assert_int_equal(act_engine_update(e, "web", actions, true), 1);
	act_engine_wait(e, S(10));
	/* the window slides: 5 minutes later one run is allowed again */
	act_engine_update(e, "web", actions, false);
	clock_now += S(301);
	assert_int_equal(act_engine_update(e, "web", actions, true), 1);
	act_engine_wait(e, S(10));
	assert_int_equal(evs.runs, 3);
	assert_int_equal(evs.ok_runs, 3);
	act_engine_free(e);
	plan_free(plan);
}

static void test_escalation_raises_alert(void **state)
{
	struct plan *plan = load("actions:\n"
				 "  - name: fix\n"
				 "    exec: [/bin/false]\n"
				 "    limit: 1 within 10m\n"
				 "alerts:\n"
				 "  receivers: [ { name: ops, log: { path: /dev/null } } ]\n"
				 "  route: { receiver: ops }\n");
	struct events evs = { 0 };
	const char *actions[] = { "fix", NULL };
	struct act_engine *e;
	struct alert_engine *alerts;
	sqlite3 *db;
	json_t *list;

	(void)state;
	clock_now = T0;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	{
		struct alert_options ao = { .db = db, .host = "h", .now = test_now };

		assert_int_equal(alert_engine_new(plan->alerts, &ao, &alerts), 0);
	}
	{
		struct act_options o = { .now = test_now, .on_event = on_event, .userdata = &evs,
					 .alerts = alerts, .host = "h" };

		assert_int_equal(act_engine_new(plan->actions, &o, &e), 0);
	}
	act_engine_update(e, "web", actions, true);
	act_engine_wait(e, S(10));
	assert_int_equal(evs.ok_runs, 0);
	clock_now += S(61);
	act_engine_update(e, "web", actions, true);
	assert_int_equal(evs.escalated, 1);
	assert_int_equal(alert_engine_state(alerts, "escalation:fix"), ALERT_STATE_FIRING);
	list = alert_engine_alerts_json(alerts);
	{
		json_t *labels = json_object_get(json_array_get(list, 0), "labels");

		assert_string_equal(json_string_value(json_object_get(labels, "action")), "fix");
		assert_string_equal(json_string_value(json_object_get(labels, "check")), "web");
		assert_string_equal(json_string_value(json_object_get(labels, "severity")), "critical");
	}
	json_decref(list);
	assert_int_equal(act_engine_reset(e, "fix"), 0);
	assert_int_equal(alert_engine_state(alerts, "escalation:fix"), ALERT_STATE_RESOLVED);
	act_engine_free(e);
	alert_engine_free(alerts);
	sqlite3_close(db);
	plan_free(plan);
}

/* A restart (a new engine on the same database) keeps the window and the
 * escalation: runs before it count, and only recovery or a reset lifts it. */
static void test_window_and_escalation_survive_a_restart(void **state)
{
	struct plan *plan = load("actions:\n"
				 "  - name: fix\n"
				 "    exec: [/bin/true]\n"
				 "    limit: 2 within 10m\n"
				 "    retry: 0s\n");
	struct events evs = { 0 };
	struct act_options o = { .now = test_now, .on_event = on_event, .userdata = &evs };
	const char *actions[] = { "fix", NULL };
	struct act_engine *e;
	json_t *list;
	sqlite3 *db;

	(void)state;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	o.db = db;
	clock_now = T0;
	assert_int_equal(act_engine_new(plan->actions, &o, &e), 0);
	assert_int_equal(act_engine_update(e, "web", actions, true), 1);
	assert_int_equal(act_engine_wait(e, S(10)), 0);
	act_engine_free(e);

	/* restarted: one run in the window; the check still fails */
	clock_now += S(60);
	assert_int_equal(act_engine_new(plan->actions, &o, &e), 0);
	list = act_engine_actions_json(e);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0),
							    "runs_in_window")), 1);
	json_decref(list);
	assert_int_equal(act_engine_update(e, "web", actions, true), 1);
	assert_int_equal(act_engine_wait(e, S(10)), 0);
	act_engine_update(e, "web", actions, false);
	clock_now += S(60);
	/* the third failure within 10m escalates (2 runs: one from before) */
	assert_int_equal(act_engine_update(e, "web", actions, true), 0);
	assert_int_equal(evs.runs, 2);
	assert_int_equal(evs.escalated, 1);
	act_engine_free(e);

	/* restarted while escalated and failing: still escalated, no run */
	clock_now += S(60);
	assert_int_equal(act_engine_new(plan->actions, &o, &e), 0);
	assert_int_equal(act_engine_update(e, "web", actions, true), 0);
	assert_int_equal(evs.skipped, 1);
	assert_int_equal(act_engine_run(e, "fix", NULL), -BCDR_ERR_LOCKED);
	list = act_engine_actions_json(e);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "state")),
			    "escalated");
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0),
							      "escalated_by")), "web");
	json_decref(list);
	act_engine_free(e);

	/* restarted, and the check is fine at its first evaluation: lifted */
	assert_int_equal(act_engine_new(plan->actions, &o, &e), 0);
	act_engine_update(e, "web", actions, false);
	assert_int_equal(evs.resets, 1);
	act_engine_free(e);
	assert_int_equal(act_engine_new(plan->actions, &o, &e), 0);
	list = act_engine_actions_json(e);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "state")),
			    "ready");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0),
							    "runs_in_window")), 0);
	json_decref(list);
	act_engine_free(e);
	sqlite3_close(db);
	plan_free(plan);
}

static void test_timeout_kills_the_group(void **state)
{
	struct plan *plan = load("actions:\n"
				 "  - name: slow\n"
				 "    exec: [/bin/sh, -c, 'sleep 30 & echo started; sleep 30']\n"
				 /* Long enough for a loaded machine to start the shell. */
				 "    timeout: 1500ms\n");
	struct events evs = { 0 };
	struct act_options o = { .now = test_now, .on_event = on_event, .userdata = &evs };
	struct act_engine *e;
	usec_t t0 = now_monotonic();

	(void)state;
	clock_now = T0;
	assert_int_equal(act_engine_new(plan->actions, &o, &e), 0);
	assert_int_equal(act_engine_run(e, "slow", NULL), 0);
	assert_int_equal(act_engine_wait(e, S(10)), 0);
	assert_true(now_monotonic() - t0 < S(5));
	assert_int_equal(evs.runs, 1);
	assert_string_equal(evs.last_message, "timed out after 1500ms");
	assert_string_equal(evs.last_output, "started\n");
	act_engine_free(e);
	plan_free(plan);
}

static void test_output_is_bounded(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x; echo; exit 0",
			 NULL };
	struct spawn_options o = { .argv = argv, .timeout = S(10), .output_max = 1000 };
	struct spawn_result r = { 0 };

	(void)state;
	assert_int_equal(spawn_run(&o, &r), 0);
	assert_int_equal(r.exit_status, 0);
	assert_int_equal(r.output_len, 1000);
	assert_true(r.truncated);
	spawn_result_release(&r);
}

static void test_spawn_stdin_and_missing_program(void **state)
{
	char *cat[] = { "cat", NULL };
	char *missing[] = { "/nonexistent/program", NULL };
	struct spawn_options o = { .argv = cat, .input = "hello", .input_len = 5, .timeout = S(10),
				   .output_max = 100 };
	struct spawn_result r = { 0 };

	(void)state;
	assert_int_equal(spawn_run(&o, &r), 0);
	assert_string_equal(r.output, "hello");
	spawn_result_release(&r);
	o.argv = missing;
	assert_int_equal(spawn_run(&o, &r), -ENOENT);
}

static void test_restart_background(void **state)
{
	char pidfile[64], text[32] = "";
	char yaml[512];
	struct plan *plan;
	struct events evs = { 0 };
	struct act_options o = { .now = test_now, .on_event = on_event, .userdata = &evs };
	struct act_engine *e;
	FILE *f;
	int pid = 0;

	(void)state;
	snprintf(pidfile, sizeof(pidfile), "/tmp/bcdr-test-act-%d.pid", (int)getpid());
	snprintf(yaml, sizeof(yaml),
		 "actions:\n"
		 "  - name: restart-svc\n"
		 "    restart:\n"
		 "      stop: [/bin/sh, -c, 'echo stopping']\n"
		 "      start: [/bin/sh, -c, 'echo $$ > %s; exec sleep 30']\n"
		 "      background: true\n", pidfile);
	plan = load(yaml);
	clock_now = T0;
	assert_int_equal(act_engine_new(plan->actions, &o, &e), 0);
	assert_int_equal(act_engine_run(e, "restart-svc", "svc"), 0);
	assert_int_equal(act_engine_wait(e, S(10)), 0);
	assert_int_equal(evs.runs, 1);
	assert_int_equal(evs.ok_runs, 1);
	assert_non_null(strstr(evs.last_message, "started, running as pid"));
	assert_string_equal(evs.last_output, "stopping\n");
	f = fopen(pidfile, "r");
	assert_non_null(f);
	assert_non_null(fgets(text, sizeof(text), f));
	fclose(f);
	pid = atoi(text);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, 0), 0); /* still running after the action */
	kill(pid, SIGKILL);
	usleep(100000);
	act_engine_tick(e); /* reaps it */
	act_engine_free(e);
	plan_free(plan);
	unlink(pidfile);
}

static void test_backup_and_drill_through_callback(void **state)
{
	struct plan *plan = load("actions:\n"
				 "  - name: b\n"
				 "    backup: good\n"
				 "  - name: d\n"
				 "    drill: bad\n");
	struct events evs = { 0 };
	struct act_options o = { .now = test_now, .on_event = on_event, .userdata = &evs,
				 .run_job = run_job };
	struct act_engine *e;

	(void)state;
	clock_now = T0;
	assert_int_equal(act_engine_new(plan->actions, &o, &e), 0);
	assert_int_equal(act_engine_run(e, "b", NULL), 0);
	assert_int_equal(act_engine_wait(e, S(10)), 0);
	assert_int_equal(evs.ok_runs, 1);
	assert_int_equal(act_engine_run(e, "d", NULL), 0);
	assert_int_equal(act_engine_wait(e, S(10)), 0);
	assert_int_equal(evs.runs, 2);
	assert_int_equal(evs.ok_runs, 1);
	assert_string_equal(evs.last_message, "drill 'bad' failed");
	act_engine_free(e);
	plan_free(plan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_parse),
		cmocka_unit_test(test_plan_errors),
		cmocka_unit_test(test_exec_and_limit),
		cmocka_unit_test(test_window_slides_and_recovery_clears),
		cmocka_unit_test(test_escalation_raises_alert),
		cmocka_unit_test(test_window_and_escalation_survive_a_restart),
		cmocka_unit_test(test_timeout_kills_the_group),
		cmocka_unit_test(test_output_is_bounded),
		cmocka_unit_test(test_spawn_stdin_and_missing_program),
		cmocka_unit_test(test_restart_background),
		cmocka_unit_test(test_backup_and_drill_through_callback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
