/* sftp:[USER@]HOST[:PORT]:/PATH: the repository as files on an ssh server,
 * in the local backend's layout (data/xx/NAME), spoken to in SFTP v3 over
 * the system's ssh (repo/backend-sftp.h says why not a library).
 *
 * Each connection is one ssh process; a pool of up to `connections` of
 * them is opened on demand and shared by the threads (one operation holds
 * one connection). Within a connection, reads and writes are pipelined:
 * up to SFTP_WINDOW requests of SFTP_CHUNK bytes are in flight, so a
 * transfer is not one round trip per 64 KiB; the read-ahead of packs
 * (backend_read(), through sftp_get_upto()) fetches a window of one
 * pipeline's worth, and the pack stays open on its connection. Packs upload in the
 * background on the connections (remote_put_async(), as rest and s3);
 * an index or a snapshot waits for them.
 *
 * Puts write "NAME.tmp.RANDOM", fsync it when the server offers
 * fsync@openssh.com, and rename it over NAME (posix-rename@openssh.com,
 * else RENAME); data/xx directories are made when a put finds one
 * missing. A connection that breaks (ssh dies, the server is killed, a
 * stall) is closed and the operation is tried again on a new one, with
 * the shared backoff (remote_retry_wait()); what ssh printed says what
 * went wrong and is not retried when retrying cannot help (host key,
 * login, no such host). */
#include "repo/backend-sftp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/spawn.h"
#include "lib/timeutil.h"
#include "repo/remote.h"
#include "repo/sftp-proto.h"

/* READ or WRITE requests in flight on one connection: 2 MiB, what
 * OpenSSH's sftp client keeps in flight too. */
#define SFTP_WINDOW 32
/* Entries of one listing (a million packs is 1/4 of it), and their names. */
#define SFTP_MAX_ENTRIES (4u << 20)
#define SFTP_MAX_LIST_BYTES ((size_t)256 << 20)
#define SFTP_MAX_ARGS 64
#define ERR_TAIL 2048
#define READ_BUF (128u << 10)

static const char *const layout[] = { "keys", "data", "index", "snapshots", "locks" };

struct conn {
	pid_t pid;
	int to, from, err; /* ssh's stdin, stdout, stderr; non-blocking */
	uint32_t next_id;
	struct sftp_version v;
	struct buf out; /* requests not yet written */
	uint8_t *rbuf;  /* bytes read from ssh, not yet consumed */
	size_t rpos, rlen;
	uint8_t *pkt; /* the last packet read */
	size_t pkt_len;
	char tail[ERR_TAIL]; /* the end of ssh's stderr */
	size_t tail_len;
	char garbage[48]; /* the first bytes of a packet that made no sense */
	/* The pack last read in ranges stays open: a restore reads many
	 * blobs of one pack, each then one round trip, not three. Packs
	 * never change, so the handle never reads stale bytes. */
	struct sftp_handle pack;
	char pack_path[LOCATION_MAX + 300];
	bool broken;
	int fail; /* what broke it */
};

struct sftp {
	struct backend b;
	struct remote *rm; /* background uploads and the last error's text */
	char **argv;
	char *root, *display, *host;
	char port_opt[12]; /* " -p PORT" for messages, or "" */
	unsigned conns, max_attempts;
	usec_t stall, max_time;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	struct conn **idle;
	size_t nidle, created;
};

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

/* ---- one connection: bytes ---- */

static int broke(struct conn *c, int r)
{
	if (!c->broken) {
		c->broken = true;
		c->fail = r;
	}
	return r;
}

/* Keeps the end of what ssh writes on stderr: its messages explain a
 * failure. */
static void drain_err(struct conn *c)
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

/* Until fd is ready for ev, reading ssh's stderr meanwhile; -ETIMEDOUT
 * after stall without it. */
static int wait_fd(struct conn *c, int fd, short ev, usec_t stall)
{
	usec_t deadline = now_monotonic() + stall;

	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = ev },
				       { .fd = c->err, .events = POLLIN } };
		usec_t now = now_monotonic();
		int n;

		if (now >= deadline)
			return -ETIMEDOUT;
		n = poll(p, c->err >= 0 ? 2 : 1, (int)((deadline - now) / USEC_PER_MSEC) + 1);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0 && c->err >= 0 && p[1].revents)
			drain_err(c);
		if (n > 0 && p[0].revents)
			return 0;
	}
}

static int conn_write(struct conn *c, const uint8_t *p, size_t n, usec_t stall)
{
	while (n) {
		ssize_t k = write(c->to, p, n);
		int r;

		if (k > 0) {
			p += k;
			n -= (size_t)k;
		} else if (k < 0 && errno == EINTR) {
			continue;
		} else if (k < 0 && errno == EAGAIN) {
			if ((r = wait_fd(c, c->to, POLLOUT, stall)) < 0)
				return broke(c, r);
		} else {
			return broke(c, -ECONNRESET); /* EPIPE: ssh is gone */
		}
	}
	return 0;
}

static int conn_read(struct conn *c, uint8_t *p, size_t n, usec_t stall)
{
	while (n) {
		size_t have = c->rlen - c->rpos;
		ssize_t k;
		int r;

		if (have) {
			size_t m = have < n ? have : n;

			memcpy(p, c->rbuf + c->rpos, m);
			c->rpos += m;
			p += m;
			n -= m;
			continue;
		}
		c->rpos = c->rlen = 0;
		k = read(c->from, c->rbuf, READ_BUF);
		if (k > 0)
			c->rlen = (size_t)k;
		else if (k < 0 && errno == EINTR)
			continue;
		else if (k < 0 && errno == EAGAIN) {
			if ((r = wait_fd(c, c->from, POLLIN, stall)) < 0)
				return broke(c, r);
		} else {
			return broke(c, -ECONNRESET); /* EOF: ssh ended */
		}
	}
	return 0;
}

