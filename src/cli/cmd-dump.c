/* bcdr dump: a file of a snapshot to standard output (a directory as tar). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup/dump.h"
#include "cli/repo-cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/log.h"

static int run_dump(struct cli *cli, int argc, char **argv)
{
	struct repo_cli rc = {};
	_cleanup_(repo_freep) struct repo *repo = NULL;
	_cleanup_(snapshot_freep) struct snapshot *s = NULL;
	struct dump_target t = {};
	const char *spec, *path;
	int code, r;

	const struct cli_option options[] = { REPO_CLI_OPTIONS(&rc), {} };

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_PERMUTE);
	if (code != CLI_CONTINUE)
		return code;
	if (optind + 2 != argc)
		return cli_usage_error(cli, "usage: bcdr dump SNAP PATH");
	spec = argv[optind];
	path = argv[optind + 1];
	if ((code = repo_cli_open(cli, &rc, &repo)))
		return code;
	r = repo_find_snapshot(repo, spec, &s);
	if (r == -BCDR_ERR_NOT_FOUND) {
		log_error("no snapshot '%s' in '%s' (bcdr snapshots lists them)", spec, rc.path);
		return EXIT_FAIL;
	}
	if (r == -BCDR_ERR_AMBIGUOUS) {
		log_error("snapshot '%s' is ambiguous: give more of its ID", spec);
		return EXIT_FAIL;
	}
	if (r >= 0)
		r = repo_cli_lock(repo, false);
	if (r < 0) {
		return r == -BCDR_ERR_LOCKED ? EXIT_FAIL : repo_cli_error(r, "cannot read", rc.path);
	}
	r = repo_load_index(repo);
	if (r >= 0)
		r = dump_find(repo, s, path, &t);
	if (r == -BCDR_ERR_NOT_FOUND) {
		char id[9];

		log_error("no '%s' in snapshot %s (bcdr ls %s lists it)", path, short_id(s->id, id),
			  spec);
		code = EXIT_FAIL;
	} else if (r >= 0 && !t.root && t.node.type != NODE_FILE && t.node.type != NODE_DIR) {
		log_error("'%s' is not a file or a directory in the snapshot: nothing to dump", path);
		code = EXIT_FAIL;
	} else if (r >= 0 && (t.root || t.node.type == NODE_DIR) && isatty(STDOUT_FILENO)) {
		log_error("'%s' is a directory: its tar stream would go to the terminal; "
			  "redirect it (bcdr dump %s %s > out.tar)", path, spec, path);
		code = EXIT_FAIL;
	} else {
		if (r >= 0)
			r = dump_node(repo, s, &t, STDOUT_FILENO, NULL);
		code = r < 0 ? repo_cli_error(r, "dump failed", rc.path) : EXIT_OK;
	}
	repo_unlock(repo);
	dump_target_release(&t);
	return code;
}

const struct command cmd_dump = {
	"dump", "write a file of a snapshot to standard output",
	"dump SNAP PATH [--repo DIR]\n\n"
	"Writes the file PATH of SNAP (an ID prefix or 'latest') to standard output,\n"
	"every chunk checked against its ID: `bcdr dump latest /shop.sql | psql shop2`\n"
	"loads a dump without restoring it to disk first. A directory (or '/', the\n"
	"whole snapshot) comes out as a tar stream, its members named as in the\n"
	"snapshot: `bcdr dump latest /etc | tar -x -C /tmp/etc`.\n",
	run_dump,
};
