#include "act/act.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alert/alert.h"
#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/spawn.h"
#include "lib/sql.h"
#include "lib/strv.h"
#include "lib/wake.h"

#define API_OUTPUT_MAX 4096 /* what the API shows of the last run's output */
#define MAX_RUNS_KEPT 1000

/* ---- plan ---- */

static int parse_limit(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct act_action *a = (struct act_action *)((char *)field - offsetof(struct act_action, limit));

	if (node->type != CONF_NODE_SCALAR || act_limit_parse(node->value, &a->limit, &a->window) < 0)
		return conf_errorf(ctx, node, "expected a limit such as '3 within 10m' (or 'none')");
	return 0;
}

static int parse_argv(struct conf_ctx *ctx, const struct conf_node *node, char ***argv)
{
	int r;

	if (node->type == CONF_NODE_MAP)
		return conf_errorf(ctx, node, "expected a command as a list: [/path/to/program, arg, ...]");
	r = conf_parse_scalar(ctx, node, CONF_STRV, argv);
	if (r < 0)
		return r;
	if (!(*argv)[0] || !(*argv)[0][0])
		return conf_errorf(ctx, node, "expected a command as a list: [/path/to/program, arg, ...]");
	return 0;
}

static int set_kind(struct conf_ctx *ctx, const struct conf_node *node, struct act_action *a,
		    enum act_kind kind)
{
	if ((int)a->kind != -1)
		return conf_errorf(ctx, node, "an action has one kind: exec, restart, backup or drill");
	a->kind = kind;
	return 0;
}

static int parse_exec(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct act_action *a = field;
	int r = set_kind(ctx, node, a, ACT_EXEC);

	return r < 0 ? r : parse_argv(ctx, node, &a->argv);
}

static int parse_start(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	return parse_argv(ctx, node, field);
}

static const struct conf_field restart_fields[] = {
	CONF_CUSTOM_FIELD("start", struct act_action, argv, CONF_REQUIRED, parse_start),
	CONF_CUSTOM_FIELD("stop", struct act_action, stop_argv, 0, parse_start),
	CONF_FIELD("background", CONF_BOOL, struct act_action, background, 0),
	{}
};

static int parse_restart(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	struct act_action *a = field;
	int r = set_kind(ctx, node, a, ACT_RESTART);

	if (r < 0)
		return r;
	if (node->type != CONF_NODE_MAP)
		return conf_errorf(ctx, node, "'restart' is a map: { start: [argv], stop: [argv],"
				   " background: true }");
	return conf_parse_fields(ctx, node, restart_fields, a);
}

static int parse_job(struct conf_ctx *ctx, const struct conf_node *node, struct act_action *a,
		     enum act_kind kind)
{
	int r = set_kind(ctx, node, a, kind);

	return r < 0 ? r : conf_parse_scalar(ctx, node, CONF_STRING, &a->job);
}

static int parse_backup(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	return parse_job(ctx, node, field, ACT_BACKUP);
}

static int parse_drill(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	return parse_job(ctx, node, field, ACT_DRILL);
}

static const struct conf_field action_fields[] = {
	CONF_FIELD("name", CONF_STRING, struct act_action, name, CONF_REQUIRED),
	{ "exec", CONF_CUSTOM, 0, 0, 0, 0, NULL, parse_exec },
	{ "restart", CONF_CUSTOM, 0, 0, 0, 0, NULL, parse_restart },
	{ "backup", CONF_CUSTOM, 0, 0, 0, 0, NULL, parse_backup },
	{ "drill", CONF_CUSTOM, 0, 0, 0, 0, NULL, parse_drill },
	CONF_RANGE("timeout", CONF_DURATION, struct act_action, timeout, 0, 0.001, 86400),
	CONF_FIELD("retry", CONF_DURATION, struct act_action, retry, 0),
	CONF_CUSTOM_FIELD("limit", struct act_action, limit, 0, parse_limit),
	{}
};

static void action_init(void *elem)
{
	struct act_action *a = elem;

	a->kind = (enum act_kind)-1;
	a->timeout = 60 * USEC_PER_SEC;
	a->retry = USEC_PER_MINUTE;
	a->limit = 3;
	a->window = 10 * USEC_PER_MINUTE;
}

static void action_release(void *elem)
{
	struct act_action *a = elem;

	free(a->name);
	strv_free(a->argv);
	strv_free(a->stop_argv);
	free(a->job);
}

