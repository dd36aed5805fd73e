/* The agent's anomaly rule on synthetic streams: predict_update() and
 * predict_anomaly_rule() at the defaults a check gets (above 0.5, for 1),
 * as src/agent/integrate.c runs them. A level shift, a spike, a drift and
 * a stopped signal are each raised within a bounded number of samples; a
 * noisy normal stream raises nothing over 10,000 samples; the saved state
 * resumes where it stopped and garbage is refused. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "predict/predict.h"

#define T0 ((usec_t)1400000000 * USEC_PER_SEC)
#define STEP (5 * USEC_PER_MINUTE)
#define ABOVE PREDICT_ANOMALY_ABOVE /* the default `above:` (bench/nab/lofo's threshold) */
#define NORMAL 3000 /* samples of normal behaviour before the event */

/* Deterministic standard normal noise (Box-Muller on an LCG). */
static double gauss(uint64_t *seed)
{
	double u1, u2;

	*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
	u1 = ((*seed >> 11) + 1.0) / 9007199254740993.0;
	*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
	u2 = (*seed >> 11) / 9007199254740992.0;
	return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

/* Deterministic Poisson count of mean lambda (Knuth's product of
 * uniforms; lambda is small here). */
static double poisson(uint64_t *seed, double lambda)
{
	double limit = exp(-lambda), prod = 1;
	int k = -1;

	do {
		*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
		prod *= ((*seed >> 11) + 1.0) / 9007199254740993.0;
		k++;
	} while (prod > limit);
	return k;
}

enum event { NONE, SHIFT, SPIKE, DRIFT, STOPPED, COUNTS };

/* A noisy daily wave (5-minute samples, noise sd 3 on a wave of 10), then
 * the event from sample NORMAL on. */
static double sample(enum event e, int i, uint64_t *seed, double *last)
{
	double v, wave = 10 * sin(2 * M_PI * i / 288.0);
	int k = i - NORMAL;

	/* a request rate: counts per interval around a daily wave, no event */
	if (e == COUNTS)
		return poisson(seed, 20 + wave);
	v = 100 + wave + 3 * gauss(seed);

	if (k >= 0) {
		switch (e) {
		case SHIFT:
			v += 30;
			break;
		case SPIKE:
			v += k == 0 ? 60 : 0;
			break;
		case DRIFT:
			v += 0.1 * k;
			break;
		case STOPPED:
			return *last; /* the signal freezes at its last value */
		default:
			break;
		}
	}
	*last = v;
	return v;
}

/* Samples from the event's start to the first raise (-1: none); raises
 * before the event are counted in *early. */
static int first_raise(enum event e, unsigned for_runs, int n, uint64_t seed, int *early)
{
	_cleanup_predict_ struct predict *p = NULL;
	unsigned runs = 0;
	double last = 0;

	*early = 0;
	assert_int_equal(predict_new(NULL, &p), 0);
	for (int i = 0; i < n; i++) {
		double s = predict_update(p, T0 + (usec_t)i * STEP, sample(e, i, &seed, &last));
		bool raised = predict_anomaly_rule(&runs, s, predict_anomaly_raw(p), ABOVE, for_runs);

		assert_true(s >= 0 && s <= 1);
		if (raised && i < NORMAL)
			(*early)++;
		if (raised && i >= NORMAL)
			return i - NORMAL;
	}
	return -1;
}

static void test_noisy_normal_raises_nothing(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 3; seed++) {
		int early;

		assert_int_equal(first_raise(NONE, 1, 10000, seed, &early), -1);
		assert_int_equal(early, 0);
		assert_int_equal(first_raise(COUNTS, 1, 10000, seed, &early), -1);
		assert_int_equal(early, 0);
	}
}

static void check_event(enum event e, unsigned for_runs, int bound)
{
	for (uint64_t seed = 1; seed <= 3; seed++) {
		int early, at = first_raise(e, for_runs, NORMAL + bound + 1, seed, &early);

		/* the figures docs/predict.md quotes */
		print_message("event %d, for %u, seed %d: raised after %d samples (bound %d)\n",
			      (int)e, for_runs, (int)seed, at, bound);
		assert_int_equal(early, 0);
		assert_true(at >= 0);
		assert_true(at <= bound);
	}
}

static void test_level_shift_raised(void **state)
{
	(void)state;
	check_event(SHIFT, 1, 1);
	check_event(SHIFT, 3, 4);
}

static void test_spike_raised(void **state)
{
	int early;

	(void)state;
	check_event(SPIKE, 1, 0);
	/* for: 3 asks an anomaly to last three runs: one sample does not */
	assert_int_equal(first_raise(SPIKE, 3, NORMAL + 500, 1, &early), -1);
}

