/* The balancer's data path: workers, each a thread with its own event_base
 * and its own SO_REUSEPORT listeners, owning the connections it accepted,
 * whose sockets sit in the worker's edge-triggered epoll set. Small reads
 * are copied through a stack buffer; bulk data moves socket -> pipe ->
 * socket with splice(), the pipe taken from a per-worker pool only while
 * bytes are in flight, so an idle connection holds two sockets and nothing
 * else. Workers read backend state through atomics; they tell the control
 * loop about failed connects through its wake-up (lb->notify, lib/wake),
 * and the control loop tells them to close connections of a failed backend
 * (or to stop) through theirs (w->notify). */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "lb/internal.h"
#include "lib/err.h"
#include "lib/log.h"

#define SPLICE_CHUNK (1u << 16)
#define ACCEPT_BURST 64
#define EWMA_DECAY_USEC (10.0 * 1e6) /* Finagle's default decay time */

static void set_linger0(int fd)
{
	struct linger l = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

#define KEEPALIVE_IDLE_S 60
#define KEEPALIVE_INTVL_S 10
#define KEEPALIVE_CNT 6
/* How long keepalive takes to find a dead peer. */
#define KEEPALIVE_DETECT_USEC \
	((usec_t)(KEEPALIVE_IDLE_S + KEEPALIVE_INTVL_S * KEEPALIVE_CNT) * USEC_PER_SEC)

static void set_keepalive(int fd)
{
	int one = 1, idle = KEEPALIVE_IDLE_S, intvl = KEEPALIVE_INTVL_S, cnt = KEEPALIVE_CNT;

	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Nagle off, keepalive on. Set once on a listener, accepted sockets
 * inherit it (the kernel clones the socket): no system calls per client. */
static void tune_listener(int fd)
{
	set_nodelay(fd);
	set_keepalive(fd);
}

/* A backend socket gets Nagle off (one call). Keepalive only when it could
 * find a dead backend before the idle timeout closes the connection
 * anyway (health checks close them sooner still): four calls saved per
 * connection with the default 60 s idle timeout. */
static void tune_backend_socket(const struct balancer *bal, int fd)
{
	set_nodelay(fd);
	if (bal->idle_timeout > KEEPALIVE_DETECT_USEC)
		set_keepalive(fd);
}

/* Small reads go through recv()/send() and a buffer on the stack: a copy
 * each way, but no pipe to fill and empty, and a client's first bytes can
 * be read before the backend's connect completes (conn_push_first). A read
 * that fills the buffer predicts a bulk transfer: the next reads splice()
 * through a pipe, without copies, as HAProxy does for large transfers.
 * The buffer is one page: what dst cannot take at once always fits an
 * empty pipe (a pipe holds at least a page, however short of pages). */
#define COPY_CHUNK 4096
/* Reads of one direction in a row before other connections get a turn. */
#define PUMP_ROUNDS 16
#define EPOLL_BATCH 64

/* Connection sockets live in a worker-private epoll set, edge-triggered
 * and registered once for reading and writing: a connection costs two
 * epoll_ctl calls (libevent's level-triggered events need four to six:
 * add, change and delete as the interest moves, a delete before each
 * close), and closing a socket drops it from the set. The set's descriptor
 * is one event of the worker's libevent loop, which also runs the timers,
 * listeners and notifications. Edge-triggered means the kernel reports a
 * change once: what it said is kept in the flags below until a read or
 * write says EAGAIN. */
struct dir {
	int pipe[2];     /* -1 when none is held */
	size_t pending;  /* bytes in the pipe */
	bool bulk;       /* the last read filled COPY_CHUNK: splice the next */
	bool readable;   /* src may have bytes (no EAGAIN since epoll said so) */
	bool fin;        /* epoll saw src's FIN (EPOLLRDHUP) */
	bool writable;   /* dst may take bytes */
	bool eof;        /* the source said EOF */
	bool shut;       /* EOF passed on: shutdown(dst, SHUT_WR) done */
	bool blocked;    /* bytes wait in the pipe for dst, src is not read */
};

enum conn_phase { PHASE_WAIT_DATA, PHASE_CONNECTING, PHASE_ESTABLISHED };
enum conn_side { SIDE_CLIENT, SIDE_SERVER };

/* Epoll data of a socket: which connection, checked against a generation
 * so that events still queued for a closed connection (or for a socket a
 * forked child still holds open) are dropped, not read from freed memory. */
#define EPOLL_DATA(slot, gen, side) \
	(((uint64_t)(gen) << 32) | ((uint64_t)(slot) << 1) | (uint64_t)(side))

struct slot {
	struct conn *c; /* NULL when free */
	uint32_t gen;
	uint32_t next_free;
};

struct conn {
	struct worker *w;
	struct balancer *bal;
	struct backend *be;
	struct conn *prev, *next;
	uint32_t slot, gen;
	int cfd, sfd;
	bool cfd_watched;
	enum conn_phase phase;
	struct dir up, down; /* client -> server, server -> client */
	unsigned attempts;
	unsigned kill_gen;
	uint64_t tried[LB_MAX_BACKENDS / 64];
	uint64_t hash;
	usec_t connect_start, last_activity, request_at;
	struct event *timer; /* connect, first data or idle timeout */
	_Alignas(16) char evmem[]; /* the timer: event_get_struct_event_size() */
};

#define NO_SLOT UINT32_MAX

static int slot_take(struct worker *w, struct conn *c)
{
	uint32_t i = w->free_slot;

	if (i == NO_SLOT) {
		if (w->n_slots == w->cap_slots) {
			uint32_t cap = w->cap_slots ? w->cap_slots * 2 : 256;
			struct slot *s;

			if (cap > (1u << 30))
				return -ENOMEM;
			s = realloc(w->slots, cap * sizeof(*s));
			if (!s)
				return -ENOMEM;
			w->slots = s;
			w->cap_slots = cap;
		}
		i = w->n_slots++;
		w->slots[i].gen = 0;
	} else {
		w->free_slot = w->slots[i].next_free;
	}
	w->slots[i].c = c;
	c->slot = i;
	c->gen = w->slots[i].gen;
	return 0;
}

static void slot_release(struct worker *w, struct conn *c)
{
	struct slot *s = &w->slots[c->slot];

	s->c = NULL;
	s->gen++;
	s->next_free = w->free_slot;
	w->free_slot = c->slot;
}

static int watch(struct conn *c, int fd, enum conn_side side, int op)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.u64 = EPOLL_DATA(c->slot, c->gen, side),
	};

	return epoll_ctl(c->w->epfd, op, fd, &ev);
}

