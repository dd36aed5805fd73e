/* The lock refresher against a local repository: the held lock's object
 * is replaced while the holder works (and asks whether names are its own
 * from another thread), a vanished lock is lost and commits nothing, and
 * unlock stops the thread and leaves no object behind. And the index,
 * saved in several files by parallel threads, loads whole again. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/err.h"
#include "lib/fs.h"
#include "repo/index.h"
#include "repo/repo.h"

static char dir[] = "/tmp/bcdr-lock-XXXXXX";
static char repo_path[64];

/* How many objects dir (locks, index) holds; the name of one into name
 * when not NULL. */
static int objects(const char *sub, char name[64])
{
	char p[128];
	int n = 0;
	DIR *d;

	snprintf(p, sizeof(p), "%s/%s", repo_path, sub);
	d = opendir(p);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.' && !strstr(e->d_name, ".tmp")) {
			if (name)
				snprintf(name, 64, "%.63s", e->d_name);
			n++;
		}
	closedir(d);
	return n;
}

/* The one lock object's name (32 hex) into name; how many there are. */
static int lock_objects(char name[64])
{
	return objects("locks", name);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void test_refreshed_while_held(void **state)
{
	struct repo *repo;
	char first[64], now[64];
	bool changed = false;

	(void)state;
	assert_int_equal(repo_open(repo_path, "pw", &repo), 0);
	assert_int_equal(repo_lock(repo, false), 0);
	assert_int_equal(repo_lock(repo, false), -EBUSY);
	assert_int_equal(lock_objects(first), 1);
	assert_true(repo_lock_is_ours(repo, first));
	/* The refresher runs every 100 ms: ask from this thread meanwhile. */
	for (int i = 0; i < 100 && !changed; i++) {
		sleep_ms(10);
		if (lock_objects(now) == 1 && strcmp(now, first) != 0)
			changed = repo_lock_is_ours(repo, now);
	}
	assert_true(changed);
	assert_false(repo_lock_is_ours(repo, first));
	assert_int_equal(repo_lock_verify(repo), 0);
	assert_int_equal(repo_unlock(repo), 0);
	assert_int_equal(lock_objects(now), 0);
	repo_free(repo);
}

static void test_removed_lock_is_lost(void **state)
{
	struct repo *repo;
	char name[64], p[256];

	(void)state;
	assert_int_equal(repo_open(repo_path, "pw", &repo), 0);
	assert_int_equal(repo_lock(repo, true), 0);
	assert_int_equal(lock_objects(name), 1);
	/* Another process took it for stale and removed it. */
	snprintf(p, sizeof(p), "%s/locks/%s", repo_path, name);
	assert_int_equal(unlink(p), 0);
	sleep_ms(300);
	assert_int_equal(repo_lock_verify(repo), -BCDR_ERR_LOCK_LOST);
	assert_int_equal(repo_save_object(repo, OBJ_INDEX, "index", "x", 1, NULL),
			 -BCDR_ERR_LOCK_LOST);
	/* Its last object stays (a prune still running sees a live lock)
	 * until unlock. */
	assert_int_equal(lock_objects(name), 1);
	repo_free(repo);
	assert_int_equal(lock_objects(name), 0);
}

/* 40 packs of 2,000 blobs: more than two index files' worth (32,768
 * blobs each), saved at once by the savers and loaded at once again. */
static void test_index_in_many_files_loads_whole(void **state)
{
	enum { PACKS = 40, BLOBS = 2000 };
	struct repo *repo;
	uint8_t id[32] = {};
	int before;

	(void)state;
	assert_int_equal(repo_open(repo_path, "pw", &repo), 0);
	assert_int_equal(repo_load_index(repo), 0);
	before = objects("index", NULL);
	for (uint32_t p = 0; p < PACKS; p++) {
		uint32_t pos;

		id[0] = 0xee;
		id[1] = (uint8_t)p;
		assert_true(index_add_pack(repo->index, id, &pos) >= 0);
		for (uint32_t b = 0; b < BLOBS; b++) {
			struct pack_entry e = { .type = BLOB_DATA, .offset = b * 100, .length = 100,
						.raw_length = 200 };

			memcpy(e.id, &p, 4);
			memcpy(e.id + 4, &b, 4);
			e.id[31] = 1;
			assert_true(index_add(repo->index, pos, &e) >= 0);
		}
	}
	assert_int_equal(repo_save_index(repo, 0), 0);
	assert_int_equal(objects("index", NULL) - before, 3);
	repo_free(repo);

	assert_int_equal(repo_open(repo_path, "pw", &repo), 0);
	assert_int_equal(repo_load_index(repo), 0);
	assert_int_equal(repo->index->npacks, PACKS);
	for (uint32_t p = 0; p < PACKS; p++)
		for (uint32_t b = 0; b < BLOBS; b += 7) {
			struct index_blob got;
			uint8_t want[32] = {};

			memcpy(want, &p, 4);
			memcpy(want + 4, &b, 4);
			want[31] = 1;
			assert_true(index_lookup(repo->index, want, &got) >= 0);
			assert_int_equal(got.offset, b * 100);
			assert_int_equal(repo->index->packs[got.pack][1], p);
		}
	repo_free(repo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refreshed_while_held),
		cmocka_unit_test(test_removed_lock_is_lost),
		cmocka_unit_test(test_index_in_many_files_loads_whole),
	};
	struct repo *repo;
	int r;

	setenv("BCDR_SCRYPT_N", "1024", 1);
	setenv("BCDR_TEST_LOCK_REFRESH_MS", "100", 1);
	if (!mkdtemp(dir))
		return 1;
	snprintf(repo_path, sizeof(repo_path), "%s/repo", dir);
	if (repo_init(repo_path, "pw", &repo) < 0)
		return 1;
	repo_free(repo);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	fs_rm_rf(dir);
	return r;
}
