/* The archiver's calling thread following the walk: it reads the parent
 * snapshot's node stream alongside the published nodes (both in path
 * order: a merge, no map of the parent), gives unchanged files the
 * parent's chunks, queues the rest, and encodes the window's front into
 * tree blobs once its files are done (see archiver.c). */
#include "backup/archiver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"

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
	struct node *n = archiver_node(a, pos), *p;
	struct dir_ref *dir = a->node_dir[pos % WINDOW_MAX];
	size_t len = strlen(n->path);
	int r;

	*ret = NULL;
	a->node_dir[pos % WINDOW_MAX] = NULL;
	if (pos == a->stream_node) {
		a->sum.files_new++;
		r = add_job(a, pos, n->path, UINT64_MAX, ret);
		if (r >= 0)
			(*ret)->fd = a->o->stream->fd;
		return r;
	}
	if ((r = parent_node(a, n->path, &p)) < 0) {
		archiver_dir_put(dir);
		return r;
	}
	if (p) {
		if (!a->o->force && p->type == NODE_FILE && p->size == n->size &&
		    p->mtime_ns == n->mtime_ns && p->ctime_ns == n->ctime_ns && p->ino == n->ino) {
			a->sum.files_unchanged++;
			atomic_fetch_add(&a->files_done, 1);
			atomic_fetch_add(&a->bytes_done, n->size);
			take_node_data(n, p);
			archiver_dir_put(dir);
			return 0;
		}
		a->sum.files_changed++;
	} else {
		a->sum.files_new++;
	}
	/* Its xattrs are the worker's to read, from the open file. */
	if ((r = bytes_reserve((uint8_t **)abs, abs_cap, len + 2)) >= 0) {
		(*abs)[0] = '/';
		memcpy(*abs + 1, n->path, len + 1);
		r = add_job(a, pos, *abs, n->size, ret);
	}
	if (r < 0)
		archiver_dir_put(dir);
	else
		(*ret)->dir = dir;
	return r;
}

/* The worker's result into the node. */
static void job_to_node(struct archiver *a, struct file_job *job, struct node *n)
{
	if (job->error) {
		archiver_report_skip(a, job->path, job->error);
		n->type = NODE_ERROR;
		n->link = strdup(err_str(job->error)); /* NULL (no memory): no reason given */
	} else {
		n->chunks = TAKE_PTR(job->chunks);
		n->nchunks = job->nchunks;
		n->size = job->size;
		n->xattrs = TAKE_PTR(job->xattrs);
		n->nxattrs = job->nxattrs;
		job->nxattrs = 0;
	}
	archiver_job_free(job);
}

void archiver_job_free(struct file_job *job)
{
	archiver_dir_put(job->dir);
	for (size_t i = 0; i < job->nxattrs; i++) {
		free(job->xattrs[i].name);
		free(job->xattrs[i].value);
	}
	free(job->xattrs);
	free(job->path);
	free(job->chunks);
	free(job);
}

/* Cuts the encoded nodes into tree blobs while a whole chunker's maximum
 * is there (all of it when last). */
int archiver_cut_tree(struct archiver *a, bool last)
{
	const struct chunker *ch = &a->repo->chunker;
	int r = 0;

	while (r >= 0 && a->enc_len > a->enc_off && (last || a->enc_len - a->enc_off >= ch->max)) {
		size_t cut = chunker_next(ch, a->enc + a->enc_off, a->enc_len - a->enc_off);
		uint8_t(*nt)[32] = realloc(a->tree_ids, (a->ntree + 1) * 32);

		if (!nt)
			return -ENOMEM;
		a->tree_ids = nt;
		r = archiver_store_chunk(a, a->repo->crypto, &a->tree_pack, BLOB_TREE,
					 a->enc + a->enc_off, cut, a->tree_ids[a->ntree], false);
		a->ntree++;
		a->enc_off += cut;
		/* Written while the workers' packs are in memory too: smaller. */
		if (r >= 0 && a->tree_pack.len >= TREE_PACK_TARGET)
			r = archiver_flush_pack(a, a->repo->crypto, &a->tree_pack);
	}
	return r;
}

/* Encodes the front of the window up to `upto` (walk sequence), stopping
 * at a file whose job is not done; the nodes are released and the walker
 * may reuse their room. Holds tlock while it touches nodes. */
int archiver_encode_front(struct archiver *a, size_t upto)
{
	size_t start;
	int r = 0;

	pthread_mutex_lock(&a->tlock);
	start = a->released;
	while (a->released < upto) {
		struct node *n = archiver_node(a, a->released);
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
	return r < 0 ? r : archiver_cut_tree(a, false);
}

/* Nodes the follower handles per hold of tlock. */
#define FOLLOW_BATCH 512u

/* Follows the walker through the published nodes until it is done. */
int archiver_follow_walk(struct archiver *a)
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
			if (archiver_node(a, i)->type != NODE_FILE)
				continue;
			r = follow_file(a, i, &abs, &abs_cap, &batch[nbatch]);
			if (r >= 0 && batch[nbatch])
				nbatch++;
		}
		pthread_mutex_unlock(&a->tlock);
		/* Outside tlock: a full queue waits for the workers, the walker
		 * goes on. */
		archiver_queue_push_many(a, batch, nbatch);
		if (r >= 0)
			r = archiver_encode_front(a, i);
		if (r < 0 || done || atomic_load(&a->error))
			return r;
	}
}
