/* The file pass of a restore from a remote repository, pack by pack, as
 * restic does: the files come from the tree in groups (GROUP_FILES files
 * or GROUP_REFS chunks at most, so memory is bounded whatever the
 * snapshot holds); the main thread lists where each of their chunks is
 * (the first worker to write to a file creates it: creation is the slow
 * part of restoring many small files, and one thread doing it all kept
 * the streams waiting); sorted by pack and offset, the chunks of
 * one pack make one stream from the first to the last (split where
 * STREAM_GAP unneeded bytes lie between two), which a worker reads with
 * backend_stream(): each blob is opened as soon as its bytes are in and
 * written to every place that wants it, so a pack costs one request and a
 * worker holds one blob, never a pack. The workers read as many streams
 * at once as the repository has connections. A file is finished (size,
 * verification, owner, mode, times) by whoever writes its last chunk.
 *
 * A read that fails for good (the server is gone, retries spent) stops
 * the restore with that error: the files it touched are not reported
 * restored. A missing or damaged pack is a hole in the files that wanted
 * it, each chunk named, as restorer.c does. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup/restorer.h"
#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"

#define GROUP_FILES 16384u
#define GROUP_REFS (256u << 10)
/* The first group's files: the streams start while the next ones are
 * made, each twice the one before up to GROUP_FILES. */
#define GROUP_FIRST 4096u
/* Groups in memory at once: one being read, one queued, one being made. */
#define GROUPS_IN_FLIGHT 3u
/* Unneeded bytes a stream reads rather than make a second request. */
#define STREAM_GAP ((uint64_t)1 << 20)
#define JOB_QUEUE 64u

enum { FILE_NEW, FILE_CREATING, FILE_MADE };

struct pfile {
	struct node n;
	uint64_t serial, size;
	atomic_uint left; /* chunks not yet written (or given up) */
	atomic_bool damaged;
	atomic_bool sized; /* its last byte is written: no ftruncate() */
	atomic_int made; /* FILE_*, or -errno: it could not be created */
};

/* One chunk of a file: where it is stored and where it goes. */
struct ref {
	uint32_t pack, offset, length, raw_length;
	uint32_t file, chunk;
	uint64_t at;
};

struct group {
	struct pfile *files;
	size_t nfiles;
	struct ref *refs;
	size_t nrefs, cap;
	atomic_size_t jobs_left; /* + 1 while the main thread adds jobs */
};

/* refs [first, end) of one pack, read in one stream. */
struct job {
	struct group *g;
	size_t first, end;
};

struct packs {
	struct restorer *rs;
	struct queue jobs; /* of struct job, JOB_QUEUE */
	pthread_mutex_t lock; /* groups */
	pthread_cond_t group_room;
	unsigned groups;
	uint64_t serial;
};

struct pworker {
	struct rworker *w;
	struct packs *p;
};

/* A stream's state: the ref whose bytes come next. */
struct stream {
	struct rworker *w;
	struct group *g;
	size_t k, end;
	uint64_t pos;  /* pack offset of the next byte */
	size_t fill;   /* bytes of refs[k]'s blob so far, in w->scratch */
	int err;       /* what stopped it from here (-ECANCELED to the backend) */
};

static bool fatal_error(int r)
{
	return r != -BCDR_ERR_CORRUPT && r != -ENOENT && r != -BCDR_ERR_NOT_FOUND;
}

/* ---- a worker's files ---- */

/* Creates n's file in its directory, which w keeps open for the next:
 * a stream's files are mostly the files of one directory, as the backup
 * packed them in walk order. */
static int create_file(struct rworker *w, const struct node *n)
{
	struct restorer *rs = w->r;
	const char *slash = strrchr(n->path, '/'), *name = slash ? slash + 1 : n->path;
	int fd;

	if (!w->dir_of || !rs_same_dir(w->dir_of, n->path)) {
		if (w->dir_fd >= 0)
			close(w->dir_fd);
		free(w->dir_of);
		w->dir_of = strdup(n->path);
		w->dir_fd = w->dir_of ? rs_open_parent_of(rs, n->path, &name) : -ENOMEM;
	}
	if (w->dir_fd < 0) {
		rs_problem(rs, n->path, "cannot create: its directory: %s",
			   rs_beneath_error(w->dir_fd));
		return w->dir_fd;
	}
	fd = rs_create_file(w->dir_fd, name);
	if (fd < 0)
		rs_problem(rs, n->path, "cannot create: %s", strerror(-fd));
	return fd;
}