static int send_out(struct sftp *s, struct conn *c)
{
	int r = 0;

	if (c->out.len)
		r = conn_write(c, (const uint8_t *)c->out.data, c->out.len, s->stall);
	buf_reset(&c->out);
	return r;
}

/* The printable start of a packet that made no sense, for the message. */
static void keep_garbage(struct conn *c, const uint8_t *hdr)
{
	size_t n = 0;
	uint8_t b[sizeof(c->garbage)];

	memcpy(b, hdr, 4);
	n = 4;
	while (n < sizeof(b) - 1 && c->rpos < c->rlen)
		b[n++] = c->rbuf[c->rpos++];
	for (size_t i = 0; i < n; i++)
		c->garbage[i] = b[i] >= 0x20 && b[i] < 0x7f ? (char)b[i] : '.';
	c->garbage[n] = 0;
}

static int read_packet(struct sftp *s, struct conn *c)
{
	uint8_t hdr[4];
	uint32_t n;
	int r = conn_read(c, hdr, 4, s->stall);

	if (r < 0)
		return r;
	if (sftp_packet_length(hdr, &n) < 0) {
		keep_garbage(c, hdr);
		return broke(c, -BCDR_ERR_PROTOCOL);
	}
	c->pkt_len = n;
	return conn_read(c, c->pkt, n, s->stall);
}

static int read_reply(struct sftp *s, struct conn *c, struct sftp_reply *rep)
{
	int r = read_packet(s, c);

	if (r < 0)
		return r;
	if (sftp_parse_reply(c->pkt, c->pkt_len, rep) < 0) {
		keep_garbage(c, c->pkt);
		return broke(c, -BCDR_ERR_PROTOCOL);
	}
	return 0;
}

/* Sends the request in c->out and reads its reply. */
static int call(struct sftp *s, struct conn *c, uint32_t id, struct sftp_reply *rep)
{
	int r = send_out(s, c);

	if (r >= 0)
		r = read_reply(s, c, rep);
	if (r >= 0 && rep->id != id)
		return broke(c, -BCDR_ERR_PROTOCOL);
	return r;
}

/* A reply that must be a STATUS: its errno. */
static int status_of(struct conn *c, const struct sftp_reply *rep)
{
	if (rep->type != SFTP_STATUS)
		return broke(c, -BCDR_ERR_PROTOCOL);
	return sftp_status_errno(rep->code);
}

/* ---- one connection: requests ---- */

static int c_stat(struct sftp *s, struct conn *c, const char *path, struct sftp_attrs *ret)
{
	uint32_t id = c->next_id++;
	struct sftp_reply rep;
	int r = sftp_put_path(&c->out, SFTP_STAT, id, path);

	if (r < 0 || (r = call(s, c, id, &rep)) < 0)
		return r;
	if (rep.type == SFTP_ATTRS) {
		*ret = rep.attrs;
		return 0;
	}
	r = status_of(c, &rep);
	return r < 0 ? r : broke(c, -BCDR_ERR_PROTOCOL);
}

/* A request whose answer is a STATUS: REMOVE, RMDIR, MKDIR, RENAME. */
static int c_status(struct sftp *s, struct conn *c, uint32_t id)
{
	struct sftp_reply rep;
	int r = call(s, c, id, &rep);

	return r < 0 ? r : status_of(c, &rep);
}

static int c_path(struct sftp *s, struct conn *c, uint8_t type, const char *path)
{
	uint32_t id = c->next_id++;
	int r = sftp_put_path(&c->out, type, id, path);

	return r < 0 ? r : c_status(s, c, id);
}

static int c_mkdir(struct sftp *s, struct conn *c, const char *path)
{
	uint32_t id = c->next_id++;
	int r = sftp_put_mkdir(&c->out, id, path, 0700);

	return r < 0 ? r : c_status(s, c, id);
}

static int c_handle_reply(struct sftp *s, struct conn *c, uint32_t id, struct sftp_handle *h)
{
	struct sftp_reply rep;
	int r = call(s, c, id, &rep);

	if (r < 0)
		return r;
	if (rep.type == SFTP_HANDLE) {
		*h = rep.handle;
		return 0;
	}
	r = status_of(c, &rep);
	return r < 0 ? r : broke(c, -BCDR_ERR_PROTOCOL);
}

static int c_open(struct sftp *s, struct conn *c, const char *path, uint32_t flags,
		  struct sftp_handle *h)
{
	uint32_t id = c->next_id++;
	int r = sftp_put_open(&c->out, id, path, flags, 0600);

	return r < 0 ? r : c_handle_reply(s, c, id, h);
}

static int c_opendir(struct sftp *s, struct conn *c, const char *path, struct sftp_handle *h)
{
	uint32_t id = c->next_id++;
	int r = sftp_put_path(&c->out, SFTP_OPENDIR, id, path);

	return r < 0 ? r : c_handle_reply(s, c, id, h);
}

