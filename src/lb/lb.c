/* The balancer engine. Layout:
 *   - the control loop (the caller's event_base): health and agent checks,
 *     backend state, events, status, reload, the control socket;
 *   - workers: one thread each with its own event_base and its own
 *     SO_REUSEPORT listeners, owning the connections it accepted, whose
 *     sockets sit in the worker's edge-triggered epoll set. Small reads are
 *     copied through a stack buffer; bulk data moves socket -> pipe ->
 *     socket with splice(), the pipe taken from a per-worker pool only while
 *     bytes are in flight, so an idle connection holds two sockets and
 *     nothing else.
 * Workers read backend state through atomics; they tell the control loop
 * about failed connects through an eventfd, and the control loop tells them
 * to close connections of a failed backend (or to stop) through theirs. */
#include "lb/lb.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lb/algo.h"
#include "lb/control.h"
#include "lb/report.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"

#define PIPE_POOL_MAX 64
#define SPLICE_CHUNK (1u << 16)
#define ACCEPT_BURST 64
#define EWMA_DECAY_USEC (10.0 * 1e6) /* Finagle's default decay time */
#define RAMP_TICK_USEC (100 * USEC_PER_MSEC)

/* Latency histogram buckets (milliseconds), the last one +Inf. */
#define HIST_N 14
static const double hist_bounds_ms[HIST_N - 1] = { 0.5, 1, 2.5, 5, 10, 25, 50, 100,
						   250, 500, 1000, 2500, 5000 };

struct hist {
	_Atomic uint64_t bucket[HIST_N];
	_Atomic uint64_t sum_us, count;
};

enum health { HEALTH_UP, HEALTH_DOWN };
enum admin { ADMIN_READY, ADMIN_DRAIN, ADMIN_MAINT };
static const char *const admin_names[] = { "ready", "drain", "maint" };
static const char *const report_names[] = { "up", "drain", "maint", "down" };

enum probe_kind { PROBE_HEALTH, PROBE_AGENT };

struct backend;

/* One check of a backend, run on the control loop. */
struct probe {
	struct backend *be;
	enum probe_kind kind;
	struct event *timer; /* when to start the next one */
	struct event *io;    /* the check's socket, NULL when idle */
	int fd;
	bool connected;
	char buf[512];
	size_t len;
};

struct balancer;

struct backend {
	struct balancer *bal;
	unsigned idx;
	char *name, *address;
	struct sockaddr_storage addr;
	socklen_t addrlen;

	/* Read by the workers. */
	_Atomic bool backup;
	_Atomic bool usable;          /* may take new connections */
	_Atomic unsigned eff_weight;  /* weight x agent x slow start, 0 when not usable */
	_Atomic unsigned maxconn;     /* 0: no limit */
	_Atomic unsigned kill_gen;    /* connections from an older one are closed */
	/* Written by the workers. */
	_Atomic unsigned conns;
	_Atomic unsigned passive_fails;
	_Atomic int last_errno;
	_Atomic uint64_t total, bytes_in, bytes_out, connect_errors;
	_Atomic uint64_t ewma_bits; /* double, microseconds */
	_Atomic uint64_t ewma_stamp;
	struct hist connect_lat, response_lat;

	/* Control loop only. */
	unsigned weight;
	uint64_t conf_max_conns;
	enum health health;
	int ok_run, fail_run;
	enum admin admin;
	int agent_state, agent_pct;
	long agent_maxconn;
	char agent_msg[64];
	bool removed;
	usec_t up_since, since;
	const char *state; /* as last reported */
	char check_msg[128];
	usec_t check_at;
	struct probe *check, *agent;
};

struct balancer {
	struct lb *lb;
	unsigned idx;
	char *name;
	char **listen;
	int algorithm;
	struct lb_health_conf health; /* http_path owned */
	unsigned agent_port;
	usec_t connect_timeout, idle_timeout, slow_start;
	unsigned retries;
	unsigned max_conns;
	bool connect_on_data;
	struct backend *backends[LB_MAX_BACKENDS];
	_Atomic unsigned n_backends;
	_Atomic uint64_t generation; /* bumped when usable set or weights change */
	_Atomic unsigned conns;
	_Atomic uint64_t accepted, refused, failed, redispatched;
	_Atomic uint64_t refuse_logged_at;
};

struct conn;

struct listener {
	int fd;
	struct event *ev;
	struct balancer *bal;
	struct worker *w;
};

struct worker {
	struct lb *lb;
	unsigned idx;
	struct event_base *base;
	bool own_base;
	pthread_t thread;
	bool thread_started;
	int efd;
	struct event *notify;
	_Atomic bool stop;
	struct listener *listeners;
	size_t n_listeners;
	struct lb_algo *algos; /* one per balancer */
	struct conn *conns;    /* list head */
	size_t n_conns;
	int pipes[PIPE_POOL_MAX][2];
	size_t n_pipes;
	int reserve_fd; /* given up to accept and refuse when out of fds */
	int epfd;       /* the connections' sockets, edge-triggered */
	struct event *epev;
	struct slot *slots; /* epoll data -> connection */
	uint32_t n_slots, cap_slots, free_slot;
};

struct lb {
	struct event_base *base;
	struct lb_options opts;
	struct balancer *balancers;
	size_t n_balancers;
	struct worker *workers;
	size_t n_workers;
	int efd; /* workers -> control loop: passive failures */
	struct event *notify;
	struct event *ramp;
	struct lb_control *control;
	bool started, stopped;
};

/* ---- small helpers ---- */

