/* The SFTP backend's ssh side (repo/sftp-session.h): the ssh command
 * line, one ssh process per connection and its session (the version
 * handshake), what ssh's last words say went wrong, the pool the threads
 * share, and the retry of an operation whose connection broke. */
#include "repo/sftp-session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/spawn.h"
#include "lib/strv.h"
#include "repo/remote.h"
#include "repo/sftp-request.h"

/* ---- the ssh command ---- */

static int split_words(const char *s, char **out, size_t max, size_t *ret_n)
{
	size_t n = 0;

	while (*s) {
		struct buf w;
		bool any = false;

		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		if (n == max)
			goto fail;
		buf_init(&w, LOCATION_MAX);
		while (*s && *s != ' ' && *s != '\t') {
			if (*s == '\'' || *s == '"') {
				const char *end = strchr(s + 1, *s);

				if (!end) {
					buf_release(&w);
					goto fail;
				}
				if (buf_append(&w, s + 1, end - s - 1) < 0) {
					buf_release(&w);
					goto fail;
				}
				s = end + 1;
			} else if (buf_append(&w, s++, 1) < 0) {
				buf_release(&w);
				goto fail;
			}
			any = true;
		}
		if (!any || buf_append(&w, "", 0) < 0) {
			buf_release(&w);
			goto fail;
		}
		out[n++] = buf_steal(&w, NULL);
	}
	*ret_n = n;
	return 0;
fail:
	while (n)
		free(out[--n]);
	return -EINVAL;
}

int sftp_ssh_argv(const struct location *loc, const char *command, char ***ret)
{
	/* sftp(1)'s own choices for a file transfer session, and no prompt
	 * (a backup runs unattended: a question would hang it) */
	static const char *const opts[] = {
		"-oBatchMode=yes",           "-oServerAliveInterval=15", "-oServerAliveCountMax=3",
		"-oConnectTimeout=20",       "-oForwardX11=no",          "-oForwardAgent=no",
		"-oClearAllForwardings=yes", "-oPermitLocalCommand=no",
	};
	char **v = calloc(SFTP_MAX_ARGS + ELEMENTSOF(opts) + 8, sizeof(char *));
	size_t n = 0;
	char port[8];
	int r;

	if (!v)
		return -ENOMEM;
	if (command && *command) {
		r = split_words(command, v, SFTP_MAX_ARGS, &n);
		if (r >= 0 && (n == 0 || !*v[0])) { /* no program */
			while (n)
				free(v[--n]);
			r = -EINVAL;
		}
		if (r < 0) {
			free(v);
			return r;
		}
	} else if (!(v[n++] = strdup("ssh"))) {
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ELEMENTSOF(opts); i++)
		v[n++] = strdup(opts[i]);
	if (loc->port) {
		snprintf(port, sizeof(port), "%u", loc->port);
		v[n++] = strdup("-p");
		v[n++] = strdup(port);
	}
	if (loc->user) {
		v[n++] = strdup("-l");
		v[n++] = strdup(loc->user);
	}
	/* the parser refused a host starting with '-' (repo/location.h) */
	v[n++] = strdup(loc->host);
	v[n++] = strdup("-s");
	v[n++] = strdup("sftp");
	for (size_t i = 0; i < n; i++)
		if (!v[i]) {
			for (size_t j = 0; j < n; j++)
				free(v[j]);
			free(v);
			return -ENOMEM;
		}
	*ret = v;
	return 0;
}

int sftp_ssh_failure(const char *t)
{
	if (strstr(t, "Host key verification failed") || strstr(t, "host key is known") ||
	    strstr(t, "IDENTIFICATION HAS CHANGED") || strstr(t, "Host key for"))
		return -EKEYREJECTED;
	if (strstr(t, "Permission denied") || strstr(t, "Too many authentication failures"))
		return -EACCES;
	if (strstr(t, "Could not resolve hostname") || strstr(t, "Name or service not known"))
		return -EHOSTUNREACH;
	if (strstr(t, "Connection refused"))
		return -ECONNREFUSED;
	if (strstr(t, "timed out") || strstr(t, "Timeout, server"))
		return -ETIMEDOUT;
	if (strstr(t, "No route to host") || strstr(t, "Network is unreachable"))
		return -ENETUNREACH;
	if (strstr(t, "subsystem request failed"))
		return -EPROTONOSUPPORT;
	return 0;
}

/* Keeps the end of what ssh writes on stderr: its messages explain a
 * failure. */
void sftp_conn_drain_err(struct conn *c)
{
	char tmp[1024];

	while (c->err >= 0) {
		ssize_t n = read(c->err, tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(c->err);
			c->err = -1;
			return;
		}
		/* tmp is smaller than the tail: drop the oldest bytes */
		size_t keep = sizeof(c->tail) - 1 - (size_t)n;

		if (c->tail_len > keep) {
			memmove(c->tail, c->tail + c->tail_len - keep, keep);
			c->tail_len = keep;
		}
		memcpy(c->tail + c->tail_len, tmp, n);
		c->tail_len += n;
		c->tail[c->tail_len] = 0;
	}
}

