/* The incident history read back: overlapping incidents of one component
 * merged, open ones running to now, the window clipped, warnings and
 * unknown components kept apart; and the model recomputed with them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/err.h"
#include "model/measured.h"
#include "plan/plan.h"

#define H ((usec_t)3600 * 1000000)
#define T0 ((usec_t)1700000000 * 1000000)

static const char schema[] =
	"CREATE TABLE events(id INTEGER PRIMARY KEY, t_us INTEGER NOT NULL, kind TEXT NOT NULL,"
	" check_name TEXT, message TEXT, data TEXT);"
	"CREATE TABLE incidents(id INTEGER PRIMARY KEY, check_name TEXT NOT NULL, component TEXT,"
	" severity TEXT, started_us INTEGER NOT NULL, ended_us INTEGER);";

static void incident(sqlite3 *db, const char *check, const char *component, const char *sev,
		     usec_t start, usec_t end)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "INSERT INTO incidents(check_name, component, severity, "
		 "started_us, ended_us) VALUES('%s', %s%s%s, '%s', %llu, %s)", check,
		 component ? "'" : "", component ? component : "NULL", component ? "'" : "", sev,
		 (unsigned long long)start, end ? "?" : "NULL");
	if (end) {
		sqlite3_stmt *s;

		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
		sqlite3_bind_int64(s, 1, (sqlite3_int64)end);
		assert_int_equal(sqlite3_step(s), SQLITE_DONE);
		sqlite3_finalize(s);
	} else {
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	}
}

static const char plan_text[] =
	"topology:\n  service: shop\n  requires: [web]\n  components:\n"
	"    - { name: web, mtbf: 1000h, mttr: 1h, depends_on: [db] }\n"
	"    - { name: db, mtbf: 2000h, mttr: 2h, replicas: 2 }\n"
	"    - { name: idle, mtbf: 10h, mttr: 1h }\n";

static void test_read(void **state)
{
	(void)state;
	struct plan *plan = NULL;
	char *error = NULL;
	sqlite3 *db = NULL;
	struct measured_report *m = NULL;
	usec_t now = T0 + 100 * H;

	assert_int_equal(plan_parse("m.yaml", plan_text, strlen(plan_text), &plan, &error), 0);
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, schema, NULL, NULL, NULL), SQLITE_OK);
	/* The agent started at T0. */
	assert_int_equal(sqlite3_exec(db, "INSERT INTO events(t_us, kind) VALUES(1700000000000000,"
				      " 'agent')", NULL, NULL, NULL), SQLITE_OK);
	/* web: 10-12h and 11-13h by two checks (one outage of 3h), 50-51h. */
	incident(db, "http", "web", "critical", T0 + 10 * H, T0 + 12 * H);
	incident(db, "tcp", "web", "critical", T0 + 11 * H, T0 + 13 * H);
	incident(db, "http", "web", "critical", T0 + 50 * H, T0 + 51 * H);
	/* db: open since 98h (2h so far); a warning is not an outage. */
	incident(db, "pg", "db", "critical", T0 + 98 * H, 0);
	incident(db, "pg-lag", "db", "warning", T0 + 20 * H, T0 + 30 * H);
	/* Unknown component, and no component at all. */
	incident(db, "x", "mystery", "critical", T0 + 5 * H, T0 + 6 * H);
	incident(db, "y", NULL, "critical", T0 + 5 * H, T0 + 6 * H);

	assert_int_equal(measured_read_db(db, 0, now, plan->topology, &m), 0);
	assert_int_equal(m->from, T0);
	assert_true(fabs(m->observed_s - 100 * 3600.0) < 1e-6);
	assert_int_equal(m->n_components, 4);
	assert_string_equal(m->components[0].name, "web");
	assert_int_equal(m->components[0].incidents, 3);
	assert_int_equal(m->components[0].outages, 2);
	assert_true(fabs(m->components[0].downtime_s - 4 * 3600.0) < 1e-6);
	assert_true(fabs(m->components[0].mttr_s - 2 * 3600.0) < 1e-6);
	assert_true(fabs(m->components[0].mtbf_s - 48 * 3600.0) < 1e-6);
	assert_true(fabs(m->components[0].availability - 0.96) < 1e-12);
	assert_int_equal(m->components[1].outages, 1);
	assert_true(m->components[1].open);
	assert_true(fabs(m->components[1].downtime_s - 2 * 3600.0) < 1e-6);
	assert_int_equal(m->components[2].outages, 0);
	assert_true(fabs(m->components[2].mtbf_lower_s - 100 * 3600.0 / 3) < 1e-6);
	assert_string_equal(m->components[3].name, "mystery");
	assert_false(m->components[3].in_topology);
	/* The service needs web and db: 3 outages, 6h down. */
	assert_int_equal(m->service_outages, 3);
	assert_true(fabs(m->service_availability - 0.94) < 1e-12);

	/* The model with measured inputs: web and db become single units with
	 * what was seen; idle keeps its plan. */
	struct unit_params params[3];
	struct model_report *r = NULL;

	measured_params(plan->topology, m, params);
	assert_true(fabs(params[0].mtbf_s - 48 * 3600.0) < 1e-6 && params[0].replicas == 1);
	assert_true(fabs(params[1].mttr_s - 2 * 3600.0) < 1e-6);
	assert_true(fabs(params[2].mtbf_s - 10 * 3600.0) < 1e-6);
	assert_int_equal(model_evaluate_with(plan->topology, params, &r), 0);
	assert_true(fabs(r->service.availability - 0.96 * 0.98) < 1e-9);
	model_report_free(r);
	measured_report_free(m);

	/* The agent's status figures: the observed 94% over 100h, 99% target. */
	struct availability_status st;

	assert_int_equal(model_availability_status(plan->topology, 0.99, db, now, &st), 0);
	assert_true(fabs(st.measured - 0.94) < 1e-12);
	assert_true(fabs(st.budget_left_s - (0.01 * 100 - 6) * 3600) < 1e-6);
	assert_true(st.modelled > 0.998 && st.modelled < 1);
	assert_int_equal(model_availability_status(NULL, 0, db, now, &st), 0);
	assert_true(isnan(st.modelled) && isnan(st.measured) && isnan(st.target));

	/* --since 10h: only the open db outage, clipped to the window. */
	assert_int_equal(measured_read_db(db, now - 10 * H, now, plan->topology, &m), 0);
	assert_int_equal(m->components[0].outages, 0);
	assert_int_equal(m->components[1].outages, 1);
	assert_true(fabs(m->service_availability - 0.8) < 1e-12);
	measured_report_free(m);
	sqlite3_close(db);
	plan_free(plan);
}