static void take_pipe(struct worker *w, struct dir *d)
{
	if (d->pipe[0] >= 0)
		return;
	if (w->n_pipes > 0) {
		w->n_pipes--;
		d->pipe[0] = w->pipes[w->n_pipes][0];
		d->pipe[1] = w->pipes[w->n_pipes][1];
		return;
	}
	if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		d->pipe[0] = d->pipe[1] = -1;
}

static void give_pipe(struct worker *w, struct dir *d)
{
	if (d->pipe[0] < 0)
		return;
	if (d->pending == 0 && w->n_pipes < PIPE_POOL_MAX) {
		w->pipes[w->n_pipes][0] = d->pipe[0];
		w->pipes[w->n_pipes][1] = d->pipe[1];
		w->n_pipes++;
	} else {
		close(d->pipe[0]);
		close(d->pipe[1]);
	}
	d->pipe[0] = d->pipe[1] = -1;
	d->pending = 0;
}

static void release_backend(struct conn *c)
{
	if (!c->be)
		return;
	atomic_fetch_sub_explicit(&c->be->conns, 1, memory_order_relaxed);
	c->be = NULL;
}

static void conn_close(struct conn *c, bool reset)
{
	struct worker *w = c->w;

	event_del(c->timer);
	give_pipe(w, &c->up);
	give_pipe(w, &c->down);
	/* close() drops the sockets from the epoll set: no EPOLL_CTL_DEL. */
	if (c->sfd >= 0) {
		if (reset)
			set_linger0(c->sfd);
		close(c->sfd);
	}
	if (c->cfd >= 0) {
		if (reset)
			set_linger0(c->cfd);
		close(c->cfd);
	}
	release_backend(c);
	atomic_fetch_sub_explicit(&c->bal->conns, 1, memory_order_relaxed);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->n_conns--;
	slot_release(w, c);
	free(c);
	if (w->n_conns == 0) {
		/* Nothing in flight: give the pooled pipes back to the kernel. */
		while (w->n_pipes > 0) {
			w->n_pipes--;
			close(w->pipes[w->n_pipes][0]);
			close(w->pipes[w->n_pipes][1]);
		}
	}
}

static bool tried(const struct conn *c, unsigned idx)
{
	return c->tried[idx / 64] & (1ull << (idx % 64));
}

