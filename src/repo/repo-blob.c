/* Reading the repository's blobs (repo/repo.h): a blob located by the
 * index, and a snapshot's tree, streamed through a tree reader or loaded
 * whole. */
#include "repo/repo.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"

/* ---- blobs and trees ---- */

/* The blob at b (an index entry, maybe a copy) in pack pack_id. */
static int read_located(struct repo *repo, struct crypto_ctx *c, void *dctx, enum blob_type type,
			const uint8_t id[32], const struct index_blob *b, const uint8_t pack_id[32],
			uint8_t **buf, size_t *cap, uint8_t **scratch, size_t *scratch_cap)
{
	char name[128];
	int r;

	if (b->type != type || b->length > BLOB_MAX_STORED)
		return -BCDR_ERR_CORRUPT;
	if ((r = bytes_reserve(scratch, scratch_cap, 2 * (size_t)b->length)) < 0)
		return r;
	if ((r = bytes_reserve(buf, cap, (size_t)b->raw_length + 1)) < 0)
		return r;
	repo_object_name("data", pack_id, name, sizeof(name));
	r = backend_read(repo->backend, name, b->offset, b->length, *scratch);
	if (r < 0)
		return r == -ENOENT ? -BCDR_ERR_NOT_FOUND : r;
	r = blob_open(c, type, id, *scratch, b->length, *scratch + b->length, *buf,
		      (size_t)b->raw_length, dctx, true);
	if (r >= 0 && (uint32_t)r != b->raw_length)
		return -BCDR_ERR_CORRUPT;
	return r;
}

int repo_read_blob(struct repo *repo, struct crypto_ctx *c, void *dctx, enum blob_type type,
		   const uint8_t id[32], uint8_t **buf, size_t *cap, uint8_t **scratch,
		   size_t *scratch_cap)
{
	struct index_blob b;

	if (!repo->index || index_lookup(repo->index, id, &b) < 0 || b.pack == INDEX_NO_PACK)
		return -BCDR_ERR_NOT_FOUND;
	return read_located(repo, c, dctx, type, id, &b, repo->index->packs[b.pack], buf, cap,
			    scratch, scratch_cap);
}

/* The nodes the summary counts, within what the blobs can hold (a node
 * takes at least 64 bytes): room reserved up front, no regrowing. */
static size_t tree_size_hint(const struct repo *repo, const struct snapshot *s)
{
	const struct snapshot_summary *sum = &s->summary;
	uint64_t hint = sum->files_new + sum->files_changed + sum->files_unchanged + sum->dirs +
			sum->errors;
	uint64_t most = (uint64_t)s->ntree * repo->chunker.max / 64;

	hint += hint / 16 + 16;
	return (size_t)(hint < most ? hint : most);
}

struct repo_tree {
	struct tree_reader r; /* first: the caller's handle */
	struct repo *repo;
	const struct snapshot *s;
	size_t next;
	pthread_mutex_t *index_lock;
	ZSTD_DCtx *d;
	uint8_t *buf, *scratch;
	size_t cap, scap;
};

/* The next tree blob into the reader: one blob in memory at a time. */
static int tree_fill(void *userdata, struct tree_reader *r)
{
	struct repo_tree *t = userdata;
	int k;

	if (t->next == t->s->ntree) {
		tree_reader_end(r);
		return 0;
	}
	if (t->index_lock) {
		/* Others insert meanwhile: the entry and pack ID are copied
		 * under their lock, the blob read without it. */
		bool found;
		struct index_blob b = {};
		uint8_t pack[32];

		pthread_mutex_lock(t->index_lock);
		found = index_lookup(t->repo->index, t->s->tree[t->next], &b) >= 0;
		if (found && b.pack != INDEX_NO_PACK)
			memcpy(pack, t->repo->index->packs[b.pack], 32);
		pthread_mutex_unlock(t->index_lock);
		if (!found || b.pack == INDEX_NO_PACK)
			return -BCDR_ERR_NOT_FOUND;
		k = read_located(t->repo, t->repo->crypto, t->d, BLOB_TREE, t->s->tree[t->next], &b,
				 pack, &t->buf, &t->cap, &t->scratch, &t->scap);
	} else {
		k = repo_read_blob(t->repo, t->repo->crypto, t->d, BLOB_TREE, t->s->tree[t->next],
				   &t->buf, &t->cap, &t->scratch, &t->scap);
	}
	if (k < 0)
		return k;
	t->next++;
	return tree_reader_feed(r, t->buf, (size_t)k);
}

/* The walk order's rules fall back to the set: the blobs again. */
static int tree_rewind(void *userdata)
{
	((struct repo_tree *)userdata)->next = 0;
	return 0;
}

int repo_tree_open(struct repo *repo, const struct snapshot *s, struct tree_reader **ret)
{
	struct repo_tree *t;
	int r;

	if (!repo->index && (r = repo_load_index(repo)) < 0)
		return r;
	if (!(t = calloc(1, sizeof(*t))))
		return -ENOMEM;
	t->repo = repo;
	t->s = s;
	if ((r = tree_reader_init(&t->r, tree_fill, t)) >= 0)
		tree_reader_rewindable(&t->r, tree_rewind);
	if (r < 0 || (r = tree_reader_expect(&t->r, tree_size_hint(repo, s))) < 0 ||
	    !(t->d = ZSTD_createDCtx())) {
		repo_tree_close(&t->r);
		return r < 0 ? r : -ENOMEM;
	}
	*ret = &t->r;
	return 0;
}

void repo_tree_set_index_lock(struct tree_reader *r, pthread_mutex_t *lock)
{
	((struct repo_tree *)r)->index_lock = lock;
}

void repo_tree_close(struct tree_reader *r)
{
	struct repo_tree *t = (struct repo_tree *)r;

	if (!t)
		return;
	tree_reader_release(&t->r);
	ZSTD_freeDCtx(t->d);
	free(t->buf);
	free(t->scratch);
	free(t);
}

int repo_load_tree(struct repo *repo, const struct snapshot *s, struct tree **ret)
{
	struct tree_reader *tr;
	struct tree *t;
	struct node *n;
	int r;

	if ((r = repo_tree_open(repo, s, &tr)) < 0)
		return r;
	t = tr->refused; /* the nodes join the refusals */
	if ((r = tree_reserve(t, tree_size_hint(repo, s))) < 0) {
		repo_tree_close(tr);
		return r;
	}
	while ((r = tree_reader_next(tr, &n)) == 1) {
		struct node *to = tree_append(t);

		if (!to) {
			r = -ENOMEM;
			break;
		}
		*to = *n;
		memset(n, 0, sizeof(*n));
	}
	if (r >= 0)
		*ret = TAKE_PTR(tr->refused);
	repo_tree_close(tr);
	return r < 0 ? r : 0;
}
