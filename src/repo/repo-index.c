/* The repository's catalogue (repo/repo.h): its index files, loaded
 * into the in-memory index and saved for the new packs, and its snapshot
 * objects, listed, found, saved and removed. */
#include "repo/repo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/strv.h"

/* ---- index ---- */

struct name_list {
	char **v;
	size_t n, cap;
};

static int collect_name(const char *name, uint64_t size, void *userdata)
{
	struct name_list *l = userdata;

	(void)size;
	if (strlen(name) != 64)
		return 0;
	if (l->n + 2 > l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		char **nv = realloc(l->v, ncap * sizeof(char *));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n] = strdup(name);
	if (!l->v[l->n])
		return -ENOMEM;
	l->v[++l->n] = NULL;
	return 0;
}

static int list_names(struct repo *repo, const char *dir, char ***ret, size_t *ret_n)
{
	struct name_list l = {};
	int r = repo->backend->ops->list(repo->backend, dir, collect_name, &l);

	if (r < 0) {
		strv_free(l.v);
		return r;
	}
	if (!l.v && !(l.v = calloc(1, sizeof(char *))))
		return -ENOMEM;
	*ret = l.v;
	if (ret_n)
		*ret_n = l.n;
	return 0;
}

static int add_index_file(size_t i, const uint8_t *plain, size_t len, void *userdata)
{
	(void)i;
	return index_decode(userdata, plain, len);
}

int repo_load_index(struct repo *repo)
{
	_cleanup_strv_free_ char **names = NULL;
	struct index *ix;
	size_t n;
	int r = list_names(repo, "index", &names, &n);

	if (r < 0)
		return r;
	ix = index_new();
	if (!ix)
		return -ENOMEM;
	r = repo_load_objects(repo, OBJ_INDEX, "index", names, n, INDEX_MAX_PLAIN, add_index_file,
			      ix);
	if (r < 0) {
		index_free(ix);
		return r;
	}
	index_free(repo->index);
	repo->index = ix;
	strv_free(repo->index_files);
	repo->index_files = TAKE_PTR(names);
	return 0;
}

/* ---- snapshots ---- */

void snapshots_free(struct snapshot **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snapshot_free(v[i]);
	free(v);
}

static int cmp_snapshot_time(const void *a, const void *b)
{
	const struct snapshot *x = *(struct snapshot *const *)a, *y = *(struct snapshot *const *)b;

	return x->time < y->time ? -1 : x->time > y->time;
}

/* The snapshot in plain, its ID from its object's name. */
static int decode_snapshot(const char *name, const uint8_t *plain, size_t len,
			   struct snapshot **ret)
{
	int r = snapshot_decode(plain, len, ret);

	if (r >= 0)
		hex_decode(name, (*ret)->id, 32);
	return r;
}

static int load_snapshot(struct repo *repo, const char *name, struct snapshot **ret)
{
	_cleanup_free_ uint8_t *plain = NULL;
	size_t len;
	int r = repo_load_object(repo, OBJ_SNAPSHOT, "snapshots", name, SNAPSHOT_MAX_JSON, &plain,
				 &len);

	return r < 0 ? r : decode_snapshot(name, plain, len, ret);
}

struct snapshot_list {
	char **names;
	struct snapshot **v;
};

static int add_snapshot(size_t i, const uint8_t *plain, size_t len, void *userdata)
{
	struct snapshot_list *l = userdata;

	return decode_snapshot(l->names[i], plain, len, &l->v[i]);
}

int repo_list_snapshots(struct repo *repo, struct snapshot ***ret, size_t *ret_n)
{
	_cleanup_strv_free_ char **names = NULL;
	struct snapshot **v;
	size_t n;
	int r = list_names(repo, "snapshots", &names, &n);

	if (r < 0)
		return r;
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	r = repo_load_objects(repo, OBJ_SNAPSHOT, "snapshots", names, n, SNAPSHOT_MAX_JSON,
			      add_snapshot, &(struct snapshot_list){ .names = names, .v = v });
	if (r < 0) {
		snapshots_free(v, n);
		return r;
	}
	qsort(v, n, sizeof(*v), cmp_snapshot_time);
	*ret = v;
	*ret_n = n;
	return 0;
}

