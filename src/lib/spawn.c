#include "lib/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"

extern char **environ;

#define KILL_GRACE (2 * USEC_PER_SEC)

char **spawn_default_env(char *const *extra)
{
	static const char *const keep[] = { "PATH", "HOME", "LANG", "TZ", "USER", "LOGNAME" };
	size_t n = 0, n_extra = 0;
	char **env;

	while (extra && extra[n_extra])
		n_extra++;
	env = calloc(ELEMENTSOF(keep) + n_extra + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < ELEMENTSOF(keep); i++) {
		const char *v = getenv(keep[i]);
		size_t len;

		if (!v)
			continue;
		len = strlen(keep[i]) + strlen(v) + 2;
		env[n] = malloc(len);
		if (!env[n])
			goto fail;
		snprintf(env[n++], len, "%s=%s", keep[i], v);
	}
	if (!getenv("PATH") &&
	    !(env[n++] = strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")))
		goto fail;
	for (size_t i = 0; i < n_extra; i++)
		if (!(env[n++] = strdup(extra[i])))
			goto fail;
	return env;
fail:
	strv_free(env);
	return NULL;
}

void spawn_result_release(struct spawn_result *r)
{
	free(r->output);
	r->output = NULL;
}

const char *spawn_describe(const struct spawn_result *r, usec_t timeout, char *out, size_t size)
{
	char d[32];

	if (r->timed_out)
		snprintf(out, size, "timed out after %s", duration_format(timeout, d, sizeof(d)));
	else if (r->running)
		snprintf(out, size, "started, running as pid %d", (int)r->pid);
	else if (r->exit_status > 128)
		snprintf(out, size, "killed by signal %d", r->exit_status - 128);
	else
		snprintf(out, size, "exit status %d", r->exit_status);
	return out;
}

static int decode_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

static int pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/* Waits for pid to exit until deadline (monotonic; 0: forever). Returns
 * 1 with *ret_status when it exited, 0 at the deadline. */
static int wait_until(pid_t pid, usec_t deadline, int *ret_status)
{
	for (;;) {
		int status;
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid) {
			*ret_status = status;
			return 1;
		}
		if (w < 0 && errno != EINTR)
			return -errno;
		if (deadline && now_monotonic() >= deadline)
			return 0;
		usleep(10000);
	}
}

static void kill_group(pid_t pid, bool at_once, int *ret_status)
{
	if (!at_once) {
		kill(-pid, SIGTERM);
		kill(pid, SIGTERM);
		if (wait_until(pid, now_monotonic() + KILL_GRACE, ret_status) == 1) {
			kill(-pid, SIGKILL); /* leftovers of the group */
			return;
		}
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	wait_until(pid, 0, ret_status);
}

static int setup_attr(posix_spawnattr_t *attr)
{
	sigset_t none, all;
	int r;

	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	r = posix_spawnattr_init(attr);
	if (r)
		return -r;
	/* Its own session: a timeout kills the group; signals the agent ignores
	 * (SIGPIPE) or blocks are back to their defaults. */
	posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
					       POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(attr, &none);
	posix_spawnattr_setsigdefault(attr, &all);
	return 0;
}

/* die_with_parent: PATH is searched here, in the parent, since only
 * async-signal-safe calls may run between fork() and execve(). */
static int find_program(const char *name, char *const *envp, char **ret)
{
	const char *path = NULL;

	if (strchr(name, '/'))
		return (*ret = strdup(name)) ? 0 : -ENOMEM;
	for (char *const *e = envp; e && *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (size_t n; *path; path += n + (path[n] == ':')) {
		char *full;

		n = strcspn(path, ":");
		if (n == 0)
			continue;
		if (asprintf(&full, "%.*s/%s", (int)n, path, name) < 0)
			return -ENOMEM;
		if (access(full, X_OK) == 0) {
			*ret = full;
			return 0;
		}
		free(full);
	}
	return -ENOENT;
}

/* In the child, between fork and execve: async-signal-safe calls only. An
 * exec failure goes back to the parent through err_fd (close-on-exec). */
static void __attribute__((noreturn)) exec_child(const char *file, char *const *argv,
						 char *const *envp, int in_fd, int out_fd,
						 int err_fd)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	int e;

	setsid();
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
		goto fail;
	for (int fd = 3; fd < 1024; fd++)
		if (fd != err_fd)
			close(fd);
	execve(file, argv, envp);
fail:
	e = errno;
	if (write(err_fd, &e, sizeof(e)) < 0) {
		/* the parent sees a bare exit 127 */
	}
	_exit(127);
}

/* fork() + execve() with PR_SET_PDEATHSIG; stdin in_fd, stdout and stderr
 * out_fd (-1: /dev/null). Returns the pid, or -errno (of execve too). */
static int fork_exec(const struct spawn_options *o, char *const *envp, int in_fd, int out_fd,
		     pid_t *ret_pid)
{
	_cleanup_free_ char *file = NULL;
	_cleanup_close_ int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	int err[2], e = 0, r;
	ssize_t n;
	pid_t pid;

	r = find_program(o->argv[0], envp, &file);
	if (r < 0)
		return r;
	if (null_fd < 0 || pipe2(err, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(err[0]);
		close(err[1]);
		return r;
	}
	if (pid == 0)
		exec_child(file, o->argv, envp, in_fd >= 0 ? in_fd : null_fd,
			   out_fd >= 0 ? out_fd : null_fd, err[1]);
	close(err[1]);
	do
		n = read(err[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(err[0]);
	if (n == (ssize_t)sizeof(e)) {
		int status;

		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		return -e;
	}
	*ret_pid = pid;
	return 0;
}

static int spawn_run_inner(const struct spawn_options *o, struct spawn_result *ret);

/* Appends what fits; with tail, drops the oldest bytes to make room. */
static void keep_output(struct buf *b, const char *p, size_t k, bool tail, bool *truncated)
{
	size_t room = b->max - b->len;

	if (tail && k > room) {
		size_t drop = k - room;

		if (k >= b->max) {
			p += k - b->max;
			k = b->max;
			drop = b->len;
		}
		if (drop > b->len)
			drop = b->len;
		if (drop) {
			memmove(b->data, b->data + drop, b->len - drop);
			b->len -= drop;
			b->data[b->len] = 0;
		}
		*truncated = true;
		room = b->max - b->len;
	}
	if (k > room) {
		k = room;
		*truncated = true;
	}
	if (k && buf_append(b, p, k) < 0)
		*truncated = true;
}

/* Writing to a program that closed its stdin raises SIGPIPE: keep it
 * blocked on this thread while we talk to the program, and swallow it. */
int spawn_run(const struct spawn_options *o, struct spawn_result *ret)
{
	sigset_t pipe_set, old;
	struct timespec zero = { 0, 0 };
	int r;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	r = spawn_run_inner(o, ret);
	if (!sigismember(&old, SIGPIPE)) {
		while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
			;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	return r;
}

static int spawn_run_inner(const struct spawn_options *o, struct spawn_result *ret)
{
	_cleanup_strv_free_ char **env = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int out[2] = { -1, -1 }, in[2] = { -1, -1 };
	_cleanup_close_ int pidfd = -1, in_file = -1;
	struct buf output;
	size_t written = 0;
	bool truncated = false, exited = false;
	usec_t deadline = o->timeout ? now_monotonic() + o->timeout : 0;
	int status = 0, r;
	pid_t pid;

	if (!o->argv || !o->argv[0])
		return -EINVAL;
	if (!o->envp && !(env = spawn_default_env(NULL)))
		return -ENOMEM;
	if (!o->background && pipe2(out, O_CLOEXEC) < 0)
		return -errno;
	if (o->input && pipe2(in, O_CLOEXEC) < 0) {
		r = -errno;
		goto close_pipes;
	}
	if (!o->input && o->input_file) {
		in_file = open(o->input_file, O_RDONLY | O_CLOEXEC);
		if (in_file < 0) {
			r = -errno;
			goto close_pipes;
		}
	}
	if (o->die_with_parent) {
		r = fork_exec(o, o->envp ? o->envp : env, o->input ? in[0] : in_file,
			      o->background ? -1 : out[1], &pid);
		if (r < 0)
			goto close_pipes;
		goto started;
	}
	r = -posix_spawn_file_actions_init(&fa);
	if (r < 0)
		goto close_pipes;
	if (o->input)
		posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	else if (o->input_file)
		posix_spawn_file_actions_adddup2(&fa, in_file, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (o->background) {
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	} else {
		posix_spawn_file_actions_adddup2(&fa, out[1], 1);
		posix_spawn_file_actions_adddup2(&fa, out[1], 2);
	}
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	r = setup_attr(&attr);
	if (r < 0) {
		posix_spawn_file_actions_destroy(&fa);
		goto close_pipes;
	}
	r = -posix_spawnp(&pid, o->argv[0], &fa, &attr, o->argv, o->envp ? o->envp : env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (r < 0)
		goto close_pipes;
started:
	if (out[1] >= 0) {
		close(out[1]);
		out[1] = -1;
	}
	if (in[0] >= 0) {
		close(in[0]);
		in[0] = -1;
		fcntl(in[1], F_SETFL, O_NONBLOCK);
	}
	/* Exit is seen through a pidfd: a grandchild holding the pipe open
	 * (a daemon it started) must not keep us waiting. */
	pidfd = pidfd_open_(pid);

	buf_init(&output, o->output_max ? o->output_max : 1);
	*ret = (struct spawn_result){ .exit_status = -1, .pid = pid };

	if (o->background) {
		usec_t grace = o->grace ? o->grace : USEC_PER_SEC;
		usec_t until = now_monotonic() + grace;

		if (o->input) {
			(void)!write(in[1], o->input, o->input_len);
			close(in[1]);
			in[1] = -1;
		}
		r = wait_until(pid, until, &status);
		if (r == 1) {
			ret->exit_status = decode_status(status);
			ret->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
		} else
			ret->running = true;
		buf_release(&output);
		return 0;
	}

	while (!exited || out[0] >= 0) {
		struct pollfd p[3];
		nfds_t n = 0;
		int timeout_ms = -1;
		ssize_t k;
		char chunk[4096];

		if (out[0] >= 0)
			p[n++] = (struct pollfd){ .fd = out[0], .events = POLLIN };
		if (in[1] >= 0)
			p[n++] = (struct pollfd){ .fd = in[1], .events = POLLOUT };
		if (!exited && pidfd >= 0)
			p[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		if (deadline) {
			usec_t now = now_monotonic();

			if (now >= deadline) {
				kill_group(pid, o->kill_at_once, &status);
				ret->timed_out = true;
				exited = true;
				break;
			}
			timeout_ms = (int)((deadline - now + 999) / 1000);
		}
		if (pidfd < 0 && (timeout_ms < 0 || timeout_ms > 50))
			timeout_ms = 50; /* no pidfd: look for its exit now and then */
		if (exited)
			timeout_ms = 0; /* it is gone: take what is buffered and stop */
		if (poll(p, n, timeout_ms) < 0 && errno != EINTR) {
			r = -errno;
			kill_group(pid, o->kill_at_once, &status);
			buf_release(&output);
			goto close_pipes;
		}
		if (!exited && wait_until(pid, 1, &status) == 1)
			exited = true;
		for (nfds_t i = 0; i < n; i++) {
			if (!p[i].revents)
				continue;
			if (p[i].fd == out[0]) {
				k = read(out[0], chunk, sizeof(chunk));
				if (k > 0) {
					keep_output(&output, chunk, (size_t)k, o->keep_tail,
						    &truncated);
				} else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
					close(out[0]);
					out[0] = -1;
				}
			} else if (p[i].fd == in[1]) {
				k = write(in[1], (const char *)o->input + written,
					  o->input_len - written);
				if (k > 0)
					written += (size_t)k;
				if ((k < 0 && errno != EAGAIN && errno != EINTR) ||
				    written >= o->input_len) {
					close(in[1]);
					in[1] = -1;
				}
			}
		}
		if (exited && out[0] >= 0) {
			/* drain what is already in the pipe, without waiting */
			fcntl(out[0], F_SETFL, O_NONBLOCK);
			while ((k = read(out[0], chunk, sizeof(chunk))) > 0)
				keep_output(&output, chunk, (size_t)k, o->keep_tail, &truncated);
			close(out[0]);
			out[0] = -1;
		}
	}
	if (!exited)
		wait_until(pid, 0, &status);
	ret->exit_status = decode_status(status);
	ret->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	ret->truncated = truncated;
	ret->output = buf_steal(&output, &ret->output_len);
	if (!ret->output && !(ret->output = strdup("")))
		r = -ENOMEM;
	else
		r = 0;
close_pipes:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (in[i] >= 0)
			close(in[i]);
	}
	return r;
}

int spawn_start_piped(char *const *argv, char *const *envp, pid_t *ret_pid, int *ret_stdout,
		      int *ret_stderr)
{
	return spawn_start_pipes(argv, envp, ret_pid, NULL, ret_stdout, ret_stderr);
}

int spawn_start_pipes(char *const *argv, char *const *envp, pid_t *ret_pid, int *ret_stdin,
		      int *ret_stdout, int *ret_stderr)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, r;
	pid_t pid;

	if (!argv || !argv[0])
		return -EINVAL;
	if ((ret_stdin && pipe2(in, O_CLOEXEC) < 0) || pipe2(out, O_CLOEXEC) < 0 ||
	    pipe2(err, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}
	r = -posix_spawn_file_actions_init(&fa);
	if (r < 0)
		goto fail;
	if (ret_stdin)
		posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	r = setup_attr(&attr);
	if (r < 0) {
		posix_spawn_file_actions_destroy(&fa);
		goto fail;
	}
	r = -posix_spawnp(&pid, argv[0], &fa, &attr, argv, envp ? envp : environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (r < 0)
		goto fail;
	if (ret_stdin) {
		close(in[0]);
		*ret_stdin = in[1];
	}
	close(out[1]);
	close(err[1]);
	*ret_pid = pid;
	*ret_stdout = out[0];
	*ret_stderr = err[0];
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	return r;
}

int spawn_wait(pid_t pid)
{
	int status = 0;

	if (wait_until(pid, 0, &status) < 0)
		return -1;
	return decode_status(status);
}

int spawn_kill(pid_t pid)
{
	int status = 0;

	kill_group(pid, false, &status);
	return decode_status(status);
}