/* ---- the pool ---- */

void sftp_conn_free(struct conn *c)
{
	if (!c)
		return;
	if (c->to >= 0)
		close(c->to);
	if (c->from >= 0)
		close(c->from);
	if (c->err >= 0)
		close(c->err);
	buf_release(&c->out);
	free(c->rbuf);
	free(c->pkt);
	free(c);
}

/* Ends ssh: its stdin closed, the server's sftp-server ends and so does
 * ssh; one that lingers is killed. Returns its exit status. */
int sftp_conn_end(struct conn *c)
{
	usec_t deadline = now_monotonic() + (c->broken ? 2 : 5) * USEC_PER_SEC;
	int status = -1;

	if (c->to >= 0) {
		close(c->to);
		c->to = -1;
	}
	if (c->from >= 0) {
		close(c->from);
		c->from = -1;
	}
	/* stderr ends when ssh does */
	while (c->err >= 0 && now_monotonic() < deadline) {
		struct pollfd p = { .fd = c->err, .events = POLLIN };

		if (poll(&p, 1, 100) > 0)
			sftp_conn_drain_err(c);
	}
	if (c->pid > 0) {
		int st;
		pid_t w;

		do
			w = waitpid(c->pid, &st, WNOHANG);
		while (w < 0 && errno == EINTR);
		if (w == c->pid)
			status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		else
			status = spawn_kill(c->pid);
		c->pid = 0;
	}
	return status;
}

/* The last line ssh wrote on stderr that says something. */
static void last_words(const struct conn *c, char *out, size_t size)
{
	const char *t = c->tail, *best = NULL;
	size_t best_len = 0;

	while (*t) {
		size_t n = strcspn(t, "\r\n");

		/* OpenSSH's notes on success are no cause */
		if (n && strncmp(t, "Warning: Permanently added", 26) != 0) {
			best = t;
			best_len = n;
		}
		t += n;
		t += strspn(t, "\r\n");
	}
	if (best && best_len > 5 && strncmp(best, "ssh: ", 5) == 0) { /* "(ssh: ssh: ...)" */
		best += 5;
		best_len -= 5;
	}
	if (best_len > size - 1)
		best_len = size - 1;
	for (size_t i = 0; i < best_len; i++)
		out[i] = (unsigned char)best[i] >= 0x20 && best[i] != 0x7f ? best[i] : '?';
	out[best ? best_len : 0] = 0;
}

/* Why c broke, as the errno the retry loop judges, with remote_error()
 * set to what to do. */
static int explain(struct sftp *s, struct conn *c, const char *what)
{
	char words[300], said[340] = "";
	int status = sftp_conn_end(c);
	int r = sftp_ssh_failure(c->tail);

	last_words(c, words, sizeof(words));
	if (*words)
		snprintf(said, sizeof(said), " (ssh: %s)", words);
	else if (status > 0 && status < 128)
		snprintf(said, sizeof(said), " (ssh exited with status %d)", status);
	else if (status >= 128)
		snprintf(said, sizeof(said), " (ssh was killed by signal %d)", status - 128);
	switch (r) {
	case -EKEYREJECTED:
		remote_set_error(
			r,
			"the host key of '%s' is not known, or changed%s: check the "
			"server's key fingerprint and add it to known_hosts "
			"(ssh-keyscan%s %s >> ~/.ssh/known_hosts), or fix the entry that "
			"changed; bcdr runs ssh in batch mode and never accepts a key itself",
			s->display, said, s->port_opt, s->host);
		return r;
	case -EACCES:
		remote_set_error(
			r,
			"ssh refused the login to '%s'%s: give this user a key the "
			"server accepts (its authorized_keys; ssh-agent or IdentityFile in "
			"ssh_config); bcdr runs ssh in batch mode, so it never asks for a "
			"password",
			s->display, said);
		return r;
	case -EHOSTUNREACH:
		remote_set_error(r,
				 "cannot resolve the host of '%s'%s: check its name, the DNS "
				 "and ssh_config",
				 s->display, said);
		return r;
	case -ECONNREFUSED:
		remote_set_error(r,
				 "cannot connect to '%s'%s: is the server up and the address "
				 "right?",
				 s->display, said);
		return r;
	case -EPROTONOSUPPORT:
		remote_set_error(r,
				 "'%s' offers no sftp subsystem%s: enable 'Subsystem sftp' in "
				 "the server's sshd_config",
				 s->display, said);
		return r;
	case -ETIMEDOUT:
	case -ENETUNREACH:
		remote_set_error(r, "cannot reach '%s'%s for %s: check the network", s->display,
				 said, what);
		return r;
	}
	if (c->fail == -BCDR_ERR_PROTOCOL) {
		remote_set_error(
			-BCDR_ERR_PROTOCOL,
			"'%s' does not speak SFTP: for %s it sent "
			"\"%s\"; the server's Subsystem sftp must be an sftp server, and the "
			"account's shell startup files must print nothing",
			s->display, what, c->garbage);
		return -BCDR_ERR_PROTOCOL;
	}
	if (c->fail == -ETIMEDOUT) {
		remote_set_error(-ETIMEDOUT,
				 "'%s' stopped answering for %s (nothing in %llu s): "
				 "the server or the network stalls",
				 s->display, what, (unsigned long long)(s->stall / USEC_PER_SEC));
		return -ETIMEDOUT;
	}
	remote_set_error(-ECONNRESET, "the connection to '%s' broke for %s%s", s->display, what,
			 said);
	return -ECONNRESET;
}

