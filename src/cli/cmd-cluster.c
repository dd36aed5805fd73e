/* bcdr cluster status|switchover|pause|resume: the cluster as etcd holds
 * it, read and changed directly (no agent needed, any host with the plan):
 * every member, each service's leader, since when, and its fencing token;
 * a graceful switchover; maintenance mode (docs/cluster.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "cluster/cluster.h"
#include "agent/settings.h"
#include "cluster/etcd.h"
#include "cluster/ops.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "plan/plan.h"

#define STATUS_TIMEOUT (5 * USEC_PER_SEC)

static void print_status(const json_t *st)
{
	const json_t *members = json_object_get(st, "members");
	const json_t *services = json_object_get(st, "services");
	const json_t *m, *s;
	size_t i;

	printf("cluster '%s' (etcd %s, revision %lld)\n",
	       json_string_value(json_object_get(st, "cluster")),
	       json_string_value(json_object_get(st, "etcd")),
	       (long long)json_integer_value(json_object_get(st, "revision")));
	if (json_is_true(json_object_get(st, "paused")))
		printf("PAUSED (maintenance) by %s since %s: nobody takes over or steps down on "
		       "its checks\n",
		       json_string_value(json_object_get(json_object_get(st, "pause"), "by")) ?: "?",
		       json_string_value(json_object_get(json_object_get(st, "pause"), "since")) ?: "?");
	printf("members: %zu\n", json_array_size(members));
	json_array_foreach (members, i, m) {
		const char *key;
		json_t *v;
		char checks[512] = "";
		size_t off = 0;

		json_object_foreach (json_object_get(m, "checks"), key, v)
			if (off < sizeof(checks))
				off += (size_t)snprintf(checks + off, sizeof(checks) - off,
							"%s%s=%s", off ? " " : "", key,
							json_string_value(v) ? json_string_value(v)
									     : "?");
		printf("  %-16s %-20s api %-21s bcdr %-8s checks: %s\n",
		       json_string_value(json_object_get(m, "member")),
		       json_string_value(json_object_get(m, "host")) ?: "?",
		       json_string_value(json_object_get(m, "api")) ?: "?",
		       json_string_value(json_object_get(m, "version")) ?: "?",
		       off ? checks : "none");
	}
	printf("services: %zu\n", json_array_size(services));
	json_array_foreach (services, i, s) {
		const json_t *sb, *standbys = json_object_get(s, "standbys");
		const char *leader = json_string_value(json_object_get(s, "leader"));
		size_t k;

		if (leader)
			printf("  %-16s leader %s since %s, fencing token %lld",
			       json_string_value(json_object_get(s, "name")), leader,
			       json_string_value(json_object_get(s, "since")) ?: "?",
			       (long long)json_integer_value(json_object_get(s, "fencing_token")));
		else
			printf("  %-16s NO LEADER", json_string_value(json_object_get(s, "name")));
		printf("; standbys:");
		json_array_foreach (standbys, k, sb)
			printf(" %s (%s)", json_string_value(json_object_get(sb, "member")),
			       json_is_true(json_object_get(sb, "ready")) ? "ready" : "not ready");
		printf("%s", json_array_size(standbys) ? "" : " none");
		if (json_is_object(json_object_get(s, "switchover")))
			printf("; switchover to %s under way",
			       json_string_value(json_object_get(json_object_get(s, "switchover"),
								 "to")) ?: "?");
		printf("\n");
	}
}

/* The plan's cluster: and an etcd client for it; an exit code. */
static int open_cluster(struct cli *cli, const struct cluster_plan **ret_p, struct etcd **ret_e)
{
	const struct cluster_plan *p;
	int code = cli_load_plan(cli, true), r;

	if (code != EXIT_OK)
		return code;
	p = cli->plan->cluster;
	if (!p || !p->has_cluster) {
		log_error("the plan has no cluster: section");
		return EXIT_FAIL;
	}
	r = cluster_etcd_new(p, NULL, ret_e);
	if (r < 0) {
		log_error_errno(r, "cluster '%s': cannot set up the etcd client", p->name);
		return EXIT_FAIL;
	}
	*ret_p = p;
	return EXIT_OK;
}

/* The failovers this host's agent took over, from its state.db (read-only;
 * cluster/failover-log.h): the history lives with the agent, not in etcd.
 * NULL when there is no such file or it cannot be read (said at -v). */
static json_t *local_failovers(struct cli *cli)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ char *error = NULL;
	json_t *doc = NULL;

	path = agent_state_db_path(cli->plan->agent);
	if (!path || access(path, F_OK) < 0)
		return NULL;
	if (failover_log_read(path, &doc, &error) < 0)
		log_debug("%s", error ? error : "out of memory");
	return doc;
}

