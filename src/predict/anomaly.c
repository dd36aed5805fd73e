#include <math.h>
#include <string.h>

#include "predict/anomaly.h"

/* One parameter set for every stream (tuned once on the NAB subset, see
 * docs/predict.md; no per-stream knobs). */
#define WARMUP 150         /* samples learned before any score */
#define PEAK_START 75      /* peaks start once the scales have settled */
#define ALPHA_SLOW 0.001   /* long-term level and spread (~1000 samples) */
#define ALPHA_FAST 0.05    /* short-term level and spread (~20 samples) */
#define ALPHA_DRIFT 0.01   /* mid-term level (~100 samples) */
#define WINSOR 6.0         /* clip what is learned at this many spreads */
#define SUPPRESS_DECAY 0.995 /* half-life 140 samples: how long a score shadows */
#define SUPPRESS_FACTOR 0.5
#define PEAK_GROWTH 2.0    /* a peak grows at most this much per sample... */
#define PEAK_GROWTH_AFTER 300 /* ...once the stream is this old */
#define SEASON_GAIN 0.6    /* the season must cut the error to this share */

/* Below these |z| nothing is anomalous, however quiet the past was. */
static const double z_floor[ANOMALY_FEATURES] = {
	[ANOMALY_LEVEL] = 3,
	[ANOMALY_SHIFT] = 3,
	[ANOMALY_VARIANCE] = 0.7, /* log of a spread ratio: about 2x */
	[ANOMALY_SEASON] = 3,
	[ANOMALY_DRIFT] = 3,
};

/* Chosen by bench/nab/lofo on the NAB subset (the grid's best at the
 * agent's threshold 0.5, standard + low-FP): three of the four
 * leave-one-folder-out folds chose these, the fourth one memory; every
 * fold the floor 2 and the half-life 1400. See docs/predict.md. */
const struct anomaly_params anomaly_default_params = {
	.margin = 1.15,
	.peak_halflife = 1400,
	.quiet = 120,
	.resid_weight = 0.7,
	.members = 5,
	.floor = 2,
};

void anomaly_init(struct anomaly *a)
{
	memset(a, 0, sizeof(*a));
	smooth_init(&a->day, 86400);
	smooth_init(&a->week, 7 * 86400);
}

/* fmax() without its NaN rules, which make it a library call in the
 * per-sample loops; the values here are finite. */
static inline double max2(double x, double y)
{
	return x > y ? x : y;
}

/* A spread never below a tiny share of the level: a constant series has
 * spread 0, and any change on it is then large but finite. */
static double floor_scale(double s, double level)
{
	double eps = 1e-9 * fmax(fabs(level), 1e-6);

	return s > eps ? s : eps;
}

static double clip(double x, double c, double s)
{
	return fmin(fmax(x, c - WINSOR * s), c + WINSOR * s);
}

/* The seasonal model whose residual is a feature: weekly if it beats the
 * daily one, once 1.5 periods are seen; and only if it explains the
 * series clearly better than a flat level does. */
static const struct smooth *season_model(const struct anomaly *a)
{
	const struct smooth *s = NULL;

	if (smooth_span(&a->week) > 1.5 * 7 * 86400 &&
	    smooth_error(&a->week) < smooth_error(&a->day))
		s = &a->week;
	else if (smooth_span(&a->day) > 1.5 * 86400)
		s = &a->day;
	if (s && smooth_error(s) < SEASON_GAIN * a->s_slow)
		return s;
	return NULL;
}

/* What a peak learns from |z| = mag: once the stream is old enough, at
 * most PEAK_GROWTH times its bar, so one giant outlier (a z of thousands
 * on a mostly flat series) does not blind the feature for thousands of
 * samples; a run of them still raises the peak quickly. */
static double peak_input(const struct anomaly *a, int m, int f, double mag)
{
	double cap;

	if (a->n <= PEAK_GROWTH_AFTER)
		return mag;
	cap = PEAK_GROWTH * max2(a->peak[m][f], z_floor[f]);
	return mag < cap ? mag : cap;
}

double anomaly_update(struct anomaly *a, double t, double v)
{
	return anomaly_update_with(a, &anomaly_default_params, t, v);
}

