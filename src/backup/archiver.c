/* backup_run(): the walk and the pipeline that stores files.
 *
 * Three kinds of threads overlap. A walker (started by backup_walk_start(),
 * before the repository is open: the key derivation then runs on the other
 * core) lstat()s the paths and appends their nodes to a window of the
 * tree, a directory at a time, in path order. The calling thread follows
 * it through the published nodes and reads the parent snapshot's node
 * stream alongside (both are in path order: a merge, no map of the
 * parent): files the parent has unchanged take the parent's chunk lists,
 * the others go to a bounded queue. One worker per CPU takes files from it
 * and does the rest for each: read, chunk, ID, dedup against the shared
 * index, compress, encrypt and append to its own pack, written out whole
 * when full. The calling thread also encodes the front of the window into
 * tree blobs as soon as its files are done, and releases those nodes; the
 * walker waits when the window is full. Memory is bounded by the window,
 * the queue, one read buffer and one pack per worker, and the index, not
 * by the number of files. At the end an index file for the new packs,
 * then the snapshot: the commit point. */
#include "backup/archiver.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/parallel.h"
#include "lib/strv.h"
#include "repo/orphans.h"

/* ---- progress ---- */

static void fill_progress(struct archiver *a, struct backup_progress *p)
{
	p->files_done = atomic_load(&a->files_done);
	p->files_seen = atomic_load(&a->files_seen);
	p->bytes_done = atomic_load(&a->bytes_done);
	p->bytes_seen = atomic_load(&a->bytes_seen);
	p->walk_done = atomic_load(&a->walk_done);
	p->elapsed = now_monotonic() - a->start;
}

static void *progress_main(void *arg)
{
	struct archiver *a = arg;

	pthread_mutex_lock(&a->plock);
	while (!a->pstop) {
		struct timespec ts;
		struct backup_progress p;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&a->pcond, &a->plock, &ts);
		if (a->pstop)
			break;
		fill_progress(a, &p);
		a->o->progress(&p, a->o->userdata);
	}
	pthread_mutex_unlock(&a->plock);
	return NULL;
}

/* ---- putting it together ---- */

/* The paths in walk order, so the whole node stream is in it. */
static int cmp_walk(const void *x, const void *y)
{
	return tree_path_cmp(*(char *const *)x, *(char *const *)y);
}

static bool same_paths(char **a, char **b)
{
	for (; a && *a && b && *b; a++, b++)
		if (strcmp(*a, *b) != 0)
			return false;
	return (!a || !*a) && (!b || !*b);
}

/* The parent among the snapshots v: the latest of this host, paths and job. */
static int load_parent(struct archiver *a, struct snapshot *s, const char *host,
		       struct snapshot **v, size_t n)
{
	int r = 0;

	for (size_t i = n; i-- > 0;) {
		if (strcmp(v[i]->host, host) != 0 || !same_paths(v[i]->paths, a->paths))
			continue;
		if ((a->o->job || v[i]->job) &&
		    (!a->o->job || !v[i]->job || strcmp(a->o->job, v[i]->job) != 0))
			continue;
		a->parent_snap = TAKE_PTR(v[i]);
		r = repo_tree_open(a->repo, a->parent_snap, &a->parent);
		if (r >= 0) {
			/* Read along with the walk, while the workers insert;
			 * its nodes are only matched by path (no set of them). */
			repo_tree_set_index_lock(a->parent, &a->ixlock);
			tree_reader_merge_only(a->parent);
			r = tree_reader_next(a->parent, &a->pnode);
		}
		if (r >= 0) {
			if (r == 0)
				a->pnode = NULL;
			r = 0;
			s->has_parent = true;
			memcpy(s->parent, a->parent_snap->id, 32);
		}
		break;
	}
	return r;
}

/* What the start reads besides the parent's tree, loaded together. */
struct catalogue {
	struct repo *repo;
	struct snapshot **snaps;
	size_t nsnaps;
	struct pack_list *packs; /* data/, for the orphans */
};

static int load_catalogue_part(size_t i, void *state, void *userdata)
{
	struct catalogue *c = userdata;

	(void)state;
	switch (i) {
	case 0:
		return repo_load_index(c->repo);
	case 1:
		return repo_list_snapshots(c->repo, &c->snaps, &c->nsnaps);
	default:
		return repo_list_packs(c->repo, c->packs);
	}
}

