/* Samples per second of predict_update() alone, per core (CPU time of
 * this thread, so other load on the machine does not count): a synthetic
 * daily wave with noise, spikes and a level shift, 5-minute samples. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "predict/predict.h"

int main(void)
{
	enum { N = 4000000 };
	struct predict *p;
	struct timespec a, b;
	double sum = 0, *v = malloc(sizeof(double) * N);
	unsigned seed = 1;

	if (!v || predict_new(NULL, &p) < 0)
		return 1;
	for (int i = 0; i < N; i++) {
		seed = seed * 1103515245 + 12345;
		v[i] = 50 + 20 * sin(i * 2 * M_PI / 288) + (seed >> 16) % 100 / 20.0 +
		       (i % 5000 == 0 ? 40 : 0) + (i > N / 2 ? 15 : 0);
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	for (int i = 0; i < N; i++)
		sum += predict_update(p, (1400000000 + (usec_t)i * 300) * USEC_PER_SEC, v[i]);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	printf("%.0f samples/s (checksum %.3f, state %zu bytes)\n",
	       N / ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9), sum,
	       predict_state_size());
	predict_free(p);
	free(v);
	return 0;
}
