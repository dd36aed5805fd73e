#include "agent/api.h"
#include "agent/api-internal.h"

#include <errno.h>
#include <math.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/act.h"
#include "agent/backups.h"
#include "agent/checks.h"
#include "agent/cluster-switch.h"
#include "agent/integrate.h"
#include "alert/alert.h"
#include "cluster/cluster.h"
#include "lb/lb.h"
#include "agent/dashboard.h"
#include "agent/hostguard.h"
#include "agent/metrics.h"
#include "agent/query.h"
#include "agent/state.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/hostport.h"
#include "lib/json.h"
#include "lib/log.h"
#include "model/measured.h"
#include "plan/plan.h"

#define HISTORY_MAX 10000u

static void send_body(struct evhttp_request *req, int code, const char *type, const char *body,
		      size_t len)
{
	struct evbuffer *out = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (!out) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evbuffer_add(out, body, len);
	evhttp_send_reply(req, code, code < 400 ? "OK" : "Error", out);
	evbuffer_free(out);
}

void api_send_json(struct call *c, int code, json_t *j)
{
	_cleanup_free_ char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	if (!text) {
		send_body(c->req, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
		return;
	}
	send_body(c->req, code, "application/json", text, strlen(text));
}

/* Sends j (taken; NULL: out of memory). */
static void send_json_new(struct call *c, int code, json_t *j)
{
	api_send_json(c, code, j);
	json_decref(j);
}

void api_send_empty_list(struct call *c)
{
	send_body(c->req, 200, "application/json", "[]", 2);
}

void api_send_error(struct call *c, int code, const char *fmt, ...)
{
	_cleanup_json_ json_t *j = json_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_set_str(j, "error", msg);
	c->agent->http_errors++;
	api_send_json(c, code, j);
}

/* Maps an error code to the status it deserves. */
void api_send_errno(struct call *c, int r, const char *what)
{
	int code = r == -BCDR_ERR_NOT_FOUND ? 404
		 : r == -EINVAL || r == -BCDR_ERR_TOO_BIG || r == -BCDR_ERR_USAGE ? 400
		 : r == -BCDR_ERR_LOCKED ? 409 : r == -BCDR_ERR_UNSUPPORTED ? 501 : 500;

	api_send_error(c, code, "%s: %s", what, err_str(r));
}

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_HEAD: return "HEAD";
	default: return "this method";
	}
}

static void send_method_not_allowed(struct call *c, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Allow", allow);
	api_send_error(c, 405, "%s is not allowed on this path (allowed: %s)", method_name(c->method),
		   allow);
}

/* Constant time, so the token cannot be guessed byte by byte. */
static bool token_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;

	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
	return diff == 0;
}

/* The request carries the agent's token. */
static bool bearer_valid(struct call *c)
{
	const char *h =
		evhttp_find_header(evhttp_request_get_input_headers(c->req), "Authorization");

	return c->agent->token && h && strncasecmp(h, "Bearer ", 7) == 0 &&
	       token_equal(h + 7, c->agent->token);
}

/* DNS rebinding: a Host that does not name the listener is answered 421,
 * unless the request has the token (a page rebinding a name cannot know
 * it; a proxy or tunnel under another name that sends it needs no
 * api_hosts entry). */
static bool host_named(struct call *c)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(c->req), "Host");
	char shown[68];
	size_t n = 0;

	if (host_guard_allows(&c->api->guard, h, c->agent->settings->api_hosts) || bearer_valid(c))
		return true;
	c->agent->http_misdirected++;
	if (!h) {
		api_send_error(c, 421,
			   "a request without a Host header is not served (DNS rebinding "
			   "guard): send the Host this agent listens as, or the API token");
		return false;
	}
	for (; h[n] && n < 64; n++)
		shown[n] = h[n] >= 0x20 && h[n] < 0x7f ? h[n] : '?';
	memcpy(shown + n, h[n] ? "..." : "", h[n] ? 4 : 1);
	api_send_error(c, 421,
		   "Host '%s' does not name this agent (DNS rebinding guard): add the "
		   "name to agent.api_hosts in the plan, or send the API token",
		   shown);
	return false;
}

