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

/* ---- tables of path hashes ---- */

enum kind { KIND_DIR = 1, KIND_FILE = 2 /* or the error reading it */, KIND_OTHER = 3 };

static unsigned kind_of(const struct node *n)
{
	return n->type == NODE_DIR                             ? KIND_DIR
	       : n->type == NODE_FILE || n->type == NODE_ERROR ? KIND_FILE
							       : KIND_OTHER;
}

static uint64_t path_hash(const struct tree_reader *r, const char *s, size_t len)
{
	return siphash(r->k0, r->k1, s, len) & ~(uint64_t)3;
}

/* The kind of the entry of hash h, 0 when none. */
static unsigned hset_find(const struct tree_hset *t, uint64_t h)
{
	if (!t->nslots)
		return 0;
	for (size_t i = (size_t)(h >> 2) & (t->nslots - 1);; i = (i + 1) & (t->nslots - 1)) {
		uint64_t e = t->slots[i];

		if (!e)
			return 0;
		if ((e & ~(uint64_t)3) == h)
			return (unsigned)(e & 3);
	}
}

static void hset_put(uint64_t *slots, size_t nslots, uint64_t e)
{
	size_t i = (size_t)(e >> 2) & (nslots - 1);

	while (slots[i])
		i = (i + 1) & (nslots - 1);
	slots[i] = e;
}

/* A table grown by doubling holds the old and new one at its peak: the
 * first one is sized for about hint entries. */
static int hset_add(struct tree_hset *t, uint64_t h, unsigned kind, size_t hint)
{
	if ((t->nused + 1) * 4 > t->nslots * 3) {
		size_t nslots = t->nslots ? t->nslots * 2 : 4096;
		uint64_t *slots;

		while (!t->nslots && hint <= (1u << 26) && nslots * 3 < hint * 4)
			nslots *= 2;
		if (!(slots = calloc(nslots, sizeof(*slots))))
			return -ENOMEM;
		for (size_t i = 0; i < t->nslots; i++)
			if (t->slots[i])
				hset_put(slots, nslots, t->slots[i]);
		free(t->slots);
		t->slots = slots;
		t->nslots = nslots;
	}
	hset_put(t->slots, t->nslots, h | kind);
	t->nused++;
	return 0;
}

static void hset_free(struct tree_hset *t)
{
	free(t->slots);
	*t = (struct tree_hset){};
}

/* s[0, len) into *buf (NUL-terminated), grown as needed. */
static int keep_path(char **buf, size_t *cap, size_t *ret_len, const char *s, size_t len)
{
	if (len + 1 > *cap) {
		size_t ncap = len + 1 > 256 ? len + 1 : 256;
		char *nb = realloc(*buf, ncap);

		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf, s, len);
	(*buf)[len] = 0;
	*ret_len = len;
	return 0;
}

/* ---- the rules with the set of every accepted path ---- */

/* Why n is refused (static text), or NULL; *ret_hash is its path's hash. */
static const char *set_refusal(struct tree_reader *r, const struct node *n, uint64_t *ret_hash)
{
	const char *why = tree_path_invalid(n->path), *slash;
	size_t len;
	unsigned kind;

	if (why)
		return why;
	len = strlen(n->path);
	*ret_hash = path_hash(r, n->path, len);
	if (hset_find(&r->set, *ret_hash))
		return "a second node of the same path";
	slash = strrchr(n->path, '/');
	if (slash) {
		size_t plen = (size_t)(slash - n->path);

		if (!r->dir || r->dir_len != plen || memcmp(r->dir, n->path, plen) != 0) {
			kind = hset_find(&r->set, path_hash(r, n->path, plen));
			if (!kind)
				return "no node of its parent directory comes before it";
			if (kind != KIND_DIR)
				return "its parent is not a directory";
			/* only a shortcut: no memory, no shortcut */
			(void)keep_path(&r->dir, &r->dir_cap, &r->dir_len, n->path, plen);
		}
	}
	if (n->type == NODE_HARDLINK) {
		if (tree_path_invalid(n->link))
			return "a hard link whose target is not a valid path";
		/* The first name of the inode: a file, or the error its read gave. */
		if (hset_find(&r->set, path_hash(r, n->link, strlen(n->link))) != KIND_FILE)
			return "a hard link whose target is not an earlier file";
	}
	return NULL;
}

