#include "backup/copy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"

#define COPY_PACK_TARGET (16u << 20)

struct saver {
	struct repo *dst;
	struct pack_writer w;
	size_t npacks_before;
	uint64_t blobs, bytes;
};

static int saver_flush(struct saver *sv)
{
	struct index *ix = sv->dst->index;
	uint8_t id[32];
	uint32_t pos;
	int r;

	if (sv->w.n == 0)
		return 0;
	if ((r = repo_save_pack(sv->dst, sv->dst->crypto, &sv->w, id)) < 0)
		return r;
	if ((r = index_add_pack(ix, id, &pos)) < 0)
		return r;
	for (size_t i = 0; i < sv->w.n; i++)
		if ((r = index_set_location(ix, pos, &sv->w.entries[i])) < 0)
			return r;
	pack_writer_reset(&sv->w);
	return 0;
}

/* Stores data unless the destination has it; its ID goes to id. */
static int saver_add(struct saver *sv, enum blob_type type, const uint8_t *data, size_t len,
		     uint8_t id[32])
{
	int r = crypto_blob_id(sv->dst->crypto, data, len, id);

	if (r < 0)
		return r;
	r = index_insert(sv->dst->index, id, type);
	if (r <= 0)
		return r;
	if ((r = pack_writer_add(&sv->w, sv->dst->crypto, type, id, data, len)) < 0)
		return r;
	sv->blobs++;
	sv->bytes += len;
	return sv->w.len >= COPY_PACK_TARGET ? saver_flush(sv) : 0;
}

static bool same_strv(char **a, char **b)
{
	for (; a && *a && b && *b; a++, b++)
		if (strcmp(*a, *b) != 0)
			return false;
	return (!a || !*a) && (!b || !*b);
}

static bool same_snapshot(const struct snapshot *a, const struct snapshot *b)
{
	return a->time == b->time && strcmp(a->host, b->host) == 0 && same_strv(a->paths, b->paths);
}

static int already_there(struct repo *dst, const struct snapshot *s, bool *ret)
{
	struct snapshot **v;
	size_t n;
	int r = repo_list_snapshots(dst, &v, &n);

	if (r < 0)
		return r;
	*ret = false;
	for (size_t i = 0; i < n && !*ret; i++)
		*ret = same_snapshot(v[i], s);
	snapshots_free(v, n);
	return 0;
}

/* Source chunk ID -> destination chunk ID, so a chunk used many times is
 * read once. Whole IDs as keys: two source chunks are never taken for one
 * (the index keeps only their first bytes). */
struct idmap {
	uint8_t (*src_ids)[32], (*dst_ids)[32];
	size_t n, cap;
	uint32_t *slots; /* open addressing: position + 1, 0 empty */
	size_t nslots;
};

static void idmap_release(struct idmap *m)
{
	free(m->src_ids);
	free(m->dst_ids);
	free(m->slots);
	*m = (struct idmap){};
}

static size_t idmap_slot(const uint8_t id[32], size_t nslots)
{
	uint64_t h;

	memcpy(&h, id + 16, sizeof(h)); /* keyed IDs: uniform already */
	return (size_t)(h & (nslots - 1));
}

static ssize_t idmap_find(const struct idmap *m, const uint8_t src_id[32])
{
	if (!m->nslots)
		return -1;
	for (size_t s = idmap_slot(src_id, m->nslots);; s = (s + 1) & (m->nslots - 1)) {
		uint32_t v = m->slots[s];

		if (!v)
			return -1;
		if (memcmp(m->src_ids[v - 1], src_id, 32) == 0)
			return (ssize_t)v - 1;
	}
}

/* Room for one more; its slot is m->dst_ids[m->n]. */
static int idmap_grow(struct idmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 1024;
	void *nd, *ns;

	if (m->n < m->cap)
		return 0;
	if (!(nd = realloc(m->dst_ids, ncap * 32)))
		return -ENOMEM;
	m->dst_ids = nd;
	if (!(ns = realloc(m->src_ids, ncap * 32)))
		return -ENOMEM;
	m->src_ids = ns;
	m->cap = ncap;
	free(m->slots);
	m->nslots = ncap * 2;
	if (!(m->slots = calloc(m->nslots, sizeof(*m->slots)))) {
		m->nslots = 0;
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->n; i++) {
		size_t s = idmap_slot(m->src_ids[i], m->nslots);

		while (m->slots[s])
			s = (s + 1) & (m->nslots - 1);
		m->slots[s] = (uint32_t)(i + 1);
	}
	return 0;
}

/* Records src -> m->dst_ids[m->n], written by the caller (after
 * idmap_grow()). */