static bool authorized(struct call *c)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(c->req),
					   "Authorization");
	bool write = c->method != EVHTTP_REQ_GET && c->method != EVHTTP_REQ_HEAD;

	if (!write && !c->api->reads_need_token)
		return true;
	if (!c->agent->token) {
		api_send_error(c, 403, "the agent has no API token (see agent.token_file)");
		return false;
	}
	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		evhttp_add_header(evhttp_request_get_output_headers(c->req), "WWW-Authenticate",
				  "Bearer realm=\"bcdr\"");
		api_send_error(c, 401, "this needs 'Authorization: Bearer TOKEN' (the agent's token_file)");
		return false;
	}
	if (!token_equal(h + 7, c->agent->token)) {
		api_send_error(c, 403, "wrong token");
		return false;
	}
	return true;
}

/* Parses the query with the allowed keys; answers 400 itself on failure. */
int api_parse_query(struct call *c, const char *const *allowed, struct query *q)
{
	char keys[256] = "none";
	size_t off = 0;
	int r = query_parse(c->query, allowed, q);

	if (r >= 0)
		return r;
	for (const char *const *a = allowed; a && *a && off < sizeof(keys); a++)
		off += (size_t)snprintf(keys + off, sizeof(keys) - off, "%s%s", off ? ", " : "", *a);
	api_send_error(c, 400, "invalid query string (allowed keys: %s)", keys);
	return r;
}

int api_parse_since(struct call *c, const struct query *q, usec_t dflt, usec_t *ret)
{
	const char *s = query_get(q, "since");

	if (!s) {
		*ret = dflt;
		return 0;
	}
	if (query_parse_since(s, now_realtime(), ret) < 0) {
		api_send_error(c, 400, "invalid since '%.64s': an RFC 3339 time, seconds ago, or a "
			   "duration such as 1h", s);
		return -EINVAL;
	}
	return 0;
}

static json_t *check_counts(struct agent *a)
{
	unsigned counts[CHECK_STATUS_MAX] = {};
	json_t *o = json_object();

	for (size_t i = 0; i < a->n_checks; i++)
		counts[a->checks[i]->status]++;
	for (int s = 0; s < CHECK_STATUS_MAX; s++)
		json_set_int(o, check_status_name(s), counts[s]);
	return o;
}

static void set_time(json_t *o, const char *key, usec_t t)
{
	char when[40];

	json_set_str(o, key, t ? time_format_iso(t, when, sizeof(when)) : NULL);
}

/* Modelled vs measured availability of the plan's topology. Figures the
 * agent cannot have (no topology, no target, no state) are null. */
static json_t *availability_json(struct agent *a)
{
	struct availability_status st = { NAN, NAN, NAN, NAN };
	double target = a->plan->targets.availability;
	json_t *avail = json_object();

	if (a->plan->topology)
		model_availability_status(a->plan->topology, target,
					  a->state ? state_db(a->state) : NULL, now_realtime(), &st);
	/* json_set_real() writes null for NaN. */
	json_set_real(avail, "target", target > 0 ? target : NAN);
	json_set_real(avail, "modelled", st.modelled);
	json_set_real(avail, "measured", st.measured);
	json_set_real(avail, "budget_left_s", st.budget_left_s);
	return avail;
}