static int c_close(struct sftp *s, struct conn *c, const struct sftp_handle *h)
{
	uint32_t id = c->next_id++;
	int r = sftp_put_handle(&c->out, SFTP_CLOSE, id, h);

	return r < 0 ? r : c_status(s, c, id);
}

struct slot {
	uint32_t id;
	uint32_t len;
	uint64_t off;
};

static int queue_io(struct conn *c, const struct sftp_handle *h, uint64_t base, uint64_t off,
		    uint32_t len, uint8_t *into, const uint8_t *from, struct slot *sl)
{
	uint32_t id = c->next_id++;
	int r = into ? sftp_put_read(&c->out, id, h, off, len)
		     : sftp_put_write(&c->out, id, h, off, from + (off - base), len);

	if (r < 0)
		return r;
	*sl = (struct slot){ .id = id, .len = len, .off = off };
	return 0;
}

/* Reads [off, off + len) of h into `into`, or writes `from` there, with up
 * to SFTP_WINDOW requests in flight. A short READ asks for the rest. A
 * read may end at EOF once need bytes came (*ret_got says how many);
 * before that, EOF is -BCDR_ERR_CORRUPT (the object is shorter). After an
 * error the replies still due are read, so the connection stays usable. */
static int transfer(struct sftp *s, struct conn *c, const struct sftp_handle *h, uint64_t off,
		    size_t len, uint8_t *into, const uint8_t *from, size_t need, size_t *ret_got)
{
	struct slot slots[SFTP_WINDOW];
	size_t nslots = 0;
	uint64_t next = off, end = off + len, eof = off + len;
	int err = 0, r;

	while (nslots || (next < eof && !err)) {
		struct sftp_reply rep;
		struct slot sl;
		size_t i;

		while (!err && nslots < SFTP_WINDOW && next < eof) {
			uint32_t n = end - next < SFTP_CHUNK ? (uint32_t)(end - next) : SFTP_CHUNK;

			if ((r = queue_io(c, h, off, next, n, into, from, &slots[nslots])) < 0) {
				err = r;
				break;
			}
			nslots++;
			next += n;
		}
		if (!nslots)
			break;
		if ((r = send_out(s, c)) < 0 || (r = read_reply(s, c, &rep)) < 0)
			return r;
		for (i = 0; i < nslots && slots[i].id != rep.id; i++)
			;
		if (i == nslots)
			return broke(c, -BCDR_ERR_PROTOCOL);
		sl = slots[i];
		slots[i] = slots[--nslots];
		if (into && rep.type == SFTP_DATA) {
			if (rep.data_len == 0 || rep.data_len > sl.len)
				return broke(c, -BCDR_ERR_PROTOCOL);
			memcpy(into + (sl.off - off), rep.data, rep.data_len);
			if (rep.data_len < sl.len && !err && sl.off + rep.data_len < eof) {
				r = queue_io(c, h, off, sl.off + rep.data_len,
					     sl.len - rep.data_len, into, from, &slots[nslots]);
				if (r < 0)
					err = r;
				else
					nslots++;
			}
			continue;
		}
		r = status_of(c, &rep);
		if (c->broken)
			return r;
		if (r == -ENODATA && into) { /* nothing at or after sl.off */
			if (sl.off < eof)
				eof = sl.off;
			continue;
		}
		if (r < 0 && !err)
			err = r;
		else if (r == 0 && into)
			return broke(c, -BCDR_ERR_PROTOCOL); /* OK is no answer to READ */
	}
	if (!err && into) {
		if (eof - off < need)
			return -BCDR_ERR_CORRUPT;
		if (ret_got)
			*ret_got = (size_t)(eof - off);
	}
	return err;
}

/* ---- the pool ---- */