double anomaly_update_with(struct anomaly *a, const struct anomaly_params *p, double t,
			   double v)
{
	const double w_resid = p->resid_weight;
	const unsigned members = p->members >= 1 && p->members <= ANOMALY_MEMBERS ? p->members : 1;
	const double *decay = a->decay;
	double z[ANOMALY_FEATURES] = { 0 }, s_slow, x, alpha, score = 0, prev_recent;
	double season_shift = 0;
	const struct smooth *season;

	if (a->decay_halflife != p->peak_halflife || a->decay_members != members) {
		/* half-lives spaced by factors of 2 around h: h (one member),
		 * h/2, h, 2h (three), h/4 .. 4h (five) */
		for (unsigned m = 0; m < members; m++)
			a->decay[m] = exp2(-1 / (p->peak_halflife *
						 exp2((double)m - (members - 1) / 2.0)));
		a->decay_halflife = p->peak_halflife;
		a->decay_members = members;
	}
	if (a->n == 0) {
		a->c_slow = a->c_fast = a->c_drift = v;
		smooth_add(&a->day, t, v);
		smooth_add(&a->week, t, v);
		a->n = 1;
		return 0;
	}

	/* deviations from what was learned before this sample */
	s_slow = floor_scale(a->s_slow, a->c_slow);
	z[ANOMALY_LEVEL] = (v - a->c_slow) / s_slow;
	season = season_model(a);
	if (season) {
		double scale = floor_scale(1.2533 * smooth_error(season), a->c_slow);
		double r = v - smooth_predict(season, t);

		/* a touch of smoothing: two residuals in a row count more than
		 * one noisy sample (scaled back to the noise of one residual,
		 * sqrt((2 - a) / a)) */
		a->r_last += w_resid * (r - a->r_last);
		z[ANOMALY_SEASON] = a->r_last / scale * sqrt((2 - w_resid) / w_resid);
		/* with a season, a shift is one of the residuals: the daily
		 * wave moving the short-term mean is no shift */
		a->r_fast += ALPHA_FAST * (r - a->r_fast);
		season_shift = 2 * a->r_fast / scale;
	} else {
		a->r_fast = a->r_last = 0;
	}

	/* learn: the long-term statistics are a plain mean until 1/ALPHA_SLOW
	 * samples, and see outliers clipped so one spike does not move them */
	x = a->n > 20 ? clip(v, a->c_slow, s_slow) : v;
	alpha = a->n < 1.0 / ALPHA_SLOW ? 1.0 / (double)(a->n + 1) : ALPHA_SLOW;
	a->s_slow += alpha * (fabs(x - a->c_slow) - a->s_slow);
	a->c_slow += alpha * (x - a->c_slow);
	a->s_fast += ALPHA_FAST * (fabs(v - a->c_fast) - a->s_fast);
	a->c_fast += ALPHA_FAST * (v - a->c_fast);
	a->c_drift += ALPHA_DRIFT * (v - a->c_drift);
	smooth_add(&a->day, t, v);
	smooth_add(&a->week, t, v);

	/* the short-term ones include this sample (still no look-ahead) */
	/* a slow drift, without a season: scaled like the shift (an EW mean
	 * of weight a has a noise of sqrt(a / (2 - a)) of the samples': 0.16
	 * for the shift's, 0.07 here, so twice the shift's factor) */
	z[ANOMALY_DRIFT] = season ? 0 : 4 * (a->c_drift - a->c_slow) / s_slow;
	z[ANOMALY_SHIFT] = season ? season_shift : 2 * (a->c_fast - a->c_slow) / s_slow;
	z[ANOMALY_VARIANCE] = log(floor_scale(a->s_fast, a->c_slow) / s_slow);

	for (int f = 0; f < ANOMALY_FEATURES; f++) {
		double mag = fabs(z[f]), s = 0;

		/* a |z| of 1e60 is as anomalous as any: so fourth powers stay finite */
		if (!(mag <= 1e60))
			mag = isnan(mag) ? 0 : 1e60;
		a->z[f] = z[f];
		if (a->n >= WARMUP) {
			double m2 = mag * mag, m4 = m2 * m2;

			/* excess^4 / (1 + excess^4) with excess = mag / bar: one
			 * division per member */
			for (unsigned m = 0; m < members; m++) {
				double bar = max2(p->margin * a->peak[m][f], p->floor * z_floor[f]);
				double b2 = bar * bar, b4 = b2 * b2;

				s += m4 / (m4 + b4);
			}
			s /= members;
			if (s > score)
				score = s;
		}
		if (a->n >= PEAK_START) {
			/* the peak learns each |z| ANOMALY_PEAK_LAG samples late:
			 * an excursion growing over a few samples (a dip deepening
			 * into a failure) is judged against the past before it, not
			 * against its own first samples */
			double *slot = &a->pending[a->n % ANOMALY_PEAK_LAG][f];
			double old = a->n >= PEAK_START + ANOMALY_PEAK_LAG ? *slot : 0;

			for (unsigned m = 0; m < members; m++)
				a->peak[m][f] = max2(a->peak[m][f] * decay[m],
						     peak_input(a, m, f, old));
			*slot = mag;
		}
	}

	/* a strong score shadows the weaker ones that follow it for a while:
	 * one alarm per event, not one per sample of it */
	a->raw = score;
	prev_recent = a->recent;
	a->recent = fmax(a->recent * SUPPRESS_DECAY, score);
	if (score <= prev_recent)
		score *= SUPPRESS_FACTOR;
	/* and an alarm quiets the next few samples whatever their score:
	 * NAB, like an operator, counts the first alarm of an event */
	if (a->n < a->quiet_until)
		score *= SUPPRESS_FACTOR;
	if (score >= 0.5)
		a->quiet_until = a->n + p->quiet;
	a->n++;
	return score >= 0 && score <= 1 ? score : 0;
}
