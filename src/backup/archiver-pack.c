/* The archiver's workers: each takes files from the queue and reads,
 * chunks, IDs, dedups against the shared index, compresses, encrypts and
 * appends them to its own pack, which the writer thread stores when full.
 * A stream (a database dump) is read by one worker and its chunks stored by
 * helper threads. See archiver.c for how the threads overlap. */
#include "backup/archiver.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cleanup.h"

/* ---- packs ---- */

/* Writes the worker's pack and points its blobs at it in the index. */
int archiver_flush_pack(struct archiver *a, struct crypto_ctx *c, struct pack_writer *w)
{
	uint8_t id[32];
	uint32_t pos;
	int r;

	if (w->n == 0)
		return 0;
	if ((r = repo_save_pack(a->repo, c, w, id)) < 0)
		return r;
	atomic_fetch_add(&a->bytes_stored, w->len);
	pthread_mutex_lock(&a->ixlock);
	r = index_add_pack(a->repo->index, id, &pos);
	for (size_t i = 0; r >= 0 && i < w->n; i++)
		r = index_set_location(a->repo->index, pos, &w->entries[i]);
	pthread_mutex_unlock(&a->ixlock);
	pack_writer_reset(w);
	return r < 0 ? r : 0;
}

static void swap_pack_buffers(struct pack_writer *x, struct pack_writer *y)
{
	struct pack_writer t = *x;

	x->data = y->data;
	x->len = y->len;
	x->cap = y->cap;
	x->entries = y->entries;
	x->n = y->n;
	x->cap_entries = y->cap_entries;
	y->data = t.data;
	y->len = t.len;
	y->cap = t.cap;
	y->entries = t.entries;
	y->n = t.n;
	y->cap_entries = t.cap_entries;
}

/* Gives the full pack w to the writer thread (waiting while the previous
 * one is written); w comes back empty. */
static int hand_off(struct archiver *a, struct pack_writer *w)
{
	pthread_mutex_lock(&a->wlock);
	while (a->wbusy)
		pthread_cond_wait(&a->wcond, &a->wlock);
	swap_pack_buffers(w, &a->wslot);
	pack_writer_reset(w);
	a->wbusy = true;
	pthread_cond_broadcast(&a->wcond);
	pthread_mutex_unlock(&a->wlock);
	return 0;
}

void *archiver_writer_main(void *arg)
{
	struct archiver *a = arg;

	pthread_mutex_lock(&a->wlock);
	for (;;) {
		int r;

		while (!a->wbusy && !a->wclosed)
			pthread_cond_wait(&a->wcond, &a->wlock);
		if (!a->wbusy)
			break;
		pthread_mutex_unlock(&a->wlock);
		r = atomic_load(&a->error) ? 0 : archiver_flush_pack(a, a->wcrypto, &a->wslot);
		if (r < 0)
			archiver_set_error(a, r);
		pack_writer_reset(&a->wslot);
		pthread_mutex_lock(&a->wlock);
		a->wbusy = false;
		pthread_cond_broadcast(&a->wcond);
	}
	pthread_mutex_unlock(&a->wlock);
	return NULL;
}

/* Stores one chunk unless the repository (or another worker) has it; a
 * full pack goes to the writer thread when there is one (async). */
int archiver_store_chunk(struct archiver *a, struct crypto_ctx *c, struct pack_writer *w,
			 enum blob_type type, const uint8_t *data, size_t len, uint8_t id[32],
			 bool async)
{
	int r = crypto_blob_id(c, data, len, id);

	if (r < 0)
		return r;
	pthread_mutex_lock(&a->ixlock);
	r = index_insert(a->repo->index, id, type);
	pthread_mutex_unlock(&a->ixlock);
	if (r <= 0)
		return r; /* known: dedup */
	r = pack_writer_add(w, c, type, id, data, len);
	if (r < 0)
		return r;
	atomic_fetch_add(&a->bytes_added, len);
	if (w->len >= PACK_TARGET || w->n >= PACK_TARGET_BLOBS)
		return async && a->writer_started ? hand_off(a, w) : archiver_flush_pack(a, c, w);
	return 0;
}

/* ---- workers ---- */

