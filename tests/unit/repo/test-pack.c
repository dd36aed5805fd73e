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
		cmocka_unit_test(test_blob_open_bounds_stored_length),
		cmocka_unit_test(test_sha256_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
