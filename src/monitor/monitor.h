/* The monitoring engine: the checks of the plan (checks: section), the
 * probes that measure them, and the rules that turn measurements into
 * confirmed states and transitions.
 *
 * How the agent uses it, per check and per cycle:
 *
 *   struct probe_state *ps = probe_state_new(def);    once per check
 *   struct rule_state rs; rule_state_init(&rs);       once per check
 *   ...
 *   probe_run(def, ps, &env, &result);                on a worker thread:
 *                                                     blocks, bounded by
 *                                                     def->timeout
 *   rule_update(def, &rs, &result, now, &tr);         on the loop thread
 *   if (tr.changed || tr.flap_changed) feed tr to the alert engine
 *
 * One check is never probed twice at the same time (its probe_state keeps
 * the previous sample for rates); different checks run in parallel. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/conf.h"
#include "lib/timeutil.h"

#define RULE_HISTORY_MAX 64 /* cycles remembered for flap detection */

/* Status of one measurement and the confirmed state of a check. The numbers
 * are stable (stored in the agent's database and exported in /metrics). */
enum check_status {
	CHECK_OK = 0,
	CHECK_WARNING = 1,
	CHECK_CRITICAL = 2,
	CHECK_UNKNOWN = 3, /* could not measure (probe error, missing data) */
	CHECK_STATUS_MAX,
};

/* "ok", "warning", "critical", "unknown". */
const char *check_status_name(enum check_status s);
/* Ordering used to combine statuses: ok < warning < unknown < critical. */
int check_status_rank(enum check_status s);
/* The worse of two statuses by that ordering. */
enum check_status check_status_worst(enum check_status a, enum check_status b);

enum probe_kind {
	PROBE_SYSTEM,
	PROBE_PROCESS,
	PROBE_TCP,
	PROBE_HTTP,
	PROBE_FILE,
	PROBE_PROGRAM,
	PROBE_BACKUP,
	PROBE_KIND_MAX,
};

/* "system", "process", "tcp", "http", "file", "program", "backup". */
const char *probe_kind_name(enum probe_kind k);

/* What a system probe measures (system: cpu | load | load5 | load15 |
 * memory | swap | disk:/PATH | inodes:/PATH | io:DEVICE | net:IFACE). */
enum system_metric {
	SYSTEM_CPU,     /* % of all CPUs busy since the previous run */
	SYSTEM_LOAD1,   /* load average over 1 minute */
	SYSTEM_LOAD5,
	SYSTEM_LOAD15,
	SYSTEM_MEMORY,  /* % of memory in use (MemTotal - MemAvailable) */
	SYSTEM_SWAP,    /* % of swap in use */
	SYSTEM_DISK,    /* % of the filesystem's space used (as df shows) */
	SYSTEM_INODES,  /* % of the filesystem's inodes used */
	SYSTEM_IO,      /* % of time the block device was busy */
	SYSTEM_NET,     /* bytes per second received + sent on an interface */
	SYSTEM_METRIC_MAX,
};

/* What a process probe measures; its value. */
enum process_measure {
	PROCESS_COUNT,    /* number of matching processes (default) */
	PROCESS_CPU,      /* % of one CPU used by the process since the previous run */
	PROCESS_MEMORY,   /* resident set size, bytes */
	PROCESS_CHILDREN, /* number of direct children */
	PROCESS_UPTIME,   /* seconds since the process started */
};

enum http_measure {
	HTTP_LATENCY,   /* seconds to the whole response (default) */
	HTTP_CERT_DAYS, /* days until the server's TLS certificate expires */
};

enum file_measure {
	FILE_SIZE, /* bytes (default) */
	FILE_AGE,  /* seconds since the last modification */
};

enum program_measure {
	PROGRAM_EXIT,   /* exit status (default) */
	PROGRAM_OUTPUT, /* the first number printed on standard output */
};

/* How a program's exit status maps to a status. */
enum program_exit_codes {
	PROGRAM_EXIT_ZERO_OK, /* 0 ok, anything else critical (default) */
	PROGRAM_EXIT_NAGIOS,  /* 0 ok, 1 warning, 2 critical, 3 and others unknown */
};

struct check_label {
	char *key;
	char *value;
};

