#include "agent/daemon.h"

#include <errno.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "agent/api.h"
#include "agent/checks.h"
#include "agent/integrate.h"
#include "agent/cluster-switch.h"
#include "agent/pool.h"
#include "agent/state.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "plan/plan.h"

#define FLUSH_INTERVAL (5 * USEC_PER_SEC)
#define MAINTAIN_INTERVAL USEC_PER_HOUR
/* A run this much past its timeout counts as hung. */
#define HUNG_GRACE (5 * USEC_PER_SEC)

void agent_state_result(struct agent *a, int r, const char *what)
{
	if (r >= 0) {
		if (a->state_write_failed)
			log_info("state: writes succeed again");
		a->state_write_failed = false;
		return;
	}
	if (!a->state_write_failed)
		log_error("state: cannot write %s to '%s/state.db': %s", what,
			  a->settings->state_dir, a->state ? state_last_error(a->state) : err_str(r));
	a->state_write_failed = true;
	snprintf(a->state_error, sizeof(a->state_error), "cannot write %s: %s", what,
		 a->state ? state_last_error(a->state) : err_str(r));
}

void agent_event(struct agent *a, const char *kind, const char *check, const json_t *data,
		 const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		msg = NULL;
	log_info("%s%s%s%s: %s", kind, check ? " '" : "", check ? check : "", check ? "'" : "",
		 msg ? msg : "");
	if (!a->state)
		return;
	r = state_event_add(a->state, now_realtime(), kind, check, msg, data, NULL);
	agent_state_result(a, r, "an event");
	if (r >= 0)
		api_events_added(a->api);
}

json_t *agent_degraded_reasons(struct agent *a)
{
	json_t *reasons = json_array();
	usec_t now = now_monotonic();
	char *s;

	if (!reasons)
		return NULL;
	if (!a->state || a->state_write_failed) {
		if (asprintf(&s, "state: %s", a->state_error) >= 0) {
			json_array_append_new(reasons, json_string(s));
			free(s);
		}
	}
	if (!a->token)
		json_array_append_new(reasons, json_string("api: no token, writes are refused"));
	if (a->lb_error[0])
		json_array_append_new(reasons, json_string(a->lb_error));
	for (size_t i = 0; i < a->n_checks; i++) {
		const struct agent_check *c = a->checks[i];
		char d[32];

		if (!c->running || now - c->run_started < c->timeout + HUNG_GRACE)
			continue;
		if (asprintf(&s, "check '%s': probe has not returned for %s", c->name,
			     duration_format(now - c->run_started, d, sizeof(d))) >= 0) {
			json_array_append_new(reasons, json_string(s));
			free(s);
		}
	}
	return reasons;
}

/* The state database, opened at start and again after it failed. */
static void state_try_open(struct agent *a)
{
	int r;

	if (a->state)
		return;
	r = state_open(a->settings->state_dir, &a->state);
	if (r < 0) {
		if (!a->state_error[0])
			log_error_errno(r, "state: cannot open '%s/state.db'", a->settings->state_dir);
		snprintf(a->state_error, sizeof(a->state_error), "cannot open '%s/state.db': %s",
			 a->settings->state_dir, err_str(r));
		a->state = NULL;
		return;
	}
	a->state_error[0] = '\0';
	a->state_write_failed = false;
}

static int token_load(struct agent *a)
{
	_cleanup_free_ char *path = agent_token_path(a->settings);
	char *data = NULL, why[8400];
	int r;

	if (!path)
		return -ENOMEM;
	r = agent_token_read(path, &data, why, sizeof(why));
	if (r == -ENOENT && !a->settings->token_file) {
		/* No token_file in the plan: make one the local CLI can read. */
		unsigned char raw[24];
		char hex[sizeof(raw) * 2 + 2];

		if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
			return -errno;
		for (size_t i = 0; i < sizeof(raw); i++)
			snprintf(hex + 2 * i, 3, "%02x", raw[i]);
		hex[sizeof(raw) * 2] = '\n';
		hex[sizeof(raw) * 2 + 1] = '\0';
		r = fs_mkdir_p(a->settings->state_dir, 0700);
		if (r >= 0)
			r = fs_write_atomic(path, hex, strlen(hex), 0600);
		explicit_bzero(hex, sizeof(hex));
		explicit_bzero(raw, sizeof(raw));
		if (r < 0)
			return log_error_errno(r, "cannot create the API token '%s'", path);
		log_info("created the API token '%s'", path);
		r = agent_token_read(path, &data, why, sizeof(why));
	}
	if (r < 0) {
		log_error("%s", why);
		return r;
	}
	secret_free(a->token);
	a->token = data;
	return 0;
}

