/* What the agent measured: per component, the outages in the incident
 * history of <agent.state_dir>/state.db (table incidents, CONTRACTS.md:
 * checks carry a component label; an incident is an outage, open while
 * ended_us is NULL), read-only; and the availability model recomputed with
 * the observed MTBF and MTTR beside the planned one. */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/timeutil.h"
#include "model/availability.h"
#include "model/topology.h"

/* At most this many incidents are read (a bound on outside data). */
#define MEASURED_MAX_INCIDENTS 10000000

struct measured_component {
	char *name;
	bool in_topology;      /* else an incident names an unknown component */
	uint64_t incidents;    /* rows */
	uint64_t outages;      /* overlapping incidents merged */
	bool open;             /* an outage is going on */
	double downtime_s;
	double availability;   /* 1 - downtime / observed */
	double mtbf_s, mttr_s; /* mean up time between outages, mean outage (NAN without) */
	double mtbf_lower_s;   /* no outage: the 95% lower bound observed / 3 */
};

struct measured_report {
	usec_t from, to;       /* the window observed */
	double observed_s;
	struct measured_component *components; /* topology order, then unknown ones */
	size_t n_components;
	/* The union of the required components' outages. */
	uint64_t service_outages;
	double service_downtime_s, service_availability;
};

/* Reads the incidents of db from since (0: from the first record of the
 * agent, its first event or incident) to now. t may be NULL (then every
 * component named by an incident is listed as unknown). Returns
 * -BCDR_ERR_NOT_FOUND when db has no incidents table. */
int measured_read_db(sqlite3 *db, usec_t since, usec_t now, const struct topology_plan *t,
		     struct measured_report **ret);
/* Opens path read-only and reads it; *ret_error (free() it) says what
 * went wrong. */
int measured_read(const char *path, usec_t since, usec_t now, const struct topology_plan *t,
		  struct measured_report **ret, char **ret_error);
void measured_report_free(struct measured_report *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct measured_report *, measured_report_free)

/* For the agent's /api/v1/status "availability": the modelled availability
 * of the service (NAN without a topology or with a cycle), the measured one
 * over all the agent recorded (NAN without a topology), and the error
 * budget left over that window (NAN without a target). db is the agent's
 * own handle (read only here). */
struct availability_status {
	double target, modelled, measured, budget_left_s;
};
int model_availability_status(const struct topology_plan *t, double target, sqlite3 *db,
			      usec_t now, struct availability_status *ret);

/* The model's inputs with the measured components (outages seen) turned
 * into single units with their observed MTBF and MTTR; the others keep
 * their planned parameters. params has t->n_components entries. */
void measured_params(const struct topology_plan *t, const struct measured_report *m,
		     struct unit_params *params);
