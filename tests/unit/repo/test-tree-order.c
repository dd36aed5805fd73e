/* The tree reader's rules in walk order (tree_reader.h): a stream in walk
 * order is read with the last path and the marked files alone; one that
 * leaves the order falls back to the set, reading the stream again; and
 * either way the nodes accepted and refused, and why, are those of the
 * set's reader (a reader that cannot rewind). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/err.h"
#include "repo/tree_reader.h"

static void add(struct tree *t, uint8_t type, const char *path, const char *link, uint8_t flags)
{
	struct node *n = tree_append(t);

	n->type = type;
	n->path = strdup(path);
	n->link = link ? strdup(link) : NULL;
	n->flags = flags;
}

struct source {
	const uint8_t *data;
	size_t len, off, piece;
	unsigned rewinds;
};

static int fill(void *userdata, struct tree_reader *r)
{
	struct source *s = userdata;
	size_t k = s->len - s->off < s->piece ? s->len - s->off : s->piece;

	if (k == 0) {
		tree_reader_end(r);
		return 0;
	}
	s->off += k;
	return tree_reader_feed(r, s->data + s->off - k, k);
}

static int rewind_source(void *userdata)
{
	struct source *s = userdata;

	s->off = 0;
	s->rewinds++;
	return 0;
}

/* What a reader made of a stream: "path\n" per accepted node, then
 * "!path why\n" per refusal. */
struct outcome {
	char *text;
	size_t len;
	unsigned rewinds;
	bool set;     /* it came to the set */
	size_t links; /* marked files it kept */
};

static void put(struct outcome *o, const char *a, const char *b)
{
	size_t add = strlen(a) + (b ? strlen(b) + 1 : 0) + 1;

	o->text = realloc(o->text, o->len + add + 1);
	assert_non_null(o->text);
	o->len += (size_t)snprintf(o->text + o->len, add + 1, "%s%s%s\n", a, b ? " " : "",
				   b ? b : "");
}

static struct outcome read_stream(const struct tree *t, bool rewindable, size_t piece)
{
	struct source s = { .piece = piece };
	struct outcome o = {};
	struct tree_reader r;
	struct node *n;
	uint8_t *data;
	int k;

	assert_int_equal(tree_encode(t, &data, &s.len), 0);
	s.data = data;
	assert_int_equal(tree_reader_init(&r, fill, &s), 0);
	if (rewindable)
		tree_reader_rewindable(&r, rewind_source);
	while ((k = tree_reader_next(&r, &n)) == 1)
		put(&o, n->path, NULL);
	assert_int_equal(k, 0);
	for (size_t i = 0; i < r.refused->nrefused_kept; i++) {
		char bang[4200];

		snprintf(bang, sizeof(bang), "!%s", r.refused->refused[i].path);
		put(&o, bang, r.refused->refused[i].why);
	}
	if (!o.text)
		put(&o, "(nothing)", NULL);
	o.rewinds = s.rewinds;
	o.set = r.set.slots != NULL;
	o.links = r.links.nused;
	tree_reader_release(&r);
	free(data);
	return o;
}

/* The rewindable reader against the set's, in pieces of a few sizes;
 * returns the rewindable one's outcome (whole stream). */
static struct outcome same_as_set(const struct tree *t)
{
	struct outcome want = read_stream(t, false, 1 << 20), got = {};

	for (size_t piece = 1; piece <= 1 << 20; piece = piece < 64 ? piece * 3 : 1 << 20) {
		free(got.text);
		got = read_stream(t, true, piece);
		assert_string_equal(got.text, want.text);
		if (piece == 1 << 20)
			break;
	}
	free(want.text);
	return got;
}

/* A walk-order tree: dirs d0..d9, each with files, hard links to the
 * marked ones of earlier directories, a symlink, an error node. */
static struct tree *walk_tree(void)
{
	struct tree *t = tree_new();
	char p[64], l[64];

