#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "predict/anomaly.h"
#include "predict/predict.h"
#include "predict/smooth.h"
#include "predict/trend.h"

#define CLAMP_VALUE 1e150

struct predict {
	uint64_t samples;
	usec_t last_t;
	double step; /* typical seconds between samples (EW of gaps) */
	struct trend trend;
	struct smooth holt;
	struct anomaly anomaly; /* its Holt-Winters models serve forecasts too */
};

static const char *const method_names[PREDICT_METHOD_MAX] = {
	[PREDICT_AUTO] = "auto",
	[PREDICT_LINEAR] = "linear",
	[PREDICT_HOLT] = "holt",
	[PREDICT_HOLT_WINTERS] = "holt-winters",
};

const char *predict_method_name(enum predict_method m)
{
	return m < PREDICT_METHOD_MAX ? method_names[m] : "unknown";
}

int predict_method_from_name(const char *name, enum predict_method *ret)
{
	for (int m = 0; m < PREDICT_METHOD_MAX; m++)
		if (strcmp(name, method_names[m]) == 0) {
			*ret = m;
			return 0;
		}
	return -EINVAL;
}

int predict_new(const struct predict_options *opts, struct predict **ret)
{
	struct predict *p = calloc(1, sizeof(*p));
	usec_t window = opts && opts->window ? opts->window : 6 * USEC_PER_HOUR;

	if (!p)
		return -ENOMEM;
	trend_init(&p->trend, (double)window / USEC_PER_SEC);
	smooth_init(&p->holt, 0);
	anomaly_init(&p->anomaly);
	*ret = p;
	return 0;
}

void predict_free(struct predict *p)
{
	free(p);
}

double predict_update(struct predict *p, usec_t t, double value)
{
	double ts = (double)t / USEC_PER_SEC, score;

	if (!isfinite(value))
		return 0;
	if (value > CLAMP_VALUE)
		value = CLAMP_VALUE;
	else if (value < -CLAMP_VALUE)
		value = -CLAMP_VALUE;
	score = anomaly_update(&p->anomaly, ts, value);
	if (p->samples == 0 || t >= p->last_t) {
		if (p->samples > 0) {
			double gap = (double)(t - p->last_t) / USEC_PER_SEC;

			if (gap > 0)
				p->step = p->step > 0 ? 0.9 * p->step + 0.1 * gap : gap;
		}
		trend_add(&p->trend, ts, value);
		smooth_add(&p->holt, ts, value);
		p->last_t = t;
	}
	p->samples++;
	if (!(score >= 0))
		return 0;
	return score > 1 ? 1 : score;
}

size_t predict_state_size(void)
{
	return sizeof(struct predict);
}

uint64_t predict_samples(const struct predict *p)
{
	return p->samples;
}

usec_t predict_last_time(const struct predict *p)
{
	return p->last_t;
}

/* The seasonal model worth using, or NULL: enough data (1.5 seasons), a
 * season profile above the noise, an error not much worse than Holt's
 * (short steps favour Holt), and the smaller one-step error of
 * the two if both qualify. */
static const struct smooth *best_season(const struct predict *p)
{
	const struct smooth *best = NULL;
	const struct smooth *cand[] = { &p->anomaly.day, &p->anomaly.week };

	for (int i = 0; i < 2; i++) {
		const struct smooth *s = cand[i];

		if (smooth_span(s) < 1.5 * s->period || smooth_strength(s) < 1 ||
		    smooth_error(s) > 1.2 * smooth_error(&p->holt))
			continue;
		if (!best || smooth_error(s) < 0.9 * smooth_error(best))
			best = s;
	}
	return best;
}

usec_t predict_season(const struct predict *p)
{
	const struct smooth *s = best_season(p);

	return s ? (usec_t)s->period * USEC_PER_SEC : 0;
}

static int forecast_smooth(const struct predict *p, const struct smooth *s, usec_t horizon,
			   struct predict_forecast *ret)
{
	double value, half;

	if (s->n < 3)
		return -ENODATA;
	smooth_forecast(s, (double)horizon / USEC_PER_SEC, p->step, &value, &half);
	if (!isfinite(value) || !isfinite(half))
		return -ERANGE;
	ret->value = value;
	ret->lower = value - half;
	ret->upper = value + half;
	ret->rate = s->trend;
	return 0;
}