static int job_add_chunk(struct file_job *job, const uint8_t id[32])
{
	if (job->nchunks == job->cap) {
		uint32_t ncap = job->cap ? job->cap * 2 : 4;
		void *nc = realloc(job->chunks, (size_t)ncap * 32);

		if (!nc)
			return -ENOMEM;
		job->chunks = nc;
		job->cap = ncap;
	}
	memcpy(job->chunks[job->nchunks++], id, 32);
	return 0;
}

/* ---- a stream, compressed by several threads ---- */

/* A file is one worker's; a stream is one file that may be most of the
 * backup (a database dump), so its reader only reads and cuts, and helpers
 * (one per CPU) do the rest for each chunk: ID, dedup, compression,
 * encryption, each into its own pack. At most STREAM_INFLIGHT chunks are
 * handed over at a time (4 MiB each at most). */
#define STREAM_INFLIGHT 8u

struct stream_piece {
	uint8_t *data;
	size_t len;
	uint32_t seq;
};

struct stream_pool {
	struct archiver *a;
	struct file_job *job;
	pthread_mutex_t lock; /* the ring, and job->chunks (grown by the reader) */
	pthread_cond_t more, room;
	struct stream_piece ring[STREAM_INFLIGHT];
	size_t head, count;
	bool closed;
};

struct stream_helper {
	struct stream_pool *p;
	pthread_t thread;
	struct crypto_ctx *crypto;
	struct pack_writer pack;
};

static void *stream_helper_main(void *arg)
{
	struct stream_helper *h = arg;
	struct stream_pool *p = h->p;
	struct archiver *a = p->a;
	int r;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct stream_piece piece;
		uint8_t id[32];

		while (!p->count && !p->closed)
			pthread_cond_wait(&p->more, &p->lock);
		if (!p->count)
			break;
		piece = p->ring[p->head];
		p->head = (p->head + 1) % STREAM_INFLIGHT;
		p->count--;
		pthread_cond_signal(&p->room);
		pthread_mutex_unlock(&p->lock);
		r = atomic_load(&a->error) ? 0 :
			archiver_store_chunk(a, h->crypto, &h->pack, BLOB_DATA, piece.data,
					     piece.len, id, true);
		free(piece.data);
		pthread_mutex_lock(&p->lock);
		if (r < 0)
			archiver_set_error(a, r);
		else if (!atomic_load(&a->error))
			memcpy(p->job->chunks[piece.seq], id, 32);
		atomic_fetch_add(&a->bytes_done, piece.len);
	}
	pthread_mutex_unlock(&p->lock);
	r = atomic_load(&a->error) ? 0 : archiver_flush_pack(a, h->crypto, &h->pack);
	if (r < 0)
		archiver_set_error(a, r);
	return NULL;
}


/* Hands the chunk at data to a helper: copied, its ID written to its place
 * in the job's list when done. */
static int stream_hand(struct stream_pool *p, const uint8_t *data, size_t len)
{
	static const uint8_t none[32];
	uint8_t *copy = malloc(len);
	int r;

	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	pthread_mutex_lock(&p->lock);
	while (p->count == STREAM_INFLIGHT)
		pthread_cond_wait(&p->room, &p->lock);
	r = job_add_chunk(p->job, none);
	if (r >= 0) {
		p->ring[(p->head + p->count) % STREAM_INFLIGHT] =
			(struct stream_piece){ copy, len, p->job->nchunks - 1 };
		p->count++;
		pthread_cond_signal(&p->more);
	}
	pthread_mutex_unlock(&p->lock);
	if (r < 0)
		free(copy);
	return r;
}

