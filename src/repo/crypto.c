#include "repo/crypto.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "lib/err.h"
#include "lib/hex.h"

/* Nonces drawn from OpenSSL's generator this many at a time: one call
 * (and its fork check, a getpid()) per NONCE_BATCH sealed blobs. A context
 * belongs to one thread of one process: never used across fork(). */
#define NONCE_BATCH 64

struct crypto_ctx {
	struct master_key key;
	EVP_MD_CTX *md;
	EVP_CIPHER_CTX *cipher; /* keyed with key.enc once: per blob only the nonce changes */
	uint8_t ipad[64], opad[64]; /* HMAC pads of the mac key */
	uint8_t nonces[NONCE_BATCH * CRYPTO_NONCE_LEN];
	unsigned nonces_left;
};

static EVP_MD *sha256_md;
static EVP_CIPHER *gcm_cipher;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

/* Fetch once: EVP_sha256() looks the algorithm up on every use. */
static void fetch_algorithms(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static int fetch(void)
{
	pthread_once(&fetch_once, fetch_algorithms);
	return sha256_md && gcm_cipher ? 0 : -ENOTSUP;
}

int crypto_ctx_new(const struct master_key *key, struct crypto_ctx **ret)
{
	struct crypto_ctx *c;
	int r = fetch();

	if (r < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (key)
		c->key = *key;
	c->md = EVP_MD_CTX_new();
	c->cipher = EVP_CIPHER_CTX_new();
	if (!c->md || !c->cipher) {
		crypto_ctx_free(c);
		return -ENOMEM;
	}
	for (size_t i = 0; i < 64; i++) {
		uint8_t k = i < CRYPTO_KEY_LEN ? c->key.mac[i] : 0;

		c->ipad[i] = k ^ 0x36;
		c->opad[i] = k ^ 0x5c;
	}
	/* The key schedule once; seal and open then only set the nonce. */
	if (EVP_CipherInit_ex2(c->cipher, gcm_cipher, c->key.enc, NULL, 1, NULL) != 1) {
		crypto_ctx_free(c);
		return -EIO;
	}
	*ret = c;
	return 0;
}

void crypto_ctx_free(struct crypto_ctx *c)
{
	if (!c)
		return;
	EVP_MD_CTX_free(c->md);
	EVP_CIPHER_CTX_free(c->cipher);
	OPENSSL_cleanse(&c->key, sizeof(c->key));
	OPENSSL_cleanse(c->ipad, sizeof(c->ipad));
	OPENSSL_cleanse(c->opad, sizeof(c->opad));
	free(c);
}

static int digest2(struct crypto_ctx *c, const void *a, size_t alen, const void *b, size_t blen,
		   uint8_t out[32])
{
	if (EVP_DigestInit_ex(c->md, sha256_md, NULL) != 1 || EVP_DigestUpdate(c->md, a, alen) != 1 ||
	    (blen && EVP_DigestUpdate(c->md, b, blen) != 1) ||
	    EVP_DigestFinal_ex(c->md, out, NULL) != 1)
		return -EIO;
	return 0;
}

int crypto_sha256(struct crypto_ctx *c, const void *data, size_t len, uint8_t out[32])
{
	return digest2(c, data, len, NULL, 0, out);
}

struct crypto_sha256_stream {
	EVP_MD_CTX *md;
};

int crypto_sha256_stream_new(struct crypto_sha256_stream **ret)
{
	struct crypto_sha256_stream *s;
	int r = fetch();

	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->md = EVP_MD_CTX_new();
	if (!s->md) {
		free(s);
		return -ENOMEM;
	}
	if (EVP_DigestInit_ex(s->md, sha256_md, NULL) != 1) {
		crypto_sha256_stream_free(s);
		return -EIO;
	}
	*ret = s;
	return 0;
}

int crypto_sha256_stream_update(struct crypto_sha256_stream *s, const void *data, size_t len)
{
	return !len || EVP_DigestUpdate(s->md, data, len) == 1 ? 0 : -EIO;
}

int crypto_sha256_stream_final(struct crypto_sha256_stream *s, uint8_t out[32])
{
	if (EVP_DigestFinal_ex(s->md, out, NULL) != 1 ||
	    EVP_DigestInit_ex(s->md, sha256_md, NULL) != 1)
		return -EIO;
	return 0;
}

void crypto_sha256_stream_free(struct crypto_sha256_stream *s)
{
	if (!s)
		return;
	EVP_MD_CTX_free(s->md);
	free(s);
}

int crypto_blob_id(struct crypto_ctx *c, const void *data, size_t len, uint8_t out[32])
{
	uint8_t h[32], inner[32];
	int r = digest2(c, data, len, NULL, 0, h);

	if (r >= 0)
		r = digest2(c, c->ipad, 64, h, 32, inner);
	if (r >= 0)
		r = digest2(c, c->opad, 64, inner, 32, out);
	return r;
}

/* key NULL: x is keyed already. The nonce is at out. */
static int seal(EVP_CIPHER_CTX *x, const uint8_t *key, const void *aad, size_t aad_len,
		const void *in, size_t len, uint8_t *out)
{
	int n;

	if (len > INT32_MAX || aad_len > INT32_MAX)
		return -BCDR_ERR_TOO_BIG;
	if (key ? EVP_EncryptInit_ex2(x, gcm_cipher, key, out, NULL) != 1
		: EVP_EncryptInit_ex2(x, NULL, NULL, out, NULL) != 1)
		return -EIO;
	if (aad_len && EVP_EncryptUpdate(x, NULL, &n, aad, (int)aad_len) != 1)
		return -EIO;
	if (len && EVP_EncryptUpdate(x, out + CRYPTO_NONCE_LEN, &n, in, (int)len) != 1)
		return -EIO;
	if (EVP_EncryptFinal_ex(x, out + CRYPTO_NONCE_LEN + len, &n) != 1)
		return -EIO;
	if (EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, CRYPTO_TAG_LEN,
				out + CRYPTO_NONCE_LEN + len) != 1)
		return -EIO;
	return 0;
}

/* key NULL: x is keyed already. */
static int open_(EVP_CIPHER_CTX *x, const uint8_t *key, const void *aad, size_t aad_len,
		 const uint8_t *in, size_t in_len, uint8_t *out)
{
	size_t len;
	int n;

	if (in_len < CRYPTO_OVERHEAD)
		return -BCDR_ERR_CORRUPT;
	len = in_len - CRYPTO_OVERHEAD;
	if (len > INT32_MAX || aad_len > INT32_MAX)
		return -BCDR_ERR_TOO_BIG;
	if (key ? EVP_DecryptInit_ex2(x, gcm_cipher, key, in, NULL) != 1
		: EVP_DecryptInit_ex2(x, NULL, NULL, in, NULL) != 1)
		return -EIO;
	if (aad_len && EVP_DecryptUpdate(x, NULL, &n, aad, (int)aad_len) != 1)
		return -EIO;
	if (len && EVP_DecryptUpdate(x, out, &n, in + CRYPTO_NONCE_LEN, (int)len) != 1)
		return -EIO;
	if (EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, CRYPTO_TAG_LEN,
				(void *)(in + CRYPTO_NONCE_LEN + len)) != 1)
		return -EIO;
	if (EVP_DecryptFinal_ex(x, out + len, &n) != 1)
		return -BCDR_ERR_CORRUPT;
	return 0;
}

