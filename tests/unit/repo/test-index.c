/* The in-memory index (repo/index.h): 16-byte IDs and 14-byte locations,
 * the journal of whole entries, index files from it, and what a shared
 * 16-byte prefix does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <zstd.h>

#include "lib/err.h"
#include "lib/fs.h"
#include "repo/crypto.h"
#include "repo/index.h"
#include "repo/pack.h"
#include "repo/repo.h"

static void fake_id(uint32_t i, uint8_t id[32])
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull + 1;

	for (int k = 0; k < 32; k++) {
		x ^= x >> 29;
		x *= 0xbf58476d1ce4e5b9ull;
		id[k] = (uint8_t)(x >> 56);
	}
}

static struct pack_entry entry(uint32_t i, uint32_t offset)
{
	struct pack_entry e = { .type = i % 2, .offset = offset, .length = 100 + i % 50,
				.raw_length = i % 1000 };

	fake_id(i, e.id);
	return e;
}

/* Three packs of index_add()ed blobs: a second add keeps the first, the
 * index file from the journal decodes to the same, a cut one is damage. */
static void test_index_roundtrip(void **state)
{
	struct index *ix = index_new(), *back = index_new();
	struct index_blob a, b;
	uint8_t *data;
	size_t len;

	(void)state;
	for (uint32_t p = 0; p < 3; p++) {
		uint8_t pid[32] = { (uint8_t)p, 0xaa };
		uint32_t pos;

		assert_true(index_add_pack(ix, pid, &pos) >= 0);
		for (uint32_t i = p * 5000; i < (p + 1) * 5000; i++) {
			struct pack_entry e = entry(i, i * 100);

			assert_int_equal(index_add(ix, pos, &e), 1);
			e.offset = 7;
			assert_int_equal(index_add(ix, pos, &e), 0);
		}
	}
	assert_int_equal(ix->n, 15000);
	assert_int_equal(index_encode(ix, NULL, &data, &len), 0);
	assert_int_equal(len, 8 + 3 * (36 + 5000 * PACK_ENTRY_LEN));
	assert_int_equal(index_decode(back, data, len), 0);
	assert_int_equal(back->n, 15000);
	for (uint32_t i = 0; i < 15000; i++) {
		uint8_t id[32];

		fake_id(i, id);
		assert_true(index_lookup(ix, id, &a) >= 0);
		assert_true(index_lookup(back, id, &b) >= 0);
		assert_memory_equal(a.id, id, INDEX_ID_LEN);
		assert_int_equal(a.offset, i * 100);
		assert_int_equal(b.offset, i * 100);
		assert_int_equal(b.length, 100 + i % 50);
		assert_int_equal(b.raw_length, i % 1000);
		assert_int_equal(b.type, i % 2);
		assert_memory_equal(back->packs[b.pack], ix->packs[a.pack], 32);
	}
	assert_int_equal(index_decode(back, data, len - 7), -BCDR_ERR_CORRUPT);
	free(data);
	index_free(ix);
	index_free(back);
}

/* Enough blobs for several merges of the tail into the sorted part and a
 * journal spilled to its file: every one found with its own fields. */
static void test_index_many(void **state)
{
	const uint32_t n = 300000;
	struct index *ix = index_new(), *back = index_new();
	struct index_blob b;
	uint8_t *data, id[32] = { 1, 2, 3 };
	size_t len;
	uint32_t pos;

	(void)state;
	assert_int_equal(index_add_pack(ix, (const uint8_t[32]){ 7 }, &pos), 1);
	for (uint32_t i = 0; i < n; i++) {
		struct pack_entry e = entry(i, i);

		assert_int_equal(index_add(ix, pos, &e), 1);
		if (i % 7 == 0) {
			e.offset = 0xdead;
			assert_int_equal(index_add(ix, pos, &e), 0);
		}
	}
	assert_true(ix->nsorted > 0);
	assert_true(ix->jfd > 0); /* 13.5 MB of entries: the journal is in its file */
	assert_int_equal(ix->n, n);
	for (uint32_t i = 0; i < n; i++) {
		fake_id(i, id);
		assert_int_equal(index_lookup(ix, id, &b) >= 0, 1);
		assert_int_equal(b.offset, i);
		assert_int_equal(b.type, i % 2);
		assert_int_equal(b.raw_length, i % 1000);
	}
	memset(id, 0, sizeof(id));
	assert_int_equal(index_lookup(ix, id, NULL), -1);
	assert_int_equal(index_encode(ix, NULL, &data, &len), 0);
	assert_int_equal(index_decode(back, data, len), 0);
	assert_int_equal(back->n, n);
	for (uint32_t i = 0; i < n; i += 97) {
		fake_id(i, id);
		assert_true(index_lookup(back, id, &b) >= 0);
		assert_int_equal(b.offset, i);
	}
	free(data);
	index_free(ix);
	index_free(back);
}

