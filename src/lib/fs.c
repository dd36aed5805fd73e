#include "lib/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"

static int dir_of(const char *path, char *dir, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash) {
		if (size < 2)
			return -ENAMETOOLONG;
		memcpy(dir, ".", 2);
		return 0;
	}
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= size)
		return -ENAMETOOLONG;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return 0;
}

int fs_fsync_dir_at(int dirfd, const char *dir)
{
	_cleanup_close_ int fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		return -errno;
	return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fs_fsync_dir(const char *dir)
{
	return fs_fsync_dir_at(AT_FDCWD, dir);
}

/* A temporary name beside path, from getrandom(): concurrent writers
 * (processes, threads, hosts on a shared file system) never pick the same
 * one, and O_EXCL catches the case that they would. */
static int temp_name(const char *path, char *out, size_t size)
{
	uint64_t x;
	int n;

	if (getrandom(&x, sizeof(x), 0) != sizeof(x))
		return errno ? -errno : -EIO;
	n = snprintf(out, size, "%s" FS_TEMP_INFIX "%016llx", path, (unsigned long long)x);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int fs_write_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int fd, r;

	r = dir_of(path, dir, sizeof(dir));
	if (r < 0)
		return r;
	r = temp_name(path, tmp, sizeof(tmp));
	if (r < 0)
		return r;
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = write_all(fd, data, len);
	if (r >= 0 && fchmod(fd, mode) < 0) /* the mode as asked, not as the umask left it */
		r = -errno;
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r >= 0)
		r = -errno;
	if (r >= 0 && renameat(dirfd, tmp, dirfd, path) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	return fs_fsync_dir_at(dirfd, dir);
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	return fs_write_atomic_at(AT_FDCWD, path, data, len, mode);
}

int fs_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct buf b;
	int r = 0;

	if (fd < 0)
		return -errno;
	buf_init(&b, max);
	r = buf_reserve(&b, 0);
	for (;;) {
		ssize_t n;

		if (r < 0)
			break;
		r = buf_reserve(&b, 4096);
		if (r == -BCDR_ERR_TOO_BIG) {
			/* Room for less than a block: exactly max bytes may still fit. */
			char probe;

			r = buf_reserve(&b, max - b.len);
			if (r < 0)
				break;
			n = read(fd, b.data + b.len, max - b.len);
			if (n < 0) {
				r = -errno;
				break;
			}
			b.len += (size_t)n;
			if (read(fd, &probe, 1) > 0)
				r = -BCDR_ERR_TOO_BIG;
			break;
		}
		if (r < 0)
			break;
		n = fs_read(fd, b.data + b.len, 4096);
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
	}
	if (r < 0) {
		buf_release(&b);
		return r;
	}
	b.data[b.len] = '\0';
	if (ret_len)
		*ret_len = b.len;
	*ret_data = buf_steal(&b, NULL);
	return 0;
}

int fs_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int fs_rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0)
		return -errno;
	return 0;
}

ssize_t fs_read(int fd, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = read(fd, buf, len);

		if (n >= 0 || errno != EINTR)
			return n < 0 ? -errno : n;
	}
}

int fs_pread_full(int fd, void *buf, size_t len, off_t offset)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, offset + (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -BCDR_ERR_CORRUPT;
		got += (size_t)n;
	}
	return 0;
}

int fs_pwrite_full(int fd, const void *buf, size_t len, off_t offset)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, offset + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}
