#include "repo/orphans.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

static int collect_pack(const char *name, uint64_t size, void *userdata)
{
	struct pack_list *s = userdata;
	uint8_t id[32];

	if (strlen(name) != 64 || hex_decode(name, id, 32) < 0)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		void *ni = realloc(s->ids, cap * 32), *ns;

		if (!ni)
			return -ENOMEM;
		s->ids = ni;
		ns = realloc(s->sizes, cap * sizeof(uint64_t));
		if (!ns)
			return -ENOMEM;
		s->sizes = ns;
		s->cap = cap;
	}
	memcpy(s->ids[s->n], id, 32);
	s->sizes[s->n++] = size;
	return 0;
}

/* The pack's entries from its tail (one ranged read, two when the header
 * is longer than the first guess). */
static int read_entries(struct repo *repo, const char *name, uint64_t size,
			struct pack_entry **ret, size_t *ret_n)
{
	size_t want = size < (64u << 10) ? (size_t)size : (64u << 10), need = 0;
	_cleanup_free_ uint8_t *tail = NULL;
	int r;

	for (int round = 0; round < 2; round++) {
		free(tail);
		tail = malloc(want ? want : 1);
		if (!tail)
			return -ENOMEM;
		r = repo->backend->ops->get_range(repo->backend, name, size - want, want, tail);
		if (r < 0)
			return r;
		r = pack_read_header(repo->crypto, tail, want, size, ret, ret_n, &need);
		if (r != -EAGAIN)
			return r;
		if (need > size || need > PACK_MAX_SIZE)
			return -BCDR_ERR_CORRUPT;
		want = need;
	}
	return -BCDR_ERR_CORRUPT;
}

int repo_list_packs(struct repo *repo, struct pack_list *ret)
{
	int r;

	*ret = (struct pack_list){};
	r = repo->backend->ops->list(repo->backend, "data", collect_pack, ret);
	if (r < 0)
		pack_list_release(ret);
	return r;
}

void pack_list_release(struct pack_list *l)
{
	free(l->ids);
	free(l->sizes);
	*l = (struct pack_list){};
}

int repo_adopt_orphans(struct repo *repo, const struct pack_list *packs, unsigned *ret_n)
{
	struct index *ix = repo->index;
	_cleanup_free_ uint8_t(*known)[32] = NULL; /* sorted copy of the index's packs */
	unsigned adopted = 0, live, stale;
	int r = 0;

	*ret_n = 0;
	if (!ix || !repo->crypto)
		return -EINVAL;
	repo_lock_others(repo, &live, &stale);
	if (live)
		return 0;
	/* the lock of the interrupted backup, when its process is gone */
	if (stale && ((r = repo_remove_stale_locks(repo, NULL, &live)) < 0 || live))
		return r;
	known = malloc(ix->npacks ? ix->npacks * 32 : 1);
	if (!known)
		return -ENOMEM;
	if (ix->npacks) { /* an empty index has no array at all */
		memcpy(known, ix->packs, ix->npacks * 32);
		qsort(known, ix->npacks, 32, cmp_id);
	}
	for (size_t i = 0, nknown = ix->npacks; r >= 0 && i < packs->n; i++) {
		_cleanup_free_ struct pack_entry *e = NULL;
		size_t ne = 0;
		char name[80];
		uint32_t pos;

		if (bsearch(packs->ids[i], known, nknown, 32, cmp_id))
			continue;
		repo_object_name("data", packs->ids[i], name, sizeof(name));
		if (packs->sizes[i] < PACK_TRAILER_LEN || packs->sizes[i] > PACK_MAX_SIZE)
			continue;
		r = read_entries(repo, name, packs->sizes[i], &e, &ne);
		if (r == -BCDR_ERR_CORRUPT || r == -BCDR_ERR_AUTH || r == -ENOENT) {
			r = 0; /* not ours, or damaged: prune's business */
			continue;
		}
		if (r < 0)
			break;
		if ((r = index_add_pack(ix, packs->ids[i], &pos)) < 0)
			break;
		for (size_t k = 0; r >= 0 && k < ne; k++)
			r = index_add(ix, pos, &e[k]);
		adopted++;
	}
	if (r < 0)
		return r;
	*ret_n = adopted;
	return 0;
}