static void conn_free(struct conn *c)
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
static int conn_end(struct conn *c)
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
			drain_err(c);
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
	int status = conn_end(c);
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
		conn_free(c);
		return -ENOMEM;
	}
	r = spawn_start_pipes(s->argv, NULL, &c->pid, &c->to, &c->from, &c->err);
	if (r < 0) {
		conn_free(c);
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
	if ((r = sftp_put_init(&c->out)) >= 0 && (r = send_out(s, c)) >= 0 &&
	    (r = read_packet(s, c)) >= 0 && sftp_parse_version(c->pkt, c->pkt_len, &c->v) < 0) {
		keep_garbage(c, c->pkt);
		r = broke(c, -BCDR_ERR_PROTOCOL);
	}
	if (r < 0) {
		if (c->broken)
			r = explain(s, c, "the start of the session");
		else
			conn_end(c);
		conn_free(c);
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
		conn_free(c);
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

typedef int (*op_fn)(struct sftp *s, struct conn *c, void *arg, bool again);

static bool transient(int r)
{
	return r == -ECONNRESET || r == -ECONNREFUSED || r == -ETIMEDOUT || r == -ENETUNREACH;
}

static int run(struct sftp *s, const char *what, op_fn fn, void *arg)
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

/* The message for an error the server gave (not a broken connection). */
static int server_error(struct sftp *s, int r, const char *verb, const char *name)
{
	if (r == -EACCES)
		remote_set_error(r,
				 "'%s' denied the %s of '%s' (permission denied): the ssh user "
				 "needs to read and write the repository's directory",
				 s->display, verb, name);
	else if (r == -EOPNOTSUPP)
		remote_set_error(r, "the sftp server of '%s' does not support the %s of '%s'",
				 s->display, verb, name);
	else if (r == -EIO)
		remote_set_error(r,
				 "the sftp server of '%s' failed the %s of '%s' (is its disk "
				 "full, or the path not a directory?)",
				 s->display, verb, name);
	return r;
}

static bool name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n < 200 && !strstr(name, "..") && name[0] != '/' &&
	       strchr(name, '/') == strrchr(name, '/');
}

/* The remote path of an object: data/<first two hex digits>/<name>, as
 * the local backend lays it out. */
static int object_path(struct sftp *s, const char *name, char *out, size_t size)
{
	const char *slash = strchr(name, '/');
	const char *sep = s->root[strlen(s->root) - 1] == '/' ? "" : "/";
	int n;

	if (!name_ok(name))
		return -EINVAL;
	if (slash && strncmp(name, "data/", 5) == 0 && strlen(slash + 1) >= 2)
		n = snprintf(out, size, "%s%sdata/%.2s/%s", s->root, sep, slash + 1, slash + 1);
	else
		n = snprintf(out, size, "%s%s%s", s->root, sep, name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

struct get_arg {
	const char *name;
	bool ranged;
	uint64_t offset;
	size_t max, len;
	size_t need, got; /* ranged: len may read ahead of need, up to EOF */
	uint8_t *buf;     /* ranged: the caller's; else ours */
};

static int op_get(struct sftp *s, struct conn *c, void *arg, bool again)
{
	struct get_arg *g = arg;
	struct sftp_handle h;
	struct sftp_attrs a = {};
	char path[LOCATION_MAX + 300];
	int r = object_path(s, g->name, path, sizeof(path)), r2;

	(void)again;
	if (r < 0)
		return r;
	if (g->ranged && strncmp(g->name, "data/", 5) == 0) {
		if (c->pack.len && strcmp(c->pack_path, path) == 0)
			return transfer(s, c, &c->pack, g->offset, g->len, g->buf, NULL, g->need,
					&g->got);
		if (c->pack.len && (r = c_close(s, c, &c->pack)) < 0 && c->broken)
			return r;
		c->pack.len = 0;
		if ((r = c_open(s, c, path, SFTP_FXF_READ, &c->pack)) < 0) {
			c->pack.len = 0;
			return r == -ENOENT || c->broken ? r : server_error(s, r, "read", g->name);
		}
		snprintf(c->pack_path, sizeof(c->pack_path), "%s", path);
		return transfer(s, c, &c->pack, g->offset, g->len, g->buf, NULL, g->need, &g->got);
	}
	if ((r = c_open(s, c, path, SFTP_FXF_READ, &h)) < 0)
		return r == -ENOENT || c->broken ? r : server_error(s, r, "read", g->name);
	if (!g->ranged) {
		uint32_t id = c->next_id++;
		struct sftp_reply rep;

		free(g->buf);
		g->buf = NULL;
		if ((r = sftp_put_handle(&c->out, SFTP_FSTAT, id, &h)) >= 0 &&
		    (r = call(s, c, id, &rep)) >= 0) {
			if (rep.type != SFTP_ATTRS)
				r = (r = status_of(c, &rep)) < 0 ? r : broke(c, -BCDR_ERR_PROTOCOL);
			else if (!(rep.attrs.flags & SFTP_ATTR_SIZE))
				r = broke(c, -BCDR_ERR_PROTOCOL);
			a = rep.attrs;
		}
		if (r >= 0 && a.size > g->max)
			r = -BCDR_ERR_TOO_BIG;
		if (r >= 0 && !(g->buf = malloc(a.size ? a.size : 1)))
			r = -ENOMEM;
		if (r >= 0)
			g->len = (size_t)a.size;
	}
	if (r >= 0)
		r = transfer(s, c, &h, g->offset, g->len, g->buf, NULL,
			     g->ranged ? g->need : g->len, &g->got);
	if (c->broken)
		return r;
	r2 = c_close(s, c, &h);
	if (r >= 0 && r2 < 0)
		r = c->broken ? r2 : server_error(s, r2, "read", g->name);
	return r;
}

static int sftp_get(struct backend *b, const char *name, size_t max, uint8_t **ret, size_t *ret_len)
{
	struct sftp *s = (struct sftp *)b;
	struct get_arg g = { .name = name, .max = max };
	char what[256];
	int r;

	snprintf(what, sizeof(what), "the read of '%s'", name);
	r = run(s, what, op_get, &g);
	if (r < 0) {
		free(g.buf);
		return r;
	}
	*ret = g.buf;
	*ret_len = g.len;
	return 0;
}

/* Up to len bytes at offset, at least need (the object may end first):
 * the read-ahead windows of backend_read() cost one round trip of the
 * pipeline, as cheap as the blob alone. */
static int sftp_get_upto(struct backend *b, const char *name, uint64_t offset, size_t need,
			 size_t len, uint8_t *buf, size_t *ret_len)
{
	struct sftp *s = (struct sftp *)b;
	struct get_arg g = {
		.name = name, .ranged = true, .offset = offset, .len = len, .need = need, .buf = buf
	};
	char what[256];
	int r;

	*ret_len = 0;
	if (len == 0)
		return 0;
	snprintf(what, sizeof(what), "the read of '%s'", name);
	r = run(s, what, op_get, &g);
	if (r >= 0)
		*ret_len = g.got;
	return r;
}

static int sftp_get_range(struct backend *b, const char *name, uint64_t offset, size_t len,
			  uint8_t *buf)
{
	size_t got;

	return sftp_get_upto(b, name, offset, len, len, buf, &got);
}

struct put_arg {
	const char *name;
	const void *data;
	size_t len;
};

static int op_put(struct sftp *s, struct conn *c, void *arg, bool again)
{
	struct put_arg *p = arg;
	struct sftp_handle h;
	char path[LOCATION_MAX + 300], tmp[LOCATION_MAX + 340];
	uint64_t x;
	int r = object_path(s, p->name, path, sizeof(path)), r2;

	(void)again;
	if (r < 0)
		return r;
	if (getrandom(&x, sizeof(x), 0) != sizeof(x))
		return -EIO;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%016llx", path, (unsigned long long)x);
	r = c_open(s, c, tmp, SFTP_FXF_WRITE | SFTP_FXF_CREAT | SFTP_FXF_EXCL, &h);
	if (r == -ENOENT && strncmp(p->name, "data/", 5) == 0) {
		/* data/xx is made by the first pack that goes there */
		char dir[LOCATION_MAX + 300];

		snprintf(dir, sizeof(dir), "%s", path);
		*strrchr(dir, '/') = 0;
		r = c_mkdir(s, c, dir);
		if (r >= 0 || !c->broken)
			r = c_open(s, c, tmp, SFTP_FXF_WRITE | SFTP_FXF_CREAT | SFTP_FXF_EXCL, &h);
	}
	if (r < 0)
		return c->broken ? r : server_error(s, r, "write", p->name);
	r = transfer(s, c, &h, 0, p->len, NULL, p->data, 0, NULL);
	if (r >= 0 && c->v.fsync) {
		uint32_t id = c->next_id++;

		if ((r = sftp_put_fsync(&c->out, id, &h)) >= 0)
			r = c_status(s, c, id);
	}
	if (c->broken)
		return r;
	r2 = c_close(s, c, &h);
	if (r >= 0)
		r = r2;
	if (r >= 0) {
		uint32_t id = c->next_id++;

		if ((r = sftp_put_rename(&c->out, id, tmp, path, c->v.posix_rename)) >= 0)
			r = c_status(s, c, id);
		/* a plain RENAME does not replace: the same object (the name is
		 * its hash, or unique) is there already */
		if (r == -EIO && !c->v.posix_rename) {
			struct sftp_attrs a;

			if (c_stat(s, c, path, &a) >= 0)
				r = 0;
		}
	}
	if (r < 0 && !c->broken) {
		c_path(s, c, SFTP_REMOVE, tmp);
		return server_error(s, r, "write", p->name);
	}
	if (r >= 0 && !c->broken && !c->v.posix_rename)
		c_path(s, c, SFTP_REMOVE, tmp); /* the leftover when it was there */
	return r;
}

static int put_now(void *b, const char *name, const void *data, size_t len)
{
	struct sftp *s = b;
	struct put_arg p = { name, data, len };
	char what[256];

	snprintf(what, sizeof(what), "the write of '%s'", name);
	return run(s, what, op_put, &p);
}

static int sftp_put(struct backend *b, const char *name, const void *data, size_t len)
{
	struct sftp *s = (struct sftp *)b;
	int r;

	if (strncmp(name, "data/", 5) == 0)
		return remote_put_async(s->rm, put_now, s, name, data, len);
	/* An index or a snapshot names packs: they must be stored first.
	 * Locks do not wait (a lock refresh must not stall behind packs). */
	if (strncmp(name, "locks/", 6) != 0 && (r = remote_flush(s->rm)) < 0)
		return r;
	return put_now(s, name, data, len);
}

struct entry {
	char *name;
	uint64_t size;
};

struct list_arg {
	const char *dir;
	struct entry *v;
	size_t n, cap, bytes;
};

static void list_clear(struct list_arg *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = l->bytes = 0;
}

static int list_add(struct list_arg *l, const char *name, size_t len, uint64_t size)
{
	if (l->bytes > SFTP_MAX_LIST_BYTES - len)
		return -BCDR_ERR_TOO_BIG;
	l->bytes += len + 1;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct entry *v;

		if (l->n >= SFTP_MAX_ENTRIES)
			return -BCDR_ERR_TOO_BIG;
		v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n].name = strndup(name, len)))
		return -ENOMEM;
	l->v[l->n++].size = size;
	return 0;
}

