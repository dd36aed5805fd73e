#include <math.h>
#include <string.h>

#include "predict/anomaly.h"

/* One parameter set for every stream. */
#define WARMUP 150          /* samples learned before any score */
#define ALPHA_SLOW 0.002    /* long-term level and spread */
#define ALPHA_FAST 0.1      /* short-term level and spread */
#define WINSOR 6.0          /* clip learning input at this many spreads */
#define PEAK_DECAY 0.9995   /* per sample: the peak halves in ~1400 samples */
#define MARGIN 1.15         /* beat the recent peak by this much to score 0.5 */
#define STEEPNESS 4.0

void anomaly_init(struct anomaly *a)
{
	memset(a, 0, sizeof(*a));
	smooth_init(&a->day, 86400);
	smooth_init(&a->week, 7 * 86400);
}

static double floor_scale(double s, double level)
{
	double eps = 1e-9 * fmax(fabs(level), 1e-6);

	return s > eps ? s : eps;
}

static double clip(double x, double c, double s)
{
	if (x > c + WINSOR * s)
		return c + WINSOR * s;
	if (x < c - WINSOR * s)
		return c - WINSOR * s;
	return x;
}

double anomaly_update(struct anomaly *a, double t, double v)
{
	static const double floors[ANOMALY_FEATURES] = { 3, 3, 3, 0.7, 3 };
	double s_slow, z[ANOMALY_FEATURES] = { 0 }, score = 0, err_level;
	struct smooth *season = NULL;

	if (a->n == 0) {
		a->c_slow = a->c_fast = a->prev = v;
		smooth_add(&a->day, t, v);
		smooth_add(&a->week, t, v);
		a->n = 1;
		return 0;
	}
	s_slow = floor_scale(a->s_slow, a->c_slow);
	z[ANOMALY_LEVEL] = (v - a->c_slow) / s_slow;
	z[ANOMALY_SPIKE] = (v - a->prev) / floor_scale(a->d_scale, a->c_slow);

	/* seasonal model: used when it explains the series better than a flat level */
	err_level = a->s_slow;
	if (smooth_span(&a->week) > 1.5 * 7 * 86400 &&
	    smooth_error(&a->week) < 0.7 * smooth_error(&a->day))
		season = &a->week;
	else if (smooth_span(&a->day) > 1.5 * 86400)
		season = &a->day;
	if (season && smooth_error(season) < 0.6 * err_level)
		z[ANOMALY_SEASON] = (v - smooth_predict(season, t)) /
				    floor_scale(1.2533 * smooth_error(season), a->c_slow);

	/* learn */
	double x = a->n > 20 ? clip(v, a->c_slow, s_slow) : v;
	double alpha = a->n < 1.0 / ALPHA_SLOW ? 1.0 / (a->n + 1) : ALPHA_SLOW;

	a->s_slow += alpha * (fabs(x - a->c_slow) - a->s_slow);
	a->c_slow += alpha * (x - a->c_slow);
	a->s_fast += ALPHA_FAST * (fabs(v - a->c_fast) - a->s_fast);
	a->c_fast += ALPHA_FAST * (v - a->c_fast);
	a->d_scale += alpha * (fmin(fabs(v - a->prev), 6 * floor_scale(a->d_scale, a->c_slow) + 0) -
			       a->d_scale);
	a->prev = v;
	smooth_add(&a->day, t, v);
	smooth_add(&a->week, t, v);

	z[ANOMALY_SHIFT] = (a->c_fast - a->c_slow) / s_slow * 2.0;
	z[ANOMALY_VARIANCE] = log(floor_scale(a->s_fast, a->c_slow) / s_slow);

	for (int f = 0; f < ANOMALY_FEATURES; f++) {
		double mag = fabs(z[f]);
		double e, s;

		if (!isfinite(mag))
			mag = mag != mag ? 0 : 1e300;
		a->z[f] = z[f];
		e = mag / fmax(MARGIN * a->peak[f], floors[f]);
		s = 1 / (1 + pow(e, -STEEPNESS));
		if (a->n >= WARMUP && s > score)
			score = s;
		a->peak[f] = fmax(a->peak[f] * PEAK_DECAY, mag);
	}
	a->n++;
	return score >= 0 && score <= 1 ? score : 0;
}
