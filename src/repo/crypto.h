/* The repository's cryptography, all through OpenSSL: AES-256-GCM on every
 * stored byte, keyed blob IDs (HMAC-SHA256 over the SHA-256 of the
 * plaintext, so the one pass over the data uses SHA-NI), and the master key
 * wrapped by a key derived from the password with scrypt. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_KEY_LEN 32
#define CRYPTO_ID_LEN 32
#define CRYPTO_NONCE_LEN 12
#define CRYPTO_TAG_LEN 16
/* Bytes a sealed message adds to its plaintext: nonce in front, tag behind. */
#define CRYPTO_OVERHEAD (CRYPTO_NONCE_LEN + CRYPTO_TAG_LEN)

/* The secrets of a repository, generated at init and stored only wrapped. */
struct master_key {
	uint8_t enc[CRYPTO_KEY_LEN];  /* AES-256-GCM key for everything stored */
	uint8_t mac[CRYPTO_KEY_LEN];  /* HMAC key for blob IDs */
	uint8_t gear[CRYPTO_KEY_LEN]; /* seed of the chunker's gear table */
};

/* Per-thread OpenSSL contexts, reused for every call (creating them per
 * blob costs more than hashing a small file). */
struct crypto_ctx;

int crypto_ctx_new(const struct master_key *key, struct crypto_ctx **ret);
void crypto_ctx_free(struct crypto_ctx *c);

/* SHA-256 of data. */
int crypto_sha256(struct crypto_ctx *c, const void *data, size_t len, uint8_t out[32]);
/* SHA-256 of data that arrives in pieces (check streams a pack, whose
 * name is the hash of all its bytes, without holding it). Its own
 * context: a crypto_ctx's is busy with the blob IDs meanwhile. */
struct crypto_sha256_stream;

int crypto_sha256_stream_new(struct crypto_sha256_stream **ret);
int crypto_sha256_stream_update(struct crypto_sha256_stream *s, const void *data, size_t len);
/* The hash of everything since new() or the last final(), which starts
 * the next one. */
int crypto_sha256_stream_final(struct crypto_sha256_stream *s, uint8_t out[32]);
void crypto_sha256_stream_free(struct crypto_sha256_stream *s);

/* The keyed ID of a blob: HMAC-SHA256(mac key, SHA-256(data)). */
int crypto_blob_id(struct crypto_ctx *c, const void *data, size_t len, uint8_t out[32]);

/* Seals plaintext into out (len + CRYPTO_OVERHEAD bytes): random nonce,
 * ciphertext, tag; aad is authenticated, not stored. */
int crypto_seal(struct crypto_ctx *c, const void *aad, size_t aad_len, const void *in, size_t len,
		uint8_t *out);
/* Opens what crypto_seal made (in_len >= CRYPTO_OVERHEAD) into out
 * (in_len - CRYPTO_OVERHEAD bytes); a wrong tag gives -BCDR_ERR_CORRUPT. */
int crypto_open(struct crypto_ctx *c, const void *aad, size_t aad_len, const uint8_t *in,
		size_t in_len, uint8_t *out);

/* Seals/opens with an explicit key (the password-derived wrapping key). */
int crypto_seal_with(const uint8_t key[32], const void *in, size_t len, uint8_t *out);
int crypto_open_with(const uint8_t key[32], const uint8_t *in, size_t in_len, uint8_t *out);

/* The scrypt costs a key file may ask for: what bcdr writes (n = 2^15,
 * r = 8, p = 1) and cheaper n down to 2^10, nothing dearer, so a planted
 * key file cannot make every open cost gigabytes and seconds. */
#define CRYPTO_SCRYPT_N_MIN (1u << 10)
#define CRYPTO_SCRYPT_N_MAX (1u << 15)
#define CRYPTO_SCRYPT_R_MAX 8u
#define CRYPTO_SCRYPT_P_MAX 1u
/* n a power of two within the bounds above, 1 <= r, p <= their maxima. */
bool crypto_scrypt_params_ok(uint64_t n, uint32_t r, uint32_t p);
/* scrypt(password, salt) -> 32 bytes; parameters outside
 * crypto_scrypt_params_ok() are -BCDR_ERR_TOO_BIG. */
int crypto_scrypt(const char *password, const uint8_t *salt, size_t salt_len, uint64_t n,
		  uint32_t r, uint32_t p, uint8_t out[32]);

int crypto_random(void *buf, size_t len);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void hex_encode(const uint8_t *in, size_t len, char *out);
/* Exactly 2*len hex digits into out; -EINVAL otherwise. */
int hex_decode(const char *in, uint8_t *out, size_t len);