static void hist_add(struct hist *h, usec_t us)
{
	size_t i = 0;

	while (i < HIST_N - 1 && (double)us > hist_bounds_ms[i] * 1000.0)
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

/* Quantile in milliseconds, interpolated inside its bucket; -1 if empty. */
static double hist_quantile(struct hist *h, double q)
{
	uint64_t counts[HIST_N], total = 0, seen = 0;

	for (size_t i = 0; i < HIST_N; i++)
		total += counts[i] = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
	if (total == 0)
		return -1;
	for (size_t i = 0; i < HIST_N; i++) {
		double lo = i ? hist_bounds_ms[i - 1] : 0;
		double hi = i < HIST_N - 1 ? hist_bounds_ms[i] : hist_bounds_ms[HIST_N - 2] * 2;

		if (counts[i] && (double)(seen + counts[i]) >= q * (double)total)
			return lo + (hi - lo) * (q * (double)total - (double)seen) / (double)counts[i];
		seen += counts[i];
	}
	return hist_bounds_ms[HIST_N - 2];
}

static double load_double(_Atomic uint64_t *a)
{
	uint64_t bits = atomic_load_explicit(a, memory_order_relaxed);
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

static void store_double(_Atomic uint64_t *a, double d)
{
	uint64_t bits;

	memcpy(&bits, &d, sizeof(d));
	atomic_store_explicit(a, bits, memory_order_relaxed);
}

static void eventfd_poke(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0)
		(void)0; /* the counter is saturated: the reader is awake anyway */
}

static void eventfd_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		(void)0;
}

static struct timeval tv_of(usec_t us)
{
	return (struct timeval){ (time_t)(us / USEC_PER_SEC), (suseconds_t)(us % USEC_PER_SEC) };
}

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

/* ---- connections (worker threads) ---- */

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

				if (atomic_load_explicit(&be->backup, memory_order_relaxed) != (tier == 1) ||
				    !atomic_load_explicit(&be->usable, memory_order_relaxed))
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
							      load_double(&be->ewma_bits) };
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

				if (atomic_load(&be->backup) != backups || !atomic_load(&be->usable) ||
				    eff == 0)
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
	double cur = load_double(&be->ewma_bits), s = (double)sample;

	c->request_at = 0;
	hist_add(&be->response_lat, sample);
	/* Peak EWMA: jump to a worse sample at once, decay towards better. */
	if (s > cur || last == 0) {
		cur = s;
	} else {
		double wgt = exp(-(double)(now > last ? now - last : 0) / EWMA_DECAY_USEC);

		cur = cur * wgt + s * (1.0 - wgt);
	}
	store_double(&be->ewma_bits, cur);
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
			struct timeval tv = tv_of(idle - (now - c->last_activity));

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
	struct timeval idle = tv_of(c->bal->idle_timeout);

	hist_add(&c->be->connect_lat, now - c->connect_start);
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
	eventfd_poke(c->w->lb->efd);
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

