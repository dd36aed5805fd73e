#include "backup/check.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "lib/cleanup.h"
#include "lib/err.h"

/* Invalid nodes named per snapshot; the rest are counted. */
#define CHECK_REFUSED_SHOWN 10u

struct checker {
	struct repo *repo;
	const struct check_options *o;
	struct check_result res;
	struct index *ix;
	/* packs in data/ with their sizes */
	char **pack_names;
	uint64_t *pack_sizes;
	size_t npacks, cap;
};

static void report(struct checker *c, bool error, const char *object, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void report(struct checker *c, bool error, const char *object, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (error)
		c->res.errors++;
	else
		c->res.notes++;
	if (c->o->report)
		c->o->report(error, object, what, c->o->userdata);
}

static const char *damage(int r)
{
	switch (r) {
	case -BCDR_ERR_CORRUPT:
		return "damaged (content does not match its hash or tag)";
	case -BCDR_ERR_VERSION:
		return "written by a newer format version";
	case -BCDR_ERR_TOO_BIG:
		return "larger than any valid object";
	default:
		return err_str(r);
	}
}

static int check_key(const char *name, uint64_t size, void *userdata)
{
	struct checker *c = userdata;
	_cleanup_free_ uint8_t *data = NULL;
	uint8_t salt[32], sealed[256], h[32];
	char obj[128], want[65];
	size_t len, slen;
	uint64_t n;
	uint32_t r_, p;
	int r;

	(void)size;
	snprintf(obj, sizeof(obj), "keys/%s", name);
	c->res.keys++;
	r = c->repo->backend->ops->get(c->repo->backend, obj, REPO_MAX_KEYFILE, &data, &len);
	if (r < 0) {
		report(c, true, obj, "cannot read: %s", damage(r));
		return 0;
	}
	crypto_sha256(c->repo->crypto, data, len, h);
	hex_encode(h, 32, want);
	if (strcmp(want, name) != 0) {
		report(c, true, obj, "damaged: content does not match its name");
		return 0;
	}
	r = key_file_decode(data, len, &n, &r_, &p, salt, sealed, &slen);
	if (r == -BCDR_ERR_TOO_BIG)
		report(c, true, obj,
		       "asks scrypt for n=%llu r=%u p=%u, more than bcdr writes: "
		       "no password opens it",
		       (unsigned long long)n, r_, p);
	else if (r < 0)
		report(c, true, obj, "%s", damage(r));
	return 0;
}

static int collect_pack(const char *name, uint64_t size, void *userdata)
{
	struct checker *c = userdata;

	if (c->npacks == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		char **nn = realloc(c->pack_names, ncap * sizeof(char *));
		uint64_t *ns;

		if (!nn)
			return -ENOMEM;
		c->pack_names = nn;
		ns = realloc(c->pack_sizes, ncap * sizeof(uint64_t));
		if (!ns)
			return -ENOMEM;
		c->pack_sizes = ns;
		c->cap = ncap;
	}
	if (!(c->pack_names[c->npacks] = strdup(name)))
		return -ENOMEM;
	c->pack_sizes[c->npacks++] = size;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int by_name(const void *a, const void *b, void *userdata)
{
	char *const *names = userdata;

	return strcmp(names[*(const size_t *)a], names[*(const size_t *)b]);
}

/* A listing sorted by name: a pack is found by a binary search (a
 * repository has tens of thousands), and the report comes in the same
 * order from every kind of store. */
static int sort_packs(struct checker *c)
{
	_cleanup_free_ size_t *order = malloc((c->npacks + 1) * sizeof(size_t));
	_cleanup_free_ char **names = malloc((c->npacks + 1) * sizeof(char *));
	_cleanup_free_ uint64_t *sizes = malloc((c->npacks + 1) * sizeof(uint64_t));

	if (!order || !names || !sizes)
		return -ENOMEM;
	for (size_t i = 0; i < c->npacks; i++)
		order[i] = i;
	qsort_r(order, c->npacks, sizeof(size_t), by_name, c->pack_names);
	for (size_t i = 0; i < c->npacks; i++) {
		names[i] = c->pack_names[order[i]];
		sizes[i] = c->pack_sizes[order[i]];
	}
	memcpy(c->pack_names, names, c->npacks * sizeof(char *));
	memcpy(c->pack_sizes, sizes, c->npacks * sizeof(uint64_t));
	return 0;
}

/* The fast path: every index file loads. Returns 1 when one does not. */
static int check_index(struct checker *c)
{
	int r;

	c->ix = index_new();
	if (!c->ix)
		return -ENOMEM;
	r = repo_load_index(c->repo);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return 1;
	for (char **n = c->repo->index_files; *n; n++)
		c->res.index_files++;
	index_free(c->ix);
	c->ix = TAKE_PTR(c->repo->index);
	return 0;
}

static int check_index_files(struct checker *c)
{
	int r = check_index(c);

	if (r <= 0)
		return r;
	/* Some file is bad: go through them one by one, naming it. */
	{
		struct checker tmp = { .repo = c->repo, .o = c->o };
		int rr = c->repo->backend->ops->list(c->repo->backend, "index", collect_pack, &tmp);

		if (rr >= 0)
			rr = sort_packs(&tmp);
		if (rr < 0)
			return rr;
		for (size_t i = 0; i < tmp.npacks; i++) {
			_cleanup_free_ uint8_t *plain = NULL;
			char obj[128];
			size_t len;

			snprintf(obj, sizeof(obj), "index/%s", tmp.pack_names[i]);
			c->res.index_files++;
			rr = repo_load_object(c->repo, OBJ_INDEX, "index", tmp.pack_names[i],
					      INDEX_MAX_PLAIN, &plain, &len);
			if (rr >= 0)
				rr = index_decode(c->ix, plain, len);
			if (rr < 0)
				report(c, true, obj, "%s", damage(rr));
			free(tmp.pack_names[i]);
		}
		free(tmp.pack_names);
		free(tmp.pack_sizes);
	}
	return 0;
}

static ssize_t find_pack(struct checker *c, const char *hex)
{
	char **at = bsearch(&hex, c->pack_names, c->npacks, sizeof(char *), name_cmp);

	return at ? at - c->pack_names : -1;
}

static void check_packs_present(struct checker *c)
{
	uint64_t *need = calloc(c->ix->npacks + 1, sizeof(uint64_t));
	bool *seen = calloc(c->npacks + 1, sizeof(bool));

	if (!need || !seen) {
		free(need);
		free(seen);
		return;
	}
	for (size_t i = 0; i < c->ix->n; i++) {
		struct index_blob b;
		uint64_t end;

		index_get(c->ix, i, &b);
		end = (uint64_t)b.offset + b.length;
		if (b.pack != INDEX_NO_PACK && end > need[b.pack])
			need[b.pack] = end;
	}
	for (size_t p = 0; p < c->ix->npacks; p++) {
		char hex[65], obj[128];
		ssize_t at;

		hex_encode(c->ix->packs[p], 32, hex);
		snprintf(obj, sizeof(obj), "data/%s", hex);
		at = find_pack(c, hex);
		if (at < 0) {
			report(c, true, obj, "missing, but the index lists blobs in it");
			continue;
		}
		seen[at] = true;
		if (c->pack_sizes[at] < need[p] + PACK_TRAILER_LEN)
			report(c, true, obj, "truncated: %llu bytes, the index needs more than %llu",
			       (unsigned long long)c->pack_sizes[at], (unsigned long long)need[p]);
	}
	for (size_t i = 0; i < c->npacks; i++)
		if (!seen[i]) {
			char obj[128];

			snprintf(obj, sizeof(obj), "data/%s", c->pack_names[i]);
			report(c, false, obj, "not in any index (left by an interrupted run; "
					      "prune removes it)");
		}
	free(need);
	free(seen);
}

static void check_snapshots(struct checker *c)
{
	struct checker tmp = { .repo = c->repo, .o = c->o };
	ZSTD_DCtx *d = ZSTD_createDCtx();

	if (c->repo->backend->ops->list(c->repo->backend, "snapshots", collect_pack, &tmp) < 0 ||
	    sort_packs(&tmp) < 0 || !d) {
		report(c, true, "snapshots", "cannot list the snapshots");
		ZSTD_freeDCtx(d);
		return;
	}
	c->repo->index = c->ix; /* borrowed for the tree reader */
	for (size_t i = 0; i < tmp.npacks; i++) {
		_cleanup_free_ uint8_t *plain = NULL;
		struct snapshot *s = NULL;
		struct tree_reader *tr = NULL;
		const struct tree *t;
		struct node *n;
		char obj[128];
		size_t len;
		int r;

		snprintf(obj, sizeof(obj), "snapshots/%s", tmp.pack_names[i]);
		c->res.snapshots++;
		r = repo_load_object(c->repo, OBJ_SNAPSHOT, "snapshots", tmp.pack_names[i],
				     SNAPSHOT_MAX_JSON, &plain, &len);
		if (r >= 0)
			r = snapshot_decode(plain, len, &s);
		if (r < 0) {
			report(c, true, obj, "%s", damage(r));
			continue;
		}
		/* Node by node: the snapshot's nodes are never all in memory. */
		r = repo_tree_open(c->repo, s, &tr);
		while (r >= 0 && (r = tree_reader_next(tr, &n)) == 1) {
			for (uint32_t ch = 0; ch < n->nchunks; ch++) {
				struct index_blob bc;
				const struct index_blob *b =
					index_lookup(c->ix, n->chunks[ch], &bc) >= 0 ? &bc : NULL;

				if (!b || b->type != BLOB_DATA) {
					char hex[65];

					hex_encode(n->chunks[ch], 32, hex);
					report(c, true, obj,
					       "file '%s' refers to chunk %.16s, which is %s",
					       n->path, hex,
					       b ? "not a data blob" : "not in the index");
					break;
				}
			}
		}
		if (r < 0) {
			report(c, true, obj, "its tree cannot be read: %s", damage(r));
			repo_tree_close(tr);
			snapshot_free(s);
			continue;
		}
		/* Nodes the reader refused: a path out of the target, or out of
		 * order. Damage, whoever wrote it; restore skips them. */
		t = tr->refused;
		for (size_t k = 0; k < t->nrefused_kept && k < CHECK_REFUSED_SHOWN; k++) {
			const struct tree_refusal *f = &t->refused[k];

			report(c, true, obj, "invalid node '%s'%s%s%s: %s (restore skips it)", f->path,
			       f->link ? " (hard link to '" : "", f->link ? f->link : "",
			       f->link ? "')" : "", f->why);
		}
		if (t->nrefused > CHECK_REFUSED_SHOWN)
			report(c, true, obj, "%llu more invalid nodes",
			       (unsigned long long)(t->nrefused - CHECK_REFUSED_SHOWN));
		repo_tree_close(tr);
		snapshot_free(s);
	}
	c->repo->index = NULL;
	for (size_t i = 0; i < tmp.npacks; i++)
		free(tmp.pack_names[i]);
	free(tmp.pack_names);
	free(tmp.pack_sizes);
	ZSTD_freeDCtx(d);
}

/* ---- --read-data: packs read and verified in parallel ----
 *
 * A remote store answers on the repository's `connections` connections
 * (restore's reads share them the same way), a local disk with a worker
 * per CPU. Each worker takes the next pack of the listing and verifies
 * it, streamed (read_pack()), with its own crypto and zstd contexts, so
 * memory is workers x (one read + one blob), not workers x a pack; what it finds is kept
 * with the pack and reported once every pack before it was, so the report
 * reads as one thread's would, in the listing's order. */

struct pack_note {
	bool error;
	char *what;
};

struct pack_outcome {
	struct pack_note *notes;
	size_t n, cap;
	uint64_t blobs, bytes;
	bool done;
	bool oom; /* a note could not be kept: the check fails, it never hides one */
};

struct data_reader {
	struct checker *c;
	uint8_t (*ix_packs)[32]; /* the index's packs, sorted */
	pthread_mutex_t lock;
	pthread_cond_t progress;
	size_t next;    /* the next pack to take */
	size_t emitted; /* packs whose outcome was reported */
	struct pack_outcome *out;
	int failed; /* the store failed (not a pack): every worker stops */
	uint64_t bytes_done, bytes_total;
	size_t running;
};

struct data_worker {
	struct data_reader *dr;
	struct crypto_ctx *crypto;
	ZSTD_DCtx *d;
	struct crypto_sha256_stream *hash; /* of the pack being read */
	uint8_t *blob;                     /* one stored blob, as read */
	uint8_t *scratch, *plain;          /* blob_open()'s */
	pthread_t thread;
};

static void note(struct pack_outcome *po, bool error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void note(struct pack_outcome *po, bool error, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (po->n == po->cap) {
		size_t ncap = po->cap ? po->cap * 2 : 4;
		struct pack_note *nn = realloc(po->notes, ncap * sizeof(*nn));

		if (!nn) {
			po->oom = true;
			return;
		}
		po->notes = nn;
		po->cap = ncap;
	}
	po->notes[po->n].error = error;
	if ((po->notes[po->n].what = strdup(what)))
		po->n++;
	else
		po->oom = true;
}

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

/* Failures of the store, not of a pack: reading on would only meet them
 * again (after every retry), and no pack is to blame. */
static bool store_failed(int r)
{
	return r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ETIMEDOUT || r == -ECONNRESET ||
	       r == -EKEYREJECTED || r == -ETIME || r == -EACCES || r == -ENOMEM;
}

/* The first guess at a pack's header, read from its end. */
#define CHECK_TAIL_GUESS ((size_t)64 << 10)

/* One pack read front to back in one stream (feed_pack()), every byte
 * hashed once, in order; the tail (the header, read first) is hashed from
 * memory, not read again. */
struct pack_stream {
	struct backend *b;
	const char *obj;
	struct crypto_sha256_stream *h;
	uint64_t pos; /* [0, pos) is hashed */
	const uint8_t *tail; /* the last bytes of the pack, from tail_off */
	uint64_t tail_off;
};

/* The pack's tail, long enough for its header (one ranged read, two when
 * the header is longer than the guess); *ret_hr is what
 * pack_read_header() made of it. A failed read is returned. */
static int read_tail(struct data_worker *w, const char *obj, uint64_t size, uint8_t **ret_tail,
		     size_t *ret_len, struct pack_entry **ret, size_t *ret_n, int *ret_hr)
{
	struct backend *b = w->dr->c->repo->backend;
	size_t want = size < CHECK_TAIL_GUESS ? (size_t)size : CHECK_TAIL_GUESS, need = 0;
	uint8_t *tail = NULL;
	int r, hr = -BCDR_ERR_CORRUPT;

	for (int round = 0; round < 2; round++) {
		free(tail);
		if (!(tail = malloc(want ? want : 1)))
			return -ENOMEM;
		if (want && (r = b->ops->get_range(b, obj, size - want, want, tail)) < 0) {
			free(tail);
			return r;
		}
		hr = pack_read_header(w->crypto, tail, want, size, ret, ret_n, &need);
		/* need <= size here: a longer header is -BCDR_ERR_CORRUPT */
		if (hr != -EAGAIN)
			break;
		want = need;
	}
	*ret_tail = tail;
	*ret_len = want;
	*ret_hr = hr == -EAGAIN ? -BCDR_ERR_CORRUPT : hr;
	return 0;
}

static void drop_notes(struct pack_outcome *po)
{
	for (size_t k = 0; k < po->n; k++)
		free(po->notes[k].what);
	po->n = 0;
}

/* A pack's bytes pushed by backend_stream() (one request for the pack
 * but its tail), hashed in order, each entry's blob opened when its bytes
 * are in. An entry before the bytes already hashed (not how bcdr writes)
 * stops the stream, is read alone, and the stream goes on where it was:
 * the findings keep the entries' order. */
struct pack_feed {
	struct data_worker *w;
	struct pack_stream *s;
	struct pack_outcome *po;
	const struct pack_entry *e;
	size_t n, i, counted; /* counted: entries [0, counted) are in po->blobs */
	bool indexed, alone;  /* alone: entry i is to be read by itself */
	const uint8_t *want;
	size_t fill; /* bytes of entry i in w->blob */
};

/* The checks of entry e, whose stored bytes are in w->blob. */
static void check_entry(struct pack_feed *f, const struct pack_entry *e)
{
	struct checker *c = f->w->dr->c;
	struct index_blob ibc;
	const struct index_blob *ib = index_lookup(c->ix, e->id, &ibc) >= 0 ? &ibc : NULL;
	char bhex[65];
	int r;

	hex_encode(e->id, 32, bhex);
	r = blob_open(f->w->crypto, e->type, e->id, f->w->blob, e->length, f->w->scratch,
		      f->w->plain, BLOB_MAX_RAW, f->w->d, true);
	if (r < 0 || (uint32_t)r != e->raw_length)
		note(f->po, f->indexed, "blob %.16s is damaged: %s", bhex,
		     damage(r < 0 ? r : -BCDR_ERR_CORRUPT));
	if (ib && ib->pack != INDEX_NO_PACK && memcmp(c->ix->packs[ib->pack], f->want, 32) == 0 &&
	    (ib->offset != e->offset || ib->length != e->length))
		note(f->po, f->indexed, "blob %.16s: the index and the pack disagree on where it is",
		     bhex);
}

/* Moves to the next entry that wants bytes from the stream: counts each,
 * skips those too long, checks an empty one in place; sets alone for one
 * that lies before the stream's position. */
static void feed_next(struct pack_feed *f)
{
	while (f->i < f->n && f->fill == 0) {
		const struct pack_entry *e = &f->e[f->i];

		if (f->counted <= f->i) {
			char bhex[65];

			f->counted = f->i + 1;
			f->po->blobs++;
			if (e->length > BLOB_MAX_STORED) {
				hex_encode(e->id, 32, bhex);
				note(f->po, f->indexed, "blob %.16s: length out of range", bhex);
				f->i++;
				continue;
			}
		}
		if (e->offset < f->s->pos) {
			f->alone = true;
			return;
		}
		if (e->offset > f->s->pos || e->length > 0)
			return;
		check_entry(f, e);
		f->i++;
	}
}

static int feed_bytes(const uint8_t *data, size_t len, void *ctx)
{
	struct pack_feed *f = ctx;
	struct pack_stream *s = f->s;

	while (len) {
		const struct pack_entry *e;
		size_t take;
		int r;

		feed_next(f);
		if (f->alone)
			return -EINTR; /* ends this stream: entry i is read alone */
		e = f->i < f->n ? &f->e[f->i] : NULL;
		if (!e || s->pos < e->offset)
			take = !e || e->offset - s->pos > len ? len : (size_t)(e->offset - s->pos);
		else
			take = e->offset + e->length - s->pos < len
				       ? (size_t)(e->offset + e->length - s->pos)
				       : len;
		if ((r = crypto_sha256_stream_update(s->h, data, take)) < 0)
			return r;
		if (e && s->pos >= e->offset) {
			memcpy(f->w->blob + f->fill, data, take);
			f->fill += take;
		}
		s->pos += take;
		data += take;
		len -= take;
		if (e && f->fill && f->fill == e->length) {
			check_entry(f, e);
			f->fill = 0;
			f->i++;
		}
	}
	return 0;
}

/* Every byte of the pack through feed_bytes(): streamed up to the tail,
 * the tail from memory; entries out of order read alone between. */
static int feed_pack(struct pack_feed *f, uint64_t size)
{
	struct pack_stream *s = f->s;
	int r = 0;

	for (;;) {
		f->alone = false;
		if (s->pos < s->tail_off)
			r = backend_stream(s->b, s->obj, s->pos, s->tail_off - s->pos, feed_bytes, f);
		else if (s->pos < size)
			r = feed_bytes(s->tail + (s->pos - s->tail_off), size - s->pos, f);
		else
			feed_next(f);
		if (r == -EINTR && f->alone)
			r = 0;
		if (r < 0)
			return r;
		if (f->alone || (s->pos >= size && f->i < f->n)) {
			/* its bytes are hashed already (or past the end) */
			const struct pack_entry *e = &f->e[f->i];

			r = s->b->ops->get_range(s->b, s->obj, e->offset, e->length, f->w->blob);
			if (r < 0)
				return r;
			check_entry(f, e);
			f->i++;
			continue;
		}
		if (s->pos >= size)
			return 0;
	}
}

/* Verifies pack `at` into *po; a failure of the store itself is returned.
 * The pack is streamed, never held: its header first, from its end, then
 * its bytes in order, each blob opened as soon as it is in, so a worker
 * holds one read and one blob, not a pack. The findings are those (and in
 * the order) a check of the whole pack in memory makes. */
static int read_pack(struct data_worker *w, size_t at, struct pack_outcome *po)
{
	struct checker *c = w->dr->c;
	struct backend *b = c->repo->backend;
	_cleanup_free_ uint8_t *tail = NULL;
	_cleanup_free_ struct pack_entry *entries = NULL;
	const char *hex = c->pack_names[at];
	uint64_t size = c->pack_sizes[at];
	struct pack_stream s;
	uint8_t want[32], got[32];
	char obj[128];
	size_t tail_len, n = 0;
	bool indexed = false; /* else garbage of an interrupted run: a note */
	int r, hr = 0;

	snprintf(obj, sizeof(obj), "data/%s", hex);
	if (hex_decode(hex, want, 32) >= 0)
		indexed = bsearch(want, w->dr->ix_packs, c->ix->npacks, 32, id_cmp) != NULL;
	if (!w->hash && (r = crypto_sha256_stream_new(&w->hash)) < 0)
		return r;
	if (!w->blob && !(w->blob = malloc(BLOB_MAX_STORED)))
		return -ENOMEM;
	if (!w->scratch && !(w->scratch = malloc(BLOB_MAX_STORED)))
		return -ENOMEM;
	if (!w->plain && !(w->plain = malloc(BLOB_MAX_RAW + 1)))
		return -ENOMEM;
	/* what a whole get of it would refuse */
	r = size > PACK_MAX_SIZE ? -BCDR_ERR_TOO_BIG
				 : read_tail(w, obj, size, &tail, &tail_len, &entries, &n, &hr);
	if (r < 0)
		goto failed;
	s = (struct pack_stream){ .b = b, .obj = obj, .h = w->hash, .tail = tail,
				  .tail_off = size - tail_len };
	if (hr < 0)
		n = 0;
	{
		struct pack_feed f = { .w = w, .s = &s, .po = po, .e = entries, .n = n,
				       .indexed = indexed, .want = want };

		r = feed_pack(&f, size);
	}
	if (r < 0)
		goto failed;
	r = crypto_sha256_stream_final(w->hash, got);
	if (r < 0)
		goto failed;
	po->bytes = size;
	if (hr < 0)
		note(po, indexed, "header: %s", damage(hr));
	if (hex_decode(hex, want, 32) < 0 || memcmp(want, got, 32) != 0) {
		/* known last, reported first, as from a pack read whole */
		note(po, indexed, "damaged: content does not match its name");
		if (po->n > 1) {
			struct pack_note last = po->notes[po->n - 1];

			memmove(po->notes + 1, po->notes, (po->n - 1) * sizeof(*po->notes));
			po->notes[0] = last;
		}
	}
	return 0;

failed:
	/* a hash half fed is reset for the next pack */
	if (w->hash && crypto_sha256_stream_final(w->hash, got) < 0)
		return -EIO;
	if (store_failed(r))
		return r;
	/* as a pack that cannot be read whole: that alone, nothing it gave */
	drop_notes(po);
	po->blobs = 0;
	po->bytes = 0;
	note(po, indexed, "cannot read: %s", damage(r));
	return 0;
}

/* Under dr->lock: the outcomes of the packs read so far, in order. */
static void emit_ready(struct data_reader *dr)
{
	struct checker *c = dr->c;

	while (dr->emitted < c->npacks && dr->out[dr->emitted].done) {
		struct pack_outcome *po = &dr->out[dr->emitted];
		char obj[128];

		snprintf(obj, sizeof(obj), "data/%s", c->pack_names[dr->emitted]);
		for (size_t k = 0; k < po->n; k++) {
			report(c, po->notes[k].error, obj, "%s", po->notes[k].what);
			free(po->notes[k].what);
		}
		free(po->notes);
		po->notes = NULL;
		po->n = 0;
		c->res.blobs += po->blobs;
		c->res.bytes_read += po->bytes;
		dr->emitted++;
	}
}

static void *data_worker_main(void *arg)
{
	struct data_worker *w = arg;
	struct data_reader *dr = w->dr;

	pthread_mutex_lock(&dr->lock);
	while (!dr->failed && dr->next < dr->c->npacks) {
		size_t at = dr->next++;
		struct pack_outcome po = {};
		int r;

		pthread_mutex_unlock(&dr->lock);
		r = read_pack(w, at, &po);
		if (r >= 0 && po.oom)
			r = -ENOMEM;
		pthread_mutex_lock(&dr->lock);
		if (r < 0 && !dr->failed)
			dr->failed = r;
		po.done = true;
		dr->out[at] = po;
		dr->bytes_done += dr->c->pack_sizes[at];
		if (!dr->failed)
			emit_ready(dr);
	}
	dr->running--;
	pthread_cond_signal(&dr->progress);
	pthread_mutex_unlock(&dr->lock);
	return NULL;
}

static unsigned reader_threads(const struct checker *c)
{
	long n = c->repo->backend->connections ? (long)c->repo->backend->connections
					       : sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > BACKEND_MAX_CONNECTIONS)
		n = BACKEND_MAX_CONNECTIONS;
	if ((size_t)n > c->npacks)
		n = c->npacks ? (long)c->npacks : 1;
	return (unsigned)n;
}

static void read_progress(struct data_reader *dr, usec_t start)
{
	struct check_progress p = {
		.packs_done = dr->emitted,
		.packs = dr->c->npacks,
		.bytes_done = dr->bytes_done,
		.bytes = dr->bytes_total,
		.elapsed = now_monotonic() - start,
	};

	dr->c->o->progress(&p, dr->c->o->userdata);
}

static int read_data(struct checker *c)
{
	struct data_reader dr = { .c = c };
	struct data_worker *workers;
	unsigned nthreads = reader_threads(c), started = 0;
	usec_t start = now_monotonic(), shown = start;
	int r = 0;

	if (c->npacks == 0)
		return 0;
	dr.out = calloc(c->npacks, sizeof(*dr.out));
	dr.ix_packs = malloc((c->ix->npacks + 1) * 32);
	workers = calloc(nthreads, sizeof(*workers));
	if (!dr.out || !dr.ix_packs || !workers) {
		free(dr.out);
		free(dr.ix_packs);
		free(workers);
		return -ENOMEM;
	}
	memcpy(dr.ix_packs, c->ix->packs, c->ix->npacks * 32);
	qsort(dr.ix_packs, c->ix->npacks, 32, id_cmp);
	for (size_t i = 0; i < c->npacks; i++)
		dr.bytes_total += c->pack_sizes[i];
	pthread_mutex_init(&dr.lock, NULL);
	pthread_cond_init(&dr.progress, NULL);
	pthread_mutex_lock(&dr.lock);
	for (unsigned i = 0; i < nthreads; i++) {
		struct data_worker *w = &workers[i];

		w->dr = &dr;
		if (crypto_ctx_new(&c->repo->key, &w->crypto) < 0 || !(w->d = ZSTD_createDCtx()))
			break;
		if (pthread_create(&w->thread, NULL, data_worker_main, w) != 0)
			break;
		pthread_setname_np(w->thread, "bcdr-check");
		started++;
		dr.running++;
	}
	if (!started)
		r = -ENOMEM;
	/* Progress every second while the workers read. */
	while (dr.running) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&dr.progress, &dr.lock, &ts);
		if (c->o->progress && dr.running && now_monotonic() - shown >= USEC_PER_SEC) {
			shown = now_monotonic();
			read_progress(&dr, start);
		}
	}
	pthread_mutex_unlock(&dr.lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(workers[i].thread, NULL);
	if (dr.failed)
		r = dr.failed;
	for (unsigned i = 0; i < nthreads; i++) {
		crypto_ctx_free(workers[i].crypto);
		ZSTD_freeDCtx(workers[i].d);
		crypto_sha256_stream_free(workers[i].hash);
		free(workers[i].blob);
		free(workers[i].scratch);
		free(workers[i].plain);
	}
	for (size_t i = 0; i < c->npacks; i++) {
		for (size_t k = 0; k < dr.out[i].n; k++)
			free(dr.out[i].notes[k].what);
		free(dr.out[i].notes);
	}
	free(dr.out);
	free(dr.ix_packs);
	free(workers);
	pthread_cond_destroy(&dr.progress);
	pthread_mutex_destroy(&dr.lock);
	return r;
}

int check_run(struct repo *repo, const struct check_options *o, struct check_result *ret)
{
	struct checker c = { .repo = repo, .o = o };
	int r;

	r = repo->backend->ops->list(repo->backend, "keys", check_key, &c);
	if (r >= 0)
		r = check_index_files(&c);
	if (r >= 0)
		r = repo->backend->ops->list(repo->backend, "data", collect_pack, &c);
	if (r >= 0)
		r = sort_packs(&c);
	if (r < 0)
		goto out;
	c.res.packs = c.npacks;
	check_packs_present(&c);
	check_snapshots(&c);
	if (o->read_data)
		r = read_data(&c);
out:
	for (size_t i = 0; i < c.npacks; i++)
		free(c.pack_names[i]);
	free(c.pack_names);
	free(c.pack_sizes);
	index_free(c.ix);
	if (r < 0)
		return r;
	if (ret)
		*ret = c.res;
	return c.res.errors ? -BCDR_ERR_CORRUPT : 0;
}
