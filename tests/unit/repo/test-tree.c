#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/err.h"
#include "repo/snapshot.h"
#include "repo/tree.h"

static void test_tree_roundtrip_and_garbage(void **state)
{
	struct tree *t = tree_new(), *back;
	struct node *n;
	uint8_t *data;
	size_t len;
	int r, valid = 0;

	(void)state;
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
	assert_int_equal(back->n, 2);
	assert_string_equal(back->nodes[0].path, "etc/passwd");
	assert_int_equal(back->nodes[0].mtime_ns, -5);
	assert_int_equal(back->nodes[0].chunks[1][0], 9);
	assert_memory_equal(back->nodes[0].xattrs[0].value, "xyz", 3);
	assert_string_equal(back->nodes[1].link, "passwd");
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
			assert_int_equal(back->n, 1);
			valid++;
			tree_free(back);
		} else {
			assert_int_equal(r, -BCDR_ERR_CORRUPT);
		}
	}
	assert_int_equal(valid, 1);
	free(data);
	tree_free(t);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_roundtrip_and_garbage),
		cmocka_unit_test(test_snapshot_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
