#include <math.h>
#include <string.h>

#include "predict/smooth.h"

void smooth_init(struct smooth *s, double period_seconds)
{
	memset(s, 0, sizeof(*s));
	s->period = period_seconds;
	if (period_seconds >= 7 * 86400.0)
		s->bins = SMOOTH_WEEK_BINS;
	else if (period_seconds > 0)
		s->bins = SMOOTH_DAY_BINS;
	s->alpha = 0.2;
	s->beta = 0.02;
	s->gamma = 0.3;
	s->cached_dt = -1;
	/* With a season the level must move slowly next to it, else it
	 * follows the wave itself and the season never forms: time constants
	 * in seconds, turned into weights by the gap before each sample. */
	s->tau_level = period_seconds;
	s->tau_trend = period_seconds * 4;
}

/* Weight of a sample arriving dt after the previous one. */
static double weight(double per_sample, double tau, double dt)
{
	if (tau <= 0)
		return per_sample;
	if (dt <= 0)
		return 1 / tau; /* same timestamp: a small step */
	return 1 - exp(-dt / tau);
}

/* Trend contribution h seconds ahead: damped over one period with a
 * season (a wave's slope must not be extrapolated for days). */
static double trend_ahead(const struct smooth *s, double h)
{
	if (s->period <= 0)
		return s->trend * h;
	return s->trend * s->period * -expm1(-h / s->period);
}

static unsigned bin_of(const struct smooth *s, double t)
{
	double phase = fmod(t, s->period);

	if (phase < 0)
		phase += s->period;
	unsigned b = (unsigned)(phase / s->period * s->bins);
	return b < s->bins ? b : s->bins - 1;
}

static double season_at(const struct smooth *s, double t)
{
	if (!s->bins)
		return 0;
	unsigned b = bin_of(s, t);
	return s->visits[b] ? s->season[b] : 0;
}

double smooth_predict(const struct smooth *s, double t)
{
	double dt;

	if (s->n == 0)
		return 0;
	dt = t > s->last_t ? t - s->last_t : 0;
	return s->level + trend_ahead(s, dt) + season_at(s, t);
}

double smooth_span(const struct smooth *s)
{
	return s->n ? s->last_t - s->first_t : 0;
}

/* Once a period: the season's mean goes into the level, else level and
 * season drift apart in opposite directions (the model cannot tell them
 * apart), and the trend with them. */
static void renormalise(struct smooth *s)
{
	double sum = 0;
	unsigned k = 0;

	for (unsigned i = 0; i < s->bins; i++)
		if (s->visits[i]) {
			sum += s->season[i];
			k++;
		}
	if (!k)
		return;
	sum /= k;
	double sq = 0;

	for (unsigned i = 0; i < s->bins; i++)
		if (s->visits[i]) {
			s->season[i] -= sum;
			sq += s->season[i] * s->season[i];
		}
	s->level += sum;
	s->season_sd = sqrt(sq / k);
}

double smooth_strength(const struct smooth *s)
{
	double err = smooth_error(s);

	if (!s->bins || !isfinite(err))
		return 0;
	return s->season_sd / fmax(1.2533 * err, 1e-300);
}

void smooth_add(struct smooth *s, double t, double v)
{
	double pred, dt, prev_level, seas;
	unsigned b = 0;

	if (s->n == 0) {
		s->level = v;
		s->last_t = s->first_t = t;
		s->n = 1;
		return;
	}
	if (t < s->last_t)
		return;
	/* sum-preserving, so before anything reads the season */
	if (s->bins && floor(t / s->period) != floor(s->last_t / s->period))
		renormalise(s);
	pred = smooth_predict(s, t);
	s->resid = v - pred;
	/* error: EW with bias correction so early values are not shrunk to 0 */
	s->err_abs = 0.99 * s->err_abs + 0.01 * fabs(s->resid);
	s->err_n = 0.99 * s->err_n + 0.01;
	dt = t - s->last_t;
	prev_level = s->level;
	seas = 0;
	if (s->bins) {
		b = bin_of(s, t);
		seas = s->visits[b] ? s->season[b] : 0;
	}
	if (dt != s->cached_dt) { /* regular sampling: the exp() once */
		s->cached_dt = dt;
		s->cached_a = weight(s->alpha, s->tau_level, dt);
		s->cached_b = weight(s->beta, s->tau_trend, dt);
	}
	double a = s->cached_a, bt = s->cached_b;

	s->level = a * (v - seas) + (1 - a) * (s->level + trend_ahead(s, dt));
	if (dt > 0)
		s->trend = bt * (s->level - prev_level) / dt + (1 - bt) * s->trend;
	if (s->bins) {
		double g = s->visits[b] ? s->gamma : 1.0;

		/* the first visit of a bin takes the whole deviation: the season
		 * is learned in one period rather than many */
		s->season[b] = g * (v - s->level) + (1 - g) * seas;
		if (s->visits[b] < UINT32_MAX)
			s->visits[b]++;
	}
	s->last_t = t;
	s->n++;
}

double smooth_error(const struct smooth *s)
{
	if (s->n < 3 || s->err_n <= 0)
		return INFINITY;
	return s->err_abs / s->err_n;
}

void smooth_forecast(const struct smooth *s, double h, double step, double *value,
		     double *half_width)
{
	double k, var_factor, sigma, a = s->alpha, b = s->beta;

	if (s->period > 0) {
		/* the per-sample weights of the time constants at this step */
		a = weight(a, s->tau_level, step);
		b = weight(b, s->tau_trend, step);
	}

	*value = s->level + trend_ahead(s, h) + season_at(s, s->last_t + h);
	/* Holt's h-step variance: sigma^2 (1 + sum_{j<k} a^2 (1 + j b)^2) */
	k = step > 0 ? ceil(h / step) : 1;
	if (k < 1)
		k = 1;
	if (k > 1e7)
		k = 1e7;
	var_factor = 1 + a * a * ((k - 1) + b * k * (k - 1) + b * b * (k - 1) * k * (2 * k - 1) / 6);
	sigma = 1.2533 * (s->err_n > 0 ? s->err_abs / s->err_n : 0); /* mean abs -> sd */
	*half_width = 1.96 * sigma * sqrt(var_factor);
}
