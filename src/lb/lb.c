/* The balancer engine: building it from the plan, starting and stopping
 * it, reloading backends and the operator's changes. The data path is in
 * lb/conn.c, backend state and checks in lb/health.c, status and metrics
 * in lb/stats.c; lb/internal.h holds what they share:
 *   - the control loop (the caller's event_base): health and agent checks,
 *     backend state, events, status, reload, the control socket;
 *   - workers: one thread each with its own event_base and its own
 *     SO_REUSEPORT listeners, owning the connections it accepted. */
#include "lb/lb.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "lb/control.h"
#include "lb/internal.h"
#include "lib/cleanup.h"
#include "lib/err.h"

const char *const lb_admin_names[] = { "ready", "drain", "maint" };

const char *lb_backend_conf_address(const struct lb_backend_conf *conf)
{
	return conf->address ? conf->address : "-";
}

/* A backend following a service with no leader to follow. */
static void backend_hold(struct backend *be, const struct lb_backend_conf *conf)
{
	if (conf->held_down)
		snprintf(be->held_down, sizeof(be->held_down), "%s", conf->held_down);
	else if (!conf->address)
		snprintf(be->held_down, sizeof(be->held_down),
			 "follows service '%s': its leader is known only to an agent "
			 "in the cluster",
			 conf->service ? conf->service : "?");
	else
		be->held_down[0] = '\0';
}

static void backend_free(struct backend *be)
{
	if (!be)
		return;
	lb_probe_free(be->check);
	lb_probe_free(be->agent);
	free(be->name);
	free(be->address);
	free(be);
}

/* Fills be (zeroed, or cleared by backend_clear()) from conf for slot idx;
 * the control loop's. -EINVAL: conf's address is not one. */
static int backend_setup(struct balancer *bal, struct backend *be,
			 const struct lb_backend_conf *conf, unsigned idx)
{
	unsigned len;

	be->bal = bal;
	be->idx = idx;
	be->name = strdup(conf->name);
	be->address = strdup(lb_backend_conf_address(conf));
	if (!be->name || !be->address)
		return -ENOMEM;
	if (conf->address) {
		if (lb_parse_address(conf->address, &be->addr, &len) < 0)
			return -EINVAL;
	} else {
		/* no leader to follow: held down; a probe meets port 0's refusal */
		struct sockaddr_in *in = (struct sockaddr_in *)&be->addr;

		memset(&be->addr, 0, sizeof(be->addr));
		in->sin_family = AF_INET;
		len = sizeof(*in);
	}
	be->addrlen = len;
	backend_hold(be, conf);
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
	if (lb_probe_new(be, PROBE_HEALTH, &be->check) < 0 ||
	    (bal->agent_port && lb_probe_new(be, PROBE_AGENT, &be->agent) < 0))
		return -ENOMEM;
	/* usable's store (in here) publishes the rest to the workers */
	lb_backend_refresh(be, be->held_down[0] ? be->held_down : "configured");
	return 0;
}

static int backend_new(struct balancer *bal, const struct lb_backend_conf *conf, unsigned idx,
		       struct backend **ret)
{
	struct backend *be = calloc(1, sizeof(*be));
	int r;

	if (!be)
		return -ENOMEM;
	r = backend_setup(bal, be, conf, idx);
	if (r < 0) {
		backend_free(be);
		return r;
	}
	*ret = be;
	return 0;
}

/* Every worker has been woken since the removal at epoch: none is still
 * in a pick that saw the backend usable. Workers on the control loop's
 * own thread (workers: 0), or none yet, never are. */
static bool quiesced(struct lb *lb, uint64_t epoch)
{
	for (size_t i = 0; i < lb->n_workers; i++)
		if (lb->workers[i].own_base && lb->workers[i].thread_started &&
		    atomic_load(&lb->workers[i].seen_epoch) < epoch)
			return false;
	return true;
}

/* A removed backend's slot nobody can reach any more: no connection
 * holds it and no worker's pick may still see it. */
static struct backend *reusable_slot(struct balancer *bal)
{
	for (unsigned i = 0; i < atomic_load(&bal->n_backends); i++) {
		struct backend *be = bal->backends[i];

		/* quiesced first: a pick it waited for has counted its conn */
		if (be->removed && quiesced(bal->lb, be->removed_epoch) &&
		    atomic_load(&be->conns) == 0)
			return be;
	}
	return NULL;
}

/* Empties a reusable slot for backend_setup(). Workers may still scan it
 * and read backup and usable (false), which stay: lb/internal.h. */
static void backend_clear(struct backend *be)
{
	lb_probe_free(be->check);
	lb_probe_free(be->agent);
	free(be->name);
	free(be->address);
	be->name = be->address = NULL;
	memset(&be->addr, 0, sizeof(be->addr));
	memset((char *)be + offsetof(struct backend, eff_weight), 0,
	       sizeof(*be) - offsetof(struct backend, eff_weight));
}

/* Takes a freed slot, or the next one: a backend whose address keeps
 * changing (one that follows a leader) reuses the slots it left. */
