#include "model/measured.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/sql.h"

struct interval {
	double a, b;
	size_t comp;
};

static int cmp_interval(const void *x, const void *y)
{
	const struct interval *p = x, *q = y;

	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	return p->b < q->b ? -1 : p->b > q->b;
}

void measured_report_free(struct measured_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_components; i++)
		free(r->components[i].name);
	free(r->components);
	free(r);
}

static bool has_table(sqlite3 *db, const char *name)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
			       -1, &s, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	return sqlite3_step(s) == SQLITE_ROW;
}

/* The start of the agent's record: its first event or incident. */
static int first_record(sqlite3 *db, usec_t *ret)
{
	static const char *const queries[] = {
		"SELECT min(t_us) FROM events",
		"SELECT min(started_us) FROM incidents",
	};
	sqlite3_int64 first = INT64_MAX;

	for (size_t i = 0; i < 2; i++) {
		_cleanup_stmt_ sqlite3_stmt *s = NULL;
		int rc;

		if (i == 0 && !has_table(db, "events"))
			continue;
		rc = sqlite3_prepare_v2(db, queries[i], -1, &s, NULL);
		if (rc != SQLITE_OK)
			return sql_error(rc);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_INTEGER &&
		    sqlite3_column_int64(s, 0) < first)
			first = sqlite3_column_int64(s, 0);
		else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return sql_error(rc);
	}
	*ret = first == INT64_MAX || first < 0 ? 0 : (usec_t)first;
	return 0;
}

static int add_component(struct measured_report *r, size_t *cap, const char *name, bool known,
			 size_t *ret)
{
	for (size_t i = 0; i < r->n_components; i++)
		if (strcmp(r->components[i].name, name) == 0) {
			*ret = i;
			return 0;
		}
	if (r->n_components == *cap) {
		size_t n = *cap ? *cap * 2 : 16;
		struct measured_component *v = realloc(r->components, n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->components = v;
		*cap = n;
	}
	r->components[r->n_components] = (struct measured_component){ .in_topology = known };
	if (!(r->components[r->n_components].name = strdup(name)))
		return -ENOMEM;
	*ret = r->n_components++;
	return 0;
}

/* Merges sorted intervals of one component or of the service: returns the
 * outages and adds the downtime. */
static uint64_t merge(const struct interval *v, size_t n, double *ret_down)
{
	uint64_t outages = 0;
	double end = -INFINITY, down = 0;

	for (size_t i = 0; i < n; i++) {
		if (v[i].a > end) {
			outages++;
			down += v[i].b - v[i].a;
			end = v[i].b;
		} else if (v[i].b > end) {
			down += v[i].b - end;
			end = v[i].b;
		}
	}
	*ret_down = down;
	return outages;
}

int measured_read_db(sqlite3 *db, usec_t since, usec_t now, const struct topology_plan *t,
		     struct measured_report **ret)
{
	_cleanup_(measured_report_freep) struct measured_report *r = calloc(1, sizeof(*r));
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	_cleanup_free_ struct interval *v = NULL;
	_cleanup_free_ bool *required = NULL;
	size_t n = 0, vcap = 0, cap = 0, k;
	int rc;

	if (!r)
		return -ENOMEM;
	if (!has_table(db, "incidents"))
		return -BCDR_ERR_NOT_FOUND;
	if (since == 0) {
		rc = first_record(db, &since);
		if (rc < 0)
			return rc;
		if (since == 0 || since > now)
			since = now;
	}
	r->from = since;
	r->to = now;
	r->observed_s = (double)(now - since) / USEC_PER_SEC;
	for (size_t i = 0; t && i < t->n_components; i++) {
		rc = add_component(r, &cap, t->components[i].name, true, &k);
		if (rc < 0)
			return rc;
	}
	rc = sqlite3_prepare_v2(db, "SELECT component, started_us, ended_us FROM incidents"
				" WHERE component IS NOT NULL AND component != ''"
				" AND (severity IS NULL OR severity != 'warning')"
				" AND started_us < ?2 AND (ended_us IS NULL OR ended_us > ?1)"
				" LIMIT ?3", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sql_error(rc);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)since);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)now);
	sqlite3_bind_int64(s, 3, MEASURED_MAX_INCIDENTS + 1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 0);
		sqlite3_int64 a = sqlite3_column_int64(s, 1), b;
		bool open = sqlite3_column_type(s, 2) == SQLITE_NULL;

		if (n >= MEASURED_MAX_INCIDENTS)
			return -BCDR_ERR_TOO_BIG;
		if (!name || strlen(name) > 1024)
			continue;
		b = open ? (sqlite3_int64)now : sqlite3_column_int64(s, 2);
		if (a < (sqlite3_int64)since)
			a = (sqlite3_int64)since;
		if (b > (sqlite3_int64)now)
			b = (sqlite3_int64)now;
		if (b < a)
			continue; /* ended before it started: a clock step, ignored */
		rc = add_component(r, &cap, name, false, &k);
		if (rc < 0)
			return rc;
		if (n == vcap) {
			size_t c = vcap ? vcap * 2 : 256;
			struct interval *nv = realloc(v, c * sizeof(*nv));

			if (!nv)
				return -ENOMEM;
			v = nv;
			vcap = c;
		}
		v[n++] = (struct interval){ (double)(a - (sqlite3_int64)since) / USEC_PER_SEC,
					    (double)(b - (sqlite3_int64)since) / USEC_PER_SEC, k };
		r->components[k].incidents++;
		r->components[k].open |= open;
	}
	if (rc != SQLITE_DONE)
		return sql_error(rc);
	if (n)
		qsort(v, n, sizeof(*v), cmp_interval);
	/* Per component: its intervals in order (stable filter of sorted v). */
	{
		_cleanup_free_ struct interval *mine = calloc(n + 1, sizeof(*mine));

		if (!mine)
			return -ENOMEM;
		for (size_t c = 0; c < r->n_components; c++) {
			struct measured_component *mc = &r->components[c];
			size_t m = 0;

			for (size_t i = 0; i < n; i++)
				if (v[i].comp == c)
					mine[m++] = v[i];
			mc->outages = merge(mine, m, &mc->downtime_s);
			mc->availability = r->observed_s > 0 ? 1 - mc->downtime_s / r->observed_s : 1;
			mc->mtbf_s = mc->outages ? (r->observed_s - mc->downtime_s) / mc->outages : NAN;
			mc->mttr_s = mc->outages ? mc->downtime_s / mc->outages : NAN;
			mc->mtbf_lower_s = mc->outages ? NAN : r->observed_s / 3;
		}
		/* The service: the union over the components it needs. */
		if (t) {
			size_t m = 0;

			required = calloc(t->n_components + 1, sizeof(bool));
			if (!required)
				return -ENOMEM;
			topology_required(t, required);
			for (size_t i = 0; i < n; i++)
				if (v[i].comp < t->n_components && required[v[i].comp])
					mine[m++] = v[i];
			r->service_outages = merge(mine, m, &r->service_downtime_s);
			r->service_availability = r->observed_s > 0 ?
				1 - r->service_downtime_s / r->observed_s : 1;
		}
	}
	*ret = TAKE_PTR(r);
	return 0;
}

