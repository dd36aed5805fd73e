#include "model/simulate.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sf_gamma.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "model/availability.h"

#define YEAR SECONDS_PER_YEAR
#define MONTH SECONDS_PER_30_DAYS

enum replica_state { R_WORKING, R_STANDBY, R_SUSPENDED, R_WAITING, R_REPAIR };

struct replica {
	int state;
	double t; /* working: when it fails; repair: when done; suspended: life left */
};

/* A distribution with the mean kept: parameters precomputed. */
struct dist {
	int kind;
	double mean, a, b;
};

struct unit {
	const struct topo_component *c;
	struct unit_params p;
	struct dist life, repair;
	struct replica *r;
	int *queue; /* failed replicas waiting for a crew, FIFO ring */
	int qhead, qlen, crews_busy;
	bool stuck, down;
	double next_t;
	int next_i;
	size_t heap_pos;
	double down_since, year_down, sum, sumsq;
	uint64_t failures, outages;
};

struct sim {
	const struct sim_options *o;
	gsl_rng *rng;
	struct unit *units;
	size_t n_units;
	struct unit **heap;
	size_t heap_n;
	double now, horizon;
	size_t down_count; /* required components down */
	double service_down_since, total_down;
	uint64_t year, month;
	double year_down, month_down;
	double *years; /* downtime per year */
	uint64_t months_missed, years_missed, outages, lifecycles;
};

static void dist_init(struct dist *d, int kind, double mean, double shape, bool exponential)
{
	d->kind = exponential ? DIST_EXPONENTIAL : kind;
	d->mean = mean;
	switch (d->kind) {
	case DIST_WEIBULL:
		d->b = shape;
		d->a = mean / gsl_sf_gamma(1 + 1 / shape);
		break;
	case DIST_LOGNORMAL:
		d->b = shape;
		d->a = log(mean) - shape * shape / 2;
		break;
	default:
		break;
	}
}

static double dist_draw(const struct dist *d, gsl_rng *rng)
{
	switch (d->kind) {
	case DIST_WEIBULL:
		return gsl_ran_weibull(rng, d->a, d->b);
	case DIST_LOGNORMAL:
		return gsl_ran_lognormal(rng, d->a, d->b);
	default:
		return gsl_ran_exponential(rng, d->mean);
	}
}

/* The min-heap of units by their next event. */
static void heap_swap(struct sim *s, size_t i, size_t j)
{
	struct unit *u = s->heap[i];

	s->heap[i] = s->heap[j];
	s->heap[j] = u;
	s->heap[i]->heap_pos = i;
	s->heap[j]->heap_pos = j;
}

static void heap_fix(struct sim *s, size_t i)
{
	while (i > 0 && s->heap[(i - 1) / 2]->next_t > s->heap[i]->next_t) {
		heap_swap(s, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < s->heap_n && s->heap[l]->next_t < s->heap[m]->next_t)
			m = l;
		if (r < s->heap_n && s->heap[r]->next_t < s->heap[m]->next_t)
			m = r;
		if (m == i)
			return;
		heap_swap(s, i, m);
		i = m;
	}
}

static void unit_next(struct unit *u)
{
	u->next_t = INFINITY;
	u->next_i = -1;
	for (int i = 0; i < u->p.replicas; i++) {
		const struct replica *r = &u->r[i];

		if ((r->state == R_WORKING || r->state == R_REPAIR) && r->t < u->next_t) {
			u->next_t = r->t;
			u->next_i = i;
		}
	}
}

static int count_state(const struct unit *u, int state)
{
	int n = 0;

	for (int i = 0; i < u->p.replicas; i++)
		n += u->r[i].state == state;
	return n;
}

static void start_repairs(struct sim *s, struct unit *u)
{
	while (u->crews_busy < u->p.crews && u->qlen > 0) {
		int i = u->queue[u->qhead];

		u->qhead = (u->qhead + 1) % u->p.replicas;
		u->qlen--;
		u->r[i].state = R_REPAIR;
		u->r[i].t = s->now + dist_draw(&u->repair, s->rng);
		u->crews_busy++;
	}
}

