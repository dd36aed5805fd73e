/* restore_run(): three passes over the snapshot's node stream: the
 * directories (all before any file, as ext4 places them best so), then
 * the files, in batches of one directory, to several threads through a
 * bounded queue, then symlinks, specials and hard links once every file
 * is there; then the directories' metadata (deepest first, so writing
 * into a directory does not change its restored mtime). Memory holds the
 * directories' nodes and the batches in flight, never the whole tree. Every chunk is checked (tag and keyed ID) on its way out; a
 * damaged one leaves a hole in its file, is reported with the file's name
 * and the rest goes on.
 *
 * Everything stays beneath the target, whatever the snapshot says and
 * whatever the target already holds: the tree decoder has refused paths
 * with "..", "." or empty components, absolute ones, and children of
 * non-directories; every path is opened relative to the target's fd with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) (a walk of O_NOFOLLOW
 * opens before Linux 5.6); nodes are created and their metadata set with
 * *at() calls on the parent's fd or through their own fd, never by full
 * path, so no symlink is followed. Whatever is in the way of a node (a
 * symlink where a directory goes, a file planted as a hard link to a file
 * elsewhere) is removed and the node created afresh, never written
 * through. Symlinks come after every file and directory. */
#include "backup/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <zstd.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "backup/restorer.h"

static bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static int pack_fd(struct rworker *w, uint32_t pack)
{
	struct repo *repo = w->r->repo;
	char name[128];
	unsigned slot;
	int fd;

	for (unsigned i = 0; i < FD_CACHE; i++)
		if (w->fds[i] >= 0 && w->fd_pack[i] == pack)
			return w->fds[i];
	repo_object_name("data", repo->index->packs[pack], name, sizeof(name));
	fd = repo->backend->ops->open_read(repo->backend, name);
	if (fd < 0)
		return fd == -ENOENT ? -BCDR_ERR_NOT_FOUND : fd;
	slot = w->fd_next++ % FD_CACHE;
	if (w->fds[slot] >= 0)
		close(w->fds[slot]);
	w->fds[slot] = fd;
	w->fd_pack[slot] = pack;
	return fd;
}

/* repo_read_blob() through the worker's open packs. */
static int read_blob(struct rworker *w, const uint8_t id[32])
{
	struct repo *repo = w->r->repo;
	struct index_blob bc, *b;
	int fd, r;

	if (!repo->backend->ops->open_read)
		return repo_read_blob(repo, w->crypto, w->dctx, BLOB_DATA, id, &w->buf, &w->cap,
				      &w->scratch, &w->scap);
	b = index_lookup(repo->index, id, &bc) >= 0 ? &bc : NULL;
	if (!b || b->pack == INDEX_NO_PACK)
		return -BCDR_ERR_NOT_FOUND;
	if (b->type != BLOB_DATA)
		return -BCDR_ERR_CORRUPT;
	if ((r = bytes_reserve(&w->scratch, &w->scap, 2 * (size_t)b->length)) < 0 ||
	    (r = bytes_reserve(&w->buf, &w->cap, (size_t)b->raw_length + 1)) < 0)
		return r;
	fd = pack_fd(w, b->pack);
	if (fd < 0)
		return fd;
	r = fs_pread_full(fd, w->scratch, b->length, (off_t)b->offset);
	if (r < 0)
		return r;
	r = blob_open(w->crypto, BLOB_DATA, id, w->scratch, b->length, w->scratch + b->length,
		      w->buf, b->raw_length, w->dctx, true);
	if (r >= 0 && (uint32_t)r != b->raw_length)
		return -BCDR_ERR_CORRUPT;
	return r;
}

/* Writes buf at off, leaving holes for all-zero 64 KiB blocks; the data
 * between holes goes in one write. Returns whether the last block was a
 * hole, or -errno. */
int rs_write_sparse(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	const size_t block = 64u << 10;
	size_t run = 0; /* start of the data not yet written */
	bool hole = false;
	int r;

	for (size_t at = 0; at < len; at += block) {
		size_t n = len - at < block ? len - at : block;

		hole = all_zero(buf + at, n);
		if (hole) {
			if (at > run &&
			    (r = fs_pwrite_full(fd, buf + run, at - run, (off_t)(off + run))) < 0)
				return r;
			run = at + n;
		}
	}
	if (len > run && (r = fs_pwrite_full(fd, buf + run, len - run, (off_t)(off + run))) < 0)
		return r;
	return hole;
}