static void get_status(struct call *c)
{
	struct agent *a = c->agent;
	_cleanup_json_ json_t *j = json_object();
	json_t *reasons = agent_degraded_reasons(a);

	json_set_str(j, "host", a->host);
	json_set_str(j, "version", BCDR_VERSION);
	set_time(j, "started_at", a->started);
	json_set_real(j, "uptime_s", (double)(now_monotonic() - a->started_mono) / 1e6);
	json_set_bool(j, "degraded", json_array_size(reasons) > 0);
	json_object_set_new(j, "reasons", reasons ? reasons : json_array());
	json_set_str(j, "plan", a->plan_path);
	json_object_set_new(j, "checks", check_counts(a));
	json_set_int(j, "alerts_firing", a->alerts ? alert_engine_firing(a->alerts) : 0);
	json_object_set_new(j, "backups", agent_backups_json(a));
	json_object_set_new(j, "balancers", a->lb ? lb_status_json(a->lb) : json_array());
	/* whether GET /api/v1/cluster has something to say (the dashboard asks) */
	json_set_bool(j, "cluster", a->cluster != NULL);
	json_object_set_new(j, "availability", availability_json(a));
	api_send_json(c, 200, j);
}

static void get_checks(struct call *c)
{
	_cleanup_json_ json_t *list = json_array();
	struct query q;

	if (api_parse_query(c, NULL, &q) < 0)
		return;
	for (size_t i = 0; i < c->agent->n_checks; i++)
		json_array_append_new(list, agent_check_json(c->agent->checks[i]));
	api_send_json(c, 200, list);
}

static void get_check(struct call *c, const char *name)
{
	static const char *const allowed[] = { "since", "limit", NULL };
	struct agent_check *check = agent_check_find(c->agent, name);
	_cleanup_json_ json_t *j = NULL, *history = NULL;
	_cleanup_(query_release) struct query q = {};
	usec_t since;
	int r;

	if (!check) {
		api_send_error(c, 404, "no check '%.128s' in the running plan", name);
		return;
	}
	if (api_parse_query(c, allowed, &q) < 0 ||
	    api_parse_since(c, &q, now_realtime() - USEC_PER_HOUR, &since) < 0)
		return;
	j = agent_check_json(check);
	if (c->agent->state) {
		r = state_history(c->agent->state, name, since, HISTORY_MAX, &history);
		if (r < 0) {
			api_send_errno(c, r, "cannot read the history");
			return;
		}
	}
	json_object_set_new(j, "history", history ? TAKE_PTR(history) : json_array());
	api_send_json(c, 200, j);
}

static void get_incidents(struct call *c)
{
	static const char *const allowed[] = { "since", NULL };
	_cleanup_(query_release) struct query q = {};
	_cleanup_json_ json_t *list = NULL;
	usec_t since;
	int r;

	if (api_parse_query(c, allowed, &q) < 0 || api_parse_since(c, &q, 0, &since) < 0)
		return;
	if (!c->agent->state) {
		api_send_error(c, 503, "the state database is unavailable: %s", c->agent->state_error);
		return;
	}
	r = state_incidents_query(c->agent->state, since, &list);
	if (r < 0) {
		api_send_errno(c, r, "cannot read the incidents");
		return;
	}
	api_send_json(c, 200, list);
}

/* Reads a JSON object body (bounded by evhttp and again here). */
static int read_body(struct call *c, json_t **ret)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	size_t len = evbuffer_get_length(in);
	json_error_t err;
	json_t *j;
	const char *data;

	if (len > API_MAX_BODY) {
		api_send_error(c, 413, "the body is larger than %u bytes", API_MAX_BODY);
		return -BCDR_ERR_TOO_BIG;
	}
	data = (const char *)evbuffer_pullup(in, -1);
	j = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &err);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		api_send_error(c, 400, "the body must be a JSON object%s%s", j ? "" : ": ",
			   j ? "" : err.text);
		return -EINVAL;
	}
	*ret = j;
	return 0;
}

/* The handlers of /api/v1 (docs/api.md). `rest` is what follows a prefix
 * route's path ("web" of /checks/web), "" for an exact one; the method is
 * one the route allows. */
static void api_status(struct call *c, const char *rest)
{
	(void)rest;
	get_status(c);
}

static void api_checks(struct call *c, const char *rest)
{
	(void)rest;
	get_checks(c);
}

