#include "backup/forget.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zstd.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/strv.h"

bool keep_policy_set(const struct keep_policy *k)
{
	return k->last > 0 || k->hourly > 0 || k->daily > 0 || k->weekly > 0 || k->monthly > 0 ||
	       k->yearly > 0;
}

enum bucket { B_HOUR, B_DAY, B_WEEK, B_MONTH, B_YEAR };

static long bucket_of(usec_t t, enum bucket b)
{
	time_t s = (time_t)(t / USEC_PER_SEC);
	struct tm tm;
	char buf[16];

	localtime_r(&s, &tm);
	switch (b) {
	case B_HOUR:
		return ((long)(tm.tm_year + 1900) * 1000 + tm.tm_yday) * 100 + tm.tm_hour;
	case B_DAY:
		return (long)(tm.tm_year + 1900) * 1000 + tm.tm_yday;
	case B_WEEK:
		strftime(buf, sizeof(buf), "%G%V", &tm);
		return strtol(buf, NULL, 10);
	case B_MONTH:
		return (long)(tm.tm_year + 1900) * 100 + tm.tm_mon;
	case B_YEAR:
		return tm.tm_year + 1900;
	}
	return 0;
}

void keep_policy_apply(const struct keep_policy *k, struct snapshot *const *v, size_t n,
		       bool *keep)
{
	const int64_t counts[] = { k->hourly, k->daily, k->weekly, k->monthly, k->yearly };

	for (size_t i = 0; i < n; i++)
		keep[i] = false;
	for (size_t i = 0; i < n && k->last > 0 && (int64_t)i < k->last; i++)
		keep[n - 1 - i] = true;
	for (enum bucket b = B_HOUR; b <= B_YEAR; b++) {
		int64_t left = counts[b];
		long last = -1;

		if (left <= 0)
			continue;
		for (size_t i = n; i-- > 0 && left > 0;) {
			long cur = bucket_of(v[i]->time, b);

			if (cur != last) {
				keep[i] = true;
				last = cur;
				left--;
			}
		}
	}
}

/* Snapshots are grouped by job when they have one, else host and paths. */
static int group_key(const struct snapshot *s, char **ret)
{
	size_t len = strlen(s->host) + 8 + (s->job ? strlen(s->job) : 0);
	char *key, *p;

	for (char **x = s->paths; x && *x; x++)
		len += strlen(*x) + 1;
	key = p = malloc(len + 1);
	if (!key)
		return -ENOMEM;
	p += snprintf(p, len + 1 - (size_t)(p - key), "%s\n", s->host);
	if (s->job) {
		snprintf(p, len + 1 - (size_t)(p - key), "job:%s", s->job);
	} else {
		for (char **x = s->paths; x && *x; x++)
			p += snprintf(p, len + 1 - (size_t)(p - key), "%s\n", *x);
	}
	*ret = key;
	return 0;
}

int forget_run(struct repo *repo, const struct keep_policy *k, const char *job, bool dry_run,
	       void (*fn)(const struct snapshot *s, bool keep, void *userdata), void *userdata,
	       struct forget_result *ret)
{
	struct snapshot **v = NULL, **group = NULL;
	_cleanup_free_ bool *done = NULL, *keep = NULL;
	struct forget_result res = {};
	size_t n = 0;
	int r;