static int parse_action(struct conf_ctx *ctx, const struct conf_node *item, void *elem)
{
	struct act_action *a = elem;
	int r = conf_parse_fields(ctx, item, action_fields, a);

	if (r < 0)
		return r;
	a->line = item->line;
	a->col = item->col;
	if ((int)a->kind == -1)
		return conf_errorf(ctx, item, "action '%s' needs one of: exec, restart, backup, drill",
				   a->name);
	return 0;
}

int act_limit_parse(const char *s, unsigned *ret_count, usec_t *ret_window)
{
	char *end;
	unsigned long n;
	usec_t w;

	if (strcmp(s, "none") == 0) {
		*ret_count = 0;
		*ret_window = 0;
		return 0;
	}
	errno = 0;
	n = strtoul(s, &end, 10);
	if (end == s || errno || n == 0 || n > 10000)
		return -EINVAL;
	while (*end == ' ')
		end++;
	if (strncmp(end, "within", 6) != 0 || end[6] != ' ')
		return -EINVAL;
	end += 6;
	while (*end == ' ')
		end++;
	if (duration_parse(end, &w) < 0 || w == 0)
		return -EINVAL;
	*ret_count = (unsigned)n;
	*ret_window = w;
	return 0;
}

void act_plan_free(struct act_plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; i < plan->n; i++)
		action_release(&plan->actions[i]);
	free(plan->actions);
	free(plan);
}

int act_plan_parse(struct conf_ctx *ctx, const struct conf_node *node, struct act_plan **ret)
{
	struct act_plan *plan = calloc(1, sizeof(*plan));
	int r;

	if (!plan)
		return -ENOMEM;
	r = conf_parse_list(ctx, node, sizeof(struct act_action), action_init, parse_action,
			    action_release, (void **)&plan->actions, &plan->n);
	if (r < 0) {
		free(plan);
		return r;
	}
	for (size_t i = 0; i < plan->n; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(plan->actions[i].name, plan->actions[j].name) == 0) {
				r = conf_errorf(ctx, node->items[i], "action '%s' is defined twice",
						plan->actions[i].name);
				act_plan_free(plan);
				return r;
			}
	*ret = plan;
	return 0;
}

int act_plan_check_names(struct conf_ctx *ctx, const struct act_plan *plan, const char *check,
			 char *const *actions, const struct conf_node *at)
{
	for (size_t i = 0; actions && actions[i]; i++) {
		const struct conf_node *item = at;

		if (act_plan_find(plan, actions[i]))
			continue;
		if (at && at->type == CONF_NODE_SEQ && i < at->n)
			item = at->items[i];
		if (!plan || plan->n == 0)
			return conf_errorf(ctx, item, "check '%s' names action '%s' but the plan has"
					   " no actions: section", check, actions[i]);
		return conf_errorf(ctx, item, "check '%s' names unknown action '%s'", check,
				   actions[i]);
	}
	return 0;
}

const struct act_action *act_plan_find(const struct act_plan *plan, const char *name)
{
	if (!plan || !name)
		return NULL;
	for (size_t i = 0; i < plan->n; i++)
		if (strcmp(plan->actions[i].name, name) == 0)
			return &plan->actions[i];
	return NULL;
}

/* ---- engine ---- */

struct run {
	struct act_engine *e;
	pthread_t thread;
	/* what to run: copies, the plan may be reloaded meanwhile */
	char *action, *check, *job;
	enum act_kind kind;
	char **argv, **stop_argv;
	bool background;
	usec_t timeout;
	/* result, guarded by e->lock */
	bool done;
	usec_t started, duration;
	int exit_status;
	bool timed_out, ok;
	pid_t background_pid;
	char *output, *message;
};

struct act_state {
	char *name;
	usec_t *runs; /* start times within the window, oldest first */
	size_t n_runs;
	bool running;
	bool rearmed;   /* reset while its check fails: run at the next update */
	bool escalated;
	char *escalated_by;
	usec_t escalated_at;
	/* last run, for the API */
	bool has_last;
	usec_t last_time;
	char *last_check, *last_message, *last_output;
	int last_exit;
	bool last_ok;
};

struct check_state {
	char *name;
	bool failing;
	usec_t last_trigger;
};

