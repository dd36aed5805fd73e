/* The local backend: objects as files in a directory. */
#include "repo/backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/fs.h"

struct local {
	struct backend b;
	char *root;
	int rootfd;
	atomic_bool no_direct; /* the file system refused O_DIRECT once */
};

static const char *const layout[] = { "keys", "data", "index", "snapshots", "locks" };

/* data/<first two hex digits>/<name> keeps directories small. */
static int local_path(struct local *l, const char *name, char *out, size_t size)
{
	(void)l;
	const char *slash = strchr(name, '/');
	int n;

	if (strstr(name, "..") || name[0] == '/')
		return -EINVAL;
	if (slash && strncmp(name, "data/", 5) == 0 && strlen(slash + 1) >= 2)
		n = snprintf(out, size, "data/%.2s/%s", slash + 1, slash + 1);
	else
		n = snprintf(out, size, "%s", name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int local_open_read(struct backend *b, const char *name)
{
	struct local *l = (struct local *)b;
	char rel[512];
	int fd, r = local_path(l, name, rel, sizeof(rel));

	if (r < 0)
		return r;
	fd = openat(l->rootfd, rel, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int local_get(struct backend *b, const char *name, size_t max, uint8_t **ret,
		     size_t *ret_len)
{
	_cleanup_close_ int fd = local_open_read(b, name);
	_cleanup_free_ uint8_t *data = NULL;
	struct stat st;
	size_t got = 0;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size > max)
		return -BCDR_ERR_TOO_BIG;
	data = malloc(st.st_size ? st.st_size : 1);
	if (!data)
		return -ENOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t n = fs_read(fd, data + got, st.st_size - got);

		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		got += n;
	}
	*ret = TAKE_PTR(data);
	*ret_len = got;
	return 0;
}

static int local_get_range(struct backend *b, const char *name, uint64_t offset, size_t len,
			   uint8_t *buf)
{
	_cleanup_close_ int fd = local_open_read(b, name);

	if (fd < 0)
		return fd;
	return fs_pread_full(fd, buf, len, (off_t)offset);
}

/* One descriptor, pieces of STREAM_PIECE: a restore of a local repository
 * streams as it reads ranges, without a request to save. */
static int local_get_stream(struct backend *b, const char *name, uint64_t offset, uint64_t len,
			    backend_stream_fn fn, void *ctx)
{
	_cleanup_close_ int fd = local_open_read(b, name);
	_cleanup_free_ uint8_t *piece = NULL;

	if (fd < 0)
		return fd;
	if (len && !(piece = malloc(len < STREAM_PIECE ? len : STREAM_PIECE)))
		return -ENOMEM;
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < STREAM_PIECE ? (size_t)(len - done) : STREAM_PIECE;
		int r = fs_pread_full(fd, piece, n, (off_t)(offset + done));

		if (r < 0 || (r = fn(piece, n, ctx)) < 0)
			return r;
		done += n;
	}
	return 0;
}

/* Creates dir (one level under the root, "data/xx") when missing; a new
 * directory is made durable in its parent before objects go into it. */
static int make_dir(int rootfd, const char *dir)
{
	char parent[512], *slash;

	if (mkdirat(rootfd, dir, 0700) < 0)
		return errno == EEXIST ? 0 : -errno;
	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (slash)
		*slash = 0;
	else
		snprintf(parent, sizeof(parent), ".");
	return fs_fsync_dir_at(rootfd, parent);
}

/* Packs of at least this many bytes go by O_DIRECT. */
#define DIRECT_MIN (1u << 20)
#define DIRECT_ALIGN 4096u

/* The aligned front of data straight from memory to the disk, the last
 * partial block from a zero-padded copy, cut back to len. */
static int write_direct(int fd, const uint8_t *data, size_t len)
{
	size_t head = len & ~(size_t)(DIRECT_ALIGN - 1);
	void *block = NULL;
	int r = fs_pwrite_full(fd, data, head, 0);

	if (r < 0 || head == len)
		return r;
	if (posix_memalign(&block, DIRECT_ALIGN, DIRECT_ALIGN) != 0)
		return -ENOMEM;
	memset(block, 0, DIRECT_ALIGN);
	memcpy(block, data + head, len - head);
	r = fs_pwrite_full(fd, block, DIRECT_ALIGN, (off_t)head);
	free(block);
	if (r >= 0 && ftruncate(fd, (off_t)len) < 0)
		r = -errno;
	return r;
}

/* A pack written past the page cache: copying 16 MiB into it was most of
 * the writer thread's time, and the pages only pushed the backed-up files
 * out of memory. Same steps as fs_write_atomic_at: a temporary name,
 * fsync, rename, fsync of the directory (the pack is durable before an
 * index names it). -EINVAL: this file system or buffer will not do it,
 * nothing left behind. */
static int put_direct(struct local *l, const char *rel, const char *dir, const uint8_t *data,
		      size_t len)
{
	char tmp[600];
	uint64_t x;
	int fd, r;

	if (getrandom(&x, sizeof(x), 0) != sizeof(x))
		return errno ? -errno : -EIO;
	snprintf(tmp, sizeof(tmp), "%s" FS_TEMP_INFIX "%016llx", rel, (unsigned long long)x);
	fd = openat(l->rootfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_DIRECT, 0600);
	if (fd < 0) {
		r = -errno;
		if (r == -EINVAL) /* some file systems create it first */
			unlinkat(l->rootfd, tmp, 0);
		return r;
	}
	r = write_direct(fd, data, len);
	if (r >= 0 && fchmod(fd, 0600) < 0)
		r = -errno;
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r >= 0)
		r = -errno;
	if (r >= 0 && renameat(l->rootfd, tmp, l->rootfd, rel) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(l->rootfd, tmp, 0);
		return r;
	}
	return fs_fsync_dir_at(l->rootfd, dir);
}

