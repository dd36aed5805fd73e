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

double predict_anomaly_raw(const struct predict *p)
{
	double r = p->anomaly.raw;

	return r >= 0 && r <= 1 ? r : 0;
}

bool predict_anomaly_rule(unsigned *runs, double score, double raw, double above,
			  unsigned for_runs)
{
	if (score >= above)
		*runs = *runs ? *runs + (*runs < UINT32_MAX) : 1;
	else if (*runs && raw >= above)
		*runs += *runs < UINT32_MAX;
	else
		*runs = 0;
	return *runs >= (for_runs ? for_runs : 1);
}

/* ---- durable state ---- */

struct saved_header {
	char magic[8];
	uint32_t version; /* PREDICT_SAVED_VERSION */
	uint32_t size;    /* sizeof(struct predict): another layout is stale */
	uint64_t samples; /* readable without loading */
	uint64_t checksum; /* FNV-1a 64 of the image */
};

/* 2: five peak memories (1: three) */
#define PREDICT_SAVED_VERSION 2

static uint64_t fnv1a(const void *buf, size_t len)
{
	const unsigned char *b = buf;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

size_t predict_saved_size(void)
{
	return sizeof(struct saved_header) + sizeof(struct predict);
}

int predict_save(const struct predict *p, void *buf, size_t cap)
{
	struct saved_header h = { .version = PREDICT_SAVED_VERSION,
				  .size = sizeof(struct predict), .samples = p->samples };

	if (cap < predict_saved_size())
		return -ENOBUFS;
	memcpy(h.magic, PREDICT_SAVED_MAGIC, sizeof(h.magic));
	h.checksum = fnv1a(p, sizeof(*p));
	memcpy(buf, &h, sizeof(h));
	memcpy((char *)buf + sizeof(h), p, sizeof(*p));
	return 0;
}

static int header_of(const void *buf, size_t len, struct saved_header *ret)
{
	if (len < sizeof(*ret))
		return -EBADMSG;
	memcpy(ret, buf, sizeof(*ret));
	if (memcmp(ret->magic, PREDICT_SAVED_MAGIC, sizeof(ret->magic)) != 0)
		return -EBADMSG;
	return 0;
}

int predict_saved_samples(const void *buf, size_t len, uint64_t *ret)
{
	struct saved_header h;
	int r = header_of(buf, len, &h);

	if (r < 0)
		return r;
	*ret = h.samples;
	return 0;
}

static bool all_finite(const double *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(d[i]))
			return false;
	return true;
}

#define FINITE(...) all_finite((const double[]){ __VA_ARGS__ },                           \
			       sizeof((const double[]){ __VA_ARGS__ }) / sizeof(double))

/* A smooth model is the one init made (same period and weights), with
 * finite numbers. */
static bool smooth_ok(const struct smooth *s, const struct smooth *fresh)
{
	return s->alpha == fresh->alpha && s->beta == fresh->beta && s->gamma == fresh->gamma &&
	       s->tau_level == fresh->tau_level && s->tau_trend == fresh->tau_trend &&
	       s->period == fresh->period && s->bins == fresh->bins &&
	       FINITE(s->level, s->trend, s->last_t, s->err_abs, s->err_n, s->resid, s->first_t,
		      s->cached_dt, s->cached_a, s->cached_b, s->season_sd) &&
	       all_finite(s->season, SMOOTH_MAX_BINS);
}

/* Each decay a factor in [0, 1]: a larger one would grow a peak without
 * bound and blind its feature. */
static bool decays_ok(const double *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!(d[i] >= 0 && d[i] <= 1))
			return false;
	return true;
}

static bool anomaly_ok(const struct anomaly *a)
{
	return FINITE(a->c_slow, a->s_slow, a->c_fast, a->s_fast, a->c_drift, a->r_fast,
		      a->r_last, a->recent, a->raw, a->decay_halflife) &&
	       decays_ok(a->decay, ANOMALY_MEMBERS) &&
	       a->s_slow >= 0 && a->s_fast >= 0 && a->decay_members <= ANOMALY_MEMBERS &&
	       all_finite(&a->peak[0][0], ANOMALY_MEMBERS * ANOMALY_FEATURES) &&
	       all_finite(&a->pending[0][0], ANOMALY_PEAK_LAG * ANOMALY_FEATURES) &&
	       all_finite(a->z, ANOMALY_FEATURES);
}

int predict_load(struct predict *p, const void *buf, size_t len)
{
	struct saved_header h;
	struct predict *img;
	int r;

	r = header_of(buf, len, &h);
	if (r < 0)
		return r;
	if (h.version != PREDICT_SAVED_VERSION || h.size != sizeof(struct predict))
		return -ESTALE;
	if (len != predict_saved_size())
		return -EBADMSG;
	img = malloc(sizeof(*img));
	if (!img)
		return -ENOMEM;
	memcpy(img, (const char *)buf + sizeof(h), sizeof(*img));
	r = 0;
	if (fnv1a(img, sizeof(*img)) != h.checksum || img->samples != h.samples)
		r = -EBADMSG;
	else if (img->trend.window != p->trend.window ||
		 img->trend.bucket_width != p->trend.bucket_width)
		r = -ESTALE;
	else if (!smooth_ok(&img->holt, &p->holt) || !smooth_ok(&img->anomaly.day, &p->anomaly.day) ||
		 !smooth_ok(&img->anomaly.week, &p->anomaly.week) || !anomaly_ok(&img->anomaly) ||
		 img->trend.head >= TREND_POINTS || img->trend.count > TREND_POINTS ||
		 !FINITE(img->trend.origin, img->trend.last_t, img->step) ||
		 !all_finite(img->trend.t, TREND_POINTS) || !all_finite(img->trend.v, TREND_POINTS))
		r = -EBADMSG;
	if (r == 0)
		*p = *img;
	free(img);
	return r;
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
