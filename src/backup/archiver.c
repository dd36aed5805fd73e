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
#include "backup/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <zstd.h>

#include "backup/pathmap.h"
#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/strv.h"
#include "repo/orphans.h"

#define PACK_TARGET (16u << 20)
#define TREE_PACK_TARGET (4u << 20)
#define QUEUE_LEN 1024u
#define MAX_THREADS 16

struct file_job {
	size_t node; /* its sequence number in the walk */
	atomic_bool done;
	char *path; /* absolute, to open */
	uint8_t (*chunks)[32];
	uint32_t nchunks, cap;
	uint64_t size;
	int error;
	int fd; /* the stream's, not ours to close; -1 for a file */
};

struct archiver {
	struct repo *repo;
	const struct backup_options *o;
	/* The window: tree->nodes[k] is the node of walk sequence base + k.
	 * Nodes below `released` are encoded and gone. */
	struct tree *tree;
	size_t base, released;
	/* The parent's nodes, read along with the walk; pnode is the next one
	 * not yet passed (NULL at the end). */
	struct snapshot *parent_snap;
	struct tree_reader *parent;
	struct node *pnode;
	struct pathmap hardlinks, ancestors;
	char **anc_keys;
	size_t n_anc;
	char **hl_keys, **hl_paths; /* the first name of each inode seen twice */
	size_t n_hl_keys, cap_hl_keys;
	/* The absolute path of the entry being walked (its node's path is
	 * this without the leading "/"): grown and cut as the walk goes. */
	char *path;
	size_t path_len, path_cap;

	char **paths; /* resolved, sorted, none inside another; then the stream's */
	size_t stream_node; /* SIZE_MAX: no stream */

	/* The walker appends to tree; nodes below `walked` are the calling
	 * thread's. tlock guards base, released, walked, walk_finished and
	 * every move of tree->nodes (growth, compaction); the walker waits on
	 * room for it, the follower on tcond (a hand-over, a job done). */
	pthread_t walker;
	bool walker_started;
	pthread_mutex_t tlock;
	pthread_cond_t tcond, room;
	size_t walked;
	bool walk_finished, follower_waiting, walker_waiting;

	pthread_mutex_t qlock;
	pthread_cond_t qnonempty, qnonfull;
	struct file_job *ring[QUEUE_LEN];
	size_t qhead, qcount;
	bool qclosed, producer_waiting;

	/* Jobs in walk order; those below jhead are in the tree and freed. */
	struct file_job **jobs;
	size_t jhead, njobs, cap_jobs;

	/* The encoded front of the window, cut into tree blobs as the
	 * chunker's maximum fills (so the cuts are those of the whole
	 * stream). */
	uint8_t *enc;
	size_t enc_len, enc_off, enc_cap;
	struct pack_writer tree_pack;
	bool tree_pack_init;
	uint8_t (*tree_ids)[32];
	size_t ntree;

	pthread_mutex_t ixlock;
	size_t npacks_before;

	/* One full pack in flight: a worker hands it to the writer thread
	 * (which seals, stores and fsyncs it) and goes on compressing into
	 * the buffers the writer emptied last. */
	pthread_t writer;
	bool writer_started;
	pthread_mutex_t wlock;
	pthread_cond_t wcond;
	struct pack_writer wslot;
	bool wbusy, wclosed;
	struct crypto_ctx *wcrypto;

	atomic_uint_fast64_t files_done, bytes_done, files_seen, bytes_seen;
	atomic_uint_fast64_t bytes_added, bytes_stored;
	atomic_int error;
	atomic_bool walk_done;
	struct snapshot_summary sum;
	usec_t start;

	pthread_mutex_t plock;
	pthread_cond_t pcond;
	bool pstop;
};

struct worker {
	struct archiver *a;
	pthread_t thread;
	struct crypto_ctx *crypto;
	struct pack_writer pack;
	uint8_t *buf;
};

static void set_error(struct archiver *a, int r)
{
	int zero = 0;

	atomic_compare_exchange_strong(&a->error, &zero, r);
}

/* ---- packs ---- */

/* Writes the worker's pack and points its blobs at it in the index. */
static int flush_pack(struct archiver *a, struct crypto_ctx *c, struct pack_writer *w)
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
	for (size_t i = 0; r >= 0 && i < w->n; i++) {
		struct index_blob *b = index_find(a->repo->index, w->entries[i].id);

		if (b) {
			b->pack = pos;
			b->offset = w->entries[i].offset;
			b->length = w->entries[i].length;
			b->raw_length = w->entries[i].raw_length;
		}
	}
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