	if (!keep_policy_set(k))
		return -EINVAL;
	r = repo_lock(repo, true);
	if (r < 0)
		return r;
	r = repo_list_snapshots(repo, &v, &n);
	if (r < 0)
		goto out;
	done = calloc(n + 1, sizeof(bool));
	keep = calloc(n + 1, sizeof(bool));
	group = calloc(n + 1, sizeof(*group));
	if (!done || !keep || !group) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && r >= 0; i++) {
		_cleanup_free_ char *key = NULL;
		size_t gn = 0;

		if (done[i])
			continue;
		if (job && (!v[i]->job || strcmp(v[i]->job, job) != 0)) {
			done[i] = true;
			continue;
		}
		if ((r = group_key(v[i], &key)) < 0)
			break;
		for (size_t j = i; j < n; j++) {
			_cleanup_free_ char *kj = NULL;

			if (done[j] || (r = group_key(v[j], &kj)) < 0)
				continue;
			if (strcmp(key, kj) == 0) {
				group[gn++] = v[j];
				done[j] = true;
			}
		}
		keep_policy_apply(k, group, gn, keep);
		for (size_t g = 0; g < gn; g++) {
			if (fn)
				fn(group[g], keep[g], userdata);
			if (keep[g]) {
				res.kept++;
				continue;
			}
			if (!dry_run && (r = repo_remove_snapshot(repo, group[g]->id)) < 0)
				break;
			res.removed++;
		}
	}
out:
	free(group);
	snapshots_free(v, n);
	repo_unlock(repo);
	if (r < 0)
		return r;
	if (ret)
		*ret = res;
	return 0;
}

/* ---- prune ---- */

struct pack_use {
	uint64_t used_bytes, unused_bytes;
	uint32_t used, unused;
	enum { P_KEEP, P_DELETE, P_REPACK } fate;
};

static int mark_used(struct repo *repo, bool *used)
{
	struct snapshot **v;
	size_t n;
	int r = repo_list_snapshots(repo, &v, &n);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct tree_reader *t;
		struct node *nd;

		for (size_t k = 0; k < v[i]->ntree; k++) {
			ssize_t at = index_lookup(repo->index, v[i]->tree[k], NULL);

			if (at >= 0)
				used[at] = true;
		}
		/* Node by node: no snapshot's nodes are all in memory. */
		r = repo_tree_open(repo, v[i], &t);
		while (r >= 0 && (r = tree_reader_next(t, &nd)) == 1)
			for (uint32_t c = 0; c < nd->nchunks; c++) {
				ssize_t at = index_lookup(repo->index, nd->chunks[c], NULL);

				if (at < 0) {
					r = -BCDR_ERR_NOT_FOUND; /* never prune a damaged repository */
					break;
				}
				used[at] = true;
			}
		repo_tree_close(t);
	}
	snapshots_free(v, n);
	return r;
}

struct pack_names {
	char **v; /* a strv */
	size_t n;
};

static int collect(const char *name, uint64_t size, void *userdata)
{
	struct pack_names *l = userdata;

	(void)size;
	return strv_push(&l->v, &l->n, name);
}

/* The used blobs of pack p in the index; an entry that cannot be a blob
 * of the pack (len bytes) is damage: the index is outside input, and
 * prune then deletes nothing. */
static int count_used(const struct index *ix, uint32_t p, const bool *used, size_t len,
		      size_t *ret)
{
	*ret = 0;
	for (size_t i = 0; i < ix->n; i++) {
		struct index_blob b;

		if (!used[i])
			continue;
		index_get(ix, i, &b);
		if (b.pack != p)
			continue;
		if ((uint64_t)b.offset + b.length > len || b.length > BLOB_MAX_STORED)
			return -BCDR_ERR_CORRUPT;
		(*ret)++;
	}
	return 0;
}

/* Copies the used blobs of pack p into w (checking each on the way, so
 * damage is never carried into a new pack). The index holds the IDs'
 * first bytes only: the whole ones come from the pack's header, each
 * taken where the index puts its blob, and every used blob must be
 * found so. Clears used[] for the blobs taken. */
