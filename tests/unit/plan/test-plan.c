/* The plan loader (src/plan/plan.c): sections handed to their engines,
 * errors at a line and column, and the checks across sections. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/err.h"
#include "plan/plan.h"
#include "plan-helpers.h"

/* An empty file is an empty plan: every section NULL. */
static void test_empty_plan(void **state)
{
	struct plan *p = NULL;
	char *err = NULL;

	(void)state;
	assert_int_equal(plan_parse("t.yaml", "", 0, &p, &err), 0);
	assert_non_null(p);
	assert_null(p->backup);
	assert_null(p->checks);
	assert_null(p->alerts);
	assert_null(p->balancers);
	assert_null(p->path);
	plan_free(p);
}

/* Each section reaches its engine; targets are the plan's own. */
static void test_sections_reach_engines(void **state)
{
	static const char text[] =
		"targets: { availability: 99.9%, rto: 1h, rpo: 15m }\n"
		"repositories: [{ name: r, path: /srv/r, password_file: /etc/pw }]\n"
		"backups: [{ name: etc, repository: r, paths: [/etc] }]\n"
		"checks:\n"
		"  - name: etc-fresh\n"
		"    backup: { job: etc }\n"
		"actions: [{ name: noop, exec: [/bin/true] }]\n"
		"alerts: { receivers: [{ name: l, log: {} }], route: { receiver: l } }\n";
	struct plan *p = NULL;
	char *err = NULL;

	(void)state;
	if (plan_parse("t.yaml", text, strlen(text), &p, &err) < 0)
		fail_msg("%s", err);
	assert_true(p->targets.availability > 0.9989 && p->targets.availability < 0.9991);
	assert_int_equal(p->targets.rto, USEC_PER_HOUR);
	assert_int_equal(p->targets.rpo, 15 * USEC_PER_MINUTE);
	assert_non_null(backup_plan_job(p->backup, "etc"));
	assert_int_equal(p->checks->n_checks, 1);
	assert_non_null(p->actions);
	assert_non_null(alert_plan_receiver(p->alerts, "l"));
	plan_free(p);
}

static void test_shape_errors(void **state)
{
	(void)state;
	plan_expect_error("- a\n- b\n", "a plan is a map of sections");
	plan_expect_error("targets: {rto: 1h}\nbackup: []\n", "t.yaml:2:1: unknown section 'backup'");
	plan_expect_error("targets: [1, 2]\n", "t.yaml:1");
	plan_expect_error("checks: [{name: a, tcp: {host: 127.0.0.1, port: 1}}\n", "t.yaml");
}

/* References across sections are checked once everything is parsed, and
 * the error points at the reference. */
static void test_cross_section_errors(void **state)
{
	(void)state;
	plan_expect_error("checks:\n"
		     "  - name: web\n"
		     "    tcp: { host: 127.0.0.1, port: 80 }\n"
		     "    actions: [restart]\n",
		     "t.yaml:4");
	plan_expect_error("backups: []\n"
		     "checks:\n"
		     "  - name: fresh\n"
		     "    backup: { job: nightly }\n",
		     "check 'fresh' watches backup job 'nightly', which is not in backups:");
}

/* plan_load() reads a file and keeps where it came from; a missing file
 * says so. */
static void test_load_from_file(void **state)
{
	char path[] = "/tmp/bcdr-test-plan-XXXXXX";
	int fd = mkstemp(path);
	struct plan *p = NULL;
	char *err = NULL;
	static const char text[] = "targets: { rpo: 1d }\n";

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	assert_int_equal(plan_load(path, &p, &err), 0);
	assert_string_equal(p->path, path);
	assert_int_equal(p->targets.rpo, USEC_PER_DAY);
	plan_free(p);
	unlink(path);
	assert_true(plan_load(path, &p, &err) < 0);
	assert_non_null(err);
	if (!strstr(err, path))
		fail_msg("error '%s' does not name the file", err);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_plan),
		cmocka_unit_test(test_sections_reach_engines),
		cmocka_unit_test(test_shape_errors),
		cmocka_unit_test(test_cross_section_errors),
		cmocka_unit_test(test_load_from_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
