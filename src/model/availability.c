#include "model/availability.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gsl/gsl_sf_gamma.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "model/ctmc.h"
#include "model/switchover.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(gsl_matrix *, gsl_matrix_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(gsl_vector *, gsl_vector_free)

void unit_params_from(const struct topo_component *c, struct unit_params *ret)
{
	struct unit_params p = {
		.mttr_s = (double)c->mttr / USEC_PER_SEC,
		.replicas = (int)c->replicas,
		.needs = (int)c->needs,
		.crews = (int)c->repair_crews,
		.redundancy = c->redundancy,
		.switch_success = c->switch_success,
		.switchover_s = (double)c->switchover / USEC_PER_SEC,
	};

	if (c->availability > 0)
		p.mtbf_s = p.mttr_s * c->availability / (1 - c->availability);
	else
		p.mtbf_s = (double)c->mtbf / USEC_PER_SEC;
	*ret = p;
}

static int check_params(const struct unit_params *p)
{
	if (!(p->mtbf_s > 0) || !(p->mttr_s > 0) || !isfinite(p->mtbf_s) || !isfinite(p->mttr_s))
		return -EINVAL;
	if (p->replicas < 1 || p->replicas > TOPOLOGY_MAX_REPLICAS + 1 || p->needs < 1 ||
	    p->needs > p->replicas || p->crews < 1 || p->crews > p->replicas)
		return -EINVAL;
	if (!(p->switch_success >= 0 && p->switch_success <= 1))
		return -EINVAL;
	return 0;
}

static void finish(struct unit_result *r)
{
	r->availability = 1 - r->unavailability;
	if (r->failure_rate > 0) {
		r->mtbf_s = r->availability / r->failure_rate;
		r->mttr_s = r->unavailability / r->failure_rate;
	} else {
		r->mtbf_s = INFINITY;
		r->mttr_s = 0;
	}
}

/* k of n with a crew per replica: replicas are independent, each up with
 * a = mu / (lambda + mu); the number down is binomial. */
static void solve_independent(const struct unit_params *p, struct unit_result *ret)
{
	int n = p->replicas, k = p->needs;
	double lambda = 1 / p->mtbf_s, mu = 1 / p->mttr_s;
	double a = mu / (lambda + mu), q = lambda / (lambda + mu), down = 0, boundary = 0;

	for (int j = n - k + 1; j <= n; j++)
		down += gsl_sf_choose((unsigned)n, (unsigned)j) * pow(a, n - j) * pow(q, j);
	/* The component goes down from n - k replicas down, when one of the
	 * k working ones fails. */
	boundary = gsl_sf_choose((unsigned)n, (unsigned)(n - k)) * pow(a, k) * pow(q, n - k);
	*ret = (struct unit_result){
		.unavailability = down,
		.failure_rate = boundary * k * lambda,
		.method = METHOD_CLOSED_FORM,
	};
	finish(ret);
}

/* States: (j failed, ok) for j = 0..n, then (j failed, stuck after a failed
 * switch) for j = 1..n-k (cold standby with switch_success < 1 only). */
struct chain_layout {
	int n, k, stuck_states;
};

static size_t state_ok(int j)
{
	return (size_t)j;
}

static size_t state_stuck(const struct chain_layout *l, int j)
{
	return (size_t)(l->n + 1 + (j - 1));
}

static bool state_up(const struct chain_layout *l, size_t s)
{
	return s <= (size_t)l->n && l->n - (int)s >= l->k;
}

int unit_solve_markov(const struct unit_params *p, struct unit_result *ret)
{
	struct chain_layout l = { .n = p->replicas, .k = p->needs };
	double lambda, mu, down = 0, rate = 0;
	bool cold = p->redundancy == REDUNDANCY_COLD;
	size_t size;
	int r;

	r = check_params(p);
	if (r < 0)
		return r;
	lambda = 1 / p->mtbf_s;
	mu = 1 / p->mttr_s;
	l.stuck_states = cold && p->switch_success < 1 ? l.n - l.k : 0;
	size = (size_t)(l.n + 1 + l.stuck_states);

	_cleanup_(gsl_matrix_freep) gsl_matrix *Q = gsl_matrix_calloc(size, size);
	_cleanup_(gsl_vector_freep) gsl_vector *pi = gsl_vector_alloc(size);

	if (!Q || !pi)
		return -ENOMEM;
	for (int j = 0; j <= l.n; j++) {
		int working = l.n - j;
		double repair = (j < p->crews ? j : p->crews) * mu;

		if (j > 0)
			*gsl_matrix_ptr(Q, state_ok(j), state_ok(j - 1)) += repair;
		if (j < l.n && !cold) {
			/* Active: every working replica fails, up or not. */
			*gsl_matrix_ptr(Q, state_ok(j), state_ok(j + 1)) += working * lambda;
		} else if (j < l.n && working >= l.k) {
			/* Cold: only the k in service run and fail; a standby takes
			 * over if there is one, with switch_success. */
			double f = l.k * lambda;

			if (working - 1 >= l.k && l.stuck_states) {
				*gsl_matrix_ptr(Q, state_ok(j), state_ok(j + 1)) += f * p->switch_success;
				*gsl_matrix_ptr(Q, state_ok(j), state_stuck(&l, j + 1)) +=
					f * (1 - p->switch_success);
			} else {
				*gsl_matrix_ptr(Q, state_ok(j), state_ok(j + 1)) += f;
			}
		}
	}
	/* Stuck: down, nothing runs; the next repair brings the component back. */
	for (int j = 1; j <= l.stuck_states; j++)
		*gsl_matrix_ptr(Q, state_stuck(&l, j), state_ok(j - 1)) +=
			(j < p->crews ? j : p->crews) * mu;
	ctmc_fill_diagonal(Q);
	r = ctmc_steady_state(Q, pi);
	if (r < 0)
		return r;
	for (size_t s = 0; s < size; s++) {
		if (state_up(&l, s)) {
			for (size_t t = 0; t < size; t++)
				if (t != s && !state_up(&l, t))
					rate += gsl_vector_get(pi, s) * gsl_matrix_get(Q, s, t);
		} else {
			down += gsl_vector_get(pi, s);
		}
	}
	*ret = (struct unit_result){
		.unavailability = down,
		.failure_rate = rate,
		.method = METHOD_MARKOV,
		.states = size,
	};
	finish(ret);
	return 0;
}