static int repack_one(struct repo *repo, uint32_t p, bool *used, struct pack_writer *w,
		      ZSTD_DCtx *d)
{
	struct index *ix = repo->index;
	_cleanup_free_ uint8_t *data = NULL, *scratch = NULL, *out = NULL;
	_cleanup_free_ struct pack_entry *e = NULL;
	char name[128];
	size_t len, ne = 0, need = 0, want, got = 0;
	int r;

	repo_object_name("data", ix->packs[p], name, sizeof(name));
	r = repo->backend->ops->get(repo->backend, name, PACK_MAX_SIZE, &data, &len);
	if (r < 0)
		return r;
	if ((r = count_used(ix, p, used, len, &want)) < 0)
		return r;
	r = pack_read_header(repo->crypto, data, len, len, &e, &ne, &need);
	if (r < 0)
		return r == -EAGAIN ? -BCDR_ERR_CORRUPT : r;
	scratch = malloc(BLOB_MAX_STORED);
	out = malloc(BLOB_MAX_RAW + 1);
	if (!scratch || !out)
		return -ENOMEM;
	for (size_t k = 0; k < ne; k++) {
		struct index_blob b;
		ssize_t at = index_lookup(ix, e[k].id, &b);

		if (at < 0 || !used[at] || b.pack != p || b.offset != e[k].offset ||
		    b.length != e[k].length)
			continue;
		used[at] = false;
		got++;
		r = blob_open(repo->crypto, b.type, e[k].id, data + b.offset, b.length, scratch, out,
			      BLOB_MAX_RAW, d, true);
		if (r < 0)
			return r;
		r = pack_writer_add(w, repo->crypto, b.type, e[k].id, out, (size_t)r);
		if (r < 0)
			return r;
	}
	return got == want ? 0 : -BCDR_ERR_CORRUPT;
}

static int flush_new_pack(struct repo *repo, struct pack_writer *w, struct index *nix)
{
	uint8_t id[32];
	uint32_t pos;
	int r;

	if (w->n == 0)
		return 0;
	if ((r = repo_save_pack(repo, repo->crypto, w, id)) < 0)
		return r;
	if ((r = index_add_pack(nix, id, &pos)) < 0)
		return r;
	for (size_t i = 0; i < w->n; i++)
		if ((r = index_add(nix, pos, &w->entries[i])) < 0)
			return r;
	pack_writer_reset(w);
	return 0;
}

static ssize_t pack_pos(const struct index *ix, const uint8_t id[32])
{
	for (size_t p = ix->npacks; p-- > 0;)
		if (memcmp(ix->packs[p], id, 32) == 0)
			return (ssize_t)p;
	return -1;
}

static bool pack_known(const struct index *ix, const uint8_t id[32])
{
	return pack_pos(ix, id) >= 0;
}

/* The blobs of the packs that stay, into the new index: read again from
 * the index files (whole IDs), each where the loaded index puts it. */
struct keep_scan {
	const struct index *ix;
	struct index *nix;
	const struct pack_use *use;
	const uint8_t *pack_id; /* the last entry's pack: */
	bool keep;              /* it stays, */
	uint32_t pos, npos;     /* its position in ix and in nix */
	size_t added;
};

static int keep_entry(void *userdata, const uint8_t pack_id[32], const struct pack_entry *e)
{
	struct keep_scan *k = userdata;
	struct index_blob b;
	int r;

	if (pack_id != k->pack_id) {
		ssize_t at = pack_pos(k->ix, pack_id);

		k->pack_id = pack_id;
		k->keep = at >= 0 && k->use[at].fate == P_KEEP;
		k->pos = (uint32_t)at;
		if (k->keep && (r = index_add_pack(k->nix, pack_id, &k->npos)) < 0)
			return r;
	}
	if (!k->keep || index_lookup(k->ix, e->id, &b) < 0 || b.pack != k->pos ||
	    b.offset != e->offset || b.length != e->length)
		return 0;
	if ((r = index_add(k->nix, k->npos, e)) < 0)
		return r;
	k->added += (size_t)r;
	return 0;
}

