/* backend_read(), the read-ahead of packs over get_upto, against a backend
 * that keeps its objects in memory and counts the calls it gets: small
 * reads of a pack are served from one window per request, windows are
 * kept by name and range (the last READAHEAD_SLOTS, least recently used
 * replaced), reads that are not of packs, too big or empty go straight to
 * get_range, a short object's window ends where the object does, and an
 * error leaves nothing behind. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/err.h"
#include "repo/backend.h"

#define MEM_OBJECTS 16

/* The in-memory backend: objects of known bytes (byte i of object k is
 * (i * 7 + k) & 0xff), and a count of the calls. */
struct mem {
	struct backend b;
	struct {
		char name[64];
		size_t len;
	} obj[MEM_OBJECTS];
	size_t nobj;
	unsigned ranges, uptos, frees;
	int fail; /* the next get_upto returns this */
	uint64_t last_offset;
	size_t last_need, last_len;
};

static uint8_t byte_of(size_t k, uint64_t i)
{
	return (uint8_t)((i * 7 + k) & 0xff);
}

static int find(struct mem *m, const char *name)
{
	for (size_t k = 0; k < m->nobj; k++)
		if (strcmp(m->obj[k].name, name) == 0)
			return (int)k;
	return -ENOENT;
}

static int mem_get_range(struct backend *b, const char *name, uint64_t offset, size_t len,
			 uint8_t *buf)
{
	struct mem *m = (struct mem *)b;
	int k = find(m, name);

	m->ranges++;
	if (k < 0)
		return k;
	if (offset > m->obj[k].len || len > m->obj[k].len - offset)
		return -BCDR_ERR_CORRUPT;
	for (size_t i = 0; i < len; i++)
		buf[i] = byte_of((size_t)k, offset + i);
	return 0;
}

static int mem_get_upto(struct backend *b, const char *name, uint64_t offset, size_t need,
			size_t len, uint8_t *buf, size_t *ret_len)
{
	struct mem *m = (struct mem *)b;
	int k = find(m, name);
	size_t have;

	m->uptos++;
	m->last_offset = offset;
	m->last_need = need;
	m->last_len = len;
	if (m->fail) {
		int r = m->fail;

		m->fail = 0;
		return r;
	}
	if (k < 0)
		return k;
	have = offset >= m->obj[k].len ? 0 : m->obj[k].len - (size_t)offset;
	if (have < need)
		return -BCDR_ERR_CORRUPT;
	if (have > len)
		have = len;
	for (size_t i = 0; i < have; i++)
		buf[i] = byte_of((size_t)k, offset + i);
	*ret_len = have;
	return 0;
}

static void mem_free(struct backend *b)
{
	((struct mem *)b)->frees++;
}

static const struct backend_ops mem_ops = {
	.get_range = mem_get_range,
	.get_upto = mem_get_upto,
	.free = mem_free,
};

static const struct backend_ops mem_ops_no_upto = {
	.get_range = mem_get_range,
	.free = mem_free,
};

static void mem_add(struct mem *m, const char *name, size_t len)
{
	assert_true(m->nobj < MEM_OBJECTS);
	snprintf(m->obj[m->nobj].name, sizeof(m->obj[m->nobj].name), "%s", name);
	m->obj[m->nobj++].len = len;
}

static void mem_init(struct mem *m, const struct backend_ops *ops)
{
	memset(m, 0, sizeof(*m));
	m->b.ops = ops;
	assert_int_equal(backend_setup(&m->b), 0);
}

static void mem_release(struct mem *m)
{
	backend_free(&m->b);
	assert_int_equal(m->frees, 1);
}

/* Reads [offset, offset + len) of object k and checks every byte. */
static void read_check(struct mem *m, const char *name, uint64_t offset, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	int k = find(m, name);

	assert_non_null(buf);
	assert_true(k >= 0);
	assert_int_equal(backend_read(&m->b, name, offset, len, buf), 0);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != byte_of((size_t)k, offset + i))
			fail_msg("byte %zu of '%s' at %llu differs", i, name,
				 (unsigned long long)offset);
	free(buf);
}

