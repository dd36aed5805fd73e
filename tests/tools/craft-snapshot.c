/* A test tool: writes a snapshot whose tree is given node by node, hostile
 * ones included, with the project's own encoder (tree_encode, the
 * chunker, packs, index, snapshot object), so the tests attack restore and
 * check with exactly the bytes a tampered repository would hold.
 *
 * Usage: craft-snapshot REPO SPEC.json   (BCDR_PASSWORD in the environment)
 * SPEC: {"base": "latest"?, "nodes": [{"type": "dir"|"file"|"symlink"|
 *        "hardlink"|"fifo", "path": "...", "link": "..."?, "from": "..."?,
 *        "mode": N?}, ...]}
 * "from" names a file node of the base snapshot whose chunks (content) a
 * file node takes. Prints the new snapshot's ID. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/timeutil.h"
#include "repo/repo.h"

static int die(const char *what, int r)
{
	fprintf(stderr, "craft-snapshot: %s: %s\n", what, r < 0 ? err_str(r) : "invalid");
	exit(1);
}

static const struct node *base_node(const struct tree *t, const char *path)
{
	for (size_t i = 0; t && i < t->n; i++)
		if (strcmp(t->nodes[i].path, path) == 0)
			return &t->nodes[i];
	return NULL;
}

static void fill(struct node *n, json_t *j, const struct tree *base)
{
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *path = json_string_value(json_object_get(j, "path"));
	const char *link = json_string_value(json_object_get(j, "link"));
	const char *from = json_string_value(json_object_get(j, "from"));
	json_t *mode = json_object_get(j, "mode");
	static const struct {
		const char *name;
		uint8_t type;
		uint32_t mode;
	} types[] = {
		{ "dir", NODE_DIR, S_IFDIR | 0755 },	  { "file", NODE_FILE, S_IFREG | 0644 },
		{ "symlink", NODE_SYMLINK, S_IFLNK | 0777 }, { "hardlink", NODE_HARDLINK, S_IFREG | 0644 },
		{ "fifo", NODE_SPECIAL, S_IFIFO | 0644 },
	};
	size_t k = 0;

	while (k < sizeof(types) / sizeof(types[0]) && (!type || strcmp(types[k].name, type)))
		k++;
	if (k == sizeof(types) / sizeof(types[0]) || !path)
		die("a node needs a known type and a path", 0);
	n->type = types[k].type;
	n->mode = json_is_integer(mode) ? (uint32_t)json_integer_value(mode) : types[k].mode;
	n->uid = getuid();
	n->gid = getgid();
	n->mtime_ns = n->ctime_ns = (int64_t)now_realtime() * 1000;
	n->path = strdup(path);
	n->link = link ? strdup(link) : NULL;
	if (from) {
		const struct node *b = base_node(base, from);

		if (!b || b->type != NODE_FILE)
			die(from, -BCDR_ERR_NOT_FOUND);
		n->size = b->size;
		n->nchunks = b->nchunks;
		n->chunks = malloc((size_t)b->nchunks * 32 + 1);
		if (!n->chunks)
			die("memory", -ENOMEM);
		memcpy(n->chunks, b->chunks, (size_t)b->nchunks * 32);
	}
}

/* The tree stream cut by the repository's chunker into tree blobs, in one
 * new pack with its index. */
static void save_tree(struct repo *repo, const uint8_t *stream, size_t len, struct snapshot *s)
{
	struct pack_writer w;
	uint8_t pack_id[32];
	uint32_t pos;
	bool *keep;
	uint8_t *ix_data;
	size_t ix_len, off = 0;
	int r;

	if ((r = pack_writer_init(&w, repo->compression)) < 0)
		die("pack", r);
	s->tree = malloc((len / CHUNK_MIN + 2) * 32);
	while (off < len) {
		size_t cut = chunker_next(&repo->chunker, stream + off, len - off);
		uint8_t *id = s->tree[s->ntree++];

		if ((r = crypto_blob_id(repo->crypto, stream + off, cut, id)) < 0)
			die("blob id", r);
		if ((r = index_insert(repo->index, id, BLOB_TREE)) < 0)
			die("index", r);
		if (r > 0 &&
		    (r = pack_writer_add(&w, repo->crypto, BLOB_TREE, id, stream + off, cut)) < 0)
			die("pack", r);
		off += cut;
	}
	if (w.n) {
		if ((r = repo_save_pack(repo, repo->crypto, &w, pack_id)) < 0 ||
		    (r = index_add_pack(repo->index, pack_id, &pos)) < 0)
			die("saving the pack", r);
		for (size_t i = 0; i < w.n; i++)
			if ((r = index_set_location(repo->index, pos, &w.entries[i])) < 0)
				die("index", r);
		keep = calloc(repo->index->npacks, sizeof(bool));
		keep[pos] = true;
		if ((r = index_encode(repo->index, keep, &ix_data, &ix_len)) < 0 ||
		    (r = repo_save_object(repo, OBJ_INDEX, "index", ix_data, ix_len, NULL)) < 0)
			die("saving the index", r);
		free(keep);
		free(ix_data);
	}
	pack_writer_release(&w);
}

int main(int argc, char **argv)
{
	struct repo *repo;
	struct snapshot *base = NULL, s = {};
	struct tree *bt = NULL, *t = tree_new();
	char *paths[] = { "/crafted", NULL }, *tags[] = { NULL }, hex[65];
	json_error_t jerr;
	json_t *spec, *nodes, *j, *basename;
	uint8_t *stream;
	size_t len, i;
	int r;

	if (argc != 3) {
		fprintf(stderr, "usage: craft-snapshot REPO SPEC.json\n");
		return 2;
	}
	if (!(spec = json_load_file(argv[2], 0, &jerr)))
		die(jerr.text, 0);
	if ((r = repo_open(argv[1], getenv("BCDR_PASSWORD"), &repo)) < 0)
		die(argv[1], r);
	if ((r = repo_lock(repo, false)) < 0 || (r = repo_load_index(repo)) < 0)
		die("lock and index", r);
	basename = json_object_get(spec, "base");
	if (json_is_string(basename) &&
	    ((r = repo_find_snapshot(repo, json_string_value(basename), &base)) < 0 ||
	     (r = repo_load_tree(repo, base, &bt)) < 0))
		die("base snapshot", r);
	nodes = json_object_get(spec, "nodes");
	json_array_foreach(nodes, i, j)
		fill(tree_append(t), j, bt);
	if ((r = tree_encode(t, &stream, &len)) < 0)
		die("encoding the tree", r);
	save_tree(repo, stream, len, &s);
	s.time = now_realtime();
	s.host = "craft";
	s.job = "";
	s.paths = paths;
	s.tags = tags;
	if ((r = repo_save_snapshot(repo, &s)) < 0)
		die("saving the snapshot", r);
	hex_encode(s.id, 32, hex);
	printf("%s\n", hex);
	free(s.tree);
	free(stream);
	tree_free(t);
	tree_free(bt);
	snapshot_free(base);
	json_decref(spec);
	repo_unlock(repo);
	repo_free(repo);
	return 0;
}
