/* Robust linear trend (Theil-Sen) over a sliding time window, like
 * Prometheus' predict_linear but resistant to outliers: the slope is the
 * median of the slopes between every pair of points, with Sen's
 * rank-based 95% confidence interval. Samples are averaged into at most
 * TREND_POINTS buckets of window/TREND_POINTS each, so memory is fixed. */
#pragma once

#include <stdint.h>

#define TREND_POINTS 256

struct trend {
	double bucket_width; /* seconds */
	double window;       /* seconds */
	double origin;       /* seconds of the first sample; times are kept relative */
	/* ring of bucket means */
	double t[TREND_POINTS], v[TREND_POINTS];
	uint32_t n_in_bucket[TREND_POINTS];
	unsigned head, count; /* newest at head - 1 */
	double last_t;
	int have_origin;
};

struct trend_fit {
	double slope, slope_lo, slope_hi; /* per second; 95% interval */
	double level;                     /* fitted value at the newest time */
	double spread;                    /* 95% half-width of the residuals */
	double last_t;                    /* seconds since the epoch */
	unsigned points;
};

void trend_init(struct trend *tr, double window_seconds);
/* t in seconds; t older than the newest bucket is ignored (returns 0). */
void trend_add(struct trend *tr, double t, double v);
/* -ENODATA with fewer than 3 distinct times; -ENOMEM. */
int trend_fit(const struct trend *tr, struct trend_fit *ret);
