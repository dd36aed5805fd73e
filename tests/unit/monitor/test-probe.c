/* Probes that keep state between runs, on real files and processes:
 * checksum changes, a restarted process, rates without the first-run pause,
 * and bounded program output. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/fs.h"
#include "monitor/monitor.h"

static void def_init(struct check_def *def, enum probe_kind kind)
{
	memset(def, 0, sizeof(*def));
	def->name = (char *)"t";
	def->kind = kind;
	def->timeout = 5 * USEC_PER_SEC;
	def->for_cycles = def->recover_cycles = 1;
	def->on_change = CHECK_WARNING;
	def->probe.file.mode = -1;
}

static void write_text(const char *path, const char *text)
{
	assert_int_equal(fs_write_atomic(path, text, strlen(text), 0644), 0);
}

static void test_file_checksum_change(void **state)
{
	char dir[] = "/tmp/bcdr-test-probe.XXXXXX", path[64];
	struct check_def def;
	struct probe_state *ps;
	struct probe_result res;
	struct rule_state rs;
	struct rule_transition tr;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/conf", dir);
	write_text(path, "listen 80\n");
	def_init(&def, PROBE_FILE);
	def.probe.file.path = path;
	def.probe.file.checksum = true;
	def.probe.file.mode = -1;
	assert_int_equal(probe_state_new(&def, &ps), 0);
	rule_state_init(&rs);

	assert_int_equal(probe_run(&def, ps, NULL, &res), 0);
	assert_false(res.changed);
	assert_int_equal(res.status, CHECK_OK);
	assert_int_equal(probe_run(&def, ps, NULL, &res), 0);
	assert_false(res.changed);
	/* Same size, new contents: a change, a warning for one cycle. */
	write_text(path, "listen 81\n");
	assert_int_equal(probe_run(&def, ps, NULL, &res), 0);
	assert_true(res.changed);
	assert_int_equal(res.status, CHECK_WARNING);
	assert_non_null(strstr(res.message, "contents changed"));
	rule_update(&def, &rs, &res, 1, &tr);
	assert_true(tr.changed);
	assert_int_equal(tr.to, CHECK_WARNING);
	assert_int_equal(probe_run(&def, ps, NULL, &res), 0);
	assert_false(res.changed);
	rule_update(&def, &rs, &res, 2, &tr);
	assert_int_equal(tr.to, CHECK_OK);
	/* Rewritten with the same bytes: not a change. */
	write_text(path, "listen 81\n");
	assert_int_equal(probe_run(&def, ps, NULL, &res), 0);
	assert_false(res.changed);
	/* Gone, then back: no change reported against the old sum. */
	unlink(path);
	assert_int_equal(probe_run(&def, ps, NULL, &res), 0);
	assert_int_equal(res.status, CHECK_CRITICAL);
	write_text(path, "other\n");
	assert_int_equal(probe_run(&def, ps, NULL, &res), 0);
	assert_int_equal(res.status, CHECK_OK);
	probe_state_free(ps);
	fs_rm_rf(dir);
}

static pid_t spawn_sleep(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/bin/sleep", "sleep", "300", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void test_process_restart(void **state)
{
	char dir[] = "/tmp/bcdr-test-probe.XXXXXX", pidfile[64], text[32];
	struct check_def def;
	struct probe_state *ps;
	struct probe_result res;
	pid_t a, b;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pidfile, sizeof(pidfile), "%s/svc.pid", dir);
	def_init(&def, PROBE_PROCESS);
	def.probe.process.pidfile = pidfile;
	def.probe.process.measure = PROCESS_CPU;
	assert_int_equal(probe_state_new(&def, &ps), 0);

	a = spawn_sleep();
	snprintf(text, sizeof(text), "%d\n", a);
	write_text(pidfile, text);
	assert_int_equal(probe_run(&def, ps, NULL, &res), 0);
	assert_int_equal(res.status, CHECK_OK);
	assert_true(res.has_value);
	assert_true(res.duration >= 200 * USEC_PER_MSEC); /* first run samples cpu twice */
	assert_int_equal(probe_run(&def, ps, NULL, &res), 0);
	assert_false(res.changed);
	assert_true(res.duration < 200 * USEC_PER_MSEC); /* then uses the previous run */

	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	b = spawn_sleep();
	snprintf(text, sizeof(text), "%d\n", b);
	write_text(pidfile, text);
	assert_int_equal(probe_run(&def, ps, NULL, &res), 0);
	assert_true(res.changed);
	assert_int_equal(res.status, CHECK_WARNING);
	assert_non_null(strstr(res.message, "restarted"));

	kill(b, SIGKILL);
	waitpid(b, NULL, 0);
	assert_int_equal(probe_run(&def, ps, NULL, &res), 0);
	assert_int_equal(res.status, CHECK_CRITICAL);
	assert_non_null(strstr(res.message, "not running"));
	probe_state_free(ps);
	fs_rm_rf(dir);
}