static bool is_dir(const struct sftp_attrs *a, size_t name_len)
{
	if (a->flags & SFTP_ATTR_PERMISSIONS)
		return S_ISDIR(a->perms);
	return name_len == 2; /* a server that gives no mode: data/xx */
}

static bool is_file(const struct sftp_attrs *a)
{
	return !(a->flags & SFTP_ATTR_PERMISSIONS) || S_ISREG(a->perms);
}

/* The entries of a NAME reply into l; with subdirs, directories go there
 * (data/xx). Dot files and temporary names are not objects. */
static int add_names(struct conn *c, const struct sftp_reply *rep, struct list_arg *l,
		     struct list_arg *subdirs)
{
	struct sftp_names it;
	struct sftp_attrs a;
	const char *name;
	size_t len;
	int r = 0;

	/* an empty batch is no progress: a server sending them forever
	 * would keep the listing going */
	if (rep->count == 0)
		return broke(c, -BCDR_ERR_PROTOCOL);
	sftp_names_begin(rep, &it);
	while (r >= 0 && sftp_names_next(&it, &name, &len, &a) > 0) {
		if (len == 0 || name[0] == '.' || memmem(name, len, ".tmp.", 5) || len > 255 ||
		    memchr(name, '/', len))
			continue;
		if (subdirs && is_dir(&a, len))
			r = list_add(subdirs, name, len, 0);
		else if (is_file(&a))
			r = list_add(l, name, len, a.size);
	}
	return r;
}

