#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/err.h"
#include "repo/snapshot.h"
#include "repo/tree_reader.h"

static void test_tree_roundtrip_and_garbage(void **state)
{
	struct tree *t = tree_new(), *back;
	struct node *n;
	uint8_t *data;
	size_t len;
	int r, valid = 0;

	(void)state;
	n = tree_append(t);
	n->type = NODE_DIR;
	n->path = strdup("etc");
	n = tree_append(t);
	n->type = NODE_FILE;
	n->path = strdup("etc/passwd");
	n->mode = 0100644;
	n->size = 1234;
	n->mtime_ns = -5;
	n->nchunks = 2;
	n->chunks = calloc(2, 32);
	n->chunks[1][0] = 9;
	n->nxattrs = 1;
	n->xattrs = calloc(1, sizeof(struct xattr));
	n->xattrs[0].name = strdup("user.a");
	n->xattrs[0].value = malloc(3);
	memcpy(n->xattrs[0].value, "xyz", 3);
	n->xattrs[0].len = 3;
	n = tree_append(t);
	n->type = NODE_SYMLINK;
	n->path = strdup("etc/link");
	n->link = strdup("passwd");
	assert_int_equal(tree_encode(t, &data, &len), 0);
	assert_int_equal(tree_decode(data, len, &back), 0);
	assert_int_equal(back->n, 3);
	assert_int_equal(back->nrefused, 0);
	assert_string_equal(back->nodes[1].path, "etc/passwd");
	assert_int_equal(back->nodes[1].mtime_ns, -5);
	assert_int_equal(back->nodes[1].chunks[1][0], 9);
	assert_memory_equal(back->nodes[1].xattrs[0].value, "xyz", 3);
	assert_string_equal(back->nodes[2].link, "passwd");
	tree_free(back);
	/* Every truncation is refused cleanly. */
	for (size_t cut = 0; cut < len; cut++) {
		back = NULL;
		if (cut == 0) {
			assert_int_equal(tree_decode(data, 0, &back), 0);
			tree_free(back);
			continue;
		}
		r = tree_decode(data, cut, &back);
		if (r == 0) {
			/* Only a cut between whole nodes is a valid stream. */
			assert_true(back->n == 1 || back->n == 2);
			valid++;
			tree_free(back);
		} else {
			assert_int_equal(r, -BCDR_ERR_CORRUPT);
		}
	}
	assert_int_equal(valid, 2);
	free(data);
	tree_free(t);
}

/* A tree of n nodes with paths, links, xattrs and chunk lists of varied
 * sizes, so nodes straddle the cuts between pieces. */
static struct tree *sample_tree(size_t n)
{
	struct tree *t = tree_new();
	char path[64];

	tree_append(t)->type = NODE_DIR;
	t->nodes[0].path = strdup("dir");
	for (size_t i = 1; i < n; i++) {
		struct node *nd = tree_append(t);

		snprintf(path, sizeof(path), "dir/file-%zu", i);
		nd->type = i % 3 ? NODE_FILE : NODE_SYMLINK;
		nd->path = strdup(path);
		nd->size = i * 1000;
		nd->mtime_ns = (int64_t)i;
		if (nd->type == NODE_SYMLINK)
			nd->link = strdup("target");
		nd->nchunks = (uint32_t)(i % 5);
		nd->chunks = nd->nchunks ? calloc(nd->nchunks, 32) : NULL;
		for (uint32_t c = 0; c < nd->nchunks; c++)
			nd->chunks[c][0] = (uint8_t)(i + c);
		if (i % 4 == 1) {
			nd->nxattrs = 1;
			nd->xattrs = calloc(1, sizeof(struct xattr));
			nd->xattrs[0].name = strdup("user.k");
			nd->xattrs[0].value = calloc(1, 100);
			nd->xattrs[0].len = 100;
		}
	}
	return t;
}