static void test_small_reads_share_a_window(void **state)
{
	struct mem m;

	(void)state;
	mem_init(&m, &mem_ops);
	mem_add(&m, "data/aa", 3 * READAHEAD_WINDOW);
	read_check(&m, "data/aa", 100, 1000);
	assert_int_equal(m.uptos, 1);
	/* It asked for the window, needing only what was read. */
	assert_int_equal(m.last_offset, 100);
	assert_int_equal(m.last_need, 1000);
	assert_int_equal(m.last_len, READAHEAD_WINDOW);
	/* Blobs after it, up to the window's last byte: no request. */
	read_check(&m, "data/aa", 1100, 5000);
	read_check(&m, "data/aa", 100, 1);
	read_check(&m, "data/aa", 100 + READAHEAD_WINDOW - 4096, 4096);
	assert_int_equal(m.uptos, 1);
	assert_int_equal(m.ranges, 0);
	/* One byte past the window's end: the next window. */
	read_check(&m, "data/aa", 100 + READAHEAD_WINDOW - 4096, 4097);
	assert_int_equal(m.uptos, 2);
	/* Before the first window's start: not in it. */
	read_check(&m, "data/aa", 99, 10);
	assert_int_equal(m.uptos, 3);
	mem_release(&m);
}

static void test_not_packs_too_big_or_empty_go_direct(void **state)
{
	struct mem m;
	uint8_t b;

	(void)state;
	mem_init(&m, &mem_ops);
	mem_add(&m, "index/ab", 10000);
	mem_add(&m, "data/cd", 3 * READAHEAD_WINDOW);
	read_check(&m, "index/ab", 0, 100);
	read_check(&m, "index/ab", 0, 100);
	assert_int_equal(m.ranges, 2);
	assert_int_equal(m.uptos, 0);
	/* Half a window is read ahead, more is read as it is. */
	read_check(&m, "data/cd", 0, READAHEAD_WINDOW / 2);
	assert_int_equal(m.uptos, 1);
	read_check(&m, "data/cd", READAHEAD_WINDOW, READAHEAD_WINDOW / 2 + 1);
	assert_int_equal(m.uptos, 1);
	assert_int_equal(m.ranges, 3);
	assert_int_equal(backend_read(&m.b, "data/cd", 5, 0, &b), 0);
	assert_int_equal(m.ranges, 4);
	assert_int_equal(m.uptos, 1);
	mem_release(&m);
}

static void test_windows_are_per_name(void **state)
{
	struct mem m;

	(void)state;
	mem_init(&m, &mem_ops);
	mem_add(&m, "data/11", READAHEAD_WINDOW);
	mem_add(&m, "data/22", READAHEAD_WINDOW);
	read_check(&m, "data/11", 0, 64);
	read_check(&m, "data/22", 0, 64);
	assert_int_equal(m.uptos, 2);
	/* Each pack's bytes from its own window (they differ by object). */
	read_check(&m, "data/11", 64, 64);
	read_check(&m, "data/22", 64, 64);
	assert_int_equal(m.uptos, 2);
	mem_release(&m);
}

static void test_least_recently_used_window_goes(void **state)
{
	struct mem m;
	char name[32];

	(void)state;
	mem_init(&m, &mem_ops);
	for (int i = 0; i <= READAHEAD_SLOTS; i++) {
		snprintf(name, sizeof(name), "data/%02d", i);
		mem_add(&m, name, 4096);
	}
	for (int i = 0; i < READAHEAD_SLOTS; i++) {
		snprintf(name, sizeof(name), "data/%02d", i);
		read_check(&m, name, 0, 16);
	}
	assert_int_equal(m.uptos, READAHEAD_SLOTS);
	/* data/00 used again: data/01 is now the oldest. */
	read_check(&m, "data/00", 16, 16);
	assert_int_equal(m.uptos, READAHEAD_SLOTS);
	snprintf(name, sizeof(name), "data/%02d", READAHEAD_SLOTS);
	read_check(&m, name, 0, 16);
	assert_int_equal(m.uptos, READAHEAD_SLOTS + 1);
	read_check(&m, "data/00", 32, 16);
	assert_int_equal(m.uptos, READAHEAD_SLOTS + 1);
	read_check(&m, "data/01", 32, 16);
	assert_int_equal(m.uptos, READAHEAD_SLOTS + 2);
	mem_release(&m);
}

static void test_short_object_window_ends_with_it(void **state)
{
	struct mem m;
	uint8_t buf[64];

	(void)state;
	mem_init(&m, &mem_ops);
	mem_add(&m, "data/ee", 1000);
	read_check(&m, "data/ee", 900, 50);
	assert_int_equal(m.uptos, 1);
	/* The window holds bytes 900-999, the object's end. */
	read_check(&m, "data/ee", 950, 50);
	assert_int_equal(m.uptos, 1);
	/* Past the end: not served from the window, and the object is short. */
	assert_int_equal(backend_read(&m.b, "data/ee", 990, 20, buf), -BCDR_ERR_CORRUPT);
	assert_int_equal(m.uptos, 2);
	mem_release(&m);
}