/* The entries of path; with subdirs, the names of its directories go
 * there instead (data/xx). */
static int list_one(struct sftp *s, struct conn *c, const char *path, struct list_arg *l,
		    struct list_arg *subdirs)
{
	struct sftp_handle h;
	int r = c_opendir(s, c, path, &h), r2;

	if (r < 0)
		return r;
	for (;;) {
		uint32_t id = c->next_id++;
		struct sftp_reply rep;

		if ((r = sftp_put_handle(&c->out, SFTP_READDIR, id, &h)) < 0 ||
		    (r = call(s, c, id, &rep)) < 0)
			break;
		if (rep.type != SFTP_NAME) {
			r = status_of(c, &rep);
			if (r == -ENODATA || r == 0)
				r = r == 0 ? broke(c, -BCDR_ERR_PROTOCOL) : 0;
			break;
		}
		if ((r = add_names(c, &rep, l, subdirs)) < 0)
			break;
	}
	if (c->broken)
		return r;
	r2 = c_close(s, c, &h);
	return r < 0 ? r : r2;
}

struct dir_slot {
	uint32_t id;
	struct sftp_handle h;
	bool open, done, asked;
};

/* Reads the reply to each slot asked (the server may answer in any
 * order); fn judges it. */
static int replies(struct sftp *s, struct conn *c, struct dir_slot *d, size_t k,
		   int (*fn)(struct conn *c, struct dir_slot *d, const struct sftp_reply *rep,
			     struct list_arg *l),
		   struct list_arg *l)
{
	int r = send_out(s, c), err = 0;

	if (r < 0)
		return r;
	for (;;) {
		struct sftp_reply rep;
		size_t i, left = 0;

		for (i = 0; i < k; i++)
			left += d[i].asked;
		if (!left)
			return err;
		if ((r = read_reply(s, c, &rep)) < 0)
			return r;
		for (i = 0; i < k && !(d[i].asked && d[i].id == rep.id); i++)
			;
		if (i == k)
			return broke(c, -BCDR_ERR_PROTOCOL);
		d[i].asked = false;
		r = fn(c, &d[i], &rep, l);
		if (c->broken)
			return r;
		if (r < 0 && !err)
			err = r;
	}
}

static int on_opendir(struct conn *c, struct dir_slot *d, const struct sftp_reply *rep,
		      struct list_arg *l)
{
	int r;

	(void)l;
	if (rep->type == SFTP_HANDLE) {
		d->h = rep->handle;
		d->open = true;
		return 0;
	}
	d->done = true;
	r = status_of(c, rep);
	if (r == 0)
		return broke(c, -BCDR_ERR_PROTOCOL);
	return r == -ENOENT ? 0 : r; /* removed meanwhile */
}

static int on_readdir(struct conn *c, struct dir_slot *d, const struct sftp_reply *rep,
		      struct list_arg *l)
{
	int r;

	if (rep->type == SFTP_NAME)
		return add_names(c, rep, l, NULL);
	d->done = true;
	r = status_of(c, rep);
	if (r == 0)
		return broke(c, -BCDR_ERR_PROTOCOL);
	return r == -ENODATA ? 0 : r;
}

static int on_close(struct conn *c, struct dir_slot *d, const struct sftp_reply *rep,
		    struct list_arg *l)
{
	(void)d;
	(void)l;
	return status_of(c, rep);
}

/* The entries of the directories dirs under base, SFTP_WINDOW of them
 * at a time: each step (open, read, close) is one round trip for all of
 * them, so data/'s 256 directories take a few dozen round trips, not
 * several hundred. */
static int list_many(struct sftp *s, struct conn *c, const char *base,
		     const struct list_arg *dirs, struct list_arg *l)
{
	for (size_t first = 0; first < dirs->n; first += SFTP_WINDOW) {
		size_t k = dirs->n - first < SFTP_WINDOW ? dirs->n - first : SFTP_WINDOW;
		struct dir_slot d[SFTP_WINDOW] = {};
		bool more = true;
		int r, err;

		for (size_t i = 0; i < k; i++) {
			char sub[LOCATION_MAX + 600];

			snprintf(sub, sizeof(sub), "%s/%s", base, dirs->v[first + i].name);
			d[i].id = c->next_id++;
			if ((r = sftp_put_path(&c->out, SFTP_OPENDIR, d[i].id, sub)) < 0)
				return broke(c, r); /* half a window in c->out */
			d[i].asked = true;
		}
		err = replies(s, c, d, k, on_opendir, l);
		if (c->broken)
			return err;
		while (more) {
			more = false;
			for (size_t i = 0; i < k; i++)
				if (d[i].open && !d[i].done) {
					d[i].id = c->next_id++;
					if ((r = sftp_put_handle(&c->out, SFTP_READDIR, d[i].id,
								 &d[i].h)) < 0)
						return broke(c, r);
					d[i].asked = more = true;
				}
			if (more && (r = replies(s, c, d, k, on_readdir, l)) < 0) {
				if (c->broken)
					return r;
				if (!err)
					err = r;
			}
		}
		for (size_t i = 0; i < k; i++)
			if (d[i].open) {
				d[i].id = c->next_id++;
				if ((r = sftp_put_handle(&c->out, SFTP_CLOSE, d[i].id, &d[i].h)) < 0)
					return broke(c, r);
				d[i].asked = true;
			}
		r = replies(s, c, d, k, on_close, l);
		if (err < 0)
			return err;
		if (r < 0)
			return r;
	}
	return 0;
}

