/* program: run argv without a shell (fork + execve), capture what it prints
 * (bounded), kill its process group at the deadline. The status comes from
 * the exit code (0 ok, or the Nagios plugin convention) and an optional
 * match on the output. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "monitor/probes.h"

extern char **environ;

/* In the child, between fork and execve: async-signal-safe calls only. */
static void __attribute__((noreturn)) run_child(char *const *argv, int out_fd, int null_fd)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	static const char msg[] = "bcdr: cannot execute the program\n";

	setpgid(0, 0);
	/* A probe never outlives the agent: if the worker thread that waits for
	 * it goes (the agent stopped or died), the kernel kills the program. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < 32; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &dfl, NULL);
	if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
		_exit(126);
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3, ~0U, 0) < 0)
#endif
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	execve(argv[0], argv, environ);
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to say */
	}
	_exit(127);
}

/* Waits for pid until the deadline; -ETIMEDOUT then. */
static int wait_child(pid_t pid, usec_t deadline, int *ret_status)
{
	usec_t pause = 200;

	for (;;) {
		pid_t r = waitpid(pid, ret_status, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (!probe_remaining(deadline))
			return -ETIMEDOUT;
		probe_sleep(pause, deadline);
		if (pause < 20 * USEC_PER_MSEC)
			pause *= 2;
	}
}

/* First number in the output: "load=1.5" -> 1.5. */
static bool first_number(const char *s, double *ret)
{
	for (; *s; s++) {
		char *end;
		double d;

		if (!((*s >= '0' && *s <= '9') ||
		      ((*s == '-' || *s == '.') && s[1] >= '0' && s[1] <= '9')))
			continue;
		d = strtod(s, &end);
		if (end != s && d == d) {
			*ret = d;
			return true;
		}
	}
	return false;
}

int probe_program(const struct check_def *def, usec_t deadline, struct probe_result *res)
{
	char *const *argv = def->probe.program.argv;
	_cleanup_close_ int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	_cleanup_free_ char *out = malloc(PROBE_OUTPUT_MAX + 1);
	int pipefd[2], status = 0, r = 0, code;
	size_t len = 0;
	bool timed_out = false;
	char first_line[160];
	pid_t pid;

	if (!out)
		return -ENOMEM;
	if (null_fd < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		probe_fail(res, CHECK_UNKNOWN, "cannot run '%s': %s", argv[0], strerror(errno));
		return 0;
	}
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		probe_fail(res, CHECK_UNKNOWN, "cannot run '%s': %s", argv[0], strerror(errno));
		return 0;
	}
	if (pid == 0)
		run_child(argv, pipefd[1], null_fd);
	close(pipefd[1]);

	/* Read until EOF (every writer gone) or the deadline; keep the first
	 * PROBE_OUTPUT_MAX bytes. */
	for (;;) {
		struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
		usec_t left = probe_remaining(deadline);
		char sink[4096];
		ssize_t n;
		int k;

		if (!left) {
			timed_out = true;
			break;
		}
		k = poll(&p, 1, (int)((left + 999) / 1000));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			timed_out = k == 0;
			break;
		}
		if (len < PROBE_OUTPUT_MAX)
			n = read(pipefd[0], out + len, PROBE_OUTPUT_MAX - len);
		else
			n = read(pipefd[0], sink, sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (len < PROBE_OUTPUT_MAX)
			len += (size_t)n;
	}
	close(pipefd[0]);
	if (!timed_out) {
		r = wait_child(pid, deadline, &status);
		timed_out = r == -ETIMEDOUT;
	}
	if (timed_out || r < 0) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	out[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (!out[i])
			out[i] = ' ';
	{
		size_t l = strcspn(out, "\n");

		probe_printable(out, l, first_line, sizeof(first_line));
	}
	if (timed_out) {
		char d[32];

		probe_fail(res, CHECK_CRITICAL, "'%s' timed out after %s and was killed", argv[0],
			   duration_format(def->timeout, d, sizeof(d)));
		return 0;
	}
	if (r < 0) {
		probe_fail(res, CHECK_UNKNOWN, "cannot wait for '%s': %s", argv[0], strerror(-r));
		return 0;
	}
	if (WIFSIGNALED(status)) {
		probe_fail(res, CHECK_CRITICAL, "'%s' was killed by signal %d: %s", argv[0],
			   WTERMSIG(status), first_line);
		return 0;
	}
	code = WEXITSTATUS(status);
	if (code == 127 && strncmp(out, "bcdr: cannot execute", 20) == 0) {
		probe_fail(res, CHECK_UNKNOWN, "cannot execute '%s'", argv[0]);
		return 0;
	}
	if (def->probe.program.measure == PROGRAM_OUTPUT) {
		double v;

		if (first_number(out, &v))
			probe_set_value(res, v, "");
		else
			probe_fail(res, CHECK_UNKNOWN, "no number in the output of '%s': '%s'",
				   argv[0], first_line);
	} else {
		probe_set_value(res, code, "");
	}
	if (res->probe_status == CHECK_OK)
		probe_message(res, "exit %d%s%s", code, first_line[0] ? ": " : "", first_line);
	if (def->probe.program.exit_codes == PROGRAM_EXIT_NAGIOS) {
		static const enum check_status nagios[] = { CHECK_OK, CHECK_WARNING, CHECK_CRITICAL,
							    CHECK_UNKNOWN };

		res->probe_status = check_status_worst(res->probe_status,
						       code < 4 ? nagios[code] : CHECK_UNKNOWN);
	} else if (code != 0) {
		res->probe_status = CHECK_CRITICAL;
	}
	if (def->probe.program.output) {
		regex_t re;
		int m;

		if (regcomp(&re, def->probe.program.output, PROBE_REGEX_FLAGS) != 0) {
			probe_fail(res, CHECK_UNKNOWN, "invalid output regular expression");
			return 0;
		}
		m = regexec(&re, out, 0, NULL, 0);
		regfree(&re);
		if (m != 0)
			probe_fail(res, CHECK_CRITICAL, "the output of '%s' does not match '%s': '%s'",
				   argv[0], def->probe.program.output, first_line);
	}
	return 0;
}