static void on_flush(evutil_socket_t fd, short what, void *userdata)
{
	struct agent *a = userdata;

	(void)fd;
	(void)what;
	state_try_open(a);
	if (a->state)
		agent_state_result(a, state_flush(a->state), "samples");
}

static void on_maintain(evutil_socket_t fd, short what, void *userdata)
{
	struct agent *a = userdata;

	(void)fd;
	(void)what;
	if (a->state)
		agent_state_result(a, state_maintain(a->state, now_realtime(), a->settings->retention),
				   "downsampled samples");
}

/* SIGHUP with a new agent.listen: the API moves without a restart. */
static int api_rebind(struct agent *a, const char *listen)
{
	struct api *api;
	int r = api_start(a, listen, &api);

	if (r < 0) {
		log_error_errno(r, "cannot listen on '%s' (agent.listen); the API stays on '%s'",
				listen, a->settings->listen);
		agent_event(a, "agent", NULL, NULL, "cannot listen on '%s': %s; the API stays on '%s'",
			    listen, err_str(r), a->settings->listen);
		return r;
	}
	api_free(a->api);
	a->api = api;
	agent_event(a, "agent", NULL, NULL, "the API moved from '%s' to '%s'", a->settings->listen,
		    listen);
	return 0;
}

static void reload(struct agent *a)
{
	struct plan *plan = NULL;
	struct plan_ref *pr;
	_cleanup_free_ char *error = NULL;
	struct agent_check **checks = NULL;
	size_t n = 0;
	int r;

	r = plan_load(a->plan_path, &plan, &error);
	if (r < 0) {
		a->reload_failures++;
		agent_event(a, "agent", NULL, NULL, "reload rejected, the running plan stays: %s",
			    error ? error : err_str(r));
		return;
	}
	if (plan->agent) {
		struct agent_settings *s = TAKE_PTR(plan->agent);
		char *tmp;

		/* A new listen address is bound now (the old socket stays if it
		 * cannot be); the database stays where it is until a restart. */
		if (strcmp(s->listen, a->settings->listen) == 0 || api_rebind(a, s->listen) < 0) {
			tmp = s->listen, s->listen = a->settings->listen;
			a->settings->listen = tmp;
		}
		if (strcmp(s->state_dir, a->settings->state_dir) != 0)
			agent_event(a, "agent", NULL, NULL, "state_dir '%s' needs a restart: the agent "
				    "keeps '%s' until then", s->state_dir, a->settings->state_dir);
		tmp = s->state_dir, s->state_dir = a->settings->state_dir, a->settings->state_dir = tmp;
		agent_settings_free(a->settings);
		a->settings = s;
	}
	pr = plan_ref_new(plan);
	if (!pr) {
		plan_free(plan);
		return;
	}
	r = agent_checks_build(a, pr, &checks, &n);
	if (r < 0) {
		a->reload_failures++;
		agent_event(a, "agent", NULL, NULL, "reload rejected, the running plan stays: %s",
			    err_str(r));
		plan_ref_put(pr);
		return;
	}
	agent_checks_install(a, checks, n);
	pthread_mutex_lock(&a->plan_lock);
	plan_ref_put(a->plan_ref);
	a->plan_ref = pr;
	a->plan = plan;
	pthread_mutex_unlock(&a->plan_lock);
	agent_engines_set_plan(a);
	a->reloads++;
	agent_event(a, "agent", NULL, NULL, "reloaded '%s': %zu checks", a->plan_path, n);
}