static struct backend *pick_backend(struct worker *w, struct conn *c)
{
	struct balancer *bal = c->bal;
	struct lb_algo *algo = &w->algos[bal->idx];
	unsigned nb = atomic_load_explicit(&bal->n_backends, memory_order_acquire);
	struct lb_cand cand[LB_MAX_BACKENDS];
	size_t n = 0;

	for (int pass = 0; pass < 2 && n == 0; pass++) {
		/* Backups serve only while no primary is usable. */
		for (int tier = 0; tier < 2 && n == 0; tier++) {
			bool tier_usable = false;

			for (unsigned i = 0; i < nb; i++) {
				struct backend *be = bal->backends[i];
				unsigned eff, mc, conns;

				if (atomic_load_explicit(&be->backup, memory_order_relaxed) !=
					    (tier == 1) ||
				    /* acquire: a reused slot's address and name */
				    !atomic_load_explicit(&be->usable, memory_order_acquire))
					continue;
				eff = atomic_load_explicit(&be->eff_weight, memory_order_relaxed);
				if (eff == 0)
					continue;
				tier_usable = true;
				if (pass == 0 && tried(c, i))
					continue;
				mc = atomic_load_explicit(&be->maxconn, memory_order_relaxed);
				conns = atomic_load_explicit(&be->conns, memory_order_relaxed);
				if (mc && conns >= mc)
					continue;
				cand[n++] = (struct lb_cand){ i, eff, conns,
							      lb_load_double(&be->ewma_bits) };
			}
			if (tier_usable)
				break;
		}
	}
	if (n == 0)
		return NULL;
	if (bal->algorithm == LB_ALGO_MAGLEV) {
		uint64_t gen = atomic_load_explicit(&bal->generation, memory_order_acquire);

		if (!algo->maglev || algo->maglev_generation != gen) {
			const char *names[LB_MAX_BACKENDS];
			unsigned idx[LB_MAX_BACKENDS], weights[LB_MAX_BACKENDS];
			size_t m = 0;
			bool backups = atomic_load(&bal->backends[cand[0].idx]->backup);

			/* The table holds every usable backend of the serving
			 * tier, so a full or just-failed one moves only its own
			 * clients. */
			for (unsigned i = 0; i < nb; i++) {
				struct backend *be = bal->backends[i];
				unsigned eff = atomic_load(&be->eff_weight);

				if (atomic_load(&be->backup) != backups ||
				    !atomic_load(&be->usable) || eff == 0)
					continue;
				names[m] = be->name;
				idx[m] = i;
				weights[m++] = eff;
			}
			if (m > 0)
				lb_algo_maglev_build(algo, names, idx, weights, m, gen);
		}
	}
	return bal->backends[cand[lb_algo_pick(algo, cand, n, c->hash)].idx];
}

static void conn_connect(struct conn *c);

static void note_activity(struct conn *c)
{
	c->last_activity = now_monotonic();
}

static void sample_response(struct conn *c, usec_t now)
{
	struct backend *be = c->be;
	usec_t sample = now - c->request_at;
	uint64_t last = atomic_load_explicit(&be->ewma_stamp, memory_order_relaxed);
	double cur = lb_load_double(&be->ewma_bits), s = (double)sample;

	c->request_at = 0;
	lb_hist_add(&be->response_lat, sample);
	/* Peak EWMA: jump to a worse sample at once, decay towards better. */
	if (s > cur || last == 0) {
		cur = s;
	} else {
		double wgt = exp(-(double)(now > last ? now - last : 0) / EWMA_DECAY_USEC);

		cur = cur * wgt + s * (1.0 - wgt);
	}
	lb_store_double(&be->ewma_bits, cur);
	atomic_store_explicit(&be->ewma_stamp, now, memory_order_relaxed);
}

/* Moves what the pipe of d holds to dst. Returns -1 when c was closed. */
static int dir_flush(struct conn *c, struct dir *d, int dst)
{
	while (d->pending > 0) {
		ssize_t m = splice(d->pipe[0], NULL, dst, NULL, d->pending,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);

		if (m > 0) {
			d->pending -= (size_t)m;
			continue;
		}
		if (m < 0 && errno == EINTR)
			continue;
		if (m < 0 && errno == EAGAIN) {
			d->blocked = true;
			d->writable = false;
			return 0;
		}
		conn_close(c, true);
		return -1;
	}
	give_pipe(c->w, d);
	d->blocked = false;
	if (d->eof && !d->shut) {
		struct dir *other = d == &c->up ? &c->down : &c->up;

		/* EOF went the other way already: close, which sends the
		 * FIN, rather than shutdown() then close(). */
		if (other->shut) {
			conn_close(c, false);
			return -1;
		}
		shutdown(dst, SHUT_WR);
		d->shut = true;
	}
	return 0;
}

