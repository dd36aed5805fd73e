#include "repo/index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lib/err.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

_Static_assert(sizeof(struct index_blob) == 48, "index entries are 48 bytes");

struct index *index_new(void)
{
	return calloc(1, sizeof(struct index));
}

/* The entries live in their own mapping, grown with mremap(): no copy
 * and no second array while growing, and no heap fragments left behind. */
static size_t map_bytes(size_t cap)
{
	return cap * sizeof(struct index_blob);
}

void index_release(struct index *ix)
{
	if (ix->blobs)
		munmap(ix->blobs, map_bytes(ix->cap));
	free(ix->dir);
	free(ix->slots);
	free(ix->packs);
	memset(ix, 0, sizeof(*ix));
}

void index_free(struct index *ix)
{
	if (!ix)
		return;
	index_release(ix);
	free(ix);
}

/* IDs are keyed hashes: their first bytes are already uniform. */
static size_t slot_of(const uint8_t id[32], size_t nslots)
{
	uint64_t h;

	memcpy(&h, id + 8, sizeof(h));
	return (size_t)(h & (nslots - 1));
}

static unsigned bucket_of(const uint8_t id[32])
{
	return (unsigned)id[0] << 8 | id[1];
}

static struct index_blob *find_sorted(const struct index *ix, const uint8_t id[32])
{
	size_t lo, hi;

	if (!ix->nsorted)
		return NULL;
	lo = ix->dir[bucket_of(id)];
	hi = ix->dir[bucket_of(id) + 1];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(ix->blobs[mid].id, id, 32);