/* The file's fd in w: the first worker to want it creates it, the others
 * wait for that (a moment) and open it. -errno if it cannot be had, said
 * (a failed creation once, by its creator). */
static int file_fd(struct rworker *w, struct pfile *f)
{
	int made = FILE_NEW, fd;
	unsigned slot;

	for (unsigned i = 0; i < FD_CACHE; i++)
		if (w->fds[i] >= 0 && w->fd_file[i] == f->serial)
			return w->fds[i];
	if (atomic_compare_exchange_strong(&f->made, &made, FILE_CREATING)) {
		fd = create_file(w, &f->n);
		atomic_store(&f->made, fd < 0 ? fd : FILE_MADE);
	} else {
		while ((made = atomic_load(&f->made)) == FILE_CREATING)
			sched_yield();
		fd = made < 0 ? made : rs_open_beneath(w->r, f->n.path, strlen(f->n.path), O_RDWR);
		if (made == FILE_MADE && fd < 0)
			rs_problem(w->r, f->n.path, "cannot reopen: %s", rs_beneath_error(fd));
	}
	if (fd < 0)
		return fd;
	slot = w->fd_next++ % FD_CACHE;
	if (w->fds[slot] >= 0)
		close(w->fds[slot]);
	w->fds[slot] = fd;
	w->fd_file[slot] = f->serial;
	return fd;
}

static void file_fd_drop(struct rworker *w, const struct pfile *f)
{
	for (unsigned i = 0; i < FD_CACHE; i++)
		if (w->fds[i] >= 0 && w->fd_file[i] == f->serial) {
			close(w->fds[i]);
			w->fds[i] = -1;
		}
}

/* Its last step, once every chunk is written (or given up). */
static void finish_file(struct rworker *w, struct pfile *f)
{
	struct restorer *rs = w->r;
	int fd = file_fd(w, f);

	if (fd < 0)
		goto out;
	/* holes at the end, and chunks given up, still make its size */
	if (!atomic_load(&f->sized) && ftruncate(fd, (off_t)f->size) < 0)
		rs_problem(rs, f->n.path, "cannot extend: %s", strerror(errno));
	if (rs->o->verify && !atomic_load(&f->damaged)) {
		/* buf may hold the blob that other files still want */
		uint8_t *blob = w->buf;
		size_t cap = w->cap;
		int r;

		w->buf = w->vbuf;
		w->cap = w->vcap;
		r = rs_verify_file(w, fd, &f->n);
		w->vbuf = w->buf;
		w->vcap = w->cap;
		w->buf = blob;
		w->cap = cap;
		if (r < 0)
			rs_problem(rs, f->n.path, "verification failed: %s", err_str(r));
		else
			atomic_fetch_add(&rs->verified, 1);
	}
	rs_file_meta(rs, fd, &f->n);
	file_fd_drop(w, f);
out:
	atomic_fetch_add(&rs->files_done, 1);
}

static void ref_done(struct rworker *w, struct pfile *f)
{
	if (atomic_fetch_sub(&f->left, 1) == 1)
		finish_file(w, f);
}

/* The refs [k, end) that will not come: a hole each, said unless quiet
 * (the restore fails anyway). */
static void fail_refs(struct rworker *w, struct group *g, size_t k, size_t end, int r, bool quiet)
{
	for (; k < end; k++) {
		struct ref *b = &g->refs[k];
		struct pfile *f = &g->files[b->file];

		if (!quiet)
			rs_chunk_problem(w->r, &f->n, b->chunk, b->at, r);
		atomic_store(&f->damaged, true);
		ref_done(w, f);
	}
}

/* ---- a stream ---- */

static void write_ref(struct rworker *w, struct group *g, const struct ref *b, size_t len)
{
	struct pfile *f = &g->files[b->file];
	int fd = file_fd(w, f), r;

	r = fd < 0 ? fd : rs_write_sparse(fd, w->buf, len, b->at);
	if (r < 0) {
		if (fd >= 0)
			rs_problem(w->r, f->n.path, "cannot write: %s", strerror(-r));
		atomic_store(&f->damaged, true);
	} else {
		if (r == 0 && b->at + len == f->size)
			atomic_store(&f->sized, true);
		atomic_fetch_add(&w->r->bytes_done, len);
	}
	ref_done(w, f);
}

