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
	for (size_t i = 0; i < sv->w.n; i++) {
		struct index_blob *b = index_find(ix, sv->w.entries[i].id);

		if (b) {
			b->pack = pos;
			b->offset = sv->w.entries[i].offset;
			b->length = sv->w.entries[i].length;
			b->raw_length = sv->w.entries[i].raw_length;
		}
	}
	pack_writer_reset(&sv->w);
	return 0;
}

/* Stores data unless the destination has it; its ID goes to id. */
static int saver_add(struct saver *sv, enum blob_type type, const uint8_t *data, size_t len,
		     uint8_t id[32])
{
	struct index_blob b = { .pack = INDEX_NO_PACK, .type = (uint8_t)type };
	int r = crypto_blob_id(sv->dst->crypto, data, len, id);

	if (r < 0)
		return r;
	memcpy(b.id, id, 32);
	r = index_insert(sv->dst->index, &b);
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

static int already_there(struct repo *dst, const struct snapshot *s, bool *ret)
{
	struct snapshot **v;
	size_t n;
	int r = repo_list_snapshots(dst, &v, &n);

	if (r < 0)
		return r;
	*ret = false;
	for (size_t i = 0; i < n && !*ret; i++)
		*ret = v[i]->time == s->time && strcmp(v[i]->host, s->host) == 0 &&
		       same_strv(v[i]->paths, s->paths);
	snapshots_free(v, n);
	return 0;
}

/* Source chunk ID -> destination chunk ID, so a chunk used many times is
 * read once. */
struct idmap {
	struct index ix; /* blob.id = source ID, blob.offset = position in dst_ids */
	uint8_t (*dst_ids)[32];
	size_t n, cap;
};

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

	{
		for (uint32_t c = 0; c < n->nchunks && r >= 0; c++) {
			struct index_blob *known = index_find(&m->ix, n->chunks[c]);
			struct index_blob entry = {};

			if (known) {
				memcpy(n->chunks[c], m->dst_ids[known->offset], 32);
				continue;
			}
			r = repo_read_blob(cp->src, cp->src->crypto, cp->d, BLOB_DATA, n->chunks[c],
					   &cp->buf, &cp->cap, &cp->scratch, &cp->scap);
			if (r < 0)
				break;
			if (m->n == m->cap) {
				size_t ncap = m->cap ? m->cap * 2 : 1024;
				void *nd = realloc(m->dst_ids, ncap * 32);

				if (!nd) {
					r = -ENOMEM;
					break;
				}
				m->dst_ids = nd;
				m->cap = ncap;
			}
			memcpy(entry.id, n->chunks[c], 32);
			entry.offset = (uint32_t)m->n;
			r = saver_add(cp->sv, BLOB_DATA, cp->buf, (size_t)r, m->dst_ids[m->n]);
			if (r < 0)
				break;
			memcpy(n->chunks[c], m->dst_ids[m->n], 32);
			m->n++;
			r = index_insert(&m->ix, &entry);
		}
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
	repo_tree_close(tr);
	return r < 0 ? r : cut_tree(cp, copy, true);
}

int copy_snapshot(struct repo *src, struct repo *dst, const struct snapshot *s,
		  struct copy_result *ret)
{
	struct saver sv = { .dst = dst };
	struct idmap m = {};
	struct copier cp = { .src = src, .sv = &sv, .m = &m };
	struct snapshot copy = *s;
	bool there;
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = repo_load_index(dst)) < 0 || (r = already_there(dst, s, &there)) < 0)
		return r;
	if (there) {
		ret->skipped = true;
		return 0;
	}
	if ((r = repo_load_index(src)) < 0)
		return r;
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
	index_release(&m.ix);
	free(m.dst_ids);
	pack_writer_release(&sv.w);
	ZSTD_freeDCtx(cp.d);
	free(cp.buf);
	free(cp.scratch);
	free(cp.enc);
	return r;
}