	add(t, NODE_DIR, "d", NULL, 0);
	for (int d = 0; d < 10; d++) {
		snprintf(p, sizeof(p), "d/%d", d);
		add(t, NODE_DIR, p, NULL, 0);
		for (int f = 0; f < 50; f++) {
			snprintf(p, sizeof(p), "d/%d/f%02d", d, f);
			add(t, f == 7 ? NODE_ERROR : NODE_FILE, p, NULL, f % 10 == 0 || f == 7);
		}
		if (d) {
			snprintf(p, sizeof(p), "d/%d/h", d);
			snprintf(l, sizeof(l), "d/%d/f%02d", d - 1, d % 2 ? 7 : 10);
			add(t, NODE_HARDLINK, p, l, 0);
		}
		snprintf(p, sizeof(p), "d/%d/s", d);
		add(t, NODE_SYMLINK, p, "/etc", 0);
	}
	add(t, NODE_FILE, "e", NULL, 0);
	return t;
}

/* A stream in walk order: no rewind, no set, the marked files only. */
static void test_order_bounded(void **state)
{
	struct tree *t = walk_tree();
	struct outcome o;

	(void)state;
	o = same_as_set(t);
	assert_int_equal(o.rewinds, 0);
	assert_false(o.set);
	assert_int_equal(o.links, 10 * 6);
	assert_non_null(strstr(o.text, "d/9/h\n"));
	assert_null(strchr(o.text, '!'));
	free(o.text);
	tree_free(t);
}

/* Hostile nodes a walk-order reader refuses by itself, without the set:
 * the same reasons as the set's reader. */
static void test_order_refuses_alone(void **state)
{
	static const struct {
		uint8_t type;
		const char *path, *link, *why;
	} cases[] = {
		{ NODE_DIR, "a", NULL, NULL },
		{ NODE_FILE, "a/f", NULL, NULL },
		{ NODE_FILE, "a/f", NULL, "a second node of the same path" },
		{ NODE_FILE, "a/f/x", NULL, "its parent is not a directory" },
		{ NODE_HARDLINK, "a/g", "a", "a hard link whose target is not an earlier file" },
		{ NODE_HARDLINK, "a/h", "a/f", NULL }, /* the last file: no mark needed */
		{ NODE_HARDLINK, "a/i", "a/z", "a hard link whose target is not an earlier file" },
		{ NODE_HARDLINK, "a/j", "../f", "a hard link whose target is not a valid path" },
		{ NODE_FILE, "a/k/x", NULL, "no node of its parent directory comes before it" },
		{ NODE_SYMLINK, "b", "a", NULL },
		{ NODE_FILE, "b/c", NULL, "its parent is not a directory" },
		{ NODE_FILE, "c/d", NULL, "no node of its parent directory comes before it" },
		{ NODE_FILE, "/c", NULL, "an absolute path" },
		{ NODE_HARDLINK, "d", "b", "a hard link whose target is not an earlier file" },
		{ NODE_HARDLINK, "e", NULL, "a hard link whose target is not a valid path" },
		{ NODE_FILE, "", NULL, "an empty path" },
		{ NODE_DIR, "f/", NULL, "an empty path component" },
	};
	struct tree *t = tree_new();
	struct outcome o;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		add(t, cases[i].type, cases[i].path, cases[i].link, 0);
	o = same_as_set(t);
	assert_int_equal(o.rewinds, 0);
	assert_false(o.set);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char line[128];

		if (cases[i].why)
			snprintf(line, sizeof(line), "!%s %s\n", cases[i].path, cases[i].why);
		else
			snprintf(line, sizeof(line), "%s\n", cases[i].path);
		assert_non_null(strstr(o.text, line));
	}
	free(o.text);
	tree_free(t);
}

/* What leaves the order, or links to an unmarked file (an older writer's
 * stream), falls back to the set once, and reads as the set's reader does. */