static void *writer_main(void *arg)
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
		r = atomic_load(&a->error) ? 0 : flush_pack(a, a->wcrypto, &a->wslot);
		if (r < 0)
			set_error(a, r);
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
static int store_chunk(struct archiver *a, struct crypto_ctx *c, struct pack_writer *w,
		       enum blob_type type, const uint8_t *data, size_t len, uint8_t id[32],
		       bool async)
{
	struct index_blob b = { .pack = INDEX_NO_PACK, .type = (uint8_t)type };
	int r = crypto_blob_id(c, data, len, id);

	if (r < 0)
		return r;
	memcpy(b.id, id, 32);
	pthread_mutex_lock(&a->ixlock);
	r = index_insert(a->repo->index, &b);
	pthread_mutex_unlock(&a->ixlock);
	if (r <= 0)
		return r; /* known: dedup */
	r = pack_writer_add(w, c, type, id, data, len);
	if (r < 0)
		return r;
	atomic_fetch_add(&a->bytes_added, len);
	if (w->len >= PACK_TARGET)
		return async && a->writer_started ? hand_off(a, w) : flush_pack(a, c, w);
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

static int threads_for(int wanted);

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
			store_chunk(a, h->crypto, &h->pack, BLOB_DATA, piece.data, piece.len, id,
				    true);
		free(piece.data);
		pthread_mutex_lock(&p->lock);
		if (r < 0)
			set_error(a, r);
		else if (!atomic_load(&a->error))
			memcpy(p->job->chunks[piece.seq], id, 32);
		atomic_fetch_add(&a->bytes_done, piece.len);
	}
	pthread_mutex_unlock(&p->lock);
	r = atomic_load(&a->error) ? 0 : flush_pack(a, h->crypto, &h->pack);
	if (r < 0)
		set_error(a, r);
	return NULL;
}

static int job_add_chunk(struct file_job *job, const uint8_t id[32]);

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
	int n = threads_for(a->o->threads), started = 0, r = 0;
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

static int read_file(struct worker *wk, struct file_job *job)
{
	struct archiver *a = wk->a;
	const struct chunker *ch = &a->repo->chunker;
	_cleanup_close_ int fd = -1;
	uint64_t expected = job->size, total = 0;
	size_t fill = 0;
	bool eof = false;
	int r;

	if (job->fd >= 0)
		return read_stream(wk, job);
	fd = open(job->path, O_RDONLY | O_NOATIME | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EPERM)
		fd = open(job->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
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
		r = store_chunk(a, wk->crypto, &wk->pack, BLOB_DATA, wk->buf, cut, id, true);
		if (r >= 0)
			r = job_add_chunk(job, id);
		if (r < 0) {
			set_error(a, r); /* the repository side failed: stop */
			return -ECANCELED;
		}
		atomic_fetch_add(&a->bytes_done, cut);
		memmove(wk->buf, wk->buf + cut, fill - cut);
		fill -= cut;
	}
	job->size = total;
	return 0;
}

/* The producer, once it finds the queue full, sleeps until half of it is
 * taken: one wake-up per QUEUE_LEN / 2 files, not one per file. */
static struct file_job *queue_pop(struct archiver *a)
{
	struct file_job *job = NULL;

	pthread_mutex_lock(&a->qlock);
	while (a->qcount == 0 && !a->qclosed)
		pthread_cond_wait(&a->qnonempty, &a->qlock);
	if (a->qcount) {
		job = a->ring[a->qhead];
		a->qhead = (a->qhead + 1) % QUEUE_LEN;
		a->qcount--;
		if (a->producer_waiting && a->qcount <= QUEUE_LEN / 2) {
			a->producer_waiting = false;
			pthread_cond_signal(&a->qnonfull);
		}
	}
	pthread_mutex_unlock(&a->qlock);
	return job;
}

static void queue_push_many(struct archiver *a, struct file_job **jobs, size_t n)
{
	if (n == 0)
		return;
	pthread_mutex_lock(&a->qlock);
	for (size_t i = 0; i < n; i++) {
		if (a->qcount == QUEUE_LEN) {
			pthread_cond_broadcast(&a->qnonempty);
			a->producer_waiting = true;
			while (a->producer_waiting)
				pthread_cond_wait(&a->qnonfull, &a->qlock);
		}
		a->ring[(a->qhead + a->qcount) % QUEUE_LEN] = jobs[i];
		a->qcount++;
	}
	if (n > 1)
		pthread_cond_broadcast(&a->qnonempty);
	else
		pthread_cond_signal(&a->qnonempty);
	pthread_mutex_unlock(&a->qlock);
}