static int idmap_commit(struct idmap *m, const uint8_t src_id[32])
{
	size_t s = idmap_slot(src_id, m->nslots);

	memcpy(m->src_ids[m->n], src_id, 32);
	while (m->slots[s])
		s = (s + 1) & (m->nslots - 1);
	m->slots[s] = (uint32_t)(++m->n);
	return 0;
}

/* What dst's copy pd of the source snapshot ps already says: copy_one()
 * keeps the tree's nodes in their order, so chunk c of node i there is
 * chunk c of node i here under dst's key. Both trees are read node by
 * node, side by side; only chunks dst's index holds are taken, only from
 * nodes whose path and chunk count agree; a tree that cannot be read ends
 * the seed there (the rest is read again). */
static int idmap_seed(struct repo *src, struct repo *dst, const struct snapshot *ps,
		      const struct snapshot *pd, struct idmap *m)
{
	struct tree_reader *ts = NULL, *td = NULL;
	struct node *a, *b;
	int r = 0;

	if (repo_tree_open(src, ps, &ts) < 0 || repo_tree_open(dst, pd, &td) < 0)
		goto out;
	while (r >= 0 && tree_reader_next(ts, &a) == 1 && tree_reader_next(td, &b) == 1) {
		if (a->nchunks != b->nchunks || strcmp(a->path, b->path) != 0)
			continue;
		for (uint32_t c = 0; r >= 0 && c < a->nchunks; c++) {
			if (idmap_find(m, a->chunks[c]) >= 0 ||
			    index_lookup(dst->index, b->chunks[c], NULL) < 0)
				continue;
			if ((r = idmap_grow(m)) >= 0) {
				memcpy(m->dst_ids[m->n], b->chunks[c], 32);
				r = idmap_commit(m, a->chunks[c]);
			}
		}
	}
out:
	if (ts)
		repo_tree_close(ts);
	if (td)
		repo_tree_close(td);
	return r < 0 ? r : 0;
}

struct copier {
	struct repo *src;
	struct saver *sv;
	struct idmap *m;
	ZSTD_DCtx *d;
	uint8_t *buf, *scratch;
	size_t cap, scap;
	/* The new node stream, cut into tree blobs as it fills. */
	uint8_t *enc;
	size_t enc_len, enc_off, enc_cap;
};

/* The node's chunks into the destination, its IDs changed to theirs. */
static int copy_chunks(struct copier *cp, struct node *n)
{
	struct idmap *m = cp->m;
	int r = 0;

	for (uint32_t c = 0; c < n->nchunks && r >= 0; c++) {
		ssize_t known = idmap_find(m, n->chunks[c]);

		if (known >= 0) {
			memcpy(n->chunks[c], m->dst_ids[known], 32);
			continue;
		}
		if ((r = idmap_grow(m)) < 0)
			break;
		r = repo_read_blob(cp->src, cp->src->crypto, cp->d, BLOB_DATA, n->chunks[c],
				   &cp->buf, &cp->cap, &cp->scratch, &cp->scap);
		if (r < 0 ||
		    (r = saver_add(cp->sv, BLOB_DATA, cp->buf, (size_t)r, m->dst_ids[m->n])) < 0)
			break;
		r = idmap_commit(m, n->chunks[c]);
		memcpy(n->chunks[c], m->dst_ids[m->n - 1], 32);
	}
	return r < 0 ? r : 0;
}

/* Tree blobs of the encoded nodes while the chunker's maximum is there
 * (all of them when last): the cuts of the whole stream. */
static int cut_tree(struct copier *cp, struct snapshot *copy, bool last)
{
	const struct chunker *ch = &cp->sv->dst->chunker;
	int r = 0;

	while (r >= 0 && cp->enc_len > cp->enc_off &&
	       (last || cp->enc_len - cp->enc_off >= ch->max)) {
		size_t cut = chunker_next(ch, cp->enc + cp->enc_off, cp->enc_len - cp->enc_off);
		uint8_t(*nt)[32] = realloc(copy->tree, (copy->ntree + 1) * 32);

		if (!nt)
			return -ENOMEM;
		copy->tree = nt;
		r = saver_add(cp->sv, BLOB_TREE, cp->enc + cp->enc_off, cut,
			      copy->tree[copy->ntree++]);
		cp->enc_off += cut;
	}
	return r;
}

