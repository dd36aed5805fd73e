/* The predict seam: anomaly scores on series with known events, forecasts
 * and time to threshold on series with known answers, and bad input. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "predict/predict.h"

#define T0 ((usec_t)1400000000 * USEC_PER_SEC)
#define STEP (5 * USEC_PER_MINUTE)

/* Deterministic noise in [-1, 1]. */
static double noise(unsigned *seed)
{
	*seed = *seed * 1103515245 + 12345;
	return ((*seed >> 8) % 20001) / 10000.0 - 1;
}

static void test_spike_scores_high_noise_low(void **state)
{
	_cleanup_predict_ struct predict *p = NULL;
	unsigned seed = 7;
	double max_quiet = 0, spike;

	(void)state;
	assert_int_equal(predict_new(NULL, &p), 0);
	for (int i = 0; i < 3000; i++) {
		double s = predict_update(p, T0 + i * STEP, 50 + noise(&seed));

		assert_true(s >= 0 && s <= 1);
		if (i >= 1000)
			max_quiet = fmax(max_quiet, s);
	}
	spike = predict_update(p, T0 + 3000 * STEP, 80);
	assert_true(spike >= 0.9);
	assert_true(max_quiet < 0.5);
}

static void test_level_shift_detected_then_learned(void **state)
{
	_cleanup_predict_ struct predict *p = NULL;
	unsigned seed = 3;
	double first = 0, late = 0;

	(void)state;
	assert_int_equal(predict_new(NULL, &p), 0);
	for (int i = 0; i < 2000; i++)
		predict_update(p, T0 + i * STEP, 10 + noise(&seed));
	for (int i = 2000; i < 8000; i++) {
		double s = predict_update(p, T0 + i * STEP, 20 + noise(&seed));

		if (i < 2050)
			first = fmax(first, s);
		if (i > 7000)
			late = fmax(late, s);
	}
	assert_true(first >= 0.5); /* the shift is an anomaly */
	assert_true(late < 0.5);   /* the new level became normal */
}

static void test_giant_outlier_does_not_blind(void **state)
{
	_cleanup_predict_ struct predict *p = NULL;
	unsigned seed = 13;
	double giant, later, quiet = 0;

	(void)state;
	assert_int_equal(predict_new(NULL, &p), 0);
	for (int i = 0; i < 2000; i++)
		predict_update(p, T0 + i * STEP, 10 + noise(&seed));
	/* a z of about 20000, then normal again */
	giant = predict_update(p, T0 + 2000 * STEP, 10000);
	for (int i = 2001; i < 2500; i++)
		quiet = fmax(quiet, predict_update(p, T0 + i * STEP, 10 + noise(&seed)));
	/* a spike 40 times the noise, 500 samples later: still an anomaly,
	 * although it is a 250th of the giant one */
	later = predict_update(p, T0 + 2500 * STEP, 50);
	assert_true(giant >= 0.9);
	assert_true(quiet < 0.5);
	assert_true(later >= 0.5);
}

static void test_gradual_rise_detected(void **state)
{
	_cleanup_predict_ struct predict *p = NULL;
	unsigned seed = 17;
	double before = 0, during = 0;

	(void)state;
	assert_int_equal(predict_new(NULL, &p), 0);
	for (int i = 0; i < 3000; i++) {
		double s = predict_update(p, T0 + i * STEP, 10 + noise(&seed));

		if (i >= 1000)
			before = fmax(before, s);
	}
	/* a ramp to a new high, 1/20 of the noise per sample: no sample is a
	 * jump, each |z| only a little above the previous one */
	for (int i = 0; i < 200; i++)
		during = fmax(during, predict_update(p, T0 + (3000 + i) * STEP,
						     10 + 0.05 * i + noise(&seed)));
	assert_true(before < 0.5);
	assert_true(during >= 0.5);
}

static void test_daily_season_is_learned(void **state)
{
	_cleanup_predict_ struct predict *p = NULL;
	unsigned seed = 11;
	double max_late = 0, off_season;
	int day = 288;

	(void)state;
	assert_int_equal(predict_new(NULL, &p), 0);
	for (int i = 0; i < 10 * day; i++) {
		double v = 50 + 30 * sin(2 * M_PI * i / day) + noise(&seed);
		double s = predict_update(p, T0 + i * STEP, v);

		if (i > 6 * day)
			max_late = fmax(max_late, s);
	}
	assert_true(max_late < 0.5); /* the wave is normal */
	assert_int_equal(predict_season(p), USEC_PER_DAY);
	/* the daily low's value at the daily high's time: within the range
	 * seen, but not at this time of day */
	off_season = predict_update(p, T0 + (10 * day + day / 4) * STEP, 20);
	assert_true(off_season >= 0.5);
}

static void test_bad_input(void **state)
{
	_cleanup_predict_ struct predict *p = NULL;
	struct predict_forecast f;
	struct predict_eta e;

	(void)state;
	assert_int_equal(predict_new(NULL, &p), 0);
	/* nothing yet: no forecast */
	assert_int_equal(predict_forecast(p, PREDICT_LINEAR, USEC_PER_HOUR, &f), -ENODATA);
	assert_int_equal(predict_time_to(p, 10, true, USEC_PER_HOUR, &e), -ENODATA);
	/* NaN and infinities are skipped */
	assert_true(predict_update(p, T0, NAN) == 0);
	assert_true(predict_update(p, T0, INFINITY) == 0);
	assert_true(predict_update(p, T0, -INFINITY) == 0);
	assert_int_equal(predict_samples(p), 0);
	/* constant series, repeated and backwards timestamps, huge values */
	for (int i = 0; i < 500; i++) {
		double s = predict_update(p, T0 + (i / 3) * STEP, 5);

		assert_true(s >= 0 && s <= 1);
	}
	for (int i = 0; i < 500; i++) {
		double s = predict_update(p, T0 + (500 - i) * STEP, i % 2 ? 1e308 : -1e308);

		assert_false(isnan(s));
		assert_true(s >= 0 && s <= 1);
	}
	assert_true(predict_update(p, 0, 1e-300) >= 0);
	assert_true(predict_update(p, UINT64_MAX, 3) <= 1);
	for (int m = 0; m < PREDICT_METHOD_MAX; m++) {
		if (predict_forecast(p, m, USEC_PER_HOUR, &f) == 0) {
			assert_false(isnan(f.value));
			assert_true(f.lower <= f.upper);
		}
	}
	if (predict_time_to(p, 7, true, USEC_PER_HOUR, &e) == 0)
		assert_true(e.earliest <= e.eta || e.eta == UINT64_MAX);
}