static void on_signal(evutil_socket_t sig, short what, void *userdata)
{
	struct agent *a = userdata;

	(void)what;
	if (sig == SIGHUP) {
		reload(a);
		return;
	}
	log_info("agent: %s, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	event_base_loopbreak(a->base);
}

static struct event *timer_every(struct agent *a, usec_t every,
				 void (*fn)(evutil_socket_t, short, void *))
{
	struct timeval tv = { (time_t)(every / USEC_PER_SEC), (suseconds_t)(every % USEC_PER_SEC) };
	struct event *ev = event_new(a->base, -1, EV_PERSIST, fn, a);

	if (ev)
		event_add(ev, &tv);
	return ev;
}

static void agent_release(struct agent *a)
{
	agent_checks_clear(a);
	agent_cluster_switchover_cancel(); /* their waits end before the pool */
	pool_free(a->pool);
	agent_engines_stop(a);
	/* after the engines: their last events (a leader stepping down) still
	 * tell the API's waiters */
	api_free(a->api);
	a->api = NULL;
	if (a->state) {
		(void)state_flush(a->state);
		state_close(a->state);
	}
	if (a->sig_hup)
		event_free(a->sig_hup);
	if (a->sig_term)
		event_free(a->sig_term);
	if (a->sig_int)
		event_free(a->sig_int);
	if (a->flush_timer)
		event_free(a->flush_timer);
	if (a->maintain_timer)
		event_free(a->maintain_timer);
	if (a->base)
		event_base_free(a->base);
	if (a->plan_ref)
		plan_ref_put(a->plan_ref);
	else
		plan_free(a->plan);
	pthread_mutex_destroy(&a->plan_lock);
	agent_settings_free(a->settings);
	free(a->plan_path);
	secret_free(a->token);
	free(a->host);
}

int agent_run(struct plan *plan, const struct agent_options *opts)
{
	/* Every return releases what was set up so far. */
	_cleanup_(agent_release) struct agent a = { .plan = plan, .exit_code = 0 };
	struct agent_check **checks = NULL;
	char hostname[256] = "localhost";
	size_t n = 0;
	int r;

	/* One malloc arena for every thread: glibc would give each worker its
	 * own (64 MiB reserved, 40-60 KiB resident each, never returned), and
	 * the agent allocates too little for them to matter (docs/agent.md,
	 * "Memory"). Before any thread starts. */
	mallopt(M_ARENA_MAX, 1);
	pthread_mutex_init(&a.plan_lock, NULL);
	log_set_timestamps(1);
	signal(SIGPIPE, SIG_IGN);
	a.plan_path = strdup(opts->plan_path);
	gethostname(hostname, sizeof(hostname) - 1);
	a.host = strdup(hostname);
	if (!a.plan_path || !a.host)
		return log_error_errno(-ENOMEM, "cannot start the agent"), 1;
	/* The agent owns its settings: reloads replace the plan under it. */
	if (plan->agent) {
		a.settings = TAKE_PTR(plan->agent);
	} else {
		r = agent_settings_new(&a.settings);
		if (r < 0)
			return log_error_errno(r, "cannot start the agent"), 1;
	}
	a.started = now_realtime();
	a.started_mono = now_monotonic();

	if (evthread_use_pthreads() < 0 || !(a.base = event_base_new())) {
		log_error("cannot create the event loop");
		return 1;
	}
	state_try_open(&a);
	if (token_load(&a) < 0)
		log_warning("api: without a token, the API refuses every write");
	r = pool_new(a.base, 2, 16, &a.pool);
	if (r < 0)
		return log_error_errno(r, "cannot start worker threads"), 1;
	r = api_start(&a, a.settings->listen, &a.api);
	if (r < 0) {
		log_error_errno(r, "cannot listen on '%s' (agent.listen)", a.settings->listen);
		return 1;
	}
	a.plan_ref = plan_ref_new(plan);
	if (!a.plan_ref)
		return log_error_errno(-ENOMEM, "cannot start the agent"), 1;
	r = agent_engines_start(&a);
	if (r < 0) {
		log_error_errno(r, "cannot start the alert and action engines");
		return 1;
	}
	r = agent_checks_build(&a, a.plan_ref, &checks, &n);
	if (r < 0) {
		log_error_errno(r, "cannot set up the checks");
		return 1;
	}
	agent_checks_install(&a, checks, n);

	a.sig_hup = evsignal_new(a.base, SIGHUP, on_signal, &a);
	a.sig_term = evsignal_new(a.base, SIGTERM, on_signal, &a);
	a.sig_int = evsignal_new(a.base, SIGINT, on_signal, &a);
	if (!a.sig_hup || !a.sig_term || !a.sig_int || event_add(a.sig_hup, NULL) < 0 ||
	    event_add(a.sig_term, NULL) < 0 || event_add(a.sig_int, NULL) < 0) {
		log_error("cannot set up signal handling");
		return 1;
	}
	a.flush_timer = timer_every(&a, FLUSH_INTERVAL, on_flush);
	a.maintain_timer = timer_every(&a, MAINTAIN_INTERVAL, on_maintain);
	on_maintain(-1, 0, &a);

	agent_event(&a, "agent", NULL, NULL, "started (pid %d, plan '%s', %zu checks, api on %s)",
		    (int)getpid(), a.plan_path, n, a.settings->listen);
	if (opts->foreground_banner) {
		printf("bcdr agent running (pid %d)\n"
		       "  API        http://%s/api/v1/status\n"
		       "  metrics    http://%s/metrics\n"
		       "  dashboard  http://%s/\n"
		       "  state      %s/state.db\n"
		       "Ctrl-C stops it.\n",
		       (int)getpid(), a.settings->listen, a.settings->listen, a.settings->listen,
		       a.settings->state_dir);
		fflush(stdout);
	}
	event_base_dispatch(a.base);
	agent_event(&a, "agent", NULL, NULL, "stopped");
	return a.exit_code;
}
