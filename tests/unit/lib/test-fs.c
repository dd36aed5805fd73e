#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/err.h"
#include "lib/fs.h"

static char dir[] = "/tmp/bcdr-test-fs-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return fs_rm_rf(dir);
}

static void test_atomic_write_replaces(void **state)
{
	char path[256], *data;
	size_t len;
	struct stat st;

	(void)state;
	snprintf(path, sizeof(path), "%s/file", dir);
	assert_int_equal(fs_write_atomic(path, "one", 3, 0600), 0);
	assert_int_equal(fs_write_atomic(path, "second", 6, 0640), 0);
	assert_int_equal(fs_read_file(path, 100, &data, &len), 0);
	assert_int_equal(len, 6);
	assert_string_equal(data, "second");
	free(data);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
}

/* Relative to a directory fd; a failed write leaves neither the file nor
 * its temporary behind. */
static void test_atomic_write_at(void **state)
{
	char sub[256], *data;
	size_t len, entries = 0;
	int dfd;
	DIR *d;
	struct dirent *de;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/at", dir);
	assert_int_equal(fs_mkdir_p(sub, 0700), 0);
	dfd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(fs_write_atomic_at(dfd, "obj", "abc", 3, 0600), 0);
	assert_int_equal(fs_write_atomic_at(dfd, "missing/obj", "abc", 3, 0600), -ENOENT);
	d = fdopendir(dfd);
	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			assert_string_equal(de->d_name, "obj");
			entries++;
		}
	closedir(d);
	assert_int_equal(entries, 1);
	snprintf(sub, sizeof(sub), "%s/at/obj", dir);
	assert_int_equal(fs_read_file(sub, 100, &data, &len), 0);
	assert_string_equal(data, "abc");
	free(data);
}

static void test_read_bounded(void **state)
{
	char path[256], *data = NULL;
	size_t len;

	(void)state;
	snprintf(path, sizeof(path), "%s/big", dir);
	assert_int_equal(fs_write_atomic(path, "0123456789", 10, 0600), 0);
	assert_int_equal(fs_read_file(path, 10, &data, &len), 0); /* exactly max fits */
	assert_int_equal(len, 10);
	free(data);
	data = NULL;
	assert_int_equal(fs_read_file(path, 9, &data, &len), -BCDR_ERR_TOO_BIG);
	assert_null(data);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(fs_read_file(path, 9, &data, &len), -ENOENT);
}

/* Written at an offset, read back whole; a file that ends first is
 * damage, a read-only fd an error. */
static void test_pwrite_pread_full(void **state)
{
	char path[256], got[8] = { 0 };
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/pwrite", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fs_pwrite_full(fd, "abcd", 4, 4096), 0);
	assert_int_equal(fs_pread_full(fd, got, 4, 4096), 0);
	assert_memory_equal(got, "abcd", 4);
	assert_int_equal(fs_pread_full(fd, got, 8, 4096), -BCDR_ERR_CORRUPT);
	assert_int_equal(fs_pread_full(fd, got, 4, 0), 0);
	assert_memory_equal(got, "\0\0\0\0", 4); /* a hole reads as zeros */
	close(fd);
	fd = open(path, O_RDONLY);
	assert_int_equal(fs_pwrite_full(fd, "x", 1, 0), -EBADF);
	close(fd);
}

static void test_mkdir_and_rm(void **state)
{
	char path[256], file[300];

	(void)state;
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	assert_int_equal(fs_mkdir_p(path, 0700), 0);
	assert_int_equal(fs_mkdir_p(path, 0700), 0); /* idempotent */
	snprintf(file, sizeof(file), "%s/f", path);
	assert_int_equal(fs_write_atomic(file, "x", 1, 0600), 0);
	snprintf(path, sizeof(path), "%s/a", dir);
	assert_int_equal(fs_rm_rf(path), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(fs_rm_rf(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_atomic_write_replaces),
		cmocka_unit_test(test_atomic_write_at),
		cmocka_unit_test(test_read_bounded),
		cmocka_unit_test(test_pwrite_pread_full),
		cmocka_unit_test(test_mkdir_and_rm),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
