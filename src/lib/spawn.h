/* Running a program the safe way for a daemon with threads: an argument
 * vector (never a shell), a chosen environment, its own session (so a
 * timeout kills the whole process group), stdin from a buffer, stdout and
 * stderr captured up to a bound, and a timeout. posix_spawn() rather than
 * fork(): it is safe in a threaded process and does not copy the agent's
 * address space; fork() + execve() only for die_with_parent, which
 * posix_spawn cannot ask for. Used by actions, the exec receiver and the
 * program probe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/timeutil.h"

struct spawn_options {
	char *const *argv;     /* argv[0] is the program: absolute, or found in PATH */
	char *const *envp;     /* NULL: spawn_default_env() */
	const void *input;     /* written to stdin, then closed; NULL: /dev/null */
	size_t input_len;
	const char *input_file; /* stdin read from this file instead (input NULL) */
	usec_t timeout;        /* 0: wait as long as it takes */
	size_t output_max;     /* stdout+stderr kept, the rest read and dropped */
	bool keep_tail;        /* keep the last output_max bytes, not the first */
	/* Leave it running: output to /dev/null, not waited for beyond grace;
	 * a program that exits within grace is waited for and judged. */
	bool background;
	usec_t grace;
	/* At the timeout, SIGKILL at once (a probe's timeout is a bound), not
	 * SIGTERM and SIGKILL 2 s later. */
	bool kill_at_once;
	/* The program gets SIGKILL when the calling thread ends (the agent
	 * stopped or died while it hung): PR_SET_PDEATHSIG. */
	bool die_with_parent;
};

struct spawn_result {
	int exit_status;   /* exit code; 128+N when killed by signal N; -1 not run */
	int signal;        /* N when killed by signal N, else 0 */
	bool timed_out;    /* killed (TERM, then KILL) at the timeout */
	bool running;      /* background: still running after grace */
	pid_t pid;
	char *output;      /* NUL-terminated, possibly truncated; free() */
	size_t output_len;
	bool truncated;
};

/* Runs it; returns 0 when it ran (whatever its exit status), or a negative
 * errno when it could not be started (ENOENT: no such program, EACCES: not
 * executable). */
int spawn_run(const struct spawn_options *opts, struct spawn_result *ret);
void spawn_result_release(struct spawn_result *r);

/* Starts a program whose standard output the caller reads from
 * *ret_stdout and whose standard error from *ret_stderr (both
 * close-on-exec pipes the caller closes); stdin is /dev/null, envp NULL
 * means this process's environment. It runs in its own session, so
 * spawn_kill() ends its whole group. Reap it with spawn_wait(). For a
 * stream too large to hold: a database dump. */
int spawn_start_piped(char *const *argv, char *const *envp, pid_t *ret_pid, int *ret_stdout,
		      int *ret_stderr);
/* The same with a pipe to its stdin as well (*ret_stdin, close-on-exec,
 * the caller closes it; NULL: /dev/null), for a program the caller talks
 * to: ssh carrying the sftp protocol. */
int spawn_start_pipes(char *const *argv, char *const *envp, pid_t *ret_pid, int *ret_stdin,
		      int *ret_stdout, int *ret_stderr);
/* Waits for pid; returns the exit status as spawn_result's (128+N for
 * signal N). */
int spawn_wait(pid_t pid);
/* SIGTERM to its group, SIGKILL 2 s later when still there; reaps it and
 * returns the status as spawn_wait(). */
int spawn_kill(pid_t pid);

/* A minimal environment: PATH (the agent's, else a standard one), HOME,
 * LANG, TZ when set, plus extra ("KEY=value", NULL-terminated, may be
 * NULL). Returns a NULL-terminated vector (strv_free() it) or NULL. */
char **spawn_default_env(char *const *extra);

/* "exit status 3", "killed by signal 9", "timed out after 30s". */
const char *spawn_describe(const struct spawn_result *r, usec_t timeout, char *out, size_t size);
