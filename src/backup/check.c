#include "backup/check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	for (size_t i = 0; i < c->npacks; i++)
		if (strcmp(c->pack_names[i], hex) == 0)
			return (ssize_t)i;
	return -1;
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
		const struct index_blob *b = &c->ix->blobs[i];
		uint64_t end = (uint64_t)b->offset + b->length;

		if (b->pack != INDEX_NO_PACK && end > need[b->pack])
			need[b->pack] = end;
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

	if (c->repo->backend->ops->list(c->repo->backend, "snapshots", collect_pack, &tmp) < 0 || !d) {
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
				const struct index_blob *b = index_find(c->ix, n->chunks[ch]);

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

static void read_pack(struct checker *c, size_t at, ZSTD_DCtx *d)
{
	_cleanup_free_ uint8_t *data = NULL, *scratch = NULL, *out = NULL;
	_cleanup_free_ struct pack_entry *entries = NULL;
	const char *hex = c->pack_names[at];
	uint8_t want[32], got[32];
	char obj[128];
	size_t len, n;
	bool indexed = false; /* else garbage of an interrupted run: a note */
	int r;

	snprintf(obj, sizeof(obj), "data/%s", hex);
	if (hex_decode(hex, want, 32) >= 0)
		for (size_t p = 0; !indexed && p < c->ix->npacks; p++)
			indexed = memcmp(c->ix->packs[p], want, 32) == 0;
	r = c->repo->backend->ops->get(c->repo->backend, obj, PACK_MAX_SIZE, &data, &len);
	if (r < 0)
		return report(c, indexed, obj, "cannot read: %s", damage(r));
	c->res.bytes_read += len;
	crypto_sha256(c->repo->crypto, data, len, got);
	if (hex_decode(hex, want, 32) < 0 || memcmp(want, got, 32) != 0)
		report(c, indexed, obj, "damaged: content does not match its name");
	r = pack_read_header(c->repo->crypto, data, len, len, &entries, &n, NULL);
	if (r < 0)
		return report(c, indexed, obj, "header: %s", damage(r));
	scratch = malloc(BLOB_MAX_STORED);
	out = malloc(BLOB_MAX_RAW + 1);
	if (!scratch || !out)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct pack_entry *e = &entries[i];
		const struct index_blob *b = index_find(c->ix, e->id);
		char bhex[65];

		c->res.blobs++;
		hex_encode(e->id, 32, bhex);
		if (e->length > BLOB_MAX_STORED) {
			report(c, indexed, obj, "blob %.16s: length out of range", bhex);
			continue;
		}
		r = blob_open(c->repo->crypto, e->type, e->id, data + e->offset, e->length, scratch,
			      out, BLOB_MAX_RAW, d, true);
		if (r < 0 || (uint32_t)r != e->raw_length)
			report(c, indexed, obj, "blob %.16s is damaged: %s", bhex,
			       damage(r < 0 ? r : -BCDR_ERR_CORRUPT));
		if (b && b->pack != INDEX_NO_PACK && memcmp(c->ix->packs[b->pack], want, 32) == 0 &&
		    (b->offset != e->offset || b->length != e->length))
			report(c, indexed, obj, "blob %.16s: the index and the pack disagree on where it is",
			       bhex);
	}
}

int check_run(struct repo *repo, const struct check_options *o, struct check_result *ret)
{
	struct checker c = { .repo = repo, .o = o };
	ZSTD_DCtx *d;
	int r;

	r = repo->backend->ops->list(repo->backend, "keys", check_key, &c);
	if (r >= 0)
		r = check_index_files(&c);
	if (r >= 0)
		r = repo->backend->ops->list(repo->backend, "data", collect_pack, &c);
	if (r < 0)
		goto out;
	c.res.packs = c.npacks;
	check_packs_present(&c);
	check_snapshots(&c);
	if (o->read_data) {
		d = ZSTD_createDCtx();
		if (!d) {
			r = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < c.npacks; i++)
			read_pack(&c, i, d);
		ZSTD_freeDCtx(d);
	}
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
