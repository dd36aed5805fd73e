#include "repo/index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

struct index *index_new(void)
{
	return calloc(1, sizeof(struct index));
}

void index_free(struct index *ix)
{
	if (!ix)
		return;
	free(ix->blobs);
	free(ix->slots);
	free(ix->packs);
	free(ix);
}

/* IDs are keyed hashes: their first bytes are already uniform. */
static size_t slot_of(const uint8_t id[32], size_t nslots)
{
	uint64_t h;

	memcpy(&h, id, sizeof(h));
	return (size_t)(h & (nslots - 1));
}

struct index_blob *index_find(const struct index *ix, const uint8_t id[32])
{
	size_t s;

	if (!ix->nslots)
		return NULL;
	for (s = slot_of(id, ix->nslots);; s = (s + 1) & (ix->nslots - 1)) {
		uint32_t v = ix->slots[s];

		if (!v)
			return NULL;
		if (memcmp(ix->blobs[v - 1].id, id, 32) == 0)
			return &ix->blobs[v - 1];
	}
}

static int rehash(struct index *ix, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < ix->n; i++) {
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

int index_insert(struct index *ix, const struct index_blob *b)
{
	size_t s;
	int r;

	if (index_find(ix, b->id))
		return 0;
	if (ix->n >= UINT32_MAX - 1)
		return -BCDR_ERR_TOO_BIG;
	if (ix->n == ix->cap) {
		size_t ncap = ix->cap ? ix->cap * 2 : 1024;
		struct index_blob *nb = realloc(ix->blobs, ncap * sizeof(*nb));

		if (!nb)
			return -ENOMEM;
		ix->blobs = nb;
		ix->cap = ncap;
	}
	if ((ix->n + 1) * 2 > ix->nslots) {
		r = rehash(ix, ix->nslots ? ix->nslots * 2 : 2048);
		if (r < 0)
			return r;
	}
	ix->blobs[ix->n] = *b;
	for (s = slot_of(b->id, ix->nslots); ix->slots[s]; s = (s + 1) & (ix->nslots - 1))
		;
	ix->slots[s] = (uint32_t)(++ix->n);
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
				.type = e[0],
				.offset = get32(e + 33),
				.length = get32(e + 37),
				.raw_length = get32(e + 41),
			};

			memcpy(b.id, e + 1, 32);
			if (b.type > BLOB_TREE || b.length < CRYPTO_OVERHEAD + 1 ||
			    b.raw_length > BLOB_MAX_RAW || b.length > PACK_MAX_SIZE)
				return -BCDR_ERR_CORRUPT;
			r = index_insert(ix, &b);
			if (r < 0)
				return r;
		}
	}
	return off == len ? 0 : -BCDR_ERR_CORRUPT;
}
