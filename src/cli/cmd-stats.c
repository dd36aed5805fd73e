/* bcdr stats: how big the repository is and how well it deduplicates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/repo-cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"

struct sizes {
	uint64_t packs, bytes;
};

static int add_size(const char *name, uint64_t size, void *userdata)
{
	struct sizes *s = userdata;

	(void)name;
	s->packs++;
	s->bytes += size;
	return 0;
}

static int run_stats(struct cli *cli, int argc, char **argv)
{
	struct repo_cli rc = {};
	_cleanup_(repo_freep) struct repo *repo = NULL;
	struct snapshot **v = NULL;
	struct sizes packs = {}, idx = {};
	uint64_t raw = 0, stored = 0, restore_size = 0, files = 0;
	size_t n = 0;
	int code, r;

	const struct cli_option options[] = { REPO_CLI_OPTIONS(&rc), {} };

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_PERMUTE);
	if (code != CLI_CONTINUE)
		return code;
	if (optind + 1 < argc)
		return cli_usage_error(cli, "usage: bcdr stats [SNAP]");
	if ((code = repo_cli_open(cli, &rc, &repo)))
		return code;
	r = repo_load_index(repo);
	if (r >= 0)
		r = repo->backend->ops->list(repo->backend, "data", add_size, &packs);
	if (r >= 0)
		r = repo->backend->ops->list(repo->backend, "index", add_size, &idx);
	if (r >= 0 && optind < argc) {
		struct snapshot *s;

		r = repo_find_snapshot(repo, argv[optind], &s);
		if (r >= 0) {
			v = calloc(1, sizeof(*v));
			if (v) {
				v[0] = s;
				n = 1;
			}
		}
	} else if (r >= 0) {
		r = repo_list_snapshots(repo, &v, &n);
	}
	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct tree_reader *t;
		struct node *nd;

		r = repo_tree_open(repo, v[i], &t);
		while (r >= 0 && (r = tree_reader_next(t, &nd)) == 1)
			if (nd->type == NODE_FILE) {
				files++;
				restore_size += nd->size;
			}
		repo_tree_close(t);
	}
	if (r < 0) {
		code = repo_cli_error(r, "cannot read the repository", rc.path);
		snapshots_free(v, n);
		return code;
	}
	for (size_t i = 0; i < repo->index->n; i++) {
		struct index_blob b;

		index_get(repo->index, i, &b);
		raw += b.raw_length;
		stored += b.length;
	}
	if (cli->json) {
		_cleanup_json_ json_t *j = json_object();

		json_set_int(j, "snapshots", (long long)n);
		json_set_int(j, "files", (long long)files);
		json_set_int(j, "restore_size", (long long)restore_size);
		json_set_int(j, "blobs", (long long)repo->index->n);
		json_set_int(j, "unique_size", (long long)raw);
		json_set_int(j, "stored_size", (long long)stored);
		json_set_int(j, "packs", (long long)packs.packs);
		json_set_int(j, "pack_bytes", (long long)packs.bytes);
		json_set_int(j, "index_bytes", (long long)idx.bytes);
		json_print(stdout, j);
	} else if (!cli->quiet) {
		char a[32], b[32], c[32], d[32];

		printf("snapshots:        %zu (%llu files, %s if all were restored)\n", n,
		       (unsigned long long)files, size_format(restore_size, a, sizeof(a)));
		printf("unique data:      %s in %zu blobs (deduplication %.1fx)\n",
		       size_format(raw, b, sizeof(b)), repo->index->n,
		       raw ? (double)restore_size / (double)raw : 0);
		printf("stored:           %s in %llu packs (compression %.1fx), index %s\n",
		       size_format(packs.bytes, c, sizeof(c)), (unsigned long long)packs.packs,
		       stored ? (double)raw / (double)stored : 0, size_format(idx.bytes, d, sizeof(d)));
	}
	snapshots_free(v, n);
	return EXIT_OK;
}

const struct command cmd_stats = {
	"stats", "sizes, deduplication and compression of the repository",
	"stats [SNAP] [--repo DIR] [--json]\n\n"
	"Counts snapshots (or one snapshot) and files, the size a restore of them\n"
	"would write, the unique data after deduplication and what is stored.\n",
	run_stats,
};