/* A TMPDIR that cannot hold the journal (missing) is passed over for
 * /var/tmp or /tmp: the journal still spills and index files hold every
 * blob. */
static void test_index_journal_tmpdir_fallback(void **state)
{
	const uint32_t n = 10000; /* 450 KB of entries: past the 256 KiB buffer */
	struct index *ix = index_new(), *back = index_new();
	char *old = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
	uint8_t *data;
	size_t len;
	uint32_t pos;

	(void)state;
	setenv("TMPDIR", "/nonexistent-bcdr-tmpdir", 1);
	assert_int_equal(index_add_pack(ix, (const uint8_t[32]){ 7 }, &pos), 1);
	for (uint32_t i = 0; i < n; i++) {
		struct pack_entry e = entry(i, i);

		assert_int_equal(index_add(ix, pos, &e), 1);
	}
	assert_true(ix->jfd > 0);
	assert_int_equal(index_encode(ix, NULL, &data, &len), 0);
	assert_int_equal(index_decode(back, data, len), 0);
	assert_int_equal(back->n, n);
	if (old)
		setenv("TMPDIR", old, 1);
	else
		unsetenv("TMPDIR");
	free(old);
	free(data);
	index_free(ix);
	index_free(back);
}

/* What a backup does: blobs inserted without a pack, then located as
 * their packs are written (one pack's in two runs, another's between);
 * the counts and index files hold the located ones, grouped by pack. */
static void test_index_set_location(void **state)
{
	struct index *ix = index_new(), *back = index_new();
	uint32_t pa, pb, pc;
	size_t count[3];
	bool keep[3] = { false, true, false };
	struct index_blob b;
	uint8_t *data, id[32];
	size_t len;

	(void)state;
	for (uint32_t i = 0; i < 1000; i++) {
		fake_id(i, id);
		assert_int_equal(index_insert(ix, id, i % 2), 1);
		assert_int_equal(index_insert(ix, id, i % 2), 0);
	}
	assert_true(index_lookup(ix, id, &b) >= 0);
	assert_int_equal(b.pack, INDEX_NO_PACK);
	assert_int_equal(index_add_pack(ix, (const uint8_t[32]){ 1 }, &pa), 1);
	assert_int_equal(index_add_pack(ix, (const uint8_t[32]){ 2 }, &pb), 1);
	assert_int_equal(index_add_pack(ix, (const uint8_t[32]){ 3 }, &pc), 1);
	for (uint32_t i = 0; i < 900; i++) {
		struct pack_entry e = entry(i, i * 10);
		uint32_t pack = i < 300 || i >= 600 ? pa : pb;

		assert_int_equal(index_set_location(ix, pack, &e), 1);
	}
	{
		struct pack_entry e = entry(5000, 0); /* not inserted */

		assert_int_equal(index_set_location(ix, pc, &e), 0);
	}
	index_pack_counts(ix, 0, count);
	assert_int_equal(count[pa], 600);
	assert_int_equal(count[pb], 300);
	assert_int_equal(count[pc], 0);
	index_pack_counts(ix, 1, count);
	assert_int_equal(count[pb], 300);
	assert_int_equal(index_encode(ix, NULL, &data, &len), 0);
	assert_int_equal(len, 8 + 2 * 36 + 900 * PACK_ENTRY_LEN);
	assert_int_equal(index_decode(back, data, len), 0);
	free(data);
	assert_int_equal(back->n, 900);
	for (uint32_t i = 0; i < 1000; i++) {
		fake_id(i, id);
		if (i >= 900) {
			assert_int_equal(index_lookup(back, id, NULL), -1);
			continue;
		}
		assert_true(index_lookup(back, id, &b) >= 0);
		assert_int_equal(b.offset, i * 10);
		assert_int_equal(back->packs[b.pack][0], i < 300 || i >= 600 ? 1 : 2);
	}
	/* only pack 2's */
	assert_int_equal(index_encode(ix, keep, &data, &len), 0);
	assert_int_equal(len, 8 + 36 + 300 * PACK_ENTRY_LEN);
	free(data);
	index_free(ix);
	index_free(back);
}