/* epoll reported the connecting socket writable or in error. */
static void connect_ready(struct conn *c)
{
	int err = 0, r;
	socklen_t len = sizeof(err);

	if (c->up.pending > 0) {
		r = push_held(c);
		if (r < 0) {
			connect_failed(c, -r);
			return;
		}
		if (r > 0) {
			conn_established(c);
			return;
		}
	}
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
	int r;

	if (d->pending > 0) {
		r = push_held(c);
		if (r < 0) {
			connect_failed(c, -r);
			return;
		}
		if (r > 0) {
			conn_established(c);
			return;
		}
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
	struct timeval tv = tv_of(c->bal->connect_timeout);
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
		struct timeval idle = tv_of(bal->idle_timeout);

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
				w->epfd = -1;
	w->free_slot = NO_SLOT;
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

static void on_worker_notify(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)what;
	eventfd_drain(fd);
	if (atomic_load(&w->stop)) {
		worker_close_all(w);
		event_base_loopbreak(w->base);
		return;
	}
	worker_kill_stale(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_dispatch(w->base);
	worker_close_all(w);
	return NULL;
}

/* ---- backend state (control loop) ---- */

static void notify_workers(struct lb *lb)
{
	for (size_t i = 0; i < lb->n_workers; i++)
		eventfd_poke(lb->workers[i].efd);
}

static int usable_primaries(struct balancer *bal)
{
	unsigned nb = atomic_load(&bal->n_backends);
	int n = 0;

	for (unsigned i = 0; i < nb; i++)
		n += !atomic_load(&bal->backends[i]->backup) && atomic_load(&bal->backends[i]->usable);
	return n;
}

static const char *backend_state(const struct backend *be)
{
	if (be->removed)
		return "removed";
	if (be->admin == ADMIN_MAINT || be->agent_state == LB_REPORT_MAINT)
		return "maint";
	if (be->health == HEALTH_DOWN || be->agent_state == LB_REPORT_DOWN)
		return "down";
	if (be->admin == ADMIN_DRAIN || be->agent_state == LB_REPORT_DRAIN)
		return "drain";
	return "up";
}

static bool ramping(const struct backend *be, usec_t now)
{
	return be->bal->slow_start && be->up_since && now - be->up_since < be->bal->slow_start;
}

/* Recomputes what the workers read from the backend's state; reports a
 * change of state with reason. */
static void backend_refresh(struct backend *be, const char *reason)
{
	struct balancer *bal = be->bal;
	struct lb *lb = bal->lb;
	usec_t now = now_monotonic();
	const char *state = backend_state(be);
	bool up = strcmp(state, "up") == 0;
	unsigned eff = 0, mc = (unsigned)be->conf_max_conns;
	bool changed;

	if (up) {
		double w = (double)be->weight * (be->agent_pct >= 0 ? be->agent_pct : 100);

		if (ramping(be, now)) {
			double f = (double)(now - be->up_since) / (double)bal->slow_start;

			w *= f > 0.01 ? f : 0.01;
			if (!event_pending(lb->ramp, EV_TIMEOUT, NULL)) {
				struct timeval tv = tv_of(RAMP_TICK_USEC);

				event_add(lb->ramp, &tv);
			}
		}
		eff = (unsigned)ceil(w);
		if (be->weight == 0 || be->agent_pct == 0)
			eff = 0;
	}
	if (be->agent_maxconn > 0 && (mc == 0 || (unsigned)be->agent_maxconn < mc))
		mc = (unsigned)be->agent_maxconn;
	changed = atomic_load(&be->eff_weight) != eff || atomic_load(&be->usable) != (up && eff > 0);
	atomic_store(&be->maxconn, mc);
	atomic_store(&be->eff_weight, eff);
	atomic_store(&be->usable, up && eff > 0);
	if (changed)
		atomic_fetch_add_explicit(&bal->generation, 1, memory_order_release);
	if (strcmp(state, be->state) == 0)
		return;
	if (!strcmp(state, "down") || !strcmp(state, "maint") || !strcmp(state, "removed")) {
		/* Established connections to a dead backend end now, not at
		 * their idle timeout (a removed one keeps them). */
		if (strcmp(state, "removed") != 0) {
			atomic_fetch_add(&be->kill_gen, 1);
			notify_workers(lb);
		}
	}
	if (lb->opts.on_event) {
		struct lb_event ev = {
			.balancer = bal->name,
			.backend = be->name,
			.from = be->state,
			.to = state,
			.reason = reason,
			.backup = atomic_load(&be->backup),
			.usable_primaries = usable_primaries(bal),
		};

		lb->opts.on_event(&ev, lb->opts.userdata);
	}
	be->state = state;
	be->since = now_realtime();
}

static void on_ramp(evutil_socket_t fd, short what, void *arg)
{
	struct lb *lb = arg;

	(void)fd;
	(void)what;
	for (size_t b = 0; b < lb->n_balancers; b++) {
		struct balancer *bal = &lb->balancers[b];

		for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++)
			if (bal->backends[i]->up_since)
				backend_refresh(bal->backends[i], "slow start");
	}
}

static void probe_schedule(struct probe *p, usec_t delay);

static void health_result(struct backend *be, bool ok, const char *msg)
{
	struct balancer *bal = be->bal;
	char reason[192];

	snprintf(be->check_msg, sizeof(be->check_msg), "%s", msg);
	be->check_at = now_realtime();
	if (ok) {
		be->fail_run = 0;
		be->ok_run++;
		if (be->health == HEALTH_DOWN && be->ok_run >= bal->health.rise) {
			be->health = HEALTH_UP;
			be->up_since = bal->slow_start ? now_monotonic() : 0;
			snprintf(reason, sizeof(reason), "health check passed %d times: %s",
				 be->ok_run, msg);
			backend_refresh(be, reason);
		}
	} else {
		be->ok_run = 0;
		be->fail_run++;
		if (be->health == HEALTH_UP && be->fail_run >= bal->health.fall) {
			be->health = HEALTH_DOWN;
			be->up_since = 0;
			snprintf(reason, sizeof(reason), "health check failed %d times: %s",
				 be->fail_run, msg);
			backend_refresh(be, reason);
		}
	}
}

static void agent_result(struct backend *be, bool ok, const char *msg,
			 const struct lb_agent_report *rep)
{
	char reason[160];

	if (!ok || !rep) {
		/* HAProxy's rule: an agent that cannot be reached changes nothing. */
		snprintf(be->agent_msg, sizeof(be->agent_msg), "%s", msg);
		return;
	}
	snprintf(be->agent_msg, sizeof(be->agent_msg), "%s", msg);
	if (rep->state >= 0)
		be->agent_state = rep->state == LB_REPORT_UP ? -1 : rep->state;
	if (rep->percent >= 0)
		be->agent_pct = rep->percent;
	if (rep->maxconn >= 0)
		be->agent_maxconn = rep->maxconn;
	snprintf(reason, sizeof(reason), "agent reported '%s'", msg);
	backend_refresh(be, reason);
}

static void probe_finish(struct probe *p, bool ok, const char *msg)
{
	struct backend *be = p->be;
	struct balancer *bal = be->bal;
	usec_t next;

	if (p->io) {
		event_free(p->io);
		p->io = NULL;
	}
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
	if (p->kind == PROBE_AGENT) {
		struct lb_agent_report rep;
		char line[64];
		size_t n = strcspn(p->buf, "\r\n");

		snprintf(line, sizeof(line), "%.*s", (int)n, p->buf);
		if (ok && lb_agent_parse(p->buf, p->len, &rep) == 0)
			agent_result(be, true, line, &rep);
		else
			agent_result(be, false, ok ? "agent sent no known word" : msg, NULL);
		probe_schedule(p, bal->health.interval);
		return;
	}
	health_result(be, ok, msg);
	/* While a state changes, and while down, check at fastinter. */
	if (be->health == HEALTH_DOWN || be->fail_run > 0)
		next = bal->health.fastinter;
	else if (bal->health.kind == LB_CHECK_NONE)
		return; /* passive only: checks run while the backend is down */
	else
		next = bal->health.interval;
	probe_schedule(p, next);
}

static void probe_eval_http(struct probe *p)
{
	int status = 0;
	char msg[96];

	if (sscanf(p->buf, "HTTP/%*d.%*d %d", &status) != 1) {
		probe_finish(p, false, "not an HTTP response");
		return;
	}
	snprintf(msg, sizeof(msg), "HTTP status %d", status);
	probe_finish(p, status == p->be->bal->health.expect_status, msg);
}

static void probe_io(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	struct balancer *bal = p->be->bal;

	if (what & EV_TIMEOUT) {
		probe_finish(p, false, p->connected ? "timed out waiting for a reply"
						    : "connect timed out");
		return;
	}
	if (!p->connected) {
		int err = 0;
		socklen_t len = sizeof(err);
		struct timeval tv = tv_of(bal->health.timeout);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			char msg[96];

			snprintf(msg, sizeof(msg), "connect: %s", strerror(err));
			probe_finish(p, false, msg);
			return;
		}
		p->connected = true;
		if (p->kind == PROBE_HEALTH && bal->health.kind != LB_CHECK_HTTP) {
			probe_finish(p, true, "connected");
			return;
		}
		if (p->kind == PROBE_HEALTH) {
			char req[512];
			int n = snprintf(req, sizeof(req),
					 "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: bcdr-lb\r\n"
					 "Connection: close\r\n\r\n",
					 bal->health.http_path, p->be->address);

			if (n < 0 || (size_t)n >= sizeof(req) ||
			    send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
				probe_finish(p, false, "cannot send the request");
				return;
			}
		}
		event_free(p->io);
		p->io = event_new(bal->lb->base, fd, EV_READ | EV_PERSIST, probe_io, p);
		if (!p->io || event_add(p->io, &tv) < 0) {
			probe_finish(p, false, "out of memory");
			return;
		}
		return;
	}
	for (;;) {
		ssize_t n = recv(fd, p->buf + p->len, sizeof(p->buf) - 1 - p->len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			char msg[96];

			snprintf(msg, sizeof(msg), "read: %s", strerror(errno));
			probe_finish(p, false, msg);
			return;
		}
		p->len += (size_t)n;
		p->buf[p->len] = 0;
		if (n == 0 || memchr(p->buf, '\n', p->len) || p->len == sizeof(p->buf) - 1)
			break;
	}
	if (p->len == 0) {
		probe_finish(p, false, "closed without a reply");
		return;
	}
	if (p->kind == PROBE_HEALTH)
		probe_eval_http(p);
	else
		probe_finish(p, true, "");
}

