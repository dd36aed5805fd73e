/* bcdr forget and bcdr prune: retention. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/forget.h"
#include "cli/repo-cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "plan/plan.h"
#include "repo/retention.h"


static int print_prune(struct cli *cli, const struct prune_result *p, bool dry_run)
{
	char freed[32];

	size_format(p->bytes_freed, freed, sizeof(freed));
	if (cli->json) {
		_cleanup_json_ json_t *j = json_object();

		json_set_str(j, "type", "prune");
		json_set_bool(j, "dry_run", dry_run);
		json_set_int(j, "packs_deleted", (long long)p->packs_deleted);
		json_set_int(j, "packs_repacked", (long long)p->packs_repacked);
		json_set_int(j, "packs_kept", (long long)p->packs_kept);
		json_set_int(j, "blobs_removed", (long long)p->blobs_removed);
		json_set_int(j, "bytes_freed", (long long)p->bytes_freed);
		json_set_int(j, "packs_spared", (long long)p->packs_spared);
		json_print(stdout, j);
	} else if (!cli->quiet) {
		printf("%s %llu unused blobs: %llu packs deleted, %llu rewritten, %llu kept; "
		       "%s freed\n", dry_run ? "would remove" : "removed",
		       (unsigned long long)p->blobs_removed, (unsigned long long)p->packs_deleted,
		       (unsigned long long)p->packs_repacked, (unsigned long long)p->packs_kept,
		       freed);
		if (p->packs_spared)
			printf("spared %llu packs no index names yet: another process holds a live "
			       "lock\n",
			       (unsigned long long)p->packs_spared);
	}
	return EXIT_OK;
}

static void decision(const struct snapshot *s, bool keep, void *userdata)
{
	struct cli *cli = userdata;
	char id[9], when[64], hex[65];

	time_format_iso(s->time, when, sizeof(when));
	if (cli->json) {
		_cleanup_json_ json_t *j = json_object();

		hex_encode(s->id, 32, hex);
		json_set_str(j, "type", keep ? "keep" : "remove");
		json_set_str(j, "snapshot", hex);
		json_set_str(j, "time", when);
		json_print(stdout, j);
	} else if (!cli->quiet) {
		printf("%-6s %s  %s  %s\n", keep ? "keep" : "remove", short_id(s->id, id), when,
		       s->host);
	}
}

/* Prune deletes nothing from a repository it finds damaged: say so. */
static int prune_error(int r, const char *path)
{
	if (r == -BCDR_ERR_NOT_FOUND) {
		log_error("a snapshot refers to data that is not in the index: run 'bcdr check'; "
			  "prune refuses to delete anything from a damaged repository");
		return EXIT_FAIL;
	}
	if (r == -BCDR_ERR_CORRUPT) {
		log_error(
			"the repository '%s' is damaged (an index entry that cannot be a blob of "
			"its pack, or a blob that does not open): run 'bcdr check'; prune deleted "
			"nothing",
			path);
		return EXIT_FAIL;
	}
	return repo_cli_error(r, "prune failed", path);
}

static int extend_locks(struct cli *cli, struct repo *repo)
{
	unsigned n = 0;
	int r = repo_extend_retention(repo, &n);

	if (r >= 0 && n && !cli->json && !cli->quiet)
		printf("extended the Object Lock retention of %u objects\n", n);
	return r;
}