static int local_put(struct backend *b, const char *name, const void *data, size_t len)
{
	struct local *l = (struct local *)b;
	char rel[512], dir[512], *slash;
	int r = local_path(l, name, rel, sizeof(rel));

	if (r < 0)
		return r;
	snprintf(dir, sizeof(dir), "%s", rel);
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = 0;
		if ((r = make_dir(l->rootfd, dir)) < 0)
			return r;
	}
	if (len >= DIRECT_MIN && (uintptr_t)data % DIRECT_ALIGN == 0 &&
	    strncmp(name, "data/", 5) == 0 && !atomic_load(&l->no_direct)) {
		r = put_direct(l, rel, slash ? dir : ".", data, len);
		if (r != -EINVAL)
			return r;
		atomic_store(&l->no_direct, true); /* tmpfs of old, ramfs, some FUSE */
	}
	return fs_write_atomic_at(l->rootfd, rel, data, len, 0600);
}

static int list_dir(struct local *l, const char *rel, bool nested,
		    int (*fn)(const char *name, uint64_t size, void *userdata), void *userdata)
{
	int fd = openat(l->rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (r >= 0 && (de = readdir(d))) {
		struct stat st;

		if (de->d_name[0] == '.' || strstr(de->d_name, FS_TEMP_INFIX))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (nested && S_ISDIR(st.st_mode)) {
			char sub[512];

			snprintf(sub, sizeof(sub), "%s/%s", rel, de->d_name);
			r = list_dir(l, sub, false, fn, userdata);
		} else if (S_ISREG(st.st_mode)) {
			r = fn(de->d_name, (uint64_t)st.st_size, userdata);
		}
	}
	closedir(d);
	return r;
}

static int local_list(struct backend *b, const char *dir,
		      int (*fn)(const char *name, uint64_t size, void *userdata), void *userdata)
{
	struct local *l = (struct local *)b;

	if (strchr(dir, '/') || strstr(dir, ".."))
		return -EINVAL;
	return list_dir(l, dir, strcmp(dir, "data") == 0, fn, userdata);
}

static int local_remove(struct backend *b, const char *name)
{
	struct local *l = (struct local *)b;
	char rel[512];
	int r = local_path(l, name, rel, sizeof(rel));

	if (r < 0)
		return r;
	if (unlinkat(l->rootfd, rel, 0) < 0)
		return -errno;
	return 0;
}

static int local_stat(struct backend *b, const char *name, uint64_t *ret_size)
{
	struct local *l = (struct local *)b;
	char rel[512];
	struct stat st;
	int r = local_path(l, name, rel, sizeof(rel));

	if (r < 0)
		return r;
	if (fstatat(l->rootfd, rel, &st, 0) < 0)
		return -errno;
	*ret_size = (uint64_t)st.st_size;
	return 0;
}

static void local_free(struct backend *b)
{
	struct local *l = (struct local *)b;

	if (l->rootfd >= 0)
		close(l->rootfd);
	free(l->root);
	free(l);
}

static const struct backend_ops local_ops = {
	.get = local_get,
	.get_range = local_get_range,
	.get_stream = local_get_stream,
	.put = local_put,
	.list = local_list,
	.remove = local_remove,
	.open_read = local_open_read,
	.stat = local_stat,
	.free = local_free,
};

int backend_local_open(const char *path, struct backend **ret)
{
	struct local *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->b.ops = &local_ops;
	l->root = strdup(path);
	l->b.location = l->root;
	l->rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!l->root || l->rootfd < 0) {
		int r = l->root ? -errno : -ENOMEM;

		local_free(&l->b);
		return r;
	}
	*ret = &l->b;
	return 0;
}

int backend_local_create(const char *path, struct backend **ret)
{
	struct backend *b;
	DIR *d;
	struct dirent *de;
	int r = fs_mkdir_p(path, 0700);

	if (r < 0)
		return r;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			closedir(d);
			return -EEXIST;
		}
	closedir(d);
	r = backend_local_open(path, &b);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(layout); i++)
		if (mkdirat(((struct local *)b)->rootfd, layout[i], 0700) < 0 && errno != EEXIST) {
			r = -errno;
			backend_free(b);
			return r;
		}
	if ((r = fs_fsync_dir_at(((struct local *)b)->rootfd, ".")) < 0) {
		backend_free(b);
		return r;
	}
	*ret = b;
	return 0;
}

int backend_local_open_at(const struct location *loc, const struct backend_options *o,
			  struct backend **ret)
{
	(void)o;
	return backend_local_open(loc->path, ret);
}

int backend_local_create_at(const struct location *loc, const struct backend_options *o,
			    struct backend **ret)
{
	(void)o;
	return backend_local_create(loc->path, ret);
}