static void print_failovers(const json_t *doc)
{
	const char *name;
	const json_t *o;

	json_object_foreach ((json_t *)doc, name, o)
		printf("failovers of %s taken over here: %lld kept (of %lld), median %.2fs, "
		       "p95 %.2fs\n", name, (long long)json_integer_value(json_object_get(o, "count")),
		       (long long)json_integer_value(json_object_get(o, "total")),
		       json_number_value(json_object_get(o, "median_s")),
		       json_number_value(json_object_get(o, "p95_s")));
}

static int run_cluster_status(struct cli *cli, int argc, char **argv)
{
	const struct cluster_plan *p;
	_cleanup_(etcd_freep) struct etcd *e = NULL;
	_cleanup_free_ char *prefix = NULL;
	_cleanup_json_ json_t *st = NULL;
	struct etcd_kv *kvs = NULL;
	size_t n = 0;
	int64_t rev;
	int code = cli_parse_common_only(cli, argc, argv), r;

	if (code != CLI_CONTINUE)
		return code;
	code = open_cluster(cli, &p, &e);
	if (code != EXIT_OK)
		return code;
	prefix = cluster_prefix(p->name, "");
	/* "/<name>//" -> "/<name>/" */
	if (!prefix)
		return EXIT_FAIL;
	prefix[strlen(prefix) - 1] = '\0';
	r = etcd_range_prefix(e, prefix, now_monotonic() + STATUS_TIMEOUT, &kvs, &n, &rev);
	if (r < 0) {
		log_error("cluster '%s': cannot read etcd: %s", p->name, etcd_last_error(e));
		return EXIT_FAIL;
	}
	st = cluster_status_build(p, kvs, n, etcd_endpoint(e), rev);
	etcd_kvs_free(kvs, n);
	if (!st)
		return log_error_errno(-ENOMEM, "cluster status"), EXIT_FAIL;
	json_object_set_new(st, "failovers", local_failovers(cli) ?: json_null());
	if (cli->json)
		json_print(stdout, st);
	else {
		print_status(st);
		print_failovers(json_object_get(st, "failovers"));
	}
	/* a service nobody leads is a problem worth an exit code */
	{
		const json_t *s;
		size_t i;

		json_array_foreach (json_object_get(st, "services"), i, s)
			if (json_is_null(json_object_get(s, "leader")))
				return EXIT_PROBLEMS;
	}
	return EXIT_OK;
}

static int take_member(struct cli *cli, const struct cli_option *o, const char *arg)
{
	if (!cluster_name_valid(arg))
		return cli_usage_error(cli, "invalid --to '%s': a member's name", arg);
	*(const char **)o->field = arg;
	return CLI_CONTINUE;
}

static int run_cluster_switchover(struct cli *cli, int argc, char **argv)
{
	const char *to = NULL, *service = NULL;
	usec_t timeout = 0;
	const struct cluster_plan *p;
	_cleanup_(etcd_freep) struct etcd *e = NULL;
	_cleanup_free_ char *error = NULL;
	_cleanup_json_ json_t *res = NULL;
	int code, r;

	const struct cli_option options[] = {
		{ CLI_COLUMN(26) },
		{ CLI_CALL("to", 0, take_member, &to, "MEMBER",
			   "the member to lead (default: the best fit standby)") },
		{ CLI_DURATION("timeout", 0, &timeout, "DURATION",
			       "give up after it (default: 2 x the service's timeout\n"
			       "+ 2 x ttl, at least 30s); the request is withdrawn"),
		  .min = USEC_PER_SEC, .what = "takes a duration of 1s or more, such as 30s" },
		{}
	};

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_PERMUTE);
	if (code != CLI_CONTINUE)
		return code;
	if (optind < argc)
		service = argv[optind++];
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (!service)
		return cli_usage_error(cli, "switchover needs a SERVICE");
	code = open_cluster(cli, &p, &e);
	if (code != EXIT_OK)
		return code;
	/* enough for the demote and the promote, and the looks between */
	if (!timeout)
		timeout = cluster_switchover_default_timeout(p, service);
	r = cluster_switchover_run(p, e, service, to, timeout, &res, &error);
	if (r < 0) {
		log_error("%s", error ? error : err_str(r));
		return EXIT_FAIL;
	}
	if (cli->json)
		json_print(stdout, res);
	else
		printf("service '%s': '%s' leads now (fencing token %lld), after '%s' (%lld); "
		       "took %.2fs\n",
		       service, json_string_value(json_object_get(res, "to")),
		       (long long)json_integer_value(json_object_get(res, "fencing_token")),
		       json_string_value(json_object_get(res, "from")),
		       (long long)json_integer_value(json_object_get(res, "previous_token")),
		       json_real_value(json_object_get(res, "took_s")));
	return EXIT_OK;
}

