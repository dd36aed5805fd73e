/* The checks: section: what parses into which check_def, and the errors
 * (with file:line:col) for what does not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "plan/plan.h"

static struct plan *load(const char *text)
{
	struct plan *plan = NULL;
	char *error = NULL;

	if (plan_parse("plan.yaml", text, strlen(text), &plan, &error) < 0)
		fail_msg("unexpected error: %s", error);
	assert_non_null(plan->checks);
	return plan;
}

/* Asserts text is refused with an error containing want. */
static void refused(const char *text, const char *want)
{
	struct plan *plan = NULL;
	char *error = NULL;

	if (plan_parse("plan.yaml", text, strlen(text), &plan, &error) >= 0) {
		plan_free(plan);
		fail_msg("accepted, expected '%s'", want);
	}
	if (!strstr(error, want))
		fail_msg("error '%s' does not say '%s'", error, want);
	free(error);
}

static void test_full_check(void **state)
{
	struct plan *plan = load(
		"checks:\n"
		"  - name: web\n"
		"    http: { url: http://127.0.0.1:8080/health, expect_status: 200, body: ok,\n"
		"            headers: ['Host: example.com'] }\n"
		"    timeout: 2s\n"
		"    interval: 5s\n"
		"    for: 3\n"
		"    recover: { for: 2, margin: 50ms }\n"
		"    warn: 500ms\n"
		"    crit: 2s\n"
		"    flap: { changes: 4, cycles: 10 }\n"
		"    labels: { component: web, team: ops }\n"
		"    actions: [restart-web]\n"
		"    predict: { horizon: 2h }\n"
		"    anomaly: { above: 0.7, for: 5 }\n"
		"    description: the shop's front page\n"
		"actions:\n"
		"  - name: restart-web\n"
		"    exec: [/usr/bin/systemctl, restart, web]\n");
	const struct check_def *d = monitor_plan_find(plan->checks, "web");

	(void)state;
	assert_non_null(d);
	assert_int_equal(d->kind, PROBE_HTTP);
	assert_string_equal(d->probe.http.url, "http://127.0.0.1:8080/health");
	assert_int_equal(d->probe.http.expect_status, 200);
	assert_string_equal(d->probe.http.body, "ok");
	assert_string_equal(d->probe.http.headers[0], "Host: example.com");
	assert_int_equal(d->timeout, 2 * USEC_PER_SEC);
	assert_int_equal(d->interval, 5 * USEC_PER_SEC);
	assert_int_equal(d->for_cycles, 3);
	assert_int_equal(d->recover_cycles, 2);
	assert_true(d->recover_margin > 0.0499 && d->recover_margin < 0.0501);
	assert_true(d->warn.set && d->warn.value == 0.5);
	assert_true(d->crit.set && d->crit.value == 2);
	assert_false(d->below);
	assert_int_equal(d->flap_changes, 4);
	assert_int_equal(d->flap_cycles, 10);
	assert_string_equal(check_label(d, "component"), "web");
	assert_string_equal(check_label(d, "team"), "ops");
	assert_null(check_label(d, "nope"));
	assert_string_equal(d->actions[0], "restart-web");
	assert_null(d->actions[1]);
	assert_true(d->predict);
	assert_int_equal(d->predict_horizon, 2 * USEC_PER_HOUR);
	assert_true(d->anomaly);
	assert_true(d->anomaly_above == 0.7);
	assert_int_equal(d->anomaly_for, 5);
	assert_string_equal(d->description, "the shop's front page");
	assert_true(d->enabled);
	plan_free(plan);
}