static int read_stream(struct worker *wk, struct file_job *job)
{
	struct archiver *a = wk->a;
	const struct chunker *ch = &a->repo->chunker;
	struct stream_pool p = { .a = a, .job = job };
	struct stream_helper helpers[MAX_THREADS] = {};
	int n = archiver_threads(a->o->threads), started = 0, r = 0;
	uint64_t total = 0;
	size_t fill = 0;
	bool eof = false;

	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.more, NULL);
	pthread_cond_init(&p.room, NULL);
	for (int i = 0; i < n && r >= 0; i++) {
		struct stream_helper *h = &helpers[i];

		h->p = &p;
		r = crypto_ctx_new(&a->repo->key, &h->crypto);
		if (r >= 0)
			r = pack_writer_init(&h->pack, a->repo->compression);
		if (r >= 0 && pthread_create(&h->thread, NULL, stream_helper_main, h) != 0)
			r = -EAGAIN;
		if (r >= 0) {
			pthread_setname_np(h->thread, "bcdr-stream");
			started++;
		}
	}
	while (r >= 0 && !atomic_load(&a->error)) {
		size_t cut;

		while (!eof && fill < ch->max) {
			ssize_t k = read(job->fd, wk->buf + fill, ch->max - fill);

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				r = -errno;
				break;
			}
			fill += (size_t)k;
			total += (uint64_t)k;
			atomic_fetch_add(&a->bytes_seen, (uint64_t)k);
			eof = k == 0;
		}
		if (r < 0 || fill == 0)
			break;
		cut = chunker_next(ch, wk->buf, fill);
		r = stream_hand(&p, wk->buf, cut);
		memmove(wk->buf, wk->buf + cut, fill - cut);
		fill -= cut;
	}
	pthread_mutex_lock(&p.lock);
	p.closed = true;
	pthread_cond_broadcast(&p.more);
	pthread_mutex_unlock(&p.lock);
	for (int i = 0; i < started; i++)
		pthread_join(helpers[i].thread, NULL);
	for (int i = 0; i < n; i++) {
		crypto_ctx_free(helpers[i].crypto);
		if (helpers[i].pack.zctx)
			pack_writer_release(&helpers[i].pack);
	}
	pthread_cond_destroy(&p.room);
	pthread_cond_destroy(&p.more);
	pthread_mutex_destroy(&p.lock);
	if (r < 0)
		return r;
	if (atomic_load(&a->error))
		return -ECANCELED;
	job->size = total;
	return 0;
}

/* The job's file, by its name in its directory when the walker left that
 * open (the path walk of every file was a tenth of the kernel's time), else
 * by path. The directory's reference goes as soon as the file is open. */
static int open_job(struct file_job *job)
{
	const int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC;
	int dfd = job->dir ? job->dir->fd : AT_FDCWD;
	const char *name = job->path;
	int fd;

	if (job->dir)
		name = strrchr(job->path, '/') + 1;
	fd = openat(dfd, name, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dfd, name, flags);
	fd = fd < 0 ? -errno : fd;
	archiver_dir_put(job->dir);
	job->dir = NULL;
	return fd;
}

/* The job's file, open as fd (ours to close; an error from open_job). */
static int read_file(struct worker *wk, struct file_job *job, int opened)
{
	struct archiver *a = wk->a;
	const struct chunker *ch = &a->repo->chunker;
	_cleanup_close_ int fd = opened;
	uint64_t expected = job->size, total = 0;
	size_t fill = 0;
	bool eof = false;
	int r;

	if (job->fd >= 0)
		return read_stream(wk, job);
	if (fd < 0)
		return fd;
	/* From the open file: no second lookup of its path. */
	if ((r = archiver_read_xattrs(job->path, fd, &job->xattrs, &job->nxattrs)) < 0) {
		archiver_set_error(a, r);
		return -ECANCELED;
	}
	if (expected > ch->max)
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		size_t cut;
		uint8_t id[32];

		while (!eof && fill < ch->max) {
			ssize_t n = read(fd, wk->buf + fill, ch->max - fill);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			fill += (size_t)n;
			total += (uint64_t)n;
			/* Like tar: read the size lstat gave, without a last
			 * read() that only returns 0 (half the syscalls for
			 * small files). A file that grows meanwhile is cut. */
			if (n == 0 || total >= expected)
				eof = true;
		}
		if (fill == 0)
			break;
		cut = chunker_next(ch, wk->buf, fill);
		r = archiver_store_chunk(a, wk->crypto, &wk->pack, BLOB_DATA, wk->buf, cut, id,
					 true);
		if (r >= 0)
			r = job_add_chunk(job, id);
		if (r < 0) {
			archiver_set_error(a, r); /* the repository side failed: stop */
			return -ECANCELED;
		}
		atomic_fetch_add(&a->bytes_done, cut);
		memmove(wk->buf, wk->buf + cut, fill - cut);
		fill -= cut;
	}
	job->size = total;
	return 0;
}