static void assert_same_trees(const struct tree *a, const struct tree *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		const struct node *x = &a->nodes[i], *y = &b->nodes[i];

		assert_int_equal(x->type, y->type);
		assert_string_equal(x->path, y->path);
		assert_int_equal(x->size, y->size);
		assert_int_equal(x->nchunks, y->nchunks);
		if (x->nchunks)
			assert_memory_equal(x->chunks, y->chunks, (size_t)x->nchunks * 32);
		assert_int_equal(x->nxattrs, y->nxattrs);
		assert_true(!x->link == !y->link);
		if (x->link)
			assert_string_equal(x->link, y->link);
	}
}

static void test_tree_stream_in_pieces(void **state)
{
	struct tree *t = sample_tree(40), *back;
	uint8_t *data, *again;
	size_t len, size, off = 0;

	(void)state;
	assert_int_equal(tree_encode(t, &data, &len), 0);
	/* Node by node gives the same bytes as the whole tree at once. */
	again = malloc(len);
	for (size_t i = 0; i < t->n; i++) {
		assert_int_equal(tree_node_size(&t->nodes[i], &size), 0);
		assert_ptr_equal(tree_node_write(&t->nodes[i], again + off), again + off + size);
		off += size;
	}
	assert_int_equal(off, len);
	assert_memory_equal(again, data, len);
	free(again);
	/* Fed in pieces of every size from 1 byte to the whole stream. */
	for (size_t piece = 1; piece <= len; piece += piece < 64 ? 1 : 97) {
		struct tree_decoder d;

		assert_int_equal(tree_decoder_init(&d), 0);
		for (size_t o = 0; o < len; o += piece)
			assert_int_equal(tree_decoder_feed(&d, data + o, len - o < piece ? len - o : piece), 0);
		assert_int_equal(tree_decoder_finish(&d, &back), 0);
		tree_decoder_release(&d);
		assert_same_trees(t, back);
		tree_free(back);
	}
	/* A stream that ends inside a node is refused at the end; garbage at once. */
	for (size_t cut = 1; cut < len; cut += 7) {
		struct tree_decoder d;
		int r;

		assert_int_equal(tree_decoder_init(&d), 0);
		r = tree_decoder_feed(&d, data, cut);
		if (r == 0)
			r = tree_decoder_finish(&d, &back);
		if (r == 0) {
			assert_true(back->n < t->n);
			tree_free(back);
		} else {
			assert_int_equal(r, -BCDR_ERR_CORRUPT);
		}
		tree_decoder_release(&d);
	}
	free(data);
	tree_free(t);
}

static void test_tree_decoder_garbage(void **state)
{
	struct tree_decoder d;
	uint8_t junk[8] = { 99, 1, 0, 'x' };

	(void)state;
	assert_int_equal(tree_decoder_init(&d), 0);
	assert_int_equal(tree_decoder_feed(&d, junk, sizeof(junk)), -BCDR_ERR_CORRUPT);
	tree_decoder_release(&d);
}

static void add(struct tree *t, uint8_t type, const char *path, const char *link)
{
	struct node *n = tree_append(t);

	n->type = type;
	n->path = strdup(path);
	n->link = link ? strdup(link) : NULL;
}

static const char *why_of(const struct tree *t, const char *path)
{
	for (size_t i = 0; i < t->nrefused_kept; i++)
		if (strcmp(t->refused[i].path, path) == 0)
			return t->refused[i].why;
	return NULL;
}

/* Paths that lead out of a restore's target, and nodes out of order, are
 * refused one by one; the rest of the tree decodes. */
