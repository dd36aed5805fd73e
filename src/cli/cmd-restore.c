/* bcdr restore: write a snapshot's files back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/repo-cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"

static void problem(const char *path, const char *what, void *userdata)
{
	struct cli *cli = userdata;

	repo_cli_progress_done(cli);
	log_error("'%s': %s", path, what);
	if (cli->json) {
		_cleanup_json_ json_t *j = json_object();

		json_set_str(j, "type", "error");
		json_set_str(j, "path", path);
		json_set_str(j, "message", what);
		json_print(stdout, j);
	}
}

static int run_restore(struct cli *cli, int argc, char **argv)
{
	char **include = NULL;
	struct repo_cli rc = {};
	struct restore_options o = {};
	struct restore_result res = {};
	struct repo *repo = NULL;
	struct snapshot *s = NULL;
	usec_t start = now_monotonic();
	int code, r;

	const struct cli_option options[] = {
		{ CLI_COLUMN(22) },
		{ CLI_STRING("target", 't', &o.target, "DIR", "where to restore (created if missing)") },
		{ CLI_LIST("include", 'i', &include, "PATH",
			   "only PATH in the snapshot and what is under it") },
		{ CLI_FLAG("verify", 0, &o.verify, "read every restored file back and check its hashes") },
		REPO_CLI_OPTIONS(&rc),
		{}
	};

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_PERMUTE);
	if (code != CLI_CONTINUE)
		return code;
	_cleanup_strv_free_ char **include_owned = include;
	if (optind + 1 != argc)
		return cli_usage_error(cli, "name one snapshot: bcdr restore SNAP --target DIR");
	if (!o.target)
		return cli_usage_error(cli, "say where to restore to: --target DIR");
	code = repo_cli_open(cli, &rc, &repo);
	if (code)
		return code;
	r = repo_find_snapshot(repo, argv[optind], &s);
	if (r < 0) {
		if (r == -BCDR_ERR_AMBIGUOUS)
			log_error("snapshot '%s' is ambiguous: give more of its ID", argv[optind]);
		else if (r == -BCDR_ERR_NOT_FOUND)
			log_error("no snapshot '%s' in '%s' (bcdr snapshots lists them)", argv[optind],
				  rc.path);
		else
			repo_cli_error(r, "cannot read the snapshot", rc.path);
		repo_free(repo);
		return EXIT_FAIL;
	}
	code = repo_cli_lock(repo, false);
	if (code) {
		snapshot_free(s);
		repo_free(repo);
		return code;
	}
	o.include = include;
	o.problem = problem;
	o.userdata = cli;
	if (repo_cli_progress_wanted(cli))
		o.progress = repo_cli_progress;
	r = restore_run(repo, s, &o, &res);
	repo_cli_progress_done(cli);
	if (r < 0 && r != -BCDR_ERR_PARTIAL) {
		code = repo_cli_error(r, "restore failed", rc.path);
		snapshot_free(s);
		repo_free(repo);
		return code;
	}
	{
		double secs = (double)(now_monotonic() - start) / USEC_PER_SEC;
		char id[9], size[32], hex[65];

		hex_encode(s->id, 32, hex);
		if (cli->json) {
			_cleanup_json_ json_t *j = json_object();

			json_set_str(j, "type", "summary");
			json_set_str(j, "snapshot", hex);
			json_set_str(j, "target", o.target);
			json_set_int(j, "files", (long long)res.files);
			json_set_int(j, "dirs", (long long)res.dirs);
			json_set_int(j, "links", (long long)res.links);
			json_set_int(j, "bytes", (long long)res.bytes);
			json_set_int(j, "errors", (long long)res.errors);
			if (o.verify)
				json_set_int(j, "verified", (long long)res.verified);
			json_set_real(j, "duration_s", secs);
			json_print(stdout, j);
		} else if (!cli->quiet) {
			printf("restored snapshot %s to '%s': %llu files, %llu directories, %s in "
			       "%.2fs\n", short_id(s->id, id), o.target, (unsigned long long)res.files,
			       (unsigned long long)res.dirs, size_format(res.bytes, size, sizeof(size)),
			       secs);
			if (o.verify)
				printf("verified: %llu files read back match their chunk hashes\n",
				       (unsigned long long)res.verified);
			if (res.errors)
				printf("%llu problems (see above); the rest is restored\n",
				       (unsigned long long)res.errors);
		}
	}
	snapshot_free(s);
	repo_free(repo);
	return r == -BCDR_ERR_PARTIAL ? EXIT_PROBLEMS : EXIT_OK;
}

const struct command cmd_restore = {
	"restore", "restore a snapshot into a directory",
	"restore SNAP --target DIR [--include PATH]... [--verify] [--repo DIR]\n\n"
	"Writes the files of SNAP (an ID prefix or 'latest') under DIR, with their\n"
	"modes, owners (as root), times, extended attributes and hard links; sparse\n"
	"files stay sparse. Every chunk is checked; a damaged one is reported with\n"
	"the file's name, the rest is restored and the exit status is 3.\n",
	run_restore,
};
