/* The balancer engine's own structures, shared by its files and by no one
 * else (lb/lb.h is the public face):
 *   - lb.c      building, start and stop, reload, operator changes;
 *   - conn.c    the data path: workers, their listeners and connections;
 *   - health.c  backend state, health and agent checks (control loop);
 *   - stats.c   status JSON, metrics and latency histograms.
 * Threads (lb/lb.h): workers read the fields marked so through atomics;
 * everything else belongs to the control loop. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/util.h>

#include "lb/algo.h"
#include "lb/config.h"
#include "lb/lb.h"
#include "lib/timeutil.h"
#include "lib/wake.h"

struct event;
struct event_base;
struct lb_control;

#define PIPE_POOL_MAX 64

/* Latency histogram buckets (milliseconds), the last one +Inf. */
#define HIST_N 14
extern const double lb_hist_bounds_ms[HIST_N - 1];

struct hist {
	_Atomic uint64_t bucket[HIST_N];
	_Atomic uint64_t sum_us, count;
};

enum health { HEALTH_UP, HEALTH_DOWN };
enum admin { ADMIN_READY, ADMIN_DRAIN, ADMIN_MAINT };
extern const char *const lb_admin_names[]; /* by enum admin */

enum lb_probe_kind { PROBE_HEALTH, PROBE_AGENT };

struct backend;

/* One check of a backend, run on the control loop. */
struct probe {
	struct backend *be;
	enum lb_probe_kind kind;
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

	/* Read by the workers. A slot reused (lb.c, backend_clear()) is
	 * zeroed from eff_weight on, while a worker's scan may still read
	 * these two: keep them ahead of it. */
	_Atomic bool backup;
	_Atomic bool usable;          /* may take new connections; its store publishes the rest */
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
	uint64_t removed_epoch; /* lb->epoch of the removal: reusable once every worker saw it */
	usec_t up_since, since;
	const char *state; /* as last reported */
	char check_msg[128];
	char held_down[192]; /* "": none; else why a following backend has no address */
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
	struct wake *notify; /* control loop -> worker: stop, stale conns, epochs */
	_Atomic bool stop;
	_Atomic uint64_t seen_epoch; /* lb->epoch at its last wake: no pick of before runs */
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
	struct wake *notify; /* workers -> control loop: passive failures */
	struct event *ramp;
	struct lb_control *control;
	bool started, stopped;
	_Atomic uint64_t epoch; /* bumped at each backend removal (slot reuse) */
};

/* ---- small helpers ---- */

static inline void lb_hist_add(struct hist *h, usec_t us)
{
	size_t i = 0;

	while (i < HIST_N - 1 && (double)us > lb_hist_bounds_ms[i] * 1000.0)
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

/* Quantile in milliseconds, interpolated inside its bucket; -1 if empty. */
double lb_hist_quantile(struct hist *h, double q);

/* A double kept in an atomic 64-bit word (the peak EWMA). */
static inline double lb_load_double(_Atomic uint64_t *a)
{
	uint64_t bits = atomic_load_explicit(a, memory_order_relaxed);
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

static inline void lb_store_double(_Atomic uint64_t *a, double d)
{
	uint64_t bits;

	memcpy(&bits, &d, sizeof(d));
	atomic_store_explicit(a, bits, memory_order_relaxed);
}

static inline struct timeval lb_tv_of(usec_t us)
{
	return (struct timeval){ (time_t)(us / USEC_PER_SEC), (suseconds_t)(us % USEC_PER_SEC) };
}

/* ---- conn.c: the data path (worker threads) ---- */

/* Sets up worker idx: its loop (own_base: a new one, else lb->base), epoll
 * set, wake-up (w->notify) and a listener on every balancer address;
 * *ret_error names the address that cannot be bound (free() it). */
int lb_worker_init(struct lb *lb, struct worker *w, unsigned idx, bool own_base,
		   char **ret_error);
/* Closes its connections and frees what lb_worker_init() made; a worker
 * never initialised is left alone. */
void lb_worker_release(struct worker *w);
/* The thread of a worker with its own loop. */
void *lb_worker_main(void *arg);

/* ---- health.c: backend state and checks (control loop) ---- */

/* Recomputes what the workers read from the backend's state; reports a
 * change of state with reason. */
void lb_backend_refresh(struct backend *be, const char *reason);
int lb_usable_primaries(struct balancer *bal);
int lb_probe_new(struct backend *be, enum lb_probe_kind kind, struct probe **ret);
void lb_probe_free(struct probe *p);
void lb_backend_start_checks(struct backend *be);
/* lb->ramp's callback: slow start's next step. */
void lb_on_ramp(evutil_socket_t fd, short what, void *arg);
/* lb->notify's callback: passive failures reported by the workers. */
void lb_on_notify(void *arg);