static int backend_add(struct lb *lb, struct balancer *bal, const struct lb_backend_conf *conf)
{
	struct backend *be = reusable_slot(bal);
	unsigned n = atomic_load(&bal->n_backends);
	int r;

	if (be) {
		struct sockaddr_storage ss;
		unsigned len;

		if (conf->address && lb_parse_address(conf->address, &ss, &len) < 0)
			return -EINVAL; /* checked before the slot is touched */
		backend_clear(be);
		r = backend_setup(bal, be, conf, be->idx);
		if (r < 0) {
			be->removed = true; /* half set up: a removed slot again */
			be->state = "removed";
			return r;
		}
	} else {
		if (n >= LB_MAX_BACKENDS)
			return -E2BIG;
		r = backend_new(bal, conf, n, &be);
		if (r < 0)
			return r;
		bal->backends[n] = be;
		atomic_store_explicit(&bal->n_backends, n + 1, memory_order_release);
	}
	atomic_fetch_add(&bal->generation, 1);
	if (lb->started)
		lb_backend_start_checks(be);
	return 0;
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
	if (opts)
		lb->opts = *opts;
	lb->ramp = evtimer_new(base, lb_on_ramp, lb);
	lb->balancers = calloc(plan->n_balancers ? plan->n_balancers : 1, sizeof(*lb->balancers));
	if (!lb->ramp || !lb->balancers) {
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
	r = wake_new(lb->base, lb_on_notify, lb, &lb->notify);
	if (r < 0)
		return r;
	lb->workers = calloc(n, sizeof(*lb->workers));
	if (!lb->workers)
		return -ENOMEM;
	lb->n_workers = n;
	for (size_t i = 0; i < n; i++) {
		char *error = NULL;

		r = lb_worker_init(lb, &lb->workers[i], (unsigned)i, lb->opts.workers > 0, &error);
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
		r = -pthread_create(&lb->workers[i].thread, NULL, lb_worker_main, &lb->workers[i]);
		if (r < 0) {
			lb_stop(lb);
			return r;
		}
		lb->workers[i].thread_started = true;
	}
	lb->started = true;
	for (size_t b = 0; b < lb->n_balancers; b++)
		for (unsigned i = 0; i < atomic_load(&lb->balancers[b].n_backends); i++)
			lb_backend_start_checks(lb->balancers[b].backends[i]);
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
			wake_signal(w->notify);
			pthread_join(w->thread, NULL);
		}
		lb_worker_release(w);
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
	wake_free(lb->notify); /* the workers that signal it are gone */
	lb->notify = NULL;
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
	if (lb->ramp)
		event_free(lb->ramp);
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
		if (state && strcmp(state, lb_admin_names[i]) == 0)
			admin = i;
	if (admin < 0)
		return -EINVAL;
	if (!be)
		return -BCDR_ERR_NOT_FOUND;
	be->admin = (enum admin)admin;
	snprintf(reason, sizeof(reason), "set to %s by the operator", state);
	lb_backend_refresh(be, reason);
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
	lb_backend_refresh(be, "weight set by the operator");
	return 0;
}

static void backend_remove(struct lb *lb, struct backend *be)
{
	be->removed = true;
	event_del(be->check->timer);
	if (be->agent)
		event_del(be->agent->timer);
	lb_backend_refresh(be, "removed from the plan"); /* not usable from here on */
	/* The workers' next wake tells when its slot may be reused. */
	be->removed_epoch = atomic_fetch_add(&lb->epoch, 1) + 1;
	for (size_t i = 0; i < lb->n_workers; i++)
		if (lb->workers[i].notify)
			wake_signal(lb->workers[i].notify);
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
				    !strcmp(lb_backend_conf_address(&conf->backends[k]), be->address))
					keep = true;
			if (!be->removed && !keep)
				backend_remove(lb, be);
		}
		for (size_t k = 0; k < conf->n_backends; k++) {
			const struct lb_backend_conf *bc = &conf->backends[k];
			struct backend *be = find_backend(bal, bc->name);

			if (be) {
				be->weight = (unsigned)bc->weight;
				be->conf_max_conns = bc->max_conns;
				atomic_store(&be->backup, bc->backup);
				backend_hold(be, bc);
				lb_backend_refresh(be, be->held_down[0] ? be->held_down : "reloaded");
				continue;
			}
			r = backend_add(lb, bal, bc);
			if (r < 0)
				break;
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

int lb_control_listen(struct lb *lb, const char *path)
{
	if (lb->control)
		return -EALREADY;
	return lb_control_new(lb->base, path, lb, &lb->control);
}

int lb_host(const struct lb_plan *plan, struct event_base *base, const struct lb_options *opts,
	    const char *control_path, struct lb **ret, char **ret_error)
{
	struct lb *lb = NULL;
	char *error = NULL;
	int r;

	*ret = NULL;
	*ret_error = NULL;
	r = lb_new(plan, base, opts, &lb);
	if (r < 0) {
		if (asprintf(ret_error, "cannot set up the balancers: %s", err_str(r)) < 0)
			*ret_error = NULL;
		return r;
	}
	r = lb_start(lb, &error);
	if (r < 0) {
		if (error)
			*ret_error = error;
		else if (asprintf(ret_error, "cannot start the balancers: %s", err_str(r)) < 0)
			*ret_error = NULL;
		lb_free(lb);
		return r;
	}
	*ret = lb;
	if (!control_path)
		return 0;
	r = lb_control_listen(lb, control_path);
	if (r < 0) {
		if (asprintf(ret_error, "cannot serve the balancers' control socket '%s': %s",
			     control_path, err_str(r)) < 0)
			*ret_error = NULL;
		return 1;
	}
	return 0;
}