int measured_read(const char *path, usec_t since, usec_t now, const struct topology_plan *t,
		  struct measured_report **ret, char **ret_error)
{
	sqlite3 *db = NULL;
	int rc, r;

	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		r = sql_error(rc);
		if (asprintf(ret_error, "cannot open '%s': %s (has the agent run? 'bcdr agent' "
			     "creates it)", path, db ? sqlite3_errmsg(db) : err_str(r)) < 0)
			*ret_error = NULL;
		sqlite3_close(db);
		return r;
	}
	sqlite3_busy_timeout(db, 5000);
	r = measured_read_db(db, since, now, t, ret);
	if (r == -BCDR_ERR_NOT_FOUND) {
		if (asprintf(ret_error, "'%s' has no incidents table: not the agent's state "
			     "database", path) < 0)
			*ret_error = NULL;
	} else if (r < 0) {
		if (asprintf(ret_error, "cannot read the incidents in '%s': %s", path,
			     r == -EIO || r == -BCDR_ERR_CORRUPT ? sqlite3_errmsg(db) : err_str(r)) < 0)
			*ret_error = NULL;
	}
	sqlite3_close(db);
	return r;
}

void measured_params(const struct topology_plan *t, const struct measured_report *m,
		     struct unit_params *params)
{
	for (size_t i = 0; i < t->n_components; i++) {
		const struct measured_component *mc = NULL;

		unit_params_from(&t->components[i], &params[i]);
		for (size_t j = 0; j < m->n_components; j++)
			if (m->components[j].in_topology &&
			    strcmp(m->components[j].name, t->components[i].name) == 0)
				mc = &m->components[j];
		if (!mc || mc->outages == 0 || !(mc->mttr_s > 0) || !(mc->mtbf_s > 0))
			continue;
		/* Incidents are component-level: the component, as a whole, was
		 * down; it becomes a single unit with what was seen. */
		params[i] = (struct unit_params){
			.mtbf_s = mc->mtbf_s, .mttr_s = mc->mttr_s, .replicas = 1, .needs = 1,
			.crews = 1, .redundancy = REDUNDANCY_ACTIVE, .switch_success = 1,
		};
	}
}


int model_availability_status(const struct topology_plan *t, double target, sqlite3 *db,
			      usec_t now, struct availability_status *ret)
{
	_cleanup_(model_report_freep) struct model_report *m = NULL;
	_cleanup_(measured_report_freep) struct measured_report *mr = NULL;
	struct availability_status st = { target > 0 ? target : NAN, NAN, NAN, NAN };
	int r;

	if (t && !t->cycle) {
		r = model_evaluate(t, &m);
		if (r < 0)
			return r;
		st.modelled = m->service.availability;
	}
	if (t && db) {
		r = measured_read_db(db, 0, now, t, &mr);
		if (r < 0 && r != -BCDR_ERR_NOT_FOUND)
			return r;
		if (r >= 0 && mr->observed_s > 0) {
			st.measured = mr->service_availability;
			if (target > 0)
				st.budget_left_s = (1 - target) * mr->observed_s - mr->service_downtime_s;
		}
	}
	*ret = st;
	return 0;
}
