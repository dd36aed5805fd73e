#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "repo/chunker.h"

static uint8_t *random_data(size_t len, unsigned seed)
{
	uint8_t *d = malloc(len);
	uint64_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		d[i] = (uint8_t)x;
	}
	return d;
}

/* Cut points of data, into cuts; returns how many. */
static size_t cut_all(const struct chunker *c, const uint8_t *d, size_t len, size_t *cuts)
{
	size_t n = 0, off = 0;

	while (off < len) {
		size_t avail = len - off < c->max ? len - off : c->max;
		size_t cut = chunker_next(c, d + off, avail);

		assert_true(cut > 0 && cut <= c->max);
		off += cut;
		cuts[n++] = off;
	}
	return n;
}

static void test_sizes_within_bounds(void **state)
{
	struct chunker c;
	uint8_t seed[32] = { 1 };
	size_t len = 64u << 20, *cuts = calloc(1024, sizeof(size_t)), n, total = 0;
	uint8_t *d = random_data(len, 1);

	(void)state;
	assert_int_equal(chunker_init(&c, seed, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX), 0);
	n = cut_all(&c, d, len, cuts);
	for (size_t i = 0; i < n; i++) {
		size_t size = cuts[i] - (i ? cuts[i - 1] : 0);

		if (i + 1 < n)
			assert_true(size >= CHUNK_MIN);
		total += size;
	}
	assert_int_equal(total, len);
	/* The average lands near 1 MiB on random data. */
	assert_true(len / n > CHUNK_AVG / 2 && len / n < CHUNK_AVG * 2);
	free(d);
	free(cuts);
}

/* Content-defined: an insertion near the start moves only the first cut;
 * later boundaries are the same bytes. */
static void test_boundaries_survive_an_insert(void **state)
{
	struct chunker c;
	uint8_t seed[32] = { 2 };
	size_t len = 32u << 20, *a = calloc(512, sizeof(size_t)), *b = calloc(512, sizeof(size_t));
	uint8_t *d = random_data(len + 100, 2), *e = malloc(len + 100);
	size_t na, nb, same = 0;

	(void)state;
	assert_int_equal(chunker_init(&c, seed, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX), 0);
	na = cut_all(&c, d, len, a);
	memcpy(e, "inserted!", 9);
	memcpy(e + 9, d, len);
	nb = cut_all(&c, e, len + 9, b);
	for (size_t i = 0; i < na; i++)
		for (size_t k = 0; k < nb; k++)
			if (b[k] == a[i] + 9)
				same++;
	assert_true(same + 2 >= na);
	free(d);
	free(e);
	free(a);
	free(b);
}

/* The gear table comes from the key: another key cuts elsewhere. */
static void test_seed_changes_boundaries(void **state)
{
	struct chunker c1, c2;
	uint8_t s1[32] = { 3 }, s2[32] = { 4 };
	size_t len = 16u << 20, *a = calloc(256, sizeof(size_t)), *b = calloc(256, sizeof(size_t));
	uint8_t *d = random_data(len, 3);
	size_t na, nb, same = 0;

	(void)state;
	chunker_init(&c1, s1, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX);
	chunker_init(&c2, s2, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX);
	na = cut_all(&c1, d, len, a);
	nb = cut_all(&c2, d, len, b);
	for (size_t i = 0; i + 1 < na; i++)
		for (size_t k = 0; k + 1 < nb; k++)
			same += a[i] == b[k];
	assert_true(same <= 1);
	free(d);
	free(a);
	free(b);
}

static void test_small_and_bad_params(void **state)
{
	struct chunker c;
	uint8_t seed[32] = { 0 }, buf[100] = { 0 };

	(void)state;
	assert_int_equal(chunker_init(&c, seed, 4096, 3000, 8192), -22);
	assert_int_equal(chunker_init(&c, seed, 4096, 8192, 65536), 0);
	assert_int_equal(chunker_next(&c, buf, sizeof(buf)), sizeof(buf));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes_within_bounds),
		cmocka_unit_test(test_boundaries_survive_an_insert),
		cmocka_unit_test(test_seed_changes_boundaries),
		cmocka_unit_test(test_small_and_bad_params),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
