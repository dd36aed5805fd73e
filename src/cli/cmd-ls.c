/* bcdr ls and bcdr diff: what a snapshot holds, and what changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "backup/pathmap.h"
#include "cli/repo-cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"

static const char *type_name(uint8_t t)
{
	static const char *const names[] = { "?", "file", "dir", "symlink", "hardlink",
					      "special", "error" };

	return t < ELEMENTSOF(names) ? names[t] : "?";
}

static int find(struct repo *repo, const char *spec, const char *path, struct snapshot **ret_s)
{
	int r = repo_find_snapshot(repo, spec, ret_s);

	if (r == -BCDR_ERR_NOT_FOUND) {
		log_error("no snapshot '%s' in '%s' (bcdr snapshots lists them)", spec, path);
		return EXIT_FAIL;
	}
	if (r == -BCDR_ERR_AMBIGUOUS) {
		log_error("snapshot '%s' is ambiguous: give more of its ID", spec);
		return EXIT_FAIL;
	}
	return r < 0 ? repo_cli_error(r, "cannot read the snapshot", path) : 0;
}

static bool under(const char *path, const char *prefix)
{
	size_t l;

	while (*prefix == '/')
		prefix++;
	l = strlen(prefix);
	while (l && prefix[l - 1] == '/')
		l--;
	return l == 0 || (strncmp(path, prefix, l) == 0 && (path[l] == 0 || path[l] == '/'));
}

static void mode_string(uint32_t mode, uint8_t type, char out[11])
{
	const char *rwx = "rwxrwxrwx";

	out[0] = type == NODE_DIR ? 'd' : type == NODE_SYMLINK ? 'l' : S_ISFIFO(mode) ? 'p'
	       : S_ISCHR(mode) ? 'c' : S_ISBLK(mode) ? 'b' : S_ISSOCK(mode) ? 's' : '-';
	for (int i = 0; i < 9; i++)
		out[i + 1] = mode & (1u << (8 - i)) ? rwx[i] : '-';
	out[10] = 0;
}

static int run_ls(struct cli *cli, int argc, char **argv)
{
	struct repo_cli rc = {};
	_cleanup_(repo_freep) struct repo *repo = NULL;
	_cleanup_(snapshot_freep) struct snapshot *s = NULL;
	struct tree_reader *t = NULL;
	int code, r = 0;

	const struct cli_option options[] = { REPO_CLI_OPTIONS(&rc), {} };

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_PERMUTE);
	if (code != CLI_CONTINUE)
		return code;
	if (optind + 1 != argc && optind + 2 != argc)
		return cli_usage_error(cli, "usage: bcdr ls SNAP [PATH]");
	if ((code = repo_cli_open(cli, &rc, &repo)))
		return code;
	code = find(repo, argv[optind], rc.path, &s);
	if (!code && (r = repo_tree_open(repo, s, &t)) < 0)
		code = repo_cli_error(r, "cannot read the snapshot", rc.path);
	if (!code) {
		const char *prefix = optind + 2 == argc ? argv[optind + 1] : "";
		struct node *n;
		bool first = true;

		/* Node by node, as the stream is read; JSON too, as the array
		 * json_print() would write. */
		if (cli->json)
			fputc('[', stdout);
		while ((r = tree_reader_next(t, &n)) == 1) {
			char mode[11], when[64], size[32];

			if (!under(n->path, prefix))
				continue;
			time_format_iso((usec_t)(n->mtime_ns / 1000), when, sizeof(when));
			if (cli->json) {
				json_t *j = json_object();

				json_set_str(j, "path", n->path);
				json_set_str(j, "type", type_name(n->type));
				json_set_int(j, "mode", n->mode & 07777);
				json_set_int(j, "uid", n->uid);
				json_set_int(j, "gid", n->gid);
				json_set_int(j, "size", (long long)n->size);
				json_set_str(j, "mtime", when);
				if (n->link)
					json_set_str(j, n->type == NODE_ERROR ? "error" : "link", n->link);
				if (!first)
					fputc(',', stdout);
				first = false;
				json_dumpf(j, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
				json_decref(j);
				continue;
			}
			mode_string(n->mode, n->type, mode);
			snprintf(size, sizeof(size), "%llu", (unsigned long long)n->size);
			printf("%s %5u %5u %12s %s /%s", mode, n->uid, n->gid,
			       n->type == NODE_FILE ? size : "", when, n->path);
			if (n->type == NODE_SYMLINK)
				printf(" -> %s", n->link);
			else if (n->type == NODE_HARDLINK)
				printf(" => /%s", n->link);
			else if (n->type == NODE_ERROR)
				printf("  (skipped: %s)", n->link ? n->link : "");
			printf("\n");
		}
		if (cli->json)
			fputs("]\n", stdout);
		if (r < 0)
			code = repo_cli_error(r, "cannot read the snapshot", rc.path);
		/* Nodes the reader refused are damage, not files: said, not listed. */
		if (!code && t->refused && t->refused->nrefused) {
			char id[9];

			log_warning("%llu invalid nodes in snapshot %s were not listed (damage: "
				    "`bcdr check` names them)",
				    (unsigned long long)t->refused->nrefused, short_id(s->id, id));
			code = EXIT_PROBLEMS;
		}
	}
	repo_tree_close(t);
	return code;
}