static void queue_close(struct archiver *a)
{
	pthread_mutex_lock(&a->qlock);
	a->qclosed = true;
	pthread_cond_broadcast(&a->qnonempty);
	pthread_mutex_unlock(&a->qlock);
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

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct archiver *a = wk->a;
	struct file_job *job;
	int r;

	while ((job = queue_pop(a))) {
		r = atomic_load(&a->error) ? -ECANCELED : read_file(wk, job); /* else drain */
		if (r < 0 && r != -ECANCELED && job->fd >= 0)
			set_error(a, r); /* a stream cannot be skipped and read again */
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
	r = atomic_load(&a->error) ? 0 : flush_pack(a, wk->crypto, &wk->pack);
	if (r < 0)
		set_error(a, r);
	return NULL;
}

/* ---- the walk ---- */

static bool excluded(const struct backup_options *o, const char *abs)
{
	const char *base = strrchr(abs, '/');

	base = base ? base + 1 : abs;
	for (char **p = o->exclude; p && *p; p++) {
		if (strchr(*p, '/') ? fnmatch(*p, abs, 0) == 0 : fnmatch(*p, base, 0) == 0)
			return true;
	}
	return false;
}

static int read_xattrs(const char *path, struct node *n)
{
	char names[16384];
	ssize_t len = llistxattr(path, names, sizeof(names));

	if (len <= 0)
		return 0; /* none, or not supported here */
	for (ssize_t off = 0; off < len && n->nxattrs < TREE_MAX_XATTRS;) {
		const char *name = names + off;
		uint8_t value[TREE_MAX_XATTR_VALUE];
		ssize_t vlen = lgetxattr(path, name, value, sizeof(value));
		struct xattr *nx;

		off += (ssize_t)strlen(name) + 1;
		if (vlen < 0 || strlen(name) > 255)
			continue;
		nx = realloc(n->xattrs, (n->nxattrs + 1) * sizeof(*nx));
		if (!nx)
			return -ENOMEM;
		n->xattrs = nx;
		nx = &n->xattrs[n->nxattrs];
		nx->name = strdup(name);
		nx->value = malloc(vlen ? (size_t)vlen : 1);
		if (!nx->name || !nx->value) {
			free(nx->name);
			free(nx->value);
			return -ENOMEM;
		}
		memcpy(nx->value, value, (size_t)vlen);
		nx->len = (uint32_t)vlen;
		n->nxattrs++;
	}
	return 0;
}

/* An unchanged file: its chunks and xattrs move from the parent's node,
 * which is not used again (and is marked so). */
static void take_node_data(struct node *to, struct node *from)
{
	to->chunks = TAKE_PTR(from->chunks);
	to->nchunks = from->nchunks;
	to->xattrs = TAKE_PTR(from->xattrs);
	to->nxattrs = from->nxattrs;
	from->nchunks = 0;
	from->nxattrs = 0;
	from->type = 0;
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static void report_skip(struct archiver *a, const char *abs, int error)
{
	a->sum.errors++;
	if (a->o->skipped)
		a->o->skipped(abs, error, a->o->userdata);
}

/* Nodes the window holds at most: the walker waits beyond it. */
#define WINDOW_MAX 8192u

/* Appends a zeroed node. Only the walker appends; growing or compacting
 * the window moves the array, so it happens under tlock (the follower
 * reads published nodes under it). A full window of nodes not yet encoded
 * (a big file at its front) waits for the follower. NULL: no memory, or
 * the backup is stopping (a->error). */
static struct node *append_node(struct archiver *a)
{
	struct tree *t = a->tree;
	int r = 0;

	if (t->n < t->cap)
		return tree_append(t);
	pthread_mutex_lock(&a->tlock);
	for (;;) {
		size_t gone = a->released - a->base;

		if (atomic_load(&a->error)) {
			r = -ECANCELED;
			break;
		}
		if (gone && (gone >= t->n / 4 || t->cap >= WINDOW_MAX)) {
			memmove(t->nodes, t->nodes + gone, (t->n - gone) * sizeof(struct node));
			t->n -= gone;
			a->base += gone;
			break;
		}
		if (t->cap < WINDOW_MAX) {
			r = tree_reserve(t, t->cap ? t->cap * 2 : 4096);
			break;
		}
		/* Full: hand everything over and wait for the front to go. */
		a->walked = a->base + t->n;
		if (a->follower_waiting)
			pthread_cond_signal(&a->tcond);
		a->walker_waiting = true;
		pthread_cond_wait(&a->room, &a->tlock);
		a->walker_waiting = false;
	}
	pthread_mutex_unlock(&a->tlock);
	return r < 0 ? NULL : tree_append(t);
}

static struct node *node_at(struct archiver *a, size_t seq)
{
	return &a->tree->nodes[seq - a->base];
}

/* Hands the nodes appended so far to the follower. */
static void publish(struct archiver *a, bool finished)
{
	pthread_mutex_lock(&a->tlock);
	a->walked = a->base + a->tree->n;
	a->walk_finished = finished;
	if (a->follower_waiting)
		pthread_cond_signal(&a->tcond);
	pthread_mutex_unlock(&a->tlock);
}

/* Records a path that could not be read, so the snapshot says so. */
static int add_error_node(struct archiver *a, const char *rel, int error)
{
	struct node *n = append_node(a);

	if (!n)
		return -ENOMEM;
	n->type = NODE_ERROR;
	n->path = strdup(rel);
	n->link = strdup(err_str(error));
	return n->path && n->link ? 0 : -ENOMEM;
}

/* Appends "/name" to a->path; *ret_old is the length to cut back to. */
static int path_push(struct archiver *a, const char *name, size_t *ret_old)
{
	size_t base = a->path_len == 1 ? 0 : a->path_len, len = strlen(name);

	if (base + 1 + len + 1 > a->path_cap) {
		size_t ncap = a->path_cap ? a->path_cap : 256;
		char *np;

		while (ncap < base + 1 + len + 1)
			ncap *= 2;
		np = realloc(a->path, ncap);
		if (!np)
			return -ENOMEM;
		a->path = np;
		a->path_cap = ncap;
	}
	*ret_old = a->path_len;
	a->path[base] = '/';
	memcpy(a->path + base + 1, name, len + 1);
	a->path_len = base + 1 + len;
	return 0;
}

static void path_pop(struct archiver *a, size_t old)
{
	a->path_len = old;
	a->path[old] = 0;
}

static int walk(struct archiver *a, int dfd, const char *name, const struct stat *st,
		dev_t root_dev);

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Nodes appended between two hand-overs to the follower, at most. */
#define PUBLISH_EVERY 256u

/* The entries of the open directory fd (a->path), each looked up relative
 * to it: no path walk per file. fd is closed. */
static int walk_dir(struct archiver *a, int fd, dev_t root_dev)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **nn = realloc(names, ncap * sizeof(char *));

			if (!nn) {
				r = -ENOMEM;
				break;
			}
			names = nn;
			cap = ncap;
		}
		if (!(names[n] = strdup(de->d_name))) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	/* Sorted, so the node stream of an unchanged tree is the same bytes. */
	if (r >= 0)
		qsort(names, n, sizeof(char *), cmp_str);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct stat st;
		size_t old;

		if ((r = path_push(a, names[i], &old)) < 0)
			break;
		if (excluded(a->o, a->path)) {
			path_pop(a, old);
			continue;
		}
		if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			report_skip(a, a->path, -errno);
			r = add_error_node(a, a->path + 1, -errno);
		} else {
			r = walk(a, dirfd(d), names[i], &st, root_dev);
		}
		path_pop(a, old);
		if (a->base + a->tree->n - a->walked >= PUBLISH_EVERY)
			publish(a, false);
	}
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