static void test_tree_refuses_hostile_nodes(void **state)
{
	static const struct {
		uint8_t type;
		const char *path, *link, *why; /* why NULL: accepted */
	} cases[] = {
		{ NODE_DIR, "a", NULL, NULL },
		{ NODE_FILE, "a/f", NULL, NULL },
		{ NODE_SYMLINK, "l", "/etc", NULL }, /* a symlink's target is free */
		{ NODE_FILE, "/abs", NULL, "an absolute path" },
		{ NODE_FILE, "", NULL, "an empty path" },
		{ NODE_FILE, "a//b", NULL, "an empty path component" },
		{ NODE_DIR, "a/", NULL, "an empty path component" },
		{ NODE_FILE, "./x", NULL, "a '.' path component" },
		{ NODE_FILE, "a/./y", NULL, "a '.' path component" },
		{ NODE_DIR, "..", NULL, "a '..' path component" },
		{ NODE_FILE, "../x", NULL, "a '..' path component" },
		{ NODE_FILE, "a/../../z", NULL, "a '..' path component" },
		{ NODE_FILE, "a/..", NULL, "a '..' path component" },
		{ NODE_FILE, "l/cron", NULL, "its parent is not a directory" },
		{ NODE_FILE, "a/f/x", NULL, "its parent is not a directory" },
		{ NODE_FILE, "b/x", NULL, "no node of its parent directory comes before it" },
		{ NODE_SYMLINK, "a", "/", "a second node of the same path" },
		{ NODE_HARDLINK, "h1", "../etc/passwd", "a hard link whose target is not a valid path" },
		{ NODE_HARDLINK, "h2", "/etc/passwd", "a hard link whose target is not a valid path" },
		{ NODE_HARDLINK, "h3", NULL, "a hard link whose target is not a valid path" },
		{ NODE_HARDLINK, "h4", "a", "a hard link whose target is not an earlier file" },
		{ NODE_HARDLINK, "h5", "later", "a hard link whose target is not an earlier file" },
		{ NODE_HARDLINK, "h6", "a/f", NULL },
		{ NODE_FILE, "later/x", NULL, "no node of its parent directory comes before it" },
		{ NODE_FILE, "later", NULL, NULL },
		{ NODE_FILE, "a/\x01'q", NULL, NULL },
		{ NODE_FILE, "/\x01'x", NULL, "an absolute path" },
	};
	const size_t ncases = sizeof(cases) / sizeof(cases[0]);
	struct tree *t = tree_new(), *back;
	size_t accepted = 0, k = 0;
	uint8_t *data;
	size_t len;

	(void)state;
	for (size_t i = 0; i < ncases; i++) {
		add(t, cases[i].type, cases[i].path, cases[i].link);
		accepted += !cases[i].why;
	}
	assert_int_equal(tree_encode(t, &data, &len), 0);
	/* Fed in pieces of 1 to 40 bytes, then whole (piece 41). */
	for (size_t piece = 1; piece <= 41; piece++) {
		if (piece == 41) {
			assert_int_equal(tree_decode(data, len, &back), 0);
		} else {
			struct tree_decoder d;

			assert_int_equal(tree_decoder_init(&d), 0);
			for (size_t o = 0; o < len; o += piece)
				assert_int_equal(tree_decoder_feed(&d, data + o,
								   len - o < piece ? len - o : piece), 0);
			assert_int_equal(tree_decoder_finish(&d, &back), 0);
			tree_decoder_release(&d);
		}
		assert_int_equal(back->n, accepted);
		assert_int_equal(back->nrefused, ncases - accepted);
		assert_int_equal(back->nrefused_kept, ncases - accepted);
		k = 0;
		for (size_t i = 0; i < ncases; i++) {
			if (cases[i].why)
				continue;
			assert_string_equal(back->nodes[k].path, cases[i].path);
			k++;
		}
		assert_string_equal(why_of(back, "a//b"), "an empty path component");
		assert_string_equal(why_of(back, "l/cron"), "its parent is not a directory");
		assert_string_equal(why_of(back, "/\\x01\\x27x"), "an absolute path");
		for (size_t i = 0; i < back->nrefused_kept; i++) {
			size_t c = 0;

			while (c < ncases && !(cases[c].why && strcmp(cases[c].why,
						back->refused[i].why) == 0))
				c++;
			assert_true(c < ncases);
		}
		for (size_t i = 0; i < ncases; i++)
			if (cases[i].why && strchr(cases[i].path, '\x01') == NULL)
				assert_string_equal(why_of(back, cases[i].path), cases[i].why);
		assert_string_equal(back->refused[14].link, "../etc/passwd");
		tree_free(back);
	}
	free(data);
	tree_free(t);

	/* Many refusals: all counted, the first TREE_MAX_REFUSALS kept. */
	t = tree_new();
	for (unsigned i = 0; i < TREE_MAX_REFUSALS + 500; i++)
		add(t, NODE_FILE, "../x", NULL);
	add(t, NODE_FILE, "ok", NULL);
	assert_int_equal(tree_encode(t, &data, &len), 0);
	assert_int_equal(tree_decode(data, len, &back), 0);
	assert_int_equal(back->n, 1);
	assert_int_equal(back->nrefused, TREE_MAX_REFUSALS + 500);
	assert_int_equal(back->nrefused_kept, TREE_MAX_REFUSALS);
	tree_free(back);
	free(data);
	tree_free(t);
}