static int add_kept(struct repo *repo, const struct pack_use *use, struct index *nix)
{
	struct keep_scan k = { .ix = repo->index, .nix = nix, .use = use };
	size_t want = 0;
	int r = 0;

	for (size_t p = 0; p < repo->index->npacks; p++)
		if (use[p].fate == P_KEEP)
			want += (size_t)use[p].used + use[p].unused;
	for (char **n = repo->index_files; n && *n && r >= 0; n++) {
		_cleanup_free_ uint8_t *plain = NULL;
		size_t len;

		r = repo_load_object(repo, OBJ_INDEX, "index", *n, INDEX_MAX_PLAIN, &plain, &len);
		k.pack_id = NULL;
		if (r >= 0)
			r = index_parse(plain, len, keep_entry, &k);
	}
	/* the files changed, or the first ID bytes of two kept blobs agree:
	 * not an index to replace the old ones with */
	return r < 0 ? r : k.added == want ? 0 : -BCDR_ERR_CORRUPT;
}

struct index_scan {
	char *const *read;
	const uint8_t (*written)[32];
	size_t nwritten;
	bool foreign;
};

static int find_foreign_index(const char *name, uint64_t size, void *userdata)
{
	struct index_scan *s = userdata;

	(void)size;
	for (size_t i = 0; i < s->nwritten; i++) {
		char hex[65];

		hex_encode(s->written[i], 32, hex);
		if (strcmp(name, hex) == 0)
			return 0;
	}
	for (char *const *n = s->read; n && *n; n++)
		if (strcmp(*n, name) == 0)
			return 0;
	s->foreign = true;
	return 0;
}

static int spare_new_packs(struct repo *repo, char *const *read, const uint8_t (*written)[32],
			   size_t nwritten, bool *ret)
{
	struct index_scan s = { .read = read, .written = written, .nwritten = nwritten };
	unsigned live = 0;
	int r = repo_count_live_locks(repo, &live);

	if (r < 0)
		return r;
	if (!live &&
	    (r = repo->backend->ops->list(repo->backend, "index", find_foreign_index, &s)) < 0)
		return r;
	*ret = live || s.foreign;
	return 0;
}

