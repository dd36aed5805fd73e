/* bcdr check: verify a repository. */
#include <stdio.h>

#include "backup/check.h"
#include "cli/repo-cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"

static void report(bool error, const char *object, const char *what, void *userdata)
{
	struct cli *cli = userdata;

	repo_cli_progress_done(cli);
	if (cli->json) {
		_cleanup_json_ json_t *j = json_object();

		json_set_str(j, "type", error ? "error" : "note");
		json_set_str(j, "object", object);
		json_set_str(j, "message", what);
		json_print(stdout, j);
	} else if (error) {
		log_error("%s: %s", object, what);
	} else if (!cli->quiet) {
		log_warning("%s: %s", object, what);
	}
}

/* Like the progress of backup and restore: a status line on a terminal,
 * JSON lines with --json. */
static void progress(const struct check_progress *p, void *userdata)
{
	const struct repo_cli_progress_line line = {
		.unit = "packs",
		.done = p->packs_done,
		.total = p->packs,
		.bytes_done = p->bytes_done,
		.bytes_total = p->bytes,
		.elapsed = p->elapsed,
	};

	repo_cli_progress_print(userdata, &line);
}

static int run_check(struct cli *cli, int argc, char **argv)
{
	struct check_options o = { .report = report, .userdata = cli };
	struct check_result res = {};
	struct repo_cli rc = {};
	struct repo *repo = NULL;
	int code, r;

	const struct cli_option options[] = {
		{ CLI_FLAG("read-data", 0, &o.read_data, "read and verify all data") },
		REPO_CLI_OPTIONS(&rc),
		{}
	};

	code = repo_cli_parse_open(cli, argc, argv, options, CLI_PARSE_NO_OPERANDS, &rc, &repo);
	if (code != CLI_CONTINUE)
		return code;
	code = repo_cli_lock(repo, false);
	if (code) {
		repo_free(repo);
		return code;
	}
	if (repo_cli_progress_wanted(cli))
		o.progress = progress;
	r = check_run(repo, &o, &res);
	repo_cli_progress_done(cli);
	repo_free(repo);
	if (r < 0 && r != -BCDR_ERR_CORRUPT)
		return repo_cli_error(r, "check failed", rc.path);
	if (cli->json) {
		_cleanup_json_ json_t *j = json_object();

		json_set_str(j, "type", "summary");
		json_set_int(j, "errors", (long long)res.errors);
		json_set_int(j, "notes", (long long)res.notes);
		json_set_int(j, "keys", (long long)res.keys);
		json_set_int(j, "index_files", (long long)res.index_files);
		json_set_int(j, "packs", (long long)res.packs);
		json_set_int(j, "snapshots", (long long)res.snapshots);
		if (o.read_data) {
			json_set_int(j, "blobs_read", (long long)res.blobs);
			json_set_int(j, "bytes_read", (long long)res.bytes_read);
		}
		json_print(stdout, j);
	} else if (!cli->quiet) {
		printf("checked %llu keys, %llu index files, %llu packs, %llu snapshots",
		       (unsigned long long)res.keys, (unsigned long long)res.index_files,
		       (unsigned long long)res.packs, (unsigned long long)res.snapshots);
		if (o.read_data)
			printf(", read %llu blobs", (unsigned long long)res.blobs);
		printf("\n%s\n", res.errors ? "damage found (see above)" : "no errors found");
	}
	return res.errors ? EXIT_PROBLEMS : EXIT_OK;
}

const struct command cmd_check = {
	"check", "verify the repository's structure, and with --read-data every byte",
	"check [--read-data] [--repo DIR] [--json]\n\n"
	"Checks that every key, index file and snapshot opens and matches its name,\n"
	"that every chunk a snapshot needs is indexed and every indexed pack is\n"
	"present. --read-data also reads every pack and checks each blob's tag and\n"
	"keyed ID. Each problem names the object it is in; exit status 3 when\n"
	"damage was found.\n",
	run_check,
};