static void probe_start(evutil_socket_t fd_unused, short what, void *arg)
{
	struct probe *p = arg;
	struct backend *be = p->be;
	struct balancer *bal = be->bal;
	struct sockaddr_storage ss = be->addr;
	struct timeval tv = tv_of(bal->health.timeout);
	int fd;

	(void)fd_unused;
	(void)what;
	if (p->io)
		return;
	if (p->kind == PROBE_AGENT) {
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)bal->agent_port);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)bal->agent_port);
	}
	p->len = 0;
	p->buf[0] = 0;
	p->connected = false;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		probe_finish(p, false, "cannot create a socket");
		return;
	}
	p->fd = fd;
	if (connect(fd, (struct sockaddr *)&ss, be->addrlen) < 0 && errno != EINPROGRESS) {
		char msg[96];

		snprintf(msg, sizeof(msg), "connect: %s", strerror(errno));
		probe_finish(p, false, msg);
		return;
	}
	p->io = event_new(bal->lb->base, fd, EV_WRITE, probe_io, p);
	if (!p->io || event_add(p->io, &tv) < 0)
		probe_finish(p, false, "out of memory");
}

static void probe_schedule(struct probe *p, usec_t delay)
{
	struct timeval tv = tv_of(delay);

	event_add(p->timer, &tv);
}

static void probe_free(struct probe *p)
{
	if (!p)
		return;
	if (p->io)
		event_free(p->io);
	if (p->fd >= 0)
		close(p->fd);
	if (p->timer)
		event_free(p->timer);
	free(p);
}

static int probe_new(struct backend *be, enum probe_kind kind, struct probe **ret)
{
	struct probe *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->be = be;
	p->kind = kind;
	p->fd = -1;
	p->timer = evtimer_new(be->bal->lb->base, probe_start, p);
	if (!p->timer) {
		free(p);
		return -ENOMEM;
	}
	*ret = p;
	return 0;
}

/* Passive failures reported by the workers: a failed connect counts at once. */
static void on_lb_notify(evutil_socket_t fd, short what, void *arg)
{
	struct lb *lb = arg;

	(void)what;
	eventfd_drain(fd);
	for (size_t b = 0; b < lb->n_balancers; b++) {
		struct balancer *bal = &lb->balancers[b];

		for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++) {
			struct backend *be = bal->backends[i];
			unsigned n = atomic_exchange(&be->passive_fails, 0);
			char reason[128];

			if (n == 0 || be->health == HEALTH_DOWN || be->removed)
				continue;
			snprintf(reason, sizeof(reason), "connect failed: %s",
				 strerror(atomic_load(&be->last_errno)));
			be->health = HEALTH_DOWN;
			be->ok_run = 0;
			be->fail_run = bal->health.fall;
			be->up_since = 0;
			snprintf(be->check_msg, sizeof(be->check_msg), "%s", reason);
			backend_refresh(be, reason);
			/* Checks now decide when it comes back. */
			if (be->check && !be->check->io) {
				event_del(be->check->timer);
				probe_schedule(be->check, bal->health.fastinter);
			}
		}
	}
}

/* ---- building ---- */

static void backend_free(struct backend *be)
{
	if (!be)
		return;
	probe_free(be->check);
	probe_free(be->agent);
	free(be->name);
	free(be->address);
	free(be);
}

static int backend_new(struct balancer *bal, const struct lb_backend_conf *conf, unsigned idx,
		       struct backend **ret)
{
	struct backend *be = calloc(1, sizeof(*be));
	unsigned len;

	if (!be)
		return -ENOMEM;
	be->bal = bal;
	be->idx = idx;
	be->name = strdup(conf->name);
	be->address = strdup(conf->address);
	if (!be->name || !be->address) {
		backend_free(be);
		return -ENOMEM;
	}
	if (lb_parse_address(conf->address, &be->addr, &len) < 0) {
		backend_free(be);
		return -EINVAL;
	}
	be->addrlen = len;
	atomic_store(&be->backup, conf->backup);
	be->weight = (unsigned)conf->weight;
	be->conf_max_conns = conf->max_conns;
	be->health = HEALTH_UP; /* until a check or a connect says otherwise */
	be->admin = ADMIN_READY;
	be->agent_state = -1;
	be->agent_pct = -1;
	be->agent_maxconn = -1;
	be->state = "up";
	be->since = now_realtime();
	if (probe_new(be, PROBE_HEALTH, &be->check) < 0 ||
	    (bal->agent_port && probe_new(be, PROBE_AGENT, &be->agent) < 0)) {
		backend_free(be);
		return -ENOMEM;
	}
	backend_refresh(be, "configured");
	*ret = be;
	return 0;
}

