/* The agent's scheduler: every check of the plan (monitor probes, backup
 * jobs, RPO freshness, restore drills) is an agent_check with a blocking
 * run() done on the worker pool at its interval. Results come back to the
 * loop thread, go through the check's rules, and confirmed state changes
 * become events, incidents and alerts.
 *
 * A check runs at most once at a time: one that has not returned when its
 * next turn comes is skipped (and reported hung after its timeout), so a
 * probe that never returns blocks only itself. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "agent/daemon.h"

struct check_result {
	int status;       /* enum check_status */
	bool has_value;
	double value;
	char unit[16];
	char message[512];
	usec_t duration;  /* set by the scheduler */
};

/* What a kind of check does; run() is called on a worker thread and may
 * block up to the check's timeout; rule() runs on the loop thread and
 * turns a raw result into the confirmed status (NULL: the raw status). */
struct check_ops {
	void (*run)(void *impl, struct check_result *res);
	/* May adjust res; *ret_pending: worse than confirmed, waiting for `for`. */
	int (*rule)(void *impl, struct check_result *res, int current, bool *ret_pending);
	/* A reload replaced old (same name, same ops) by impl: keep what it learned. */
	void (*carry)(void *impl, const void *old);
	/* Restarted: the confirmed state saved before. */
	void (*restore)(void *impl, int status, usec_t since);
	void (*free)(void *impl);
};

struct agent_check {
	unsigned refs;
	struct agent *agent;
	char *name;
	char *kind;             /* "http", "system", "backup", "rpo", "drill", ... */
	char *component;        /* the component: label, or NULL */
	char *description;      /* annotation for alerts, or NULL */
	char **actions;         /* actions: to run when it fails (NULL-terminated) or NULL */
	json_t *labels;         /* {"check","host",...} */
	usec_t interval, timeout;
	const struct check_ops *ops;
	void *impl;
	bool retired;           /* replaced by a reload: results are dropped */
	usec_t due;             /* monotonic: the next turn (one scheduler for all) */

	bool running;
	usec_t run_started;     /* monotonic */
	struct check_result inflight; /* written by the worker during a run */

	bool has_result;
	struct check_result last;
	usec_t last_run;        /* realtime */
	int status;             /* confirmed (after the rules) */
	usec_t since;           /* realtime of the last confirmed change */
	unsigned long long runs, skipped;
	bool pending;           /* failing, waiting for `for:` cycles */
	/* Flap detection (set by rule()): while flapping, state changes are
	 * events but not notifications; the alert says "flapping" once, with
	 * the worst status of the window when it began, and the state the check
	 * settles in is notified when flapping stops. */
	bool flapping;
	bool flap_changed;      /* started or stopped this cycle */
	int flap_severity;
	unsigned flap_changes, flap_window;
	bool actions_held;      /* critical while flapping: actions wait (event said) */
	double anomaly_score;   /* NAN when no predictor runs */
	uint64_t anomaly_samples; /* samples its predictor learned (across restarts) */
	json_t *forecast;       /* or NULL */
};

/* A new check (refs 1); takes impl (ops->free() frees it). */
int agent_check_new(struct agent *a, const char *name, const char *kind, usec_t interval,
		    usec_t timeout, const struct check_ops *ops, void *impl,
		    struct agent_check **ret);
struct agent_check *agent_check_ref(struct agent_check *c);
void agent_check_unref(struct agent_check *c);

/* Installs checks as the running set (taking the array): state carries
 * over by name from the set it replaces, and they are scheduled. */
void agent_checks_install(struct agent *a, struct agent_check **checks, size_t n);
/* Stops and drops every check. */
void agent_checks_clear(struct agent *a);

struct agent_check *agent_check_find(struct agent *a, const char *name);

/* The API's shape of a check (new object). */
json_t *agent_check_json(const struct agent_check *c);