/* The index, the snapshots and the list of packs, read at once: on a
 * remote store each is a listing and as many objects, each a round trip. */
static int load_catalogue(struct repo *repo, struct snapshot ***ret, size_t *ret_n,
			  struct pack_list *packs)
{
	static const struct parallel_ops ops = { .turn = load_catalogue_part };
	struct catalogue c = { .repo = repo, .packs = packs };
	int r = parallel_for(3, 3, &ops, &c);

	if (r < 0) {
		snapshots_free(c.snaps, c.nsnaps);
		pack_list_release(packs);
		return r;
	}
	*ret = c.snaps;
	*ret_n = c.nsnaps;
	return 0;
}

/* After a failure (a full disk, say) the packs this run wrote are
 * referenced by nothing: give the space back now rather than at the next
 * prune. */
static void remove_new_packs(struct archiver *a)
{
	struct index *ix = a->repo->index;

	for (size_t p = a->npacks_before; ix && p < ix->npacks; p++) {
		char name[128];

		repo_object_name("data", ix->packs[p], name, sizeof(name));
		a->repo->backend->ops->remove(a->repo->backend, name);
	}
}

static int resolve_paths(char **in, char ***ret)
{
	size_t n = 0, k = 0;
	char **v;

	for (char **p = in; p && *p; p++)
		n++;
	if (n == 0)
		return -EINVAL;
	v = calloc(n + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		v[i] = realpath(in[i], NULL);
		if (!v[i]) {
			int r = -errno;

			strv_free(v);
			return r;
		}
	}
	qsort(v, n, sizeof(char *), cmp_walk);
	/* A path inside another is already covered by it. */
	for (size_t i = 0; i < n; i++) {
		size_t l = k ? strlen(v[k - 1]) : 0;

		if (k && (strcmp(v[k - 1], "/") == 0 ||
			  (strncmp(v[i], v[k - 1], l) == 0 && (v[i][l] == '/' || v[i][l] == 0)))) {
			free(v[i]);
			continue;
		}
		v[k++] = v[i];
	}
	v[k] = NULL;
	*ret = v;
	return 0;
}

/* "/name" after the walked paths, so the snapshot lists it and the next
 * dump of the same job finds this one as its parent. */
static int add_stream_path(struct archiver *a, const char *name)
{
	size_t n = 0;
	char **v;

	if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 || strlen(name) > 255)
		return -EINVAL;
	while (a->paths[n])
		n++;
	v = realloc(a->paths, (n + 2) * sizeof(char *));
	if (!v)
		return -ENOMEM;
	a->paths = v;
	if (asprintf(&v[n], "/%s", name) < 0) {
		v[n] = NULL;
		return -ENOMEM;
	}
	v[n + 1] = NULL;
	return 0;
}

/* Stops the walker (if it is still going) and waits for it. */
static void walker_join(struct archiver *a, bool stop)
{
	if (!a->walker_started)
		return;
	if (stop)
		archiver_set_error(a, -ECANCELED);
	pthread_mutex_lock(&a->tlock); /* a walker waiting for room sees the error */
	pthread_cond_broadcast(&a->room);
	pthread_mutex_unlock(&a->tlock);
	pthread_join(a->walker, NULL);
	a->walker_started = false;
}

void backup_walk_free(struct backup_walk *w)
{
	struct archiver *a = (struct archiver *)w;

	if (!a)
		return;
	walker_join(a, true);
	tree_free(a->tree);
	repo_tree_close(a->parent);
	snapshot_free(a->parent_snap);
	free(a->path);
	strv_free(a->paths);
	pathmap_release(&a->hardlinks);
	pathmap_release(&a->ancestors);
	for (size_t i = 0; i < a->n_anc; i++)
		free(a->anc_keys[i]);
	free(a->anc_keys);
	for (size_t i = 0; i < a->n_hl_keys; i++) {
		free(a->hl_keys[i]);
		free(a->hl_paths[i]);
	}
	free(a->hl_keys);
	free(a->hl_paths);
	for (size_t i = a->jhead; i < a->njobs; i++)
		archiver_job_free(a->jobs[i]);
	free(a->jobs);
	archiver_dirs_close(a);
	free(a->enc);
	free(a->tree_ids);
	if (a->tree_pack_init)
		pack_writer_release(&a->tree_pack);
	pthread_mutex_destroy(&a->tlock);
	pthread_cond_destroy(&a->tcond);
	pthread_cond_destroy(&a->room);
	queue_destroy(&a->files);
	pthread_mutex_destroy(&a->ixlock);
	pthread_mutex_destroy(&a->wlock);
	pthread_cond_destroy(&a->wcond);
	pack_writer_release(&a->wslot);
	crypto_ctx_free(a->wcrypto);
	pthread_mutex_destroy(&a->plock);
	pthread_cond_destroy(&a->pcond);
	free(a);
}