void rs_problem(struct restorer *rs, const char *path, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	atomic_fetch_add(&rs->errors, 1);
	if (rs->o->problem) {
		pthread_mutex_lock(&rs->report_lock);
		rs->o->problem(path, what, rs->o->userdata);
		pthread_mutex_unlock(&rs->report_lock);
	}
}

/* Opens path[0, len) beneath the target (len 0: the target itself)
 * without following any symlink, the last component included; flags are
 * open(2)'s. The tree decoder has refused "..", "." and empty components;
 * the walk checks again, as it is the only guard there. */
int rs_open_beneath(struct restorer *rs, const char *path, size_t len, int flags)
{
	char buf[TREE_MAX_PATH + 1], *p = buf;
	int fd;

	flags |= O_NOFOLLOW | O_CLOEXEC;
	if (len == 0)
		return (fd = openat(rs->rootfd, ".", flags)) < 0 ? -errno : fd;
	if (len > TREE_MAX_PATH)
		return -ENAMETOOLONG;
	memcpy(buf, path, len);
	buf[len] = 0;
	if (__atomic_load_n(&rs->use_openat2, __ATOMIC_RELAXED)) {
		struct open_how how = {
			.flags = (uint64_t)flags,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
		};

		fd = (int)syscall(SYS_openat2, rs->rootfd, buf, &how, sizeof(how));
		if (fd >= 0)
			return fd;
		if (errno != ENOSYS)
			return -errno;
		__atomic_store_n(&rs->use_openat2, false, __ATOMIC_RELAXED);
	}
	if (tree_path_invalid(buf))
		return -EINVAL;
	fd = openat(rs->rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	while (fd >= 0) {
		char *slash = strchr(p, '/');
		int next, e;

		if (slash)
			*slash = 0;
		next = openat(fd, p, slash ? O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC : flags);
		e = errno;
		close(fd);
		if (next < 0 || !slash)
			return next < 0 ? -e : next;
		fd = next;
		p = slash + 1;
	}
	return -errno;
}

/* The directory of path, opened beneath the target; *ret_name is the last
 * component of path. */
int rs_open_parent_of(struct restorer *rs, const char *path, const char **ret_name)
{
	const char *slash = strrchr(path, '/');

	*ret_name = slash ? slash + 1 : path;
	return rs_open_beneath(rs, path, slash ? (size_t)(slash - path) : 0, O_PATH | O_DIRECTORY);
}

/* Why a path could not be opened beneath the target, for a message. */
const char *rs_beneath_error(int r)
{
	if (r == -ELOOP)
		return "a symbolic link is on its path (not followed)";
	if (r == -EXDEV)
		return "its path leads out of the target";
	if (r == -EINVAL)
		return "an invalid path";
	return strerror(-r);
}

/* Removes whatever is at name in dirfd (an empty directory too), so that a
 * node is created afresh, never written through. */
static void remove_in_way(int dirfd, const char *name)
{
	if (unlinkat(dirfd, name, 0) < 0 && errno == EISDIR)
		unlinkat(dirfd, name, AT_REMOVEDIR);
}

static void set_xattrs(struct restorer *rs, int fd, int dirfd, const char *name,
		       const struct node *n)
{
	char proc[64 + TREE_MAX_PATH];

	/* A symlink has no fd to set them through: its name in the parent
	 * this restore holds open. */
	if (fd < 0 && n->nxattrs)
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dirfd, name);
	for (uint16_t i = 0; i < n->nxattrs; i++) {
		int r = fd >= 0 ? fsetxattr(fd, n->xattrs[i].name, n->xattrs[i].value,
					    n->xattrs[i].len, 0)
				: lsetxattr(proc, n->xattrs[i].name, n->xattrs[i].value,
					    n->xattrs[i].len, 0);

		/* Not every file system (or user) can set every namespace. */
		if (r < 0 && errno != ENOTSUP && errno != EPERM)
			rs_problem(rs, n->path, "cannot set attribute '%s': %s", n->xattrs[i].name,
				strerror(errno));
	}
}