int repo_find_snapshot(struct repo *repo, const char *spec, struct snapshot **ret)
{
	_cleanup_strv_free_ char **names = NULL;
	const char *match = NULL;
	size_t n, plen = strlen(spec);
	int r;

	if (strcmp(spec, "latest") == 0) {
		struct snapshot **v;

		r = repo_list_snapshots(repo, &v, &n);
		if (r < 0)
			return r;
		if (n == 0) {
			free(v);
			return -BCDR_ERR_NOT_FOUND;
		}
		*ret = v[n - 1];
		v[n - 1] = NULL;
		snapshots_free(v, n);
		return 0;
	}
	if (plen == 0 || plen > 64)
		return -BCDR_ERR_NOT_FOUND;
	r = list_names(repo, "snapshots", &names, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (strncmp(names[i], spec, plen) == 0) {
			if (match)
				return -BCDR_ERR_AMBIGUOUS;
			match = names[i];
		}
	if (!match)
		return -BCDR_ERR_NOT_FOUND;
	return load_snapshot(repo, match, ret);
}

int repo_save_snapshot(struct repo *repo, struct snapshot *s)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = snapshot_encode(s, &text, &len);

	if (r < 0)
		return r;
	return repo_save_object(repo, OBJ_SNAPSHOT, "snapshots", text, len, s->id);
}

int repo_remove_snapshot(struct repo *repo, const uint8_t id[32])
{
	char name[128];

	repo_object_name("snapshots", id, name, sizeof(name));
	return repo->backend->ops->remove(repo->backend, name);
}

/* ---- index files ---- */

/* Blobs per index file at most: a reader holds one file's bytes (sealed
 * and plain) at a time, so a first backup of millions of files does not
 * write, nor every later command read, one file of hundreds of MB. */
#define INDEX_FILE_BLOBS 32768u

/* repo_save_index_of()'s index files, saved by parallel threads: file i
 * holds the packs [first[i], first[i + 1]). */
struct index_saver {
	struct repo *repo;
	const struct index *ix;
	const size_t *first; /* nfiles + 1 */
	uint8_t (*ids)[32];  /* nfiles */
};

static int save_index_file(size_t i, struct crypto_ctx *c, void *userdata)
{
	struct index_saver *s = userdata;
	_cleanup_free_ bool *keep = calloc(s->ix->npacks, sizeof(*keep));
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	int r;

	if (!keep)
		return -ENOMEM;
	for (size_t p = s->first[i]; p < s->first[i + 1]; p++)
		keep[p] = true;
	r = index_encode(s->ix, keep, &data, &len);
	return r < 0 ? r : repo_save_object_with(s->repo, c, OBJ_INDEX, "index", data, len, s->ids[i]);
}

int repo_save_index_of(struct repo *repo, struct index *ix, size_t first_pack,
		       uint8_t (**ret_ids)[32], size_t *ret_n)
{
	_cleanup_free_ size_t *count = NULL, *first = NULL;
	_cleanup_free_ uint8_t(*ids)[32] = NULL;
	struct index_saver s = { .repo = repo, .ix = ix };
	size_t nfiles = 0;
	int r;

	if (ret_ids) {
		*ret_ids = NULL;
		*ret_n = 0;
	}
	if (!ix || first_pack >= ix->npacks)
		return 0;
	count = calloc(ix->npacks, sizeof(*count));
	first = calloc(ix->npacks - first_pack + 1, sizeof(*first));
	if (!count || !first)
		return -ENOMEM;
	index_pack_counts(ix, first_pack, count);
	/* files of at most INDEX_FILE_BLOBS blobs (a larger pack alone),
	 * packs without blobs in none */
	for (size_t p = first_pack; p < ix->npacks;) {
		size_t sum = 0, start;

		while (p < ix->npacks && count[p] == 0)
			p++;
		start = p;
		for (; p < ix->npacks && (sum == 0 || sum + count[p] <= INDEX_FILE_BLOBS); p++)
			sum += count[p];
		if (sum)
			first[nfiles++] = start;
		first[nfiles] = p;
	}
	if (!nfiles)
		return 0;
	if (!(ids = malloc(nfiles * 32)))
		return -ENOMEM;
	s.first = first;
	s.ids = ids;
	if ((r = repo_parallel(repo, nfiles, save_index_file, &s)) < 0)
		return r;
	if (ret_ids) {
		*ret_ids = TAKE_PTR(ids);
		*ret_n = nfiles;
	}
	return 0;
}

int repo_save_index(struct repo *repo, size_t first_pack)
{
	return repo_save_index_of(repo, repo->index, first_pack, NULL, NULL);
}