static int set_accept(struct tree_reader *r, const struct node *n, uint64_t h)
{
	int k = hset_add(&r->set, h, kind_of(n), r->hint);

	if (k >= 0 && n->type == NODE_DIR)
		k = keep_path(&r->dir, &r->dir_cap, &r->dir_len, n->path, strlen(n->path));
	return k;
}

/* ---- the same rules in walk order, with the last accepted path ----
 *
 * While every accepted node comes after the one before it in walk order
 * (tree_path_cmp), the accepted nodes are in it too, and:
 * - a path after the last is no second node of it;
 * - the nodes of a directory's subtree follow it together, and each one's
 *   parent was accepted (a directory), so the accepted directories that can
 *   still be parents are the last path's ancestors, and the last path; a
 *   parent that is a non-directory accepted is the last path;
 * - a hard link's target before the last path and none of its ancestors is
 *   a file accepted earlier only if it is among the files marked
 *   NODE_LINKED (kept: r->links).
 * Anything else (a node before the last one, a link to an unmarked file)
 * needs the set: the reader falls back to it (fall_back). */
enum verdict { ACCEPT, REFUSE, FALL_BACK };

/* Whether p[0, plen) is last or one of its ancestors. */
static bool on_last_path(const struct tree_reader *r, const char *p, size_t plen)
{
	return r->last_len >= plen && memcmp(r->last, p, plen) == 0 &&
	       (r->last_len == plen || r->last[plen] == '/');
}

static enum verdict ordered_link(const struct tree_reader *r, const char *t, const char **why)
{
	size_t len = strlen(t);
	int c = tree_path_cmp(t, r->last);

	*why = "a hard link whose target is not an earlier file";
	if (c == 0)
		return r->last_kind == KIND_FILE ? ACCEPT : REFUSE;
	if (c > 0 || on_last_path(r, t, len)) /* later, or a directory */
		return REFUSE;
	return hset_find(&r->links, path_hash(r, t, len)) == KIND_FILE ? ACCEPT : FALL_BACK;
}

static enum verdict ordered_refusal(const struct tree_reader *r, const struct node *n,
				    const char **why)
{
	const char *slash;

	if ((*why = tree_path_invalid(n->path)))
		return REFUSE;
	slash = strrchr(n->path, '/');
	if (r->last) {
		int c = tree_path_cmp(n->path, r->last);

		*why = "a second node of the same path";
		if (c <= 0)
			return c == 0 ? REFUSE : FALL_BACK;
	}
	if (slash) {
		size_t plen = (size_t)(slash - n->path);

		*why = "no node of its parent directory comes before it";
		if (!r->last || !on_last_path(r, n->path, plen))
			return REFUSE;
		*why = "its parent is not a directory";
		if (r->last_len == plen && r->last_kind != KIND_DIR)
			return REFUSE;
	}
	*why = NULL;
	if (n->type == NODE_HARDLINK) {
		if (tree_path_invalid(n->link)) {
			*why = "a hard link whose target is not a valid path";
			return REFUSE;
		}
		if (!r->last) {
			*why = "a hard link whose target is not an earlier file";
			return REFUSE;
		}
		return ordered_link(r, n->link, why);
	}
	return ACCEPT;
}

static int ordered_accept(struct tree_reader *r, const struct node *n)
{
	size_t len = strlen(n->path);
	unsigned kind = kind_of(n);
	int k = keep_path(&r->last, &r->last_cap, &r->last_len, n->path, len);

	r->last_kind = (uint8_t)kind;
	r->naccepted++;
	if (k >= 0 && kind == KIND_FILE && (n->flags & NODE_LINKED))
		k = hset_add(&r->links, path_hash(r, n->path, len), KIND_FILE, 0);
	return k;
}

