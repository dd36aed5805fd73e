#include "backup/stdin-source.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/spawn.h"

#define STDERR_KEEP 4096u

struct stdin_source {
	struct backup_stream stream;
	pid_t pid; /* 0: a plain fd */
	int out_fd, err_fd;
	char *program;
	pthread_t reader;
	bool reader_started;
	atomic_bool exited; /* the reader stops at the pipe's end or soon after this */
	char err[STDERR_KEEP];
	size_t err_len;
	bool finished;
	int result;
	char message[768];
};

/* The command's standard error, its last STDERR_KEEP bytes. After the
 * command exits, a grandchild holding the pipe open must not keep us: the
 * reader takes what is buffered and stops. */
static void *stderr_main(void *arg)
{
	struct stdin_source *s = arg;
	char chunk[4096];

	for (;;) {
		struct pollfd p = { .fd = s->err_fd, .events = POLLIN };
		bool exited = atomic_load(&s->exited);
		int k = poll(&p, 1, exited ? 0 : 200);
		ssize_t n;

		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0 && exited)
			break;
		if (k <= 0 && !exited)
			continue;
		n = read(s->err_fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if ((size_t)n >= STDERR_KEEP) {
			memcpy(s->err, chunk + n - STDERR_KEEP, STDERR_KEEP);
			s->err_len = STDERR_KEEP;
			continue;
		}
		if (s->err_len + (size_t)n > STDERR_KEEP) {
			size_t drop = s->err_len + (size_t)n - STDERR_KEEP;

			memmove(s->err, s->err + drop, s->err_len - drop);
			s->err_len -= drop;
		}
		memcpy(s->err + s->err_len, chunk, (size_t)n);
		s->err_len += (size_t)n;
	}
	return NULL;
}

/* "pg_dump" of "/usr/lib/postgresql/15/bin/pg_dump": messages name the tool. */
static const char *program_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash && slash[1] ? slash + 1 : path;
}

static int finish_cb(int r, void *userdata)
{
	return stdin_source_finish(userdata, r);
}

static struct stdin_source *source_new(const char *filename)
{
	struct stdin_source *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->out_fd = s->err_fd = -1;
	s->stream.filename = filename;
	s->stream.finish = finish_cb;
	s->stream.userdata = s;
	return s;
}

int stdin_source_command(char *const *argv, char *const *envp, const char *filename,
			 struct stdin_source **ret)
{
	struct stdin_source *s;
	int r;

	if (!argv || !argv[0] || !filename)
		return -EINVAL;
	if (!(s = source_new(filename)))
		return -ENOMEM;
	if (!(s->program = strdup(program_name(argv[0])))) {
		free(s);
		return -ENOMEM;
	}
	r = spawn_start_piped(argv, envp, &s->pid, &s->out_fd, &s->err_fd);
	if (r < 0) {
		free(s->program);
		free(s);
		return r;
	}
	if (pthread_create(&s->reader, NULL, stderr_main, s) == 0)
		s->reader_started = true;
	s->stream.fd = s->out_fd;
	*ret = s;
	return 0;
}

int stdin_source_fd(int fd, const char *filename, struct stdin_source **ret)
{
	struct stdin_source *s;

	if (fd < 0 || !filename)
		return -EINVAL;
	if (!(s = source_new(filename)))
		return -ENOMEM;
	s->stream.fd = fd;
	*ret = s;
	return 0;
}

const struct backup_stream *stdin_source_stream(struct stdin_source *s)
{
	return &s->stream;
}

/* The last lines of its standard error on one line: "a / b / c". */
static void describe(struct stdin_source *s, int status)
{
	char what[64], tail[512];
	struct spawn_result sr = { .exit_status = status };
	size_t start = s->err_len, n = 0, lines = 0;

	while (start > 0 && (s->err[start - 1] == '\n' || s->err[start - 1] == ' '))
		start--;
	{
		size_t end = start;

		/* back over up to 4 lines, at most sizeof(tail) - 1 bytes */
		while (start > 0 && end - start < sizeof(tail) - 1) {
			if (s->err[start - 1] == '\n' && ++lines == 4)
				break;
			start--;
		}
		for (size_t i = start; i < end && n < sizeof(tail) - 4; i++) {
			char c = s->err[i];

			if (c == '\n') {
				memcpy(tail + n, " / ", 3);
				n += 3;
			} else if (c != '\r') {
				tail[n++] = (unsigned char)c < 0x20 ? ' ' : c;
			}
		}
	}
	tail[n] = 0;
	spawn_describe(&sr, 0, what, sizeof(what));
	snprintf(s->message, sizeof(s->message), "command '%s' failed (%s)%s%s", s->program,
		 what, n ? ": " : ", nothing on its standard error", tail);
}

int stdin_source_finish(struct stdin_source *s, int r)
{
	int status;

	if (s->finished)
		return s->result;
	s->finished = true;
	s->result = r;
	if (!s->pid)
		return r;
	if (r < 0) {
		/* The backup stopped reading: the command would block. */
		close(s->out_fd);
		s->out_fd = -1;
		status = spawn_kill(s->pid);
	} else {
		status = spawn_wait(s->pid);
	}
	s->pid = 0;
	atomic_store(&s->exited, true);
	if (s->reader_started) {
		pthread_join(s->reader, NULL);
		s->reader_started = false;
	}
	if (r >= 0 && status != 0) {
		describe(s, status);
		s->result = -ECHILD;
	}
	return s->result;
}

const char *stdin_source_message(const struct stdin_source *s)
{
	return s->message;
}

void stdin_source_free(struct stdin_source *s)
{
	if (!s)
		return;
	if (s->pid)
		stdin_source_finish(s, -ECANCELED);
	if (s->out_fd >= 0)
		close(s->out_fd);
	if (s->err_fd >= 0)
		close(s->err_fd);
	free(s->program);
	free(s);
}