/* The direction's pipe, from the pool or new; without one (out of file
 * descriptors) the connection is closed and -1 returned. */
static int dir_need_pipe(struct conn *c, struct dir *d)
{
	take_pipe(c->w, d);
	if (d->pipe[0] < 0) {
		conn_close(c, true);
		return -1;
	}
	return 0;
}

/* Keeps in d's pipe the len bytes dst could not take (len <= COPY_CHUNK,
 * the pipe is empty) and stops reading src until they are gone. Returns
 * -1 when c was closed. */
static int dir_keep(struct conn *c, struct dir *d, const char *buf, size_t len)
{
	ssize_t m;

	if (dir_need_pipe(c, d) < 0)
		return -1;
	do {
		m = write(d->pipe[1], buf, len);
	} while (m < 0 && errno == EINTR);
	if (m != (ssize_t)len) {
		conn_close(c, true);
		return -1;
	}
	d->pending = len;
	d->blocked = true;
	d->writable = false;
	return 0;
}

static void count_read(struct conn *c, size_t n, bool upstream)
{
	usec_t now = now_monotonic();

	c->last_activity = now;
	if (upstream) {
		atomic_fetch_add_explicit(&c->be->bytes_in, n, memory_order_relaxed);
		if (c->request_at == 0)
			c->request_at = now;
	} else {
		atomic_fetch_add_explicit(&c->be->bytes_out, n, memory_order_relaxed);
		if (c->request_at)
			sample_response(c, now);
	}
}

/* A bulk read: src -> pipe -> dst with splice(), no copy. A short splice
 * may only mean a full pipe, so src stays readable until EAGAIN. */
static int dir_pump_splice(struct conn *c, struct dir *d, int src, int dst, bool upstream)
{
	ssize_t n;

	if (dir_need_pipe(c, d) < 0)
		return -1;
	do {
		n = splice(src, NULL, d->pipe[1], NULL, SPLICE_CHUNK,
			   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	} while (n < 0 && errno == EINTR);
	if (n > 0) {
		d->pending += (size_t)n;
		d->bulk = n >= COPY_CHUNK;
		count_read(c, (size_t)n, upstream);
	} else if (n == 0) {
		d->eof = true;
		d->readable = false;
	} else if (errno == EAGAIN) {
		d->readable = false;
		give_pipe(c->w, d);
		return 0;
	} else {
		conn_close(c, true);
		return -1;
	}
	return dir_flush(c, d, dst);
}

/* One read from src, passed on to dst. Returns -1 when c was closed. */
static int dir_pump(struct conn *c, struct dir *d, int src, int dst, bool upstream)
{
	char buf[COPY_CHUNK];
	ssize_t n, m;

	if (d->bulk)
		return dir_pump_splice(c, d, src, dst, upstream);
	do {
		n = recv(src, buf, sizeof(buf), 0);
	} while (n < 0 && errno == EINTR);
	if (n == 0) {
		d->eof = true;
		d->readable = false;
		return dir_flush(c, d, dst);
	}
	if (n < 0) {
		if (errno == EAGAIN) {
			d->readable = false;
			return 0;
		}
		conn_close(c, true);
		return -1;
	}
	count_read(c, (size_t)n, upstream);
	d->bulk = n == (ssize_t)sizeof(buf);
	if (!d->bulk) {
		/* A short TCP read emptied the socket: nothing more until
		 * epoll says so. If the FIN is in, this was the end: no
		 * further read only to be told so. */
		d->readable = false;
		d->eof = d->fin;
	}
	do {
		m = send(dst, buf, (size_t)n, MSG_NOSIGNAL);
	} while (m < 0 && errno == EINTR);
	if (m < 0 && errno != EAGAIN) {
		conn_close(c, true);
		return -1;
	}
	if (m < n)
		return dir_keep(c, d, buf + (m > 0 ? m : 0), (size_t)(n - (m > 0 ? m : 0)));
	return d->eof ? dir_flush(c, d, dst) : 0;
}

/* Moves what can move from src to dst. Returns -1 when c was closed. */
static int dir_run(struct conn *c, struct dir *d, int src, int dst, bool upstream)
{
	if (d->blocked) {
		if (!d->writable)
			return 0;
		note_activity(c);
		if (dir_flush(c, d, dst) < 0)
			return -1;
		if (d->blocked)
			return 0;
	}
	for (int i = 0; d->readable && !d->eof && !d->blocked; i++) {
		if (i == PUMP_ROUNDS) {
			/* Let other connections have a turn: re-adding the
			 * socket makes epoll report it again. */
			watch(c, src, upstream ? SIDE_CLIENT : SIDE_SERVER, EPOLL_CTL_MOD);
			return 0;
		}
		if (dir_pump(c, d, src, dst, upstream) < 0)
			return -1;
	}
	return 0;
}

static void conn_io(struct conn *c)
{
	if (dir_run(c, &c->up, c->cfd, c->sfd, true) < 0)
		return;
	dir_run(c, &c->down, c->sfd, c->cfd, false);
}

static void connect_failed(struct conn *c, int err);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	usec_t now = now_monotonic(), idle = c->bal->idle_timeout;

	(void)fd;
	(void)what;
	switch (c->phase) {
	case PHASE_WAIT_DATA:
		conn_close(c, false);
		return;
	case PHASE_CONNECTING:
		connect_failed(c, ETIMEDOUT);
		return;
	case PHASE_ESTABLISHED:
		if (now - c->last_activity < idle) {
			struct timeval tv = lb_tv_of(idle - (now - c->last_activity));

			event_add(c->timer, &tv);
			return;
		}
		conn_close(c, true);
		return;
	}
}

