#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <sys/mman.h>

#include <zstd.h>

#include "lib/err.h"
#include "repo/crypto.h"
#include "repo/index.h"
#include "repo/pack.h"

static struct crypto_ctx *ctx(uint8_t fill)
{
	struct master_key k;
	struct crypto_ctx *c;

	memset(&k, fill, sizeof(k));
	assert_int_equal(crypto_ctx_new(&k, &c), 0);
	return c;
}

static void test_pack_roundtrip(void **state)
{
	struct crypto_ctx *c = ctx(7);
	struct pack_writer w;
	struct pack_entry *e;
	uint8_t ids[3][32], pack_id[32], scratch[70000], out[70000];
	const char *texts[3] = { "short", NULL, "third blob" };
	char big[60000];
	size_t n;
	ZSTD_DCtx *d = ZSTD_createDCtx();

	(void)state;
	memset(big, 'z', sizeof(big));
	texts[1] = big;
	assert_int_equal(pack_writer_init(&w, 3), 0);
	for (int i = 0; i < 3; i++) {
		size_t len = i == 1 ? sizeof(big) : strlen(texts[i]);

		assert_int_equal(crypto_blob_id(c, texts[i], len, ids[i]), 0);
		assert_int_equal(pack_writer_add(&w, c, i == 2 ? BLOB_TREE : BLOB_DATA, ids[i],
						 texts[i], len), 0);
	}
	assert_int_equal(pack_writer_finish(&w, c, pack_id), 0);
	/* The compressible blob was compressed. */
	assert_true(w.len < sizeof(big) / 10);
	assert_int_equal(pack_read_header(c, w.data, w.len, w.len, &e, &n, NULL), 0);
	assert_int_equal(n, 3);
	for (int i = 0; i < 3; i++) {
		int r = blob_open(c, e[i].type, e[i].id, w.data + e[i].offset, e[i].length, scratch,
				  out, sizeof(out), d, true);

		assert_int_equal(r, e[i].raw_length);
		assert_memory_equal(out, texts[i], (size_t)r);
	}
	/* A flipped byte in a blob fails its tag; as the wrong type too. */
	w.data[e[0].offset + 14] ^= 1;
	assert_int_equal(blob_open(c, BLOB_DATA, e[0].id, w.data + e[0].offset, e[0].length,
				   scratch, out, sizeof(out), d, true), -BCDR_ERR_CORRUPT);
	assert_int_equal(blob_open(c, BLOB_DATA, e[2].id, w.data + e[2].offset, e[2].length,
				   scratch, out, sizeof(out), d, true), -BCDR_ERR_CORRUPT);
	/* Another key cannot read the header. */
	{
		struct crypto_ctx *other = ctx(8);
		struct pack_entry *e2;
		size_t n2;

		assert_int_equal(pack_read_header(other, w.data, w.len, w.len, &e2, &n2, NULL),
				 -BCDR_ERR_CORRUPT);
		crypto_ctx_free(other);
	}
	free(e);
	pack_writer_release(&w);
	crypto_ctx_free(c);
	ZSTD_freeDCtx(d);
}

static void test_index_roundtrip(void **state)
{
	struct index *ix = index_new(), *back = index_new();
	uint8_t *data;
	size_t len;

	(void)state;
	for (uint32_t p = 0; p < 3; p++) {
		uint8_t pid[32] = { (uint8_t)p, 0xaa };
		uint32_t pos;

		assert_true(index_add_pack(ix, pid, &pos) >= 0);
		for (uint32_t i = 0; i < 5000; i++) {
			struct index_blob b = { .pack = pos, .offset = i * 100, .length = 90,
						.raw_length = 200 };

			memcpy(b.id, &i, 4);
			b.id[4] = (uint8_t)p;
			b.id[31] = 1;
			assert_int_equal(index_insert(ix, &b), 1);
			assert_int_equal(index_insert(ix, &b), 0);
		}
	}
	assert_int_equal(ix->n, 15000);
	assert_int_equal(index_encode(ix, NULL, &data, &len), 0);
	assert_int_equal(index_decode(back, data, len), 0);
	assert_int_equal(back->n, 15000);
	for (size_t i = 0; i < ix->n; i++) {
		struct index_blob *b = index_find(back, ix->blobs[i].id);

		assert_non_null(b);
		assert_int_equal(b->offset, ix->blobs[i].offset);
		assert_memory_equal(back->packs[b->pack], ix->packs[ix->blobs[i].pack], 32);
	}
	/* Truncated: an error, not a crash. */
	assert_int_equal(index_decode(back, data, len - 7), -BCDR_ERR_CORRUPT);
	free(data);
	index_free(ix);
	index_free(back);
}

/* A stored length over BLOB_MAX_STORED is damage before a byte is
 * decrypted: the scratch buffer ends at a guard page, so writing past it
 * would crash the test. */
