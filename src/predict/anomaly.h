/* Online anomaly scoring of one metric: O(1) time and memory per sample,
 * no look-ahead. Each sample yields a few standardised deviations
 * (features); each is compared with the largest deviation of the same kind
 * in the recent past but not the last few samples (decaying, lagged
 * peaks of five memory lengths, and a noise floor), so a stream's own
 * normal roughness sets its bar; the score is the strongest feature's
 * excess over its bars (the mean over the five memories), mapped to
 * [0, 1] with 0.5 where it just beats them. See docs/predict.md. */
#pragma once

#include <stdint.h>

#include "predict/smooth.h"

#define ANOMALY_MEMBERS 5 /* at most: peaks of half-lives h/4 .. 4h, the ensemble */
#define ANOMALY_PEAK_LAG 20 /* samples a deviation waits before raising its peak */

enum {
	ANOMALY_LEVEL,    /* value far from the robust long-term level */
	ANOMALY_SHIFT,    /* short-term mean moved away from the long-term one */
	ANOMALY_VARIANCE, /* short-term spread changed */
	ANOMALY_SEASON,   /* far from the daily/weekly profile */
	ANOMALY_DRIFT,    /* slow mean moved away from the long-term one */
	ANOMALY_FEATURES,
};

struct anomaly {
	uint64_t n;
	double c_slow, s_slow; /* long-term level and mean absolute deviation */
	double c_fast, s_fast; /* short-term level and spread */
	double c_drift;        /* mid-term level */
	double r_fast;         /* short-term mean of the seasonal residuals */
	double r_last;         /* very short-term (EW 0.7) one: the season feature */
	struct smooth day, week;       /* Holt-Winters, for the season feature */
	double peak[ANOMALY_MEMBERS][ANOMALY_FEATURES]; /* decaying maxima of each |z| */
	double pending[ANOMALY_PEAK_LAG][ANOMALY_FEATURES]; /* the last |z|, not yet in it */
	double z[ANOMALY_FEATURES];    /* the last deviations, for explanations */
	double recent;                 /* decaying maximum of the scores given */
	double raw;                    /* the last score before the shadow and quiet */
	double decay[ANOMALY_MEMBERS]; /* per-sample decay of each peak, for... */
	double decay_halflife;         /* ...this half-life (0: not computed yet) */
	uint32_t decay_members;        /* ...and this number of members */
	uint64_t quiet_until;          /* n before which scores are halved */
};

/* The detector's few knobs, the same for every stream. anomaly_update()
 * uses anomaly_default_params; the benchmark (bench/nab/tune.c) varies
 * them to choose the defaults by leave-one-folder-out. */
struct anomaly_params {
	double margin;        /* beat the recent peak by this factor for 0.5 */
	double peak_halflife; /* samples: memory of the peaks */
	unsigned quiet;       /* samples after an alarm whose scores are halved */
	double resid_weight;  /* EW weight of the newest seasonal residual */
	unsigned members;     /* 1 to ANOMALY_MEMBERS, odd: the mean over h/2^k .. h*2^k */
	double floor;         /* scales the |z| below which nothing is anomalous */
};

extern const struct anomaly_params anomaly_default_params;

void anomaly_init(struct anomaly *a);
/* v must be finite; t in seconds; returns a score in [0, 1]. */
double anomaly_update(struct anomaly *a, double t, double v);
double anomaly_update_with(struct anomaly *a, const struct anomaly_params *p, double t,
			   double v);
