/* FastCDC content-defined chunking (Xia et al., 2016) with normalized
 * chunking. The gear table is derived from the repository's secret seed,
 * so chunk boundaries do not fingerprint content across repositories. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CHUNK_MIN (256u << 10)
#define CHUNK_AVG (1u << 20)
#define CHUNK_MAX (4u << 20)

struct chunker {
	uint64_t gear[256];
	size_t min, avg, max;
	uint64_t mask_small, mask_large; /* stricter before avg, looser after */
};

/* Fills the gear table from seed (32 bytes) with SHA-256 in counter mode;
 * min <= avg <= max, avg a power of two. */
int chunker_init(struct chunker *c, const uint8_t seed[32], size_t min, size_t avg, size_t max);

/* Length of the next chunk at the start of buf[0..len): a cut point, or
 * len when len <= min or no cut is found before max. The caller gives at
 * least max bytes unless it is at the end of the data. */
size_t chunker_next(const struct chunker *c, const uint8_t *buf, size_t len);