/* Millions of blobs: the table's own accounting, in bytes a blob (the
 * 48-byte entries before were 48 and more). */
static void test_index_bytes_per_blob(void **state)
{
	const uint32_t n = 1000000;
	struct index *ix = index_new();
	uint8_t id[32];

	(void)state;
	for (uint32_t i = 0; i < n; i++) {
		fake_id(i, id);
		assert_int_equal(index_insert(ix, id, BLOB_DATA), 1);
	}
	assert_int_equal(ix->n, n);
	assert_true(ix->nsorted > n / 2);
	for (size_t i = 1; i < ix->nsorted; i++)
		assert_true(memcmp(ix->ids[i - 1], ix->ids[i], INDEX_ID_LEN) < 0);
	print_message("index: %.2f bytes a blob at %u blobs\n",
		      (double)index_mem_bytes(ix) / n, n);
	assert_true(index_mem_bytes(ix) >= (size_t)n * 30);
	assert_true(index_mem_bytes(ix) <= (size_t)n * 32);
	fake_id(n / 2, id);
	assert_true(index_lookup(ix, id, NULL) >= 0);
	index_free(ix);
}

/* IDs that are not uniform (all in one bucket, the bits the search
 * starts from all zero, as a crafted index file could have them): still
 * all found, by the binary search. */
static void test_index_skewed_ids(void **state)
{
	const uint32_t n = 200000;
	struct index *ix = index_new();
	struct index_blob b;
	uint8_t id[32] = { 0 };

	(void)state;
	for (uint32_t i = 0; i < n; i++) {
		struct pack_entry e = { .type = BLOB_DATA, .offset = i, .length = 100 };

		memset(e.id, 0, 32);
		e.id[12] = (uint8_t)(i >> 16);
		e.id[13] = (uint8_t)(i >> 8);
		e.id[14] = (uint8_t)i;
		e.id[15] = 1;
		assert_int_equal(index_add(ix, 0, &e), 1);
	}
	assert_true(ix->nsorted > 0);
	for (uint32_t i = 0; i < n; i++) {
		id[12] = (uint8_t)(i >> 16);
		id[13] = (uint8_t)(i >> 8);
		id[14] = (uint8_t)i;
		id[15] = 1;
		assert_true(index_lookup(ix, id, &b) >= 0);
		assert_int_equal(b.offset, i);
		id[15] = 2;
		assert_int_equal(index_lookup(ix, id, NULL), -1);
	}
	index_free(ix);
}

