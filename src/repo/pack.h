/* Pack files: many encrypted blobs and, at the end, their encrypted list.
 *
 *   blob*  header-sealed  u32le(len of header-sealed)  "BCDRPACK"
 *
 * A blob is nonce | AES-256-GCM(u8 compression, data) | tag with the blob's
 * ID and type as associated data, so a blob cannot be swapped for another.
 * A pack is named by the SHA-256 of its bytes; it is written once, whole. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/crypto.h"

enum blob_type { BLOB_DATA = 0, BLOB_TREE = 1 };

#define PACK_MAGIC "BCDRPACK"
#define PACK_TRAILER_LEN (4 + 8)
#define PACK_ENTRY_LEN (1 + 32 + 4 + 4 + 4)
#define PACK_MAX_BLOBS 1000000u
#define PACK_MAX_SIZE (1u << 30)
/* A stored blob holds one chunk (<= CHUNK_MAX) plus compression slack. */
#define BLOB_MAX_RAW (16u << 20)
/* The most stored bytes a blob may have: its plaintext, the compression
 * byte and slack, nonce and tag. Every reader of an index or pack entry
 * holds a length to this before it allocates or decrypts (blob_open()
 * refuses more), so a crafted entry is damage, never a larger read. */
#define BLOB_MAX_STORED (BLOB_MAX_RAW + 64 + CRYPTO_OVERHEAD)

struct pack_entry {
	uint8_t type;
	uint8_t id[32];
	uint32_t offset, length; /* stored bytes in the pack */
	uint32_t raw_length;     /* plaintext bytes */
};

/* A pack's bytes start on a page (and keep doing so as they grow): a local
 * repository writes them with O_DIRECT, no copy into the page cache. */
#define PACK_DATA_ALIGN 4096u

struct pack_writer {
	uint8_t *data; /* PACK_DATA_ALIGN-aligned (mmap()ed) */
	size_t len, cap;
	struct pack_entry *entries;
	size_t n, cap_entries;
	uint8_t *scratch; /* compression output */
	size_t scratch_cap;
	void *zctx;       /* ZSTD_CCtx */
	int level;
};

int pack_writer_init(struct pack_writer *w, int level);
void pack_writer_release(struct pack_writer *w);
/* Compresses (when it helps), seals and appends one blob. */
int pack_writer_add(struct pack_writer *w, struct crypto_ctx *c, enum blob_type type,
		    const uint8_t id[32], const void *data, size_t len);
/* Seals the header, appends the trailer and names the pack by its hash.
 * The bytes stay in w->data (len w->len) until pack_writer_reset(). */
int pack_writer_finish(struct pack_writer *w, struct crypto_ctx *c, uint8_t ret_id[32]);
void pack_writer_reset(struct pack_writer *w);

/* Reads the entry list from a whole pack, or from its tail: tail is the
 * last tail_len bytes of a pack of pack_size bytes. Checks every entry lies
 * within the blob area. On success *ret is a heap array (free() it). When
 * the tail is too short, -EAGAIN and *ret_need says how many bytes. */
int pack_read_header(struct crypto_ctx *c, const uint8_t *tail, size_t tail_len,
		     uint64_t pack_size, struct pack_entry **ret, size_t *ret_n, size_t *ret_need);

/* Opens one stored blob into out (capacity out_cap): checks the tag,
 * decompresses, checks the length and, when id is given, recomputes it.
 * Returns the plaintext length. scratch must hold stored_len bytes; a
 * stored_len over BLOB_MAX_STORED is -BCDR_ERR_CORRUPT. */
int blob_open(struct crypto_ctx *c, enum blob_type type, const uint8_t id[32],
	      const uint8_t *stored, size_t stored_len, uint8_t *scratch, uint8_t *out,
	      size_t out_cap, void *dctx, bool verify_id);
