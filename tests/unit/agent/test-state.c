#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent/state.h"
#include "lib/err.h"
#include "lib/fs.h"

static char dir[] = "/tmp/bcdr-test-state-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return fs_rm_rf(dir);
}

static void test_events_survive_reopen(void **state)
{
	struct state *st;
	json_t *list, *data = json_pack("{s:i}", "n", 7);
	char sub[512];

	(void)state;
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	assert_int_equal(state_open(sub, &st), 0);
	assert_int_equal(state_event_add(st, 10, "state", "web", "ok -> critical", data, NULL), 0);
	assert_int_equal(state_event_add(st, 20, "agent", NULL, "started", NULL, NULL), 0);
	assert_int_equal(state_event_add(st, 30, "state", "db", "x", NULL, NULL), 0);
	state_close(st);
	json_decref(data);

	assert_int_equal(state_open(sub, &st), 0);
	assert_int_equal(state_events_query(st, 0, NULL, NULL, 100, &list), 0);
	assert_int_equal(json_array_size(list), 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
				 json_array_get(list, 0), "data"), "n")), 7);
	json_decref(list);
	assert_int_equal(state_events_query(st, 0, "state", NULL, 100, &list), 0);
	assert_int_equal(json_array_size(list), 2);
	json_decref(list);
	assert_int_equal(state_events_query(st, 0, NULL, "db", 100, &list), 0);
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
	/* limit keeps the newest, oldest first */
	assert_int_equal(state_events_query(st, 0, NULL, NULL, 2, &list), 0);
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "message")),
			    "started");
	json_decref(list);
	assert_int_equal(state_events_query(st, 25, NULL, NULL, 100, &list), 0);
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
	/* after an id: the oldest past it (a follower misses none), filtered */
	assert_int_equal(state_events_after(st, 1, NULL, NULL, 1, &list), 0);
	assert_int_equal(json_array_size(list), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "id")), 2);
	json_decref(list);
	assert_int_equal(state_events_after(st, 1, "state", NULL, 100, &list), 0);
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "check")),
			    "db");
	json_decref(list);
	assert_int_equal(state_events_after(st, 3, NULL, NULL, 100, &list), 0);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
	state_close(st);
}

static void test_samples_downsampled(void **state)
{
	struct state *st;
	json_t *h;
	usec_t now = 100 * USEC_PER_DAY;
	usec_t old = now - 2 * USEC_PER_DAY; /* older than the raw window */
	char sub[512];

	(void)state;
	snprintf(sub, sizeof(sub), "%s/s", dir);
	assert_int_equal(state_open(sub, &st), 0);
	/* 10 raw samples in one 5-minute bucket, values 0..9 */
	for (int i = 0; i < 10; i++)
		state_sample_add(st, "cpu", old + (usec_t)i * USEC_PER_SEC, true, i, i == 5 ? 2 : 0);
	state_sample_add(st, "cpu", now - USEC_PER_SEC, true, 42, 0);
	state_sample_add(st, "cpu", USEC_PER_DAY, true, 1, 0); /* past retention */
	/* buffered samples are history before the flush */
	assert_int_equal(state_history(st, "cpu", old, 1000, &h), 0);
	assert_int_equal(json_array_size(h), 11);
	json_decref(h);
	assert_int_equal(state_flush(st), 0);
	assert_int_equal(state_maintain(st, now, 30 * USEC_PER_DAY), 0);
	assert_int_equal(state_history(st, "cpu", 0, 1000, &h), 0);
	assert_int_equal(json_array_size(h), 2);
	/* the bucket: mean 4.5, worst state critical */
	assert_true(json_real_value(json_object_get(json_array_get(h, 0), "value")) == 4.5);
	assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "state")),
			    "critical");
	assert_true(json_number_value(json_object_get(json_array_get(h, 1), "value")) == 42);
	json_decref(h);
	state_close(st);
}

static void test_incidents_and_check_state(void **state)
{
	struct state *st;
	struct state_check c = { .status = 2, .since = 5 }, got;
	json_t *list;
	char sub[512];

	(void)state;
	snprintf(sub, sizeof(sub), "%s/i", dir);
	assert_int_equal(state_open(sub, &st), 0);
	assert_int_equal(state_incident_open(st, "web", "frontend", "critical", 100), 0);
	assert_int_equal(state_incident_open(st, "web", "frontend", "critical", 200), 0);
	assert_int_equal(state_incidents_query(st, 0, &list), 0);
	assert_int_equal(json_array_size(list), 1); /* one open incident per check */
	assert_true(json_is_null(json_object_get(json_array_get(list, 0), "ended_at")));
	json_decref(list);
	assert_int_equal(state_incident_close(st, "web", 100 + 3 * USEC_PER_SEC), 0);
	assert_int_equal(state_incidents_query(st, 0, &list), 0);
	assert_true(json_real_value(json_object_get(json_array_get(list, 0), "duration_s")) == 3.0);
	json_decref(list);

	assert_int_equal(state_check_load(st, "web", &got), -BCDR_ERR_NOT_FOUND);
	snprintf(c.message, sizeof(c.message), "down");
	assert_int_equal(state_check_save(st, "web", &c), 0);
	assert_int_equal(state_check_load(st, "web", &got), 0);
	assert_int_equal(got.status, 2);
	assert_string_equal(got.message, "down");
	state_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_survive_reopen),
		cmocka_unit_test(test_samples_downsampled),
		cmocka_unit_test(test_incidents_and_check_state),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
