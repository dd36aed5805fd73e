/* The archiver's own structures, shared by its files and by no one else
 * (backup/backup.h is the public face; archiver.c says how the threads
 * overlap):
 *   - archiver.c        backup_run(), backup_walk_start(): setting up,
 *                       the parent snapshot, the threads, the commit;
 *   - archiver-walk.c   the walker thread: lstat, directories, hard links,
 *                       the window of nodes;
 *   - archiver-merge.c  the calling thread following the walk: the merge
 *                       with the parent's nodes, jobs, tree blobs;
 *   - archiver-pack.c   the workers and the writer: read, chunk, dedup,
 *                       pack (a stream with helper threads), the queue. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backup/backup.h"
#include "backup/pathmap.h"
#include "lib/queue.h"

#define PACK_TARGET (16u << 20)
/* A pack is also full at this many blobs: its entry list (48 bytes a blob)
 * and, when sealed, its header (45 more) grow with the count, not the
 * bytes, and tiny files that compress to 60 bytes put 250,000 blobs in
 * 16 MiB (40 MiB more per pack in flight, three in flight). */
#define PACK_TARGET_BLOBS 16384u
#define TREE_PACK_TARGET (4u << 20)
#define QUEUE_LEN 1024u
#define MAX_THREADS 16
/* Nodes the window holds at most: the walker waits beyond it. */
#define WINDOW_MAX 8192u

/* A walked directory kept open for the workers, who open its files by
 * name in it (openat) rather than by their whole path: one lookup, not a
 * path walk each. The walker holds a reference while it reads the
 * directory, each file node one until its job is done; the last one
 * closes fd. Slots are a fixed pool (see archiver_dir_new) so the open
 * descriptors stay well under RLIMIT_NOFILE. */
struct dir_ref {
	int fd;
	atomic_uint refs;
};

struct file_job {
	size_t node; /* its sequence number in the walk */
	atomic_bool done;
	char *path; /* absolute, to open */
	struct dir_ref *dir; /* path's directory, or NULL: open by path */
	struct xattr *xattrs; /* read from the open file by the worker */
	uint16_t nxattrs;
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
	/* The pool of directory references, and each window node's (by walk
	 * sequence modulo WINDOW_MAX: a slot is reused only after its node
	 * is released). The walker fills node_dir, the follower reads it. */
	struct dir_ref *dirs;
	size_t ndirs, dir_next;
	struct dir_ref *node_dir[WINDOW_MAX];
	struct dir_ref *cur_dir; /* the walker's, of the directory being read */

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

	struct queue files; /* of struct file_job *, QUEUE_LEN */

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

/* The first error wins; every thread stops at it. */
static inline void archiver_set_error(struct archiver *a, int r)
{
	int zero = 0;

	atomic_compare_exchange_strong(&a->error, &zero, r);
}

/* A file or directory skipped: counted, and told to the caller. */
static inline void archiver_report_skip(struct archiver *a, const char *abs, int error)
{
	a->sum.errors++;
	if (a->o->skipped)
		a->o->skipped(abs, error, a->o->userdata);
}

/* The window's node of walk sequence seq (under tlock once published). */
static inline struct node *archiver_node(struct archiver *a, size_t seq)
{
	return &a->tree->nodes[seq - a->base];
}

/* ---- archiver-walk.c: the walker thread ---- */

/* The thread that walks a->paths (then the stream's node) into the
 * window; its error goes to a->error. */
void *archiver_walker_main(void *arg);
/* Reads the extended attributes of fd (if >= 0) or else of path into *xs
 * (none when unsupported). */
int archiver_read_xattrs(const char *path, int fd, struct xattr **xs, uint16_t *n);
/* Drops one reference to d (NULL: none); any thread. */
void archiver_dir_put(struct dir_ref *d);
/* Closes every directory still referenced (the threads are gone). */
void archiver_dirs_close(struct archiver *a);

/* ---- archiver-merge.c: following the walk (the calling thread) ---- */

/* Follows the walker through the published nodes until it is done: files
 * the parent has unchanged take its chunks, the others go to the queue. */
int archiver_follow_walk(struct archiver *a);
/* Encodes the front of the window up to walk sequence upto, stopping at a
 * file whose job is not done, and releases those nodes. */
int archiver_encode_front(struct archiver *a, size_t upto);
/* Frees a job and what it holds (its directory reference too). */
void archiver_job_free(struct file_job *job);
/* Cuts the encoded nodes into tree blobs (all of them when last). */
int archiver_cut_tree(struct archiver *a, bool last);

/* ---- archiver-pack.c: workers, the writer, the queue ---- */

/* Stores one chunk unless the repository (or another worker) has it; a
 * full pack goes to the writer thread when there is one (async). */
int archiver_store_chunk(struct archiver *a, struct crypto_ctx *c, struct pack_writer *w,
			 enum blob_type type, const uint8_t *data, size_t len, uint8_t id[32],
			 bool async);
/* Writes the pack w and points its blobs at it in the index. */
int archiver_flush_pack(struct archiver *a, struct crypto_ctx *c, struct pack_writer *w);
/* The threads: a worker (arg: struct worker) and the pack writer (arg:
 * struct archiver). */
void *archiver_worker_main(void *arg);
void *archiver_writer_main(void *arg);
void archiver_queue_push_many(struct archiver *a, struct file_job **jobs, size_t n);
/* No more jobs: the workers drain the queue and return. */
void archiver_queue_close(struct archiver *a);
/* Threads to run for wanted (0: one per CPU), 1 to MAX_THREADS. */
int archiver_threads(int wanted);
