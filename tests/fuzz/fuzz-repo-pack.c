/* Pack headers and stored objects against arbitrary bytes. The input is
 * used three ways: as a whole pack (the trailer and sealed header as
 * found), as the plaintext of a pack header sealed with a fixed key (so the
 * entry checks run), and as a stored repository object. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "repo/pack.h"
#include "repo/repo.h"

static struct crypto_ctx *ctx;

static void blobs(const uint8_t *pack, size_t len, const struct pack_entry *e, size_t n)
{
	static uint8_t scratch[1 << 16], out[1 << 16];
	ZSTD_DCtx *d = ZSTD_createDCtx();

	for (size_t i = 0; d && i < n && i < 16; i++)
		if ((uint64_t)e[i].offset + e[i].length <= len && e[i].length <= sizeof(scratch))
			blob_open(ctx, e[i].type, e[i].id, pack + e[i].offset, e[i].length, scratch, out,
				  sizeof(out), d, true);
	ZSTD_freeDCtx(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pack_entry *e = NULL;
	size_t n, need, sealed, total;
	uint8_t *pack, *plain = NULL;
	size_t plain_len;

	if (!ctx) {
		struct master_key k;

		memset(&k, 0x5a, sizeof(k));
		if (crypto_ctx_new(&k, &ctx) < 0)
			return 0;
	}
	if (pack_read_header(ctx, data, size, size, &e, &n, &need) >= 0) {
		blobs(data, size, e, n);
		free(e);
	}
	/* A pack of 4 KiB of blob area whose header plaintext is the input. */
	sealed = size + CRYPTO_OVERHEAD;
	total = 4096 + sealed + PACK_TRAILER_LEN;
	pack = calloc(1, total);
	if (!pack)
		return 0;
	if (crypto_seal(ctx, PACK_MAGIC, 8, data, size, pack + 4096) >= 0) {
		pack[4096 + sealed] = (uint8_t)sealed;
		pack[4096 + sealed + 1] = (uint8_t)(sealed >> 8);
		pack[4096 + sealed + 2] = (uint8_t)(sealed >> 16);
		pack[4096 + sealed + 3] = (uint8_t)(sealed >> 24);
		memcpy(pack + 4096 + sealed + 4, PACK_MAGIC, 8);
		if (pack_read_header(ctx, pack, total, total, &e, &n, &need) >= 0) {
			blobs(pack, total, e, n);
			free(e);
		}
	}
	free(pack);
	if (repo_open_object(ctx, OBJ_INDEX, data, size, 1 << 20, &plain, &plain_len) >= 0)
		free(plain);
	return 0;
}