static int watch_client(struct conn *c)
{
	if (c->cfd_watched)
		return 0;
	if (watch(c, c->cfd, SIDE_CLIENT, EPOLL_CTL_ADD) < 0)
		return -errno;
	c->cfd_watched = true;
	return 0;
}

static void conn_established(struct conn *c)
{
	usec_t now = now_monotonic();
	struct timeval idle = lb_tv_of(c->bal->idle_timeout);

	lb_hist_add(&c->be->connect_lat, now - c->connect_start);
	c->phase = PHASE_ESTABLISHED;
	c->last_activity = now;
	event_add(c->timer, &idle);
	if (watch_client(c) < 0) {
		conn_close(c, true);
		return;
	}
	/* Bytes the backend could not take while connecting, or the
	 * client's EOF, go on now; so does what epoll reported meanwhile. */
	if (c->up.pending > 0) {
		c->up.blocked = true;
		c->up.writable = true;
	} else if (c->up.eof && dir_flush(c, &c->up, c->sfd) < 0) {
		return;
	}
	conn_io(c);
}

static void connect_failed(struct conn *c, int err)
{
	struct backend *be = c->be;

	atomic_fetch_add_explicit(&be->connect_errors, 1, memory_order_relaxed);
	atomic_store_explicit(&be->last_errno, err, memory_order_relaxed);
	atomic_fetch_add_explicit(&be->passive_fails, 1, memory_order_relaxed);
	wake_signal(c->w->lb->notify);
	/* Out of the set before close(): a child forked meanwhile may hold
	 * the socket open, and its events would look like the next one's. */
	epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->sfd, NULL);
	close(c->sfd);
	c->sfd = -1;
	c->down.readable = c->down.fin = c->up.writable = false;
	release_backend(c);
	if (c->attempts > c->bal->retries) {
		atomic_fetch_add_explicit(&c->bal->failed, 1, memory_order_relaxed);
		conn_close(c, true);
		return;
	}
	atomic_fetch_add_explicit(&c->bal->redispatched, 1, memory_order_relaxed);
	conn_connect(c);
}

/* Writes what the up pipe holds (from a failed attempt) to the connecting
 * backend: 1 when some went, so the connect is done; 0 when it cannot be
 * written yet; -errno when the connect failed. */
