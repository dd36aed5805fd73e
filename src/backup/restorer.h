/* What restorer.c and restorer-packs.c share (no one else includes it):
 * the restore's state, a worker's, and the steps of restoring a file.
 * restorer.c restores files one after another, reading blobs by ranges
 * (a local repository, whose packs are files); restorer-packs.c reads
 * each pack's needed blobs in one stream (remote repositories) and writes
 * them where the files want them. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <zstd.h>

#include "backup/backup.h"
#include "lib/queue.h"

#define MAX_THREADS 16
/* Files per batch at most, so one big directory is still shared. */
#define BATCH_MAX 128u
/* Batches in flight at most. */
#define QUEUE_LEN 64u

struct batch {
	struct node files[BATCH_MAX];
	size_t n;
};

struct restorer {
	struct repo *repo;
	const struct restore_options *o;
	int rootfd;        /* the target: every path is opened beneath it */
	bool use_openat2;  /* until the kernel says ENOSYS */
	/* The files of a batch share a directory: a worker takes a batch,
	 * opens the directory once and creates its files relative to it (no
	 * path walk per file, and two workers do not queue on one
	 * directory's lock). */
	struct queue batches; /* of struct batch *, QUEUE_LEN */
	atomic_size_t nfiles;
	/* New files belong to euid:egid: the target is not set-group-ID and
	 * every directory was created by this restore. */
	atomic_bool owner_is_ours;
	uid_t euid;
	gid_t egid;
	atomic_uint_fast64_t files_done, bytes_done, errors, verified, bytes_total;
	atomic_bool walk_done;
	pthread_mutex_t report_lock;
	usec_t start;
	pthread_mutex_t plock;
	pthread_cond_t pcond;
	bool pstop;
	/* restorer-packs.c: a read that failed for good (the server is gone):
	 * the restore stops with it */
	atomic_int fatal;
};

#define FD_CACHE 8

struct rworker {
	struct restorer *r;
	pthread_t thread;
	struct crypto_ctx *crypto;
	ZSTD_DCtx *dctx;
	uint8_t *buf, *scratch;
	size_t cap, scap;
	/* Packs kept open: files restored one after another mostly read from
	 * the same few packs. */
	int fds[FD_CACHE];
	uint32_t fd_pack[FD_CACHE];
	uint64_t fd_file[FD_CACHE]; /* restorer-packs.c: the files open, by serial */
	unsigned fd_next;
	void *job; /* restorer-packs.c: the stream being read */
	uint8_t *vbuf; /* restorer-packs.c: verify's, as buf holds a blob to write */
	size_t vcap;
	/* restorer-packs.c: the directory of the last file this worker
	 * created (or -errno), and that file's path */
	int dir_fd;
	char *dir_of;
};

/* The steps of a file, in restorer.c. */
void rs_problem(struct restorer *rs, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int rs_open_beneath(struct restorer *rs, const char *path, size_t len, int flags);
int rs_open_parent_of(struct restorer *rs, const char *path, const char **ret_name);
const char *rs_beneath_error(int r);
int rs_create_file(int dirfd, const char *name);
int rs_write_sparse(int fd, const uint8_t *buf, size_t len, uint64_t off);
int rs_verify_file(struct rworker *w, int fd, const struct node *n);
/* Owner, attributes, mode and times of a restored file (its last step). */
void rs_file_meta(struct restorer *rs, int fd, const struct node *n);
/* The chunk's problem: missing or damaged, at offset off of n's file. */
void rs_chunk_problem(struct restorer *rs, const struct node *n, uint32_t chunk, uint64_t off,
		      int r);

bool rs_selected(char **include, const struct node *n);
/* Whether two paths have the same directory part. */
bool rs_same_dir(const char *a, const char *b);

/* restorer-packs.c: the files of the snapshot, pack by pack, on nthreads
 * workers (w, set up); called in place of the file pass. */
int restore_by_packs(struct restorer *rs, const struct snapshot *s, struct rworker *w,
		     int nthreads);
