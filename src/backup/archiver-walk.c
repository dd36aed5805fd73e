/* The archiver's walker thread: lstat()s the backup paths and appends
 * their nodes to the window, a directory at a time, in path order (see
 * archiver.c). */
#include "backup/archiver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/err.h"

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

int archiver_read_xattrs(const char *path, int fd, struct xattr **xs, uint16_t *nxs)
{
	char names[16384];
	ssize_t len = fd >= 0 ? flistxattr(fd, names, sizeof(names)) :
				llistxattr(path, names, sizeof(names));

	if (len <= 0)
		return 0; /* none, or not supported here */
	for (ssize_t off = 0; off < len && *nxs < TREE_MAX_XATTRS;) {
		const char *name = names + off;
		uint8_t value[TREE_MAX_XATTR_VALUE];
		ssize_t vlen = fd >= 0 ? fgetxattr(fd, name, value, sizeof(value)) :
					 lgetxattr(path, name, value, sizeof(value));
		struct xattr *nx;

		off += (ssize_t)strlen(name) + 1;
		if (vlen < 0 || strlen(name) > 255)
			continue;
		nx = realloc(*xs, (*nxs + 1) * sizeof(*nx));
		if (!nx)
			return -ENOMEM;
		*xs = nx;
		nx = &nx[*nxs];
		nx->name = strdup(name);
		nx->value = malloc(vlen ? (size_t)vlen : 1);
		if (!nx->name || !nx->value) {
			free(nx->name);
			free(nx->value);
			return -ENOMEM;
		}
		memcpy(nx->value, value, (size_t)vlen);
		nx->len = (uint32_t)vlen;
		(*nxs)++;
	}
	return 0;
}

/* ---- directories kept open for the workers ---- */

/* Slots scanned for a free one before the directory goes without. */
#define DIR_SCAN 64u

/* The pool: a quarter of the descriptor limit, at most 4096 (a window of
 * 8192 small files spans a few hundred directories). */
static void dirs_init(struct archiver *a)
{
	struct rlimit rl;
	size_t n = 4096;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 4 < n)
		n = rl.rlim_cur / 4;
	if (n < 16 || !(a->dirs = calloc(n, sizeof(*a->dirs))))
		return; /* every file by its path */
	a->ndirs = n;
	for (size_t i = 0; i < n; i++)
		a->dirs[i].fd = -1;
}

/* A reference (the walker's) to a copy of the directory fd, or NULL when
 * the pool is full or no descriptor is left: its files go by path. */
static struct dir_ref *dir_new(struct archiver *a, int fd)
{
	for (size_t k = 0; k < DIR_SCAN && k < a->ndirs; k++) {
		struct dir_ref *d = &a->dirs[(a->dir_next + k) % a->ndirs];

		if (atomic_load(&d->refs))
			continue;
		a->dir_next = (a->dir_next + k + 1) % a->ndirs;
		/* Its last holder closed the old fd before the count fell. */
		if ((d->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
			return NULL;
		atomic_store(&d->refs, 1);
		return d;
	}
	return NULL;
}

void archiver_dir_put(struct dir_ref *d)
{
	int fd;

	if (!d)
		return;
	fd = d->fd; /* read first: at 0 the walker may reuse the slot */
	if (atomic_fetch_sub(&d->refs, 1) == 1)
		close(fd);
}

void archiver_dirs_close(struct archiver *a)
{
	for (size_t i = 0; i < a->ndirs; i++) {
		if (atomic_load(&a->dirs[i].refs))
			close(a->dirs[i].fd);
	}
	free(a->dirs);
	a->dirs = NULL;
	a->ndirs = 0;
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

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
	struct dir_ref *outer = a->cur_dir;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	a->cur_dir = dir_new(a, fd);
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
			archiver_report_skip(a, a->path, -errno);
			r = add_error_node(a, a->path + 1, -errno);
		} else {
			r = walk(a, dirfd(d), names[i], &st, root_dev);
		}
		path_pop(a, old);
		if (a->base + a->tree->n - a->walked >= PUBLISH_EVERY)
			publish(a, false);
	}
	archiver_dir_put(a->cur_dir);
	a->cur_dir = outer;
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
static int walk_file(struct archiver *a, int dfd, struct node *n, const struct stat *st)
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
		n->flags |= NODE_LINKED; /* the readers keep it for the links to come */
	}
	n->type = NODE_FILE;
	/* The follower hands the reference to the file's job (from a
	 * top-level path, cur_dir is NULL: opened by path). */
	if (a->cur_dir && dfd != AT_FDCWD)
		atomic_fetch_add(&a->cur_dir->refs, 1);
	a->node_dir[(a->base + a->tree->n - 1) % WINDOW_MAX] = dfd != AT_FDCWD ? a->cur_dir : NULL;
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
			archiver_report_skip(a, a->path, fd);
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
		return walk_file(a, dfd, n, st);
	if (S_ISLNK(st->st_mode)) {
		char target[TREE_MAX_PATH + 1];
		ssize_t len = readlinkat(dfd, name, target, sizeof(target) - 1);

		if (len < 0) {
			r = -errno;
			n->type = NODE_ERROR;
			n->link = strdup(err_str(r));
			archiver_report_skip(a, a->path, r);
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
	if ((r = archiver_read_xattrs(a->path, fd, &n->xattrs, &n->nxattrs)) < 0) {
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
	a->node_dir[a->stream_node % WINDOW_MAX] = NULL;
	atomic_fetch_add(&a->files_seen, 1);
	return 0;
}

void *archiver_walker_main(void *arg)
{
	struct archiver *a = arg;
	int r = 0;

	dirs_init(a);
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
		archiver_set_error(a, r);
	publish(a, true);
	return NULL;
}