static void backend_start_checks(struct backend *be)
{
	if (be->bal->health.kind != LB_CHECK_NONE)
		probe_schedule(be->check, 0);
	if (be->agent)
		probe_schedule(be->agent, 0);
}

static int balancer_init(struct lb *lb, struct balancer *bal, unsigned idx,
			 const struct lb_balancer_conf *conf)
{
	size_t n = 0;
	int r;

	bal->lb = lb;
	bal->idx = idx;
	bal->name = strdup(conf->name);
	while (conf->listen[n])
		n++;
	bal->listen = calloc(n + 1, sizeof(char *));
	if (!bal->name || !bal->listen)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(bal->listen[i] = strdup(conf->listen[i])))
			return -ENOMEM;
	bal->algorithm = conf->algorithm;
	bal->health = conf->health;
	bal->health.http_path = NULL;
	if (conf->health.http_path && !(bal->health.http_path = strdup(conf->health.http_path)))
		return -ENOMEM;
	if (bal->health.kind == LB_CHECK_NONE) {
		/* Passive only; the defaults drive the checks of a down backend. */
		if (!bal->health.fastinter)
			bal->health.fastinter = 200 * USEC_PER_MSEC;
		if (!bal->health.interval)
			bal->health.interval = USEC_PER_SEC;
		if (!bal->health.timeout)
			bal->health.timeout = USEC_PER_SEC;
		if (!bal->health.rise)
			bal->health.rise = 1;
		if (!bal->health.fall)
			bal->health.fall = 1;
	}
	bal->agent_port = (unsigned)conf->agent_port;
	bal->connect_timeout = conf->connect_timeout;
	bal->idle_timeout = conf->idle_timeout;
	bal->slow_start = conf->slow_start;
	bal->retries = (unsigned)conf->retries;
	bal->max_conns = (unsigned)conf->max_conns;
	bal->connect_on_data = conf->connect_on_data;
	for (size_t i = 0; i < conf->n_backends; i++) {
		r = backend_new(bal, &conf->backends[i], (unsigned)i, &bal->backends[i]);
		if (r < 0)
			return r;
		atomic_store(&bal->n_backends, (unsigned)i + 1);
	}
	return 0;
}

static void balancer_release(struct balancer *bal)
{
	for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++)
		backend_free(bal->backends[i]);
	strv_free(bal->listen);
	free(bal->health.http_path);
	free(bal->name);
}

int lb_new(const struct lb_plan *plan, struct event_base *base, const struct lb_options *opts,
	   struct lb **ret)
{
	struct lb *lb;
	int r;

	if (!plan || !base)
		return -EINVAL;
	lb = calloc(1, sizeof(*lb));
	if (!lb)
		return -ENOMEM;
	lb->base = base;
	lb->efd = -1;
	if (opts)
		lb->opts = *opts;
	lb->ramp = evtimer_new(base, on_ramp, lb);
	lb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	lb->balancers = calloc(plan->n_balancers ? plan->n_balancers : 1, sizeof(*lb->balancers));
	if (!lb->ramp || lb->efd < 0 || !lb->balancers) {
		lb_free(lb);
		return -ENOMEM;
	}
	lb->notify = event_new(base, lb->efd, EV_READ | EV_PERSIST, on_lb_notify, lb);
	if (!lb->notify) {
		lb_free(lb);
		return -ENOMEM;
	}
	lb->n_balancers = plan->n_balancers;
	for (size_t i = 0; i < plan->n_balancers; i++) {
		r = balancer_init(lb, &lb->balancers[i], (unsigned)i, &plan->balancers[i]);
		if (r < 0) {
			lb_free(lb);
			return r;
		}
	}
	*ret = lb;
	return 0;
}

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

