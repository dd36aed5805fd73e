/* bcdr cluster status: the cluster as etcd holds it, read directly (no
 * agent needed): every member, each service's leader, since when, and its
 * fencing token. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cluster/cluster.h"
#include "cluster/etcd.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "plan/plan.h"

#define STATUS_TIMEOUT (5 * USEC_PER_SEC)

static json_t *value_json(const struct etcd_kv *kv)
{
	json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);

	if (!json_is_object(j)) {
		json_decref(j);
		j = json_object();
	}
	return j;
}

/* The members (from /<name>/members/) and the plan's services with their
 * leaders (from /<name>/services/<svc>/leader) as one JSON document. */
static json_t *status_json(const struct cluster_plan *p, const struct etcd_kv *kvs, size_t n,
			   const char *endpoint, int64_t revision)
{
	_cleanup_free_ char *members_prefix = cluster_prefix(p->name, "members");
	json_t *root = json_object(), *members = json_array(), *services = json_array();
	size_t mlen = members_prefix ? strlen(members_prefix) : 0;

	if (!root || !members || !services || !members_prefix) {
		json_decref(root);
		json_decref(members);
		json_decref(services);
		return NULL;
	}
	json_set_str(root, "cluster", p->name);
	json_set_str(root, "etcd", endpoint);
	json_set_int(root, "revision", (long long)revision);
	for (size_t i = 0; i < n; i++) {
		json_t *m;

		if (strncmp(kvs[i].key, members_prefix, mlen) != 0)
			continue;
		m = value_json(&kvs[i]);
		json_set_str(m, "member", kvs[i].key + mlen);
		json_set_int(m, "lease", (long long)kvs[i].lease);
		json_array_append_new(members, m);
	}
	for (size_t i = 0; i < p->n_services; i++) {
		const char *name = p->services[i].name;
		_cleanup_free_ char *key = cluster_leader_key(p->name, name);
		json_t *s = json_object(), *standbys = json_array();
		const struct etcd_kv *leader = NULL;
		_cleanup_json_ json_t *v = NULL; /* holds the leader's value: who points into it */
		const char *who = NULL;
		json_t *mv;
		size_t k;

		for (size_t j = 0; key && j < n; j++)
			if (strcmp(kvs[j].key, key) == 0)
				leader = &kvs[j];
		json_set_str(s, "name", name);
		if (leader) {
			v = value_json(leader);
			who = json_string_value(json_object_get(v, "member"));
			json_set_str(s, "leader", who);
			json_set_str(s, "since", json_string_value(json_object_get(v, "since")));
			json_set_int(s, "fencing_token", (long long)leader->create_revision);
		} else {
			json_object_set_new(s, "leader", json_null());
		}
		/* the others, and whether their checks let them take over */
		json_array_foreach (members, k, mv) {
			const char *m = json_string_value(json_object_get(mv, "member"));
			json_t *fit = json_object_get(json_object_get(mv, "fit"), name);

			if (!m || (who && strcmp(m, who) == 0))
				continue;
			json_array_append_new(standbys, json_pack("{s:s,s:b}", "member", m, "ready",
								  json_is_true(fit)));
		}
		json_object_set_new(s, "standbys", standbys);
		json_array_append_new(services, s);
	}
	json_object_set_new(root, "members", members);
	json_object_set_new(root, "services", services);
	return root;
}

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
		printf("%s\n", json_array_size(standbys) ? "" : " none");
	}
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
	code = cli_load_plan(cli, true);
	if (code != EXIT_OK)
		return code;
	p = cli->plan->cluster;
	if (!p || !p->has_cluster) {
		log_error("the plan has no cluster: section");
		return EXIT_FAIL;
	}
	r = cluster_etcd_new(p, NULL, &e);
	if (r < 0) {
		log_error_errno(r, "cluster '%s': cannot set up the etcd client", p->name);
		return EXIT_FAIL;
	}
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
	st = status_json(p, kvs, n, etcd_endpoint(e), rev);
	etcd_kvs_free(kvs, n);
	if (!st)
		return log_error_errno(-ENOMEM, "cluster status"), EXIT_FAIL;
	if (cli->json)
		json_print(stdout, st);
	else
		print_status(st);
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

static const struct command cmd_cluster_status = {
	"status",
	"show the members, each service's leader and its fencing token",
	"cluster status [-c PLAN] [--json]\n\n"
	"Reads the plan's etcd (no agent needed) and shows every member of the\n"
	"cluster (its host, API address, version and check states), and for each\n"
	"service of the plan its leader, since when, its fencing token and whether\n"
	"the standbys are ready to take over. Exit status 3 when a service has no\n"
	"leader.\n\n"
	"options:\n" CLI_COMMON_HELP,
	run_cluster_status,
};

static const struct command *const cluster_commands[] = { &cmd_cluster_status, NULL };

static int run_cluster(struct cli *cli, int argc, char **argv)
{
	return cli_dispatch(cli, "cluster", cluster_commands, argc - 1, argv + 1);
}

const struct command cmd_cluster = {
	"cluster",
	"the cluster on etcd: members and service leaders",
	"cluster status [--json]\n\n"
	"The plan's cluster: (docs/cluster.md).\n",
	run_cluster,
};