static void set_times(int fd, int dirfd, const char *name, const struct node *n)
{
	struct timespec ts[2] = {
		{ n->mtime_ns / 1000000000, n->mtime_ns % 1000000000 },
		{ n->mtime_ns / 1000000000, n->mtime_ns % 1000000000 },
	};

	if (fd >= 0)
		futimens(fd, ts);
	else
		utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

/* Reads the file back and compares every chunk's keyed ID. */
int rs_verify_file(struct rworker *w, int fd, const struct node *n)
{
	struct restorer *rs = w->r;
	uint64_t off = 0;

	for (uint32_t i = 0; i < n->nchunks; i++) {
		struct index_blob bc;
		const struct index_blob *b =
			index_lookup(rs->repo->index, n->chunks[i], &bc) >= 0 ? &bc : NULL;
		uint8_t id[32];
		size_t got = 0;
		int r;

		if (!b)
			return -BCDR_ERR_NOT_FOUND;
		if (w->cap < b->raw_length + 1) {
			uint8_t *nb = realloc(w->buf, b->raw_length + 1);

			if (!nb)
				return -ENOMEM;
			w->buf = nb;
			w->cap = b->raw_length + 1;
		}
		while (got < b->raw_length) {
			ssize_t k = pread(fd, w->buf + got, b->raw_length - got, (off_t)(off + got));

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				return k < 0 ? -errno : -BCDR_ERR_CORRUPT;
			got += (size_t)k;
		}
		if ((r = crypto_blob_id(w->crypto, w->buf, got, id)) < 0)
			return r;
		if (memcmp(id, n->chunks[i], 32) != 0)
			return -BCDR_ERR_CORRUPT;
		off += got;
	}
	return 0;
}

/* Creates the file name in dirfd, a new inode in every case: what was
 * there (a file, a symlink, a hard link to a file outside the target) is
 * removed, not opened. */
int rs_create_file(int dirfd, const char *name)
{
	const int flags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int fd = openat(dirfd, name, flags, 0600);

	if (fd < 0 && errno == EEXIST) {
		remove_in_way(dirfd, name);
		fd = openat(dirfd, name, flags, 0600);
	}
	return fd < 0 ? -errno : fd;
}

void rs_chunk_problem(struct restorer *rs, const struct node *n, uint32_t chunk, uint64_t off,
		      int r)
{
	char hex[65];

	hex_encode(n->chunks[chunk], 32, hex);
	rs_problem(rs, n->path, "chunk %u (%.16s) at offset %llu is %s: %s", chunk, hex,
		   (unsigned long long)off, r == -BCDR_ERR_NOT_FOUND ? "missing" : "damaged",
		   err_str(r));
}

void rs_file_meta(struct restorer *rs, int fd, const struct node *n)
{
	/* The file is new and ours already (no set-group-ID directory on the
	 * way): one system call less per file. */
	if (!(rs->owner_is_ours && n->uid == rs->euid && n->gid == rs->egid) &&
	    fchown(fd, n->uid, n->gid) < 0 && errno != EPERM)
		rs_problem(rs, n->path, "cannot set owner: %s", strerror(errno));
	set_xattrs(rs, fd, -1, NULL, n);
	if (fchmod(fd, n->mode & 07777) < 0)
		rs_problem(rs, n->path, "cannot set mode: %s", strerror(errno));
	set_times(fd, -1, "", n);
}

/* dirfd: the file's directory, or -errno when it could not be opened. */
static void restore_file(struct rworker *w, int dirfd, const struct node *n)
{
	struct restorer *rs = w->r;
	const char *name = strrchr(n->path, '/');
	_cleanup_close_ int fd = -1;
	uint64_t off = 0;
	bool hole_at_end = false, damaged = false;

	if (dirfd < 0)
		return rs_problem(rs, n->path, "cannot create: its directory: %s",
			       rs_beneath_error(dirfd));
	fd = rs_create_file(dirfd, name ? name + 1 : n->path);
	if (fd < 0)
		return rs_problem(rs, n->path, "cannot create: %s", strerror(-fd));
	for (uint32_t i = 0; i < n->nchunks; i++) {
		int r = read_blob(w, n->chunks[i]);

		if (r < 0) {
			struct index_blob bc;
			const struct index_blob *b =
				index_lookup(rs->repo->index, n->chunks[i], &bc) >= 0 ? &bc : NULL;

			rs_chunk_problem(rs, n, i, off, r);
			damaged = true;
			off += b ? b->raw_length : 0;
			hole_at_end = true;
			continue;
		}
		/* Zeros become holes: sparse files come back sparse. */
		int h = rs_write_sparse(fd, w->buf, (size_t)r, off);

		if (h < 0)
			return rs_problem(rs, n->path, "cannot write: %s", strerror(-h));
		hole_at_end = h > 0;
		off += (uint64_t)r;
		atomic_fetch_add(&rs->bytes_done, (uint64_t)r);
	}
	if (hole_at_end && ftruncate(fd, (off_t)off) < 0)
		return rs_problem(rs, n->path, "cannot extend: %s", strerror(errno));
	if (rs->o->verify && !damaged) {
		int r = rs_verify_file(w, fd, n);

		if (r < 0)
			rs_problem(rs, n->path, "verification failed: %s", err_str(r));
		else
			atomic_fetch_add(&rs->verified, 1);
	}
	rs_file_meta(rs, fd, n);
}

static struct batch *batch_pop(struct restorer *rs)
{
	struct batch *b = NULL;

	return queue_pop(&rs->batches, &b) ? b : NULL;
}

static void batch_push(struct restorer *rs, struct batch *b)
{
	queue_push(&rs->batches, &b);
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; b && i < b->n; i++)
		node_release(&b->files[i]);
	free(b);
}