static int open_dir(struct archiver *a, int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && (errno == EMFILE || errno == ENFILE)) /* very deep: by path */
		fd = open(a->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void fill_node(struct node *n, const struct stat *st)
{
	n->mode = st->st_mode;
	n->uid = st->st_uid;
	n->gid = st->st_gid;
	n->size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
	n->mtime_ns = ts_ns(&st->st_mtim);
	n->ctime_ns = ts_ns(&st->st_ctim);
	n->ino = st->st_ino;
	n->dev = st->st_dev;
}

/* A regular file as the walker sees it: a hard link to an earlier name, or
 * a file the follower compares with the parent. */
static int walk_file(struct archiver *a, struct node *n, const struct stat *st)
{
	size_t ppos;
	int r;

	if (st->st_nlink > 1) {
		char key[64], *owned;

		snprintf(key, sizeof(key), "%llx:%llx", (unsigned long long)st->st_dev,
			 (unsigned long long)st->st_ino);
		if (pathmap_get(&a->hardlinks, key, &ppos) == 0) {
			n->type = NODE_HARDLINK;
			n->link = strdup(a->hl_paths[ppos]);
			return n->link ? 0 : -ENOMEM;
		}
		if (a->n_hl_keys == a->cap_hl_keys) {
			size_t ncap = a->cap_hl_keys ? a->cap_hl_keys * 2 : 64;
			char **nk = realloc(a->hl_keys, ncap * sizeof(char *));
			char **np = nk ? realloc(a->hl_paths, ncap * sizeof(char *)) : NULL;

			if (nk)
				a->hl_keys = nk;
			if (!np)
				return -ENOMEM;
			a->hl_paths = np;
			a->cap_hl_keys = ncap;
		}
		if (!(owned = strdup(key)))
			return -ENOMEM;
		if (!(a->hl_paths[a->n_hl_keys] = strdup(n->path))) {
			free(owned);
			return -ENOMEM;
		}
		a->hl_keys[a->n_hl_keys++] = owned;
		if ((r = pathmap_put(&a->hardlinks, owned, a->n_hl_keys - 1)) < 0)
			return r;
	}
	n->type = NODE_FILE;
	atomic_fetch_add(&a->files_seen, 1);
	atomic_fetch_add(&a->bytes_seen, (uint64_t)st->st_size);
	return 0;
}

/* One entry: a->path is its absolute path, name its name in dfd (or the
 * absolute path itself with AT_FDCWD). A node is complete when appended:
 * the follower may read it from the next hand-over on. */
static int walk(struct archiver *a, int dfd, const char *name, const struct stat *st,
		dev_t root_dev)
{
	const char *rel = a->path + 1;
	struct node *n;
	int fd = -1, r;

	if (atomic_load(&a->error))
		return atomic_load(&a->error);
	if (S_ISDIR(st->st_mode) && (!a->o->one_file_system || st->st_dev == root_dev)) {
		fd = open_dir(a, dfd, name);
		if (fd < 0 && *rel) { /* an unreadable directory: recorded and skipped */
			report_skip(a, a->path, fd);
			return add_error_node(a, rel, fd);
		}
	}
	if (!*rel) /* "/" itself has no node, its entries do */
		return fd < 0 ? fd : walk_dir(a, fd, root_dev);
	n = append_node(a);
	if (!n) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	fill_node(n, st);
	if (!(n->path = strndup(rel, a->path_len - 1))) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	if (S_ISREG(st->st_mode))
		return walk_file(a, n, st);
	if (S_ISLNK(st->st_mode)) {
		char target[TREE_MAX_PATH + 1];
		ssize_t len = readlinkat(dfd, name, target, sizeof(target) - 1);

		if (len < 0) {
			r = -errno;
			n->type = NODE_ERROR;
			n->link = strdup(err_str(r));
			report_skip(a, a->path, r);
			return n->link ? 0 : -ENOMEM;
		}
		target[len] = 0;
		n->type = NODE_SYMLINK;
		n->link = strdup(target);
		return n->link ? 0 : -ENOMEM;
	}
	if (!S_ISDIR(st->st_mode)) {
		n->type = NODE_SPECIAL;
		n->size = st->st_rdev;
		return 0;
	}
	n->type = NODE_DIR;
	a->sum.dirs++;
	if ((r = read_xattrs(a->path, n)) < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	if (fd < 0)
		return 0; /* a mount point: the directory, not its contents */
	return walk_dir(a, fd, root_dev);
}

/* The directories above a backup path, so a restore recreates them with
 * their owners and modes. */
static int add_ancestors(struct archiver *a, const char *abs)
{
	_cleanup_free_ char *copy = strdup(abs);
	size_t dummy;
	int r;

	if (!copy)
		return -ENOMEM;
	for (char *s = strchr(copy + 1, '/'); s; s = strchr(s + 1, '/')) {
		struct stat st;
		struct node *n;
		char **nk;

		*s = 0;
		if (pathmap_get(&a->ancestors, copy + 1, &dummy) == 0) {
			*s = '/';
			continue;
		}
		if (lstat(copy, &st) < 0)
			return -errno;
		n = append_node(a);
		if (!n)
			return -ENOMEM;
		fill_node(n, &st);
		n->type = NODE_DIR;
		if (!(n->path = strdup(copy + 1)))
			return -ENOMEM;
		/* The map borrows its keys, and the node goes once encoded. */
		nk = realloc(a->anc_keys, (a->n_anc + 1) * sizeof(char *));
		if (!nk)
			return -ENOMEM;
		a->anc_keys = nk;
		if (!(a->anc_keys[a->n_anc] = strdup(copy + 1)))
			return -ENOMEM;
		if ((r = pathmap_put(&a->ancestors, a->anc_keys[a->n_anc++], 0)) < 0)
			return r;
		*s = '/';
	}
	return 0;
}

/* The stream's file, after the walk: owned by whoever runs the backup,
 * mode 0600 (a dump holds the whole database), written now. */
static int add_stream_node(struct archiver *a)
{
	struct node *n = append_node(a);
	struct timespec now;

	if (!n)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &now);
	n->type = NODE_FILE;
	n->mode = S_IFREG | 0600;
	n->uid = getuid();
	n->gid = getgid();
	n->mtime_ns = n->ctime_ns = ts_ns(&now);
	if (!(n->path = strdup(a->o->stream->filename)))
		return -ENOMEM;
	a->stream_node = a->base + a->tree->n - 1;
	atomic_fetch_add(&a->files_seen, 1);
	return 0;
}

static void *walker_main(void *arg)
{
	struct archiver *a = arg;
	int r = 0;

	for (char **p = a->paths; r >= 0 && *p && (!a->o->stream || p[1]); p++) {
		struct stat st;
		size_t old;

		a->path_len = 0;
		r = add_ancestors(a, *p);
		if (r >= 0 && lstat(*p, &st) < 0)
			r = -errno;
		if (r >= 0)
			r = path_push(a, *p + 1, &old);
		if (r >= 0)
			r = walk(a, AT_FDCWD, *p, &st, st.st_dev);
	}
	if (r >= 0 && a->o->stream)
		r = add_stream_node(a);
	if (r < 0)
		set_error(a, r);
	publish(a, true);
	return NULL;
}

/* ---- following the walk ---- */

static int add_job(struct archiver *a, size_t node, const char *abs, uint64_t size,
		   struct file_job **ret)
{
	struct file_job *job = calloc(1, sizeof(*job));

	if (!job || !(job->path = strdup(abs))) {
		free(job);
		return -ENOMEM;
	}
	job->node = node;
	job->size = size;
	job->fd = -1;
	if (a->njobs == a->cap_jobs) {
		size_t ncap = a->cap_jobs ? a->cap_jobs * 2 : 1024;
		struct file_job **nj = realloc(a->jobs, ncap * sizeof(*nj));

		if (!nj) {
			free(job->path);
			free(job);
			return -ENOMEM;
		}
		a->jobs = nj;
		a->cap_jobs = ncap;
	}
	a->jobs[a->njobs++] = job;
	*ret = job;
	return 0;
}

/* The parent's node of path, if it has one: its reader moves past every
 * node before path in walk order. */
static int parent_node(struct archiver *a, const char *path, struct node **ret)
{
	int c = 1, r;

	*ret = NULL;
	while (a->pnode && (c = tree_path_cmp(a->pnode->path, path)) < 0) {
		r = tree_reader_next(a->parent, &a->pnode);
		if (r <= 0)
			a->pnode = NULL;
		if (r < 0)
			return r;
	}
	if (a->pnode && c == 0)
		*ret = a->pnode;
	return 0;
}

/* A published file node: unchanged in the parent (its chunks are taken
 * over) or a job for the workers (*ret). abs is a scratch buffer. */
static int follow_file(struct archiver *a, size_t pos, char **abs, size_t *abs_cap,
		       struct file_job **ret)
{
	struct node *n = node_at(a, pos), *p;
	size_t len = strlen(n->path);
	int r;

	*ret = NULL;
	if (pos == a->stream_node) {
		a->sum.files_new++;
		r = add_job(a, pos, n->path, UINT64_MAX, ret);
		if (r >= 0)
			(*ret)->fd = a->o->stream->fd;
		return r;
	}
	if ((r = parent_node(a, n->path, &p)) < 0)
		return r;
	if (p) {
		if (!a->o->force && p->type == NODE_FILE && p->size == n->size &&
		    p->mtime_ns == n->mtime_ns && p->ctime_ns == n->ctime_ns && p->ino == n->ino) {
			a->sum.files_unchanged++;
			atomic_fetch_add(&a->files_done, 1);
			atomic_fetch_add(&a->bytes_done, n->size);
			take_node_data(n, p);
			return 0;
		}
		a->sum.files_changed++;
	} else {
		a->sum.files_new++;
	}
	if ((r = bytes_reserve((uint8_t **)abs, abs_cap, len + 2)) < 0)
		return r;
	(*abs)[0] = '/';
	memcpy(*abs + 1, n->path, len + 1);
	if ((r = read_xattrs(*abs, n)) < 0)
		return r;
	return add_job(a, pos, *abs, n->size, ret);
}

/* The worker's result into the node. */
static void job_to_node(struct archiver *a, struct file_job *job, struct node *n)
{
	if (job->error) {
		report_skip(a, job->path, job->error);
		n->type = NODE_ERROR;
		n->link = strdup(err_str(job->error)); /* NULL (no memory): no reason given */
	} else {
		n->chunks = TAKE_PTR(job->chunks);
		n->nchunks = job->nchunks;
		n->size = job->size;
	}
	free(job->path);
	free(job->chunks);
	free(job);
}

/* Cuts the encoded nodes into tree blobs while a whole chunker's maximum
 * is there (all of it when last). */
static int cut_tree(struct archiver *a, bool last)
{
	const struct chunker *ch = &a->repo->chunker;
	int r = 0;

	while (r >= 0 && a->enc_len > a->enc_off && (last || a->enc_len - a->enc_off >= ch->max)) {
		size_t cut = chunker_next(ch, a->enc + a->enc_off, a->enc_len - a->enc_off);
		uint8_t(*nt)[32] = realloc(a->tree_ids, (a->ntree + 1) * 32);

		if (!nt)
			return -ENOMEM;
		a->tree_ids = nt;
		r = store_chunk(a, a->repo->crypto, &a->tree_pack, BLOB_TREE, a->enc + a->enc_off,
				cut, a->tree_ids[a->ntree], false);
		a->ntree++;
		a->enc_off += cut;
		/* Written while the workers' packs are in memory too: smaller. */
		if (r >= 0 && a->tree_pack.len >= TREE_PACK_TARGET)
			r = flush_pack(a, a->repo->crypto, &a->tree_pack);
	}
	return r;
}

/* Encodes the front of the window up to `upto` (walk sequence), stopping
 * at a file whose job is not done; the nodes are released and the walker
 * may reuse their room. Holds tlock while it touches nodes. */
static int encode_front(struct archiver *a, size_t upto)
{
	size_t start;
	int r = 0;

	pthread_mutex_lock(&a->tlock);
	start = a->released;
	while (a->released < upto) {
		struct node *n = node_at(a, a->released);
		size_t size;

		if (a->jhead < a->njobs && a->jobs[a->jhead]->node == a->released) {
			struct file_job *job = a->jobs[a->jhead];

			if (!atomic_load(&job->done))
				break;
			job_to_node(a, job, n);
			a->jobs[a->jhead++] = NULL;
		}
		if ((r = tree_node_size(n, &size)) < 0)
			break;
		if (a->enc_off && a->enc_len + size > a->enc_cap) {
			memmove(a->enc, a->enc + a->enc_off, a->enc_len - a->enc_off);
			a->enc_len -= a->enc_off;
			a->enc_off = 0;
		}
		if ((r = bytes_reserve(&a->enc, &a->enc_cap, a->enc_len + size)) < 0)
			break;
		tree_node_write(n, a->enc + a->enc_len);
		a->enc_len += size;
		node_release(n);
		a->released++;
	}
	if (a->released != start && a->walker_waiting)
		pthread_cond_signal(&a->room);
	pthread_mutex_unlock(&a->tlock);
	/* The job list's freed front goes now and then. */
	if (r >= 0 && a->jhead >= 4096 && a->jhead * 2 >= a->njobs) {
		memmove(a->jobs, a->jobs + a->jhead, (a->njobs - a->jhead) * sizeof(*a->jobs));
		a->njobs -= a->jhead;
		a->jhead = 0;
	}
	return r < 0 ? r : cut_tree(a, false);
}

/* Nodes the follower handles per hold of tlock. */
#define FOLLOW_BATCH 512u

/* Follows the walker through the published nodes until it is done. */
static int follow_walk(struct archiver *a)
{
	_cleanup_free_ char *abs = NULL;
	struct file_job *batch[FOLLOW_BATCH];
	size_t abs_cap = 0, i = 0;
	int r = 0;

	for (;;) {
		size_t end, nbatch = 0;
		bool done;

		pthread_mutex_lock(&a->tlock);
		/* Nothing new from the walker: wait for it, or for the job at
		 * the window's front (a full window stops the walker). */
		while (i == a->walked && !a->walk_finished && !atomic_load(&a->error) &&
		       !(a->released < i && a->jhead < a->njobs &&
			 atomic_load(&a->jobs[a->jhead]->done))) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			a->follower_waiting = true;
			pthread_cond_timedwait(&a->tcond, &a->tlock, &ts);
			a->follower_waiting = false;
		}
		end = a->walked;
		done = a->walk_finished && end - i <= FOLLOW_BATCH;
		if (end - i > FOLLOW_BATCH)
			end = i + FOLLOW_BATCH;
		for (; r >= 0 && i < end; i++) {
			if (node_at(a, i)->type != NODE_FILE)
				continue;
			r = follow_file(a, i, &abs, &abs_cap, &batch[nbatch]);
			if (r >= 0 && batch[nbatch])
				nbatch++;
		}
		pthread_mutex_unlock(&a->tlock);
		/* Outside tlock: a full queue waits for the workers, the walker
		 * goes on. */
		queue_push_many(a, batch, nbatch);
		if (r >= 0)
			r = encode_front(a, i);
		if (r < 0 || done || atomic_load(&a->error))
			return r;
	}
}

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

