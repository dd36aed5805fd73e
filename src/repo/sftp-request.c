/* One SFTP connection's bytes and requests, and the pipelined transfer
 * (repo/sftp-request.h). */
#include "repo/sftp-request.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/err.h"

/* ---- one connection: bytes ---- */

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
			sftp_conn_drain_err(c);
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
				return sftp_conn_broke(c, r);
		} else {
			return sftp_conn_broke(c, -ECONNRESET); /* EPIPE: ssh is gone */
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
				return sftp_conn_broke(c, r);
		} else {
			return sftp_conn_broke(c, -ECONNRESET); /* EOF: ssh ended */
		}
	}
	return 0;
}

int sftp_send_out(struct sftp *s, struct conn *c)
{
	int r = 0;

	if (c->out.len)
		r = conn_write(c, (const uint8_t *)c->out.data, c->out.len, s->stall);
	buf_reset(&c->out);
	return r;
}

/* The printable start of a packet that made no sense, for the message. */
void sftp_keep_garbage(struct conn *c, const uint8_t *hdr)
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

int sftp_read_packet(struct sftp *s, struct conn *c)
{
	uint8_t hdr[4];
	uint32_t n;
	int r = conn_read(c, hdr, 4, s->stall);

	if (r < 0)
		return r;
	if (sftp_packet_length(hdr, &n) < 0) {
		sftp_keep_garbage(c, hdr);
		return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
	}
	c->pkt_len = n;
	return conn_read(c, c->pkt, n, s->stall);
}

int sftp_read_reply(struct sftp *s, struct conn *c, struct sftp_reply *rep)
{
	int r = sftp_read_packet(s, c);

	if (r < 0)
		return r;
	if (sftp_parse_reply(c->pkt, c->pkt_len, rep) < 0) {
		sftp_keep_garbage(c, c->pkt);
		return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
	}
	return 0;
}

/* Sends the request in c->out and reads its reply. */
int sftp_call(struct sftp *s, struct conn *c, uint32_t id, struct sftp_reply *rep)
{
	int r = sftp_send_out(s, c);

	if (r >= 0)
		r = sftp_read_reply(s, c, rep);
	if (r >= 0 && rep->id != id)
		return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
	return r;
}

/* A reply that must be a STATUS: its errno. */
int sftp_status_of(struct conn *c, const struct sftp_reply *rep)
{
	if (rep->type != SFTP_STATUS)
		return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
	return sftp_status_errno(rep->code);
}

/* ---- one connection: requests ---- */

int sftp_conn_stat(struct sftp *s, struct conn *c, const char *path, struct sftp_attrs *ret)
{
	uint32_t id = c->next_id++;
	struct sftp_reply rep;
	int r = sftp_put_path(&c->out, SFTP_STAT, id, path);

	if (r < 0 || (r = sftp_call(s, c, id, &rep)) < 0)
		return r;
	if (rep.type == SFTP_ATTRS) {
		*ret = rep.attrs;
		return 0;
	}
	r = sftp_status_of(c, &rep);
	return r < 0 ? r : sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
}

/* A request whose answer is a STATUS: REMOVE, RMDIR, MKDIR, RENAME. */
int sftp_conn_status(struct sftp *s, struct conn *c, uint32_t id)
{
	struct sftp_reply rep;
	int r = sftp_call(s, c, id, &rep);

	return r < 0 ? r : sftp_status_of(c, &rep);
}

int sftp_conn_path(struct sftp *s, struct conn *c, uint8_t type, const char *path)
{
	uint32_t id = c->next_id++;
	int r = sftp_put_path(&c->out, type, id, path);

	return r < 0 ? r : sftp_conn_status(s, c, id);
}

int sftp_conn_mkdir(struct sftp *s, struct conn *c, const char *path)
{
	uint32_t id = c->next_id++;
	int r = sftp_put_mkdir(&c->out, id, path, 0700);

	return r < 0 ? r : sftp_conn_status(s, c, id);
}

static int sftp_conn_handle_reply(struct sftp *s, struct conn *c, uint32_t id,
				  struct sftp_handle *h)
{
	struct sftp_reply rep;
	int r = sftp_call(s, c, id, &rep);

	if (r < 0)
		return r;
	if (rep.type == SFTP_HANDLE) {
		*h = rep.handle;
		return 0;
	}
	r = sftp_status_of(c, &rep);
	return r < 0 ? r : sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
}

int sftp_conn_open(struct sftp *s, struct conn *c, const char *path, uint32_t flags,
		   struct sftp_handle *h)
{
	uint32_t id = c->next_id++;
	int r = sftp_put_open(&c->out, id, path, flags, 0600);

	return r < 0 ? r : sftp_conn_handle_reply(s, c, id, h);
}

int sftp_conn_opendir(struct sftp *s, struct conn *c, const char *path, struct sftp_handle *h)
{
	uint32_t id = c->next_id++;
	int r = sftp_put_path(&c->out, SFTP_OPENDIR, id, path);

	return r < 0 ? r : sftp_conn_handle_reply(s, c, id, h);
}