static int op_list(struct sftp *s, struct conn *c, void *arg, bool again)
{
	struct list_arg *l = arg, subdirs = { 0 };
	char path[LOCATION_MAX + 300];
	bool nested = strcmp(l->dir, "data") == 0;
	int r;

	(void)again;
	list_clear(l);
	if ((r = object_path(s, l->dir, path, sizeof(path))) < 0)
		return r;
	r = list_one(s, c, path, l, nested ? &subdirs : NULL);
	if (r >= 0)
		r = list_many(s, c, path, &subdirs, l);
	list_clear(&subdirs);
	if (r == -ENOENT)
		return 0; /* a directory some tool never made: empty */
	return r < 0 && !c->broken ? server_error(s, r, "listing", l->dir) : r;
}

static int sftp_list(struct backend *b, const char *dir,
		     int (*fn)(const char *name, uint64_t size, void *userdata), void *userdata)
{
	struct sftp *s = (struct sftp *)b;
	struct list_arg l = { .dir = dir };
	char what[128];
	int r;

	if (strchr(dir, '/') || !name_ok(dir))
		return -EINVAL;
	snprintf(what, sizeof(what), "the listing of '%s'", dir);
	/* the whole listing first: fn may use the backend (and a connection) */
	r = run(s, what, op_list, &l);
	for (size_t i = 0; r >= 0 && i < l.n; i++) {
		r = fn(l.v[i].name, l.v[i].size, userdata);
		if (r != 0)
			break;
	}
	list_clear(&l);
	return r < 0 ? r : 0;
}

static int op_remove(struct sftp *s, struct conn *c, void *arg, bool again)
{
	const char *name = arg;
	char path[LOCATION_MAX + 300];
	int r = object_path(s, name, path, sizeof(path));

	if (r < 0)
		return r;
	if (c->pack.len && strcmp(c->pack_path, path) == 0) {
		r = c_close(s, c, &c->pack);
		c->pack.len = 0;
		if (c->broken)
			return r;
	}
	r = c_path(s, c, SFTP_REMOVE, path);
	/* gone on a second try: the first one removed it before it broke */
	if (r == -ENOENT && again)
		return 0;
	return r < 0 && r != -ENOENT && !c->broken ? server_error(s, r, "removal", name) : r;
}

static int sftp_remove(struct backend *b, const char *name)
{
	char what[256];

	snprintf(what, sizeof(what), "the removal of '%s'", name);
	return run((struct sftp *)b, what, op_remove, (void *)name);
}

struct stat_arg {
	const char *name;
	uint64_t size;
};

static int op_stat(struct sftp *s, struct conn *c, void *arg, bool again)
{
	struct stat_arg *st = arg;
	struct sftp_attrs a;
	char path[LOCATION_MAX + 300];
	int r = object_path(s, st->name, path, sizeof(path));

	(void)again;
	if (r < 0)
		return r;
	r = c_stat(s, c, path, &a);
	if (r < 0)
		return r == -ENOENT || c->broken ? r : server_error(s, r, "stat", st->name);
	if (!(a.flags & SFTP_ATTR_SIZE))
		return broke(c, -BCDR_ERR_PROTOCOL);
	st->size = a.size;
	return 0;
}

static int sftp_stat(struct backend *b, const char *name, uint64_t *ret_size)
{
	struct stat_arg st = { .name = name };
	char what[256];
	int r;

	snprintf(what, sizeof(what), "the stat of '%s'", name);
	r = run((struct sftp *)b, what, op_stat, &st);
	if (r >= 0)
		*ret_size = st.size;
	return r;
}

static int sftp_flush(struct backend *b)
{
	return remote_flush(((struct sftp *)b)->rm);
}

static void sftp_free(struct backend *b)
{
	struct sftp *s = (struct sftp *)b;

	remote_free(s->rm); /* waits for the uploads, which use connections */
	for (size_t i = 0; i < s->nidle; i++) {
		conn_end(s->idle[i]);
		conn_free(s->idle[i]);
	}
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->freed);
	free(s->idle);
	strv_free(s->argv);
	free(s->root);
	free(s->display);
	free(s->host);
	free(s);
}

static const struct backend_ops sftp_ops = {
	.get = sftp_get,
	.get_range = sftp_get_range,
	.get_upto = sftp_get_upto,
	.put = sftp_put,
	.list = sftp_list,
	.remove = sftp_remove,
	.stat = sftp_stat,
	.flush = sftp_flush,
	.free = sftp_free,
};