int predict_forecast(const struct predict *p, enum predict_method method, usec_t horizon,
		     struct predict_forecast *ret)
{
	struct predict_forecast f = { .method = method, .at = p->last_t + horizon };
	const struct smooth *season;
	struct trend_fit fit;
	double h = (double)horizon / USEC_PER_SEC;
	int r;

	if (p->samples == 0)
		return -ENODATA;
	if (method == PREDICT_AUTO) {
		season = best_season(p);
		if (season) {
			f.method = PREDICT_HOLT_WINTERS;
			r = forecast_smooth(p, season, horizon, &f);
		} else {
			f.method = PREDICT_LINEAR;
			r = predict_forecast(p, PREDICT_LINEAR, horizon, &f);
			if (r == -ENODATA) {
				f.method = PREDICT_HOLT;
				r = forecast_smooth(p, &p->holt, horizon, &f);
			}
		}
	} else if (method == PREDICT_LINEAR) {
		r = trend_fit(&p->trend, &fit);
		if (r < 0)
			return r;
		f.value = fit.level + fit.slope * h;
		/* the slope interval widens with the horizon, the residuals do not */
		f.lower = fit.level + fmin(fit.slope_lo * h, fit.slope * h) - fit.spread;
		f.upper = fit.level + fmax(fit.slope_hi * h, fit.slope * h) + fit.spread;
		f.rate = fit.slope;
		if (!isfinite(f.value) || !isfinite(f.lower) || !isfinite(f.upper))
			return -ERANGE;
	} else if (method == PREDICT_HOLT) {
		r = forecast_smooth(p, &p->holt, horizon, &f);
	} else if (method == PREDICT_HOLT_WINTERS) {
		season = best_season(p);
		if (!season) {
			/* no season found: the longer one that has data, if any */
			if (smooth_span(&p->anomaly.week) >= 1.5 * 7 * 86400)
				season = &p->anomaly.week;
			else if (smooth_span(&p->anomaly.day) >= 1.5 * 86400)
				season = &p->anomaly.day;
			else
				return -ENODATA;
		}
		r = forecast_smooth(p, season, horizon, &f);
	} else {
		return -EINVAL;
	}
	if (r < 0)
		return r;
	*ret = f;
	return 0;
}

static usec_t seconds_to_usec(double s)
{
	if (!(s >= 0))
		return 0;
	if (s >= (double)UINT64_MAX / USEC_PER_SEC / 2)
		return UINT64_MAX;
	return (usec_t)(s * USEC_PER_SEC);
}

int predict_time_to(const struct predict *p, double threshold, bool above, usec_t max_horizon,
		    struct predict_eta *ret)
{
	struct predict_eta e = { .eta = UINT64_MAX, .latest = UINT64_MAX };
	struct trend_fit fit;
	double dir = above ? 1 : -1, gap, fast, slow, slope, band;
	int r;

	if (!isfinite(threshold))
		return -EINVAL;
	r = trend_fit(&p->trend, &fit);
	if (r < 0)
		return r;
	e.level = fit.level;
	e.rate = fit.slope;
	/* distance still to go, positive when the threshold lies ahead */
	gap = dir * (threshold - fit.level);
	slope = dir * fit.slope;
	fast = fmax(dir * fit.slope_lo, dir * fit.slope_hi);
	slow = fmin(dir * fit.slope_lo, dir * fit.slope_hi);
	band = fit.spread;
	if (gap <= 0) {
		e.crosses = true;
		e.eta = e.earliest = e.latest = 0;
	} else {
		e.earliest = gap - band <= 0 ? 0 : fast > 0 ? seconds_to_usec((gap - band) / fast)
							     : UINT64_MAX;
		e.latest = slow > 0 ? seconds_to_usec((gap + band) / slow) : UINT64_MAX;
		if (slope > 0) {
			e.eta = seconds_to_usec(gap / slope);
			e.crosses = e.eta <= max_horizon;
		}
		if (e.earliest > e.eta)
			e.earliest = e.eta;
		if (e.latest < e.eta)
			e.latest = e.eta;
	}
	*ret = e;
	return 0;
}
