/* The archiver end to end in one process: a small real tree made in a
 * temporary directory is backed up into a real repository there, and the
 * snapshot is read back from a fresh open of it: every node (files,
 * directories, the backup path's ancestors, a symlink, a hard link, a
 * fifo), every file's bytes from its chunks, excludes; a second backup
 * takes the unchanged files from its parent and reads only the changed
 * one; a stream of several chunks becomes a file of its own at the
 * snapshot's root, its chunks in order. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <zstd.h>

#include "backup/backup.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "repo/repo.h"
#include "repo/tree.h"
#include "repo/tree_reader.h"

#define BIG_LEN ((size_t)5 << 20) /* several chunks at any chunker key */

static char dir[] = "/tmp/bcdr-archiver-XXXXXX";
static char repo_path[128], src[128], *src_real;

static void write_file(const char *rel, const void *data, size_t len)
{
	char p[256];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", src, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static uint8_t *big_bytes(void)
{
	uint8_t *b = malloc(BIG_LEN);
	uint64_t x = 88172645463325252ull;

	assert_non_null(b);
	for (size_t i = 0; i < BIG_LEN; i++) { /* xorshift: no repeats to dedup */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)x;
	}
	return b;
}

/* The node of the snapshot at path rel under the backed-up directory. */
static const struct node *node_of(const struct tree *t, const char *rel)
{
	char p[512];

	snprintf(p, sizeof(p), "%s%s%s", src_real + 1, *rel ? "/" : "", rel);
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->nodes[i].path, p) == 0)
			return &t->nodes[i];
	fail_msg("no node '%s' in the snapshot", p);
	return NULL;
}

/* A file node's bytes, read blob by blob from the repository. */
static void check_content(struct repo *repo, const struct node *n, const void *want, size_t len)
{
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	uint8_t *buf = NULL, *scratch = NULL, *all = malloc(len ? len : 1);
	size_t cap = 0, scap = 0, off = 0;

	assert_non_null(all);
	assert_int_equal(n->type, NODE_FILE);
	assert_int_equal(n->size, len);
	for (uint32_t i = 0; i < n->nchunks; i++) {
		int k = repo_read_blob(repo, repo->crypto, dctx, BLOB_DATA, n->chunks[i], &buf, &cap,
				       &scratch, &scap);

		assert_true(k > 0);
		assert_true(off + (size_t)k <= len);
		memcpy(all + off, buf, (size_t)k);
		off += (size_t)k;
	}
	assert_int_equal(off, len);
	assert_memory_equal(all, want, len);
	free(all);
	free(buf);
	free(scratch);
	ZSTD_freeDCtx(dctx);
}

static int run_backup(const struct backup_options *o, struct snapshot **ret)
{
	struct repo *repo;
	int r;

	assert_int_equal(repo_open(repo_path, "pw", &repo), 0);
	r = backup_run(repo, o, ret);
	repo_free(repo);
	return r;
}

/* The snapshot saved as id, from a fresh open: its record and its tree. */
static void read_back(const uint8_t id[32], struct repo **ret_repo, struct snapshot **ret_s,
		      struct tree **ret_t)
{
	char hex[65];

	hex_encode(id, 32, hex);
	assert_int_equal(repo_open(repo_path, "pw", ret_repo), 0);
	assert_int_equal(repo_load_index(*ret_repo), 0);
	assert_int_equal(repo_find_snapshot(*ret_repo, hex, ret_s), 0);
	assert_memory_equal((*ret_s)->id, id, 32);
	assert_int_equal(repo_load_tree(*ret_repo, *ret_s, ret_t), 0);
}

static const char small[] = "the first file\n";
static const char changed[] = "the first file, changed, and longer\n";

