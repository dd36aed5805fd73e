/* bcdr lb: run the plan's balancers alone (for a dedicated host), and look
 * at or change a running one over its control socket. */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lb/control.h"
#include "lb/lb.h"
#include "lb/report.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "plan/plan.h"

#define LB_SOCKET_OPTION(sock)                                                            \
	{ CLI_STRING("socket", 'S', (sock), "PATH",                                         \
		     "the control socket (default $BCDR_LB_SOCKET, else\n"                  \
		     "<agent.state_dir>/lb.sock, else " LB_CONTROL_DEFAULT_PATH ")") }

/* --socket, else $BCDR_LB_SOCKET, else <agent.state_dir>/lb.sock (where the
 * agent serves it; for a client, when it exists), else /run/bcdr/lb.sock. */
static const char *socket_path(struct cli *cli, const char *opt, bool client)
{
	static char from_plan[4096];
	const char *env = getenv("BCDR_LB_SOCKET");
	const char *plan_path = cli->plan_path ? cli->plan_path : plan_default_path();
	const char *state_dir = NULL;
	int n;

	if (opt)
		return opt;
	if (env && *env)
		return env;
	if (plan_path && cli_load_plan(cli, false) == 0 && cli->plan->agent)
		state_dir = cli->plan->agent->state_dir;
	if (!state_dir && client)
		state_dir = AGENT_DEFAULT_STATE_DIR;
	if (state_dir) {
		n = snprintf(from_plan, sizeof(from_plan), "%s/lb.sock", state_dir);
		if (n > 0 && (size_t)n < sizeof(from_plan) &&
		    (!client || access(from_plan, F_OK) == 0))
			return from_plan;
	}
	return LB_CONTROL_DEFAULT_PATH;
}

/* Parses the common options plus -S anywhere among the arguments (so
 * `bcdr lb set web/a drain -S PATH` works); the other arguments are put in
 * pos (at most 4). Returns CLI_CONTINUE or an exit code. */
static int parse_client_options(struct cli *cli, int argc, char **argv, const char **ret_socket,
				char **pos, int *ret_npos)
{
	const struct cli_option options[] = { LB_SOCKET_OPTION(ret_socket), {} };
	int code = cli_parse(cli, argc, argv, options, CLI_PARSE_PERMUTE), npos = 0;

	if (code != CLI_CONTINUE)
		return code;
	for (; optind < argc; optind++) {
		if (npos == 4)
			return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
		pos[npos++] = argv[optind];
	}
	*ret_npos = npos;
	return CLI_CONTINUE;
}

static int request(const char *path, const char *line, json_t **ret)
{
	_cleanup_free_ char *text = NULL;
	json_error_t jerr;
	json_t *j;
	int r = lb_control_request(path, line, 10 * USEC_PER_SEC, &text);

	if (r == -ENOENT || r == -ECONNREFUSED) {
		log_error("no balancer answers on '%s': is 'bcdr lb' (or the agent) running? "
			  "pass --socket PATH to name its socket", path);
		return EXIT_FAIL;
	}
	if (r < 0) {
		log_error_errno(r, "cannot talk to the balancer on '%s'", path);
		return EXIT_FAIL;
	}
	j = json_loads(text, 0, &jerr);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		log_error("the balancer on '%s' sent a reply that is not JSON", path);
		return EXIT_FAIL;
	}
	*ret = j;
	return EXIT_OK;
}

static const char *str_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