static void test_defaults_and_kinds(void **state)
{
	struct plan *plan = load(
		"checks:\n"
		"  - { name: cpu, system: cpu, warn: 80, crit: 95% }\n"
		"  - { name: root, system: disk }\n"
		"  - { name: data, system: 'inodes:/srv' }\n"
		"  - { name: eth, system: 'net:eth0' }\n"
		"  - { name: cert, http: { url: 'https://x.example', measure: cert_days },\n"
		"      warn: { below: 30 }, crit: { below: 7 } }\n"
		"  - { name: pg, tcp: { port: 5432 } }\n"
		"  - { name: db, tcp: 'db.example:5433' }\n"
		"  - { name: v6, tcp: '[::1]:6379' }\n"
		"  - { name: log, file: /var/log/syslog, warn: 1GiB }\n"
		"  - { name: conf, file: { path: /etc/x, checksum: true, mode: '0640' } }\n"
		"  - { name: nginx, process: { pidfile: /run/nginx.pid, measure: memory } }\n"
		"  - { name: sshd, process: { match: '^/usr/sbin/sshd' }, enabled: false }\n"
		"  - { name: plugin, program: { argv: [/usr/lib/check, -w, 5], exit_codes: nagios } }\n"
		"  - { name: short, program: [/bin/true] }\n"
		"  - { name: nightly, backup: nightly }\n"
		"repositories:\n  - { name: r, path: /srv/r }\n"
		"backups:\n  - { name: nightly, repository: r, paths: [/home] }\n");
	const struct monitor_plan *mp = plan->checks;
	const struct check_def *d;

	(void)state;
	assert_int_equal(mp->n_checks, 15);
	d = monitor_plan_find(mp, "cpu");
	assert_int_equal(d->probe.system.metric, SYSTEM_CPU);
	assert_true(d->crit.value == 95);
	assert_int_equal(d->for_cycles, 1);
	assert_int_equal(d->recover_cycles, 1);
	assert_int_equal(d->interval, 0);
	assert_int_equal(d->timeout, 5 * USEC_PER_SEC);
	assert_int_equal(d->flap_changes, 6);
	assert_int_equal(d->on_change, CHECK_WARNING);
	assert_string_equal(monitor_plan_find(mp, "root")->probe.system.target, "/");
	assert_string_equal(monitor_plan_find(mp, "data")->probe.system.target, "/srv");
	assert_int_equal(monitor_plan_find(mp, "eth")->probe.system.metric, SYSTEM_NET);
	d = monitor_plan_find(mp, "cert");
	assert_true(d->below);
	assert_true(d->warn.value == 30 && d->crit.value == 7);
	d = monitor_plan_find(mp, "pg");
	assert_string_equal(d->probe.tcp.host, "127.0.0.1");
	assert_int_equal(d->probe.tcp.port, 5432);
	d = monitor_plan_find(mp, "db");
	assert_string_equal(d->probe.tcp.host, "db.example");
	assert_int_equal(d->probe.tcp.port, 5433);
	d = monitor_plan_find(mp, "v6");
	assert_string_equal(d->probe.tcp.host, "::1");
	assert_int_equal(d->probe.tcp.port, 6379);
	d = monitor_plan_find(mp, "log");
	assert_string_equal(d->probe.file.path, "/var/log/syslog");
	assert_true(d->warn.value == 1073741824.0);
	assert_int_equal(d->probe.file.mode, -1);
	assert_int_equal(monitor_plan_find(mp, "conf")->probe.file.mode, 0640);
	assert_int_equal(monitor_plan_find(mp, "nginx")->probe.process.measure, PROCESS_MEMORY);
	assert_false(monitor_plan_find(mp, "sshd")->enabled);
	assert_int_equal(monitor_plan_find(mp, "plugin")->probe.program.exit_codes,
			 PROGRAM_EXIT_NAGIOS);
	assert_string_equal(monitor_plan_find(mp, "short")->probe.program.argv[0], "/bin/true");
	assert_string_equal(monitor_plan_find(mp, "nightly")->probe.backup.job, "nightly");
	plan_free(plan);
}