static void test_error_keeps_nothing(void **state)
{
	struct mem m;
	uint8_t buf[64];

	(void)state;
	mem_init(&m, &mem_ops);
	mem_add(&m, "data/ff", 100000);
	m.fail = -ECONNRESET;
	memset(buf, 0xAA, sizeof(buf));
	assert_int_equal(backend_read(&m.b, "data/ff", 0, sizeof(buf), buf), -ECONNRESET);
	assert_int_equal(buf[0], 0xAA); /* nothing written on failure */
	/* Tried again, not served from a window of the failed request. */
	read_check(&m, "data/ff", 0, sizeof(buf));
	assert_int_equal(m.uptos, 2);
	read_check(&m, "data/ff", 64, sizeof(buf));
	assert_int_equal(m.uptos, 2);
	assert_int_equal(backend_read(&m.b, "data/missing", 0, sizeof(buf), buf), -ENOENT);
	mem_release(&m);
}

static void test_backend_without_get_upto_reads_ranges(void **state)
{
	struct mem m;

	(void)state;
	mem_init(&m, &mem_ops_no_upto);
	assert_null(m.b.ahead);
	mem_add(&m, "data/aa", 100000);
	read_check(&m, "data/aa", 0, 100);
	read_check(&m, "data/aa", 100, 100);
	assert_int_equal(m.ranges, 2);
	assert_int_equal(m.uptos, 0);
	assert_int_equal(backend_flush(&m.b), 0); /* no flush: nothing in flight */
	mem_release(&m);
}

static void test_setup_twice_keeps_one(void **state)
{
	struct mem m;

	(void)state;
	mem_init(&m, &mem_ops);
	mem_add(&m, "data/aa", 100000);
	read_check(&m, "data/aa", 0, 100);
	/* A second setup keeps the windows (and leaks nothing under ASan). */
	assert_int_equal(backend_setup(&m.b), 0);
	read_check(&m, "data/aa", 100, 100);
	assert_int_equal(m.uptos, 1);
	mem_release(&m);
}

/* What a stream callback saw: the bytes in order, checked as they come. */
struct seen {
	int k;
	uint64_t offset, got;
	unsigned calls, stop_after; /* stop_after: fail the call after so many */
};

static int on_stream(const uint8_t *data, size_t len, void *ctx)
{
	struct seen *s = ctx;

	if (s->stop_after && s->calls == s->stop_after)
		return -ECANCELED;
	s->calls++;
	for (size_t i = 0; i < len; i++)
		if (data[i] != byte_of((size_t)s->k, s->offset + s->got + i))
			fail_msg("stream byte %llu differs", (unsigned long long)(s->got + i));
	s->got += len;
	return 0;
}

static void test_stream_without_get_stream_reads_pieces(void **state)
{
	uint64_t len = 2 * STREAM_PIECE + 12345;
	struct seen s = { .offset = 777 };
	struct mem m;

	(void)state;
	mem_init(&m, &mem_ops);
	mem_add(&m, "data/aa", 4 * STREAM_PIECE);
	s.k = find(&m, "data/aa");
	assert_int_equal(backend_stream(&m.b, "data/aa", 777, len, on_stream, &s), 0);
	assert_int_equal(s.got, len);
	assert_int_equal(m.ranges, 3); /* pieces of STREAM_PIECE, no window */
	assert_int_equal(s.calls, 3);
	/* the callback's error stops it there, with its value */
	s = (struct seen){ .k = s.k, .stop_after = 1 };
	assert_int_equal(backend_stream(&m.b, "data/aa", 0, len, on_stream, &s), -ECANCELED);
	assert_int_equal(s.got, STREAM_PIECE);
	/* an object shorter than the stream: damage, after what there was */
	s = (struct seen){ .k = s.k, .offset = 3 * STREAM_PIECE };
	assert_int_equal(backend_stream(&m.b, "data/aa", 3 * STREAM_PIECE, len, on_stream, &s),
			 -BCDR_ERR_CORRUPT);
	assert_int_equal(s.got, STREAM_PIECE);
	/* nothing to read: no request */
	m.ranges = 0;
	assert_int_equal(backend_stream(&m.b, "data/aa", 0, 0, on_stream, &s), 0);
	assert_int_equal(m.ranges, 0);
	mem_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_reads_share_a_window),
		cmocka_unit_test(test_not_packs_too_big_or_empty_go_direct),
		cmocka_unit_test(test_windows_are_per_name),
		cmocka_unit_test(test_least_recently_used_window_goes),
		cmocka_unit_test(test_short_object_window_ends_with_it),
		cmocka_unit_test(test_error_keeps_nothing),
		cmocka_unit_test(test_backend_without_get_upto_reads_ranges),
		cmocka_unit_test(test_setup_twice_keeps_one),
		cmocka_unit_test(test_stream_without_get_stream_reads_pieces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