int sftp_conn_close(struct sftp *s, struct conn *c, const struct sftp_handle *h)
{
	uint32_t id = c->next_id++;
	int r = sftp_put_handle(&c->out, SFTP_CLOSE, id, h);

	return r < 0 ? r : sftp_conn_status(s, c, id);
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
int sftp_transfer(struct sftp *s, struct conn *c, const struct sftp_handle *h, uint64_t off,
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
		if ((r = sftp_send_out(s, c)) < 0 || (r = sftp_read_reply(s, c, &rep)) < 0)
			return r;
		for (i = 0; i < nslots && slots[i].id != rep.id; i++)
			;
		if (i == nslots)
			return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
		sl = slots[i];
		slots[i] = slots[--nslots];
		if (into && rep.type == SFTP_DATA) {
			if (rep.data_len == 0 || rep.data_len > sl.len)
				return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
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
		r = sftp_status_of(c, &rep);
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
			return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL); /* OK is no answer to READ */
	}
	if (!err && into) {
		if (eof - off < need)
			return -BCDR_ERR_CORRUPT;
		if (ret_got)
			*ret_got = (size_t)(eof - off);
	}
	return err;
}

/* One READ of a stream: a chunk of the ring, filled up to len. */
struct sslot {
	uint32_t id, len, have;
	uint64_t off;
	bool pending; /* a READ of it is in flight */
};

/* The reply rep to one of the n slots from hd: its bytes into the slot's
 * buffer (the rest asked again when short), or its status. */
static int stream_reply(struct conn *c, const struct sftp_handle *h, struct sslot *sl,
			uint8_t *ring, size_t hd, size_t n, const struct sftp_reply *rep, int *err)
{
	struct sslot *t = NULL;
	size_t j = 0;
	int r;

	for (size_t k = 0; k < n && !t; k++) {
		j = (hd + k) % SFTP_WINDOW;
		if (sl[j].pending && sl[j].id == rep->id)
			t = &sl[j];
	}
	if (!t)
		return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
	t->pending = false;
	if (rep->type == SFTP_DATA) {
		if (rep->data_len == 0 || rep->data_len > t->len - t->have)
			return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
		memcpy(ring + j * SFTP_CHUNK + t->have, rep->data, rep->data_len);
		t->have += (uint32_t)rep->data_len;
		if (t->have < t->len && !*err) {
			t->id = c->next_id++;
			if ((r = sftp_put_read(&c->out, t->id, h, t->off + t->have,
					       t->len - t->have)) < 0)
				*err = r;
			else
				t->pending = true;
		}
		return 0;
	}
	r = sftp_status_of(c, rep);
	if (c->broken)
		return r;
	if (r == 0)
		return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL); /* OK is no answer to READ */
	if (!*err)
		*err = r == -ENODATA ? -BCDR_ERR_CORRUPT : r; /* EOF: the object is shorter */
	return 0;
}

int sftp_stream(struct sftp *s, struct conn *c, const struct sftp_handle *h, uint64_t off,
		uint64_t len, int (*fn)(const uint8_t *data, size_t len, void *ctx), void *ctx,
		uint64_t *delivered)
{
	struct sslot sl[SFTP_WINDOW];
	uint64_t next = off, end = off + len;
	size_t hd = 0, n = 0;
	int err = 0, r;
	_cleanup_free_ uint8_t *ring = malloc((size_t)SFTP_WINDOW * SFTP_CHUNK);

	if (!ring)
		return -ENOMEM;
	for (;;) {
		struct sftp_reply rep;

		while (!err && n < SFTP_WINDOW && next < end) {
			struct sslot *t = &sl[(hd + n) % SFTP_WINDOW];
			uint32_t k = end - next < SFTP_CHUNK ? (uint32_t)(end - next) : SFTP_CHUNK;

			*t = (struct sslot){ .id = c->next_id++, .len = k, .off = next, .pending = true };
			if ((r = sftp_put_read(&c->out, t->id, h, next, k)) < 0) {
				err = r;
				break;
			}
			n++;
			next += k;
		}
		/* the slots done, in order: delivered (or dropped after an error) */
		while (n && !sl[hd].pending) {
			if (!err && sl[hd].have == sl[hd].len) {
				if ((r = fn(ring + hd * SFTP_CHUNK, sl[hd].len, ctx)) < 0)
					err = r;
				else
					*delivered += sl[hd].len;
			} else if (!err) {
				err = -BCDR_ERR_CORRUPT;
			}
			hd = (hd + 1) % SFTP_WINDOW;
			n--;
		}
		if (!n && (err || next >= end))
			return err;
		if (!n)
			continue;
		if ((r = sftp_send_out(s, c)) < 0 || (r = sftp_read_reply(s, c, &rep)) < 0)
			return r;
		if ((r = stream_reply(c, h, sl, ring, hd, n, &rep, &err)) < 0)
			return r;
	}
}