static void test_errors(void **state)
{
	(void)state;
	struct measured_report *m = NULL;
	char *error = NULL;
	char path[] = "/tmp/bcdr-measured-XXXXXX";
	int fd = mkstemp(path);
	sqlite3 *db;

	assert_true(fd >= 0);
	close(fd);
	/* An empty file is an empty database, without the table. */
	assert_int_equal(measured_read(path, 0, T0, NULL, &m, &error), -BCDR_ERR_NOT_FOUND);
	assert_non_null(strstr(error, "has no incidents table"));
	free(error);
	error = NULL;
	/* Garbage. */
	FILE *f = fopen(path, "w");

	fputs("this is not a database, just text, long enough to look like a header", f);
	fclose(f);
	assert_true(measured_read(path, 0, T0, NULL, &m, &error) < 0);
	assert_non_null(strstr(error, path));
	free(error);
	error = NULL;
	unlink(path);
	assert_true(measured_read(path, 0, T0, NULL, &m, &error) < 0);
	assert_non_null(strstr(error, "cannot open"));
	free(error);
	/* No incidents at all: everything up, no MTBF. */
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, schema, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(measured_read_db(db, T0 - H, T0, NULL, &m), 0);
	assert_int_equal(m->n_components, 0);
	measured_report_free(m);
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
