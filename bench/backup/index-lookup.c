/* bench/backup/index-lookup.c: the in-memory index alone, N keyed-hash-like
 * IDs inserted as a backup inserts them, then N lookups of present IDs in
 * another order and N of absent ones; prints ns per operation and the
 * peak RSS (CPU time: wall time on a shared machine is noise). Built against a source tree's src/repo/index.c:
 *   cc -O2 -D_GNU_SOURCE -Isrc bench/backup/index-lookup.c src/repo/index.c \
 *      src/lib/fs.c src/lib/buf.c src/lib/err.c -o /tmp/index-lookup && /tmp/index-lookup 5000000
 * -DOLD_API for the index before the compact one (48-byte entries). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "repo/index.h"

static void fake_id(uint64_t i, uint8_t id[32])
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull + 1;

	for (int k = 0; k < 32; k++) {
		x ^= x >> 29;
		x *= 0xbf58476d1ce4e5b9ull;
		id[k] = (uint8_t)(x >> 56);
	}
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); /* CPU time: the machine is shared */
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int insert(struct index *ix, const uint8_t id[32])
{
#ifdef OLD_API
	struct index_blob b = { .pack = INDEX_NO_PACK, .type = BLOB_DATA };

	memcpy(b.id, id, 32);
	return index_insert(ix, &b);
#else
	return index_insert(ix, id, BLOB_DATA);
#endif
}

static int present(const struct index *ix, const uint8_t id[32])
{
#ifdef OLD_API
	const struct index_blob *b = index_find(ix, id);

	return b && b->type == BLOB_DATA;
#else
	struct index_blob b;

	return index_lookup(ix, id, &b) >= 0 && b.type == BLOB_DATA;
#endif
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 5000000, found = 0;
	struct index *ix = index_new();
	struct rusage ru;
	uint8_t id[32];
	double t0, t1, t2, t3;

	t0 = now();
	for (uint64_t i = 0; i < n; i++) {
		fake_id(i, id);
		if (insert(ix, id) != 1)
			return 1;
	}
	t1 = now();
	for (uint64_t i = 0; i < n; i++) {
		fake_id((i * 7919) % n, id);
		found += (uint64_t)present(ix, id);
	}
	t2 = now();
	for (uint64_t i = 0; i < n; i++) {
		fake_id(n + i, id);
		found += (uint64_t)present(ix, id);
	}
	t3 = now();
	getrusage(RUSAGE_SELF, &ru);
	printf("%llu blobs: insert %.0f ns, lookup present %.0f ns, absent %.0f ns; "
	       "found %llu; peak RSS %ld MiB\n",
	       (unsigned long long)n, (t1 - t0) * 1e9 / (double)n, (t2 - t1) * 1e9 / (double)n,
	       (t3 - t2) * 1e9 / (double)n, (unsigned long long)found, ru.ru_maxrss / 1024);
	index_free(ix);
	return found == n ? 0 : 1;
}
