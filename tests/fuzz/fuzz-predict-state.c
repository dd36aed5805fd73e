/* predict_load(), the parser of a predictor's saved state (state.db's
 * predict_state blobs), against arbitrary bytes. Three ways in: the bytes
 * as they are; the bytes XORed over a valid image of a trained predictor
 * with the checksum then fixed, so mutations reach the field checks
 * behind it; and the same with the header too. Whatever loads must score
 * in [0, 1] and forecast without a crash. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "predict/predict.h"

/* The header layout of src/predict/predict.c (struct saved_header). */
struct header {
	char magic[8];
	uint32_t version, size;
	uint64_t samples, checksum;
};

static uint64_t fnv1a(const unsigned char *b, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static void exercise(struct predict *p)
{
	struct predict_forecast f;
	struct predict_eta e;
	usec_t t = predict_last_time(p);

	for (int i = 1; i <= 50; i++) {
		double s = predict_update(p, t + (usec_t)i * 300 * USEC_PER_SEC, i % 3 ? 10 : 1e6);

		if (!(s >= 0 && s <= 1) || !(predict_anomaly_raw(p) >= 0))
			abort();
	}
	for (int m = 0; m < PREDICT_METHOD_MAX; m++)
		(void)predict_forecast(p, m, USEC_PER_HOUR, &f);
	(void)predict_time_to(p, 100, true, USEC_PER_DAY, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char *valid;
	size_t n = predict_saved_size();
	unsigned char *img;
	struct predict *p = NULL;
	struct header h;

	if (!valid) {
		struct predict *t = NULL;

		valid = malloc(n);
		if (!valid || predict_new(NULL, &t) < 0)
			abort();
		for (int i = 0; i < 3000; i++)
			predict_update(t, (1400000000 + (usec_t)i * 300) * USEC_PER_SEC,
				       50 + 20 * sin(i * 0.0218) + (i % 7));
		if (predict_save(t, valid, n) < 0)
			abort();
		predict_free(t);
	}
	if (predict_new(NULL, &p) < 0)
		return 0;
	if (size == 0 || data[0] % 3 == 0) {
		if (predict_load(p, data, size) == 0)
			exercise(p);
		predict_free(p);
		return 0;
	}
	img = malloc(n);
	if (!img) {
		predict_free(p);
		return 0;
	}
	memcpy(img, valid, n);
	/* XOR the input over the image, after the header unless asked */
	for (size_t i = 1, at = data[0] % 3 == 2 ? 0 : sizeof(h); i < size && at < n; i++, at++)
		img[at] ^= data[i];
	memcpy(&h, img, sizeof(h));
	h.checksum = fnv1a(img + sizeof(h), n - sizeof(h));
	memcpy(img, &h, sizeof(h));
	if (predict_load(p, img, n) == 0)
		exercise(p);
	free(img);
	predict_free(p);
	return 0;
}