/* Cold standby: nothing runs while the component is down. */
static void suspend_all(struct sim *s, struct unit *u)
{
	for (int i = 0; i < u->p.replicas; i++)
		if (u->r[i].state == R_WORKING) {
			u->r[i].state = R_SUSPENDED;
			u->r[i].t -= s->now;
		}
}

/* Cold standby after a repair: back in service if enough replicas are. */
static void rebalance(struct sim *s, struct unit *u)
{
	int in_service;

	if (u->stuck || count_state(u, R_WORKING) + count_state(u, R_STANDBY) +
				count_state(u, R_SUSPENDED) < u->p.needs)
		return;
	for (int i = 0; i < u->p.replicas; i++)
		if (u->r[i].state == R_SUSPENDED) {
			u->r[i].state = R_WORKING;
			u->r[i].t += s->now;
		}
	in_service = count_state(u, R_WORKING);
	for (int i = 0; i < u->p.replicas && in_service < u->p.needs; i++)
		if (u->r[i].state == R_STANDBY) {
			u->r[i].state = R_WORKING;
			u->r[i].t = s->now + dist_draw(&u->life, s->rng);
			in_service++;
		}
}

static bool unit_up(const struct unit *u)
{
	return !u->stuck && count_state(u, R_WORKING) >= u->p.needs;
}

static void unit_event(struct sim *s, struct unit *u)
{
	struct replica *r = &u->r[u->next_i];
	bool cold = u->p.redundancy == REDUNDANCY_COLD;

	if (r->state == R_WORKING) {
		u->failures++;
		s->lifecycles++;
		r->state = R_WAITING;
		u->queue[(u->qhead + u->qlen) % u->p.replicas] = u->next_i;
		u->qlen++;
		start_repairs(s, u);
		if (cold) {
			int standby = -1;

			for (int i = 0; i < u->p.replicas && standby < 0; i++)
				if (u->r[i].state == R_STANDBY)
					standby = i;
			if (standby >= 0 && gsl_rng_uniform(s->rng) < u->p.switch_success) {
				u->r[standby].state = R_WORKING;
				u->r[standby].t = s->now + dist_draw(&u->life, s->rng);
			} else {
				u->stuck = standby >= 0;
				suspend_all(s, u);
			}
		}
	} else {
		u->crews_busy--;
		if (cold) {
			r->state = R_STANDBY;
			u->stuck = false;
		} else {
			r->state = R_WORKING;
			r->t = s->now + dist_draw(&u->life, s->rng);
		}
		start_repairs(s, u);
		if (cold)
			rebalance(s, u);
	}
	unit_next(u);
}

/* Moves the clock to t, adding downtime to the year and month windows and
 * closing the windows passed. */
static void advance(struct sim *s, double t)
{
	double year_limit = (1 - s->o->target) * YEAR, month_limit = (1 - s->o->target) * MONTH;

	while (s->now < t) {
		double year_end = (double)(s->year + 1) * YEAR;
		double month_end = (double)(s->month + 1) * MONTH;
		double e = fmin(t, fmin(year_end, month_end));

		if (s->down_count > 0) {
			s->year_down += e - s->now;
			s->month_down += e - s->now;
			s->total_down += e - s->now;
		}
		s->now = e;
		if (e == month_end) {
			if (s->o->target > 0 && s->month_down > month_limit)
				s->months_missed++;
			s->month++;
			s->month_down = 0;
		}
		if (e == year_end) {
			s->years[s->year] = s->year_down;
			if (s->o->target > 0 && s->year_down > year_limit)
				s->years_missed++;
			s->year_down = 0;
			for (size_t i = 0; i < s->n_units; i++) {
				struct unit *u = &s->units[i];

				if (u->down) {
					u->year_down += e - u->down_since;
					u->down_since = e;
				}
				u->sum += u->year_down / YEAR;
				u->sumsq += (u->year_down / YEAR) * (u->year_down / YEAR);
				u->year_down = 0;
			}
			s->year++;
			if (s->o->progress)
				s->o->progress(s->o->userdata, (double)s->year, s->o->years);
		}
	}
}