static void api_check(struct call *c, const char *rest)
{
	_cleanup_free_ char *name = evhttp_uridecode(rest, 0, NULL);

	if (!name || !*name || strlen(name) > 256 || strchr(name, '/'))
		return api_send_error(c, 404, "no such check");
	get_check(c, name);
}

static void api_events(struct call *c, const char *rest)
{
	(void)rest;
	api_get_events(c);
}

static void api_incidents(struct call *c, const char *rest)
{
	(void)rest;
	get_incidents(c);
}

static void api_alerts(struct call *c, const char *rest)
{
	(void)rest;
	send_json_new(c, 200, alert_engine_alerts_json(c->agent->alerts));
}

static void api_alerts_ack(struct call *c, const char *rest)
{
	_cleanup_json_ json_t *body = NULL;
	const char *check;
	int r;

	(void)rest;
	if (read_body(c, &body) < 0)
		return;
	check = json_string_value(json_object_get(body, "check"));
	if (!check)
		return api_send_error(c, 400, "the body must be {\"check\": NAME}");
	r = alert_engine_ack(c->agent->alerts, check);
	if (r < 0)
		return api_send_errno(c, r, "cannot acknowledge");
	send_body(c->req, 200, "application/json", "{}", 2);
}

static void api_silences(struct call *c, const char *rest)
{
	_cleanup_json_ json_t *body = NULL, *out = NULL;
	_cleanup_free_ char *id = NULL, *error = NULL;
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	int r;

	(void)rest;
	if (c->method != EVHTTP_REQ_POST)
		return send_json_new(c, 200, alert_engine_silences_json(c->agent->alerts));
	if (read_body(c, &body) < 0)
		return;
	r = alert_engine_silence_add_json(c->agent->alerts, (const char *)evbuffer_pullup(in, -1),
					  evbuffer_get_length(in), &id, &error);
	if (r < 0) {
		if (error)
			return api_send_error(c, 400, "%s", error);
		return api_send_errno(c, r, "cannot add the silence");
	}
	out = json_object();
	json_set_str(out, "id", id);
	agent_event(c->agent, "agent", NULL, body, "silence %s added", id);
	api_send_json(c, 200, out);
}

static void api_silence_expire(struct call *c, const char *rest)
{
	_cleanup_free_ char *id = evhttp_uridecode(rest, 0, NULL);
	int r;

	if (!id || !*id || strlen(id) > 128)
		return api_send_error(c, 404, "no such silence");
	r = alert_engine_silence_expire(c->agent->alerts, id);
	if (r < 0)
		return api_send_errno(c, r, "cannot expire the silence");
	agent_event(c->agent, "agent", NULL, NULL, "silence %s expired", id);
	send_body(c->req, 200, "application/json", "{}", 2);
}

static void api_actions(struct call *c, const char *rest)
{
	(void)rest;
	send_json_new(c, 200, act_engine_actions_json(c->agent->acts));
}

/* rest: NAME/reset */
static void api_action_reset(struct call *c, const char *rest)
{
	size_t n = strlen(rest);
	_cleanup_free_ char *raw = NULL, *name = NULL;
	int r;

	if (n < 7 || strcmp(rest + n - 6, "/reset") != 0)
		return api_send_error(c, 404, "no such API path (POST /api/v1/actions/NAME/reset)");
	raw = strndup(rest, n - 6);
	name = raw ? evhttp_uridecode(raw, 0, NULL) : NULL;
	if (!name || !*name || strchr(name, '/'))
		return api_send_error(c, 404, "no such action");
	r = act_engine_reset(c->agent->acts, name);
	if (r < 0)
		return api_send_errno(c, r, "cannot reset the action");
	send_body(c->req, 200, "application/json", "{}", 2);
}

static void api_lb(struct call *c, const char *rest)
{
	(void)rest;
	if (!c->agent->lb)
		return api_send_empty_list(c);
	send_json_new(c, 200, lb_status_json(c->agent->lb));
}

