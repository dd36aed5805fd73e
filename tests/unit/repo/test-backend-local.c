#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "repo/backend.h"

static char root[64];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/bcdr-test-backend.XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	(void)state;
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static struct backend *create(void)
{
	struct location *loc = NULL;
	struct backend *b = NULL;
	char path[128];

	snprintf(path, sizeof(path), "%s/repo", root);
	assert_int_equal(location_parse(path, &loc, NULL), 0);
	assert_int_equal(backend_create(loc, NULL, &b), 0);
	location_free(loc);
	return b;
}

static int count_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += strstr(de->d_name, ".tmp.") != NULL;
	closedir(d);
	return n;
}

/* Temporary names came from an unseeded random(): its first value is
 * always the same, so a file planted at that name made every put fail. */
static void test_temp_name_not_predictable(void **state)
{
	struct backend *b = create();
	char name[80], planted[300], dir[200];
	uint8_t *data = NULL;
	size_t len = 0;
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "data/ab%062d", 0);
	snprintf(dir, sizeof(dir), "%s/repo/data/ab", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(planted, sizeof(planted), "%s/repo/data/ab/%s.tmp.%d.%lx", root, name + 5,
		 (int)getpid(), 0x6b8b4567ul);
	fd = open(planted, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	for (int i = 0; i < 50; i++) {
		char n2[80];

		snprintf(n2, sizeof(n2), "data/ab%062d", i);
		assert_int_equal(b->ops->put(b, n2, "x", 1), 0);
	}
	assert_int_equal(b->ops->get(b, name, 16, &data, &len), 0);
	assert_int_equal(len, 1);
	free(data);
	/* only the planted one remains, and listing skips it */
	assert_int_equal(count_tmp(dir), 1);
	backend_free(b);
}

static int count(const char *name, uint64_t size, void *userdata)
{
	(void)name;
	(void)size;
	(*(int *)userdata)++;
	return 0;
}

static void test_put_in_new_directory(void **state)
{
	struct backend *b = create();
	char name[80];
	int n = 0;
	uint64_t size;

	(void)state;
	for (int i = 0; i < 16; i++) {
		snprintf(name, sizeof(name), "data/%02x%062d", i * 16, i);
		assert_int_equal(b->ops->put(b, name, "hello", 5), 0);
	}
	assert_int_equal(b->ops->list(b, "data", count, &n), 0);
	assert_int_equal(n, 16);
	assert_int_equal(b->ops->stat(b, name, &size), 0);
	assert_int_equal(size, 5);
	assert_int_equal(backend_flush(b), 0);
	backend_free(b);
}

/* Packs of 1 MiB and more go by O_DIRECT when their buffer is aligned: a
 * whole number of blocks, a partial last block (padded, then cut back),
 * and an unaligned buffer (buffered) all read back as written, 0600, with
 * no temporary file left. */
static void test_big_puts_direct_and_buffered(void **state)
{
	static const size_t sizes[] = { 1u << 20, (1u << 20) + 1, (3u << 20) + 4095 };
	struct backend *b = create();
	uint8_t *buf = NULL;
	char dir[200];

	(void)state;
	assert_int_equal(posix_memalign((void **)&buf, 4096, (4u << 20) + 4096), 0);
	for (size_t i = 0; i < (4u << 20) + 4096; i++)
		buf[i] = (uint8_t)(i * 7 + i / 4099);
	for (int k = 0; k < 6; k++) {
		const uint8_t *src = buf + (k >= 3); /* the last three unaligned */
		size_t len = sizes[k % 3];
		char name[80], path[300];
		uint8_t *got = NULL;
		size_t got_len = 0;
		struct stat st;

		snprintf(name, sizeof(name), "data/cd%062d", k);
		assert_int_equal(b->ops->put(b, name, src, len), 0);
		assert_int_equal(b->ops->get(b, name, 8u << 20, &got, &got_len), 0);
		assert_int_equal(got_len, len);
		assert_memory_equal(got, src, len);
		free(got);
		snprintf(path, sizeof(path), "%s/repo/data/cd/cd%062d", root, k);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	snprintf(dir, sizeof(dir), "%s/repo/data/cd", root);
	assert_int_equal(count_tmp(dir), 0);
	free(buf);
	backend_free(b);
}

static void test_unsupported_kind(void **state)
{
	struct location *loc = NULL;
	struct backend *b = NULL;

	(void)state;
	assert_int_equal(location_parse("sftp:host:/x", &loc, NULL), 0);
	loc->kind = (enum location_kind)99;
	assert_int_equal(backend_open(loc, NULL, &b), -BCDR_ERR_UNSUPPORTED);
	location_free(loc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_temp_name_not_predictable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_in_new_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_puts_direct_and_buffered, setup, teardown),
		cmocka_unit_test(test_unsupported_kind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