/* A threshold: the value is bad when above (default) or below it. */
struct check_threshold {
	bool set;
	double value;
};

/* A check of the plan. Everything is owned by the check_def. */
struct check_def {
	char *name;
	char *description;      /* annotation for alerts, or NULL */
	bool enabled;           /* enabled: false keeps it in the plan, unprobed */
	enum probe_kind kind;
	usec_t interval;        /* 0: the agent's default interval */
	usec_t timeout;         /* bound on one probe run (default 10s) */

	/* Thresholds on the probe's value, in its unit (bytes, seconds, %, ...). */
	struct check_threshold warn, crit;
	bool below;             /* bad when the value falls below (days left) */
	uint64_t for_cycles;    /* consecutive bad cycles before a worse state is confirmed (1) */
	uint64_t recover_cycles; /* consecutive better cycles before recovery is confirmed (1) */
	double recover_margin;  /* to recover, the value must be past the threshold by this */
	/* Flap detection: flapping when the raw status changed at least
	 * flap_changes times in the last flap_cycles cycles; it stops below half
	 * of that. flap_changes 0: off. */
	uint64_t flap_changes;  /* default 6 */
	uint64_t flap_cycles;   /* default 20, at most RULE_HISTORY_MAX */
	enum check_status on_change; /* status for a cycle when a pid or checksum changed */

	struct check_label *labels; /* labels: { component: web, ... } */
	size_t n_labels;
	char **actions;         /* names of actions: to run (NULL-terminated, may be NULL) */

	/* predict: { horizon: 4h }: forecast time to crossing the thresholds. */
	bool predict;
	usec_t predict_horizon;
	/* anomaly: { above: 0.5, for: 1 }: anomaly score as a warning. */
	bool anomaly;
	double anomaly_above;
	uint64_t anomaly_for;

	union {
		struct {
			enum system_metric metric;
			char *target; /* path (disk, inodes), device (io), interface (net) */
		} system;
		struct {
			char *pidfile;     /* or */
			char *match;       /* extended regex on the command line */
			enum process_measure measure;
		} process;
		struct {
			char *host;        /* default 127.0.0.1 */
			uint16_t port;
			char *send;        /* written after connecting, or NULL */
			char *expect;      /* extended regex the reply must match, or NULL */
		} tcp;
		struct {
			char *url;
			char *method;      /* GET (default), HEAD, POST */
			int64_t expect_status; /* 0: any status below 400 */
			char *body;        /* extended regex the body must match, or NULL */
			char **headers;    /* "Name: value" */
			bool insecure;     /* do not verify the certificate */
			char *ca_file;
			enum http_measure measure;
		} http;
		struct {
			char *path;
			enum file_measure measure;
			bool checksum;     /* warn (on_change) when the contents changed */
			int64_t mode;      /* expected permission bits, -1: any */
		} file;
		struct {
			char **argv;
			char *output;      /* extended regex standard output must match, or NULL */
			enum program_measure measure;
			enum program_exit_codes exit_codes;
		} program;
		struct {
			char *job;         /* the backups: job */
		} backup;
	} probe;
};

/* The checks: section. */
struct monitor_plan {
	struct check_def *checks;
	size_t n_checks;
};

/* Parses the checks: list into *ret (monitor_plan_free() it). */
int monitor_plan_parse(struct conf_ctx *ctx, const struct conf_node *node,
		       struct monitor_plan **ret);
void monitor_plan_free(struct monitor_plan *mp);
/* The check called name, or NULL. */
const struct check_def *monitor_plan_find(const struct monitor_plan *mp, const char *name);
/* Value of a label of the check ("component"), or NULL. */
const char *check_label(const struct check_def *def, const char *key);

/* ---- probes ---- */

#define PROBE_MESSAGE_MAX 512
#define PROBE_OUTPUT_MAX (64u * 1024) /* bytes of program output kept */
#define PROBE_BODY_MAX (1u << 20)     /* bytes of an HTTP body matched */

/* Newest snapshot of a backup job and the job's rpo, for backup probes;
 * supplied by the caller so monitor does not depend on the backup engine.
 * Returns -BCDR_ERR_NOT_FOUND when the job has no snapshot (or no such
 * job); *ret_rpo 0 when the job has none. Called from worker threads. */
