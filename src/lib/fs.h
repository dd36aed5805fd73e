/* Files that must survive a crash, and bounded reads of outside files. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Writes data to path atomically: temp file in the same directory, fsync,
 * rename over path, fsync the directory. Either the old or the new
 * contents survive a crash, never a mix. The temporary file is named
 * path FS_TEMP_INFIX and 16 random hex digits (listings skip such names). */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* The same, path relative to the directory dirfd (or AT_FDCWD). */
int fs_write_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode);
#define FS_TEMP_INFIX ".tmp."

/* fsync()s the directory itself, making a rename or create in it durable. */
int fs_fsync_dir(const char *dir);
int fs_fsync_dir_at(int dirfd, const char *dir);

/* One read(), again when a signal interrupts it: the bytes read (0 at the
 * end of the file) or -errno. */
ssize_t fs_read(int fd, void *buf, size_t len);
/* Reads exactly len bytes at offset; a file that ends first is
 * -BCDR_ERR_CORRUPT (the callers read objects whose size they know). */
int fs_pread_full(int fd, void *buf, size_t len, off_t offset);
/* Writes all len bytes at offset (again after a signal or a short
 * write): 0 or -errno. */
int fs_pwrite_full(int fd, const void *buf, size_t len, off_t offset);
/* Reads a whole file of at most max bytes into a NUL-terminated heap
 * buffer (free() it). A larger file fails with -BCDR_ERR_TOO_BIG. */
int fs_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len);

/* mkdir -p with mode for the directories it creates. */
int fs_mkdir_p(const char *path, mode_t mode);

/* rm -rf; a missing path is success. */
int fs_rm_rf(const char *path);
