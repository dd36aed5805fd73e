/* SHA-256 against FIPS 180-4's examples (NIST's test vectors) and against
 * OpenSSL over random lengths and random update splits, for both the
 * portable rounds and the SHA-NI ones (when the CPU has them). The test
 * includes the module's source to choose its block function. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/sha.h>

#include "lib/sha256.c"

static void hex(const uint8_t d[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Every block function this machine can run. */
static size_t implementations(blocks_fn **ret)
{
	size_t n = 0;

	ret[n++] = blocks_portable;
#ifdef HAVE_SHA_NI_CODE
	if (cpu_has_sha_ni())
		ret[n++] = blocks_sha_ni;
	else
		fprintf(stderr, "# no SHA-NI on this CPU: the portable rounds only\n");
#endif
	return n;
}

static void check_vector(const void *data, size_t size, const char *expect)
{
	blocks_fn *fns[2];
	size_t nfns = implementations(fns);
	uint8_t d[32];
	char h[65];

	for (size_t i = 0; i < nfns; i++) {
		blocks_chosen = fns[i];
		sha256(data, size, d);
		hex(d, h);
		assert_string_equal(h, expect);
	}
}

static void test_nist_vectors(void **state)
{
	static const char m448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	static const char m896[] = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
				   "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	uint8_t *million = malloc(1000000);

	(void)state;
	assert_non_null(million);
	check_vector("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_vector("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(strlen(m448), 56);
	check_vector(m448, 56, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	assert_int_equal(strlen(m896), 112);
	check_vector(m896, 112, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
	memset(million, 'a', 1000000);
	check_vector(million, 1000000,
		     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(million);
}

/* Incremental updates in random pieces equal OpenSSL's one-shot digest, at
 * every length around the padding edges (55, 56, 63, 64) and beyond. */
static void test_against_openssl(void **state)
{
	enum { MAX = 5000 };
	uint8_t *data = malloc(MAX);
	blocks_fn *fns[2];
	size_t nfns = implementations(fns);

	(void)state;
	assert_non_null(data);
	srandom(1234);
	for (size_t i = 0; i < MAX; i++)
		data[i] = (uint8_t)random();
	for (size_t size = 0; size < MAX; size += size < 200 ? 1 : 1 + (size_t)random() % 97) {
		uint8_t expect[32], got[32];
		size_t pieces[3] = { 1 + (size_t)random() % 70, 1 + (size_t)random() % 200,
				     1 + (size_t)random() % 3 };

		SHA256(data, size, expect);
		for (size_t f = 0; f < nfns; f++) {
			struct sha256 s;
			size_t done = 0;

			blocks_chosen = fns[f];
			sha256(data, size, got);
			assert_memory_equal(got, expect, 32);
			sha256_init(&s);
			for (size_t p = 0; done < size; p++) {
				size_t n = pieces[p % 3] < size - done ? pieces[p % 3]
								       : size - done;

				sha256_update(&s, data + done, n);
				done += n;
			}
			sha256_final(&s, got);
			assert_memory_equal(got, expect, 32);
		}
	}
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nist_vectors),
		cmocka_unit_test(test_against_openssl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
