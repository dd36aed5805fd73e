#include "repo/index.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/fs.h"
#include "lib/le.h"

__extension__ typedef unsigned __int128 u128;

struct index_jblock {
	uint64_t off; /* in the journal */
	uint32_t pack, n;
};

/* An entry whole, as the merge sorts the tail. */
struct rec {
	uint8_t id[INDEX_ID_LEN];
	uint8_t loc[INDEX_LOC_LEN];
};

_Static_assert(sizeof(struct rec) == 30, "index entries are 30 bytes");

#define JBUF_CAP (256u << 10)
#define LOC_OFFSET_BITS 30 /* PACK_MAX_SIZE is 1 GiB */
#define LOC_LENGTH_BITS 30
#define LOC_RAW_BITS 25 /* BLOB_MAX_RAW is 16 MiB */

/* The location in 110 bits: pack 24, type 1, offset 30, length 30, raw
 * length 25; little-endian bytes, no alignment. */
static void loc_put(uint8_t l[INDEX_LOC_LEN], uint32_t pack, uint32_t type, uint32_t offset,
		    uint32_t length, uint32_t raw_length)
{
	u128 v = (u128)pack | (u128)type << 24 | (u128)offset << 25 | (u128)length << 55 |
		 (u128)raw_length << 85;
	uint64_t lo = htole64((uint64_t)v), hi = htole64((uint64_t)(v >> 64));

	memcpy(l, &lo, 8);
	memcpy(l + 8, &hi, INDEX_LOC_LEN - 8);
}

static void loc_get(const uint8_t l[INDEX_LOC_LEN], struct index_blob *b)
{
	uint64_t lo, hi = 0;
	u128 v;

	memcpy(&lo, l, 8);
	memcpy(&hi, l + 8, INDEX_LOC_LEN - 8);
	v = (u128)le64toh(hi) << 64 | le64toh(lo);
	b->pack = (uint32_t)v & INDEX_NO_PACK;
	b->type = (uint32_t)(v >> 24) & 1;
	b->offset = (uint32_t)(v >> 25) & ((1u << LOC_OFFSET_BITS) - 1);
	b->length = (uint32_t)(v >> 55) & ((1u << LOC_LENGTH_BITS) - 1);
	b->raw_length = (uint32_t)(v >> 85) & ((1u << LOC_RAW_BITS) - 1);
}

static bool entry_fits(uint32_t pack, const struct pack_entry *e)
{
	return pack < INDEX_NO_PACK && e->type <= BLOB_TREE && e->offset < (1u << LOC_OFFSET_BITS) &&
	       e->length < (1u << LOC_LENGTH_BITS) && e->raw_length < (1u << LOC_RAW_BITS);
}

struct index *index_new(void)
{
	return calloc(1, sizeof(struct index));
}

void index_release(struct index *ix)
{
	if (ix->ids)
		munmap(ix->ids, ix->cap * INDEX_ID_LEN);
	if (ix->locs)
		munmap(ix->locs, ix->cap * INDEX_LOC_LEN);
	free(ix->dir);
	free(ix->slots);
	free(ix->packs);
	free(ix->jbuf);
	free(ix->jblocks);
	if (ix->jfd > 0)
		close(ix->jfd - 1);
	memset(ix, 0, sizeof(*ix));
}

void index_free(struct index *ix)
{
	if (!ix)
		return;
	index_release(ix);
	free(ix);
}

size_t index_mem_bytes(const struct index *ix)
{
	return ix->n * sizeof(struct rec) + ix->nslots * sizeof(*ix->slots) +
	       (ix->dir ? 65537 * sizeof(*ix->dir) : 0) + ix->cap_packs * 32 +
	       (ix->jbuf ? JBUF_CAP : 0) + ix->cap_jblocks * sizeof(*ix->jblocks);
}

/* IDs are keyed hashes, uniform already; the multiply spreads IDs that
 * are not (a crafted index file) over the table all the same. */
static size_t slot_of(const uint8_t *id, size_t nslots)
{
	uint64_t h;

	memcpy(&h, id + 8, sizeof(h));
	h *= 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> (64 - __builtin_ctzll(nslots)));
}

static unsigned bucket_of(const uint8_t *id)
{
	return (unsigned)id[0] << 8 | id[1];
}

/* Within the bucket, IDs are uniform: the next 32 bits say about where
 * one is (a few entries off at most, on average), so the search starts
 * there and walks a few steps; IDs that are not uniform (an index file
 * made so) only get the binary search back. */