static long long int_of(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void print_status(json_t *balancers)
{
	size_t i, k;
	json_t *bal, *be;

	json_array_foreach(balancers, i, bal) {
		json_t *listen = json_object_get(bal, "listen");

		printf("%s%s  %s  %s  connections %lld/%lld  accepted %lld  refused %lld  "
		       "failed %lld  redispatched %lld\n",
		       i ? "\n" : "", str_of(bal, "name"),
		       json_string_value(json_array_get(listen, 0)) ?: "-", str_of(bal, "algorithm"),
		       int_of(bal, "connections"), int_of(bal, "max_conns"), int_of(bal, "accepted"),
		       int_of(bal, "refused"), int_of(bal, "failed"), int_of(bal, "redispatched"));
		printf("  %-16s %-7s %-6s %-9s %7s %9s %7s %9s  %s\n", "BACKEND", "STATE", "ADMIN",
		       "WEIGHT", "CONNS", "TOTAL", "ERRORS", "P99 MS", "LAST CHECK");
		json_array_foreach(json_object_get(bal, "backends"), k, be) {
			char weight[32], p99[32];
			json_t *lat = json_object_get(be, "latency");
			json_t *v = json_object_get(lat, "response_p99_ms");

			if (!v)
				v = json_object_get(lat, "connect_p99_ms");
			snprintf(weight, sizeof(weight), "%g/%lld%s",
				 json_number_value(json_object_get(be, "effective_weight")),
				 int_of(be, "weight"), json_is_true(json_object_get(be, "backup"))
								? "b" : "");
			if (v)
				snprintf(p99, sizeof(p99), "%.2f", json_real_value(v));
			else
				snprintf(p99, sizeof(p99), "-");
			printf("  %-16s %-7s %-6s %-9s %7lld %9lld %7lld %9s  %s\n", str_of(be, "name"),
			       str_of(be, "state"), str_of(be, "admin"), weight,
			       int_of(be, "connections"), int_of(be, "total"),
			       int_of(be, "connect_errors"), p99, str_of(be, "last_check"));
		}
	}
}

static int run_lb_status(struct cli *cli, int argc, char **argv)
{
	const char *sock = NULL;
	_cleanup_json_ json_t *reply = NULL;
	char *pos[4];
	int npos = 0, code = parse_client_options(cli, argc, argv, &sock, pos, &npos);

	if (code != CLI_CONTINUE)
		return code;
	if (npos > 0)
		return cli_usage_error(cli, "unexpected argument '%s'", pos[0]);
	code = request(socket_path(cli, sock, true), "status", &reply);
	if (code != EXIT_OK)
		return code;
	if (cli->json)
		json_print(stdout, json_object_get(reply, "balancers"));
	else
		print_status(json_object_get(reply, "balancers"));
	return EXIT_OK;
}

static const struct command cmd_lb_status = {
	"status", "show the balancers' backends, states and counters",
	"lb status [-S SOCKET] [--json]\n\n"
	"Asks the running balancer (bcdr lb, or the agent) for every backend's state,\n"
	"weight, connections, bytes, connect errors and latency.\n",
	run_lb_status,
};

static int run_lb_set(struct cli *cli, int argc, char **argv)
{
	const char *sock = NULL;
	_cleanup_json_ json_t *reply = NULL;
	char line[LB_CONTROL_MAX_LINE];
	struct lb_control_request req;
	const char *error = NULL;
	char *pos[4];
	int npos = 0, code = parse_client_options(cli, argc, argv, &sock, pos, &npos), n;

	if (code != CLI_CONTINUE)
		return code;
	if (npos == 2)
		n = snprintf(line, sizeof(line), "set %s %s", pos[0], pos[1]);
	else if (npos == 3)
		n = snprintf(line, sizeof(line), "set %s %s %s", pos[0], pos[1], pos[2]);
	else
		return cli_usage_error(cli, "expected BALANCER/BACKEND ready|drain|maint|weight N");
	if (n < 0 || (size_t)n >= sizeof(line) ||
	    lb_control_parse(line, (size_t)n, &req, &error) < 0)
		return cli_usage_error(cli, "%s", error ? error : "arguments too long");
	code = request(socket_path(cli, sock, true), line, &reply);
	if (code != EXIT_OK)
		return code;
	if (cli->json) {
		json_print(stdout, reply);
	} else if (!json_is_true(json_object_get(reply, "ok"))) {
		log_error("cannot set '%s': %s", pos[0], str_of(reply, "error"));
	} else if (!cli->quiet) {
		printf("%s: %s%s%s\n", pos[0], pos[1], npos == 3 ? " " : "", npos == 3 ? pos[2] : "");
	}
	return json_is_true(json_object_get(reply, "ok")) ? EXIT_OK : EXIT_FAIL;
}

static const struct command cmd_lb_set = {
	"set", "drain, put in maintenance, make ready or re-weight a backend",
	"lb set BALANCER/BACKEND ready|drain|maint|weight N [-S SOCKET] [--json]\n\n"
	"  ready     takes new connections again (when its checks pass)\n"
	"  drain     no new connections; established ones continue\n"
	"  maint     no new connections; established ones are closed\n"
	"  weight N  new weight, 0 to 1000 (0 takes no new connections)\n",
	run_lb_set,
};

static void on_report_stop(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

static int run_lb_report(struct cli *cli, int argc, char **argv)
{
	const char *address = NULL;
	int64_t port = 8471;
	struct event_base *base;
	struct lb_reporter *rep = NULL;
	struct event *sigs[2] = {};
	int code, r;

	const struct cli_option options[] = {
		{ CLI_COLUMN(22) },
		{ CLI_INT("port", 'p', &port, "PORT", 1, 65535, "port to listen on (default 8471)"),
		  .what = "takes 1 to 65535" },
		{ CLI_STRING("address", 'a', &address, "ADDR",
			     "address to listen on (default 0.0.0.0)") },
		{}
	};

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_NO_OPERANDS);
	if (code != CLI_CONTINUE)
		return code;
	base = event_base_new();
	if (!base)
		return EXIT_FAIL;
	r = lb_reporter_new(base, address, (unsigned)port, NULL, NULL, &rep);
	if (r < 0) {
		log_error_errno(r, "cannot listen on '%s' port %ld", address ? address : "0.0.0.0",
				port);
		event_base_free(base);
		return EXIT_FAIL;
	}
	sigs[0] = evsignal_new(base, SIGINT, on_report_stop, base);
	sigs[1] = evsignal_new(base, SIGTERM, on_report_stop, base);
	for (int i = 0; i < 2; i++)
		if (sigs[i])
			event_add(sigs[i], NULL);
	if (!cli->quiet)
		log_info("answering agent checks on %s port %ld", address ? address : "0.0.0.0",
			 port);
	event_base_dispatch(base);
	for (int i = 0; i < 2; i++)
		if (sigs[i])
			event_free(sigs[i]);
	lb_reporter_free(rep);
	event_base_free(base);
	return EXIT_OK;
}

static const struct command cmd_lb_report = {
	"report", "answer agent checks with this host's free capacity (no agent needed)",
	"lb report [-p PORT] [-a ADDRESS]\n\n"
	"Answers each TCP connection with one line of HAProxy's agent-check language\n"
	"('up 75%') computed from this host's CPU and load, so bcdr balancers (agent_port:)\n"
	"and HAProxy (agent-check) weight it by its free capacity. The agent does the\n"
	"same on agent.lb_report_port, and also reports down/drain from its checks.\n",
	run_lb_report,
};

struct runner {
	struct event_base *base;
	struct lb *lb;
	const char *plan_path;
};

static void on_lb_event(const struct lb_event *ev, void *userdata)
{
	(void)userdata;
	if (!strcmp(ev->to, "down") || !strcmp(ev->to, "maint"))
		log_warning("balancer '%s': backend '%s' %s -> %s: %s%s", ev->balancer, ev->backend,
			    ev->from, ev->to, ev->reason,
			    ev->usable_primaries == 0 ? " (no primary left: backups serve)" : "");
	else
		log_info("balancer '%s': backend '%s' %s -> %s: %s", ev->balancer, ev->backend,
			 ev->from, ev->to, ev->reason);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct runner *r = arg;

	(void)what;
	log_info("signal %d: stopping", (int)sig);
	event_base_loopbreak(r->base);
}

static void on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
	struct runner *r = arg;
	struct plan *plan = NULL;
	char *error = NULL, *warning = NULL;
	int ret;

	(void)sig;
	(void)what;
	ret = plan_load(r->plan_path, &plan, &error);
	if (ret < 0) {
		log_error("reload refused, the balancers keep running as they were: %s",
			  error ? error : err_str(ret));
		free(error);
		return;
	}
	if (!plan->balancers) {
		log_error("reload refused: '%s' has no balancers: section", r->plan_path);
		plan_free(plan);
		return;
	}
	ret = lb_reload(r->lb, plan->balancers, &warning);
	if (ret < 0)
		log_error_errno(ret, "cannot reload every backend");
	else
		log_info("reloaded the backends from '%s'", r->plan_path);
	if (warning)
		log_warning("%s", warning);
	free(warning);
	plan_free(plan);
}

