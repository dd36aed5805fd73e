/* The act engine: named actions bound to checks (Monit's "if failed then
 * restart"), run within limits. A check that enters failing runs its
 * actions; while it stays failing they run again every `retry`. More than
 * `limit` runs within the window and the engine stops acting, raises an
 * escalation alert (through the alert engine, when given) and waits until
 * the check recovers or an operator resets the action.
 *
 * Kinds: exec (argv, never a shell), restart (optional stop argv, then the
 * start argv, optionally left running in the background), backup and drill
 * (run by the agent through a callback, on the act engine's thread).
 *
 * Threads: functions are called from one thread (the agent's loop thread);
 * each run happens on a thread of its own and its result comes back through
 * the event_base (lib/wake) or, without one, act_engine_tick(). */
#pragma once

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/conf.h"
#include "lib/timeutil.h"

struct event_base;
struct alert_engine;
struct act_engine;

enum act_kind { ACT_EXEC, ACT_RESTART, ACT_BACKUP, ACT_DRILL };

struct act_action {
	char *name;
	enum act_kind kind;
	char **argv;       /* exec; restart: the start command */
	char **stop_argv;  /* restart: run (and waited for) before start; may be NULL */
	bool background;   /* restart: start stays running (a foreground server) */
	char *job;         /* backup, drill: the backup job's name */
	usec_t timeout;    /* one run, default 60s (backup, drill: none, the job's own) */
	usec_t retry;      /* run again while the check stays failing; 0: never */
	unsigned limit;    /* at most this many runs ... (0: no limit) */
	usec_t window;     /* ... within this sliding window */
	unsigned line, col;
};

struct act_plan {
	struct act_action *actions;
	size_t n;
};

/* Parses the actions: section into *ret (act_plan_free() it). */
int act_plan_parse(struct conf_ctx *ctx, const struct conf_node *node, struct act_plan **ret);
void act_plan_free(struct act_plan *plan);
const struct act_action *act_plan_find(const struct act_plan *plan, const char *name);
/* Checks that every name in actions (a check's actions: list, NULL-
 * terminated) is an action of plan; at points at the list, for the message. */
int act_plan_check_names(struct conf_ctx *ctx, const struct act_plan *plan, const char *check,
			 char *const *actions, const struct conf_node *at);
/* "3 within 10m" -> 3, 10m; "none" -> 0, 0. */
int act_limit_parse(const char *s, unsigned *ret_count, usec_t *ret_window);

/* One finished run, reported on the loop thread. */
struct act_run {
	const char *action;
	const char *check;   /* the check that triggered it, or NULL (manual) */
	enum act_kind kind;
	const char *job;     /* backup, drill: the backup job's name; else NULL */
	usec_t started;      /* realtime */
	usec_t duration;
	int exit_status;     /* exit code, 128+signal, -1 when it never ran */
	bool timed_out;
	bool ok;
	const char *output;  /* stdout+stderr, at most ACT_OUTPUT_MAX bytes */
	const char *message; /* one line: "exit status 0", "timed out after 30s", ... */
};

#define ACT_OUTPUT_MAX (64u * 1024)

enum act_event_kind {
	ACT_EVENT_RUN,       /* a run finished: run is set */
	ACT_EVENT_SKIPPED,   /* the limit was reached: not run */
	ACT_EVENT_ESCALATED, /* the limit was reached: acting stopped */
	ACT_EVENT_RESET,     /* an operator reset it, or its check recovered */
};

struct act_event {
	enum act_event_kind kind;
	const char *action;
	const char *check;
	const char *message;
	const struct act_run *run; /* ACT_EVENT_RUN only */
};

struct act_options {
	/* The clock; NULL: now_realtime(). */
	usec_t (*now)(void *userdata);
	void *now_userdata;
	/* Every run, skip, escalation and reset (loop thread); may be NULL. */
	void (*on_event)(void *userdata, const struct act_event *ev);
	/* Runs a backup job or a restore drill for the backup and drill kinds.
	 * Called on the run's own thread (it may block); returns >= 0 on
	 * success, else a negative error with *ret_message (free() it) saying
	 * why. NULL: those kinds fail with "not available". */
	int (*run_job)(void *userdata, enum act_kind kind, const char *job, char **ret_message);
	void *userdata;
	/* Escalation alerts go here (labels check, action, severity=critical);
	 * may be NULL. */
	struct alert_engine *alerts;
	const char *host;
	/* Where the limit windows and escalations are kept (table act_state),
	 * so a restart neither forgets runs nor lifts an escalation; borrowed,
	 * may be NULL (memory only). */
	sqlite3 *db;
};

int act_engine_new(const struct act_plan *plan, const struct act_options *opts,
		   struct act_engine **ret);
/* With opts->db, creates the table act_state and loads the windows and
 * escalations saved there. */
/* Waits for running actions (they are bounded by their timeouts). */
void act_engine_free(struct act_engine *e);
/* With a base, results come back through lib/wake; without, through
 * act_engine_tick(). */
int act_engine_start(struct act_engine *e, struct event_base *base);
/* A reloaded plan: limits and history are kept for actions by name. */
int act_engine_set_plan(struct act_engine *e, const struct act_plan *plan);

/* The state of check, with its actions (names, NULL-terminated): call after
 * every evaluation. Entering failing runs the actions; staying failing runs
 * them again every `retry`; ok clears an escalation caused by this check.
 * Returns how many runs it started. */
int act_engine_update(struct act_engine *e, const char *check, const char *const *actions,
		      bool failing);

/* Runs action now, for an operator (counts against the limit, which it
 * does not bypass: -BCDR_ERR_LOCKED when escalated). */
int act_engine_run(struct act_engine *e, const char *action, const char *check);

/* POST /api/v1/actions/NAME/reset: clears the escalation and the window.
 * -BCDR_ERR_NOT_FOUND for an unknown action. */
int act_engine_reset(struct act_engine *e, const char *action);

/* Applies finished runs (emits their events). Returns how many. */
int act_engine_tick(struct act_engine *e);
/* Waits until no run is in progress, at most timeout (tests). */
int act_engine_wait(struct act_engine *e, usec_t timeout);

/* GET /api/v1/actions: [{"name","kind","state":"ready|running|escalated",
 * "limit":{"count","window_s"},"runs_in_window","last_run":{"time","check",
 * "exit_status","ok","message","output"},"escalated_at","escalated_by"}] */
json_t *act_engine_actions_json(struct act_engine *e);