void wilson_interval(uint64_t x, uint64_t n, double *ret_low, double *ret_high)
{
	double z = 1.959963984540054, p, denom, centre, half;

	if (n == 0) {
		*ret_low = 0;
		*ret_high = 1;
		return;
	}
	p = (double)x / (double)n;
	denom = 1 + z * z / (double)n;
	centre = (p + z * z / (2.0 * (double)n)) / denom;
	half = z * sqrt(p * (1 - p) / (double)n + z * z / (4.0 * (double)n * (double)n)) / denom;
	*ret_low = fmax(0, centre - half);
	*ret_high = fmin(1, centre + half);
}

void sim_result_free(struct sim_result *r)
{
	if (!r)
		return;
	free(r->yearly_downtime_s);
	free(r->components);
	free(r);
}


static void sim_release(struct sim *s)
{
	for (size_t i = 0; s->units && i < s->n_units; i++) {
		free(s->units[i].r);
		free(s->units[i].queue);
	}
	free(s->units);
	free(s->heap);
	free(s->years);
	if (s->rng)
		gsl_rng_free(s->rng);
}

static int sim_setup(struct sim *s, const struct topology_plan *t)
{
	_cleanup_free_ bool *required = calloc(t->n_components + 1, sizeof(bool));
	double events = 0;

	if (!required)
		return -ENOMEM;
	topology_required(t, required);
	s->units = calloc(t->n_components + 1, sizeof(*s->units));
	s->heap = calloc(t->n_components + 1, sizeof(*s->heap));
	s->years = calloc((size_t)s->o->years, sizeof(double));
	s->rng = gsl_rng_alloc(gsl_rng_mt19937);
	if (!s->units || !s->heap || !s->years || !s->rng)
		return -ENOMEM;
	gsl_rng_set(s->rng, (unsigned long)s->o->seed);
	for (size_t i = 0; i < t->n_components; i++) {
		const struct topo_component *c = &t->components[i];
		struct unit *u;

		if (!required[i])
			continue;
		u = &s->units[s->n_units++];
		u->c = c;
		unit_params_from(c, &u->p);
		dist_init(&u->life, c->mtbf_dist, u->p.mtbf_s, c->mtbf_shape, s->o->exponential);
		dist_init(&u->repair, c->mttr_dist, u->p.mttr_s, c->mttr_shape, s->o->exponential);
		events += s->horizon * u->p.replicas / u->p.mtbf_s;
		u->r = calloc((size_t)u->p.replicas, sizeof(*u->r));
		u->queue = calloc((size_t)u->p.replicas, sizeof(int));
		if (!u->r || !u->queue)
			return -ENOMEM;
		for (int j = 0; j < u->p.replicas; j++) {
			bool standby = u->p.redundancy == REDUNDANCY_COLD && j >= u->p.needs;

			u->r[j].state = standby ? R_STANDBY : R_WORKING;
			u->r[j].t = standby ? 0 : dist_draw(&u->life, s->rng);
		}
		unit_next(u);
		u->heap_pos = s->heap_n;
		s->heap[s->heap_n++] = u;
		heap_fix(s, u->heap_pos);
	}
	if (events > SIM_MAX_EVENTS)
		return -BCDR_ERR_TOO_BIG;
	return 0;
}

static void sim_loop(struct sim *s)
{
	while (s->heap_n > 0 && s->heap[0]->next_t < s->horizon) {
		struct unit *u = s->heap[0];
		bool was_down = u->down;

		advance(s, u->next_t);
		unit_event(s, u);
		u->down = !unit_up(u);
		if (u->down != was_down) {
			if (u->down) {
				u->down_since = s->now;
				u->outages++;
				if (s->down_count++ == 0) {
					s->outages++;
					s->service_down_since = s->now;
				}
			} else {
				u->year_down += s->now - u->down_since;
				s->down_count--;
			}
		}
		heap_fix(s, 0);
	}
	advance(s, s->horizon);
}