static int next_nonce(struct crypto_ctx *c, uint8_t out[CRYPTO_NONCE_LEN])
{
	if (c->nonces_left == 0) {
		if (RAND_bytes(c->nonces, sizeof(c->nonces)) != 1)
			return -EIO;
		c->nonces_left = NONCE_BATCH;
	}
	c->nonces_left--;
	memcpy(out, c->nonces + c->nonces_left * CRYPTO_NONCE_LEN, CRYPTO_NONCE_LEN);
	return 0;
}

int crypto_seal(struct crypto_ctx *c, const void *aad, size_t aad_len, const void *in, size_t len,
		uint8_t *out)
{
	int r = next_nonce(c, out);

	return r < 0 ? r : seal(c->cipher, NULL, aad, aad_len, in, len, out);
}

int crypto_open(struct crypto_ctx *c, const void *aad, size_t aad_len, const uint8_t *in,
		size_t in_len, uint8_t *out)
{
	return open_(c->cipher, NULL, aad, aad_len, in, in_len, out);
}

/* A context for a key used once (the caller frees it). */
static int one_off_ctx(EVP_CIPHER_CTX **ret)
{
	int r = fetch();

	if (r < 0)
		return r;
	*ret = EVP_CIPHER_CTX_new();
	return *ret ? 0 : -ENOMEM;
}

int crypto_seal_with(const uint8_t key[32], const void *in, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *x;
	int r = one_off_ctx(&x);

	if (r < 0)
		return r;
	if (RAND_bytes(out, CRYPTO_NONCE_LEN) != 1)
		r = -EIO;
	else
		r = seal(x, key, NULL, 0, in, len, out);
	EVP_CIPHER_CTX_free(x);
	return r;
}

int crypto_open_with(const uint8_t key[32], const uint8_t *in, size_t in_len, uint8_t *out)
{
	EVP_CIPHER_CTX *x;
	int r = one_off_ctx(&x);

	if (r < 0)
		return r;
	r = open_(x, key, NULL, 0, in, in_len, out);
	EVP_CIPHER_CTX_free(x);
	return r;
}

bool crypto_scrypt_params_ok(uint64_t n, uint32_t r, uint32_t p)
{
	return n >= CRYPTO_SCRYPT_N_MIN && n <= CRYPTO_SCRYPT_N_MAX && !(n & (n - 1)) && r >= 1 &&
	       r <= CRYPTO_SCRYPT_R_MAX && p >= 1 && p <= CRYPTO_SCRYPT_P_MAX;
}

int crypto_scrypt(const char *password, const uint8_t *salt, size_t salt_len, uint64_t n,
		  uint32_t r, uint32_t p, uint8_t out[32])
{
	if (!crypto_scrypt_params_ok(n, r, p))
		return -BCDR_ERR_TOO_BIG;
	/* 128 * r * n bytes: 32 MiB at the bounds */
	if (EVP_PBE_scrypt(password, strlen(password), salt, salt_len, n, r, p, (uint64_t)64 << 20,
			   out, 32) != 1)
		return -ENOMEM;
	return 0;
}

int crypto_random(void *buf, size_t len)
{
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -EIO;
}

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = 0;
}

int hex_decode(const char *in, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		int hi = hex_digit(in[2 * i]), lo = hi < 0 ? -1 : hex_digit(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return in[2 * len] == 0 ? 0 : -EINVAL;
}