int prune_run(struct repo *repo, bool dry_run, struct prune_result *ret)
{
	struct prune_result res = {};
	struct index *ix, *nix = NULL;
	_cleanup_free_ bool *used = NULL;
	_cleanup_free_ struct pack_use *use = NULL;
	_cleanup_free_ uint8_t *data = NULL;
	struct pack_names on_disk = {};
	struct pack_writer w = {};
	ZSTD_DCtx *d = NULL;
	char **old_index = NULL;
	_cleanup_free_ uint8_t(*new_index)[32] = NULL;
	bool spare = false;
	size_t len, nnew = 0;
	int r;

	r = repo_lock(repo, true);
	if (r < 0)
		return r;
	r = repo_load_index(repo);
	if (r < 0)
		goto out;
	ix = repo->index;
	used = calloc(ix->n + 1, sizeof(bool));
	use = calloc(ix->npacks + 1, sizeof(*use));
	if (!used || !use) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = mark_used(repo, used)) < 0)
		goto out;
	for (size_t i = 0; i < ix->n; i++) {
		struct index_blob b;
		struct pack_use *u;

		index_get(ix, i, &b);
		u = &use[b.pack];
		if (used[i]) {
			u->used++;
			u->used_bytes += b.length;
		} else {
			u->unused++;
			u->unused_bytes += b.length;
		}
	}
	for (size_t p = 0; p < ix->npacks; p++) {
		struct pack_use *u = &use[p];

		if (!u->used) {
			u->fate = P_DELETE;
			res.packs_deleted++;
			res.bytes_freed += u->unused_bytes;
		} else if (u->unused && u->unused_bytes * 10 >= (u->used_bytes + u->unused_bytes)) {
			/* At least a tenth unused: rewrite the rest. */
			u->fate = P_REPACK;
			res.packs_repacked++;
			res.bytes_freed += u->unused_bytes;
		} else {
			res.packs_kept++;
		}
		if (u->fate != P_KEEP)
			res.blobs_removed += u->unused;
	}
	if ((r = repo->backend->ops->list(repo->backend, "data", collect, &on_disk)) < 0)
		goto out;
	if (dry_run)
		goto out;
	/* 1. New packs for the used blobs of the packs to rewrite. */
	nix = index_new();
	d = ZSTD_createDCtx();
	if (!nix || !d || (r = pack_writer_init(&w, repo->compression)) < 0) {
		r = r < 0 ? r : -ENOMEM;
		goto out;
	}
	for (uint32_t p = 0; p < ix->npacks && r >= 0; p++) {
		if (use[p].fate != P_REPACK)
			continue;
		r = repack_one(repo, p, used, &w, d);
		if (r >= 0 && w.len >= (16u << 20))
			r = flush_new_pack(repo, &w, nix);
	}
	if (r >= 0)
		r = flush_new_pack(repo, &w, nix);
	if (r < 0)
		goto out;
	/* 2. The index of everything that stays. */
	if ((r = add_kept(repo, use, nix)) < 0)
		goto out;
	/* In files of a bounded size, as a backup writes them: none held
	 * whole (at 5 million blobs one file was 225 MB, three copies of it
	 * in memory, and past 11 million it would pass INDEX_MAX_PLAIN). */
	old_index = TAKE_PTR(repo->index_files);
	if ((r = repo_save_index_of(repo, nix, 0, &new_index, &nnew)) < 0)
		goto out;
	if (!nnew) { /* nothing stays: one empty index, as ever */
		if (!(new_index = malloc(32))) {
			r = -ENOMEM;
			goto out;
		}
		nnew = 1;
		if ((r = index_encode(nix, NULL, &data, &len)) < 0 ||
		    (r = repo_save_object(repo, OBJ_INDEX, "index", data, len, new_index[0])) < 0)
			goto out;
	}
	/* A pack no index named when prune started may be a running
	 * backup's (its lock taken for stale and refreshed since, or a race
	 * with ours): while another lock is live, or an index file appeared
	 * that prune neither read nor wrote, such packs stay. */
	if ((r = spare_new_packs(repo, old_index, (const uint8_t(*)[32])new_index, nnew, &spare)) <
	    0)
		goto out;
	/* 3. The old index files, then 4. the packs nothing refers to now
	 * (including leftovers of interrupted runs that no index lists). */
	for (char **n = old_index; n && *n; n++) {
		char name[128];

		snprintf(name, sizeof(name), "index/%s", *n);
		if ((r = repo->backend->ops->remove(repo->backend, name)) < 0 && r != -ENOENT)
			goto out;
		r = 0;
	}
	for (size_t i = 0; i < on_disk.n; i++) {
		uint8_t id[32];
		uint32_t pos;
		char name[128];

		if (hex_decode(on_disk.v[i], id, 32) < 0)
			continue;
		/* Present in the new index: keep. */
		bool keep = false;

		for (size_t p = 0; p < nix->npacks && !keep; p++)
			keep = memcmp(nix->packs[p], id, 32) == 0;
		(void)pos;
		if (keep)
			continue;
		if (spare && !pack_known(ix, id)) {
			res.packs_spared++;
			continue;
		}
		snprintf(name, sizeof(name), "data/%s", on_disk.v[i]);
		if ((r = repo->backend->ops->remove(repo->backend, name)) < 0 && r != -ENOENT)
			goto out;
		r = 0;
	}
out:
	strv_free(old_index);
	strv_free(on_disk.v);
	if (w.zctx)
		pack_writer_release(&w);
	ZSTD_freeDCtx(d);
	if (nix && r >= 0) {
		index_free(repo->index);
		repo->index = nix;
	} else {
		index_free(nix);
	}
	repo_unlock(repo);
	if (r < 0)
		return r;
	if (ret)
		*ret = res;
	return 0;
}