static void *rworker_main(void *arg)
{
	struct rworker *w = arg;
	struct restorer *rs = w->r;
	struct batch *b;

	while ((b = batch_pop(rs))) {
		const char *name;
		int dirfd = rs_open_parent_of(rs, b->files[0].path, &name);

		for (size_t i = 0; i < b->n; i++) {
			restore_file(w, dirfd, &b->files[i]);
			atomic_fetch_add(&rs->files_done, 1);
		}
		if (dirfd >= 0)
			close(dirfd);
		batch_free(b);
	}
	return NULL;
}

/* Whether two paths have the same directory part. */
bool rs_same_dir(const char *a, const char *b)
{
	const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
	size_t la = sa ? (size_t)(sa - a) : 0, lb = sb ? (size_t)(sb - b) : 0;

	return la == lb && memcmp(a, b, la) == 0;
}

bool rs_selected(char **include, const struct node *n)
{
	if (!include || !include[0])
		return true;
	for (char **p = include; *p; p++) {
		const char *inc = *p;
		size_t il, nl = strlen(n->path);

		while (*inc == '/')
			inc++;
		il = strlen(inc);
		while (il && inc[il - 1] == '/')
			il--;
		if (il == 0)
			return true;
		/* The path itself, what is under it, and the directories above. */
		if (strncmp(n->path, inc, il) == 0 && (n->path[il] == 0 || n->path[il] == '/'))
			return true;
		if (n->type == NODE_DIR && nl < il && strncmp(inc, n->path, nl) == 0 && inc[nl] == '/')
			return true;
	}
	return false;
}

/* A directory node: made in its parent; a symlink or a file where it goes
 * is replaced by it (tar's way), not followed. */
static void restore_dir(struct restorer *rs, const struct node *n)
{
	const char *name;
	_cleanup_close_ int dirfd = rs_open_parent_of(rs, n->path, &name);
	struct stat st;

	if (dirfd < 0)
		return rs_problem(rs, n->path, "cannot create directory: its parent: %s",
			       rs_beneath_error(dirfd));
	if (mkdirat(dirfd, name, 0700) == 0)
		return;
	if (errno == EEXIST && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode)) {
			atomic_store(&rs->owner_is_ours, false); /* it may be set-group-ID */
			return;
		}
		if (unlinkat(dirfd, name, 0) == 0 && mkdirat(dirfd, name, 0700) == 0)
			return;
	}
	rs_problem(rs, n->path, "cannot create directory: %s", strerror(errno));
}