/* refs[st->k]'s bytes are in w->scratch (r 0), or will not be (r < 0):
 * opened once and written to every ref of the same blob. */
static void blob_done(struct stream *st, int r)
{
	struct rworker *w = st->w;
	struct group *g = st->g;
	const struct ref *b = &g->refs[st->k];
	const uint8_t *id = g->files[b->file].n.chunks[b->chunk];
	size_t k2 = st->k;

	while (k2 < st->end && g->refs[k2].pack == b->pack && g->refs[k2].offset == b->offset)
		k2++;
	if (r >= 0) {
		r = blob_open(w->crypto, BLOB_DATA, id, w->scratch, b->length,
			      w->scratch + b->length, w->buf, b->raw_length, w->dctx, true);
		if (r >= 0 && (uint32_t)r != b->raw_length)
			r = -BCDR_ERR_CORRUPT;
	}
	for (size_t k = st->k; k < k2; k++) {
		const struct ref *o = &g->refs[k];
		struct pfile *f = &g->files[o->file];

		/* one place, one blob: another ID there is a crafted index */
		if (r >= 0 && memcmp(f->n.chunks[o->chunk], id, 32) == 0)
			write_ref(w, g, o, (size_t)r);
		else
			fail_refs(w, g, k, k + 1, r < 0 ? r : -BCDR_ERR_CORRUPT, false);
	}
	st->k = k2;
	st->fill = 0;
}

static int on_bytes(const uint8_t *data, size_t len, void *ctx)
{
	struct stream *st = ctx;

	while (len && st->k < st->end) {
		const struct ref *b = &st->g->refs[st->k];
		uint64_t end = (uint64_t)b->offset + b->length;
		size_t take;

		if (st->pos < b->offset) { /* a gap between blobs */
			take = b->offset - st->pos < len ? (size_t)(b->offset - st->pos) : len;
		} else if (st->pos > b->offset && st->fill == 0) {
			blob_done(st, -BCDR_ERR_CORRUPT); /* overlaps the one before */
			continue;
		} else {
			take = end - st->pos < len ? (size_t)(end - st->pos) : len;
			memcpy(st->w->scratch + st->fill, data, take);
			st->fill += take;
		}
		data += take;
		len -= take;
		st->pos += take;
		if (st->fill && st->fill == b->length)
			blob_done(st, 0);
	}
	return 0;
}

static void run_job(struct rworker *w, const struct job *j)
{
	struct restorer *rs = w->r;
	struct group *g = j->g;
	struct stream st = { .w = w, .g = g, .k = j->first, .end = j->end };
	uint64_t start = g->refs[j->first].offset, end = start;
	size_t most = 0, most_raw = 0;
	char name[128];
	int r;

	if ((r = atomic_load(&rs->fatal)) < 0)
		return fail_refs(w, g, j->first, j->end, r, true);
	for (size_t k = j->first; k < j->end; k++) {
		const struct ref *b = &g->refs[k];

		if ((uint64_t)b->offset + b->length > end)
			end = (uint64_t)b->offset + b->length;
		most = b->length > most ? b->length : most;
		most_raw = b->raw_length > most_raw ? b->raw_length : most_raw;
	}
	if ((r = bytes_reserve(&w->scratch, &w->scap, 2 * most)) < 0 ||
	    (r = bytes_reserve(&w->buf, &w->cap, most_raw + 1)) < 0) {
		atomic_compare_exchange_strong(&rs->fatal, &(int){ 0 }, r);
		return fail_refs(w, g, j->first, j->end, r, true);
	}
	st.pos = start;
	repo_object_name("data", rs->repo->index->packs[g->refs[j->first].pack], name,
			 sizeof(name));
	r = backend_stream(rs->repo->backend, name, start, end - start, on_bytes, &st);
	if (r == -ENOENT)
		r = -BCDR_ERR_NOT_FOUND;
	if (r < 0 && fatal_error(r))
		atomic_compare_exchange_strong(&rs->fatal, &(int){ 0 }, r);
	if (st.k < j->end)
		fail_refs(w, g, st.k, j->end, r < 0 ? r : -BCDR_ERR_CORRUPT,
			  r < 0 && fatal_error(r));
}

