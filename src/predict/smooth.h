/* Exponential smoothing on irregular time: Holt's level + trend, and
 * additive Holt-Winters whose season is a profile of time-of-day (daily)
 * or time-of-week (weekly) bins, so a sample's season slot comes from its
 * timestamp, never from counting samples (gaps and jitter do not shift
 * the season). Each model keeps its one-step error, which both the
 * forecast intervals and the choice between models use. */
#pragma once

#include <stdint.h>

#define SMOOTH_DAY_BINS 288  /* 5 minutes each */
#define SMOOTH_WEEK_BINS 336 /* 30 minutes each */
#define SMOOTH_MAX_BINS SMOOTH_WEEK_BINS

struct smooth {
	double alpha, beta, gamma; /* per-sample weights (Holt) */
	double tau_level, tau_trend; /* seconds, with a season (Holt-Winters) */
	double period;     /* seconds; 0 = Holt (no season) */
	unsigned bins;
	double level, trend; /* trend per second */
	double last_t;
	double err_abs;    /* EW mean absolute one-step error */
	double err_n;      /* weight of err_abs so far (bias correction) */
	double resid;      /* last one-step error */
	double first_t;
	double cached_dt, cached_a, cached_b; /* weights for the last gap */
	double season_sd; /* spread of the season profile, at the last period end */
	uint64_t n;
	double season[SMOOTH_MAX_BINS];
	uint32_t visits[SMOOTH_MAX_BINS];
};

void smooth_init(struct smooth *s, double period_seconds);
/* One-step prediction for time t (seconds), before learning it. */
double smooth_predict(const struct smooth *s, double t);
/* Learns (t, v); t older than the newest is ignored for the trend. */
void smooth_add(struct smooth *s, double t, double v);
/* Seconds of data seen. */
double smooth_span(const struct smooth *s);
/* Forecast h seconds after the newest sample, with a 95% half-width;
 * step is the typical sampling interval (seconds). */
void smooth_forecast(const struct smooth *s, double h, double step, double *value,
		     double *half_width);
/* Spread of the season over the one-step error's: above ~2 the season is
 * real (noise alone gives about 0.5). 0 without a season. */
double smooth_strength(const struct smooth *s);
/* Mean absolute one-step error, or INFINITY before enough samples. */
double smooth_error(const struct smooth *s);
