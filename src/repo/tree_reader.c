#include "repo/tree_reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lib/cleanup.h"
#include "lib/err.h"

/* ---- SipHash-2-4 (Aumasson, Bernstein), for the keyed path hashes ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND \
	do { \
		v0 += v1; \
		v1 = ROTL(v1, 13); \
		v1 ^= v0; \
		v0 = ROTL(v0, 32); \
		v2 += v3; \
		v3 = ROTL(v3, 16); \
		v3 ^= v2; \
		v0 += v3; \
		v3 = ROTL(v3, 21); \
		v3 ^= v0; \
		v2 += v1; \
		v1 = ROTL(v1, 17); \
		v1 ^= v2; \
		v2 = ROTL(v2, 32); \
	} while (0)

static uint64_t siphash(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
	uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
	uint64_t b = (uint64_t)len << 56, m;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		m = 0;
		for (unsigned k = 0; k < 8; k++)
			m |= (uint64_t)p[i + k] << (8 * k);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (unsigned k = 0; i + k < len; k++)
		b |= (uint64_t)p[i + k] << (8 * k);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the set of accepted paths ---- */

enum kind { KIND_DIR = 1, KIND_FILE = 2 /* or the error reading it */, KIND_OTHER = 3 };

static uint64_t path_hash(const struct tree_reader *r, const char *s, size_t len)
{
	return siphash(r->k0, r->k1, s, len) & ~(uint64_t)3;
}

/* The kind of the accepted node of hash h, 0 when none. */
static unsigned set_find(const struct tree_reader *r, uint64_t h)
{
	if (!r->nslots)
		return 0;
	for (size_t i = (size_t)(h >> 2) & (r->nslots - 1);; i = (i + 1) & (r->nslots - 1)) {
		uint64_t e = r->set[i];

		if (!e)
			return 0;
		if ((e & ~(uint64_t)3) == h)
			return (unsigned)(e & 3);
	}
}

static void set_put(uint64_t *set, size_t nslots, uint64_t e)
{
	size_t i = (size_t)(e >> 2) & (nslots - 1);

	while (set[i])
		i = (i + 1) & (nslots - 1);
	set[i] = e;
}

static int set_add(struct tree_reader *r, uint64_t h, unsigned kind)
{
	if ((r->nused + 1) * 4 > r->nslots * 3) {
		size_t nslots = r->nslots ? r->nslots * 2 : 4096;
		uint64_t *set = calloc(nslots, sizeof(*set));

		if (!set)
			return -ENOMEM;
		for (size_t i = 0; i < r->nslots; i++)
			if (r->set[i])
				set_put(set, nslots, r->set[i]);
		free(r->set);
		r->set = set;
		r->nslots = nslots;
	}
	set_put(r->set, r->nslots, h | kind);
	r->nused++;
	return 0;
}

static int remember_dir(struct tree_reader *r, const char *s, size_t len)
{
	if (len + 1 > r->dir_cap) {
		size_t ncap = len + 1 > 256 ? len + 1 : 256;
		char *nd = realloc(r->dir, ncap);

		if (!nd)
			return -ENOMEM;
		r->dir = nd;
		r->dir_cap = ncap;
	}
	memcpy(r->dir, s, len);
	r->dir[len] = 0;
	r->dir_len = len;
	return 0;
}

/* Why n is refused (static text), or NULL; *ret_hash is its path's hash. */
static const char *refusal(struct tree_reader *r, const struct node *n, uint64_t *ret_hash)
{
	const char *why = tree_path_invalid(n->path), *slash;
	size_t len;
	unsigned kind;

	if (why)
		return why;
	len = strlen(n->path);
	*ret_hash = path_hash(r, n->path, len);
	if (set_find(r, *ret_hash))
		return "a second node of the same path";
	slash = strrchr(n->path, '/');
	if (slash) {
		size_t plen = (size_t)(slash - n->path);

		if (!r->dir || r->dir_len != plen || memcmp(r->dir, n->path, plen) != 0) {
			kind = set_find(r, path_hash(r, n->path, plen));
			if (!kind)
				return "no node of its parent directory comes before it";
			if (kind != KIND_DIR)
				return "its parent is not a directory";
			if (remember_dir(r, n->path, plen) < 0)
				return NULL; /* only a shortcut */
		}
	}
	if (n->type == NODE_HARDLINK) {
		if (tree_path_invalid(n->link))
			return "a hard link whose target is not a valid path";
		/* The first name of the inode: a file, or the error its read gave. */
		if (set_find(r, path_hash(r, n->link, strlen(n->link))) != KIND_FILE)
			return "a hard link whose target is not an earlier file";
	}
	return NULL;
}

/* ---- the reader ---- */

int tree_reader_expect(struct tree_reader *r, size_t nodes)
{
	size_t nslots = 4096;

	if (r->set || r->merge_only || nodes > (1u << 26))
		return 0; /* a hint: past this, grow as nodes come */
	while (nslots * 3 < nodes * 4)
		nslots *= 2;
	if (!(r->set = calloc(nslots, sizeof(*r->set))))
		return -ENOMEM;
	r->nslots = nslots;
	return 0;
}