static void sim_stats(struct sim *s, struct sim_result *res)
{
	size_t n = (size_t)s->o->years;
	double mean, sd, half, tq;
	_cleanup_free_ double *sorted = malloc(n * sizeof(double));

	mean = gsl_stats_mean(s->years, 1, n);
	sd = gsl_stats_sd_m(s->years, 1, n, mean);
	tq = gsl_cdf_tdist_Pinv(0.975, (double)(n - 1));
	half = tq * sd / sqrt((double)n);
	res->availability = 1 - s->total_down / s->horizon;
	res->ci_low = fmax(0, 1 - (mean + half) / YEAR);
	res->ci_high = fmin(1, 1 - (mean - half) / YEAR);
	res->downtime_mean_s = mean;
	res->downtime_sd_s = sd;
	if (sorted) {
		memcpy(sorted, s->years, n * sizeof(double));
		gsl_sort(sorted, 1, n);
		res->downtime_p50_s = gsl_stats_quantile_from_sorted_data(sorted, 1, n, 0.5);
		res->downtime_p90_s = gsl_stats_quantile_from_sorted_data(sorted, 1, n, 0.9);
		res->downtime_p99_s = gsl_stats_quantile_from_sorted_data(sorted, 1, n, 0.99);
		res->downtime_max_s = sorted[n - 1];
	}
	res->outages = s->outages;
	res->mtbf_s = s->outages ? (s->horizon - s->total_down) / (double)s->outages : INFINITY;
	res->mttr_s = s->outages ? s->total_down / (double)s->outages : 0;
	res->months = s->month;
	res->months_missed = s->months_missed;
	res->years_missed = s->years_missed;
	if (s->month > 0)
		res->p_miss_month = (double)s->months_missed / (double)s->month;
	res->p_miss_year = (double)s->years_missed / (double)n;
	wilson_interval(s->months_missed, s->month, &res->p_miss_month_low, &res->p_miss_month_high);
	wilson_interval(s->years_missed, n, &res->p_miss_year_low, &res->p_miss_year_high);
	for (size_t i = 0; i < s->n_units; i++) {
		const struct unit *u = &s->units[i];
		struct sim_component *c = &res->components[i];
		double m = u->sum / (double)n;
		double var = fmax(0, (u->sumsq - (double)n * m * m) / (double)(n - 1));

		c->name = u->c->name;
		c->availability = 1 - m;
		c->ci_half = tq * sqrt(var / (double)n);
		c->failures = u->failures;
		c->outages = u->outages;
	}
	res->n_components = s->n_units;
	res->lifecycles = s->lifecycles;
}

int simulate_run(const struct topology_plan *t, const struct sim_options *o,
		 struct sim_result **ret)
{
	_cleanup_(sim_result_freep) struct sim_result *res = NULL;
	struct sim s = { .o = o };
	struct timespec t0, t1;
	int r;

	if (!(o->years >= 2 && o->years <= SIM_MAX_YEARS) || o->years != floor(o->years) ||
	    !(o->target >= 0 && o->target < 1))
		return -EINVAL;
	if (t->cycle)
		return -BCDR_ERR_CONFIG;
	gsl_set_error_handler_off();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	s.horizon = o->years * YEAR;
	r = sim_setup(&s, t);
	if (r < 0) {
		sim_release(&s);
		return r;
	}
	res = calloc(1, sizeof(*res));
	if (res)
		res->components = calloc(s.n_units + 1, sizeof(*res->components));
	if (!res || !res->components) {
		sim_release(&s);
		return -ENOMEM;
	}
	sim_loop(&s);
	sim_stats(&s, res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	res->elapsed_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	res->years = o->years;
	res->seed = o->seed;
	res->n_years = (size_t)o->years;
	res->yearly_downtime_s = TAKE_PTR(s.years);
	sim_release(&s);
	*ret = TAKE_PTR(res);
	return 0;
}