static void test_errors(void **state)
{
	(void)state;
	refused("checks:\n  - name: x\n", "plan.yaml:2:5: check 'x' needs a probe");
	refused("checks:\n  - { name: x, system: cpu, tcp: { port: 1 } }\n", "two probes");
	refused("checks:\n  - { name: x, system: cpux }\n", "unknown system metric 'cpux'");
	refused("checks:\n  - { name: x, system: 'disk:rel' }\n", "absolute path");
	refused("checks:\n  - { name: x, system: net }\n", "needs a name");
	refused("checks:\n  - { name: x, system: 'cpu:1' }\n", "takes no ':' argument");
	refused("checks:\n  - { name: 'a b', system: cpu }\n", "invalid check name 'a b'");
	refused("checks:\n  - { name: x, system: cpu }\n  - { name: x, system: load }\n",
		"plan.yaml:3:5: two checks are named 'x'");
	refused("checks:\n  - { name: x, system: cpu, warn: lots }\n", "expected a number");
	refused("checks:\n  - { name: x, system: cpu, warn: 90, crit: 80 }\n",
		"crit (80) must be at or above warn (90)");
	refused("checks:\n  - { name: x, system: cpu, warn: { below: 9 }, crit: 80 }\n",
		"must both be above or both below");
	refused("checks:\n  - { name: x, system: cpu, warn: { under: 9 } }\n", "unknown key 'under'");
	refused("checks:\n  - { name: x, tcp: { port: 70000 } }\n", "'port' must be from 1 to 65535");
	refused("checks:\n  - { name: x, tcp: { host: h } }\n", "missing required key 'port'");
	static const char *const bad_tcp[] = { "db", "db:", ":5432", "db:0", "db:65536", "::1:80",
					       "[::1]", "[db]:80", "a b:80", "db:80x", "db:-1",
					       "db:80 " };
	for (size_t i = 0; i < sizeof(bad_tcp) / sizeof(bad_tcp[0]); i++) {
		char text[128];

		snprintf(text, sizeof(text), "checks:\n  - { name: x, tcp: \"%s\" }\n", bad_tcp[i]);
		refused(text, "is not HOST:PORT");
	}
	refused("checks:\n  - { name: x, tcp: { port: 1, expect: '(' } }\n",
		"invalid expect regular expression");
	refused("checks:\n  - { name: x, http: ftp://x }\n", "must start with http://");
	refused("checks:\n  - { name: x, http: { url: 'http://x', measure: cert_days } }\n",
		"needs an https:// url");
	refused("checks:\n  - { name: x, http: { url: 'http://x', method: PUT } }\n", "'method'");
	refused("checks:\n  - { name: x, file: relative }\n", "path must be absolute");
	refused("checks:\n  - { name: x, file: { path: /x, mode: '999' } }\n", "octal");
	refused("checks:\n  - { name: x, program: [true] }\n", "absolute path");
	refused("checks:\n  - { name: x, program: [] }\n", "needs argv");
	refused("checks:\n  - { name: x, process: { } }\n", "one of 'pidfile' or 'match'");
	refused("checks:\n  - { name: x, process: { pidfile: /a, match: b } }\n", "one of");
	refused("checks:\n  - { name: x, system: cpu, for: 0 }\n", "'for' must be from 1");
	refused("checks:\n  - { name: x, system: cpu, flap: { changes: 9, cycles: 5 } }\n",
		"must be fewer than");
	refused("checks:\n  - { name: x, system: cpu, anomaly: { above: 2 } }\n",
		"'above' must be from 0 to 1");
	refused("checks:\n  - { name: x, system: cpu, labels: { 1x: y } }\n", "invalid label name");
	refused("checks:\n  - { name: x, system: cpu, on_change: maybe }\n", "'on_change'");
	refused("checks:\n  - { name: x, system: cpu, colour: red }\n", "unknown key 'colour'");
	refused("checks: { name: x }\n", "expected a list");
}

static void test_flap_off_predict_bool(void **state)
{
	struct plan *plan = load("checks:\n"
				 "  - { name: x, system: cpu, flap: false, predict: true, "
				 "anomaly: true, recover: 4 }\n");
	const struct check_def *d = &plan->checks->checks[0];

	(void)state;
	assert_int_equal(d->flap_changes, 0);
	assert_true(d->predict);
	assert_int_equal(d->predict_horizon, 4 * USEC_PER_HOUR);
	assert_true(d->anomaly);
	assert_true(d->anomaly_above == 0.5);
	assert_int_equal(d->anomaly_for, 1);
	assert_int_equal(d->recover_cycles, 4);
	plan_free(plan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_check),
		cmocka_unit_test(test_defaults_and_kinds),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_flap_off_predict_bool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