		if (c == 0)
			return &ix->blobs[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

struct index_blob *index_find(const struct index *ix, const uint8_t id[32])
{
	struct index_blob *b = find_sorted(ix, id);
	size_t s;

	if (b || !ix->nslots)
		return b;
	for (s = slot_of(id, ix->nslots);; s = (s + 1) & (ix->nslots - 1)) {
		uint32_t v = ix->slots[s];

		if (!v)
			return NULL;
		if (memcmp(ix->blobs[v - 1].id, id, 32) == 0)
			return &ix->blobs[v - 1];
	}
}

/* The tail's hash table again, for nslots slots. */
static int rehash(struct index *ix, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = ix->nsorted; i < ix->n; i++) {
		size_t s = slot_of(ix->blobs[i].id, nslots);

		while (slots[s])
			s = (s + 1) & (nslots - 1);
		slots[s] = (uint32_t)(i + 1);
	}
	free(ix->slots);
	ix->slots = slots;
	ix->nslots = nslots;
	return 0;
}

static int cmp_blob(const void *x, const void *y)
{
	return memcmp(((const struct index_blob *)x)->id, ((const struct index_blob *)y)->id, 32);
}

/* Merges the tail into the sorted part: the tail sorted, then both merged
 * from the end with a copy of the tail (the only extra memory). */
static int seal(struct index *ix)
{
	size_t nt = ix->n - ix->nsorted, i = ix->nsorted, j = nt, k = ix->n;
	struct index_blob *tail;

	if (!ix->dir && !(ix->dir = calloc(65537, sizeof(*ix->dir))))
		return -ENOMEM;
	qsort(ix->blobs + ix->nsorted, nt, sizeof(*ix->blobs), cmp_blob);
	if (ix->nsorted) {
		if (!(tail = malloc(nt * sizeof(*tail))))
			return -ENOMEM;
		memcpy(tail, ix->blobs + ix->nsorted, nt * sizeof(*tail));
		while (j > 0) {
			if (i > 0 && memcmp(ix->blobs[i - 1].id, tail[j - 1].id, 32) > 0)
				ix->blobs[--k] = ix->blobs[--i];
			else
				ix->blobs[--k] = tail[--j];
		}
		free(tail);
	}
	ix->nsorted = ix->n;
	for (size_t b = 0, at = 0; b <= 65536; b++) {
		while (at < ix->n && bucket_of(ix->blobs[at].id) < b)
			at++;
		ix->dir[b] = (uint32_t)at;
	}
	free(ix->slots);
	ix->slots = NULL;
	ix->nslots = 0;
	return 0;
}

int index_insert(struct index *ix, const struct index_blob *b)
{
	size_t s, nt;
	int r;

	if (index_find(ix, b->id))
		return 0;
	if (ix->n >= UINT32_MAX - 1)
		return -BCDR_ERR_TOO_BIG;
	if (ix->n == ix->cap) {
		size_t ncap = ix->cap ? ix->cap * 2 : 4096; /* 4096 entries: 48 pages */
		void *nb = ix->blobs ? mremap(ix->blobs, map_bytes(ix->cap), map_bytes(ncap),
					      MREMAP_MAYMOVE)
				     : mmap(NULL, map_bytes(ncap), PROT_READ | PROT_WRITE,
					    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (nb == MAP_FAILED)
			return -ENOMEM;
		ix->blobs = nb;
		ix->cap = ncap;
	}
	nt = ix->n - ix->nsorted;
	if ((nt + 1) * 2 > ix->nslots) {
		r = rehash(ix, ix->nslots ? ix->nslots * 2 : 2048);
		if (r < 0)
			return r;
	}
	ix->blobs[ix->n] = *b;
	for (s = slot_of(b->id, ix->nslots); ix->slots[s]; s = (s + 1) & (ix->nslots - 1))
		;
	ix->slots[s] = (uint32_t)(++ix->n);
	/* A long tail: its table costs more than the entries; merge it. */
	if (nt + 1 >= 65536 && (nt + 1) * 8 >= ix->nsorted)
		return (r = seal(ix)) < 0 ? r : 1;
	return 1;
}

int index_add_pack(struct index *ix, const uint8_t id[32], uint32_t *ret_pos)
{
	/* Packs are few (tens of MiB each); a linear scan from the end finds
	 * the one just added, which is the usual case. */
	for (size_t i = ix->npacks; i-- > 0;)
		if (memcmp(ix->packs[i], id, 32) == 0) {
			*ret_pos = (uint32_t)i;
			return 0;
		}
	if (ix->npacks == INDEX_MAX_PACKS)
		return -BCDR_ERR_TOO_BIG;
	if (ix->npacks == ix->cap_packs) {
		size_t ncap = ix->cap_packs ? ix->cap_packs * 2 : 64;
		void *np = realloc(ix->packs, ncap * 32);

		if (!np)
			return -ENOMEM;
		ix->packs = np;
		ix->cap_packs = ncap;
	}
	memcpy(ix->packs[ix->npacks], id, 32);
	*ret_pos = (uint32_t)ix->npacks++;
	return 1;
}

int index_encode(const struct index *ix, const bool *keep_pack, uint8_t **ret, size_t *ret_len)
{
	size_t *count = calloc(ix->npacks + 1, sizeof(size_t)), npacks = 0, len = 8, *pos;
	uint8_t *out;

	if (!count)
		return -ENOMEM;
	for (size_t i = 0; i < ix->n; i++)
		if (ix->blobs[i].pack != INDEX_NO_PACK)
			count[ix->blobs[i].pack]++;
	for (size_t p = 0; p < ix->npacks; p++)
		if (count[p] && (!keep_pack || keep_pack[p])) {
			npacks++;
			len += 36 + count[p] * PACK_ENTRY_LEN;
		}
	pos = calloc(ix->npacks + 1, sizeof(size_t));
	out = malloc(len);
	if (!out || !pos) {
		free(count);
		free(pos);
		free(out);
		return -ENOMEM;
	}
	put32(out, 1);
	put32(out + 4, (uint32_t)npacks);
	len = 8;
	for (size_t p = 0; p < ix->npacks; p++)
		if (count[p] && (!keep_pack || keep_pack[p])) {
			memcpy(out + len, ix->packs[p], 32);
			put32(out + len + 32, (uint32_t)count[p]);
			pos[p] = len + 36;
			len += 36 + count[p] * PACK_ENTRY_LEN;
		}
	for (size_t i = 0; i < ix->n; i++) {
		const struct index_blob *b = &ix->blobs[i];
		uint8_t *e;

		if (b->pack == INDEX_NO_PACK || (keep_pack && !keep_pack[b->pack]))
			continue;
		e = out + pos[b->pack];
		pos[b->pack] += PACK_ENTRY_LEN;
		e[0] = b->type;
		memcpy(e + 1, b->id, 32);
		put32(e + 33, b->offset);
		put32(e + 37, b->length);
		put32(e + 41, b->raw_length);
	}
	free(count);
	free(pos);
	*ret = out;
	*ret_len = len;
	return 0;
}

int index_decode(struct index *ix, const uint8_t *data, size_t len)
{
	size_t off = 8;
	uint32_t npacks;
	int r;

	if (len < 8 || len > INDEX_MAX_PLAIN)
		return -BCDR_ERR_CORRUPT;
	if (get32(data) != 1)
		return get32(data) > 1 ? -BCDR_ERR_VERSION : -BCDR_ERR_CORRUPT;
	npacks = get32(data + 4);
	for (uint32_t p = 0; p < npacks; p++) {
		uint32_t nblobs, pos;

		if (len - off < 36)
			return -BCDR_ERR_CORRUPT;
		nblobs = get32(data + off + 32);
		if ((len - off - 36) / PACK_ENTRY_LEN < nblobs)
			return -BCDR_ERR_CORRUPT;
		r = index_add_pack(ix, data + off, &pos);
		if (r < 0)
			return r;
		off += 36;
		for (uint32_t i = 0; i < nblobs; i++, off += PACK_ENTRY_LEN) {
			const uint8_t *e = data + off;
			struct index_blob b = {
				.pack = pos,
				.type = e[0] & 1,
				.offset = get32(e + 33),
				.length = get32(e + 37),
				.raw_length = get32(e + 41),
			};

			memcpy(b.id, e + 1, 32);
			if (e[0] > BLOB_TREE || b.length < CRYPTO_OVERHEAD + 1 ||
			    b.raw_length > BLOB_MAX_RAW || b.length > PACK_MAX_SIZE)
				return -BCDR_ERR_CORRUPT;
			r = index_insert(ix, &b);
			if (r < 0)
				return r;
		}
	}
	return off == len ? 0 : -BCDR_ERR_CORRUPT;
}