/* Fields a 14-byte location cannot hold are damage, not truncated. */
static void test_index_field_bounds(void **state)
{
	struct index *ix = index_new();
	struct pack_entry e = entry(1, 0);
	uint8_t plain[8 + 36 + PACK_ENTRY_LEN] = { 1, 0, 0, 0, 1 };
	uint8_t *p = plain + 8 + 36;

	(void)state;
	e.offset = 1u << 30;
	assert_int_equal(index_add(ix, 0, &e), -BCDR_ERR_CORRUPT);
	e = entry(1, 0);
	e.length = 1u << 30;
	assert_int_equal(index_add(ix, 0, &e), -BCDR_ERR_CORRUPT);
	e = entry(1, 0);
	assert_int_equal(index_add(ix, INDEX_NO_PACK, &e), -BCDR_ERR_CORRUPT);
	assert_int_equal(ix->n, 0);
	/* an index file's entry at 1 GiB */
	p[0] = BLOB_DATA;
	plain[8 + 32] = 1;
	p[33 + 3] = 0x40; /* offset 1 << 30 */
	p[37] = 100;      /* length */
	assert_int_equal(index_decode(ix, plain, sizeof(plain)), -BCDR_ERR_CORRUPT);
	p[33 + 3] = 0x3f;
	assert_int_equal(index_decode(ix, plain, sizeof(plain)), 0);
	assert_int_equal(ix->n, 1);
	index_free(ix);
}

/* Two IDs that share their first 16 bytes are one entry (the first's),
 * and the second read through it fails: the blob is opened under the whole
 * ID asked for, so one blob's bytes never stand for the other's. */
static void test_index_prefix_collision(void **state)
{
	char dir[] = "/tmp/bcdr-index-XXXXXX", path[64];
	struct repo *repo;
	struct pack_writer w = {};
	uint8_t data[1000], x[32], y[32], pack_id[32], *buf = NULL, *scratch = NULL;
	size_t cap = 0, scap = 0;
	struct index_blob b;
	ZSTD_DCtx *d = ZSTD_createDCtx();
	uint32_t pos;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/repo", dir);
	assert_int_equal(repo_init(path, "pw", &repo), 0);
	if (!repo->index)
		repo->index = index_new();
	memset(data, 'x', sizeof(data));
	assert_int_equal(crypto_blob_id(repo->crypto, data, sizeof(data), x), 0);
	memcpy(y, x, 32);
	y[31] ^= 1; /* the same first 16 bytes, another ID */
	assert_int_equal(index_insert(repo->index, x, BLOB_DATA), 1);
	assert_int_equal(index_insert(repo->index, y, BLOB_DATA), 0);
	assert_int_equal(repo->index->n, 1);
	assert_int_equal(pack_writer_init(&w, 3), 0);
	assert_int_equal(pack_writer_add(&w, repo->crypto, BLOB_DATA, x, data, sizeof(data)), 0);
	assert_int_equal(repo_save_pack(repo, repo->crypto, &w, pack_id), 0);
	assert_int_equal(index_add_pack(repo->index, pack_id, &pos), 1);
	assert_int_equal(index_set_location(repo->index, pos, &w.entries[0]), 1);
	assert_int_equal(index_lookup(repo->index, y, &b), index_lookup(repo->index, x, NULL));
	assert_int_equal(b.offset, w.entries[0].offset);
	assert_int_equal(repo_read_blob(repo, repo->crypto, d, BLOB_DATA, x, &buf, &cap, &scratch,
					&scap), (int)sizeof(data));
	assert_memory_equal(buf, data, sizeof(data));
	assert_true(repo_read_blob(repo, repo->crypto, d, BLOB_DATA, y, &buf, &cap, &scratch,
				   &scap) < 0);
	/* the index file holds x whole, not the 16 bytes */
	{
		uint8_t *plain;
		size_t len;

		assert_int_equal(index_encode(repo->index, NULL, &plain, &len), 0);
		assert_int_equal(len, 8 + 36 + PACK_ENTRY_LEN);
		assert_memory_equal(plain + 8 + 36 + 1, x, 32);
		free(plain);
	}
	free(buf);
	free(scratch);
	pack_writer_release(&w);
	ZSTD_freeDCtx(d);
	repo_free(repo);
	assert_int_equal(fs_rm_rf(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_roundtrip),
		cmocka_unit_test(test_index_many),
		cmocka_unit_test(test_index_journal_tmpdir_fallback),
		cmocka_unit_test(test_index_set_location),
		cmocka_unit_test(test_index_bytes_per_blob),
		cmocka_unit_test(test_index_skewed_ids),
		cmocka_unit_test(test_index_field_bounds),
		cmocka_unit_test(test_index_prefix_collision),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
