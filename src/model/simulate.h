/* Monte Carlo of the plan's topology: every required component's replicas
 * fail and are repaired as discrete events (exponential, Weibull or
 * lognormal lifetimes and repairs, same semantics as the exact models), all
 * components on one clock, so the service's outages are the union of
 * theirs. Years are the batches of the 95% interval (batch means). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "model/topology.h"

#define SIM_MAX_YEARS 1000000.0
/* Refuse runs that would take hours: replica failures over the horizon. */
#define SIM_MAX_EVENTS 2e9

struct sim_options {
	double years;        /* horizon, >= 2 (each year is a batch) */
	uint64_t seed;
	double target;       /* availability target, 0 for none */
	bool exponential;    /* ignore mtbf/mttr distributions: the exact models' inputs */
	/* Called now and then with the years done (may be NULL). */
	void (*progress)(void *userdata, double years_done, double years);
	void *userdata;
};

struct sim_component {
	const char *name;          /* borrowed from the plan */
	double availability;
	double ci_half;            /* half width of its 95% interval */
	uint64_t failures;         /* replica failures */
	uint64_t outages;          /* times the component went down */
};

struct sim_result {
	double years;
	uint64_t seed;
	uint64_t lifecycles;       /* replica failure-and-repair cycles simulated */
	double elapsed_s;
	double availability, ci_low, ci_high; /* 95%, batch means over years */
	uint64_t outages;
	double mtbf_s, mttr_s;     /* observed mean up time and outage */
	/* Yearly downtime (seconds): mean, standard deviation, percentiles. */
	double downtime_mean_s, downtime_sd_s;
	double downtime_p50_s, downtime_p90_s, downtime_p99_s, downtime_max_s;
	double *yearly_downtime_s; /* one per whole year, owned */
	size_t n_years;
	/* Against the target: windows whose downtime exceeded what it allows. */
	uint64_t months, months_missed, years_missed;
	double p_miss_month, p_miss_month_low, p_miss_month_high;
	double p_miss_year, p_miss_year_low, p_miss_year_high;
	struct sim_component *components; /* the required ones, plan order */
	size_t n_components;
};

/* Runs the simulation. -EINVAL for bad options, -BCDR_ERR_CONFIG on a
 * dependency cycle, -BCDR_ERR_TOO_BIG when the run would be too long. */
int simulate_run(const struct topology_plan *t, const struct sim_options *o,
		 struct sim_result **ret);
void sim_result_free(struct sim_result *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct sim_result *, sim_result_free)

/* Wilson score interval of a proportion x/n at 95%. */
void wilson_interval(uint64_t x, uint64_t n, double *ret_low, double *ret_high);