static int worker_init(struct lb *lb, struct worker *w, unsigned idx, bool own_base,
		       char **ret_error)
{
	size_t total = 0, k = 0;
	int r;

	w->lb = lb;
	w->idx = idx;
	w->efd = -1;
	w->epfd = -1;
	w->free_slot = NO_SLOT;
	w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	w->own_base = own_base;
	w->base = own_base ? event_base_new() : lb->base;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->algos = calloc(lb->n_balancers ? lb->n_balancers : 1, sizeof(*w->algos));
	if (!w->base || w->efd < 0 || !w->algos)
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
	w->notify = event_new(w->base, w->efd, EV_READ | EV_PERSIST, on_worker_notify, w);
	w->listeners = calloc(total ? total : 1, sizeof(*w->listeners));
	if (!w->notify || !w->listeners || event_add(w->notify, NULL) < 0)
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
				if (asprintf(ret_error, "cannot listen on '%s' (balancer '%s'): %s", *l,
					     li->bal->name, err_str(r)) < 0)
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

static void worker_release(struct worker *w)
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
	if (w->notify)
		event_free(w->notify);
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
	if (w->efd >= 0)
		close(w->efd);
	w->efd = -1;
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

static void raise_fd_limit(void)
{
	struct rlimit rl;

	/* Two sockets per connection: take what the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int lb_start(struct lb *lb, char **ret_error)
{
	size_t n = lb->opts.workers ? lb->opts.workers : 1;
	int r;

	if (ret_error)
		*ret_error = NULL;
	if (lb->started)
		return -EALREADY;
	raise_fd_limit();
	/* splice() to a socket the peer closed raises SIGPIPE: the data path
	 * wants EPIPE instead, as every proxy does. */
	signal(SIGPIPE, SIG_IGN);
	lb->workers = calloc(n, sizeof(*lb->workers));
	if (!lb->workers)
		return -ENOMEM;
	lb->n_workers = n;
	for (size_t i = 0; i < n; i++) {
		char *error = NULL;

		r = worker_init(lb, &lb->workers[i], (unsigned)i, lb->opts.workers > 0, &error);
		if (r < 0) {
			if (ret_error)
				*ret_error = error;
			else
				free(error);
			lb_stop(lb);
			return r;
		}
	}
	for (size_t i = 0; lb->opts.workers && i < n; i++) {
		r = -pthread_create(&lb->workers[i].thread, NULL, worker_main, &lb->workers[i]);
		if (r < 0) {
			lb_stop(lb);
			return r;
		}
		lb->workers[i].thread_started = true;
	}
	if (event_add(lb->notify, NULL) < 0) {
		lb_stop(lb);
		return -ENOMEM;
	}
	lb->started = true;
	for (size_t b = 0; b < lb->n_balancers; b++)
		for (unsigned i = 0; i < atomic_load(&lb->balancers[b].n_backends); i++)
			backend_start_checks(lb->balancers[b].backends[i]);
	return 0;
}

void lb_stop(struct lb *lb)
{
	if (!lb || lb->stopped)
		return;
	lb->stopped = true;
	for (size_t i = 0; i < lb->n_workers; i++) {
		struct worker *w = &lb->workers[i];

		if (w->thread_started) {
			atomic_store(&w->stop, true);
			eventfd_poke(w->efd);
			pthread_join(w->thread, NULL);
		}
		worker_release(w);
	}
	for (size_t b = 0; b < lb->n_balancers; b++) {
		struct balancer *bal = &lb->balancers[b];

		for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++) {
			struct backend *be = bal->backends[i];

			if (be->check)
				event_del(be->check->timer);
			if (be->agent)
				event_del(be->agent->timer);
		}
	}
	if (lb->notify)
		event_del(lb->notify);
	if (lb->ramp)
		event_del(lb->ramp);
	lb_control_free(lb->control);
	lb->control = NULL;
}

void lb_free(struct lb *lb)
{
	if (!lb)
		return;
	lb_stop(lb);
	free(lb->workers);
	for (size_t b = 0; b < lb->n_balancers; b++)
		balancer_release(&lb->balancers[b]);
	free(lb->balancers);
	if (lb->notify)
		event_free(lb->notify);
	if (lb->ramp)
		event_free(lb->ramp);
	if (lb->efd >= 0)
		close(lb->efd);
	free(lb);
}

/* ---- runtime changes ---- */

static struct balancer *find_balancer(struct lb *lb, const char *name)
{
	for (size_t b = 0; b < lb->n_balancers; b++)
		if (strcmp(lb->balancers[b].name, name) == 0)
			return &lb->balancers[b];
	return NULL;
}

static struct backend *find_backend(struct balancer *bal, const char *name)
{
	for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++)
		if (!bal->backends[i]->removed && strcmp(bal->backends[i]->name, name) == 0)
			return bal->backends[i];
	return NULL;
}

int lb_set_state(struct lb *lb, const char *balancer, const char *backend, const char *state)
{
	struct balancer *bal = find_balancer(lb, balancer);
	struct backend *be = bal ? find_backend(bal, backend) : NULL;
	char reason[64];
	int admin = -1;

	for (int i = 0; i < 3; i++)
		if (state && strcmp(state, admin_names[i]) == 0)
			admin = i;
	if (admin < 0)
		return -EINVAL;
	if (!be)
		return -BCDR_ERR_NOT_FOUND;
	be->admin = (enum admin)admin;
	snprintf(reason, sizeof(reason), "set to %s by the operator", state);
	backend_refresh(be, reason);
	return 0;
}

int lb_set_weight(struct lb *lb, const char *balancer, const char *backend, unsigned weight)
{
	struct balancer *bal = find_balancer(lb, balancer);
	struct backend *be = bal ? find_backend(bal, backend) : NULL;

	if (weight > LB_MAX_WEIGHT)
		return -ERANGE;
	if (!be)
		return -BCDR_ERR_NOT_FOUND;
	be->weight = weight;
	backend_refresh(be, "weight set by the operator");
	return 0;
}

static void backend_remove(struct backend *be)
{
	be->removed = true;
	event_del(be->check->timer);
	if (be->agent)
		event_del(be->agent->timer);
	backend_refresh(be, "removed from the plan");
}

