/* prune against a crafted index: a blob length no blob can have (but that
 * fits its pack) is damage, reported before any byte is decrypted, and
 * prune deletes nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "backup/forget.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "repo/repo.h"

#define BLOB (BLOB_MAX_RAW - 4096)

static size_t count_dir(const char *root, const char *sub)
{
	char path[4200];
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", root, sub);
	d = opendir(path);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.') {
			if (e->d_type == DT_DIR) {
				char s[4200];

				snprintf(s, sizeof(s), "%s/%s", sub, e->d_name);
				n += count_dir(root, s);
			} else {
				n++;
			}
		}
	closedir(d);
	return n;
}

/* One pack of three incompressible data blobs (the snapshot uses the
 * first), one pack with the tree; the index says the first blob is 40 MiB
 * long, which still fits in its 48 MiB pack. */
static void make_repo(const char *path)
{
	struct repo *repo;
	struct pack_writer w = {};
	struct index *ix = index_new();
	uint8_t ids[3][32], tree_id[32], pack_id[32], *data = malloc(BLOB), *tdata, *plain;
	struct tree *t = tree_new();
	struct node *n;
	struct snapshot s = { .time = 1 };
	char *paths[] = { "/x", NULL };
	uint8_t tree_ids[1][32];
	size_t tlen, plen;
	uint32_t pos;

	assert_int_equal(repo_init(path, "pw", &repo), 0);
	assert_int_equal(pack_writer_init(&w, 3), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(crypto_random(data, BLOB), 0);
		assert_int_equal(crypto_blob_id(repo->crypto, data, BLOB, ids[i]), 0);
		assert_int_equal(pack_writer_add(&w, repo->crypto, BLOB_DATA, ids[i], data, BLOB), 0);
	}
	assert_int_equal(repo_save_pack(repo, repo->crypto, &w, pack_id), 0);
	assert_true(index_add_pack(ix, pack_id, &pos) >= 0);
	for (size_t i = 0; i < w.n; i++) {
		struct pack_entry b = w.entries[i];

		if (i == 0)
			b.length = 40u << 20; /* crafted: fits the pack, not a blob */
		assert_true(index_add(ix, pos, &b) >= 0);
	}
	pack_writer_reset(&w);
	n = tree_append(t);
	n->type = NODE_FILE;
	n->path = strdup("x");
	n->mode = 0100644;
	n->size = BLOB;
	n->chunks = malloc(32);
	memcpy(n->chunks[0], ids[0], 32);
	n->nchunks = 1;
	assert_int_equal(tree_encode(t, &tdata, &tlen), 0);
	assert_int_equal(crypto_blob_id(repo->crypto, tdata, tlen, tree_id), 0);
	assert_int_equal(pack_writer_add(&w, repo->crypto, BLOB_TREE, tree_id, tdata, tlen), 0);
	assert_int_equal(repo_save_pack(repo, repo->crypto, &w, pack_id), 0);
	assert_true(index_add_pack(ix, pack_id, &pos) >= 0);
	assert_true(index_add(ix, pos, &w.entries[0]) >= 0);
	assert_int_equal(index_encode(ix, NULL, &plain, &plen), 0);
	assert_int_equal(repo_save_object(repo, OBJ_INDEX, "index", plain, plen, NULL), 0);
	memcpy(tree_ids[0], tree_id, 32);
	s.host = "h";
	s.paths = paths;
	s.tree = tree_ids;
	s.ntree = 1;
	assert_int_equal(repo_save_snapshot(repo, &s), 0);
	free(plain);
	free(tdata);
	free(data);
	tree_free(t);
	index_free(ix);
	pack_writer_release(&w);
	repo_free(repo);
}

static void test_crafted_blob_length_is_damage(void **state)
{
	char dir[] = "/tmp/bcdr-prune-XXXXXX", path[64];
	struct prune_result pr = {};
	struct repo *repo;
	size_t packs, indexes;

	(void)state;
	setenv("BCDR_SCRYPT_N", "1024", 1);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/repo", dir);
	make_repo(path);
	packs = count_dir(path, "data");
	indexes = count_dir(path, "index");
	assert_int_equal(packs, 2);
	assert_int_equal(indexes, 1);

	assert_int_equal(repo_open(path, "pw", &repo), 0);
	assert_int_equal(prune_run(repo, false, &pr), -BCDR_ERR_CORRUPT);
	/* Nothing deleted, nothing written, no lock left. */
	assert_int_equal(count_dir(path, "data"), packs);
	assert_int_equal(count_dir(path, "index"), indexes);
	assert_int_equal(count_dir(path, "locks"), 0);
	/* A reader of the blob through the index refuses the length too,
	 * before reserving anything for it. */
	{
		struct snapshot **v;
		struct tree *t;
		size_t nv, cap = 0, scap = 0;
		uint8_t *buf = NULL, *scratch = NULL;

		assert_int_equal(repo_load_index(repo), 0);
		assert_int_equal(repo_list_snapshots(repo, &v, &nv), 0);
		assert_int_equal(nv, 1);
		assert_int_equal(repo_load_tree(repo, v[0], &t), 0);
		assert_int_equal(repo_read_blob(repo, repo->crypto, NULL, BLOB_DATA,
						t->nodes[0].chunks[0], &buf, &cap, &scratch, &scap),
				 -BCDR_ERR_CORRUPT);
		assert_int_equal(scap, 0);
		tree_free(t);
		snapshots_free(v, nv);
		free(buf);
		free(scratch);
	}
	repo_free(repo);
	assert_int_equal(fs_rm_rf(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crafted_blob_length_is_damage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