static void test_constant_series_scores_zero(void **state)
{
	_cleanup_predict_ struct predict *p = NULL;

	(void)state;
	assert_int_equal(predict_new(NULL, &p), 0);
	for (int i = 0; i < 5000; i++)
		assert_true(predict_update(p, T0 + i * STEP, 42) == 0);
	/* and a change on it is an anomaly */
	assert_true(predict_update(p, T0 + 5000 * STEP, 43) >= 0.5);
}

static void test_linear_forecast_and_eta(void **state)
{
	struct predict_options o = { .window = 6 * USEC_PER_HOUR };
	_cleanup_predict_ struct predict *p = NULL;
	struct predict_forecast f;
	struct predict_eta e;
	unsigned seed = 5;
	/* disk filling at 1 unit per hour, with noise and a few outliers */
	int n = 6 * 12; /* 6 h of 5-minute samples */

	(void)state;
	assert_int_equal(predict_new(&o, &p), 0);
	for (int i = 0; i <= n; i++) {
		double v = 50 + i / 12.0 + 0.05 * noise(&seed) + (i % 17 == 0 ? 30 : 0);

		predict_update(p, T0 + i * STEP, v);
	}
	assert_int_equal(predict_forecast(p, PREDICT_LINEAR, 4 * USEC_PER_HOUR, &f), 0);
	assert_true(fabs(f.value - 60) < 0.3); /* 56 now + 4 h at 1/h, outliers ignored */
	assert_true(f.lower < 60 && f.upper > 60);
	assert_true(fabs(f.rate * 3600 - 1) < 0.02);
	assert_int_equal(f.at, T0 + n * STEP + 4 * USEC_PER_HOUR);

	/* 90 is 34 h away */
	assert_int_equal(predict_time_to(p, 90, true, 48 * USEC_PER_HOUR, &e), 0);
	assert_true(e.crosses);
	assert_true(llabs((long long)e.eta - (long long)(34 * USEC_PER_HOUR)) <
		    (long long)USEC_PER_HOUR);
	assert_true(e.earliest <= e.eta && e.eta <= e.latest);
	/* not within 4 h */
	assert_int_equal(predict_time_to(p, 90, true, 4 * USEC_PER_HOUR, &e), 0);
	assert_false(e.crosses);
	/* moving away from a low threshold: never */
	assert_int_equal(predict_time_to(p, 10, false, 48 * USEC_PER_HOUR, &e), 0);
	assert_false(e.crosses);
	assert_true(e.eta == UINT64_MAX);
	/* already past */
	assert_int_equal(predict_time_to(p, 40, true, USEC_PER_HOUR, &e), 0);
	assert_true(e.crosses);
	assert_int_equal(e.eta, 0);
}

static void test_holt_and_holt_winters(void **state)
{
	_cleanup_predict_ struct predict *p = NULL;
	struct predict_forecast f;
	int day = 288;

	(void)state;
	assert_int_equal(predict_new(NULL, &p), 0);
	for (int i = 0; i < 14 * day; i++)
		predict_update(p, T0 + i * STEP, 100 + 40 * sin(2 * M_PI * i / day));
	/* a quarter day ahead: the model must know the wave, not the slope */
	for (int k = 1; k <= 4; k++) {
		usec_t h = (usec_t)k * day / 8 * STEP;
		double truth = 100 + 40 * sin(2 * M_PI * (14 * day - 1 + k * day / 8) / day);

		assert_int_equal(predict_forecast(p, PREDICT_HOLT_WINTERS, h, &f), 0);
		assert_true(fabs(f.value - truth) < 4);
		assert_int_equal(predict_forecast(p, PREDICT_AUTO, h, &f), 0);
		assert_int_equal(f.method, PREDICT_HOLT_WINTERS);
	}
	assert_int_equal(predict_forecast(p, PREDICT_HOLT, USEC_PER_HOUR, &f), 0);
	assert_false(isnan(f.value));
}

static void test_method_names(void **state)
{
	enum predict_method m;

	(void)state;
	for (int i = 0; i < PREDICT_METHOD_MAX; i++) {
		assert_int_equal(predict_method_from_name(predict_method_name(i), &m), 0);
		assert_int_equal(m, i);
	}
	assert_int_equal(predict_method_from_name("magic", &m), -EINVAL);
	assert_true(predict_state_size() <= 64 * 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spike_scores_high_noise_low),
		cmocka_unit_test(test_level_shift_detected_then_learned),
		cmocka_unit_test(test_giant_outlier_does_not_blind),
		cmocka_unit_test(test_gradual_rise_detected),
		cmocka_unit_test(test_daily_season_is_learned),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_constant_series_scores_zero),
		cmocka_unit_test(test_linear_forecast_and_eta),
		cmocka_unit_test(test_holt_and_holt_winters),
		cmocka_unit_test(test_method_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