/* The failovers this member took over (state.db; cluster/failover-log.h):
 * {} before the first, null when the state cannot be read. */
static json_t *api_failovers(struct agent *a)
{
	json_t *j = NULL;
	int r = a->state ? failover_log_json(state_db(a->state), NULL, &j) : -BCDR_ERR_NOT_FOUND;

	if (r == -BCDR_ERR_NOT_FOUND)
		return json_object();
	return r < 0 ? json_null() : j;
}

/* What `bcdr cluster status --json` says, from this member's last look
 * (no etcd call here), with what it knows of itself ("self"). */
static void api_cluster(struct call *c, const char *rest)
{
	json_t *st;

	(void)rest;
	if (!c->agent->cluster)
		return api_send_error(c, 404, "this agent runs no cluster (its plan has no cluster: "
				  "section, or the cluster could not start: see its log)");
	st = cluster_status_json(c->agent->cluster);
	if (!st)
		return api_send_errno(c, -ENOMEM, "cluster status");
	json_object_set_new(st, "failovers", api_failovers(c->agent));
	send_json_new(c, 200, st);
}

/* The answer of a switchover request, once it is written or refused. */
static void reply_switchover(struct evhttp_request *req, int code, json_t *body)
{
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	json_decref(body);
	if (!text)
		send_body(req, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
	else
		send_body(req, code, "application/json", text, strlen(text));
}

/* {"service": NAME, "to": MEMBER (optional)}: the request is written on
 * the pool (it calls etcd); the answer comes once it is (202) or refused. */
static void api_cluster_switchover(struct call *c, const char *rest)
{
	_cleanup_json_ json_t *body = NULL;
	const json_t *service, *to;
	int r;

	(void)rest;
	if (read_body(c, &body) < 0)
		return;
	if (!c->agent->cluster)
		return api_send_error(c, 404, "this agent runs no cluster");
	service = json_object_get(body, "service");
	to = json_object_get(body, "to");
	if (!json_is_string(service) || !cluster_name_valid(json_string_value(service)) ||
	    (to && !json_is_null(to) &&
	     (!json_is_string(to) || !cluster_name_valid(json_string_value(to)))))
		return api_send_error(c, 400, "the body must be {\"service\": NAME} or "
				  "{\"service\": NAME, \"to\": MEMBER}");
	r = agent_cluster_switchover(c->agent, c->req, json_string_value(service),
				     json_is_string(to) ? json_string_value(to) : NULL,
				     reply_switchover);
	if (r < 0)
		return api_send_errno(c, r, "cannot ask for the switchover");
}

/* rest: BALANCER/BACKEND */
static void api_lb_set(struct call *c, const char *rest)
{
	_cleanup_json_ json_t *body = NULL;
	_cleanup_free_ char *bal = NULL, *be = NULL;
	const char *slash = strchr(rest, '/');
	const json_t *state, *weight;
	int r;

	if (!slash || slash == rest || !slash[1] || strchr(slash + 1, '/'))
		return api_send_error(c, 404, "no such API path (POST /api/v1/lb/BALANCER/BACKEND)");
	if (read_body(c, &body) < 0)
		return;
	if (!c->agent->lb)
		return api_send_error(c, 404, "no balancers in the running plan");
	bal = strndup(rest, (size_t)(slash - rest));
	be = evhttp_uridecode(slash + 1, 0, NULL);
	if (!bal || !be)
		return api_send_error(c, 500, "out of memory");
	state = json_object_get(body, "state");
	weight = json_object_get(body, "weight");
	if (json_is_string(state) && !weight)
		r = lb_set_state(c->agent->lb, bal, be, json_string_value(state));
	else if (json_is_integer(weight) && !state && json_integer_value(weight) >= 0 &&
		 json_integer_value(weight) <= 1000000)
		r = lb_set_weight(c->agent->lb, bal, be, (unsigned)json_integer_value(weight));
	else
		return api_send_error(c, 400, "the body must be {\"state\": \"ready|drain|maint\"} "
				  "or {\"weight\": N}");
	if (r < 0)
		return api_send_errno(c, r, "cannot change the backend");
	agent_event(c->agent, "lb", NULL, body, "balancer '%s' backend '%s' set by the API", bal,
		    be);
	send_body(c->req, 200, "application/json", "{}", 2);
}

enum { API_GET = 1, API_POST = 2, API_DELETE = 4 };

/* The API's routes, tried in order: an exact path, or a prefix (ending in
 * '/') whose rest goes to the handler. Only routes with `query` take a
 * query string; elsewhere one is a mistake worth saying. */
static const struct api_route {
	const char *path;
	unsigned methods;
	bool query;
	void (*handle)(struct call *c, const char *rest);
} api_routes[] = {
	{ "/status", API_GET, false, api_status },
	{ "/checks", API_GET, false, api_checks },
	{ "/checks/", API_GET, true, api_check },
	{ "/events", API_GET, true, api_events },
	{ "/incidents", API_GET, true, api_incidents },
	{ "/alerts", API_GET, false, api_alerts },
	{ "/alerts/ack", API_POST, false, api_alerts_ack },
	{ "/silences", API_GET | API_POST, false, api_silences },
	{ "/silences/", API_DELETE, false, api_silence_expire },
	{ "/actions", API_GET, false, api_actions },
	{ "/actions/", API_POST, false, api_action_reset },
	{ "/lb", API_GET, false, api_lb },
	{ "/lb/", API_POST, false, api_lb_set },
	{ "/cluster", API_GET, false, api_cluster },
	{ "/cluster/switchover", API_POST, false, api_cluster_switchover },
};

static unsigned method_bit(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
	case EVHTTP_REQ_HEAD:
		return API_GET;
	case EVHTTP_REQ_POST:
		return API_POST;
	case EVHTTP_REQ_DELETE:
		return API_DELETE;
	default:
		return 0;
	}
}

