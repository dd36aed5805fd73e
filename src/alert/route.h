/* The plan's alerts: section: receivers (where notifications go) and the
 * routing tree (which receiver gets an alert, and the grouping timers),
 * in the shape Alertmanager operators already know. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "lib/cleanup.h"
#include "lib/conf.h"
#include "lib/timeutil.h"

enum alert_receiver_kind {
	ALERT_RECEIVER_EMAIL,
	ALERT_RECEIVER_WEBHOOK,
	ALERT_RECEIVER_EXEC,
	ALERT_RECEIVER_LOG,
};

struct alert_email {
	char **to;            /* at least one address */
	char *from;
	char *smtp;           /* smtp://host:port or smtps://host:port */
	char *username;       /* optional SMTP AUTH */
	char *password_file;  /* read at send time, first line */
	/* STARTTLS must succeed (else: tried when offered); unset in the plan:
	 * true unless the server is on loopback */
	bool require_tls;
};

struct alert_webhook {
	char *url;
	/* Post the alerts to an Alertmanager instead: url is its base
	 * (http://am:9093), bcdr appends /api/v2/alerts. */
	bool alertmanager;
	char *bearer_token_file; /* optional Authorization: Bearer */
	unsigned max_alerts;     /* 0: all alerts of the group in one message */
};

struct alert_exec {
	char **argv; /* absolute path first; run without a shell */
};

struct alert_log {
	char *path; /* JSON lines appended here; NULL: the agent's log */
};

struct alert_receiver {
	char *name;
	enum alert_receiver_kind kind;
	usec_t timeout; /* one delivery attempt, default 10s */
	struct alert_email email;
	struct alert_webhook webhook;
	struct alert_exec exec;
	struct alert_log log;
};

struct alert_matcher {
	char *label;
	char *pattern; /* fnmatch(3) glob: "web", "web-*" */
};

struct alert_route {
	char *receiver;     /* inherited from the parent when absent */
	char **group_by;    /* label names; "..." groups by every label */
	usec_t group_wait;      /* wait for more alerts before the first notification */
	usec_t group_interval;  /* wait before notifying a changed group */
	usec_t repeat_interval; /* resend an unchanged firing group after this */
	bool cont;              /* `continue`: also try the next sibling routes */
	struct alert_matcher *match; /* all must match (a route without: matches all) */
	size_t n_match;
	struct alert_route *routes; /* children, tried in order */
	size_t n_routes;
	unsigned id;        /* preorder index in the tree, part of group keys */
	unsigned line, col; /* where it is in the plan, for messages */
};

struct alert_plan {
	struct alert_receiver *receivers;
	size_t n_receivers;
	struct alert_route route; /* the root route: matches everything */
	char *external_url;       /* externalURL in webhooks; default from agent.listen */
	bool send_resolved;       /* notify when a group's alerts resolve (default true) */
};

/* Parses the alerts: section into *ret (alert_plan_free() it). */
int alert_plan_parse(struct conf_ctx *ctx, const struct conf_node *node, struct alert_plan **ret);
void alert_plan_free(struct alert_plan *plan);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct alert_plan *, alert_plan_free)

/* The receiver called name, or NULL. */
const struct alert_receiver *alert_plan_receiver(const struct alert_plan *plan, const char *name);

/* Checks every route names a known receiver; errors point at the route. */
int alert_plan_check_receivers(struct conf_ctx *ctx, const struct alert_plan *plan);

/* Label lookup for matching: returns the value of label name, or NULL. */
typedef const char *(*alert_label_fn)(void *userdata, const char *name);

/* Collects the routes that take an alert with these labels (Alertmanager's
 * tree walk: the deepest matching child, siblings only with `continue`).
 * Writes at most max borrowed pointers to ret; returns how many. Each
 * returned route has its inherited receiver and timers filled in. */
size_t alert_plan_match(const struct alert_plan *plan, alert_label_fn labels, void *userdata,
			const struct alert_route **ret, size_t max);

/* True when every matcher matches; a missing label never matches. */
bool alert_matchers_match(const struct alert_matcher *m, size_t n, alert_label_fn labels,
			  void *userdata);