void tree_reader_merge_only(struct tree_reader *r)
{
	free(r->set);
	r->set = NULL;
	r->nslots = r->nused = 0;
	r->merge_only = true;
}

int tree_reader_init(struct tree_reader *r, tree_fill_fn fill, void *userdata)
{
	uint64_t key[2];

	*r = (struct tree_reader){ .fill = fill, .userdata = userdata };
	if (getrandom(key, sizeof(key), 0) != sizeof(key))
		return -errno;
	r->k0 = key[0];
	r->k1 = key[1];
	r->refused = tree_new();
	return r->refused ? 0 : -ENOMEM;
}

void tree_reader_release(struct tree_reader *r)
{
	node_release(&r->node);
	free(r->buf);
	free(r->set);
	free(r->dir);
	tree_free(r->refused);
	*r = (struct tree_reader){};
}

int tree_reader_feed(struct tree_reader *r, const uint8_t *data, size_t len)
{
	r->total += len;
	if (r->total > TREE_MAX_STREAM)
		return -BCDR_ERR_TOO_BIG;
	if (r->off) { /* what is left of the last piece: a cut node */
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
	}
	if (r->len + len > r->cap) {
		size_t ncap = r->cap ? r->cap : 65536;
		uint8_t *nb;

		while (ncap < r->len + len)
			ncap *= 2;
		nb = realloc(r->buf, ncap);
		if (!nb)
			return -ENOMEM;
		r->buf = nb;
		r->cap = ncap;
	}
	if (len)
		memcpy(r->buf + r->len, data, len);
	r->len += len;
	return 0;
}

void tree_reader_end(struct tree_reader *r)
{
	r->ended = true;
}

int tree_reader_next(struct tree_reader *r, struct node **ret)
{
	node_release(&r->node);
	for (;;) {
		struct node *n = &r->node;
		const char *why;
		uint64_t h = 0;
		size_t used;
		int k;

		uint64_t before = r->total;

		k = r->off < r->len ? tree_node_read(r->buf + r->off, r->len - r->off, n, &used)
				    : -EAGAIN;
		if (k == -EAGAIN) {
			if (r->ended)
				return r->off < r->len ? -BCDR_ERR_CORRUPT : 0;
			if (!r->fill)
				return 0;
			if ((k = r->fill(r->userdata, r)) < 0)
				return k;
			if (r->total == before && !r->ended)
				return -EINVAL; /* a fill that neither fed nor ended */
			continue;
		}
		if (k < 0)
			return k;
		r->off += used;
		why = r->merge_only ? tree_path_invalid(n->path) : refusal(r, n, &h);
		if (why) {
			k = tree_note_refusal(r->refused, n, why);
			node_release(n);
			if (k < 0)
				return k;
			continue;
		}
		k = r->merge_only ? 0
		    : set_add(r, h,
			      n->type == NODE_DIR                             ? KIND_DIR
			      : n->type == NODE_FILE || n->type == NODE_ERROR ? KIND_FILE
									      : KIND_OTHER);
		if (k >= 0 && !r->merge_only && n->type == NODE_DIR)
			k = remember_dir(r, n->path, strlen(n->path));
		if (k < 0)
			return k;
		*ret = n;
		return 1;
	}
}

/* ---- a whole tree ---- */

static int drain(struct tree_decoder *d)
{
	struct node *n;
	int k;

	while ((k = tree_reader_next(&d->r, &n)) == 1) {
		struct node *to = tree_append(d->tree);

		if (!to)
			return -ENOMEM;
		*to = *n;
		memset(n, 0, sizeof(*n));
	}
	return k;
}

int tree_decoder_init(struct tree_decoder *d)
{
	int r = tree_reader_init(&d->r, NULL, NULL);

	d->tree = d->r.refused; /* the nodes join the refusals */
	return r;
}

void tree_decoder_release(struct tree_decoder *d)
{
	tree_reader_release(&d->r);
	d->tree = NULL;
}

int tree_decoder_feed(struct tree_decoder *d, const uint8_t *data, size_t len)
{
	int r = tree_reader_feed(&d->r, data, len);

	return r < 0 ? r : drain(d);
}

int tree_decoder_finish(struct tree_decoder *d, struct tree **ret)
{
	int r;

	tree_reader_end(&d->r);
	if ((r = drain(d)) < 0)
		return r;
	*ret = TAKE_PTR(d->r.refused);
	d->tree = NULL;
	return 0;
}

int tree_decode(const uint8_t *data, size_t len, struct tree **ret)
{
	struct tree_decoder d;
	int r;

	if (len > TREE_MAX_STREAM)
		return -BCDR_ERR_TOO_BIG;
	if ((r = tree_decoder_init(&d)) < 0)
		return r;
	r = tree_decoder_feed(&d, data, len);
	if (r >= 0)
		r = tree_decoder_finish(&d, ret);
	tree_decoder_release(&d);
	return r;
}