static int run_forget(struct cli *cli, int argc, char **argv)
{
	struct keep_policy k = { -1, -1, -1, -1, -1, -1 };
	bool prune = false, dry_run = false;
	const char *job = NULL;
	struct repo_cli rc = {};
	struct repo *repo = NULL;
	struct forget_result fr = {};
	int code, r = 0;

	/* the policy's options are in the usage line, not the list */
	const struct cli_option options[] = {
		{ CLI_INT("keep-last", 0, &k.last, "N", 0, 1000000, NULL) },
		{ CLI_INT("keep-hourly", 0, &k.hourly, "N", 0, 1000000, NULL) },
		{ CLI_INT("keep-daily", 0, &k.daily, "N", 0, 1000000, NULL) },
		{ CLI_INT("keep-weekly", 0, &k.weekly, "N", 0, 1000000, NULL) },
		{ CLI_INT("keep-monthly", 0, &k.monthly, "N", 0, 1000000, NULL) },
		{ CLI_INT("keep-yearly", 0, &k.yearly, "N", 0, 1000000, NULL) },
		{ CLI_FLAG("prune", 0, &prune, "prune afterwards") },
		{ CLI_FLAG("dry-run", 0, &dry_run, "only say what would be removed") },
		{ CLI_STRING("job", 0, &job, "NAME", NULL) },
		REPO_CLI_OPTIONS(&rc),
		{}
	};

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_PERMUTE);
	if (code != CLI_CONTINUE)
		return code;
	if (job && !keep_policy_set(&k)) {
		const struct backup_job *j;

		if ((code = cli_load_plan(cli, true)))
			return code;
		j = backup_plan_job(cli->plan->backup, job);
		if (!j) {
			log_error("no backup job '%s' in the plan", job);
			return EXIT_FAIL;
		}
		k = j->keep;
		if (!rc.repo)
			rc.repo = j->repo->name;
	}
	if (optind == argc && !keep_policy_set(&k))
		return cli_usage_error(cli, "say what to keep (--keep-last N, --keep-daily N, ...) "
					    "or name snapshots to remove");
	if (optind < argc && keep_policy_set(&k))
		return cli_usage_error(cli, "name snapshots or give a policy, not both");
	code = repo_cli_open(cli, &rc, &repo);
	if (code)
		return code;
	if (optind < argc) {
		if ((code = repo_cli_lock(repo, true))) {
			repo_free(repo);
			return code;
		}
		for (int i = optind; i < argc && r >= 0; i++) {
			struct snapshot *s = NULL;

			r = repo_find_snapshot(repo, argv[i], &s);
			if (r < 0) {
				log_error("snapshot '%s': %s", argv[i], r == -BCDR_ERR_NOT_FOUND ? "not found" :
					  r == -BCDR_ERR_AMBIGUOUS ? "ambiguous, give more of its ID" :
					  err_str(r));
				break;
			}
			decision(s, false, cli);
			if (!dry_run)
				r = repo_remove_snapshot(repo, s->id);
			fr.removed++;
			snapshot_free(s);
		}
		repo_unlock(repo);
	} else {
		r = forget_run(repo, &k, job, dry_run, decision, cli, &fr);
	}
	if (r < 0) {
		code = repo_cli_error(r, "forget failed", rc.path);
		repo_free(repo);
		return code;
	}
	if (!cli->json && !cli->quiet)
		printf("%s %zu snapshots, kept %zu\n", dry_run ? "would remove" : "removed", fr.removed,
		       fr.kept);
	if (prune) {
		struct prune_result pr = {};

		r = prune_run(repo, dry_run, &pr);
		if (r >= 0 && !dry_run)
			r = extend_locks(cli, repo);
		if (r < 0) {
			code = prune_error(r, rc.path);
			repo_free(repo);
			return code;
		}
		print_prune(cli, &pr, dry_run);
	}
	repo_free(repo);
	return EXIT_OK;
}

const struct command cmd_forget = {
	"forget", "remove snapshots by a keep policy (or by ID)",
	"forget [SNAP...] [--keep-last N] [--keep-hourly N] [--keep-daily N]\n"
	"       [--keep-weekly N] [--keep-monthly N] [--keep-yearly N] [--job NAME]\n"
	"       [--prune] [--dry-run] [--repo DIR]\n\n"
	"Keeps the newest N snapshots, and the newest of each of the last N hours,\n"
	"days, ISO weeks, months and years that have one; removes the others. The\n"
	"policy applies per host and paths (or per plan job). --job without a\n"
	"policy uses the job's keep: from the plan. Data is freed by prune.\n",
	run_forget,
};

static int run_prune(struct cli *cli, int argc, char **argv)
{
	struct repo_cli rc = {};
	struct repo *repo = NULL;
	struct prune_result pr = {};
	bool dry_run = false;
	int code, r;

	const struct cli_option options[] = {
		{ CLI_FLAG("dry-run", 0, &dry_run, "only say what would be removed") },
		REPO_CLI_OPTIONS(&rc),
		{}
	};

	code = repo_cli_parse_open(cli, argc, argv, options, CLI_PARSE_NO_OPERANDS, &rc, &repo);
	if (code != CLI_CONTINUE)
		return code;
	r = prune_run(repo, dry_run, &pr);
	if (r >= 0 && !dry_run)
		r = extend_locks(cli, repo);
	repo_free(repo);
	if (r < 0)
		return prune_error(r, rc.path);
	return print_prune(cli, &pr, dry_run);
}

const struct command cmd_prune = {
	"prune", "free the data no snapshot uses",
	"prune [--dry-run] [--repo DIR]\n\n"
	"Deletes packs no snapshot needs, rewrites packs that are a tenth or more\n"
	"unused, writes a new index and removes the old one; also removes data left\n"
	"by interrupted runs. Takes an exclusive lock; safe to interrupt.\n",
	run_prune,
};