static void test_drift_raised(void **state)
{
	(void)state;
	/* 0.1 a sample, one noise sd in 30 samples: raised near 7 sd, ~210 */
	check_event(DRIFT, 1, 250);
	check_event(DRIFT, 3, 252);
}

static void test_stopped_signal_raised(void **state)
{
	(void)state;
	check_event(STOPPED, 1, 80);
	check_event(STOPPED, 3, 82);
}

/* for: N counts the runs of an alarm while the raw score stays high. */
static void test_rule_counts_runs(void **state)
{
	unsigned runs = 0;

	(void)state;
	assert_false(predict_anomaly_rule(&runs, 0.2, 0.2, 0.5, 2));
	assert_false(predict_anomaly_rule(&runs, 0.2, 0.9, 0.5, 2)); /* no alarm yet */
	assert_int_equal(runs, 0);
	assert_false(predict_anomaly_rule(&runs, 0.7, 0.7, 0.5, 2));
	assert_true(predict_anomaly_rule(&runs, 0.3, 0.6, 0.5, 2)); /* damped, still high */
	assert_false(predict_anomaly_rule(&runs, 0.3, 0.4, 0.5, 2));
	assert_int_equal(runs, 0);
	assert_true(predict_anomaly_rule(&runs, 0.6, 0.6, 0.5, 1));
	assert_true(predict_anomaly_rule(&runs, 0.6, 0.6, 0.5, 0)); /* 0 means 1 */
}

/* Saved after 2000 samples and loaded into a new predictor, the stream
 * goes on exactly as if it had never stopped. */
static void test_saved_state_resumes(void **state)
{
	_cleanup_predict_ struct predict *a = NULL, *b = NULL;
	_cleanup_free_ unsigned char *buf = malloc(predict_saved_size());
	uint64_t seed = 5, n;
	double last = 0;

	(void)state;
	assert_non_null(buf);
	assert_int_equal(predict_new(NULL, &a), 0);
	assert_int_equal(predict_new(NULL, &b), 0);
	for (int i = 0; i < 2000; i++)
		predict_update(a, T0 + (usec_t)i * STEP, sample(NONE, i, &seed, &last));
	assert_int_equal(predict_save(a, buf, predict_saved_size() - 1), -ENOBUFS);
	assert_int_equal(predict_save(a, buf, predict_saved_size()), 0);
	assert_int_equal(predict_saved_samples(buf, predict_saved_size(), &n), 0);
	assert_int_equal(n, 2000);
	assert_int_equal(predict_load(b, buf, predict_saved_size()), 0);
	assert_int_equal(predict_samples(b), 2000);
	for (int i = 2000; i < 4000; i++) {
		double v = sample(i == 3000 ? SPIKE : NONE, i == 3000 ? NORMAL : i, &seed, &last);
		usec_t t = T0 + (usec_t)i * STEP;

		assert_true(predict_update(a, t, v) == predict_update(b, t, v));
	}
}

static void test_saved_state_garbage_refused(void **state)
{
	_cleanup_predict_ struct predict *a = NULL, *b = NULL;
	_cleanup_free_ unsigned char *buf = malloc(predict_saved_size());
	struct predict_options other = { .window = USEC_PER_HOUR };
	size_t len = predict_saved_size();

	(void)state;
	assert_non_null(buf);
	assert_int_equal(predict_new(NULL, &a), 0);
	assert_int_equal(predict_new(&other, &b), 0);
	for (int i = 0; i < 500; i++)
		predict_update(a, T0 + (usec_t)i * STEP, i % 7);
	assert_int_equal(predict_save(a, buf, len), 0);
	/* saved with another trend window: stale, not garbage */
	assert_int_equal(predict_load(b, buf, len), -ESTALE);
	assert_int_equal(predict_samples(b), 0);
	assert_int_equal(predict_load(a, buf, len - 1), -EBADMSG);
	assert_int_equal(predict_load(a, buf, 3), -EBADMSG);
	assert_int_equal(predict_load(a, "garbage!", 8), -EBADMSG);
	buf[len / 2] ^= 1; /* a flipped bit: the checksum says no */
	assert_int_equal(predict_load(a, buf, len), -EBADMSG);
	assert_int_equal(predict_samples(a), 500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_noisy_normal_raises_nothing),
		cmocka_unit_test(test_level_shift_raised),
		cmocka_unit_test(test_spike_raised),
		cmocka_unit_test(test_drift_raised),
		cmocka_unit_test(test_stopped_signal_raised),
		cmocka_unit_test(test_rule_counts_runs),
		cmocka_unit_test(test_saved_state_resumes),
		cmocka_unit_test(test_saved_state_garbage_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