static void test_blob_open_bounds_stored_length(void **state)
{
	struct crypto_ctx *c = ctx(9);
	long page = sysconf(_SC_PAGESIZE);
	size_t room = (BLOB_MAX_STORED + (size_t)page - 1) / (size_t)page * (size_t)page;
	size_t stored = room + 4u * (size_t)page;
	uint8_t *map = mmap(NULL, room + (size_t)page, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *in = calloc(1, stored);
	uint8_t *out = malloc(BLOB_MAX_RAW), id[32] = { 1 };

	(void)state;
	assert_true(map != MAP_FAILED);
	assert_non_null(in);
	assert_non_null(out);
	assert_int_equal(mprotect(map + room, (size_t)page, PROT_NONE), 0);
	assert_int_equal(blob_open(c, BLOB_DATA, id, in, stored, map, out, BLOB_MAX_RAW, NULL,
				   true), -BCDR_ERR_CORRUPT);
	munmap(map, room + (size_t)page);
	free(in);
	free(out);
	crypto_ctx_free(c);
}

static void fake_id(uint32_t i, uint8_t id[32])
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull + 1;

	for (int k = 0; k < 32; k++) {
		x ^= x >> 29;
		x *= 0xbf58476d1ce4e5b9ull;
		id[k] = (uint8_t)(x >> 56);
	}
}

/* Enough blobs for several merges of the tail into the sorted part: every
 * one is found with its own fields, a second insert keeps the first, and
 * an index file of them decodes to the same. */
static void test_index_many(void **state)
{
	const uint32_t n = 300000;
	struct index *ix = index_new(), *back = index_new();
	uint8_t *data;
	size_t len;
	uint32_t pos;

	(void)state;
	assert_int_equal(index_add_pack(ix, (const uint8_t[32]){ 7 }, &pos), 1);
	for (uint32_t i = 0; i < n; i++) {
		struct index_blob b = { .pack = pos,
					.type = i % 2,
					.offset = i,
					.length = 100,
					.raw_length = i % 1000 };

		fake_id(i, b.id);
		assert_int_equal(index_insert(ix, &b), 1);
		if (i % 7 == 0) {
			b.offset = 0xdead;
			assert_int_equal(index_insert(ix, &b), 0);
		}
	}
	assert_true(ix->nsorted > 0);
	assert_int_equal(ix->n, n);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t id[32];
		const struct index_blob *b;

		fake_id(i, id);
		b = index_find(ix, id);
		assert_non_null(b);
		assert_int_equal(b->offset, i);
		assert_int_equal(b->type, i % 2);
		assert_int_equal(b->raw_length, i % 1000);
	}
	{
		uint8_t id[32] = { 1, 2, 3 };

		assert_null(index_find(ix, id));
	}
	assert_int_equal(index_encode(ix, NULL, &data, &len), 0);
	assert_int_equal(index_decode(back, data, len), 0);
	assert_int_equal(back->n, n);
	for (uint32_t i = 0; i < n; i += 97) {
		uint8_t id[32];

		fake_id(i, id);
		assert_int_equal(index_find(back, id)->offset, i);
	}
	free(data);
	index_free(ix);
	index_free(back);
}

/* A pack's name from its bytes in pieces, as check streams it: the same
 * hash as in one call, and final() starts the next hash afresh. */
static void test_sha256_stream(void **state)
{
	struct crypto_ctx *c = ctx(3);
	struct crypto_sha256_stream *s;
	static uint8_t data[300000];
	uint8_t whole[32], pieces[32], empty[32], again[32];
	size_t at = 0, step = 1;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 131 + (i >> 9));
	assert_int_equal(crypto_sha256(c, data, sizeof(data), whole), 0);
	assert_int_equal(crypto_sha256_stream_new(&s), 0);
	while (at < sizeof(data)) {
		size_t n = step < sizeof(data) - at ? step : sizeof(data) - at;

		assert_int_equal(crypto_sha256_stream_update(s, data + at, n), 0);
		assert_int_equal(crypto_sha256_stream_update(s, data, 0), 0);
		at += n;
		step = step * 3 + 1;
	}
	assert_int_equal(crypto_sha256_stream_final(s, pieces), 0);
	assert_memory_equal(whole, pieces, 32);
	assert_int_equal(crypto_sha256_stream_final(s, again), 0);
	assert_int_equal(crypto_sha256(c, data, 0, empty), 0);
	assert_memory_equal(again, empty, 32);
	crypto_sha256_stream_free(s);
	crypto_sha256_stream_free(NULL);
	crypto_ctx_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack_roundtrip),
		cmocka_unit_test(test_index_roundtrip),
		cmocka_unit_test(test_blob_open_bounds_stored_length),
		cmocka_unit_test(test_index_many),
		cmocka_unit_test(test_sha256_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