typedef int (*probe_backup_newest_fn)(void *userdata, const char *job, usec_t *ret_newest,
				      usec_t *ret_rpo);

/* What probes may need from their caller. */
struct probe_env {
	probe_backup_newest_fn backup_newest; /* NULL: backup checks are unknown */
	void *backup_userdata;
};

/* One measurement. */
struct probe_result {
	enum check_status status; /* thresholds applied (without hysteresis) */
	enum check_status probe_status; /* the probe's own verdict before thresholds:
					   critical when the service failed (refused,
					   wrong status, not running), unknown when it
					   could not be measured */
	bool has_value;
	double value;
	const char *unit;         /* static: "%", "bytes", "bytes/s", "s", "days", "" */
	char message[PROBE_MESSAGE_MAX]; /* one line for people */
	usec_t started;           /* realtime when the probe started */
	usec_t duration;          /* how long it took */
	bool changed;             /* pid or checksum changed since the previous run */
};

/* Per-check state between runs (previous counters for rates, pid, checksum). */
struct probe_state;
int probe_state_new(const struct check_def *def, struct probe_state **ret);
void probe_state_free(struct probe_state *ps);

/* Runs the check's probe once, blocking at most about def->timeout. Always
 * fills *ret (a probe that fails gives a critical or unknown result with a
 * message); returns 0, or -ENOMEM. ps may be NULL (no rates between runs:
 * rates are then sampled over a short interval). */
int probe_run(const struct check_def *def, struct probe_state *ps, const struct probe_env *env,
	      struct probe_result *ret);

/* Status of value against the check's thresholds, given the check's
 * confirmed state (for the recovery margin; CHECK_OK: none). */
enum check_status check_threshold_status(const struct check_def *def, double value,
					 enum check_status confirmed);

/* ---- rules ---- */

/* The rule state machine of one check: confirmed state with `for` cycles,
 * recovery hysteresis and flap detection. Embedded, no heap. */
struct rule_state {
	enum check_status state;   /* confirmed state */
	enum check_status raw;     /* status of the latest cycle (hysteresis applied) */
	usec_t since;              /* when the confirmed state began (0: never probed) */
	bool flapping;
	uint64_t cycles;           /* cycles seen */
	/* By status rank (ok 0, warning 1, unknown 2, critical 3): consecutive
	 * cycles at that rank or worse (at_least), at that rank or better
	 * (at_most). `for` and `recover` count these, per level, so a warning
	 * pending for two cycles that turns critical has critical pending too. */
	uint64_t at_least[4], at_most[4];
	/* Ring of the last statuses, newest at history[(head + n - 1) % MAX]. */
	uint8_t history[RULE_HISTORY_MAX];
	unsigned head, n;
};

/* What one cycle changed. */
struct rule_transition {
	bool changed;              /* the confirmed state changed: from -> to */
	enum check_status from, to;
	bool pending;              /* raw worse than confirmed, waiting for `for` cycles */
	bool flapping;             /* the check is flapping (notifications should be held) */
	bool flap_changed;         /* flapping started or stopped this cycle */
};

void rule_state_init(struct rule_state *rs);
/* Restores a confirmed state kept across an agent restart. */
void rule_state_restore(struct rule_state *rs, enum check_status state, usec_t since);
/* Feeds one probe result; result->status is re-evaluated with the recovery
 * margin against the confirmed state (it never gets better than it was, so
 * a caller may raise it first, for an anomaly). Fills *ret. */
void rule_update(const struct check_def *def, struct rule_state *rs, struct probe_result *result,
		 usec_t now, struct rule_transition *ret);
/* Changes of the raw status within the flap window (the last flap_cycles). */
unsigned rule_flap_changes(const struct check_def *def, const struct rule_state *rs);
/* The worst status of the flap window and the confirmed state: the
 * severity a flapping check is announced with. */
enum check_status rule_recent_worst(const struct check_def *def, const struct rule_state *rs);
/* Feeds a bare status (for unit tests and synthetic checks). */
void rule_update_status(const struct check_def *def, struct rule_state *rs,
			enum check_status status, usec_t now, struct rule_transition *ret);
