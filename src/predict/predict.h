/* Per-metric online prediction, the seam the agent uses: feed every sample
 * of a metric with predict_update() and get its anomaly score; ask for a
 * forecast or the time until a threshold is crossed at any moment.
 *
 * Constant memory (well under 64 KiB per metric) and O(1) time per sample;
 * predict_forecast() and predict_time_to() cost O(n^2) in the trend window
 * (at most 256 points), so call them per check run, not per sample. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/timeutil.h"

struct predict;

struct predict_options {
	/* Look-back of the robust linear trend (Theil-Sen); 0 = 6h. */
	usec_t window;
};

enum predict_method {
	PREDICT_AUTO,         /* the model with the smallest recent error */
	PREDICT_LINEAR,       /* Theil-Sen line over the window (predict_linear) */
	PREDICT_HOLT,         /* Holt's level + trend smoothing */
	PREDICT_HOLT_WINTERS, /* Holt-Winters, daily or weekly season */
	PREDICT_METHOD_MAX,
};

/* "auto", "linear", "holt", "holt-winters"; from_name returns -EINVAL. */
const char *predict_method_name(enum predict_method m);
int predict_method_from_name(const char *name, enum predict_method *ret);

/* opts may be NULL for the defaults. */
int predict_new(const struct predict_options *opts, struct predict **ret);
void predict_free(struct predict *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct predict *, predict_free)
#define _cleanup_predict_ _cleanup_(predict_freep)

/* Feeds one sample (t in microseconds since the epoch) and returns its
 * anomaly score in [0, 1], computed before the sample is learned (no
 * look-ahead); 0.5 and above means anomalous. Never NaN. Bad input:
 * a NaN or infinite value is skipped (score 0, nothing learned); values
 * beyond +-1e150 are clamped; a timestamp older than the newest one seen is
 * scored and learned by the anomaly detector but not by the trend models;
 * repeated timestamps count as separate samples. */
double predict_update(struct predict *p, usec_t t, double value);

/* The score's design point: anomalous at and above it, on every stream.
 * bench/nab/lofo scores the agent's rule at it (a check's default
 * `above:`, src/monitor/check.c). */
#define PREDICT_ANOMALY_ABOVE 0.5

/* Bytes of state per metric (constant). */
size_t predict_state_size(void);

/* The last sample's anomaly score before the one-alarm-per-event damping
 * (predict_update() returns the damped one): it stays high while an
 * anomaly lasts, so a rule's `for:` can count its runs. */
double predict_anomaly_raw(const struct predict *p);

/* The anomaly rule of a check (`anomaly: { above: S, for: N }`): an alarm
 * starts when the score reaches above, and counts one run per sample
 * while the raw score stays at or above it; true once N runs are counted.
 * runs is the rule's state (0 at start). */
bool predict_anomaly_rule(unsigned *runs, double score, double raw, double above,
			  unsigned for_runs);

/* Durable state, so an agent restart neither forgets a stream nor starts
 * a new probation: a versioned, checksummed image of the predictor for
 * this build (host byte order; state.db is local). */
#define PREDICT_SAVED_MAGIC "bcdrprd1"
size_t predict_saved_size(void);
/* Writes predict_saved_size() bytes into buf; -ENOBUFS when cap is less. */
int predict_save(const struct predict *p, void *buf, size_t cap);
/* Replaces p's state by a saved image. -EBADMSG for anything malformed
 * (wrong size, magic, version, checksum, a non-finite number, an index
 * out of range) and -ESTALE when it was saved with other options (the
 * trend window) or by a build of another layout; p is then unchanged. */
int predict_load(struct predict *p, const void *buf, size_t len);
/* Samples learned, read from a saved image's header (-EBADMSG if none). */
int predict_saved_samples(const void *buf, size_t len, uint64_t *ret);

/* Samples learned so far (skipped ones not counted), time of the newest. */
uint64_t predict_samples(const struct predict *p);
usec_t predict_last_time(const struct predict *p);
/* The season found in the data (USEC_PER_DAY, USEC_PER_WEEK) or 0. */
usec_t predict_season(const struct predict *p);

struct predict_forecast {
	enum predict_method method; /* the one used (never AUTO) */
	usec_t at;                  /* time forecast: newest sample + horizon */
	double value;               /* point forecast */
	double lower, upper;        /* 95% prediction interval */
	double rate;                /* trend, units per second */
};

/* Forecast horizon after the newest sample. -ENODATA until there are
 * enough samples for the method (linear: 3 distinct times; holt: 3;
 * holt-winters: 1.5 seasons, else -ENODATA for that method and AUTO falls
 * back to the others). */
int predict_forecast(const struct predict *p, enum predict_method method, usec_t horizon,
		     struct predict_forecast *ret);

struct predict_eta {
	bool crosses;       /* eta <= max_horizon */
	usec_t eta;         /* time from the newest sample to the crossing */
	usec_t earliest;    /* 95% interval of the crossing time; */
	usec_t latest;      /* latest = UINT64_MAX when it may never cross */
	double level;       /* current level of the trend line */
	double rate;        /* trend, units per second */
};

/* When does the robust linear trend reach threshold: rise to >= threshold
 * (above) or fall to <= threshold (!above)? Already there: crosses, eta 0.
 * Moving away or flat: !crosses, eta UINT64_MAX. -ENODATA with too few
 * samples. */
int predict_time_to(const struct predict *p, double threshold, bool above, usec_t max_horizon,
		    struct predict_eta *ret);