/* ---- the reader ---- */

int tree_reader_expect(struct tree_reader *r, size_t nodes)
{
	r->hint = nodes; /* the set's first size, if it comes to one */
	return 0;
}

void tree_reader_merge_only(struct tree_reader *r)
{
	hset_free(&r->set);
	r->merge_only = true;
	r->ordered = false;
}

void tree_reader_rewindable(struct tree_reader *r, tree_rewind_fn rewind)
{
	r->rewind = rewind;
	r->ordered = rewind && !r->total && !r->merge_only;
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
	hset_free(&r->set);
	hset_free(&r->links);
	free(r->dir);
	free(r->last);
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
		r->base += r->off;
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

/* The next node of the stream into n, whatever the rules say: 1, 0 at its
 * end (or, without a fill function, until more is fed), or an error. */
static int read_node(struct tree_reader *r, struct node *n)
{
	for (;;) {
		uint64_t before = r->total;
		size_t used;
		int k = r->off < r->len ? tree_node_read(r->buf + r->off, r->len - r->off, n, &used)
					: -EAGAIN;

		if (k == 0) {
			r->off += used;
			return 1;
		}
		if (k != -EAGAIN)
			return k;
		if (r->ended)
			return r->off < r->len ? -BCDR_ERR_CORRUPT : 0;
		if (!r->fill)
			return 0;
		if ((k = r->fill(r->userdata, r)) < 0)
			return k;
		if (r->total == before && !r->ended)
			return -EINVAL; /* a fill that neither fed nor ended */
	}
}

/* From the walk order's rules to the set's, at the node that starts at
 * stream offset at: the stream is read again from its start up to there,
 * the accepted paths going into the set (the refusals were noted the first
 * time). A stream that reads differently the second time is corrupt. */
static int fall_back(struct tree_reader *r, uint64_t at)
{
	struct node n = {};
	uint64_t accepted = 0;
	int k;

	r->ordered = false;
	hset_free(&r->links);
	free(r->last);
	r->last = NULL;
	r->last_len = r->last_cap = 0;
	if ((k = r->rewind(r->userdata)) < 0)
		return k;
	r->off = r->len = 0;
	r->base = r->total = 0;
	r->ended = false;
	while (r->base + r->off < at) {
		const char *why;
		uint64_t h = 0;

		if ((k = read_node(r, &n)) <= 0)
			return k < 0 ? k : -BCDR_ERR_CORRUPT;
		why = set_refusal(r, &n, &h);
		k = why ? 0 : set_accept(r, &n, h);
		accepted += !why;
		node_release(&n);
		if (k < 0)
			return k;
	}
	return r->base + r->off == at && accepted == r->naccepted ? 0 : -BCDR_ERR_CORRUPT;
}

/* Why n is refused by the rules in force, NULL when it is taken. */
static int judge(struct tree_reader *r, struct node *n, uint64_t at, const char **why)
{
	uint64_t h = 0;
	int k;

	if (r->merge_only) {
		*why = tree_path_invalid(n->path);
		return 0;
	}
	if (r->ordered) {
		enum verdict v = ordered_refusal(r, n, why);

		if (v == ACCEPT) {
			*why = NULL;
			return ordered_accept(r, n);
		}
		if (v == REFUSE)
			return 0;
		node_release(n);
		return (k = fall_back(r, at)) < 0 ? k : 1; /* 1: read it again */
	}
	*why = set_refusal(r, n, &h);
	return *why ? 0 : set_accept(r, n, h);
}

int tree_reader_next(struct tree_reader *r, struct node **ret)
{
	node_release(&r->node);
	for (;;) {
		struct node *n = &r->node;
		uint64_t at = r->base + r->off;
		const char *why = NULL;
		int k = read_node(r, n);

		if (k <= 0)
			return k;
		if ((k = judge(r, n, at, &why)) < 0)
			return k;
		if (k == 1)
			continue;
		if (why) {
			k = tree_note_refusal(r->refused, n, why);
			node_release(n);
			if (k < 0)
				return k;
			continue;
		}
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