int backup_walk_start(const struct backup_options *o, struct backup_walk **ret)
{
	struct archiver *a = calloc(1, sizeof(*a));
	_cleanup_(backup_walk_freep) struct backup_walk *w = (struct backup_walk *)a;
	int r;

	if (!a)
		return -ENOMEM;
	a->o = o;
	pthread_mutex_init(&a->tlock, NULL);
	pthread_cond_init(&a->tcond, NULL);
	pthread_cond_init(&a->room, NULL);
	pthread_mutex_init(&a->ixlock, NULL);
	pthread_mutex_init(&a->wlock, NULL);
	pthread_cond_init(&a->wcond, NULL);
	pthread_mutex_init(&a->plock, NULL);
	pthread_cond_init(&a->pcond, NULL);
	a->start = now_monotonic();
	a->stream_node = SIZE_MAX;
	if ((r = queue_init(&a->files, sizeof(struct file_job *), QUEUE_LEN)) < 0)
		return r;
	if (!(a->tree = tree_new()))
		return -ENOMEM;
	if ((o->paths && o->paths[0]) || !o->stream) {
		if ((r = resolve_paths(o->paths, &a->paths)) < 0)
			return r;
	} else if (!(a->paths = calloc(1, sizeof(char *)))) {
		return -ENOMEM;
	}
	if (o->stream && (r = add_stream_path(a, o->stream->filename)) < 0)
		return r;
	if (pthread_create(&a->walker, NULL, archiver_walker_main, a) != 0)
		return -EAGAIN;
	pthread_setname_np(a->walker, "bcdr-walk"); /* for top -H */
	a->walker_started = true;
	*ret = TAKE_PTR(w);
	return 0;
}

static int run_pipeline(struct archiver *a)
{
	struct worker workers[MAX_THREADS] = {};
	int nthreads = archiver_threads(a->o->threads), started = 0, r = 0;
	pthread_t progress;
	bool progress_started = false;

	r = crypto_ctx_new(&a->repo->key, &a->wcrypto);
	if (r >= 0 && pthread_create(&a->writer, NULL, archiver_writer_main, a) == 0) {
		a->writer_started = true;
		pthread_setname_np(a->writer, "bcdr-write");
	}
	for (int i = 0; i < nthreads && r >= 0; i++) {
		struct worker *wk = &workers[i];

		wk->a = a;
		r = crypto_ctx_new(&a->repo->key, &wk->crypto);
		if (r >= 0)
			r = pack_writer_init(&wk->pack, a->repo->compression);
		if (r >= 0 && !(wk->buf = malloc(a->repo->chunker.max)))
			r = -ENOMEM;
		if (r >= 0 && pthread_create(&wk->thread, NULL, archiver_worker_main, wk) != 0)
			r = -EAGAIN;
		if (r >= 0) {
			pthread_setname_np(wk->thread, "bcdr-pack");
			started++;
		}
	}
	if (r >= 0 && a->o->progress &&
	    pthread_create(&progress, NULL, progress_main, a) == 0)
		progress_started = true;
	if (r >= 0)
		r = archiver_follow_walk(a);
	if (r < 0)
		archiver_set_error(a, r);
	walker_join(a, false);
	atomic_store(&a->walk_done, true);
	archiver_queue_close(a);
	for (int i = 0; i < started; i++)
		pthread_join(workers[i].thread, NULL);
	if (a->writer_started) {
		pthread_mutex_lock(&a->wlock);
		a->wclosed = true;
		pthread_cond_broadcast(&a->wcond);
		pthread_mutex_unlock(&a->wlock);
		pthread_join(a->writer, NULL);
		a->writer_started = false;
	}
	if (progress_started) {
		struct backup_progress p;

		pthread_mutex_lock(&a->plock);
		a->pstop = true;
		pthread_cond_signal(&a->pcond);
		pthread_mutex_unlock(&a->plock);
		pthread_join(progress, NULL);
		fill_progress(a, &p);
		a->o->progress(&p, a->o->userdata);
	}
	for (int i = 0; i < nthreads; i++) {
		crypto_ctx_free(workers[i].crypto);
		if (workers[i].pack.zctx)
			pack_writer_release(&workers[i].pack);
		free(workers[i].buf);
	}
	return atomic_load(&a->error);
}

