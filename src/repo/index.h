/* The index: where each blob lives (pack, offset, length). In memory two
 * arrays of fixed-size entries, no pointer: the ID's first 16 bytes, and
 * a 14-byte location (pack position, type, offset, lengths), 30 bytes a
 * blob. A part is sorted by ID, found by binary search within the bucket
 * of its first 16 bits, then a tail of recent inserts with a small hash
 * table, merged into the sorted part whenever it grows past an eighth of
 * it.
 *
 * 16 bytes stand for the ID: IDs are keyed PRF outputs (crypto_blob_id),
 * so two blobs share them by chance only (docs/backup.md, "The index at
 * millions of blobs"). Such a pair is one entry here, and every read of a
 * blob opens it under the whole ID (the AEAD's associated data, and the ID
 * recomputed), so a blob's bytes never stand for another's.
 *
 * The whole IDs this process adds (index_add(), index_set_location()) go
 * to a journal, entries as index files hold them, spilled to an unlinked
 * temporary file; index_encode() writes index files from it. On disk,
 * index files list packs and their blobs (the same entries as the packs'
 * own headers, so a lost index can be rebuilt from the packs).
 *
 * Index file plaintext: u32le version=1, u32le pack count, then per pack:
 * 32-byte pack ID, u32le blob count, blob entries (PACK_ENTRY_LEN bytes
 * each: u8 type, 32-byte ID, u32le offset, length, raw length). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "repo/pack.h"

#define INDEX_MAX_PLAIN (512u << 20)
#define INDEX_ID_LEN 16
#define INDEX_LOC_LEN 14
#define INDEX_NO_PACK 0xffffffu /* being written by this process */
#define INDEX_MAX_PACKS INDEX_NO_PACK

/* A copy of an entry (index_lookup(), index_get()). */
struct index_blob {
	uint8_t id[INDEX_ID_LEN]; /* the ID's first bytes */
	uint32_t pack;            /* position in index->packs, or INDEX_NO_PACK */
	uint32_t type;            /* enum blob_type */
	uint32_t offset, length, raw_length;
};

struct index_jblock; /* a run of one pack's entries in the journal */

struct index {
	uint8_t (*ids)[INDEX_ID_LEN];   /* [0, nsorted) by ID, then the tail */
	uint8_t (*locs)[INDEX_LOC_LEN]; /* the same order */
	size_t n, cap, nsorted;
	uint32_t *dir;   /* 65537 bucket starts in the sorted part, by ID's first 16 bits */
	uint32_t *slots; /* the tail's: open addressing, blob position + 1, 0 empty */
	size_t nslots;
	uint8_t (*packs)[32];
	size_t npacks, cap_packs;
	/* the journal: jbuf holds its bytes from jflushed on, jfd the rest */
	uint8_t *jbuf;
	size_t jlen;
	uint64_t jflushed;
	int jfd;
	struct index_jblock *jblocks;
	size_t njblocks, cap_jblocks;
};

struct index *index_new(void);
void index_free(struct index *ix);
/* Frees what an index embedded in another struct holds. */
void index_release(struct index *ix);

/* Position of the blob (copied to *ret when ret is given), or -1.
 * Positions stay valid until the next insert. */
ssize_t index_lookup(const struct index *ix, const uint8_t id[32], struct index_blob *ret);
/* Entry i (< ix->n) into *ret. */
void index_get(const struct index *ix, size_t i, struct index_blob *ret);
/* Position of pack id in ix->packs, adding it when new. */
int index_add_pack(struct index *ix, const uint8_t id[32], uint32_t *ret_pos);
/* Inserts a blob not in a pack yet (INDEX_NO_PACK) unless its ID is
 * present (then returns 0 and keeps the present one); 1 when inserted. */
int index_insert(struct index *ix, const uint8_t id[32], enum blob_type type);
/* Inserts e, in pack pos, as index_insert() does, and journals it; fields
 * that cannot be a blob's are -BCDR_ERR_CORRUPT. */
int index_add(struct index *ix, uint32_t pack, const struct pack_entry *e);
/* Points the present blob e->id at e in pack pos, and journals it: 1, or
 * 0 when the ID is not in the index. */
int index_set_location(struct index *ix, uint32_t pack, const struct pack_entry *e);
/* count[p] = the journaled blobs of pack p, for p in [first_pack, npacks). */
void index_pack_counts(const struct index *ix, size_t first_pack, size_t *count);
/* Bytes the index holds in memory (entries written, tables, pack IDs,
 * journal buffer). */
size_t index_mem_bytes(const struct index *ix);

/* Serialises the journaled blobs of the packs marked in keep (NULL: all)
 * into one index file's plaintext. Heap buffer (free() it). Reads only:
 * several threads may encode at once. */
int index_encode(const struct index *ix, const bool *keep_pack, uint8_t **ret, size_t *ret_len);
/* Calls fn for every blob entry of an index file's plaintext, with its
 * pack's ID (a pointer into data, the same for all of one pack's blobs);
 * garbage gives -BCDR_ERR_CORRUPT after fn saw what came before it. A
 * negative return of fn ends the walk with it. */
int index_parse(const uint8_t *data, size_t len,
		int (*fn)(void *userdata, const uint8_t pack_id[32], const struct pack_entry *e),
		void *userdata);
/* Adds the packs and blobs of an index file's plaintext to ix (not
 * journaled: they are in a file already); garbage gives
 * -BCDR_ERR_CORRUPT, leaving what was added so far. */
int index_decode(struct index *ix, const uint8_t *data, size_t len);
