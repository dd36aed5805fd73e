/* bcdr events: the running agent's event history. */
#include <errno.h>
#include <event2/http.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/client.h"
#include "lib/buf.h"
#include "cli/agentcli.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"


/* Each request waits up to FOLLOW_WAIT seconds at the agent for an event
 * (a long poll: news at once, and one request per 20 s when quiet); below
 * the client's 30 s timeout. An agent that does not know wait= is polled. */
#define FOLLOW_WAIT "20"
#define FOLLOW_POLL_USEC (500 * USEC_PER_MSEC)
#define FOLLOW_RETRY_USEC USEC_PER_SEC
#define FOLLOW_BATCH "1000"

static int add_param(struct buf *b, const char *key, const char *value)
{
	_cleanup_free_ char *e = NULL;

	if (!value)
		return 0;
	e = evhttp_encode_uri(value);
	if (!e)
		return -1;
	return buf_printf(b, "%c%s=%s", strchr(b->data, '?') ? '&' : '?', key, e);
}

static void print_events(const json_t *list)
{
	const json_t *e;
	size_t i;

	json_array_foreach(list, i, e) {
		const char *check = json_string_value(json_object_get(e, "check"));

		printf("%s  %-12s %s%s%s\n", json_string_value(json_object_get(e, "time")),
		       json_string_value(json_object_get(e, "kind")), check ? check : "",
		       check ? ": " : "", json_string_value(json_object_get(e, "message")) ?: "");
	}
}

/* --follow --json: one event per line. */
static void print_json_lines(const json_t *list)
{
	const json_t *e;
	size_t i;

	json_array_foreach(list, i, e) {
		_cleanup_free_ char *line = json_dumps(e, JSON_COMPACT);

		if (line)
			printf("%s\n", line);
	}
}

static long long last_id(const json_t *list, long long id)
{
	const json_t *e;
	size_t i;

	json_array_foreach(list, i, e) {
		long long v = json_integer_value(json_object_get(e, "id"));

		if (v > id)
			id = v;
	}
	return id;
}

/* The read end of a pipe on stdout was closed (`| head`): end now rather
 * than at the next event's SIGPIPE. */