static void test_tree_path_invalid(void **state)
{
	(void)state;
	assert_null(tree_path_invalid("a"));
	assert_null(tree_path_invalid("a/b/c"));
	assert_null(tree_path_invalid("..."));
	assert_null(tree_path_invalid(".a/..b/c."));
	assert_non_null(tree_path_invalid(NULL));
	assert_non_null(tree_path_invalid("/"));
	assert_non_null(tree_path_invalid("a/"));
	assert_non_null(tree_path_invalid("a/."));
	assert_non_null(tree_path_invalid("./a"));
	assert_non_null(tree_path_invalid("a/../b"));
}

static void test_snapshot_roundtrip(void **state)
{
	struct snapshot s = { .time = 1700000000000000ull, .host = "h", .job = "j" }, *back;
	char *paths[] = { "/srv", NULL }, *text;
	uint8_t tree[2][32] = { { 1 }, { 2 } };
	size_t len;

	(void)state;
	s.paths = paths;
	s.tree = tree;
	s.ntree = 2;
	s.summary.files_new = 42;
	assert_int_equal(snapshot_encode(&s, &text, &len), 0);
	assert_int_equal(snapshot_decode((uint8_t *)text, len, &back), 0);
	assert_string_equal(back->host, "h");
	assert_string_equal(back->paths[0], "/srv");
	assert_int_equal(back->ntree, 2);
	assert_int_equal(back->tree[1][0], 2);
	assert_int_equal(back->summary.files_new, 42);
	snapshot_free(back);
	free(text);
	assert_int_equal(snapshot_decode((const uint8_t *)"{\"version\":2}", 13, &back),
			 -BCDR_ERR_VERSION);
	assert_int_equal(snapshot_decode((const uint8_t *)"[]", 2, &back), -BCDR_ERR_CORRUPT);
}

/* Walk order: a directory, then everything under it, then its next
 * sibling, whatever bytes sort between "/" and the name's next byte. */
static void test_tree_path_cmp(void **state)
{
	static const char *const order[] = { "a",   "a/b", "a/b/c", "a/c", "a b",
					     "a-x", "a.y", "a0",    "ab",  "b" };
	const size_t n = sizeof(order) / sizeof(order[0]);

	(void)state;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < n; k++) {
			int c = tree_path_cmp(order[i], order[k]);

			assert_true(i < k ? c < 0 : i > k ? c > 0 : c == 0);
		}
}

struct pieces {
	const uint8_t *data;
	size_t len, off, piece;
	unsigned calls;
};

static int fill_piece(void *userdata, struct tree_reader *r)
{
	struct pieces *p = userdata;
	size_t k = p->len - p->off < p->piece ? p->len - p->off : p->piece;

	p->calls++;
	if (k == 0) {
		tree_reader_end(r);
		return 0;
	}
	p->off += k;
	return tree_reader_feed(r, p->data + p->off - k, k);
}

/* The reader pulls pieces as it needs them and hands out nodes one at a
 * time, holding no more than the cut node; refused ones are counted. */
