/* The index: where each blob lives (pack, offset, length). In memory an
 * array of fixed-size entries (48 bytes, no pointer): a part sorted by ID,
 * found by binary search within the bucket of its first 16 bits, and a
 * tail of recent inserts with a small hash table, merged into the sorted
 * part whenever it grows past an eighth of it. On disk, index files list packs and their
 * blobs (the same entries as the packs' own headers, so a lost index can be
 * rebuilt from the packs).
 *
 * Index file plaintext: u32le version=1, u32le pack count, then per pack:
 * 32-byte pack ID, u32le blob count, blob entries (PACK_ENTRY_LEN bytes
 * each: u8 type, 32-byte ID, u32le offset, length, raw length). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/pack.h"

#define INDEX_MAX_PLAIN (512u << 20)
#define INDEX_NO_PACK 0x7fffffffu /* being written by this process */
#define INDEX_MAX_PACKS INDEX_NO_PACK

struct index_blob {
	uint8_t id[32];
	uint32_t pack : 31; /* position in index->packs, or INDEX_NO_PACK */
	uint32_t type : 1;  /* enum blob_type */
	uint32_t offset, length, raw_length;
};

struct index {
	struct index_blob *blobs; /* [0, nsorted) by ID, then the tail */
	size_t n, cap, nsorted;
	uint32_t *dir;   /* 65537 bucket starts in the sorted part, by ID's first 16 bits */
	uint32_t *slots; /* the tail's: open addressing, blob position + 1, 0 empty */
	size_t nslots;
	uint8_t (*packs)[32];
	size_t npacks, cap_packs;
};

struct index *index_new(void);
void index_free(struct index *ix);
/* Frees what an index embedded in another struct holds. */
void index_release(struct index *ix);

/* The blob, or NULL. Pointers and positions stay valid until the next
 * insert. */
struct index_blob *index_find(const struct index *ix, const uint8_t id[32]);
/* Position of pack id in ix->packs, adding it when new. */
int index_add_pack(struct index *ix, const uint8_t id[32], uint32_t *ret_pos);
/* Inserts the blob unless its ID is present (then returns 0 and keeps the
 * present one); returns 1 when inserted. */
int index_insert(struct index *ix, const struct index_blob *b);

/* Serialises the packs in [first_pack, npacks) with their blobs, or only
 * the packs marked in keep (NULL: all). Heap buffer (free() it). */
int index_encode(const struct index *ix, const bool *keep_pack, uint8_t **ret, size_t *ret_len);
/* Adds the packs and blobs of an index file's plaintext to ix; garbage
 * gives -BCDR_ERR_CORRUPT, leaving what was added so far. */
int index_decode(struct index *ix, const uint8_t *data, size_t len);