static int pause_or_resume(struct cli *cli, int argc, char **argv, bool pause)
{
	const struct cluster_plan *p;
	_cleanup_(etcd_freep) struct etcd *e = NULL;
	_cleanup_json_ json_t *res = NULL;
	_cleanup_free_ char *error = NULL, *by = NULL;
	char host[256] = "?";
	const struct passwd *pw = getpwuid(getuid());
	const char *user = getenv("USER") ?: pw ? pw->pw_name : NULL;
	int code = cli_parse_common_only(cli, argc, argv), r;

	if (code != CLI_CONTINUE)
		return code;
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	code = open_cluster(cli, &p, &e);
	if (code != EXIT_OK)
		return code;
	(void)gethostname(host, sizeof(host) - 1);
	if (asprintf(&by, "%s@%s", user && *user ? user : "?", host) < 0)
		return EXIT_FAIL;
	r = cluster_pause_set(p, e, pause, by, now_monotonic() + STATUS_TIMEOUT, &res, &error);
	if (r < 0) {
		log_error("%s", error ? error : err_str(r));
		return EXIT_FAIL;
	}
	if (cli->json)
		json_print(stdout, res);
	else if (pause)
		printf("cluster '%s' %s (by %s since %s): nobody takes a service over or steps "
		       "down on its checks until `bcdr cluster resume`\n",
		       p->name, json_is_true(json_object_get(res, "changed")) ? "paused" : "was paused",
		       json_string_value(json_object_get(res, "by")) ?: "?",
		       json_string_value(json_object_get(res, "since")) ?: "?");
	else
		printf("cluster '%s' %s: leaders follow their checks again\n", p->name,
		       json_is_true(json_object_get(res, "changed")) ? "resumed" : "was not paused");
	return EXIT_OK;
}

static int run_cluster_pause(struct cli *cli, int argc, char **argv)
{
	return pause_or_resume(cli, argc, argv, true);
}

static int run_cluster_resume(struct cli *cli, int argc, char **argv)
{
	return pause_or_resume(cli, argc, argv, false);
}

static const struct command cmd_cluster_status = {
	"status",
	"show the members, each service's leader and its fencing token",
	"cluster status [-c PLAN] [--json]\n\n"
	"Reads the plan's etcd (no agent needed) and shows every member of the\n"
	"cluster (its host, API address, version and check states), and for each\n"
	"service of the plan its leader, since when, its fencing token and whether\n"
	"the standbys are ready to take over; then the failovers this host's agent\n"
	"took over (its state.db: the switch-over times `bcdr model` uses). Exit\n"
	"status 3 when a service has no leader.\n\n"
	"options:\n" CLI_COMMON_HELP,
	run_cluster_status,
};

static const struct command cmd_cluster_switchover = {
	"switchover",
	"move a service's leadership to another member, gracefully",
	"cluster switchover SERVICE [--to MEMBER] [--timeout DURATION] [-c PLAN] [--json]\n\n"
	"Asks the leader of SERVICE (through etcd: no agent needed here) to step\n"
	"down: it runs its demote, then lets the leader key go, and MEMBER (by\n"
	"default the fit standby of the highest priority) takes it and promotes\n"
	"while the others hold back: at no moment do two members lead. Waits\n"
	"until MEMBER leads (its promote ended) and says so with the new fencing\n"
	"token. Refused when MEMBER is not a live member, is not fit (its healthy:\n"
	"checks), leads already, when the service has no leader, or when the\n"
	"cluster is paused.\n",
	run_cluster_switchover,
};

static const struct command cmd_cluster_pause = {
	"pause",
	"maintenance mode: nobody takes over or steps down on its checks",
	"cluster pause [-c PLAN] [--json]\n\n"
	"Puts the cluster in maintenance (a key in etcd, kept until `bcdr cluster\n"
	"resume`): leaders keep leading whatever their healthy: checks say, and no\n"
	"member takes a service that has no leader. A leader that loses its own\n"
	"lease still steps down (it cannot know the pause still holds).\n\n"
	"options:\n" CLI_COMMON_HELP,
	run_cluster_pause,
};

static const struct command cmd_cluster_resume = {
	"resume",
	"end maintenance mode",
	"cluster resume [-c PLAN] [--json]\n\n"
	"Ends `bcdr cluster pause`: leaders follow their checks again, and a fit\n"
	"member takes a service that has no leader.\n\n"
	"options:\n" CLI_COMMON_HELP,
	run_cluster_resume,
};

static const struct command *const cluster_commands[] = {
	&cmd_cluster_status, &cmd_cluster_switchover, &cmd_cluster_pause, &cmd_cluster_resume, NULL
};

static int run_cluster(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, "cluster", cluster_commands, argc - 1, argv + 1);
}

const struct command cmd_cluster = {
	"cluster",
	"the cluster on etcd: members, service leaders, switchover, maintenance",
	"cluster status|switchover|pause|resume [--json]\n\n"
	"The plan's cluster: (docs/cluster.md).\n",
	run_cluster,
};