int unit_solve(const struct unit_params *p, struct unit_result *ret)
{
	int r = check_params(p);

	if (r < 0)
		return r;
	/* One replica, or active replicas each with its own crew: independent. */
	if (p->replicas == 1 || (p->redundancy == REDUNDANCY_ACTIVE && p->crews >= p->replicas)) {
		solve_independent(p, ret);
		return 0;
	}
	return unit_solve_markov(p, ret);
}

void series_combine(const struct unit_result *units, size_t n, struct series_result *ret)
{
	double log_a = 0, rate = 0;
	struct series_result s = { 0 };

	for (size_t i = 0; i < n; i++)
		log_a += log1p(-units[i].unavailability);
	s.availability = exp(log_a);
	s.unavailability = -expm1(log_a);
	/* Independent components: the service goes down when one does while
	 * the others are up. */
	for (size_t i = 0; i < n; i++)
		if (units[i].availability > 0)
			rate += units[i].failure_rate * s.availability / units[i].availability;
	s.failure_rate = rate;
	if (rate > 0) {
		s.mtbf_s = s.availability / rate;
		s.mttr_s = s.unavailability / rate;
	} else {
		s.mtbf_s = INFINITY;
	}
	*ret = s;
}

double nines(double unavailability)
{
	return unavailability > 0 ? -log10(unavailability) : INFINITY;
}

void model_report_free(struct model_report *r)
{
	if (!r)
		return;
	free(r->components);
	free(r);
}


/* A component in the report: its chain, then what its switch-overs cost. */
static int solve(const struct unit_params *p, struct unit_result *ret)
{
	int r = unit_solve(p, ret);

	if (r >= 0)
		switchover_apply(p, ret);
	return r;
}

/* log of the service availability with component i replaced by u. */
static double service_log_with(const struct model_report *m, size_t i, const struct unit_result *u)
{
	double log_a = 0;

	for (size_t j = 0; j < m->n_components; j++)
		if (m->components[j].required)
			log_a += log1p(-(j == i ? u : &m->components[j].result)->unavailability);
	return log_a;
}

int model_evaluate_with(const struct topology_plan *t, const struct unit_params *params,
			struct model_report **ret)
{
	_cleanup_(model_report_freep) struct model_report *m = calloc(1, sizeof(*m));
	_cleanup_free_ bool *required = calloc(t->n_components + 1, sizeof(bool));
	_cleanup_free_ struct unit_result *units = calloc(t->n_components + 1, sizeof(*units));
	size_t n_units = 0;
	struct timespec t0, t1;
	int r;

	if (!m || !required || !units)
		return -ENOMEM;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (t->cycle)
		return -BCDR_ERR_CONFIG;
	m->components = calloc(t->n_components + 1, sizeof(*m->components));
	if (!m->components)
		return -ENOMEM;
	m->n_components = t->n_components;
	topology_required(t, required);
	for (size_t i = 0; i < t->n_components; i++) {
		struct component_report *c = &m->components[i];

		c->c = &t->components[i];
		c->required = required[i];
		c->params = params[i];
		r = solve(&c->params, &c->result);
		if (r < 0)
			return r;
		if (c->required)
			units[n_units++] = c->result;
	}
	series_combine(units, n_units, &m->service);
	for (size_t i = 0; i < t->n_components; i++) {
		struct component_report *c = &m->components[i];
		struct unit_params p;
		struct unit_result u;
		double base = m->service.unavailability * SECONDS_PER_YEAR, log_a;

		if (!c->required)
			continue;
		c->birnbaum = c->result.availability > 0 ?
			m->service.availability / c->result.availability : 0;
		p = c->params;
		p.mttr_s /= 2;
		r = solve(&p, &u);
		if (r < 0)
			return r;
		log_a = service_log_with(m, i, &u);
		c->halve_mttr_availability = exp(log_a);
		c->halve_mttr_saved_s = base + expm1(log_a) * SECONDS_PER_YEAR;
		p = c->params;
		p.replicas++;
		if (!c->c->crews_given)
			p.crews = p.replicas;
		c->add_replica_possible = p.replicas <= TOPOLOGY_MAX_REPLICAS;
		if (c->add_replica_possible) {
			r = solve(&p, &u);
			if (r < 0)
				return r;
			log_a = service_log_with(m, i, &u);
			c->add_replica_availability = exp(log_a);
			c->add_replica_saved_s = base + expm1(log_a) * SECONDS_PER_YEAR;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	m->elapsed_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	*ret = TAKE_PTR(m);
	return 0;
}

int model_evaluate(const struct topology_plan *t, struct model_report **ret)
{
	_cleanup_free_ struct unit_params *params = calloc(t->n_components + 1, sizeof(*params));

	if (!params)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_components; i++)
		unit_params_from(&t->components[i], &params[i]);
	return model_evaluate_with(t, params, ret);
}