/* The route path matches: the rest (after a prefix), else NULL. */
static const char *route_match(const struct api_route *rt, const char *path)
{
	size_t n = strlen(rt->path);

	if (rt->path[n - 1] == '/')
		return strncmp(path, rt->path, n) == 0 ? path + n : NULL;
	return strcmp(path, rt->path) == 0 ? path + n : NULL;
}

static void route_api(struct call *c)
{
	for (size_t i = 0; i < ELEMENTSOF(api_routes); i++) {
		const struct api_route *rt = &api_routes[i];
		const char *rest = route_match(rt, c->path);
		char allow[32] = "";

		if (!rest)
			continue;
		if (c->query && *c->query && !rt->query)
			return api_send_error(c, 400, "'%.64s' takes no query string", c->path);
		if (method_bit(c->method) & rt->methods)
			return rt->handle(c, rest);
		snprintf(allow, sizeof(allow), "%s%s%s%s%s",
			 rt->methods & API_GET ? "GET" : "",
			 rt->methods & API_GET && rt->methods & ~API_GET ? ", " : "",
			 rt->methods & API_POST ? "POST" : "",
			 rt->methods & API_POST && rt->methods & API_DELETE ? ", " : "",
			 rt->methods & API_DELETE ? "DELETE" : "");
		return send_method_not_allowed(c, allow);
	}
	api_send_error(c, 404, "no such API path '%.128s' (see docs/api.md)", c->path);
}

static void get_healthz(struct call *c)
{
	_cleanup_json_ json_t *reasons = agent_degraded_reasons(c->agent);
	struct evbuffer *out;
	size_t i;
	json_t *r;

	if (!reasons || json_array_size(reasons) == 0) {
		send_body(c->req, 200, "text/plain; charset=utf-8", "ok\n", 3);
		return;
	}
	out = evbuffer_new();
	if (!out) {
		evhttp_send_error(c->req, 500, NULL);
		return;
	}
	evbuffer_add_printf(out, "degraded: ");
	json_array_foreach(reasons, i, r)
		evbuffer_add_printf(out, "%s%s", i ? "; " : "", json_string_value(r));
	evbuffer_add_printf(out, "\n");
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Content-Type",
			  "text/plain; charset=utf-8");
	evhttp_send_reply(c->req, 503, "Service Unavailable", out);
	evbuffer_free(out);
}