static ssize_t find_sorted(const struct index *ix, const uint8_t *id)
{
	size_t lo, hi, at;
	uint32_t u;
	int c;

	if (!ix->nsorted)
		return -1;
	lo = ix->dir[bucket_of(id)];
	hi = ix->dir[bucket_of(id) + 1];
	if (lo == hi)
		return -1;
	u = (uint32_t)id[2] << 24 | (uint32_t)id[3] << 16 | (uint32_t)id[4] << 8 | id[5];
	at = lo + (size_t)(((uint64_t)u * (hi - lo)) >> 32);
	for (int step = 0; step < 8 && lo < hi; step++) {
		c = memcmp(ix->ids[at], id, INDEX_ID_LEN);
		if (c == 0)
			return (ssize_t)at;
		if (c < 0)
			lo = at + 1;
		else
			hi = at;
		at = c < 0 ? at + 1 : at - 1;
		if (at < lo || at >= hi)
			break;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		c = memcmp(ix->ids[mid], id, INDEX_ID_LEN);
		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static ssize_t find(const struct index *ix, const uint8_t *id)
{
	ssize_t at = find_sorted(ix, id);

	if (at >= 0 || !ix->nslots)
		return at;
	for (size_t s = slot_of(id, ix->nslots);; s = (s + 1) & (ix->nslots - 1)) {
		uint32_t v = ix->slots[s];

		if (!v)
			return -1;
		if (memcmp(ix->ids[v - 1], id, INDEX_ID_LEN) == 0)
			return (ssize_t)v - 1;
	}
}

void index_get(const struct index *ix, size_t i, struct index_blob *ret)
{
	memcpy(ret->id, ix->ids[i], INDEX_ID_LEN);
	loc_get(ix->locs[i], ret);
}

ssize_t index_lookup(const struct index *ix, const uint8_t id[32], struct index_blob *ret)
{
	ssize_t at = find(ix, id);

	if (at >= 0 && ret)
		index_get(ix, (size_t)at, ret);
	return at;
}

/* The tail's hash table again, for nslots slots. */
static int rehash(struct index *ix, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = ix->nsorted; i < ix->n; i++) {
		size_t s = slot_of(ix->ids[i], nslots);

		while (slots[s])
			s = (s + 1) & (nslots - 1);
		slots[s] = (uint32_t)(i + 1);
	}
	free(ix->slots);
	ix->slots = slots;
	ix->nslots = nslots;
	return 0;
}

static void swap_rec(struct rec *x, struct rec *y)
{
	struct rec t = *x;

	*x = *y;
	*y = t;
}

/* In place (qsort() would take a second copy of the tail): quicksort by
 * ID; the IDs are uniform, so the middle element is as good a pivot as
 * any, and the smaller side recursed into keeps the stack at log n. */
static void sort_recs(struct rec *v, size_t n)
{
	while (n > 16) {
		struct rec pivot = v[n / 2];
		size_t i = 0, j = n - 1;

		for (;;) {
			while (memcmp(v[i].id, pivot.id, INDEX_ID_LEN) < 0)
				i++;
			while (memcmp(v[j].id, pivot.id, INDEX_ID_LEN) > 0)
				j--;
			if (i >= j)
				break;
			swap_rec(&v[i++], &v[j--]);
		}
		/* [0, j] <= pivot <= [j + 1, n) */
		if (j + 1 < n - j - 1) {
			sort_recs(v, j + 1);
			v += j + 1;
			n -= j + 1;
		} else {
			sort_recs(v + j + 1, n - j - 1);
			n = j + 1;
		}
	}
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && memcmp(v[k - 1].id, v[k].id, INDEX_ID_LEN) > 0; k--)
			swap_rec(&v[k - 1], &v[k]);
}

static void put_entry(struct index *ix, size_t k, const uint8_t *id, const uint8_t *loc)
{
	memcpy(ix->ids[k], id, INDEX_ID_LEN);
	memcpy(ix->locs[k], loc, INDEX_LOC_LEN);
}

/* Merges the tail into the sorted part: the tail copied out and sorted
 * (the only extra memory), then both merged from the end. */