struct act_engine {
	const struct act_plan *plan;
	struct act_options opts;
	struct act_state **states;
	size_t n_states;
	struct check_state **checks;
	size_t n_checks;
	struct run **runs;
	size_t n_runs;
	pid_t *background;
	size_t n_background;
	pthread_mutex_t lock;
	struct wake *done; /* runs -> loop: a run finished */
};

static usec_t now(struct act_engine *e)
{
	return e->opts.now ? e->opts.now(e->opts.now_userdata) : now_realtime();
}

static void run_free(struct run *r)
{
	if (!r)
		return;
	free(r->action);
	free(r->check);
	free(r->job);
	strv_free(r->argv);
	strv_free(r->stop_argv);
	free(r->output);
	free(r->message);
	free(r);
}

static void state_free(struct act_state *s)
{
	if (!s)
		return;
	free(s->name);
	free(s->runs);
	free(s->escalated_by);
	free(s->last_check);
	free(s->last_message);
	free(s->last_output);
	free(s);
}

static struct act_state *state_get(struct act_engine *e, const char *name)
{
	struct act_state *s, **grown;

	for (size_t i = 0; i < e->n_states; i++)
		if (strcmp(e->states[i]->name, name) == 0)
			return e->states[i];
	s = calloc(1, sizeof(*s));
	grown = realloc(e->states, (e->n_states + 1) * sizeof(*grown));
	if (grown)
		e->states = grown;
	if (!s || !grown || !(s->name = strdup(name))) {
		free(s);
		return NULL;
	}
	e->states[e->n_states++] = s;
	return s;
}

/* ---- persistence: the window and the escalation of each action ---- */

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS act_state(action TEXT PRIMARY KEY,"
	" runs TEXT NOT NULL, escalated INTEGER NOT NULL DEFAULT 0,"
	" escalated_us INTEGER, escalated_by TEXT);";

/* Best effort: a full disk must not stop the actions (the agent reports
 * the database itself as degraded). */
static void state_save(struct act_engine *e, const struct act_state *s)
{
	_cleanup_json_ json_t *runs = json_array();
	_cleanup_free_ char *text = NULL;

	if (!e->opts.db || !runs)
		return;
	for (size_t i = 0; i < s->n_runs; i++)
		json_array_append_new(runs, json_integer((json_int_t)s->runs[i]));
	text = json_dumps(runs, JSON_COMPACT);
	if (!text)
		return;
	(void)sql_exec(e->opts.db,
		       "INSERT OR REPLACE INTO act_state(action, runs, escalated, escalated_us,"
		       " escalated_by) VALUES (?,?,?,?,?)", "ttiit", s->name, text,
		       (long long)s->escalated, (long long)s->escalated_at, s->escalated_by);
}

static int state_load_row(struct act_engine *e, sqlite3_stmt *st)
{
	const char *name = (const char *)sqlite3_column_text(st, 0);
	const char *runs = (const char *)sqlite3_column_text(st, 1);
	const char *by = (const char *)sqlite3_column_text(st, 4);
	_cleanup_json_ json_t *list = runs ? json_loads(runs, 0, NULL) : NULL;
	struct act_state *s;
	size_t i;
	json_t *v;

	if (!name)
		return 0;
	s = state_get(e, name);
	if (!s)
		return -ENOMEM;
	free(s->runs);
	s->runs = calloc(json_array_size(list) + 1, sizeof(*s->runs));
	s->n_runs = 0;
	if (!s->runs)
		return -ENOMEM;
	json_array_foreach(list, i, v)
		if (json_is_integer(v) && json_integer_value(v) > 0 && s->n_runs < MAX_RUNS_KEPT)
			s->runs[s->n_runs++] = (usec_t)json_integer_value(v);
	s->escalated = sqlite3_column_int(st, 2) != 0;
	s->escalated_at = (usec_t)sqlite3_column_int64(st, 3);
	free(s->escalated_by);
	s->escalated_by = by ? strdup(by) : NULL;
	return by && !s->escalated_by ? -ENOMEM : 0;
}

static int state_load_all(struct act_engine *e)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	if (!e->opts.db)
		return 0;
	rc = sqlite3_exec(e->opts.db, schema, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_error(rc);
	r = sql_prepare(e->opts.db, &st, "SELECT action, runs, escalated, escalated_us,"
			" escalated_by FROM act_state", NULL);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = state_load_row(e, st);
		if (r < 0)
			return r;
	}
	return rc == SQLITE_DONE ? 0 : sql_error(rc);
}