int lb_reload(struct lb *lb, const struct lb_plan *plan, char **ret_warning)
{
	struct buf warn;
	int r = 0;

	buf_init(&warn, 64 * 1024);
	for (size_t b = 0; b < plan->n_balancers; b++)
		if (!find_balancer(lb, plan->balancers[b].name))
			buf_printf(&warn, "%snew balancer '%s' needs a restart", warn.len ? "; " : "",
				   plan->balancers[b].name);
	for (size_t b = 0; b < lb->n_balancers; b++) {
		struct balancer *bal = &lb->balancers[b];
		const struct lb_balancer_conf *conf = NULL;

		for (size_t k = 0; k < plan->n_balancers; k++)
			if (strcmp(plan->balancers[k].name, bal->name) == 0)
				conf = &plan->balancers[k];
		if (!conf) {
			buf_printf(&warn, "%sremoving balancer '%s' needs a restart",
				   warn.len ? "; " : "", bal->name);
			continue;
		}
		/* Remove first, so a renamed address frees its name. */
		for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++) {
			struct backend *be = bal->backends[i];
			bool keep = false;

			for (size_t k = 0; !be->removed && k < conf->n_backends; k++)
				if (!strcmp(conf->backends[k].name, be->name) &&
				    !strcmp(conf->backends[k].address, be->address))
					keep = true;
			if (!be->removed && !keep)
				backend_remove(be);
		}
		for (size_t k = 0; k < conf->n_backends; k++) {
			const struct lb_backend_conf *bc = &conf->backends[k];
			struct backend *be = find_backend(bal, bc->name);
			unsigned n = atomic_load(&bal->n_backends);

			if (be) {
				be->weight = (unsigned)bc->weight;
				be->conf_max_conns = bc->max_conns;
				atomic_store(&be->backup, bc->backup);
				backend_refresh(be, "reloaded");
				continue;
			}
			if (n >= LB_MAX_BACKENDS) {
				r = -E2BIG;
				break;
			}
			r = backend_new(bal, bc, n, &be);
			if (r < 0)
				break;
			bal->backends[n] = be;
			atomic_store_explicit(&bal->n_backends, n + 1, memory_order_release);
			atomic_fetch_add(&bal->generation, 1);
			if (lb->started)
				backend_start_checks(be);
		}
		if (conf->algorithm != bal->algorithm || conf->slow_start != bal->slow_start ||
		    conf->connect_timeout != bal->connect_timeout ||
		    conf->idle_timeout != bal->idle_timeout || conf->max_conns != bal->max_conns)
			buf_printf(&warn, "%sbalancer '%s': only backends are reloaded; "
				   "other changes need a restart", warn.len ? "; " : "", bal->name);
	}
	if (ret_warning)
		*ret_warning = warn.len ? buf_steal(&warn, NULL) : NULL;
	buf_release(&warn);
	return r;
}

/* ---- visibility ---- */

static json_t *latency_json(struct hist *c, struct hist *r)
{
	json_t *j = json_object();
	double v;

	if (!j)
		return NULL;
	if ((v = hist_quantile(c, 0.5)) >= 0)
		json_set_real(j, "connect_p50_ms", v);
	if ((v = hist_quantile(c, 0.99)) >= 0)
		json_set_real(j, "connect_p99_ms", v);
	if ((v = hist_quantile(r, 0.5)) >= 0)
		json_set_real(j, "response_p50_ms", v);
	if ((v = hist_quantile(r, 0.99)) >= 0)
		json_set_real(j, "response_p99_ms", v);
	return j;
}

static json_t *backend_json(struct backend *be)
{
	json_t *j = json_object();
	char t[64];

	if (!j)
		return NULL;
	json_set_str(j, "name", be->name);
	json_set_str(j, "address", be->address);
	json_set_str(j, "state", be->state);
	json_set_str(j, "since", time_format_iso(be->since, t, sizeof(t)));
	json_set_str(j, "admin", admin_names[be->admin]);
	json_set_str(j, "health", be->health == HEALTH_UP ? "up" : "down");
	if (be->check_at) {
		json_set_str(j, "last_check", be->check_msg);
		json_set_str(j, "last_check_at", time_format_iso(be->check_at, t, sizeof(t)));
	} else if (be->check_msg[0]) {
		json_set_str(j, "last_check", be->check_msg);
	}
	json_set_bool(j, "backup", atomic_load(&be->backup));
	json_set_int(j, "weight", be->weight);
	/* Stored x100 (the agent's percent), shown in the weight's units. */
	json_set_real(j, "effective_weight", atomic_load(&be->eff_weight) / 100.0);
	json_set_int(j, "max_conns", atomic_load(&be->maxconn));
	json_set_int(j, "connections", atomic_load(&be->conns));
	json_set_int(j, "total", (long long)atomic_load(&be->total));
	json_set_int(j, "bytes_in", (long long)atomic_load(&be->bytes_in));
	json_set_int(j, "bytes_out", (long long)atomic_load(&be->bytes_out));
	json_set_int(j, "connect_errors", (long long)atomic_load(&be->connect_errors));
	if (be->bal->agent_port) {
		json_t *a = json_object();

		json_set_str(a, "state", be->agent_state >= 0 ? report_names[be->agent_state] : "up");
		if (be->agent_pct >= 0)
			json_set_int(a, "percent", be->agent_pct);
		if (be->agent_maxconn >= 0)
			json_set_int(a, "maxconn", be->agent_maxconn);
		json_set_str(a, "last", be->agent_msg);
		json_object_set_new(j, "agent", a);
	}
	if (be->bal->algorithm == LB_ALGO_PEAK_EWMA)
		json_set_real(j, "ewma_ms", load_double(&be->ewma_bits) / 1000.0);
	json_object_set_new(j, "latency", latency_json(&be->connect_lat, &be->response_lat));
	return j;
}

json_t *lb_status_json(struct lb *lb)
{
	json_t *all = json_array();

	if (!all)
		return NULL;
	for (size_t b = 0; b < lb->n_balancers; b++) {
		struct balancer *bal = &lb->balancers[b];
		json_t *j = json_object(), *listen = json_array(), *bes = json_array();

		if (!j || !listen || !bes) {
			json_decref(j);
			json_decref(listen);
			json_decref(bes);
			json_decref(all);
			return NULL;
		}
		json_set_str(j, "name", bal->name);
		for (char **l = bal->listen; *l; l++)
			json_array_append_new(listen, json_string(*l));
		json_object_set_new(j, "listen", listen);
		json_set_str(j, "algorithm", lb_algorithm_names[bal->algorithm]);
		json_set_int(j, "connections", atomic_load(&bal->conns));
		json_set_int(j, "max_conns", bal->max_conns);
		json_set_int(j, "accepted", (long long)atomic_load(&bal->accepted));
		json_set_int(j, "refused", (long long)atomic_load(&bal->refused));
		json_set_int(j, "failed", (long long)atomic_load(&bal->failed));
		json_set_int(j, "redispatched", (long long)atomic_load(&bal->redispatched));
		json_set_int(j, "usable_primaries", usable_primaries(bal));
		for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++)
			if (!bal->backends[i]->removed || atomic_load(&bal->backends[i]->conns))
				json_array_append_new(bes, backend_json(bal->backends[i]));
		json_object_set_new(j, "backends", bes);
		json_array_append_new(all, j);
	}
	return all;
}