static void test_cpu_rate_state(void **state)
{
	struct check_def def;
	struct probe_state *ps;
	struct probe_result res;

	(void)state;
	def_init(&def, PROBE_SYSTEM);
	def.probe.system.metric = SYSTEM_CPU;
	assert_int_equal(probe_state_new(&def, &ps), 0);
	assert_int_equal(probe_run(&def, ps, NULL, &res), 0);
	assert_true(res.has_value);
	assert_true(res.value >= 0 && res.value <= 100);
	usleep(50000);
	assert_int_equal(probe_run(&def, ps, NULL, &res), 0);
	assert_true(res.duration < 100 * USEC_PER_MSEC);
	assert_true(res.value >= 0 && res.value <= 100);
	assert_string_equal(res.unit, "%");
	probe_state_free(ps);
}

static void test_program_output_bounded(void **state)
{
	/* 8 MB of output: read and dropped beyond the bound, no hang. */
	char *argv[] = { (char *)"/usr/bin/head", (char *)"-c", (char *)"8000000",
			 (char *)"/dev/zero", NULL };
	struct check_def def;
	struct probe_result res;

	(void)state;
	def_init(&def, PROBE_PROGRAM);
	def.probe.program.argv = argv;
	assert_int_equal(probe_run(&def, NULL, NULL, &res), 0);
	assert_int_equal(res.status, CHECK_OK);
	assert_true(res.value == 0);
}

/* The backup engine's answer for a job backed up two hours ago, rpo 1h. */
static int newest_2h_ago(void *userdata, const char *job, usec_t *ret_newest, usec_t *ret_rpo)
{
	(void)userdata;
	if (strcmp(job, "nightly") != 0)
		return -1;
	*ret_newest = now_realtime() - 2 * USEC_PER_HOUR;
	*ret_rpo = USEC_PER_HOUR;
	return 0;
}

static void test_backup_callback(void **state)
{
	struct check_def def;
	struct probe_env env = { 0 };
	struct probe_result res;

	(void)state;
	def_init(&def, PROBE_BACKUP);
	def.probe.backup.job = (char *)"nightly";
	assert_int_equal(probe_run(&def, NULL, NULL, &res), 0);
	assert_int_equal(res.status, CHECK_UNKNOWN);

	/* Two hours old against a one-hour rpo: critical. */
	env.backup_newest = newest_2h_ago;
	assert_int_equal(probe_run(&def, NULL, &env, &res), 0);
	assert_int_equal(res.status, CHECK_CRITICAL);
	assert_true(res.value > 7199 && res.value < 7201);
	assert_string_equal(res.unit, "s");
	/* Its own thresholds replace the rpo. */
	def.warn = (struct check_threshold){ true, 3 * 3600 };
	assert_int_equal(probe_run(&def, NULL, &env, &res), 0);
	assert_int_equal(res.status, CHECK_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_checksum_change),
		cmocka_unit_test(test_process_restart),
		cmocka_unit_test(test_cpu_rate_state),
		cmocka_unit_test(test_program_output_bounded),
		cmocka_unit_test(test_backup_callback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