static void get_metrics(struct call *c)
{
	struct evbuffer *out = evbuffer_new();
	int r;

	if (!out) {
		evhttp_send_error(c->req, 500, NULL);
		return;
	}
	r = metrics_render(c->agent, out);
	if (r < 0) {
		evbuffer_free(out);
		api_send_errno(c, r, "cannot render the metrics");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Content-Type",
			  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(c->req, 200, "OK", out);
	evbuffer_free(out);
}

/* Every other GET is the dashboard (its files are embedded in the binary). */
static void get_other(struct call *c, const char *path)
{
	const char *type = NULL;
	const void *data = NULL;
	size_t len = 0;

	if (dashboard_asset(path, &data, &len, &type) < 0) {
		send_body(c->req, 404, "text/plain; charset=utf-8", "not found\n", 10);
		return;
	}
	send_body(c->req, 200, type, data, len);
}

static void on_request(struct evhttp_request *req, void *userdata)
{
	struct api *api = userdata;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct call c = {
		.api = api, .agent = api->agent, .req = req,
		.method = evhttp_request_get_command(req),
		.query = uri ? evhttp_uri_get_query(uri) : NULL,
	};
	bool get = c.method == EVHTTP_REQ_GET || c.method == EVHTTP_REQ_HEAD;

	api->agent->http_requests++;
	if (!host_named(&c))
		return;
	if (!path || path[0] != '/') {
		api_send_error(&c, 400, "invalid request path");
		return;
	}
	if (strcmp(path, "/api/v1") == 0 || strncmp(path, "/api/", 5) == 0) {
		if (strncmp(path, "/api/v1/", 8) != 0) {
			api_send_error(&c, 404, "no such API path (this agent serves /api/v1/)");
			return;
		}
		c.path = path + 7;
		if (!authorized(&c))
			return;
		route_api(&c);
		return;
	}
	if (strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0) {
		if (!get) {
			send_method_not_allowed(&c, "GET");
			return;
		}
		if (path[1] == 'h')
			get_healthz(&c);
		else
			get_metrics(&c);
		return;
	}
	if (!get) {
		send_method_not_allowed(&c, "GET");
		return;
	}
	get_other(&c, path);
}

/* Counts one connection more (+1) or less (-1) and pauses or resumes
 * evhttp's listener at the cap. */
static void conns_add(struct api *api, int d)
{
	api->n_conns += (size_t)(ssize_t)d;
	api->agent->http_connections += (size_t)(ssize_t)d;
	if (api->closing || !api->listener || !api->refuser)
		return;
	if (d > 0 && api->n_conns == api->max_conns) {
		evconnlistener_disable(api->listener);
		evconnlistener_enable(api->refuser);
	} else if (d < 0 && api->n_conns + 1 == api->max_conns) {
		evconnlistener_disable(api->refuser);
		evconnlistener_enable(api->listener);
	}
}

static void on_conn_closed(struct evhttp_connection *evcon, void *userdata)
{
	(void)evcon;
	conns_add(userdata, -1);
}

/* Beyond the cap: closed at once, before evhttp spends anything on it. */
static void on_refuse(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *userdata)
{
	struct api *api = userdata;

	(void)l;
	(void)sa;
	(void)len;
	evutil_closesocket(fd);
	api->agent->http_refused++;
}

/* evhttp's new-connection hook: the bufferevent it will use. The
 * connection object is made after this returns, so it is taken from the
 * bufferevent's callback argument later in this loop turn (on_adopt); the
 * extra reference keeps the bufferevent readable should evhttp have freed
 * the connection by then (its callbacks are NULL then). */
static struct bufferevent *on_new_connection(struct event_base *base, void *userdata)
{
	struct api *api = userdata;
	struct bufferevent *bev;

	if (api->n_pending >= api->max_conns)
		return NULL; /* not counted; cannot happen: the listener pauses first */
	bev = bufferevent_socket_new(base, -1, 0); /* what evhttp makes without the hook */
	if (!bev)
		return NULL;
	bufferevent_incref(bev);
	api->pending[api->n_pending++] = bev;
	event_active(api->adopt, EV_TIMEOUT, 0);
	conns_add(api, +1);
	return bev;
}

static void on_adopt(evutil_socket_t fd, short what, void *userdata)
{
	struct api *api = userdata;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < api->n_pending; i++) {
		struct bufferevent *bev = api->pending[i];
		bufferevent_data_cb readcb = NULL;
		void *evcon = NULL;

		bufferevent_getcb(bev, &readcb, NULL, NULL, &evcon);
		if (readcb && evcon)
			evhttp_connection_set_closecb(evcon, on_conn_closed, api);
		else
			conns_add(api, -1); /* evhttp gave up on it already */
		bufferevent_decref(bev);
	}
	api->n_pending = 0;
}