static int conn_new(struct sftp *s, struct conn **ret)
{
	struct conn *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->to = c->from = c->err = -1;
	c->next_id = 1;
	/* a window of WRITEs, each a packet */
	buf_init(&c->out, SFTP_WINDOW * (SFTP_CHUNK + 1024) + SFTP_MAX_PACKET);
	c->rbuf = malloc(READ_BUF);
	c->pkt = malloc(SFTP_MAX_PACKET);
	if (!c->rbuf || !c->pkt) {
		sftp_conn_free(c);
		return -ENOMEM;
	}
	r = spawn_start_pipes(s->argv, NULL, &c->pid, &c->to, &c->from, &c->err);
	if (r < 0) {
		sftp_conn_free(c);
		remote_set_error(-ENOPKG,
				 "cannot run '%s' for '%s' (%s): install openssh-client, "
				 "or name the ssh program in the repository's ssh_command or "
				 "BCDR_SSH_COMMAND",
				 s->argv[0], s->display, err_str(r));
		return -ENOPKG;
	}
	fcntl(c->to, F_SETFL, O_NONBLOCK);
	fcntl(c->from, F_SETFL, O_NONBLOCK);
	fcntl(c->err, F_SETFL, O_NONBLOCK);
	if ((r = sftp_put_init(&c->out)) >= 0 && (r = sftp_send_out(s, c)) >= 0 &&
	    (r = sftp_read_packet(s, c)) >= 0 &&
	    sftp_parse_version(c->pkt, c->pkt_len, &c->v) < 0) {
		sftp_keep_garbage(c, c->pkt);
		r = sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
	}
	if (r < 0) {
		if (c->broken)
			r = explain(s, c, "the start of the session");
		else
			sftp_conn_end(c);
		sftp_conn_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

static int take_conn(struct sftp *s, struct conn **ret)
{
	struct conn *c = NULL;
	int r;

	pthread_mutex_lock(&s->lock);
	while (s->nidle == 0 && s->created >= s->conns)
		pthread_cond_wait(&s->freed, &s->lock);
	if (s->nidle)
		c = s->idle[--s->nidle];
	else
		s->created++;
	pthread_mutex_unlock(&s->lock);
	if (c) {
		*ret = c;
		return 0;
	}
	r = conn_new(s, ret);
	if (r < 0) {
		pthread_mutex_lock(&s->lock);
		s->created--;
		pthread_cond_signal(&s->freed);
		pthread_mutex_unlock(&s->lock);
	}
	return r;
}

/* A broken connection is ended; returns why it broke (explain()). */
static int give_conn(struct sftp *s, struct conn *c, const char *what)
{
	int r = 0;

	if (c->broken) {
		r = explain(s, c, what);
		sftp_conn_free(c);
		c = NULL;
	}
	pthread_mutex_lock(&s->lock);
	if (c)
		s->idle[s->nidle++] = c;
	else
		s->created--;
	pthread_cond_signal(&s->freed);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* ---- operations, tried again on a new connection when one breaks ---- */

static bool transient(int r)
{
	return r == -ECONNRESET || r == -ECONNREFUSED || r == -ETIMEDOUT || r == -ENETUNREACH;
}

int sftp_run(struct sftp *s, const char *what, sftp_op_fn fn, void *arg)
{
	usec_t start = now_monotonic();
	struct timespec zero = { 0, 0 };
	sigset_t pipe_set, old;
	unsigned attempt;
	int r;

	/* a write to an ssh that died raises SIGPIPE: swallowed here */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	for (attempt = 1;; attempt++) {
		struct conn *c = NULL;

		r = take_conn(s, &c);
		if (r >= 0) {
			r = fn(s, c, arg, attempt > 1);
			if (c->broken)
				r = give_conn(s, c, what);
			else
				give_conn(s, c, what);
		}
		if (r >= 0 || !transient(r))
			break;
		if (!remote_retry_wait(attempt, s->max_attempts, start, s->max_time))
			break;
	}
	if (r < 0 && transient(r) && attempt > 1) {
		char why[1024];

		snprintf(why, sizeof(why), "%s", remote_error(r));
		remote_set_error(r, "%s (tried %u times over %llu s)", why, attempt,
				 (unsigned long long)((now_monotonic() - start) / USEC_PER_SEC));
	}
	if (!sigismember(&old, SIGPIPE)) {
		while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
			;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	return r;
}

