#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"

#include "predict/trend.h"

void trend_init(struct trend *tr, double window_seconds)
{
	memset(tr, 0, sizeof(*tr));
	tr->window = window_seconds;
	tr->bucket_width = window_seconds / TREND_POINTS;
}

void trend_add(struct trend *tr, double t, double v)
{
	unsigned newest;

	if (!tr->have_origin) {
		tr->origin = t;
		tr->have_origin = 1;
	}
	t -= tr->origin;
	if (tr->count > 0) {
		newest = (tr->head + TREND_POINTS - 1) % TREND_POINTS;
		if (t < tr->last_t)
			return; /* out of order: the line is fitted on time order */
		tr->last_t = t;
		/* Same bucket as the newest point: running mean of time and value. */
		if (t - tr->t[newest] < tr->bucket_width && tr->n_in_bucket[newest] < UINT32_MAX) {
			uint32_t k = ++tr->n_in_bucket[newest];

			tr->t[newest] += (t - tr->t[newest]) / k;
			tr->v[newest] += (v - tr->v[newest]) / k;
			return;
		}
	}
	tr->last_t = t;
	tr->t[tr->head] = t;
	tr->v[tr->head] = v;
	tr->n_in_bucket[tr->head] = 1;
	tr->head = (tr->head + 1) % TREND_POINTS;
	if (tr->count < TREND_POINTS)
		tr->count++;
}

static void swap(double *a, double *b)
{
	double x = *a;

	*a = *b;
	*b = x;
}

/* k-th smallest of a[0..n) (quickselect, reorders a). */
static double select_kth(double *a, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		double pivot = a[lo + (hi - lo) / 2];
		size_t i = lo, j = hi;

		while (i <= j) {
			while (a[i] < pivot)
				i++;
			while (a[j] > pivot)
				j--;
			if (i <= j) {
				swap(&a[i], &a[j]);
				i++;
				if (j == 0)
					break;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return a[k];
	}
	return a[k];
}

static double median(double *a, size_t n)
{
	double hi = select_kth(a, n, n / 2);

	if (n % 2)
		return hi;
	return (select_kth(a, n / 2, n / 2 - 1) + hi) / 2;
}

int trend_fit(const struct trend *tr, struct trend_fit *ret)
{
	double ts[TREND_POINTS], vs[TREND_POINTS], res[TREND_POINTS];
	_cleanup_free_ double *slopes = NULL;
	size_t n = 0, m = 0, distinct = 0;
	double newest_t, slope, c, z, mad;
	long lo_rank, hi_rank;

	if (tr->count == 0)
		return -ENODATA;
	newest_t = tr->t[(tr->head + TREND_POINTS - 1) % TREND_POINTS];
	/* Oldest first; only points inside the window (at least 8 if there are). */
	for (unsigned i = 0; i < tr->count; i++) {
		unsigned idx = (tr->head + TREND_POINTS - tr->count + i) % TREND_POINTS;
		unsigned left = tr->count - i;

		if (newest_t - tr->t[idx] > tr->window && left > 8)
			continue;
		ts[n] = tr->t[idx];
		vs[n] = tr->v[idx];
		if (n == 0 || ts[n] != ts[n - 1])
			distinct++;
		n++;
	}
	if (distinct < 3)
		return -ENODATA;
	slopes = malloc(sizeof(double) * n * (n - 1) / 2);
	if (!slopes)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (ts[j] > ts[i])
				slopes[m++] = (vs[j] - vs[i]) / (ts[j] - ts[i]);
	/* Sen's interval: ranks (m -+ z*sqrt(var S)) / 2, var S of Kendall's S. */
	z = 1.96 * sqrt((double)n * (n - 1) * (2.0 * n + 5) / 18);
	lo_rank = lround((m - z) / 2);
	hi_rank = lround((m + z) / 2);
	if (lo_rank < 0)
		lo_rank = 0;
	if (hi_rank > (long)m - 1)
		hi_rank = (long)m - 1;
	ret->slope_lo = select_kth(slopes, m, (size_t)lo_rank);
	ret->slope_hi = select_kth(slopes, m, (size_t)hi_rank);
	slope = median(slopes, m);
	for (size_t i = 0; i < n; i++)
		res[i] = vs[i] - slope * ts[i];
	c = median(res, n);
	for (size_t i = 0; i < n; i++)
		res[i] = fabs(vs[i] - slope * ts[i] - c);
	mad = median(res, n);
	ret->slope = slope;
	ret->level = c + slope * tr->last_t;
	ret->spread = 1.96 * 1.4826 * mad;
	ret->last_t = tr->last_t + tr->origin;
	ret->points = (unsigned)n;
	return 0;
}