/* The source's nodes one by one: chunks copied, node re-encoded. */
static int copy_tree(struct copier *cp, const struct snapshot *s, struct snapshot *copy)
{
	struct tree_reader *tr;
	struct node *n;
	int r = repo_tree_open(cp->src, s, &tr);

	while (r >= 0 && (r = tree_reader_next(tr, &n)) == 1) {
		size_t size;

		if ((r = copy_chunks(cp, n)) < 0 || (r = tree_node_size(n, &size)) < 0)
			break;
		if (cp->enc_off && cp->enc_len + size > cp->enc_cap) {
			memmove(cp->enc, cp->enc + cp->enc_off, cp->enc_len - cp->enc_off);
			cp->enc_len -= cp->enc_off;
			cp->enc_off = 0;
		}
		if ((r = bytes_reserve(&cp->enc, &cp->enc_cap, cp->enc_len + size)) < 0)
			break;
		tree_node_write(n, cp->enc + cp->enc_len);
		cp->enc_len += size;
		r = cut_tree(cp, copy, false);
	}
	/* Nodes the reader refused are damage: a copy without them would look
	 * whole (check lists them in the source). */
	if (r >= 0 && tr->refused && tr->refused->nrefused)
		r = -BCDR_ERR_CORRUPT;
	repo_tree_close(tr);
	return r < 0 ? r : cut_tree(cp, copy, true);
}

/* s into dst, whose index is loaded; m maps the chunks known so far. */
static int copy_one(struct repo *src, struct repo *dst, const struct snapshot *s, struct idmap *m,
		    struct copy_result *ret)
{
	struct saver sv = { .dst = dst };
	struct copier cp = { .src = src, .sv = &sv, .m = m };
	struct snapshot copy = *s;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!(cp.d = ZSTD_createDCtx()))
		return -ENOMEM;
	if ((r = pack_writer_init(&sv.w, dst->compression)) < 0) {
		ZSTD_freeDCtx(cp.d);
		return r;
	}
	sv.npacks_before = dst->index->npacks;
	copy.tree = NULL;
	copy.ntree = 0;
	copy.has_parent = false;
	r = copy_tree(&cp, s, &copy);
	if (r >= 0)
		r = saver_flush(&sv);
	if (r >= 0)
		r = repo_save_index(dst, sv.npacks_before);
	if (r >= 0)
		r = repo_save_snapshot(dst, &copy);
	if (r >= 0) {
		memcpy(ret->new_id, copy.id, 32);
		ret->blobs_copied = sv.blobs;
		ret->bytes_copied = sv.bytes;
	}
	free(copy.tree);
	pack_writer_release(&sv.w);
	ZSTD_freeDCtx(cp.d);
	free(cp.buf);
	free(cp.scratch);
	free(cp.enc);
	return r;
}

int copy_snapshot(struct repo *src, struct repo *dst, const struct snapshot *s,
		  struct copy_result *ret)
{
	struct idmap m = {};
	bool there;
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = repo_load_index(dst)) < 0 || (r = already_there(dst, s, &there)) < 0)
		return r;
	if (there) {
		ret->skipped = true;
		return 0;
	}
	if (!src->index && (r = repo_load_index(src)) < 0)
		return r;
	r = copy_one(src, dst, s, &m, ret);
	idmap_release(&m);
	return r;
}

int copy_missing(struct repo *src, struct repo *dst,
		 bool (*want)(const struct snapshot *s, void *userdata),
		 void (*each)(const struct snapshot *s, const struct copy_result *r,
			      void *userdata),
		 void *userdata, struct copy_missing_result *ret)
{
	struct snapshot **sv = NULL, **dv = NULL;
	const struct snapshot *last = NULL; /* the newest wanted one dst has */
	struct idmap m = {};
	size_t sn = 0, dn = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = repo_list_snapshots(dst, &dv, &dn)) < 0)
		return r;
	for (size_t i = 0; i < dn; i++)
		if (want(dv[i], userdata) && dv[i]->time > ret->newest) {
			ret->newest = dv[i]->time;
			last = dv[i];
		}
	r = repo_list_snapshots(src, &sv, &sn);
	if (r >= 0)
		r = repo_load_index(dst);
	if (r >= 0 && !src->index)
		r = repo_load_index(src);
	/* The chunks of the last snapshot copied are known there: an
	 * unchanged file is not read again. */
	for (size_t i = 0; r >= 0 && last && i < sn; i++)
		if (same_snapshot(sv[i], last))
			r = idmap_seed(src, dst, sv[i], last, &m);
	for (size_t i = 0; r >= 0 && i < sn; i++) {
		struct copy_result cr;
		bool there = false;

		if (!want(sv[i], userdata) || sv[i]->time <= ret->newest)
			continue;
		for (size_t k = 0; k < dn && !there; k++)
			there = same_snapshot(dv[k], sv[i]);
		if (there)
			continue;
		if ((r = copy_one(src, dst, sv[i], &m, &cr)) < 0)
			break;
		ret->copied++;
		ret->bytes_copied += cr.bytes_copied;
		ret->newest = sv[i]->time;
		if (each)
			each(sv[i], &cr, userdata);
	}
	idmap_release(&m);
	snapshots_free(sv, sn);
	snapshots_free(dv, dn);
	return r < 0 ? r : 0;
}