static char **run_env(const struct run *r)
{
	char *extra[4] = { NULL };
	char **env;

	if (asprintf(&extra[0], "BCDR_ACTION=%s", r->action) < 0)
		extra[0] = NULL;
	if (asprintf(&extra[1], "BCDR_CHECK=%s", r->check ? r->check : "") < 0)
		extra[1] = NULL;
	env = extra[0] && extra[1] ? spawn_default_env(extra) : NULL;
	free(extra[0]);
	free(extra[1]);
	return env;
}

static void run_program(struct run *r)
{
	_cleanup_strv_free_ char **env = run_env(r);
	struct spawn_result res = { 0 };
	struct buf out;
	char how[128];
	int k;

	buf_init(&out, ACT_OUTPUT_MAX);
	if (!env) {
		r->exit_status = -1;
		r->message = strdup("out of memory");
		return;
	}
	if (r->stop_argv) {
		struct spawn_options o = { .argv = r->stop_argv, .envp = env, .timeout = r->timeout,
					   .output_max = ACT_OUTPUT_MAX };

		k = spawn_run(&o, &res);
		if (k >= 0) {
			buf_append(&out, res.output, res.output_len);
			spawn_result_release(&res);
		}
		/* a stop that fails (nothing to stop) does not prevent the start */
	}
	{
		struct spawn_options o = { .argv = r->argv, .envp = env, .timeout = r->timeout,
					   .output_max = ACT_OUTPUT_MAX, .background = r->background };

		k = spawn_run(&o, &res);
	}
	if (k < 0) {
		r->exit_status = -1;
		if (asprintf(&r->message, "cannot run '%s': %s", r->argv[0], err_str(k)) < 0)
			r->message = NULL;
		r->output = buf_steal(&out, NULL);
		return;
	}
	if (res.output)
		buf_append(&out, res.output, res.output_len);
	r->exit_status = res.running ? 0 : res.exit_status;
	r->timed_out = res.timed_out;
	r->ok = !res.timed_out && (res.running || res.exit_status == 0);
	if (res.running)
		r->background_pid = res.pid;
	r->message = strdup(spawn_describe(&res, r->timeout, how, sizeof(how)));
	r->output = buf_steal(&out, NULL);
	spawn_result_release(&res);
}