static bool reader_gone(void)
{
	struct pollfd p = { .fd = STDOUT_FILENO, .events = 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

static bool reader_gone_cb(void *userdata)
{
	(void)userdata;
	return reader_gone();
}

static bool msg_has(const json_t *j, const char *what)
{
	const char *msg = json_string_value(json_object_get(j, "error"));

	return msg && strstr(msg, what);
}

/* Asks /api/v1/events?after=ID&wait=S like `tail -f`, until interrupted or
 * the reader goes away (SIGPIPE, or a write error). A lost agent is waited
 * for, said once on stderr; ids survive its restarts (state.db), so nothing
 * is missed or repeated. */
static int follow(struct cli *cli, struct agentcli *ac, const char *kind, const char *check,
		  long long id)
{
	bool lost = false, long_poll = true;

	/* `| head -1` ends a follower that waits in a long poll too */
	agent_client_set_abort(ac->client, reader_gone_cb, NULL);

	for (;;) {
		_cleanup_(buf_release) struct buf path = {}; /* released on the early return too */
		_cleanup_json_ json_t *j = NULL;
		_cleanup_free_ char *error = NULL;
		char after[32];
		long status = 0;
		int r;

		if (fflush(stdout) != 0 || ferror(stdout) || reader_gone())
			return EXIT_OK;
		buf_init(&path, 8192);
		snprintf(after, sizeof(after), "%lld", id);
		if (buf_append_str(&path, "/api/v1/events") < 0 ||
		    add_param(&path, "after", after) < 0 || add_param(&path, "kind", kind) < 0 ||
		    add_param(&path, "check", check) < 0 ||
		    add_param(&path, "limit", FOLLOW_BATCH) < 0 ||
		    add_param(&path, "wait", long_poll ? FOLLOW_WAIT : NULL) < 0)
			return EXIT_FAIL;
		r = agent_client_call(ac->client, "GET", path.data, NULL, &status, &j, &error);
		if (r == -ECANCELED)
			return EXIT_OK;
		if (r < 0 || status == 503) {
			if (!lost)
				fprintf(stderr, "bcdr: lost the agent at '%s' (%s); reconnecting...\n",
					agent_client_url(ac->client),
					r < 0 ? (error ? error : err_str(r)) : "state database unavailable");
			lost = true;
			usleep(FOLLOW_RETRY_USEC);
			continue;
		}
		if (status == 400 && long_poll && msg_has(j, "invalid query string") &&
		    !msg_has(j, "wait")) {
			long_poll = false; /* an agent from before wait=: poll it */
			continue;
		}
		if (status < 200 || status > 299 || !json_is_array(j)) {
			const char *msg = json_string_value(json_object_get(j, "error"));

			log_error("the agent answered %ld: %s", status, msg ? msg : "no message");
			return status == 400 ? EXIT_USAGE : EXIT_FAIL;
		}
		if (lost)
			fprintf(stderr, "bcdr: reconnected to the agent at '%s'\n",
				agent_client_url(ac->client));
		lost = false;
		if (cli->json)
			print_json_lines(j);
		else
			print_events(j);
		id = last_id(j, id);
		/* a full batch: more are waiting, no pause */
		if (!long_poll && json_array_size(j) < 1000)
			usleep(FOLLOW_POLL_USEC);
	}
}

static int run_events(struct cli *cli, int argc, char **argv)
{
	_cleanup_(agentcli_release) struct agentcli ac = {};
	_cleanup_(buf_release) struct buf path;
	_cleanup_json_ json_t *j = NULL;
	const char *since = NULL, *kind = NULL, *check = NULL, *limit = NULL;
	bool follow_on = false;
	int code;

	buf_init(&path, 8192);
	const struct cli_option options[] = {
		{ CLI_COLUMN(24) },
		{ CLI_STRING("since", 0, &since, "WHEN", "events from WHEN on") },
		{ CLI_STRING("kind", 0, &kind, "KIND", "only events of KIND") },
		{ CLI_STRING("check", 0, &check, "NAME", "only events of check NAME") },
		{ CLI_STRING("limit", 0, &limit, "N", "at most N events (1 to 10000)") },
		{ CLI_FLAG("follow", 'f', &follow_on,
			   "then print new events as they come, like tail -f (with\n"
			   "--json: one JSON object per line); Ctrl-C ends it; a\n"
			   "restarting agent is waited for") },
		AGENTCLI_OPTIONS(&ac),
		{}
	};

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_NO_OPERANDS);
	if (code != CLI_CONTINUE)
		return code;
	if (buf_append_str(&path, "/api/v1/events") < 0 || add_param(&path, "since", since) < 0 ||
	    add_param(&path, "kind", kind) < 0 || add_param(&path, "check", check) < 0 ||
	    add_param(&path, "limit", limit) < 0)
		return cli_usage_error(cli, "options too long");
	code = agentcli_request(cli, &ac, "GET", path.data, NULL, &j);
	if (code != 0)
		return code;
	if (follow_on) {
		long long id = last_id(j, 0);

		if (cli->json)
			print_json_lines(j);
		else
			print_events(j);
		if (json_array_size(j) == 0) {
			/* nothing matched: follow from the newest event of any kind */
			_cleanup_json_ json_t *newest = NULL;

			code = agentcli_call(&ac, "GET", "/api/v1/events?limit=1", NULL, &newest);
			if (code != 0)
				return code;
			id = last_id(newest, 0);
		}
		return follow(cli, &ac, kind, check, id);
	}
	if (cli->json)
		json_print(stdout, j);
	else
		print_events(j);
	return EXIT_OK;
}

const struct command cmd_events = {
	"events", "the running agent's events: state changes, actions, backups, drills",
	"events [--since WHEN] [--kind KIND] [--check NAME] [--limit N] [--follow] [--json]\n\n"
	"The newest events of the running agent (default 100), oldest first. KIND is\n"
	"state, flapping, action, notification, backup, drill, lb or agent; WHEN an\n"
	"RFC 3339 time, seconds ago, or a duration such as 2h.\n",
	run_events,
	.help_runs = true,
};
