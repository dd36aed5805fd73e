/* lib/spawn's options for probes: fork+execve with die_with_parent (the
 * program dies with the thread that started it), kill_at_once at the
 * timeout, the signal that ended a program, exec errors as -errno. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/spawn.h"

extern char **environ;

static void test_output_and_exit(void **state)
{
	char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	struct spawn_options o = { .argv = argv, .envp = environ, .timeout = 10 * USEC_PER_SEC,
				   .output_max = 100, .die_with_parent = true };
	struct spawn_result r = { 0 };

	(void)state;
	assert_int_equal(spawn_run(&o, &r), 0); /* found in PATH */
	assert_int_equal(r.exit_status, 3);
	assert_int_equal(r.signal, 0);
	assert_string_equal(r.output, "out\nerr\n");
	spawn_result_release(&r);
}

static void test_exec_errors(void **state)
{
	char *missing[] = { "/nonexistent/program", NULL };
	char *unknown[] = { "no-such-program-bcdr", NULL };
	char path[] = "/tmp/bcdr-test-spawn-XXXXXX";
	char *notexec[] = { path, NULL };
	struct spawn_options o = { .envp = environ, .timeout = 10 * USEC_PER_SEC, .output_max = 100,
				   .die_with_parent = true };
	struct spawn_result r = { 0 };
	int fd;

	(void)state;
	/* no execute bit: EACCES (root too) */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "data\n", 5), 5);
	close(fd);
	o.argv = missing;
	assert_int_equal(spawn_run(&o, &r), -ENOENT);
	o.argv = unknown;
	assert_int_equal(spawn_run(&o, &r), -ENOENT);
	o.argv = notexec;
	assert_int_equal(spawn_run(&o, &r), -EACCES);
	/* executable, but not a program: ENOEXEC */
	chmod(path, 0700);
	assert_int_equal(spawn_run(&o, &r), -ENOEXEC);
	unlink(path);
}

static void test_kill_at_once(void **state)
{
	/* ignores SIGTERM: only SIGKILL ends it, at once with kill_at_once */
	char *argv[] = { "/bin/sh", "-c", "trap '' TERM; echo started; sleep 30", NULL };
	struct spawn_options o = { .argv = argv, .envp = environ, .timeout = 300 * USEC_PER_MSEC,
				   .output_max = 100, .kill_at_once = true,
				   .die_with_parent = true };
	struct spawn_result r = { 0 };
	usec_t t0 = now_monotonic();

	(void)state;
	assert_int_equal(spawn_run(&o, &r), 0);
	assert_true(r.timed_out);
	assert_int_equal(r.signal, SIGKILL);
	assert_true(now_monotonic() - t0 < 1500 * USEC_PER_MSEC);
	spawn_result_release(&r);
}


/* stdin from a file, in both ways of starting; the tail of a long output. */
static void test_input_file_and_tail(void **state)
{
	char path[] = "/tmp/bcdr-spawn-in-XXXXXX";
	int fd = mkstemp(path);
	char *argv[] = { "sh", "-c", "cat; seq 1 10000", NULL };

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "from the file\n", 14), 14);
	close(fd);
	for (int dwp = 0; dwp < 2; dwp++) {
		struct spawn_options o = { .argv = argv, .envp = environ, .input_file = path,
					   .timeout = 10 * USEC_PER_SEC, .output_max = 20,
					   .keep_tail = true, .die_with_parent = dwp };
		struct spawn_result r = { 0 };

		assert_int_equal(spawn_run(&o, &r), 0);
		assert_int_equal(r.exit_status, 0);
		assert_true(r.truncated);
		assert_int_equal(r.output_len, 20);
		assert_string_equal(r.output, "997\n9998\n9999\n10000\n");
		spawn_result_release(&r);
		o.keep_tail = false;
		assert_int_equal(spawn_run(&o, &r), 0);
		assert_string_equal(r.output, "from the file\n1\n2\n3\n");
		spawn_result_release(&r);
	}
	{
		struct spawn_options o = { .argv = argv, .envp = environ,
					   .input_file = "/nonexistent/in", .output_max = 20 };
		struct spawn_result r = { 0 };

		assert_int_equal(spawn_run(&o, &r), -ENOENT);
	}
	unlink(path);
}

/* A stream: stdout and stderr apart, the exit status, a kill of the group. */
static void test_start_piped(void **state)
{
	char *argv[] = { "sh", "-c", "echo data; echo oops >&2; exit 5", NULL };
	char *sleeper[] = { "sh", "-c", "sleep 100 & sleep 100", NULL };
	char buf[64];
	int out, err;
	ssize_t n;
	pid_t pid;

	(void)state;
	assert_int_equal(spawn_start_piped(argv, NULL, &pid, &out, &err), 0);
	n = read(out, buf, sizeof(buf));
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "data\n", 5);
	n = read(err, buf, sizeof(buf));
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "oops\n", 5);
	assert_int_equal(spawn_wait(pid), 5);
	close(out);
	close(err);
	assert_int_equal(spawn_start_piped(sleeper, NULL, &pid, &out, &err), 0);
	assert_int_equal(spawn_kill(pid), 128 + SIGTERM);
	/* the whole group is gone: its pipe ends */
	assert_int_equal(read(out, buf, sizeof(buf)), 0);
	close(out);
	close(err);
	{
		char *missing[] = { "/nonexistent/program", NULL };

		assert_int_equal(spawn_start_piped(missing, NULL, &pid, &out, &err), -ENOENT);
	}
}

static void *start_in_thread(void *userdata)
{
	char *argv[] = { "/bin/sleep", "30", NULL };
	struct spawn_options o = { .argv = argv, .envp = environ, .background = true,
				   .grace = 50 * USEC_PER_MSEC, .die_with_parent = true };
	struct spawn_result r = { 0 };

	if (spawn_run(&o, &r) == 0 && r.running)
		*(pid_t *)userdata = r.pid;
	return NULL;
}

static void test_dies_with_its_thread(void **state)
{
	pthread_t t;
	pid_t pid = 0;
	int status = 0;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, start_in_thread, &pid), 0);
	pthread_join(t, NULL);
	assert_true(pid > 0);
	/* the thread that started it is gone: the kernel killed it */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_output_and_exit),
		cmocka_unit_test(test_exec_errors),
		cmocka_unit_test(test_kill_at_once),
		cmocka_unit_test(test_dies_with_its_thread),
		cmocka_unit_test(test_input_file_and_tail),
		cmocka_unit_test(test_start_piped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