static int push_held(struct conn *c)
{
	ssize_t m;

	do {
		m = splice(c->up.pipe[0], NULL, c->sfd, NULL, c->up.pending,
			   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	} while (m < 0 && errno == EINTR);
	if (m > 0) {
		c->up.pending -= (size_t)m;
		return 1;
	}
	return m < 0 && errno != EAGAIN ? -errno : 0;
}

/* push_held(), acted on: true when that settled the connect (established,
 * or failed: redispatched or closed, c may be gone). */
static bool push_held_settles(struct conn *c)
{
	int r = push_held(c);

	if (r < 0)
		connect_failed(c, -r);
	else if (r > 0)
		conn_established(c);
	return r != 0;
}

/* epoll reported the connecting socket writable or in error. */
static void connect_ready(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (c->up.pending > 0 && push_held_settles(c))
		return;
	/* Nothing to write that would tell: ask the socket. */
	if (getsockopt(c->sfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		connect_failed(c, err);
		return;
	}
	conn_established(c);
}

/* Right after connect(): read what the client sent and write it to the
 * backend at once (HAProxy's speculative I/O). On loopback and fast links
 * the handshake is over by the time connect() returns, so this one write
 * both delivers the request and proves the connection: no wait for
 * writability and no getsockopt(SO_ERROR). What the backend cannot take
 * yet stays in the up pipe, so a failed connect redispatches it whole to
 * the next backend. */
static void conn_push_first(struct conn *c)
{
	struct dir *d = &c->up;
	char buf[COPY_CHUNK];
	ssize_t n, m;

	if (d->pending > 0) {
		if (push_held_settles(c))
			return;
	} else if (!d->eof) {
		n = recv(c->cfd, buf, sizeof(buf), 0);
		/* What epoll will not report again: more bytes after a full
		 * read, or a read cut short by a signal. */
		d->readable = n == (ssize_t)sizeof(buf) || (n < 0 && errno == EINTR);
		if (n == 0) {
			d->eof = true;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			conn_close(c, true);
			return;
		} else if (n > 0) {
			count_read(c, (size_t)n, true);
			d->bulk = n == (ssize_t)sizeof(buf);
			if (!d->bulk)
				d->eof = d->fin;
			m = send(c->sfd, buf, (size_t)n, MSG_NOSIGNAL);
			if (m < 0 && errno != EAGAIN && errno != EINTR) {
				int err = errno;

				if (dir_keep(c, d, buf, (size_t)n) == 0)
					connect_failed(c, err);
				return;
			}
			if (m < n && dir_keep(c, d, buf + (m > 0 ? m : 0),
					      (size_t)(n - (m > 0 ? m : 0))) < 0)
				return;
			if (m > 0) {
				conn_established(c);
				return;
			}
		}
	}
	/* Still connecting: epoll reports the socket writable when done. */
	if (watch_client(c) < 0)
		conn_close(c, true);
}

static void conn_connect(struct conn *c)
{
	struct backend *be;
	struct timeval tv = lb_tv_of(c->bal->connect_timeout);
	int fd, err;

	be = pick_backend(c->w, c);
	if (!be) {
		atomic_fetch_add_explicit(&c->bal->failed, 1, memory_order_relaxed);
		conn_close(c, true);
		return;
	}
	c->be = be;
	c->attempts++;
	c->tried[be->idx / 64] |= 1ull << (be->idx % 64);
	c->kill_gen = atomic_load_explicit(&be->kill_gen, memory_order_relaxed);
	atomic_fetch_add_explicit(&be->conns, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&be->total, 1, memory_order_relaxed);
	c->phase = PHASE_CONNECTING;
	c->connect_start = now_monotonic();
	fd = socket(be->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		atomic_fetch_add_explicit(&c->bal->failed, 1, memory_order_relaxed);
		conn_close(c, true);
		return;
	}
	c->sfd = fd;
	tune_backend_socket(c->bal, fd);
	event_add(c->timer, &tv);
	err = connect(fd, (struct sockaddr *)&be->addr, be->addrlen) == 0 ? 0 : errno;
	if (err && err != EINPROGRESS) {
		connect_failed(c, err);
		return;
	}
	/* Watched once connect() started: a socket not yet connecting
	 * polls as hung up. */
	if (watch(c, fd, SIDE_SERVER, EPOLL_CTL_ADD) < 0) {
		atomic_fetch_add_explicit(&c->bal->failed, 1, memory_order_relaxed);
		conn_close(c, true);
		return;
	}
	if (err == 0)
		conn_established(c);
	else
		conn_push_first(c);
}

static void conn_new(struct worker *w, struct balancer *bal, int cfd, const struct sockaddr *sa)
{
	struct conn *c = calloc(1, sizeof(*c) + event_get_struct_event_size());

	if (!c || slot_take(w, c) < 0) {
		free(c);
		atomic_fetch_sub_explicit(&bal->conns, 1, memory_order_relaxed);
		set_linger0(cfd);
		close(cfd);
		return;
	}
	c->w = w;
	c->bal = bal;
	c->cfd = cfd;
	c->sfd = -1;
	c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
	c->timer = (struct event *)c->evmem;
	evtimer_assign(c->timer, w->base, on_timer, c);
	if (sa->sa_family == AF_INET)
		c->hash = lb_hash(&((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		c->hash = lb_hash(&((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->n_conns++;
	if (bal->connect_on_data) {
		/* Hold no backend connection for a client that says nothing:
		 * connect when its first bytes arrive (not for protocols where
		 * the server speaks first). */
		struct timeval idle = lb_tv_of(bal->idle_timeout);

		c->phase = PHASE_WAIT_DATA;
		if (watch_client(c) < 0) {
			conn_close(c, true);
			return;
		}
		event_add(c->timer, &idle);
		return;
	}
	conn_connect(c);
}

static void on_conn_events(evutil_socket_t epfd, short what, void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[EPOLL_BATCH];
	int n;

	(void)what;
	n = epoll_wait(epfd, evs, EPOLL_BATCH, 0);
	for (int i = 0; i < n; i++) {
		uint64_t data = evs[i].data.u64;
		uint32_t slot = (uint32_t)(data >> 1) & 0x7fffffffu, e = evs[i].events;
		enum conn_side side = (enum conn_side)(data & 1);
		struct conn *c;
		struct dir *rd, *wr;

		if (slot >= w->n_slots || w->slots[slot].gen != (uint32_t)(data >> 32) ||
		    !(c = w->slots[slot].c))
			continue; /* closed since */
		/* The client socket is read by up and written by down. */
		rd = side == SIDE_CLIENT ? &c->up : &c->down;
		wr = side == SIDE_CLIENT ? &c->down : &c->up;
		if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			rd->readable = true;
		if (e & EPOLLRDHUP)
			rd->fin = true;
		if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			wr->writable = true;
		switch (c->phase) {
		case PHASE_WAIT_DATA:
			if (c->up.readable) {
				event_del(c->timer);
				conn_connect(c);
			}
			break;
		case PHASE_CONNECTING:
			if (side == SIDE_SERVER && (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
				connect_ready(c);
			break;
		case PHASE_ESTABLISHED:
			conn_io(c);
			break;
		}
	}
}

static void refuse(struct balancer *bal, int fd, const char *why)
{
	usec_t now = now_monotonic();
	uint64_t last = atomic_load_explicit(&bal->refuse_logged_at, memory_order_relaxed);

	atomic_fetch_add_explicit(&bal->refused, 1, memory_order_relaxed);
	/* A reset, not a silent close: the client knows at once. */
	set_linger0(fd);
	close(fd);
	if (now - last > 10 * USEC_PER_SEC &&
	    atomic_compare_exchange_strong(&bal->refuse_logged_at, &last, now))
		log_warning("balancer '%s': refusing connections: %s", bal->name, why);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct listener *l = arg;
	struct worker *w = l->w;
	struct balancer *bal = l->bal;

	(void)what;
	/* A reserve lost to another thread's open between its close and its
	 * reopen below is taken again once an fd is free. */
	if (w->reserve_fd < 0)
		w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if ((errno == EMFILE || errno == ENFILE) && w->reserve_fd >= 0) {
				/* Out of fds: free the reserve to take the client off
				 * the queue and refuse it, rather than spin. */
				close(w->reserve_fd);
				fd = accept(lfd, NULL, NULL);
				if (fd >= 0)
					refuse(bal, fd, "out of file descriptors");
				w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			}
			return;
		}
		if (atomic_fetch_add_explicit(&bal->conns, 1, memory_order_relaxed) >=
		    bal->max_conns) {
			char why[64];

			atomic_fetch_sub_explicit(&bal->conns, 1, memory_order_relaxed);
			snprintf(why, sizeof(why), "max_conns %u reached", bal->max_conns);
			refuse(bal, fd, why);
			continue;
		}
		atomic_fetch_add_explicit(&bal->accepted, 1, memory_order_relaxed);
		conn_new(w, bal, fd, (struct sockaddr *)&ss);
	}
}

/* Closes the connections whose backend failed or went to maintenance. */
static void worker_kill_stale(struct worker *w)
{
	struct conn *c = w->conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->be && c->phase == PHASE_ESTABLISHED &&
		    c->kill_gen != atomic_load_explicit(&c->be->kill_gen, memory_order_relaxed))
			conn_close(c, true);
	}
}

static void worker_close_all(struct worker *w)
{
	while (w->conns)
		conn_close(w->conns, false);
}

static void on_worker_notify(void *arg)
{
	struct worker *w = arg;

	if (atomic_load(&w->stop)) {
		worker_close_all(w);
		event_base_loopbreak(w->base);
		return;
	}
	worker_kill_stale(w);
	/* Between two events: no pick_backend() of before the removals up to
	 * this epoch is still running, so their slots may be reused. */
	atomic_store(&w->seen_epoch, atomic_load(&w->lb->epoch));
}

void *lb_worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_dispatch(w->base);
	worker_close_all(w);
	return NULL;
}

/* ---- setting up ---- */

static int bind_listener(const char *address, bool reuseport, int *ret_fd)
{
	struct sockaddr_storage ss;
	unsigned len;
	int one = 1, fd;

	if (lb_parse_address(address, &ss, &len) < 0)
		return -EINVAL;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	tune_listener(fd);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4096) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int lb_worker_init(struct lb *lb, struct worker *w, unsigned idx, bool own_base,
		   char **ret_error)
{
	size_t total = 0, k = 0;
	int r;

	w->lb = lb;
	w->idx = idx;
	w->epfd = -1;
	w->free_slot = NO_SLOT;
	w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	w->own_base = own_base;
	w->base = own_base ? event_base_new() : lb->base;
	w->algos = calloc(lb->n_balancers ? lb->n_balancers : 1, sizeof(*w->algos));
	if (!w->base || !w->algos)
		return -ENOMEM;
	for (size_t b = 0; b < lb->n_balancers; b++) {
		lb_algo_init(&w->algos[b], lb->balancers[b].algorithm,
			     (uint64_t)now_realtime() ^ ((uint64_t)idx << 32) ^ b);
		for (char **l = lb->balancers[b].listen; *l; l++)
			total++;
	}
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0)
		return -errno;
	w->epev = event_new(w->base, w->epfd, EV_READ | EV_PERSIST, on_conn_events, w);
	if (!w->epev || event_add(w->epev, NULL) < 0)
		return -ENOMEM;
	r = wake_new(w->base, on_worker_notify, w, &w->notify);
	if (r < 0)
		return r;
	w->listeners = calloc(total ? total : 1, sizeof(*w->listeners));
	if (!w->listeners)
		return -ENOMEM;
	for (size_t b = 0; b < lb->n_balancers; b++) {
		for (char **l = lb->balancers[b].listen; *l; l++, k++) {
			struct listener *li = &w->listeners[k];

			li->fd = -1;
			li->bal = &lb->balancers[b];
			li->w = w;
			w->n_listeners = k + 1;
			r = bind_listener(*l, true, &li->fd);
			if (r < 0) {
				if (asprintf(ret_error, "cannot listen on '%s' (balancer '%s'): %s",
					     *l, li->bal->name, err_str(r)) < 0)
					*ret_error = NULL;
				return r;
			}
			li->ev = event_new(w->base, li->fd, EV_READ | EV_PERSIST, on_accept, li);
			if (!li->ev || event_add(li->ev, NULL) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

void lb_worker_release(struct worker *w)
{
	if (!w->lb)
		return; /* never initialised: lb_start failed before it */
	worker_close_all(w);
	for (size_t i = 0; i < w->n_listeners; i++) {
		if (w->listeners[i].ev)
			event_free(w->listeners[i].ev);
		if (w->listeners[i].fd >= 0)
			close(w->listeners[i].fd);
	}
	free(w->listeners);
	w->listeners = NULL;
	w->n_listeners = 0;
	for (size_t i = 0; i < w->n_pipes; i++) {
		close(w->pipes[i][0]);
		close(w->pipes[i][1]);
	}
	w->n_pipes = 0;
	wake_free(w->notify);
	w->notify = NULL;
	if (w->epev)
		event_free(w->epev);
	w->epev = NULL;
	if (w->epfd >= 0)
		close(w->epfd);
	w->epfd = -1;
	free(w->slots);
	w->slots = NULL;
	w->n_slots = w->cap_slots = 0;
	w->free_slot = NO_SLOT;
	if (w->reserve_fd >= 0)
		close(w->reserve_fd);
	w->reserve_fd = -1;
	if (w->algos)
		for (size_t b = 0; b < w->lb->n_balancers; b++)
			lb_algo_release(&w->algos[b]);
	free(w->algos);
	w->algos = NULL;
	if (w->own_base && w->base)
		event_base_free(w->base);
	w->base = NULL;
}

