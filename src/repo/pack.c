#include "repo/pack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <zstd.h>

#include "lib/err.h"
#include "lib/le.h"

int pack_writer_init(struct pack_writer *w, int level)
{
	memset(w, 0, sizeof(*w));
	w->level = level;
	w->zctx = ZSTD_createCCtx();
	return w->zctx ? 0 : -ENOMEM;
}

void pack_writer_release(struct pack_writer *w)
{
	if (w->data)
		munmap(w->data, w->cap);
	free(w->entries);
	free(w->scratch);
	ZSTD_freeCCtx(w->zctx);
	memset(w, 0, sizeof(*w));
}

void pack_writer_reset(struct pack_writer *w)
{
	w->len = 0;
	w->n = 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 16;
	void *np;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	np = realloc(*p, ncap * elem);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

/* grow() for the pack's bytes: their own mapping, page-aligned, grown by
 * mremap (no copy), as glibc's realloc grows a big block. An aligned
 * malloc and free instead raised glibc's mmap threshold, and other big
 * buffers then stayed in the heap (20 MiB more RSS). */
static int grow_data(struct pack_writer *w, size_t need)
{
	size_t ncap = w->cap ? w->cap : 64u << 10;
	void *np;

	if (need <= w->cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	np = w->data ? mremap(w->data, w->cap, ncap, MREMAP_MAYMOVE) :
		       mmap(NULL, ncap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (np == MAP_FAILED)
		return -ENOMEM;
	w->data = np;
	w->cap = ncap;
	return 0;
}

static void blob_aad(uint8_t aad[33], enum blob_type type, const uint8_t id[32])
{
	aad[0] = (uint8_t)type;
	memcpy(aad + 1, id, 32);
}

int pack_writer_add(struct pack_writer *w, struct crypto_ctx *c, enum blob_type type,
		    const uint8_t id[32], const void *data, size_t len)
{
	size_t bound = ZSTD_compressBound(len) + 1, plain_len;
	const uint8_t *plain;
	uint8_t aad[33];
	int r;

	if (len > BLOB_MAX_RAW)
		return -BCDR_ERR_TOO_BIG;
	if ((r = grow((void **)&w->scratch, &w->scratch_cap, bound, 1)) < 0)
		return r;
	/* Plaintext: one byte saying how the rest is stored, then the data. */
	plain = w->scratch;
	w->scratch[0] = 0;
	plain_len = len + 1;
	if (w->level > -100 && len >= 64) {
		size_t z = ZSTD_compressCCtx(w->zctx, w->scratch + 1, bound - 1, data, len, w->level);

		if (!ZSTD_isError(z) && z + 16 < len) {
			w->scratch[0] = 1;
			plain_len = z + 1;
		}
	}
	if (w->scratch[0] == 0)
		memcpy(w->scratch + 1, data, len);
	if ((r = grow_data(w, w->len + plain_len + CRYPTO_OVERHEAD)) < 0)
		return r;
	if ((r = grow((void **)&w->entries, &w->cap_entries, w->n + 1, sizeof(*w->entries))) < 0)
		return r;
	blob_aad(aad, type, id);
	r = crypto_seal(c, aad, sizeof(aad), plain, plain_len, w->data + w->len);
	if (r < 0)
		return r;
	w->entries[w->n] = (struct pack_entry){
		.type = (uint8_t)type,
		.offset = (uint32_t)w->len,
		.length = (uint32_t)(plain_len + CRYPTO_OVERHEAD),
		.raw_length = (uint32_t)len,
	};
	memcpy(w->entries[w->n].id, id, 32);
	w->n++;
	w->len += plain_len + CRYPTO_OVERHEAD;
	return 0;
}

int pack_writer_finish(struct pack_writer *w, struct crypto_ctx *c, uint8_t ret_id[32])
{
	size_t hlen = 8 + w->n * PACK_ENTRY_LEN, sealed = hlen + CRYPTO_OVERHEAD;
	uint8_t *h;
	int r;

	if ((r = grow_data(w, w->len + sealed + PACK_TRAILER_LEN)) < 0)
		return r;
	h = malloc(hlen);
	if (!h)
		return -ENOMEM;
	le32_put(h, 1);
	le32_put(h + 4, (uint32_t)w->n);
	for (size_t i = 0; i < w->n; i++) {
		uint8_t *e = h + 8 + i * PACK_ENTRY_LEN;

		e[0] = w->entries[i].type;
		memcpy(e + 1, w->entries[i].id, 32);
		le32_put(e + 33, w->entries[i].offset);
		le32_put(e + 37, w->entries[i].length);
		le32_put(e + 41, w->entries[i].raw_length);
	}
	r = crypto_seal(c, PACK_MAGIC, 8, h, hlen, w->data + w->len);
	free(h);
	if (r < 0)
		return r;
	w->len += sealed;
	le32_put(w->data + w->len, (uint32_t)sealed);
	memcpy(w->data + w->len + 4, PACK_MAGIC, 8);
	w->len += PACK_TRAILER_LEN;
	return crypto_sha256(c, w->data, w->len, ret_id);
}

int pack_read_header(struct crypto_ctx *c, const uint8_t *tail, size_t tail_len,
		     uint64_t pack_size, struct pack_entry **ret, size_t *ret_n, size_t *ret_need)
{
	uint32_t sealed, version, n;
	uint64_t blob_area;
	struct pack_entry *entries;
	uint8_t *h;
	int r;

	if (tail_len < PACK_TRAILER_LEN || pack_size < tail_len || pack_size > PACK_MAX_SIZE)
		return -BCDR_ERR_CORRUPT;
	if (memcmp(tail + tail_len - 8, PACK_MAGIC, 8) != 0)
		return -BCDR_ERR_CORRUPT;
	sealed = le32_get(tail + tail_len - PACK_TRAILER_LEN);
	if (sealed < CRYPTO_OVERHEAD + 8 || sealed > pack_size - PACK_TRAILER_LEN)
		return -BCDR_ERR_CORRUPT;
	if ((uint64_t)sealed + PACK_TRAILER_LEN > tail_len) {
		if (ret_need)
			*ret_need = sealed + PACK_TRAILER_LEN;
		return -EAGAIN;
	}
	h = malloc(sealed - CRYPTO_OVERHEAD);
	if (!h)
		return -ENOMEM;
	r = crypto_open(c, PACK_MAGIC, 8, tail + tail_len - PACK_TRAILER_LEN - sealed, sealed, h);
	if (r < 0) {
		free(h);
		return r;
	}
	version = le32_get(h);
	n = le32_get(h + 4);
	if (version != 1 || n > PACK_MAX_BLOBS ||
	    (uint64_t)n * PACK_ENTRY_LEN + 8 != sealed - CRYPTO_OVERHEAD) {
		free(h);
		return version > 1 ? -BCDR_ERR_VERSION : -BCDR_ERR_CORRUPT;
	}
	blob_area = pack_size - PACK_TRAILER_LEN - sealed;
	entries = calloc(n ? n : 1, sizeof(*entries));
	if (!entries) {
		free(h);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = h + 8 + (size_t)i * PACK_ENTRY_LEN;
		struct pack_entry *pe = &entries[i];

		pe->type = e[0];
		memcpy(pe->id, e + 1, 32);
		pe->offset = le32_get(e + 33);
		pe->length = le32_get(e + 37);
		pe->raw_length = le32_get(e + 41);
		if (pe->type > BLOB_TREE || pe->length < CRYPTO_OVERHEAD + 1 ||
		    (uint64_t)pe->offset + pe->length > blob_area || pe->raw_length > BLOB_MAX_RAW) {
			free(h);
			free(entries);
			return -BCDR_ERR_CORRUPT;
		}
	}
	free(h);
	*ret = entries;
	*ret_n = n;
	return 0;
}

int blob_open(struct crypto_ctx *c, enum blob_type type, const uint8_t id[32],
	      const uint8_t *stored, size_t stored_len, uint8_t *scratch, uint8_t *out,
	      size_t out_cap, void *dctx, bool verify_id)
{
	uint8_t aad[33], check[32];
	size_t plain_len, n;
	int r;

	if (stored_len < CRYPTO_OVERHEAD + 1 || stored_len > BLOB_MAX_STORED)
		return -BCDR_ERR_CORRUPT;
	blob_aad(aad, type, id);
	r = crypto_open(c, aad, sizeof(aad), stored, stored_len, scratch);
	if (r < 0)
		return r;
	plain_len = stored_len - CRYPTO_OVERHEAD - 1;
	if (scratch[0] == 0) {
		if (plain_len > out_cap)
			return -BCDR_ERR_CORRUPT;
		memcpy(out, scratch + 1, plain_len);
		n = plain_len;
	} else if (scratch[0] == 1) {
		n = ZSTD_decompressDCtx(dctx, out, out_cap, scratch + 1, plain_len);
		if (ZSTD_isError(n))
			return -BCDR_ERR_CORRUPT;
	} else {
		return -BCDR_ERR_CORRUPT;
	}
	if (verify_id) {
		r = crypto_blob_id(c, out, n, check);
		if (r < 0)
			return r;
		if (memcmp(check, id, 32) != 0)
			return -BCDR_ERR_CORRUPT;
	}
	return (int)n;
}
