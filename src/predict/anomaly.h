/* Online anomaly scoring of one metric: O(1) time and memory per sample,
 * no look-ahead. See docs/predict.md for the method. */
#pragma once

#include <stdint.h>

#include "predict/smooth.h"

enum {
	ANOMALY_LEVEL,    /* value far from the robust long-term level */
	ANOMALY_SPIKE,    /* jump from the previous sample */
	ANOMALY_SHIFT,    /* short-term mean moved away from the long-term one */
	ANOMALY_VARIANCE, /* short-term spread changed */
	ANOMALY_SEASON,   /* far from the daily/weekly profile */
	ANOMALY_FEATURES,
};

struct anomaly {
	uint64_t n;
	double c_slow, s_slow; /* robust long-term level and spread */
	double c_fast, s_fast; /* short-term level and spread */
	double prev, d_scale;  /* previous value, typical |difference| */
	double season_scale;
	struct smooth day, week;
	double peak[ANOMALY_FEATURES]; /* decaying maximum of each |z| */
	double z[ANOMALY_FEATURES];    /* last values, for explanations */
};

void anomaly_init(struct anomaly *a);
/* v must be finite; t in seconds; returns a score in [0, 1]. */
double anomaly_update(struct anomaly *a, double t, double v);