/* ---- groups and the queue ---- */

static void group_free(struct group *g)
{
	for (size_t i = 0; i < g->nfiles; i++)
		node_release(&g->files[i].n);
	free(g->files);
	free(g->refs);
	free(g);
}

/* Drops a reference to g: the last frees it and makes room for a group. */
static void group_put(struct packs *p, struct group *g)
{
	if (atomic_fetch_sub(&g->jobs_left, 1) != 1)
		return;
	group_free(g);
	pthread_mutex_lock(&p->lock);
	p->groups--;
	pthread_cond_signal(&p->group_room);
	pthread_mutex_unlock(&p->lock);
}

static void job_push(struct packs *p, struct job j)
{
	atomic_fetch_add(&j.g->jobs_left, 1);
	queue_push(&p->jobs, &j);
}

static void *pworker_main(void *arg)
{
	struct pworker *pw = arg;
	struct job j;

	while (queue_pop(&pw->p->jobs, &j)) {
		pw->w->job = &j;
		run_job(pw->w, &j);
		pw->w->job = NULL;
		group_put(pw->p, j.g);
	}
	return NULL;
}

static int ref_cmp(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;

	if (x->pack != y->pack)
		return x->pack < y->pack ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

/* The refs of the group's file f, whose chunks the index locates. */
static int plan_chunks(struct restorer *rs, struct group *g, struct pfile *f)
{
	uint64_t off = 0;

	for (uint32_t i = 0; i < f->n.nchunks; i++) {
		struct index_blob bc;
		const struct index_blob *b =
			index_lookup(rs->repo->index, f->n.chunks[i], &bc) >= 0 ? &bc : NULL;
		int bad = !b || b->pack == INDEX_NO_PACK ? -BCDR_ERR_NOT_FOUND
			  : b->type != BLOB_DATA || b->length > BLOB_MAX_STORED ||
					  b->length < CRYPTO_OVERHEAD ||
					  b->raw_length > BLOB_MAX_RAW
				  ? -BCDR_ERR_CORRUPT
				  : 0;

		if (bad) {
			rs_chunk_problem(rs, &f->n, i, off, bad);
			atomic_store(&f->damaged, true);
			off += b ? b->raw_length : 0;
			continue;
		}
		if (g->nrefs == g->cap) {
			size_t cap = g->cap ? 2 * g->cap : 4096;
			struct ref *n = realloc(g->refs, cap * sizeof(*n));

			if (!n)
				return -ENOMEM;
			g->refs = n;
			g->cap = cap;
		}
		g->refs[g->nrefs++] = (struct ref){
			.pack = b->pack, .offset = b->offset, .length = b->length,
			.raw_length = b->raw_length, .file = (uint32_t)(f - g->files), .chunk = i,
			.at = off,
		};
		off += b->raw_length;
		atomic_fetch_add(&f->left, 1);
	}
	f->size = off;
	return 0;
}

/* Lists the chunks of the file n (taken); a file with none to read is
 * created and finished at once (by mw, the main thread's worker). */
static int plan_file(struct packs *p, struct rworker *mw, struct group *g, struct node *n)
{
	struct restorer *rs = p->rs;
	struct pfile *f = &g->files[g->nfiles++];
	int r;

	atomic_fetch_add(&rs->nfiles, 1);
	atomic_fetch_add(&rs->bytes_total, n->size);
	*f = (struct pfile){ .n = *n, .serial = ++p->serial };
	memset(n, 0, sizeof(*n));
	r = plan_chunks(rs, g, f);
	if (r >= 0 && atomic_load(&f->left) == 0)
		finish_file(mw, f);
	return r;
}

/* The group's streams onto the queue; g is the main thread's no more. */
static void group_start(struct packs *p, struct group *g)
{
	qsort(g->refs, g->nrefs, sizeof(*g->refs), ref_cmp);
	for (size_t i = 0; i < g->nrefs;) {
		uint64_t end = (uint64_t)g->refs[i].offset + g->refs[i].length;
		size_t k = i + 1;

		while (k < g->nrefs && g->refs[k].pack == g->refs[i].pack &&
		       g->refs[k].offset <= end + STREAM_GAP) {
			uint64_t e = (uint64_t)g->refs[k].offset + g->refs[k].length;

			end = e > end ? e : end;
			k++;
		}
		job_push(p, (struct job){ .g = g, .first = i, .end = k });
		i = k;
	}
	group_put(p, g);
}

/* A new group, once fewer than GROUPS_IN_FLIGHT are. */
static struct group *group_new(struct packs *p)
{
	struct group *g = calloc(1, sizeof(*g));

	if (!g || !(g->files = calloc(GROUP_FILES, sizeof(*g->files)))) {
		free(g);
		return NULL;
	}
	atomic_store(&g->jobs_left, 1);
	pthread_mutex_lock(&p->lock);
	while (p->groups >= GROUPS_IN_FLIGHT)
		pthread_cond_wait(&p->group_room, &p->lock);
	p->groups++;
	pthread_mutex_unlock(&p->lock);
	return g;
}

/* The main thread: the tree's files into groups, each group's streams to
 * the workers. */
static int plan_files(struct packs *p, struct rworker *mw, const struct snapshot *s)
{
	struct restorer *rs = p->rs;
	struct tree_reader *tr;
	struct group *g = NULL;
	struct node *n;
	size_t most = GROUP_FIRST; /* files in this group */
	int r = repo_tree_open(rs->repo, s, &tr);

	while (r >= 0 && !atomic_load(&rs->fatal) && (r = tree_reader_next(tr, &n)) == 1) {
		if (n->type != NODE_FILE || !rs_selected(rs->o->include, n))
			continue;
		if (!g && !(g = group_new(p))) {
			r = -ENOMEM;
			break;
		}
		r = plan_file(p, mw, g, n);
		if (g->nfiles == most || g->nrefs >= GROUP_REFS) {
			group_start(p, TAKE_PTR(g));
			most = most * 2 < GROUP_FILES ? most * 2 : GROUP_FILES;
		}
	}
	if (g)
		group_start(p, g);
	repo_tree_close(tr);
	return r;
}

int restore_by_packs(struct restorer *rs, const struct snapshot *s, struct rworker *w,
		     int nthreads)
{
	struct packs p = { .rs = rs };
	struct pworker pw[MAX_THREADS];
	struct rworker mw = { .r = rs, .dir_fd = -1 };
	int started = 0, r;

	for (int k = 0; k < FD_CACHE; k++)
		mw.fds[k] = -1;
	for (int i = 0; i < nthreads; i++)
		w[i].dir_fd = -1;
	if (crypto_ctx_new(&rs->repo->key, &mw.crypto) < 0)
		return -ENOMEM;
	if (queue_init(&p.jobs, sizeof(struct job), JOB_QUEUE) < 0) {
		crypto_ctx_free(mw.crypto);
		return -ENOMEM;
	}
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.group_room, NULL);
	for (int i = 0; i < nthreads; i++) {
		pw[i] = (struct pworker){ .w = &w[i], .p = &p };
		if (pthread_create(&w[i].thread, NULL, pworker_main, &pw[i]) != 0)
			break;
		pthread_setname_np(w[i].thread, "bcdr-restore");
		started++;
	}
	r = started ? plan_files(&p, &mw, s) : -ENOMEM;
	atomic_store(&rs->walk_done, true);
	queue_close(&p.jobs);
	for (int i = 0; i < started; i++)
		pthread_join(w[i].thread, NULL);
	for (int i = 0; i < nthreads; i++) {
		free(w[i].vbuf);
		free(w[i].dir_of);
		if (w[i].dir_fd >= 0)
			close(w[i].dir_fd);
	}
	free(mw.dir_of);
	if (mw.dir_fd >= 0)
		close(mw.dir_fd);
	crypto_ctx_free(mw.crypto);
	free(mw.vbuf);
	free(mw.buf);
	free(mw.scratch);
	queue_destroy(&p.jobs);
	pthread_mutex_destroy(&p.lock);
	pthread_cond_destroy(&p.group_room);
	if (r >= 0 && atomic_load(&rs->fatal) < 0)
		r = atomic_load(&rs->fatal);
	return r;
}