static void test_order_falls_back(void **state)
{
	static const struct {
		const char *what, *path, *link, *line;
		uint8_t type;
	} cases[] = {
		{ "a node before the last", "d/5/f03", NULL,
		  "!d/5/f03 a second node of the same path\n", NODE_FILE },
		{ "a new node before the last", "c", NULL, "c\n", NODE_FILE },
		{ "a parent after its children", "d/0/x", NULL, "d/0/x\n", NODE_FILE },
		{ "a link to an unmarked file", "z", "d/3/f05", "z\n", NODE_HARDLINK },
		{ "a link to a missing file", "z", "d/3/zz",
		  "!z a hard link whose target is not an earlier file\n", NODE_HARDLINK },
		{ "a link to a directory", "z", "d/3",
		  "!z a hard link whose target is not an earlier file\n", NODE_HARDLINK },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tree *t = walk_tree();
		struct outcome o;

		add(t, NODE_DIR, "f", NULL, 0);
		if (i == 2) /* "d/0" again, after "d/0/...": refused, its child is not */
			add(t, NODE_DIR, "d/0", NULL, 0);
		add(t, cases[i].type, cases[i].path, cases[i].link, 0);
		add(t, NODE_DIR, "f/g", NULL, 0); /* the set goes on */
		add(t, NODE_DIR, "f/g", NULL, 0);
		o = same_as_set(t);
		if (!strstr(o.text, cases[i].line))
			fail_msg("%s: no '%s' in\n%s", cases[i].what, cases[i].line, o.text);
		assert_int_equal(o.rewinds, 1);
		assert_true(o.set);
		assert_non_null(strstr(o.text, "!f/g a second node of the same path\n"));
		free(o.text);
		tree_free(t);
	}
}

/* Random small streams, sorted or not, with marks and links anywhere:
 * always the set's outcome. */
static void test_order_random(void **state)
{
	static const char *const names[] = { "a", "a/b", "a/b/c", "a/c", "a.b",
					     "b", "b/a", "c",     "",    "a/" };
	const unsigned nnames = sizeof(names) / sizeof(names[0]);
	unsigned seed = 12345, fell = 0, stayed = 0;

	(void)state;
	for (int round = 0; round < 3000; round++) {
		struct tree *t = tree_new();
		unsigned n = 1 + (seed = seed * 1103515245 + 12345) / 65536 % 10;
		bool sorted = round % 2;
		struct outcome o;

		for (unsigned i = 0; i < n; i++) {
			unsigned x = (seed = seed * 1103515245 + 12345) / 65536;
			unsigned p = sorted ? (i * nnames + x % 3) / n : x % nnames;
			uint8_t type = (uint8_t)(1 + (x >> 4) % 6);

			add(t, type, names[p % nnames],
			    type == NODE_HARDLINK ? names[(x >> 8) % nnames] : NULL, (x >> 12) % 2);
		}
		o = same_as_set(t);
		fell += o.rewinds != 0;
		stayed += o.rewinds == 0;
		free(o.text);
		tree_free(t);
	}
	assert_true(fell > 100 && stayed > 100); /* both ways were taken */
}

/* A merge-only reader stays out of the rules, rewindable or not. */
static void test_order_merge_only(void **state)
{
	struct tree *t = walk_tree();
	struct source s = { .piece = 100 };
	struct tree_reader r;
	struct node *n;
	uint8_t *data;
	size_t got = 0;

	(void)state;
	add(t, NODE_FILE, "a", NULL, 0); /* out of order: no matter */
	assert_int_equal(tree_encode(t, &data, &s.len), 0);
	s.data = data;
	assert_int_equal(tree_reader_init(&r, fill, &s), 0);
	tree_reader_rewindable(&r, rewind_source);
	tree_reader_merge_only(&r);
	while (tree_reader_next(&r, &n) == 1)
		got++;
	assert_int_equal(got, t->n);
	assert_int_equal(s.rewinds, 0);
	assert_null(r.set.slots);
	tree_reader_release(&r);
	free(data);
	tree_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_bounded),    cmocka_unit_test(test_order_refuses_alone),
		cmocka_unit_test(test_order_falls_back), cmocka_unit_test(test_order_random),
		cmocka_unit_test(test_order_merge_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