static int backup_walked(struct repo *repo, struct archiver *a, struct snapshot **ret)
{
	_cleanup_(snapshot_freep) struct snapshot *s = calloc(1, sizeof(*s));
	const struct backup_options *o = a->o;
	char host[256] = "";
	bool index_saved = false;
	unsigned adopted = 0;
	struct snapshot **snaps;
	struct pack_list packs = {};
	size_t nsnaps;
	int r;

	if (!s)
		return -ENOMEM;
	a->repo = repo;
	s->time = now_realtime();
	gethostname(host, sizeof(host) - 1);
	if (!(s->host = strdup(o->host ? o->host : host)) || (o->job && !(s->job = strdup(o->job))) ||
	    !(s->paths = strv_copy(a->paths)))
		return -ENOMEM;
	if (o->tags && !(s->tags = strv_copy(o->tags)))
		return -ENOMEM;
	r = repo_lock(repo, false);
	if (r >= 0 && (r = load_catalogue(repo, &snaps, &nsnaps, &packs)) >= 0) {
		r = load_parent(a, s, s->host, snaps, nsnaps);
		snapshots_free(snaps, nsnaps);
	}
	if (r < 0) {
		pack_list_release(&packs);
		repo_unlock(repo);
		return r;
	}
	a->npacks_before = repo->index->npacks;
	/* Packs an interrupted backup uploaded are used, not sent again. */
	r = repo_adopt_orphans(repo, &packs, &adopted);
	pack_list_release(&packs);
	if (r >= 0 && (r = pack_writer_init(&a->tree_pack, repo->compression)) >= 0)
		a->tree_pack_init = true;
	if (r >= 0)
		r = run_pipeline(a);
	if (o->stream && o->stream->finish)
		r = o->stream->finish(r, o->stream->userdata);
	/* The rest of the window, every job done now. */
	if (r >= 0)
		r = archiver_encode_front(a, a->base + a->tree->n);
	if (r >= 0 && a->released != a->base + a->tree->n)
		r = -EIO; /* a job left undone: cannot happen once the workers are joined */
	if (r >= 0)
		r = archiver_cut_tree(a, true);
	if (r >= 0)
		r = archiver_flush_pack(a, repo->crypto, &a->tree_pack);
	if (r >= 0) {
		s->tree = TAKE_PTR(a->tree_ids);
		s->ntree = a->ntree;
	}
	repo_tree_close(TAKE_PTR(a->parent));
	if (r >= 0) {
		r = repo_save_index(repo, a->npacks_before);
		/* Once indexed, other backups may use these packs; an index
		 * file saved before a later one failed may list them too. */
		index_saved = true;
	}
	a->sum.bytes_processed = atomic_load(&a->bytes_seen);
	a->sum.bytes_added = atomic_load(&a->bytes_added);
	a->sum.bytes_stored = atomic_load(&a->bytes_stored);
	a->sum.duration_s = (double)(now_monotonic() - a->start) / USEC_PER_SEC;
	s->summary = a->sum;
	if (r >= 0)
		r = repo_save_snapshot(repo, s);
	/* A remote store keeps them for the next backup to adopt: after a
	 * network failure, deleting would only wait for the same failure. */
	if (r < 0 && !index_saved && !repo->backend->ops->flush)
		remove_new_packs(a);
	repo_unlock(repo);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return (*ret)->summary.errors ? -BCDR_ERR_PARTIAL : 0;
}

int backup_run(struct repo *repo, const struct backup_options *o, struct snapshot **ret)
{
	_cleanup_(backup_walk_freep) struct backup_walk *own = NULL;
	struct archiver *a;
	int r;

	if (o->walk) {
		a = (struct archiver *)o->walk;
	} else {
		if ((r = backup_walk_start(o, &own)) < 0)
			return r;
		a = (struct archiver *)own;
	}
	if (a->repo) /* one run per walk */
		return -EINVAL;
	r = backup_walked(repo, a, ret);
	walker_join(a, true);
	return r;
}