static int run_lb_daemon(struct cli *cli, int argc, char **argv)
{
	const char *sock = NULL;
	int64_t workers = sysconf(_SC_NPROCESSORS_ONLN);
	struct lb_options lo = { .on_event = on_lb_event };
	struct runner run = {};
	struct event *sigs[4] = {};
	char *error = NULL;
	int code = EXIT_FAIL, r;

	const struct cli_option options[] = {
		{ CLI_INT("workers", 'w', &workers, "N", 0, 256,
			  "data-path threads (default: one per CPU; 0 runs the data\n"
			  "path on the control thread)"),
		  .what = "takes 0 to 256" },
		LB_SOCKET_OPTION(&sock),
		{}
	};

	code = cli_parse(cli, argc, argv, options, 0);
	if (code != CLI_CONTINUE)
		return code;
	if (optind < argc)
		return cli_usage_error(cli, "'%s' is not an lb command (status, set)", argv[optind]);
	code = cli_load_plan(cli, true);
	if (code)
		return code;
	if (!cli->plan->balancers) {
		log_error("'%s' has no balancers: section: nothing to run (docs/lb.md shows one)",
			  cli->plan->path);
		return EXIT_FAIL;
	}
	lo.workers = workers < 1 ? 0 : (unsigned)workers;
	run.plan_path = cli->plan->path;
	code = EXIT_FAIL;
	signal(SIGPIPE, SIG_IGN);
	run.base = event_base_new();
	if (!run.base) {
		log_error("cannot create the event loop");
		return EXIT_FAIL;
	}
	/* Signals first: the control socket tells scripts we are ready, and a
	 * SIGHUP sent then must reload, not kill (they fire from the loop, once
	 * run.lb is set). */
	sigs[0] = evsignal_new(run.base, SIGINT, on_stop_signal, &run);
	sigs[1] = evsignal_new(run.base, SIGTERM, on_stop_signal, &run);
	sigs[2] = evsignal_new(run.base, SIGHUP, on_reload_signal, &run);
	for (int i = 0; i < 3; i++)
		if (!sigs[i] || event_add(sigs[i], NULL) < 0) {
			log_error("cannot watch signals");
			goto out;
		}
	r = lb_host(cli->plan->balancers, run.base, &lo, socket_path(cli, sock, false), &run.lb,
		    &error);
	if (r != 0) {
		log_error("%s%s", error ? error : err_str(r), r > 0 ? " (pass --socket PATH)" : "");
		free(error);
		goto out;
	}
	if (!cli->quiet)
		for (size_t b = 0; b < cli->plan->balancers->n_balancers; b++) {
			const struct lb_balancer_conf *bc = &cli->plan->balancers->balancers[b];

			log_info("balancer '%s' listening on %s%s (%s, %zu backends, %ld workers)",
				 bc->name, bc->listen[0], bc->listen[1] ? " and more" : "",
				 lb_algorithm_names[bc->algorithm], bc->n_backends,
				 workers < 1 ? 0 : workers);
		}
	event_base_dispatch(run.base);
	code = EXIT_OK;
out:
	for (int i = 0; i < 3; i++)
		if (sigs[i])
			event_free(sigs[i]);
	lb_free(run.lb);
	event_base_free(run.base);
	return code;
}

static const struct command *const lb_commands[] = { &cmd_lb_status, &cmd_lb_set,
						     &cmd_lb_report, NULL };

static int run_lb(struct cli *cli, int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "status") || !strcmp(argv[1], "set") ||
			 !strcmp(argv[1], "report") ||
			 !strcmp(argv[1], "help")))
		return cli_dispatch(cli, "lb", lb_commands, argc - 1, argv + 1);
	return run_lb_daemon(cli, argc, argv);
}

const struct command cmd_lb = {
	"lb", "run the plan's load balancers; status and set act on a running one",
	"lb [-c PLAN] [-w N] [-S SOCKET]\n"
	"       bcdr lb status [--json]\n"
	"       bcdr lb set BALANCER/BACKEND ready|drain|maint|weight N\n"
	"       bcdr lb report [-p PORT]\n\n"
	"Runs the balancers: of the plan in the foreground (for a dedicated host; the\n"
	"agent runs them too). SIGHUP reloads the backends from the plan without\n"
	"dropping listeners or connections; SIGINT/SIGTERM stop.\n",
	run_lb,
	.help_runs = true,
};