static void restore_other(struct restorer *rs, const struct node *n)
{
	const char *name;
	_cleanup_close_ int dirfd = rs_open_parent_of(rs, n->path, &name);

	if (dirfd < 0)
		return rs_problem(rs, n->path, "cannot create: its directory: %s",
			       rs_beneath_error(dirfd));
	remove_in_way(dirfd, name);
	if (n->type == NODE_SYMLINK) {
		if (symlinkat(n->link ? n->link : "", dirfd, name) < 0)
			return rs_problem(rs, n->path, "cannot create symlink: %s", strerror(errno));
		if (fchownat(dirfd, name, n->uid, n->gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM)
			rs_problem(rs, n->path, "cannot set owner: %s", strerror(errno));
		set_xattrs(rs, -1, dirfd, name, n);
		set_times(-1, dirfd, name, n);
		return;
	}
	/* NODE_SPECIAL */
	if (S_ISFIFO(n->mode) ? mkfifoat(dirfd, name, n->mode & 07777) < 0
			      : mknodat(dirfd, name, n->mode, (dev_t)n->size) < 0) {
		if (errno == EPERM)
			return; /* devices need root; not a damaged backup */
		return rs_problem(rs, n->path, "cannot create: %s", strerror(errno));
	}
	if (fchownat(dirfd, name, n->uid, n->gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM)
		rs_problem(rs, n->path, "cannot set owner: %s", strerror(errno));
	set_times(-1, dirfd, name, n);
}

/* A hard link to n->link, an earlier file node (the decoder checked). */
static void restore_hardlink(struct restorer *rs, const struct node *n)
{
	const char *name, *src_name;
	_cleanup_close_ int dirfd = rs_open_parent_of(rs, n->path, &name);
	_cleanup_close_ int src_dirfd = rs_open_parent_of(rs, n->link, &src_name);

	if (dirfd < 0 || src_dirfd < 0)
		return rs_problem(rs, n->path, "cannot link to '%s': %s", n->link,
			       rs_beneath_error(dirfd < 0 ? dirfd : src_dirfd));
	remove_in_way(dirfd, name);
	/* No AT_SYMLINK_FOLLOW: a symlink in the source's place is linked
	 * itself, never what it points to. */
	if (linkat(src_dirfd, src_name, dirfd, name, 0) < 0)
		rs_problem(rs, n->path, "cannot link to '%s': %s", n->link, strerror(errno));
}

static void restore_dir_meta(struct restorer *rs, const struct node *n)
{
	_cleanup_close_ int fd = rs_open_beneath(rs, n->path, strlen(n->path),
					      O_RDONLY | O_DIRECTORY);

	if (fd < 0) {
		if (fd != -ENOENT) /* not made: said already */
			rs_problem(rs, n->path, "cannot set metadata: %s", rs_beneath_error(fd));
		return;
	}
	if (fchown(fd, n->uid, n->gid) < 0 && errno != EPERM)
		rs_problem(rs, n->path, "cannot set owner: %s", strerror(errno));
	set_xattrs(rs, fd, -1, NULL, n);
	if (fchmod(fd, n->mode & 07777) < 0)
		rs_problem(rs, n->path, "cannot set mode: %s", strerror(errno));
	set_times(fd, -1, "", n);
}

/* The nodes the tree reader refused: named, skipped, counted. */
static void report_refused(struct restorer *rs, const struct tree *t)
{
	for (size_t i = 0; i < t->nrefused_kept; i++) {
		const struct tree_refusal *f = &t->refused[i];
		struct node probe = { .path = f->path };

		if (!rs_selected(rs->o->include, &probe))
			continue;
		if (f->link)
			rs_problem(rs, f->path, "skipped, invalid node (hard link to '%s'): %s", f->link,
				f->why);
		else
			rs_problem(rs, f->path, "skipped, invalid node: %s", f->why);
	}
	if (t->nrefused > t->nrefused_kept && !rs->o->include) {
		rs_problem(rs, "(snapshot)", "skipped %llu more invalid nodes",
			(unsigned long long)(t->nrefused - t->nrefused_kept));
	}
}

static void *rprogress_main(void *arg)
{
	struct restorer *rs = arg;

	pthread_mutex_lock(&rs->plock);
	while (!rs->pstop) {
		struct timespec ts;
		struct backup_progress p = {};

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&rs->pcond, &rs->plock, &ts);
		if (rs->pstop)
			break;
		p.files_done = atomic_load(&rs->files_done);
		p.files_seen = atomic_load(&rs->nfiles);
		p.bytes_done = atomic_load(&rs->bytes_done);
		p.bytes_seen = atomic_load(&rs->bytes_total);
		p.walk_done = atomic_load(&rs->walk_done);
		p.elapsed = now_monotonic() - rs->start;
		rs->o->progress(&p, rs->o->userdata);
	}
	pthread_mutex_unlock(&rs->plock);
	return NULL;
}

/* Pass one: the directories, their nodes kept in *dirs for their
 * metadata at the end. */
static int dir_pass(struct restorer *rs, struct tree_reader *tr, struct tree *dirs,
		    struct restore_result *res)
{
	struct node *n;
	int r;

	while ((r = tree_reader_next(tr, &n)) == 1) {
		struct node *d;

		if (n->type != NODE_DIR || !rs_selected(rs->o->include, n))
			continue;
		restore_dir(rs, n);
		res->dirs++;
		if (!(d = tree_append(dirs)))
			return -ENOMEM;
		*d = *n;
		memset(n, 0, sizeof(*n));
	}
	return r;
}

/* Pass two: the files, handed to the workers in batches. */
static int file_pass(struct restorer *rs, const struct snapshot *s)
{
	struct tree_reader *tr;
	struct batch *b = NULL;
	struct node *n;
	int r = repo_tree_open(rs->repo, s, &tr);

	while (r >= 0 && (r = tree_reader_next(tr, &n)) == 1) {
		if (!rs_selected(rs->o->include, n))
			continue;
		if (n->type == NODE_FILE) {
			if (b && (b->n == BATCH_MAX || !rs_same_dir(b->files[0].path, n->path))) {
				batch_push(rs, TAKE_PTR(b));
			}
			if (!b && !(b = calloc(1, sizeof(*b)))) {
				r = -ENOMEM;
				break;
			}
			atomic_fetch_add(&rs->nfiles, 1);
			atomic_fetch_add(&rs->bytes_total, n->size);
			b->files[b->n++] = *n;
			memset(n, 0, sizeof(*n));
		}
	}
	if (b && r >= 0)
		batch_push(rs, TAKE_PTR(b));
	batch_free(b);
	repo_tree_close(tr);
	return r;
}

/* Pass three, once every file exists: symlinks, specials and hard links. */
static int link_pass(struct restorer *rs, const struct snapshot *s, struct restore_result *res)
{
	struct tree_reader *tr;
	struct node *n;
	int r = repo_tree_open(rs->repo, s, &tr);

	while (r >= 0 && (r = tree_reader_next(tr, &n)) == 1) {
		if (!rs_selected(rs->o->include, n))
			continue;
		if (n->type == NODE_SYMLINK || n->type == NODE_SPECIAL) {
			restore_other(rs, n);
			res->links++;
		} else if (n->type == NODE_HARDLINK) {
			restore_hardlink(rs, n);
			res->links++;
		}
	}
	repo_tree_close(tr);
	return r;
}

int restore_run(struct repo *repo, const struct snapshot *s, const struct restore_options *o,
		struct restore_result *ret)
{
	struct restorer rs = { .repo = repo, .o = o };
	struct rworker workers[MAX_THREADS] = {};
	struct restore_result res = {};
	/* A remote repository is read pack by pack (restorer-packs.c), one
	 * stream per connection; a local one by ranges of its pack files. */
	bool by_packs = !repo->backend->ops->open_read || getenv("BCDR_RESTORE_BY_PACKS");
	long want = o->threads > 0		   ? o->threads
		    : by_packs && repo->backend->connections ? (long)repo->backend->connections
							     : sysconf(_SC_NPROCESSORS_ONLN) * 2;
	int nthreads = want < 1 ? 1 : want > MAX_THREADS ? MAX_THREADS : (int)want;
	int started = 0, ready = 0, r;
	pthread_t progress;
	bool progress_started = false;
	struct tree_reader *tr = NULL;
	struct tree *dirs = tree_new();

	rs.start = now_monotonic();
	if (!dirs)
		return -ENOMEM;
	r = repo_load_index(repo);
	if (r >= 0)
		r = repo_tree_open(repo, s, &tr);
	if (r < 0) {
		tree_free(dirs);
		return r;
	}
	pthread_mutex_init(&rs.report_lock, NULL);
	pthread_mutex_init(&rs.plock, NULL);
	pthread_cond_init(&rs.pcond, NULL);
	rs.rootfd = -1;
	rs.use_openat2 = !getenv("BCDR_TEST_NO_OPENAT2"); /* tests of the fallback walk */
	r = queue_init(&rs.batches, sizeof(struct batch *), QUEUE_LEN);
	if (r >= 0)
		r = fs_mkdir_p(o->target, 0700);
	if (r >= 0 && (rs.rootfd = open(o->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = -errno;
	{
		struct stat tst;

		atomic_store(&rs.owner_is_ours,
			     r >= 0 && fstat(rs.rootfd, &tst) == 0 && !(tst.st_mode & S_ISGID));
		rs.euid = geteuid();
		rs.egid = getegid();
	}
	if (r >= 0)
		r = dir_pass(&rs, tr, dirs, &res);
	if (r >= 0)
		report_refused(&rs, tr->refused);
	repo_tree_close(TAKE_PTR(tr));
	if (r < 0)
		goto out;
	if (o->progress && pthread_create(&progress, NULL, rprogress_main, &rs) == 0)
		progress_started = true;
	for (int i = 0; i < nthreads; i++) {
		struct rworker *w = &workers[i];

		w->r = &rs;
		for (int k = 0; k < FD_CACHE; k++)
			w->fds[k] = -1;
		if (crypto_ctx_new(&repo->key, &w->crypto) < 0 || !(w->dctx = ZSTD_createDCtx()))
			break;
		ready++;
	}
	if (by_packs) {
		r = ready ? restore_by_packs(&rs, s, workers, ready) : -ENOMEM;
	} else {
		for (int i = 0; i < ready; i++) {
			if (pthread_create(&workers[i].thread, NULL, rworker_main, &workers[i]) != 0)
				break;
			pthread_setname_np(workers[i].thread, "bcdr-restore");
			started++;
		}
		r = started ? file_pass(&rs, s) : -ENOMEM;
	}
	atomic_store(&rs.walk_done, true);
	queue_close(&rs.batches);
	for (int i = 0; i < started; i++)
		pthread_join(workers[i].thread, NULL);
	if (progress_started) {
		pthread_mutex_lock(&rs.plock);
		rs.pstop = true;
		pthread_cond_signal(&rs.pcond);
		pthread_mutex_unlock(&rs.plock);
		pthread_join(progress, NULL);
	}
	if (r >= 0)
		r = link_pass(&rs, s, &res);
	for (size_t i = dirs->n; r >= 0 && i-- > 0;)
		restore_dir_meta(&rs, &dirs->nodes[i]);
out:
	for (int i = 0; i < nthreads; i++) {
		crypto_ctx_free(workers[i].crypto);
		ZSTD_freeDCtx(workers[i].dctx);
		free(workers[i].buf);
		free(workers[i].scratch);
		for (int k = 0; k < FD_CACHE; k++)
			if (workers[i].fds[k] > 0)
				close(workers[i].fds[k]);
	}
	res.files = atomic_load(&rs.files_done);
	res.bytes = atomic_load(&rs.bytes_done);
	res.errors = atomic_load(&rs.errors);
	res.verified = atomic_load(&rs.verified);
	if (rs.rootfd >= 0)
		close(rs.rootfd);
	repo_tree_close(tr);
	tree_free(dirs);
	pthread_mutex_destroy(&rs.report_lock);
	pthread_mutex_destroy(&rs.plock);
	pthread_cond_destroy(&rs.pcond);
	queue_destroy(&rs.batches);
	if (r < 0)
		return r;
	if (ret)
		*ret = res;
	return res.errors ? -BCDR_ERR_PARTIAL : 0;
}