static int seal(struct index *ix)
{
	size_t nt = ix->n - ix->nsorted, i = ix->nsorted, j = nt, k = ix->n;
	struct rec *tail;

	if (!ix->dir && !(ix->dir = calloc(65537, sizeof(*ix->dir))))
		return -ENOMEM;
	if (!(tail = malloc(nt * sizeof(*tail))))
		return -ENOMEM;
	/* the tail's table goes first: not both at the peak */
	free(ix->slots);
	ix->slots = NULL;
	ix->nslots = 0;
	for (size_t t = 0; t < nt; t++) {
		memcpy(tail[t].id, ix->ids[i + t], INDEX_ID_LEN);
		memcpy(tail[t].loc, ix->locs[i + t], INDEX_LOC_LEN);
	}
	sort_recs(tail, nt);
	while (j > 0) {
		k--;
		if (i > 0 && memcmp(ix->ids[i - 1], tail[j - 1].id, INDEX_ID_LEN) > 0) {
			i--;
			put_entry(ix, k, ix->ids[i], ix->locs[i]);
		} else {
			j--;
			put_entry(ix, k, tail[j].id, tail[j].loc);
		}
	}
	free(tail);
	ix->nsorted = ix->n;
	for (size_t b = 0, at = 0; b <= 65536; b++) {
		while (at < ix->n && bucket_of(ix->ids[at]) < b)
			at++;
		ix->dir[b] = (uint32_t)at;
	}
	return 0;
}

/* Each array in its own mapping, grown with mremap(): no copy and no
 * second array while growing, and no heap fragments left behind. */