static void test_tree_reader_pulls(void **state)
{
	struct tree *t = tree_new();
	struct tree_reader r;
	struct pieces p = { .piece = 7 };
	struct node *n;
	uint8_t *data;
	size_t len, got = 0;
	char path[32];

	(void)state;
	add(t, NODE_DIR, "d", NULL);
	for (int i = 0; i < 1000; i++) {
		snprintf(path, sizeof(path), "d/f%04d", i);
		add(t, NODE_FILE, path, NULL);
	}
	add(t, NODE_FILE, "d/f0005", NULL); /* again */
	add(t, NODE_HARDLINK, "d/h", "d/f0003");
	add(t, NODE_FILE, "x/y", NULL);
	assert_int_equal(tree_encode(t, &data, &len), 0);
	p.data = data;
	p.len = len;
	assert_int_equal(tree_reader_init(&r, fill_piece, &p), 0);
	while (tree_reader_next(&r, &n) == 1) {
		if (got == 0)
			assert_string_equal(n->path, "d");
		got++;
		assert_true(r.cap <= 65536);
	}
	assert_int_equal(got, 1002);
	assert_int_equal(r.refused->nrefused, 2);
	assert_string_equal(r.refused->refused[0].why, "a second node of the same path");
	assert_true(p.calls >= len / 7);
	assert_int_equal(tree_reader_next(&r, &n), 0);
	tree_reader_release(&r);
	/* Cut short: corrupt at the end, after the whole nodes. */
	p = (struct pieces){ .data = data, .len = len - 3, .piece = 100 };
	assert_int_equal(tree_reader_init(&r, fill_piece, &p), 0);
	got = 0;
	int k;
	while ((k = tree_reader_next(&r, &n)) == 1)
		got++;
	assert_int_equal(k, -BCDR_ERR_CORRUPT);
	assert_int_equal(got, 1002); /* the cut one is x/y, refused anyway */
	tree_reader_release(&r);
	free(data);
	tree_free(t);
}

/* A merge-only reader (a backup's parent) hands out every node of a valid
 * path, keeping no set: 100,000 nodes, and the reader holds no more than
 * its piece buffer; an invalid path is still refused. */
static void test_tree_reader_merge_only(void **state)
{
	struct tree *t = tree_new();
	struct tree_reader r;
	struct pieces p = { .piece = 4096 };
	struct node *n;
	uint8_t *data;
	size_t len, got = 0;
	char path[32];

	(void)state;
	add(t, NODE_DIR, "d", NULL);
	for (int i = 0; i < 100000; i++) {
		snprintf(path, sizeof(path), "d/f%06d", i);
		add(t, NODE_FILE, path, NULL);
	}
	add(t, NODE_FILE, "d/f000005", NULL); /* again: looked up by path, harmless */
	add(t, NODE_FILE, "x/y", NULL);       /* no parent: the same */
	add(t, NODE_FILE, "../y", NULL);      /* not a path: refused */
	assert_int_equal(tree_encode(t, &data, &len), 0);
	p.data = data;
	p.len = len;
	assert_int_equal(tree_reader_init(&r, fill_piece, &p), 0);
	assert_int_equal(tree_reader_expect(&r, 100000), 0);
	tree_reader_merge_only(&r);
	assert_int_equal(tree_reader_expect(&r, 100000), 0); /* no set: still none */
	while (tree_reader_next(&r, &n) == 1) {
		got++;
		assert_null(r.set.slots);
		assert_true(r.cap <= 65536);
	}
	assert_int_equal(got, 100003);
	assert_int_equal(r.refused->nrefused, 1);
	assert_int_equal(r.set.nslots, 0);
	tree_reader_release(&r);
	free(data);
	tree_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_roundtrip_and_garbage),
		cmocka_unit_test(test_tree_stream_in_pieces),
		cmocka_unit_test(test_tree_decoder_garbage),
		cmocka_unit_test(test_tree_path_cmp),
		cmocka_unit_test(test_tree_reader_pulls),
		cmocka_unit_test(test_tree_reader_merge_only),
		cmocka_unit_test(test_tree_refuses_hostile_nodes),
		cmocka_unit_test(test_tree_path_invalid),
		cmocka_unit_test(test_snapshot_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