typedef uint64_t (*backend_value_fn)(struct backend *be);

static uint64_t v_up(struct backend *be) { return atomic_load(&be->usable); }
static uint64_t v_weight(struct backend *be) { return atomic_load(&be->eff_weight); }
static uint64_t v_conns(struct backend *be) { return atomic_load(&be->conns); }
static uint64_t v_total(struct backend *be) { return atomic_load(&be->total); }
static uint64_t v_in(struct backend *be) { return atomic_load(&be->bytes_in); }
static uint64_t v_out(struct backend *be) { return atomic_load(&be->bytes_out); }
static uint64_t v_errors(struct backend *be) { return atomic_load(&be->connect_errors); }

static void metric_backends(struct lb *lb, struct buf *out, const char *name, const char *type,
			    const char *help, backend_value_fn fn)
{
	buf_printf(out, "# HELP bcdr_lb_backend_%s %s\n# TYPE bcdr_lb_backend_%s %s\n", name, help,
		   name, type);
	for (size_t b = 0; b < lb->n_balancers; b++) {
		struct balancer *bal = &lb->balancers[b];

		for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++) {
			struct backend *be = bal->backends[i];

			if (!be->removed)
				buf_printf(out, "bcdr_lb_backend_%s{balancer=\"%s\",backend=\"%s\"} %llu\n",
					   name, bal->name, be->name,
					   (unsigned long long)fn(be));
		}
	}
}

static void metric_hist(struct lb *lb, struct buf *out, const char *name, const char *help,
			size_t offset)
{
	buf_printf(out, "# HELP bcdr_lb_backend_%s %s\n# TYPE bcdr_lb_backend_%s histogram\n", name,
		   help, name);
	for (size_t b = 0; b < lb->n_balancers; b++) {
		struct balancer *bal = &lb->balancers[b];

		for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++) {
			struct backend *be = bal->backends[i];
			struct hist *h = (struct hist *)((char *)be + offset);
			uint64_t cum = 0;

			if (be->removed)
				continue;
			for (size_t k = 0; k < HIST_N; k++) {
				char le[32];

				cum += atomic_load(&h->bucket[k]);
				if (k < HIST_N - 1)
					snprintf(le, sizeof(le), "%g", hist_bounds_ms[k] / 1000.0);
				else
					snprintf(le, sizeof(le), "+Inf");
				buf_printf(out, "bcdr_lb_backend_%s_bucket{balancer=\"%s\",backend=\"%s\","
					   "le=\"%s\"} %llu\n", name, bal->name, be->name, le,
					   (unsigned long long)cum);
			}
			buf_printf(out, "bcdr_lb_backend_%s_sum{balancer=\"%s\",backend=\"%s\"} %.6f\n",
				   name, bal->name, be->name, (double)atomic_load(&h->sum_us) / 1e6);
			buf_printf(out, "bcdr_lb_backend_%s_count{balancer=\"%s\",backend=\"%s\"} %llu\n",
				   name, bal->name, be->name,
				   (unsigned long long)atomic_load(&h->count));
		}
	}
}

static void metric_balancers(struct lb *lb, struct buf *out, const char *name, const char *type,
			     const char *help, size_t offset, bool is64)
{
	buf_printf(out, "# HELP bcdr_lb_%s %s\n# TYPE bcdr_lb_%s %s\n", name, help, name, type);
	for (size_t b = 0; b < lb->n_balancers; b++) {
		struct balancer *bal = &lb->balancers[b];
		unsigned long long v = is64 ? atomic_load((_Atomic uint64_t *)((char *)bal + offset))
					    : atomic_load((_Atomic unsigned *)((char *)bal + offset));

		buf_printf(out, "bcdr_lb_%s{balancer=\"%s\"} %llu\n", name, bal->name, v);
	}
}

int lb_metrics(struct lb *lb, struct buf *out)
{
	metric_balancers(lb, out, "connections", "gauge", "client connections open",
			 offsetof(struct balancer, conns), false);
	metric_balancers(lb, out, "accepted_total", "counter", "client connections accepted",
			 offsetof(struct balancer, accepted), true);
	metric_balancers(lb, out, "refused_total", "counter",
			 "client connections refused (max_conns, out of fds)",
			 offsetof(struct balancer, refused), true);
	metric_balancers(lb, out, "failed_total", "counter",
			 "client connections closed for want of a backend",
			 offsetof(struct balancer, failed), true);
	metric_balancers(lb, out, "redispatched_total", "counter",
			 "connects retried after a failure", offsetof(struct balancer, redispatched),
			 true);
	metric_backends(lb, out, "up", "gauge", "1 when the backend takes new connections", v_up);
	metric_backends(lb, out, "effective_weight_percent", "gauge",
			"100 x weight x agent report x slow start", v_weight);
	metric_backends(lb, out, "connections", "gauge", "connections open", v_conns);
	metric_backends(lb, out, "connections_total", "counter", "connections opened", v_total);
	metric_backends(lb, out, "bytes_in_total", "counter", "bytes from clients", v_in);
	metric_backends(lb, out, "bytes_out_total", "counter", "bytes to clients", v_out);
	metric_backends(lb, out, "connect_errors_total", "counter", "failed connects", v_errors);
	metric_hist(lb, out, "connect_seconds", "time to connect",
		    offsetof(struct backend, connect_lat));
	metric_hist(lb, out, "response_seconds", "time to the first byte of a response",
		    offsetof(struct backend, response_lat));
	return out->data || lb->n_balancers == 0 ? 0 : -ENOMEM;
}

int lb_control_listen(struct lb *lb, const char *path)
{
	if (lb->control)
		return -EALREADY;
	return lb_control_new(lb->base, path, lb, &lb->control);
}