static int grow_map(void **p, size_t size, size_t nsize)
{
	void *np = *p ? mremap(*p, size, nsize, MREMAP_MAYMOVE)
		      : mmap(NULL, nsize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (np == MAP_FAILED)
		return -ENOMEM;
	*p = np;
	return 0;
}

static int grow(struct index *ix)
{
	size_t ncap = ix->cap ? ix->cap * 2 : 4096;
	void *ids = ix->ids, *locs = ix->locs;
	int r = grow_map(&ids, ix->cap * INDEX_ID_LEN, ncap * INDEX_ID_LEN);

	ix->ids = ids;
	if (r < 0)
		return r;
	/* ids may be larger than cap says now: only its first cap entries
	 * are used and remapped (the rest is a leak on this failure only) */
	if ((r = grow_map(&locs, ix->cap * INDEX_LOC_LEN, ncap * INDEX_LOC_LEN)) < 0)
		return r;
	ix->locs = locs;
	ix->cap = ncap;
	return 0;
}

/* Inserts id (its first 16 bytes) with loc unless present: 1, or 0. */
static int insert(struct index *ix, const uint8_t *id, const uint8_t *loc)
{
	size_t s, nt;
	int r;

	if (find(ix, id) >= 0)
		return 0;
	if (ix->n >= UINT32_MAX - 1)
		return -BCDR_ERR_TOO_BIG;
	if (ix->n == ix->cap && (r = grow(ix)) < 0)
		return r;
	nt = ix->n - ix->nsorted;
	if ((nt + 1) * 2 > ix->nslots && (r = rehash(ix, ix->nslots ? ix->nslots * 2 : 2048)) < 0)
		return r;
	put_entry(ix, ix->n, id, loc);
	for (s = slot_of(id, ix->nslots); ix->slots[s]; s = (s + 1) & (ix->nslots - 1))
		;
	ix->slots[s] = (uint32_t)(++ix->n);
	/* A long tail: its table costs more than the entries; merge it. */
	if (nt + 1 >= 65536 && (nt + 1) * 8 >= ix->nsorted)
		return (r = seal(ix)) < 0 ? r : 1;
	return 1;
}

int index_insert(struct index *ix, const uint8_t id[32], enum blob_type type)
{
	uint8_t loc[INDEX_LOC_LEN];

	loc_put(loc, INDEX_NO_PACK, type & 1, 0, 0, 0);
	return insert(ix, id, loc);
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

/* ---- the journal ---- */

static int open_spill(void)
{
	const char *dirs[] = { getenv("TMPDIR"), "/var/tmp", "/tmp" };
	char tmpl[] = "/tmp/bcdr-index-XXXXXX";
	int fd;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (dirs[i] && *dirs[i] &&
		    (fd = open(dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) >= 0)
			return fd;
	if ((fd = mkostemp(tmpl, O_CLOEXEC)) < 0)
		return -errno;
	unlink(tmpl);
	return fd;
}

/* The buffer to the spill file. */
static int spill(struct index *ix)
{
	if (!ix->jfd) {
		int fd = open_spill();

		if (fd < 0)
			return fd;
		ix->jfd = fd + 1;
	}
	for (size_t done = 0; done < ix->jlen;) {
		ssize_t k = pwrite(ix->jfd - 1, ix->jbuf + done, ix->jlen - done,
				   (off_t)(ix->jflushed + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		done += (size_t)k;
	}
	ix->jflushed += ix->jlen;
	ix->jlen = 0;
	return 0;
}

static int journal(struct index *ix, uint32_t pack, const struct pack_entry *e)
{
	struct index_jblock *last = ix->njblocks ? &ix->jblocks[ix->njblocks - 1] : NULL;
	uint64_t at;
	uint8_t *p;
	int r;

	if (!ix->jbuf && !(ix->jbuf = malloc(JBUF_CAP)))
		return -ENOMEM;
	if (ix->jlen + PACK_ENTRY_LEN > JBUF_CAP && (r = spill(ix)) < 0)
		return r;
	at = ix->jflushed + ix->jlen;
	if (!last || last->pack != pack || last->off + (uint64_t)last->n * PACK_ENTRY_LEN != at) {
		if (ix->njblocks == ix->cap_jblocks) {
			size_t ncap = ix->cap_jblocks ? ix->cap_jblocks * 2 : 64;
			void *nb = realloc(ix->jblocks, ncap * sizeof(*ix->jblocks));

			if (!nb)
				return -ENOMEM;
			ix->jblocks = nb;
			ix->cap_jblocks = ncap;
		}
		last = &ix->jblocks[ix->njblocks++];
		*last = (struct index_jblock){ .off = at, .pack = pack };
	}
	p = ix->jbuf + ix->jlen;
	p[0] = e->type;
	memcpy(p + 1, e->id, 32);
	le32_put(p + 33, e->offset);
	le32_put(p + 37, e->length);
	le32_put(p + 41, e->raw_length);
	ix->jlen += PACK_ENTRY_LEN;
	last->n++;
	return 0;
}

static int journal_read(const struct index *ix, uint64_t off, size_t len, uint8_t *dst)
{
	if (off < ix->jflushed) {
		size_t n = ix->jflushed - off < len ? (size_t)(ix->jflushed - off) : len;
		int r = fs_pread_full(ix->jfd - 1, dst, n, (off_t)off);

		if (r < 0)
			return r;
		off += n;
		dst += n;
		len -= n;
	}
	memcpy(dst, ix->jbuf + (off - ix->jflushed), len);
	return 0;
}

int index_add(struct index *ix, uint32_t pack, const struct pack_entry *e)
{
	uint8_t loc[INDEX_LOC_LEN];
	int r;

	if (!entry_fits(pack, e))
		return -BCDR_ERR_CORRUPT;
	loc_put(loc, pack, e->type, e->offset, e->length, e->raw_length);
	if ((r = insert(ix, e->id, loc)) <= 0)
		return r;
	return (r = journal(ix, pack, e)) < 0 ? r : 1;
}

int index_set_location(struct index *ix, uint32_t pack, const struct pack_entry *e)
{
	ssize_t at = find(ix, e->id);
	int r;

	if (at < 0)
		return 0;
	if (!entry_fits(pack, e))
		return -BCDR_ERR_CORRUPT;
	loc_put(ix->locs[at], pack, e->type, e->offset, e->length, e->raw_length);
	return (r = journal(ix, pack, e)) < 0 ? r : 1;
}

void index_pack_counts(const struct index *ix, size_t first_pack, size_t *count)
{
	for (size_t p = first_pack; p < ix->npacks; p++)
		count[p] = 0;
	for (size_t b = 0; b < ix->njblocks; b++)
		if (ix->jblocks[b].pack >= first_pack)
			count[ix->jblocks[b].pack] += ix->jblocks[b].n;
}

/* ---- index files ---- */

/* Each kept pack's blocks in journal order: head[p], then next[]. */
static int chain_blocks(const struct index *ix, const bool *keep, uint32_t **ret_head,
			uint32_t **ret_next, size_t *count)
{
	uint32_t *head = malloc((ix->npacks + 1) * sizeof(*head));
	uint32_t *next = malloc((ix->njblocks + 1) * sizeof(*next));

	if (!head || !next) {
		free(head);
		free(next);
		return -ENOMEM;
	}
	memset(head, 0xff, (ix->npacks + 1) * sizeof(*head));
	for (size_t b = ix->njblocks; b-- > 0;) {
		const struct index_jblock *jb = &ix->jblocks[b];

		if (keep && !keep[jb->pack])
			continue;
		next[b] = head[jb->pack];
		head[jb->pack] = (uint32_t)b;
		count[jb->pack] += jb->n;
	}
	*ret_head = head;
	*ret_next = next;
	return 0;
}

int index_encode(const struct index *ix, const bool *keep_pack, uint8_t **ret, size_t *ret_len)
{
	size_t *count = calloc(ix->npacks + 1, sizeof(size_t)), npacks = 0, len = 8;
	uint32_t *head = NULL, *next = NULL;
	uint8_t *out = NULL;
	int r = count ? chain_blocks(ix, keep_pack, &head, &next, count) : -ENOMEM;

	for (size_t p = 0; r >= 0 && p < ix->npacks; p++)
		if (count[p]) {
			npacks++;
			len += 36 + count[p] * PACK_ENTRY_LEN;
		}
	if (r >= 0 && !(out = malloc(len)))
		r = -ENOMEM;
	if (r >= 0) {
		le32_put(out, 1);
		le32_put(out + 4, (uint32_t)npacks);
		len = 8;
	}
	for (size_t p = 0; r >= 0 && p < ix->npacks; p++) {
		if (!count[p])
			continue;
		memcpy(out + len, ix->packs[p], 32);
		le32_put(out + len + 32, (uint32_t)count[p]);
		len += 36;
		for (uint32_t b = head[p]; r >= 0 && b != UINT32_MAX; b = next[b]) {
			size_t bytes = (size_t)ix->jblocks[b].n * PACK_ENTRY_LEN;

			r = journal_read(ix, ix->jblocks[b].off, bytes, out + len);
			len += bytes;
		}
	}
	free(count);
	free(head);
	free(next);
	if (r < 0) {
		free(out);
		return r;
	}
	*ret = out;
	*ret_len = len;
	return 0;
}

int index_parse(const uint8_t *data, size_t len,
		int (*fn)(void *userdata, const uint8_t pack_id[32], const struct pack_entry *e),
		void *userdata)
{
	size_t off = 8;
	uint32_t npacks;
	int r;

	if (len < 8 || len > INDEX_MAX_PLAIN)
		return -BCDR_ERR_CORRUPT;
	if (le32_get(data) != 1)
		return le32_get(data) > 1 ? -BCDR_ERR_VERSION : -BCDR_ERR_CORRUPT;
	npacks = le32_get(data + 4);
	for (uint32_t p = 0; p < npacks; p++) {
		const uint8_t *pack_id = data + off;
		uint32_t nblobs;

		if (len - off < 36)
			return -BCDR_ERR_CORRUPT;
		nblobs = le32_get(data + off + 32);
		if ((len - off - 36) / PACK_ENTRY_LEN < nblobs)
			return -BCDR_ERR_CORRUPT;
		off += 36;
		for (uint32_t i = 0; i < nblobs; i++, off += PACK_ENTRY_LEN) {
			const uint8_t *e = data + off;
			struct pack_entry b = {
				.type = e[0],
				.offset = le32_get(e + 33),
				.length = le32_get(e + 37),
				.raw_length = le32_get(e + 41),
			};

			memcpy(b.id, e + 1, 32);
			if (e[0] > BLOB_TREE || b.length < CRYPTO_OVERHEAD + 1 ||
			    b.raw_length > BLOB_MAX_RAW || b.length >= PACK_MAX_SIZE ||
			    b.offset >= PACK_MAX_SIZE)
				return -BCDR_ERR_CORRUPT;
			if ((r = fn(userdata, pack_id, &b)) < 0)
				return r;
		}
	}
	return off == len ? 0 : -BCDR_ERR_CORRUPT;
}

struct decode_state {
	struct index *ix;
	const uint8_t *pack_id; /* the last pack's, and its position */
	uint32_t pos;
};

static int decode_one(void *userdata, const uint8_t pack_id[32], const struct pack_entry *e)
{
	struct decode_state *d = userdata;
	uint8_t loc[INDEX_LOC_LEN];
	int r;

	if (pack_id != d->pack_id) {
		if ((r = index_add_pack(d->ix, pack_id, &d->pos)) < 0)
			return r;
		d->pack_id = pack_id;
	}
	loc_put(loc, d->pos, e->type, e->offset, e->length, e->raw_length);
	r = insert(d->ix, e->id, loc);
	return r < 0 ? r : 0;
}

int index_decode(struct index *ix, const uint8_t *data, size_t len)
{
	struct decode_state d = { .ix = ix };

	return index_parse(data, len, decode_one, &d);
}
