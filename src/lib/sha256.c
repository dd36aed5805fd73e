/* SHA-256 as FIPS 180-4 gives it, with the x86 SHA extensions (SHA-NI,
 * about 4 times the speed of the portable rounds) when the CPU has them. */
#include "lib/sha256.h"

#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHA_NI_CODE 1
#endif

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2,
};

static inline uint32_t ror(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static inline uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void blocks_portable(uint32_t state[8], const uint8_t *data, size_t nblocks)
{
	for (; nblocks > 0; nblocks--, data += SHA256_BLOCK_SIZE) {
		uint32_t w[64], a, b, c, d, e, f, g, h;

		for (int i = 0; i < 16; i++)
			w[i] = load_be32(data + 4 * i);
		for (int i = 16; i < 64; i++) {
			uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
			uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);

			w[i] = w[i - 16] + s0 + w[i - 7] + s1;
		}
		a = state[0], b = state[1], c = state[2], d = state[3];
		e = state[4], f = state[5], g = state[6], h = state[7];
		for (int i = 0; i < 64; i++) {
			uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) +
				      ((e & f) ^ (~e & g)) + K[i] + w[i];
			uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) +
				      ((a & b) ^ (a & c) ^ (b & c));

			h = g, g = f, f = e, e = d + t1;
			d = c, c = b, b = a, a = t1 + t2;
		}
		state[0] += a, state[1] += b, state[2] += c, state[3] += d;
		state[4] += e, state[5] += f, state[6] += g, state[7] += h;
	}
}

#ifdef HAVE_SHA_NI_CODE
/* Four rounds: msg holds w[i..i+3], k_index the first of their constants. */
#define ROUNDS4(msg, k_index)                                                         \
	do {                                                                          \
		__m128i m_ = _mm_add_epi32(msg, _mm_loadu_si128(                      \
						 (const __m128i *)&K[k_index]));      \
		cdgh = _mm_sha256rnds2_epu32(cdgh, abef, m_);                         \
		abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(m_, 0x0e)); \
	} while (0)

/* The next four message words from the last sixteen (w0 oldest). */
#define SCHEDULE4(w0, w1, w2, w3)                                                     \
	(w0 = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(w0, w1),      \
						 _mm_alignr_epi8(w3, w2, 4)),      \
				   w3))

__attribute__((target("sha,sse4.1")))
static void blocks_sha_ni(uint32_t state[8], const uint8_t *data, size_t nblocks)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	/* The instructions keep the state as (a,b,e,f) and (c,d,g,h). */
	__m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xb1);
	__m128i cdgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1b);
	__m128i abef = _mm_alignr_epi8(t, cdgh, 8);

	cdgh = _mm_blend_epi16(cdgh, t, 0xf0);
	for (; nblocks > 0; nblocks--, data += SHA256_BLOCK_SIZE) {
		__m128i abef_saved = abef, cdgh_saved = cdgh;
		__m128i w0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)data), bswap);
		__m128i w1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16)), bswap);
		__m128i w2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 32)), bswap);
		__m128i w3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 48)), bswap);

		ROUNDS4(w0, 0);
		ROUNDS4(w1, 4);
		ROUNDS4(w2, 8);
		ROUNDS4(w3, 12);
		for (int i = 16; i < 64; i += 16) {
			ROUNDS4(SCHEDULE4(w0, w1, w2, w3), i);
			ROUNDS4(SCHEDULE4(w1, w2, w3, w0), i + 4);
			ROUNDS4(SCHEDULE4(w2, w3, w0, w1), i + 8);
			ROUNDS4(SCHEDULE4(w3, w0, w1, w2), i + 12);
		}
		abef = _mm_add_epi32(abef, abef_saved);
		cdgh = _mm_add_epi32(cdgh, cdgh_saved);
	}
	t = _mm_shuffle_epi32(abef, 0x1b);
	cdgh = _mm_shuffle_epi32(cdgh, 0xb1);
	_mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(t, cdgh, 0xf0));
	_mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(cdgh, t, 8));
}

static bool cpu_has_sha_ni(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
		return false;
	if (__get_cpuid_max(0, NULL) < 7)
		return false;
	__cpuid_count(7, 0, a, b, c, d);
	return b & bit_SHA;
}
#endif

typedef void blocks_fn(uint32_t state[8], const uint8_t *data, size_t nblocks);

/* The block function this CPU runs best, chosen on first use (a race only
 * chooses the same twice). */
static blocks_fn *blocks_chosen;

static void blocks(uint32_t state[8], const uint8_t *data, size_t nblocks)
{
	blocks_fn *fn = __atomic_load_n(&blocks_chosen, __ATOMIC_RELAXED);

	if (!fn) {
		fn = blocks_portable;
#ifdef HAVE_SHA_NI_CODE
		if (cpu_has_sha_ni())
			fn = blocks_sha_ni;
#endif
		__atomic_store_n(&blocks_chosen, fn, __ATOMIC_RELAXED);
	}
	fn(state, data, nblocks);
}

void sha256_init(struct sha256 *s)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(s->state, iv, sizeof(iv));
	s->length = 0;
	s->used = 0;
}

void sha256_update(struct sha256 *s, const void *data, size_t size)
{
	const uint8_t *p = data;

	s->length += size;
	if (s->used > 0) {
		size_t take = SHA256_BLOCK_SIZE - s->used;

		if (take > size)
			take = size;
		memcpy(s->block + s->used, p, take);
		s->used += take;
		p += take;
		size -= take;
		if (s->used < SHA256_BLOCK_SIZE)
			return;
		blocks(s->state, s->block, 1);
		s->used = 0;
	}
	if (size >= SHA256_BLOCK_SIZE) {
		blocks(s->state, p, size / SHA256_BLOCK_SIZE);
		p += size / SHA256_BLOCK_SIZE * SHA256_BLOCK_SIZE;
		size %= SHA256_BLOCK_SIZE;
	}
	memcpy(s->block, p, size);
	s->used = size;
}

void sha256_final(struct sha256 *s, uint8_t ret[SHA256_DIGEST_SIZE])
{
	uint64_t bits = s->length * 8;

	/* 0x80, zeros up to 56 bytes into a block, the length in bits. */
	s->block[s->used++] = 0x80;
	if (s->used > SHA256_BLOCK_SIZE - 8) {
		memset(s->block + s->used, 0, SHA256_BLOCK_SIZE - s->used);
		blocks(s->state, s->block, 1);
		s->used = 0;
	}
	memset(s->block + s->used, 0, SHA256_BLOCK_SIZE - 8 - s->used);
	for (int i = 0; i < 8; i++)
		s->block[SHA256_BLOCK_SIZE - 1 - i] = (uint8_t)(bits >> (8 * i));
	blocks(s->state, s->block, 1);
	for (int i = 0; i < 8; i++) {
		ret[4 * i] = (uint8_t)(s->state[i] >> 24);
		ret[4 * i + 1] = (uint8_t)(s->state[i] >> 16);
		ret[4 * i + 2] = (uint8_t)(s->state[i] >> 8);
		ret[4 * i + 3] = (uint8_t)s->state[i];
	}
}

void sha256(const void *data, size_t size, uint8_t ret[SHA256_DIGEST_SIZE])
{
	struct sha256 s;

	sha256_init(&s);
	sha256_update(&s, data, size);
	sha256_final(&s, ret);
}