static int sftp_new(const struct location *loc, const struct backend_options *o, struct sftp **ret)
{
	struct sftp *s = calloc(1, sizeof(*s));
	struct remote_options ro = { .display = loc->display };
	const char *cmd = o->ssh_command ? o->ssh_command : getenv("BCDR_SSH_COMMAND");
	int r;

	if (!s)
		return -ENOMEM;
	s->b.ops = &sftp_ops;
	s->conns = o->connections ? o->connections : SFTP_DEFAULT_CONNECTIONS;
	if (s->conns > BACKEND_MAX_CONNECTIONS)
		s->conns = BACKEND_MAX_CONNECTIONS;
	s->max_attempts = o->retries < 0 ? 1 : o->retries == 0 ? 7 : (unsigned)o->retries + 1;
	s->max_time = 120 * USEC_PER_SEC;
	s->stall = o->timeout_usec ? o->timeout_usec : 60 * USEC_PER_SEC;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->freed, NULL);
	s->idle = calloc(s->conns, sizeof(*s->idle));
	s->root = strdup(loc->path);
	s->display = strdup(loc->display);
	s->host = strdup(loc->host);
	if (loc->port)
		snprintf(s->port_opt, sizeof(s->port_opt), " -p %u", loc->port);
	s->b.location = s->display;
	ro.connections = s->conns;
	if (!s->idle || !s->root || !s->display || !s->host) {
		r = -ENOMEM;
		goto fail;
	}
	r = sftp_ssh_argv(loc, cmd, &s->argv);
	if (r == -EINVAL)
		remote_set_error(r,
				 "%s is not a command (an unclosed quote, or more than %d words)",
				 o->ssh_command ? "the repository's ssh_command" : "BCDR_SSH_COMMAND",
				 SFTP_MAX_ARGS);
	if (r < 0)
		goto fail;
	if ((r = remote_new(&ro, &s->rm)) < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	sftp_free(&s->b);
	return r;
}

int backend_sftp_open(const struct location *loc, const struct backend_options *o,
		      struct backend **ret)
{
	struct sftp *s;
	int r = sftp_new(loc, o, &s);

	if (r < 0)
		return r;
	*ret = &s->b;
	return 0;
}

/* mkdir -p, for the repository's own directory. */
static int mkdir_p(struct sftp *s, struct conn *c, const char *path)
{
	struct sftp_attrs a;
	char parent[LOCATION_MAX];
	char *slash;
	int r = c_stat(s, c, path, &a);

	if (r >= 0)
		return (a.flags & SFTP_ATTR_PERMISSIONS) && !S_ISDIR(a.perms) ? -ENOTDIR : 0;
	if (r != -ENOENT)
		return r;
	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	while (slash && slash > parent && slash[1] == 0) { /* "a/b/" */
		*slash = 0;
		slash = strrchr(parent, '/');
	}
	if (slash && slash > parent) {
		*slash = 0;
		if ((r = mkdir_p(s, c, parent)) < 0)
			return r;
	}
	r = c_mkdir(s, c, path);
	if (r < 0 && !c->broken && c_stat(s, c, path, &a) >= 0)
		return 0; /* made meanwhile */
	return r;
}

static bool is_layout(const char *name, size_t len)
{
	for (size_t i = 0; i < ELEMENTSOF(layout); i++)
		if (strlen(layout[i]) == len && memcmp(layout[i], name, len) == 0)
			return true;
	return false;
}

/* The directory must be missing or empty; on a second try, the layout
 * the first one made is fine. */
static int op_create(struct sftp *s, struct conn *c, void *arg, bool again)
{
	struct sftp_handle h;
	int r = mkdir_p(s, c, s->root), r2;

	(void)arg;
	if (r >= 0)
		r = c_opendir(s, c, s->root, &h);
	if (r < 0)
		return c->broken ? r : server_error(s, r, "creation", s->root);
	for (int round = 0;; round++) {
		uint32_t id = c->next_id++;
		struct sftp_reply rep;
		struct sftp_names it;
		struct sftp_attrs a;
		const char *name;
		size_t len;

		if ((r = sftp_put_handle(&c->out, SFTP_READDIR, id, &h)) < 0 ||
		    (r = call(s, c, id, &rep)) < 0)
			break;
		if (rep.type != SFTP_NAME) {
			r = status_of(c, &rep);
			r = r == -ENODATA ? 0 : r < 0 ? r : broke(c, -BCDR_ERR_PROTOCOL);
			break;
		}
		/* "." and ".." come in the first batch or two */
		if (rep.count == 0 || round > 16) {
			r = broke(c, -BCDR_ERR_PROTOCOL);
			break;
		}
		sftp_names_begin(&rep, &it);
		while (r >= 0 && sftp_names_next(&it, &name, &len, &a) > 0)
			if (!(len == 1 && name[0] == '.') &&
			    !(len == 2 && !memcmp(name, "..", 2)) &&
			    !(again && is_layout(name, len)))
				r = -EEXIST;
		if (r < 0)
			break;
	}
	if (c->broken)
		return r;
	r2 = c_close(s, c, &h);
	if (r < 0)
		return r;
	if (r2 < 0)
		return r2;
	for (size_t i = 0; i < ELEMENTSOF(layout); i++) {
		char path[LOCATION_MAX + 300];

		if ((r = object_path(s, layout[i], path, sizeof(path))) < 0)
			return r;
		r = c_mkdir(s, c, path);
		if (r < 0 && !c->broken && again) {
			struct sftp_attrs a;

			if (c_stat(s, c, path, &a) >= 0)
				r = 0;
		}
		if (r < 0)
			return c->broken ? r : server_error(s, r, "creation", layout[i]);
	}
	return 0;
}

int backend_sftp_create(const struct location *loc, const struct backend_options *o,
			struct backend **ret)
{
	struct sftp *s;
	int r = sftp_new(loc, o, &s);

	if (r < 0)
		return r;
	r = run(s, "the creation of the repository", op_create, NULL);
	if (r < 0) {
		sftp_free(&s->b);
		return r;
	}
	*ret = &s->b;
	return 0;
}
