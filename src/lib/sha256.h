/* SHA-256 (FIPS 180-4), for what hashes outside the backup engine (the
 * file probe's checksum): the agent then maps no libcrypto, 3 MiB of
 * resident pages it would otherwise hold for one hash (docs/internals.md).
 * Uses the CPU's SHA extensions when it has them. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_BLOCK_SIZE 64

struct sha256 {
	uint32_t state[8];
	uint64_t length; /* bytes hashed so far */
	uint8_t block[SHA256_BLOCK_SIZE];
	size_t used;     /* bytes waiting in block */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t size);
/* Writes the digest; s must be initialised again before reuse. */
void sha256_final(struct sha256 *s, uint8_t ret[SHA256_DIGEST_SIZE]);

/* The digest of one buffer. */
void sha256(const void *data, size_t size, uint8_t ret[SHA256_DIGEST_SIZE]);