static int load_parent(struct archiver *a, struct snapshot *s, const char *host)
{
	struct snapshot **v;
	size_t n;
	int r = repo_list_snapshots(a->repo, &v, &n);

	if (r < 0)
		return r;
	for (size_t i = n; i-- > 0;) {
		if (strcmp(v[i]->host, host) != 0 || !same_paths(v[i]->paths, a->paths))
			continue;
		if ((a->o->job || v[i]->job) &&
		    (!a->o->job || !v[i]->job || strcmp(a->o->job, v[i]->job) != 0))
			continue;
		a->parent_snap = TAKE_PTR(v[i]);
		r = repo_tree_open(a->repo, a->parent_snap, &a->parent);
		if (r >= 0) {
			/* Read along with the walk, while the workers insert. */
			repo_tree_set_index_lock(a->parent, &a->ixlock);
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
	snapshots_free(v, n);
	return r;
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
		set_error(a, -ECANCELED);
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
	for (size_t i = a->jhead; i < a->njobs; i++) {
		free(a->jobs[i]->path);
		free(a->jobs[i]->chunks);
		free(a->jobs[i]);
	}
	free(a->jobs);
	free(a->enc);
	free(a->tree_ids);
	if (a->tree_pack_init)
		pack_writer_release(&a->tree_pack);
	pthread_mutex_destroy(&a->tlock);
	pthread_cond_destroy(&a->tcond);
	pthread_cond_destroy(&a->room);
	pthread_mutex_destroy(&a->qlock);
	pthread_cond_destroy(&a->qnonempty);
	pthread_cond_destroy(&a->qnonfull);
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
	pthread_mutex_init(&a->qlock, NULL);
	pthread_cond_init(&a->qnonempty, NULL);
	pthread_cond_init(&a->qnonfull, NULL);
	pthread_mutex_init(&a->ixlock, NULL);
	pthread_mutex_init(&a->wlock, NULL);
	pthread_cond_init(&a->wcond, NULL);
	pthread_mutex_init(&a->plock, NULL);
	pthread_cond_init(&a->pcond, NULL);
	a->start = now_monotonic();
	a->stream_node = SIZE_MAX;
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
	if (pthread_create(&a->walker, NULL, walker_main, a) != 0)
		return -EAGAIN;
	pthread_setname_np(a->walker, "bcdr-walk"); /* for top -H */
	a->walker_started = true;
	*ret = TAKE_PTR(w);
	return 0;
}

static int threads_for(int wanted)
{
	long n = wanted > 0 ? wanted : sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

static int run_pipeline(struct archiver *a)
{
	struct worker workers[MAX_THREADS] = {};
	int nthreads = threads_for(a->o->threads), started = 0, r = 0;
	pthread_t progress;
	bool progress_started = false;

	r = crypto_ctx_new(&a->repo->key, &a->wcrypto);
	if (r >= 0 && pthread_create(&a->writer, NULL, writer_main, a) == 0) {
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
		if (r >= 0 && pthread_create(&wk->thread, NULL, worker_main, wk) != 0)
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
		r = follow_walk(a);
	if (r < 0)
		set_error(a, r);
	walker_join(a, false);
	atomic_store(&a->walk_done, true);
	queue_close(a);
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
	if (r >= 0)
		r = repo_load_index(repo);
	if (r >= 0)
		r = load_parent(a, s, s->host);
	if (r < 0) {
		repo_unlock(repo);
		return r;
	}
	a->npacks_before = repo->index->npacks;
	/* Packs an interrupted backup uploaded are used, not sent again. */
	r = repo_adopt_orphans(repo, &adopted);
	if (r >= 0 && (r = pack_writer_init(&a->tree_pack, repo->compression)) >= 0)
		a->tree_pack_init = true;
	if (r >= 0)
		r = run_pipeline(a);
	if (o->stream && o->stream->finish)
		r = o->stream->finish(r, o->stream->userdata);
	/* The rest of the window, every job done now. */
	if (r >= 0)
		r = encode_front(a, a->base + a->tree->n);
	if (r >= 0 && a->released != a->base + a->tree->n)
		r = -EIO; /* a job left undone: cannot happen once the workers are joined */
	if (r >= 0)
		r = cut_tree(a, true);
	if (r >= 0)
		r = flush_pack(a, repo->crypto, &a->tree_pack);
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