int api_start(struct agent *a, const char *listen, struct api **ret)
{
	struct evhttp_bound_socket *bound;
	struct api *api = calloc(1, sizeof(*api));
	char host[256];
	uint16_t port;
	int r;

	if (!api)
		return -ENOMEM;
	r = hostport_split(listen, strlen(listen), 0, host, sizeof(host), &port);
	if (r < 0) {
		free(api);
		return r;
	}
	api->agent = a;
	api->reads_need_token = !hostport_is_loopback(host);
	r = host_guard_init(&api->guard, listen);
	if (r < 0) {
		free(api);
		return r;
	}
	api->max_conns = a->settings->api_max_connections ? a->settings->api_max_connections
							  : AGENT_DEFAULT_API_MAX_CONNECTIONS;
	api->pending = calloc(api->max_conns, sizeof(*api->pending));
	api->http = evhttp_new(a->base);
	if (!api->http || !api->pending) {
		api_free(api);
		return -ENOMEM;
	}
	evhttp_set_max_body_size(api->http, API_MAX_BODY);
	evhttp_set_max_headers_size(api->http, API_MAX_HEADERS);
	evhttp_set_timeout(api->http, 10);
	evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
					      EVHTTP_REQ_DELETE);
	evhttp_set_gencb(api->http, on_request, api);
	evhttp_set_bevcb(api->http, on_new_connection, api);
	api->adopt = event_new(a->base, -1, 0, on_adopt, api);
	if (api_events_init(api) < 0 || !api->adopt) {
		api_free(api);
		return -ENOMEM;
	}
	bound = evhttp_bind_socket_with_handle(api->http, host, port);
	if (!bound) {
		r = errno ? -errno : -EADDRINUSE;
		api_free(api);
		return r;
	}
	api->listener = evhttp_bound_socket_get_listener(bound);
	api->refuser = evconnlistener_new(a->base, on_refuse, api, LEV_OPT_CLOSE_ON_EXEC, 0,
					  evconnlistener_get_fd(api->listener));
	if (!api->refuser) {
		api_free(api);
		return -ENOMEM;
	}
	evconnlistener_disable(api->refuser);
	*ret = api;
	return 0;
}

void api_free(struct api *api)
{
	if (!api)
		return;
	api_events_stop(api); /* before evhttp_free, which frees their requests */
	api->closing = true;
	if (api->refuser)
		evconnlistener_free(api->refuser); /* the socket is evhttp's */
	if (api->adopt) {
		on_adopt(-1, 0, api);
		event_free(api->adopt);
	}
	if (api->http)
		evhttp_free(api->http);
	free(api->pending);
	free(api);
}