const struct command cmd_ls = {
	"ls", "list the files of a snapshot",
	"ls SNAP [PATH] [--repo DIR] [--json]\n\n"
	"Lists what SNAP (an ID prefix or 'latest') holds, or only PATH and what is\n"
	"under it: mode, owner, size, modification time and path.\n",
	run_ls,
};

static bool same_content(const struct node *a, const struct node *b)
{
	return a->nchunks == b->nchunks &&
	       (a->nchunks == 0 || memcmp(a->chunks, b->chunks, (size_t)a->nchunks * 32) == 0) &&
	       a->size == b->size && ((!a->link && !b->link) ||
				      (a->link && b->link && strcmp(a->link, b->link) == 0));
}

static bool same_meta(const struct node *a, const struct node *b)
{
	return a->mode == b->mode && a->uid == b->uid && a->gid == b->gid &&
	       (a->type == NODE_DIR || a->mtime_ns == b->mtime_ns) && a->nxattrs == b->nxattrs;
}

struct diff {
	struct cli *cli;
	bool first; /* JSON: no comma before the first change */
	size_t added, removed, modified, meta;
};

/* One change, printed as it is found (JSON too, as the array json_print()
 * would write). */
static void print_change(struct diff *df, char what, const struct node *n)
{
	if (df->cli->json) {
		json_t *j = json_object();
		char w[2] = { what, 0 };

		json_set_str(j, "change", what == '+' ? "added" : what == '-' ? "removed" :
				 what == 'M' ? "modified" : what == 'T' ? "type" : "metadata");
		json_set_str(j, "path", n->path);
		json_set_str(j, "mark", w);
		if (!df->first)
			fputc(',', stdout);
		df->first = false;
		json_dumpf(j, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
		json_decref(j);
	} else {
		printf("%c  /%s%s\n", what, n->path, n->type == NODE_DIR ? "/" : "");
	}
	switch (what) {
	case '+': df->added++; break;
	case '-': df->removed++; break;
	case 'U': df->meta++; break;
	default: df->modified++;
	}
}

/* a and b: the nodes of one path in the two snapshots. */
static void compare(struct diff *df, const struct node *a, const struct node *b)
{
	if (a->type != b->type)
		print_change(df, 'T', b);
	else if (!same_content(a, b))
		print_change(df, 'M', b);
	else if (!same_meta(a, b))
		print_change(df, 'U', b);
}

/* Whether s's stream is in walk order (every stream this bcdr writes;
 * an older one with several backup paths may not be). */
static int stream_ordered(struct repo *repo, const struct snapshot *s, bool *ret)
{
	struct tree_reader *t;
	struct node *n;
	char *prev = NULL;
	int r;

	if ((r = repo_tree_open(repo, s, &t)) < 0)
		return r;
	*ret = true;
	while ((r = tree_reader_next(t, &n)) == 1) {
		if (prev && tree_path_cmp(prev, n->path) >= 0) {
			*ret = false;
			break;
		}
		free(prev);
		prev = TAKE_PTR(n->path); /* taken: the reader frees the rest */
	}
	free(prev);
	repo_tree_close(t);
	return r < 0 ? r : 0;
}

/* Both streams in walk order: a merge walk, one node of each at a time. */
static int diff_streams(struct diff *df, struct repo *repo, const struct snapshot *s1,
			const struct snapshot *s2)
{
	struct tree_reader *t1 = NULL, *t2 = NULL;
	struct node *a = NULL, *b = NULL;
	int r1, r2;

	if ((r1 = repo_tree_open(repo, s1, &t1)) < 0)
		return r1;
	if ((r2 = repo_tree_open(repo, s2, &t2)) < 0) {
		repo_tree_close(t1);
		return r2;
	}
	r1 = tree_reader_next(t1, &a);
	r2 = tree_reader_next(t2, &b);
	while (r1 == 1 || r2 == 1) {
		int c = r1 != 1 ? 1 : r2 != 1 ? -1 : tree_path_cmp(a->path, b->path);

		if (c < 0) {
			print_change(df, '-', a);
		} else if (c > 0) {
			print_change(df, '+', b);
		} else {
			compare(df, a, b);
		}
		if (c <= 0)
			r1 = tree_reader_next(t1, &a);
		if (c >= 0)
			r2 = tree_reader_next(t2, &b);
	}
	repo_tree_close(t1);
	repo_tree_close(t2);
	return r1 < 0 ? r1 : r2 < 0 ? r2 : 0;
}

/* A stream out of order: both trees whole, matched by path. */
static int diff_loaded(struct diff *df, struct tree *t1, struct tree *t2)
{
	struct pathmap m1 = {}, m2 = {};
	int r = 0;

	for (size_t i = 0; r >= 0 && i < t1->n; i++)
		r = pathmap_put(&m1, t1->nodes[i].path, i);
	for (size_t i = 0; r >= 0 && i < t2->n; i++)
		r = pathmap_put(&m2, t2->nodes[i].path, i);
	for (size_t i = 0; r >= 0 && i < t1->n; i++) {
		size_t k;

		if (pathmap_get(&m2, t1->nodes[i].path, &k) < 0)
			print_change(df, '-', &t1->nodes[i]);
	}
	for (size_t i = 0; r >= 0 && i < t2->n; i++) {
		size_t k;

		if (pathmap_get(&m1, t2->nodes[i].path, &k) < 0)
			print_change(df, '+', &t2->nodes[i]);
		else
			compare(df, &t1->nodes[k], &t2->nodes[i]);
	}
	pathmap_release(&m1);
	pathmap_release(&m2);
	return r < 0 ? r : 0;
}

static int run_diff(struct cli *cli, int argc, char **argv)
{
	struct repo_cli rc = {};
	_cleanup_(repo_freep) struct repo *repo = NULL;
	_cleanup_(snapshot_freep) struct snapshot *s1 = NULL, *s2 = NULL;
	struct tree *t1 = NULL, *t2 = NULL;
	struct diff df = { .cli = cli, .first = true };
	bool o1 = false, o2 = false;
	int code, r = 0;

	const struct cli_option options[] = { REPO_CLI_OPTIONS(&rc), {} };

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_PERMUTE);
	if (code != CLI_CONTINUE)
		return code;
	if (optind + 2 != argc)
		return cli_usage_error(cli, "usage: bcdr diff SNAP1 SNAP2");
	if ((code = repo_cli_open(cli, &rc, &repo)))
		return code;
	code = find(repo, argv[optind], rc.path, &s1);
	if (!code)
		code = find(repo, argv[optind + 1], rc.path, &s2);
	/* A read of each stream first, so that an old one out of order is
	 * known before anything is printed. */
	if (!code && ((r = stream_ordered(repo, s1, &o1)) < 0 ||
		      (r = stream_ordered(repo, s2, &o2)) < 0))
		code = repo_cli_error(r, "cannot read the snapshot", rc.path);
	if (!code && !(o1 && o2) &&
	    ((r = repo_load_tree(repo, s1, &t1)) < 0 || (r = repo_load_tree(repo, s2, &t2)) < 0))
		code = repo_cli_error(r, "cannot read the snapshot", rc.path);
	if (!code) {
		if (cli->json)
			fputc('[', stdout);
		r = o1 && o2 ? diff_streams(&df, repo, s1, s2) : diff_loaded(&df, t1, t2);
		if (cli->json)
			fputs("]\n", stdout);
		if (r < 0)
			code = repo_cli_error(r, "cannot read the snapshot", rc.path);
		else if (!cli->json && !cli->quiet)
			printf("\n%zu added, %zu removed, %zu modified, %zu with changed metadata\n",
			       df.added, df.removed, df.modified, df.meta);
	}
	tree_free(t1);
	tree_free(t2);
	return code;
}

const struct command cmd_diff = {
	"diff", "show what changed between two snapshots",
	"diff SNAP1 SNAP2 [--repo DIR] [--json]\n\n"
	"Lists paths added (+), removed (-), modified in content (M), changed in\n"
	"type (T) or only in metadata (U: mode, owner, mtime, attributes).\n",
	run_diff,
};