static void test_tree_backed_up_and_read_back(void **state)
{
	char *paths[] = { src, NULL }, *exclude[] = { "*.log", NULL };
	struct backup_options o = { .paths = paths, .exclude = exclude, .threads = 2 };
	_cleanup_free_ uint8_t *big = big_bytes();
	struct snapshot *saved, *s;
	struct repo *repo;
	struct tree *t;
	const struct node *n;

	(void)state;
	assert_int_equal(run_backup(&o, &saved), 0);
	assert_int_equal(saved->summary.files_new, 3); /* a.txt, empty, sub/big.bin */
	assert_int_equal(saved->summary.files_changed + saved->summary.files_unchanged, 0);
	assert_int_equal(saved->summary.errors, 0);
	assert_false(saved->has_parent);
	assert_true(saved->summary.bytes_added >= BIG_LEN);
	read_back(saved->id, &repo, &s, &t);
	assert_string_equal(s->paths[0], src_real);
	assert_null(s->paths[1]);

	/* The ancestors of the backup path come first, as directories. */
	assert_int_equal(t->nodes[0].type, NODE_DIR);
	assert_string_equal(t->nodes[0].path, "tmp");
	for (size_t i = 1; i < t->n; i++)
		assert_true(tree_path_cmp(t->nodes[i - 1].path, t->nodes[i].path) < 0);
	assert_int_equal(node_of(t, "")->type, NODE_DIR);
	assert_int_equal(node_of(t, "sub")->type, NODE_DIR);
	check_content(repo, node_of(t, "a.txt"), small, sizeof(small) - 1);
	check_content(repo, node_of(t, "empty"), "", 0);
	n = node_of(t, "sub/big.bin");
	assert_true(n->nchunks > 1);
	check_content(repo, n, big, BIG_LEN);
	assert_int_equal(node_of(t, "a.txt")->mode & 07777, 0644);
	n = node_of(t, "sub/link");
	assert_int_equal(n->type, NODE_SYMLINK);
	assert_string_equal(n->link, "../a.txt");
	n = node_of(t, "sub/hard");
	assert_int_equal(n->type, NODE_HARDLINK);
	assert_string_equal(n->link, node_of(t, "a.txt")->path);
	assert_true(node_of(t, "a.txt")->flags & NODE_LINKED); /* the first name */
	assert_false(node_of(t, "sub/big.bin")->flags & NODE_LINKED);
	assert_int_equal(node_of(t, "fifo")->type, NODE_SPECIAL);
	{ /* read in walk order: no set of the paths, the marked file only */
		struct tree_reader *tr;
		struct node *rn;
		size_t got = 0;

		assert_int_equal(repo_tree_open(repo, s, &tr), 0);
		while (tree_reader_next(tr, &rn) == 1)
			got++;
		assert_int_equal(got, t->n);
		assert_null(tr->set.slots);
		assert_int_equal(tr->links.nused, 1);
		repo_tree_close(tr);
	}
	for (size_t i = 0; i < t->n; i++)
		assert_null(strstr(t->nodes[i].path, ".log"));
	/* ancestors (tmp, the temp dir) + src, a.txt, empty, fifo, sub, 3 in sub */
	assert_int_equal(t->n, 2 + 1 + 3 + 1 + 3);

	tree_free(t);
	snapshot_free(s);
	repo_free(repo);
	snapshot_free(saved);
}

static void test_second_backup_takes_unchanged_from_parent(void **state)
{
	char *paths[] = { src, NULL }, *exclude[] = { "*.log", NULL };
	struct backup_options o = { .paths = paths, .exclude = exclude, .threads = 2 };
	_cleanup_free_ uint8_t *big = big_bytes();
	struct snapshot *first, *second, *third, *s;
	struct timespec times[2] = { { 1000000, 0 }, { 1000000, 0 } };
	char p[256];
	struct repo *repo;
	struct tree *t;

	(void)state;
	assert_int_equal(run_backup(&o, &first), 0);
	assert_int_equal(run_backup(&o, &second), 0);
	assert_true(second->has_parent);
	assert_memory_equal(second->parent, first->id, 32);
	assert_int_equal(second->summary.files_unchanged, 3);
	assert_int_equal(second->summary.files_new + second->summary.files_changed, 0);
	assert_true(second->summary.bytes_added < BIG_LEN / 4); /* no data read again */

	/* a.txt changes (and its hard link with it): only it is read. */
	write_file("a.txt", changed, sizeof(changed) - 1);
	snprintf(p, sizeof(p), "%s/a.txt", src);
	assert_int_equal(utimensat(AT_FDCWD, p, times, 0), 0);
	assert_int_equal(run_backup(&o, &third), 0);
	assert_int_equal(third->summary.files_changed, 1);
	assert_int_equal(third->summary.files_unchanged, 2);
	read_back(third->id, &repo, &s, &t);
	check_content(repo, node_of(t, "a.txt"), changed, sizeof(changed) - 1);
	check_content(repo, node_of(t, "sub/big.bin"), big, BIG_LEN);
	tree_free(t);
	snapshot_free(s);
	repo_free(repo);

	/* --force reads every file again, though none changed. */
	o.force = true;
	snapshot_free(third);
	assert_int_equal(run_backup(&o, &third), 0);
	assert_int_equal(third->summary.files_changed, 3);
	assert_int_equal(third->summary.files_unchanged, 0);

	write_file("a.txt", small, sizeof(small) - 1); /* as the first test made it */
	snapshot_free(first);
	snapshot_free(second);
	snapshot_free(third);
}

