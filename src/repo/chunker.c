#include "repo/chunker.h"

#include <errno.h>
#include <string.h>

#include <openssl/sha.h>

/* A mask of `bits` one bits spread over the upper 48 bits: with a left
 * shifting gear hash the upper bits depend on the last 64 bytes, and spread
 * bits (FastCDC's advice) make cuts less sensitive to byte patterns. */
static uint64_t spread_mask(unsigned bits)
{
	uint64_t m = 0;
	unsigned step = 48 / bits;

	for (unsigned i = 0; i < bits; i++)
		m |= (uint64_t)1 << (63 - i * step);
	return m;
}

int chunker_init(struct chunker *c, const uint8_t seed[32], size_t min, size_t avg, size_t max)
{
	unsigned bits = 0;

	if (!(min <= avg && avg <= max) || (avg & (avg - 1)) || avg < 64)
		return -EINVAL;
	while (((size_t)1 << bits) < avg)
		bits++;
	for (unsigned i = 0; i < 256 / 4; i++) {
		uint8_t in[36], out[32];

		memcpy(in, seed, 32);
		in[32] = (uint8_t)i;
		in[33] = in[34] = in[35] = 0;
		SHA256(in, sizeof(in), out);
		memcpy(&c->gear[i * 4], out, 32);
	}
	c->min = min;
	c->avg = avg;
	c->max = max;
	c->mask_small = spread_mask(bits + 2);
	c->mask_large = spread_mask(bits - 2);
	return 0;
}

size_t chunker_next(const struct chunker *c, const uint8_t *buf, size_t len)
{
	uint64_t h = 0;
	size_t i, normal, end;

	if (len <= c->min)
		return len;
	end = len < c->max ? len : c->max;
	normal = end < c->avg ? end : c->avg;
	/* Bytes before min cannot be a cut; the hash needs only the last 64. */
	i = c->min - 64;
	for (; i < normal; i++) {
		h = (h << 1) + c->gear[buf[i]];
		if (!(h & c->mask_small) && i >= c->min)
			return i + 1;
	}
	for (; i < end; i++) {
		h = (h << 1) + c->gear[buf[i]];
		if (!(h & c->mask_large))
			return i + 1;
	}
	return end;
}