static void *run_main(void *userdata)
{
	struct run *r = userdata;
	struct act_engine *e = r->e;
	usec_t t0 = now_monotonic();

	if (r->kind == ACT_BACKUP || r->kind == ACT_DRILL) {
		char *message = NULL;
		int k;

		if (!e->opts.run_job) {
			k = -BCDR_ERR_UNSUPPORTED;
			message = strdup("backup and drill actions need the agent");
		} else {
			k = e->opts.run_job(e->opts.userdata, r->kind, r->job, &message);
		}
		r->ok = k >= 0;
		r->exit_status = k >= 0 ? 0 : 1;
		if (!message && asprintf(&message, "%s", k >= 0 ? "ok" : err_str(k)) < 0)
			message = NULL;
		r->message = message;
	} else {
		run_program(r);
	}
	pthread_mutex_lock(&e->lock);
	r->duration = now_monotonic() - t0;
	r->done = true;
	wake_signal(e->done);
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

static void emit(struct act_engine *e, enum act_event_kind kind, const char *action,
		 const char *check, const char *message, const struct act_run *run)
{
	struct act_event ev = { kind, action, check, message, run };

	if (e->opts.on_event)
		e->opts.on_event(e->opts.userdata, &ev);
}

static void escalation_alert(struct act_engine *e, const struct act_state *s, bool firing)
{
	char name[512], summary[512], window[32];
	const struct act_action *a = act_plan_find(e->plan, s->name);

	if (!e->opts.alerts)
		return;
	snprintf(name, sizeof(name), "escalation:%s", s->name);
	snprintf(summary, sizeof(summary), "action %s ran %u times within %s; bcdr stopped acting",
		 s->name, a ? a->limit : 0, duration_format(a ? a->window : 0, window, sizeof(window)));
	{
		const char *labels[] = { "check", s->escalated_by ? s->escalated_by : "",
					 "action", s->name, "severity", "critical",
					 e->opts.host ? "host" : NULL, e->opts.host, NULL };
		const char *ann[] = { "summary", summary, "description",
				      "the check keeps failing after its automatic fix; look at it,"
				      " then run `bcdr act reset` to let bcdr act again", NULL };

		alert_engine_update(e->opts.alerts, name, firing ? ALERT_INPUT_FIRING : ALERT_INPUT_OK,
				    labels, ann);
	}
}

static void unescalate(struct act_engine *e, struct act_state *s, const char *why)
{
	bool was = s->escalated;

	s->escalated = false;
	s->n_runs = 0;
	if (was) {
		escalation_alert(e, s, false);
		emit(e, ACT_EVENT_RESET, s->name, s->escalated_by, why, NULL);
	}
	free(s->escalated_by);
	s->escalated_by = NULL;
	state_save(e, s);
}

/* Starts action for check unless the limit forbids it. Returns 1 started,
 * 0 not (running, or it escalates now), -BCDR_ERR_LOCKED when it was
 * escalated already, or another negative error. */
static int start(struct act_engine *e, const struct act_action *a, const char *check)
{
	struct act_state *s = state_get(e, a->name);
	struct run *r, **grown;
	usec_t t = now(e);
	size_t k = 0;

	if (!s)
		return -ENOMEM;
	if (s->running)
		return 0;
	if (s->escalated)
		return -BCDR_ERR_LOCKED;
	/* the sliding window */
	for (size_t i = 0; i < s->n_runs; i++)
		if (!a->window || s->runs[i] + a->window > t)
			s->runs[k++] = s->runs[i];
	s->n_runs = k;
	if (a->limit && s->n_runs >= a->limit) {
		char msg[256], w[32];

		s->escalated = true;
		s->escalated_at = t;
		free(s->escalated_by);
		s->escalated_by = check ? strdup(check) : NULL;
		snprintf(msg, sizeof(msg), "%u runs within %s: stopped acting until '%s' recovers or"
			 " `bcdr act reset %s`", a->limit, duration_format(a->window, w, sizeof(w)),
			 check ? check : "the check", a->name);
		state_save(e, s);
		emit(e, ACT_EVENT_ESCALATED, a->name, check, msg, NULL);
		escalation_alert(e, s, true);
		return 0;
	}
	r = calloc(1, sizeof(*r));
	grown = realloc(e->runs, (e->n_runs + 1) * sizeof(*grown));
	if (grown)
		e->runs = grown;
	if (!r || !grown) {
		free(r);
		return -ENOMEM;
	}
	r->e = e;
	r->kind = a->kind;
	r->action = strdup(a->name);
	r->check = check ? strdup(check) : NULL;
	r->job = a->job ? strdup(a->job) : NULL;
	r->argv = strv_copy(a->argv);
	r->stop_argv = strv_copy(a->stop_argv);
	r->background = a->background;
	r->timeout = a->timeout;
	r->started = now_realtime();
	if (!r->action || (check && !r->check) || (a->job && !r->job) || (a->argv && !r->argv) ||
	    (a->stop_argv && !r->stop_argv)) {
		run_free(r);
		return -ENOMEM;
	}
	if (pthread_create(&r->thread, NULL, run_main, r) != 0) {
		run_free(r);
		return -EAGAIN;
	}
	if (s->n_runs < MAX_RUNS_KEPT) {
		usec_t *more = realloc(s->runs, (s->n_runs + 1) * sizeof(*more));

		if (more) {
			s->runs = more;
			s->runs[s->n_runs++] = t;
		}
	}
	state_save(e, s);
	s->running = true;
	s->rearmed = false;
	e->runs[e->n_runs++] = r;
	return 1;
}

static void reap_background(struct act_engine *e)
{
	size_t k = 0;

	for (size_t i = 0; i < e->n_background; i++) {
		int status;
		pid_t w = waitpid(e->background[i], &status, WNOHANG);

		if (w == 0)
			e->background[k++] = e->background[i];
	}
	e->n_background = k;
}

int act_engine_tick(struct act_engine *e)
{
	int n = 0;
	size_t k = 0;

	for (size_t i = 0; i < e->n_runs; i++) {
		struct run *r = e->runs[i];
		struct act_state *s;
		bool done;

		pthread_mutex_lock(&e->lock);
		done = r->done;
		pthread_mutex_unlock(&e->lock);
		if (!done) {
			e->runs[k++] = r;
			continue;
		}
		pthread_join(r->thread, NULL);
		if (r->background_pid > 0) {
			pid_t *grown = realloc(e->background,
					       (e->n_background + 1) * sizeof(*grown));

			if (grown) {
				e->background = grown;
				e->background[e->n_background++] = r->background_pid;
			}
		}
		s = state_get(e, r->action);
		if (s) {
			size_t len = r->output ? strlen(r->output) : 0;

			s->running = false;
			s->has_last = true;
			s->last_time = r->started;
			s->last_exit = r->exit_status;
			s->last_ok = r->ok;
			free(s->last_check);
			free(s->last_message);
			free(s->last_output);
			s->last_check = r->check ? strdup(r->check) : NULL;
			s->last_message = r->message ? strdup(r->message) : NULL;
			/* the tail: where the error usually is */
			s->last_output = strdup(r->output ? r->output + (len > API_OUTPUT_MAX ?
									 len - API_OUTPUT_MAX : 0) : "");
		}
		{
			struct act_run run = {
				.action = r->action,
				.check = r->check,
				.kind = r->kind,
				.job = r->job,
				.started = r->started,
				.duration = r->duration,
				.exit_status = r->exit_status,
				.timed_out = r->timed_out,
				.ok = r->ok,
				.output = r->output ? r->output : "",
				.message = r->message ? r->message : "",
			};

			emit(e, ACT_EVENT_RUN, r->action, r->check, run.message, &run);
		}
		run_free(r);
		n++;
	}
	e->n_runs = k;
	reap_background(e);
	return n;
}

static void on_done(void *userdata)
{
	act_engine_tick(userdata);
}

int act_engine_new(const struct act_plan *plan, const struct act_options *opts,
		   struct act_engine **ret)
{
	struct act_engine *e = calloc(1, sizeof(*e));
	int r;

	if (!e)
		return -ENOMEM;
	e->plan = plan;
	if (opts)
		e->opts = *opts;
	pthread_mutex_init(&e->lock, NULL);
	r = state_load_all(e);
	if (r < 0) {
		act_engine_free(e);
		return r;
	}
	*ret = e;
	return 0;
}

int act_engine_start(struct act_engine *e, struct event_base *base)
{
	struct wake *done;
	int r;

	if (!base)
		return 0;
	r = wake_new(base, on_done, e, &done);
	if (r < 0)
		return r;
	pthread_mutex_lock(&e->lock);
	e->done = done;
	pthread_mutex_unlock(&e->lock);
	return 0;
}

void act_engine_free(struct act_engine *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n_runs; i++) {
		pthread_join(e->runs[i]->thread, NULL);
		run_free(e->runs[i]);
	}
	free(e->runs);
	reap_background(e);
	free(e->background);
	for (size_t i = 0; i < e->n_states; i++)
		state_free(e->states[i]);
	free(e->states);
	for (size_t i = 0; i < e->n_checks; i++) {
		free(e->checks[i]->name);
		free(e->checks[i]);
	}
	free(e->checks);
	wake_free(e->done);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

int act_engine_set_plan(struct act_engine *e, const struct act_plan *plan)
{
	e->plan = plan;
	return 0;
}

static struct check_state *check_get(struct act_engine *e, const char *name)
{
	struct check_state *c, **grown;

	for (size_t i = 0; i < e->n_checks; i++)
		if (strcmp(e->checks[i]->name, name) == 0)
			return e->checks[i];
	c = calloc(1, sizeof(*c));
	grown = realloc(e->checks, (e->n_checks + 1) * sizeof(*grown));
	if (grown)
		e->checks = grown;
	if (!c || !grown || !(c->name = strdup(name))) {
		free(c);
		return NULL;
	}
	e->checks[e->n_checks++] = c;
	return c;
}

int act_engine_update(struct act_engine *e, const char *check, const char *const *actions,
		      bool failing)
{
	struct check_state *c = check_get(e, check);
	usec_t t = now(e);
	bool entering, again = false;
	int started = 0;

	if (!c)
		return -ENOMEM;
	act_engine_tick(e);
	entering = failing && !c->failing;
	if (!failing) {
		/* recovered: escalations it caused end (also those from before a
		 * restart, when this engine never saw the check failing) */
		for (size_t i = 0; i < e->n_states; i++)
			if (e->states[i]->escalated && e->states[i]->escalated_by &&
			    strcmp(e->states[i]->escalated_by, check) == 0)
				unescalate(e, e->states[i], "the check recovered");
		c->failing = false;
		return 0;
	}
	c->failing = true;
	for (size_t i = 0; actions && actions[i]; i++) {
		const struct act_action *a = act_plan_find(e->plan, actions[i]);
		struct act_state *s = a ? state_get(e, a->name) : NULL;
		int r;

		if (!s)
			continue;
		if (!entering && !s->rearmed && !(a->retry && t >= c->last_trigger + a->retry))
			continue;
		again = true;
		r = start(e, a, check);
		if (r > 0)
			started++;
		else if (r == -BCDR_ERR_LOCKED && entering)
			emit(e, ACT_EVENT_SKIPPED, a->name, check,
			     "escalated: not acting until reset or recovery", NULL);
	}
	if (entering || again)
		c->last_trigger = t;
	return started;
}

int act_engine_run(struct act_engine *e, const char *action, const char *check)
{
	const struct act_action *a = act_plan_find(e->plan, action);
	int r;

	if (!a)
		return -BCDR_ERR_NOT_FOUND;
	r = start(e, a, check);
	if (r == 0) {
		struct act_state *s = state_get(e, action);

		return s && s->escalated ? -BCDR_ERR_LOCKED : -EBUSY;
	}
	return r < 0 ? r : 0;
}

int act_engine_reset(struct act_engine *e, const char *action)
{
	struct act_state *s;

	if (!act_plan_find(e->plan, action))
		return -BCDR_ERR_NOT_FOUND;
	s = state_get(e, action);
	if (!s)
		return -ENOMEM;
	if (s->escalated) {
		unescalate(e, s, "reset by an operator");
	} else {
		s->n_runs = 0;
		state_save(e, s);
		emit(e, ACT_EVENT_RESET, action, NULL, "reset by an operator", NULL);
	}
	/* a check still failing gets the action again at once */
	s->rearmed = true;
	return 0;
}

int act_engine_wait(struct act_engine *e, usec_t timeout)
{
	usec_t until = now_monotonic() + timeout;

	for (;;) {
		act_engine_tick(e);
		if (e->n_runs == 0)
			return 0;
		if (now_monotonic() >= until)
			return -BCDR_ERR_TIMEOUT;
		usleep(5000);
	}
}

static const char *kind_name(enum act_kind k)
{
	static const char *const names[] = { "exec", "restart", "backup", "drill" };

	return (unsigned)k < ELEMENTSOF(names) ? names[k] : "unknown";
}

json_t *act_engine_actions_json(struct act_engine *e)
{
	json_t *out = json_array();
	usec_t t = now(e);

	for (size_t i = 0; out && e->plan && i < e->plan->n; i++) {
		const struct act_action *a = &e->plan->actions[i];
		struct act_state *s = state_get(e, a->name);
		size_t in_window = 0;
		char when[64];
		json_t *j;

		if (!s) {
			json_decref(out);
			return NULL;
		}
		for (size_t k = 0; k < s->n_runs; k++)
			in_window += !a->window || s->runs[k] + a->window > t;
		j = json_pack("{s:s,s:s,s:s,s:{s:i,s:I},s:i}", "name", a->name, "kind",
			      kind_name(a->kind), "state",
			      s->escalated ? "escalated" : s->running ? "running" : "ready", "limit",
			      "count", (int)a->limit, "window_s", (json_int_t)(a->window / USEC_PER_SEC),
			      "runs_in_window", (int)in_window);
		if (!j) {
			json_decref(out);
			return NULL;
		}
		if (s->has_last)
			json_object_set_new(j, "last_run",
					    json_pack("{s:s,s:o,s:i,s:b,s:s,s:s}", "time",
						      time_format_iso(s->last_time, when, sizeof(when)),
						      "check", s->last_check ? json_string(s->last_check)
									     : json_null(),
						      "exit_status", s->last_exit, "ok", s->last_ok,
						      "message", s->last_message ? s->last_message : "",
						      "output", s->last_output ? s->last_output : ""));
		else
			json_object_set_new(j, "last_run", json_null());
		if (s->escalated) {
			json_object_set_new(j, "escalated_at",
					    json_string(time_format_iso(s->escalated_at, when,
									sizeof(when))));
			json_object_set_new(j, "escalated_by", s->escalated_by ?
					    json_string(s->escalated_by) : json_null());
		}
		json_array_append_new(out, j);
	}
	return out;
}