struct finish_seen {
	int calls, r;
};

static int stream_finish(int r, void *userdata)
{
	struct finish_seen *f = userdata;

	f->calls++;
	f->r = r;
	return r;
}

static void test_stream_is_a_file_at_the_root(void **state)
{
	struct finish_seen seen = {};
	struct backup_stream st = { .filename = "shop.sql", .finish = stream_finish,
				    .userdata = &seen };
	struct backup_options o = { .stream = &st, .threads = 2, .job = "db" };
	_cleanup_free_ uint8_t *big = big_bytes();
	struct snapshot *saved, *s;
	struct repo *repo;
	struct tree *t;
	char p[256];

	(void)state;
	/* A dump of several chunks, stored by the helper threads. */
	snprintf(p, sizeof(p), "%s/dump", dir);
	assert_int_equal(fs_write_atomic(p, big, BIG_LEN, 0600), 0);
	st.fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(st.fd >= 0);
	assert_int_equal(run_backup(&o, &saved), 0);
	close(st.fd);
	assert_int_equal(seen.calls, 1);
	assert_int_equal(seen.r, 0);
	read_back(saved->id, &repo, &s, &t);
	assert_string_equal(s->paths[0], "/shop.sql");
	assert_string_equal(s->job, "db");
	assert_int_equal(t->n, 1);
	assert_string_equal(t->nodes[0].path, "shop.sql");
	assert_int_equal(t->nodes[0].mode, S_IFREG | 0600);
	assert_true(t->nodes[0].nchunks > 1);
	/* Its chunks in order (the helpers finish in any order). */
	check_content(repo, &t->nodes[0], big, BIG_LEN);
	tree_free(t);
	snapshot_free(s);
	repo_free(repo);
	snapshot_free(saved);
}

static void test_missing_path_is_an_error(void **state)
{
	char missing[256], *paths[] = { missing, NULL };
	struct backup_options o = { .paths = paths };
	struct snapshot *s = NULL;

	(void)state;
	snprintf(missing, sizeof(missing), "%s/no-such-dir", dir);
	assert_int_equal(run_backup(&o, &s), -ENOENT);
	assert_null(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_backed_up_and_read_back),
		cmocka_unit_test(test_second_backup_takes_unchanged_from_parent),
		cmocka_unit_test(test_stream_is_a_file_at_the_root),
		cmocka_unit_test(test_missing_path_is_an_error),
	};
	uint8_t *big;
	struct repo *repo;
	char p[256], q[256];
	int r;

	setenv("BCDR_SCRYPT_N", "1024", 1);
	if (!mkdtemp(dir))
		return 1;
	snprintf(repo_path, sizeof(repo_path), "%s/repo", dir);
	snprintf(src, sizeof(src), "%s/src", dir);
	if (repo_init(repo_path, "pw", &repo) < 0)
		return 1;
	repo_free(repo);
	snprintf(p, sizeof(p), "%s/sub", src);
	if (mkdir(src, 0755) < 0 || mkdir(p, 0755) < 0)
		return 1;
	write_file("a.txt", small, sizeof(small) - 1);
	write_file("empty", "", 0);
	write_file("skip.log", "excluded\n", 9);
	big = big_bytes();
	write_file("sub/big.bin", big, BIG_LEN);
	free(big);
	snprintf(p, sizeof(p), "%s/sub/link", src);
	if (symlink("../a.txt", p) < 0)
		return 1;
	snprintf(p, sizeof(p), "%s/a.txt", src);
	snprintf(q, sizeof(q), "%s/sub/hard", src);
	if (link(p, q) < 0)
		return 1;
	snprintf(p, sizeof(p), "%s/fifo", src);
	if (mkfifo(p, 0600) < 0)
		return 1;
	if (!(src_real = realpath(src, NULL)))
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	free(src_real);
	fs_rm_rf(dir);
	return r;
}