static struct file_job *queue_next(struct archiver *a, bool wait)
{
	struct file_job *job = NULL;

	if (!(wait ? queue_pop(&a->files, &job) : queue_try_pop(&a->files, &job)))
		return NULL;
	return job;
}

/* lib/queue: a full queue lets the walk sleep until half of it is taken,
 * one wake-up per QUEUE_LEN / 2 files, not one per file. */
void archiver_queue_push_many(struct archiver *a, struct file_job **jobs, size_t n)
{
	queue_push_many(&a->files, jobs, n);
}

void archiver_queue_close(struct archiver *a)
{
	queue_close(&a->files);
}

/* The follower may be waiting for this job, the front of the window. */
static void job_finished(struct archiver *a, struct file_job *job)
{
	atomic_store(&job->done, true);
	pthread_mutex_lock(&a->tlock);
	if (a->follower_waiting)
		pthread_cond_signal(&a->tcond);
	pthread_mutex_unlock(&a->tlock);
}

/* A worker keeps up to PREFETCH_FILES jobs open ahead of the one it
 * reads, their first PREFETCH_BYTES asked for (WILLNEED): the disk reads
 * the next small files while this one is compressed, where a read of a
 * file gone cold left the core idle. Not past PREFETCH_BYTES of files in
 * all: behind a big file there is time enough, and files stay unopened
 * (and another worker's) as long as may be. */
#define PREFETCH_FILES 8u
#define PREFETCH_BYTES (1u << 20)

struct prefetch {
	struct file_job *job[PREFETCH_FILES];
	int fd[PREFETCH_FILES];
	size_t head, n;
	uint64_t bytes;
};

/* Takes jobs from the queue into p while there is room, waiting only
 * when p is empty; false when there is none left at all. */
static bool prefetch_fill(struct archiver *a, struct prefetch *p)
{
	while (p->n < PREFETCH_FILES && (p->n == 0 || p->bytes < PREFETCH_BYTES)) {
		struct file_job *job = queue_next(a, p->n == 0);
		size_t k = (p->head + p->n) % PREFETCH_FILES;
		int fd = -ECANCELED;

		if (!job)
			break;
		if (job->fd < 0 && !atomic_load(&a->error))
			fd = open_job(job);
		if (fd >= 0 && p->n > 0)
			posix_fadvise(fd, 0, job->size < PREFETCH_BYTES ? (off_t)job->size :
					  PREFETCH_BYTES, POSIX_FADV_WILLNEED);
		p->job[k] = job;
		p->fd[k] = fd;
		p->n++;
		p->bytes += job->size == UINT64_MAX ? PREFETCH_BYTES : job->size;
	}
	return p->n > 0;
}

static void worker_finish_job(struct archiver *a, struct file_job *job, int r)
{
	if (r < 0 && r != -ECANCELED && job->fd >= 0)
		archiver_set_error(a, r); /* a stream cannot be skipped and read again */
	else if (r < 0 && r != -ECANCELED) {
		job->error = r; /* the file: skip it, go on */
		free(job->chunks);
		job->chunks = NULL;
		job->nchunks = 0;
	}
	if (r >= 0 || job->error)
		atomic_fetch_add(&a->files_done, 1);
	job_finished(a, job);
}

void *archiver_worker_main(void *arg)
{
	struct worker *wk = arg;
	struct archiver *a = wk->a;
	struct prefetch p = { .n = 0 };
	int r;

	while (prefetch_fill(a, &p)) {
		struct file_job *job = p.job[p.head];
		int fd = p.fd[p.head];

		p.head = (p.head + 1) % PREFETCH_FILES;
		p.n--;
		p.bytes -= job->size == UINT64_MAX ? PREFETCH_BYTES : job->size;
		if (atomic_load(&a->error)) { /* drain */
			if (fd >= 0)
				close(fd);
			r = -ECANCELED;
		} else {
			r = read_file(wk, job, job->fd >= 0 ? -1 : fd);
		}
		worker_finish_job(a, job, r);
	}
	r = atomic_load(&a->error) ? 0 : archiver_flush_pack(a, wk->crypto, &wk->pack);
	if (r < 0)
		archiver_set_error(a, r);
	return NULL;
}

int archiver_threads(int wanted)
{
	long n = wanted > 0 ? wanted : sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}
