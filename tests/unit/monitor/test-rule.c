/* The rule state machine on hand-made sequences of statuses: `for`,
 * recovery hysteresis (cycles and value margin) and flap detection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/cleanup.h"
#include "monitor/monitor.h"

#define O CHECK_OK
#define W CHECK_WARNING
#define C CHECK_CRITICAL
#define U CHECK_UNKNOWN

static void def_init(struct check_def *def, unsigned for_cycles, unsigned recover)
{
	memset(def, 0, sizeof(*def));
	def->for_cycles = for_cycles;
	def->recover_cycles = recover;
	def->flap_changes = 0; /* off unless a test turns it on */
	def->flap_cycles = 20;
}

/* Feeds raw statuses; checks the confirmed state after each. */
static void run(const struct check_def *def, const enum check_status *raw,
		const enum check_status *want, size_t n)
{
	struct rule_state rs;
	struct rule_transition tr;

	rule_state_init(&rs);
	for (size_t i = 0; i < n; i++) {
		enum check_status before = rs.state;

		rule_update_status(def, &rs, raw[i], 1000 + i, &tr);
		if (rs.state != want[i])
			fail_msg("cycle %zu: raw %s, confirmed %s, expected %s", i,
				 check_status_name(raw[i]), check_status_name(rs.state),
				 check_status_name(want[i]));
		assert_int_equal(tr.changed, before != rs.state);
		assert_int_equal(tr.from, before);
		assert_int_equal(tr.to, rs.state);
		if (tr.changed)
			assert_int_equal(rs.since, 1000 + i);
		assert_int_equal(tr.pending, check_status_rank(raw[i]) > check_status_rank(rs.state));
	}
}

static void test_for_one_is_immediate(void **state)
{
	struct check_def def;
	const enum check_status raw[] = { O, C, O, W, W, O };
	const enum check_status want[] = { O, C, O, W, W, O };

	(void)state;
	def_init(&def, 1, 1);
	run(&def, raw, want, ELEMENTSOF(raw));
}

static void test_for_three(void **state)
{
	struct check_def def;
	/* Two bad cycles are not enough; the third confirms; a good cycle in
	 * between starts the count again. */
	const enum check_status raw[] = { C, C, O, C, C, C, C, O };
	const enum check_status want[] = { O, O, O, O, O, C, C, O };

	(void)state;
	def_init(&def, 3, 1);
	run(&def, raw, want, ELEMENTSOF(raw));
}

static void test_for_per_level(void **state)
{
	struct check_def def;
	/* warning, then critical: after 3 bad cycles the best of them (warning)
	 * is confirmed; critical is confirmed once it has lasted 3 cycles
	 * itself, not 3 more after the warning. */
	const enum check_status raw[] = { W, C, C, C, C };
	const enum check_status want[] = { O, O, W, C, C };

	(void)state;
	def_init(&def, 3, 1);
	run(&def, raw, want, ELEMENTSOF(raw));
}

static void test_unknown_ranks_between(void **state)
{
	struct check_def def;
	const enum check_status raw[] = { U, C, U, W, O };
	const enum check_status want[] = { U, C, U, W, O };

	(void)state;
	def_init(&def, 1, 1);
	run(&def, raw, want, ELEMENTSOF(raw));
	assert_int_equal(check_status_worst(W, U), U);
	assert_int_equal(check_status_worst(C, U), C);
	assert_int_equal(check_status_worst(O, W), W);
}

static void test_recover_cycles(void **state)
{
	struct check_def def;
	/* recover: 3: one or two good cycles do not resolve; warning cycles
	 * count towards leaving critical for warning. */
	const enum check_status raw[] = { C, O, O, C, O, O, O, O };
	const enum check_status want[] = { C, C, C, C, C, C, O, O };
	const enum check_status raw2[] = { C, W, O, O, O };
	const enum check_status want2[] = { C, C, C, W, O };

	(void)state;
	def_init(&def, 1, 3);
	run(&def, raw, want, ELEMENTSOF(raw));
	run(&def, raw2, want2, ELEMENTSOF(raw2));
}

static void test_margin_hysteresis(void **state)
{
	struct check_def def;
	struct rule_state rs;
	struct rule_transition tr;
	struct probe_result res;
	const double values[] = { 79, 81, 77, 74, 81, 96, 92, 89, 80 };
	const enum check_status want[] = { O, W, W, O, W, C, C, W, W };

	(void)state;
	def_init(&def, 1, 1);
	def.warn = (struct check_threshold){ true, 80 };
	def.crit = (struct check_threshold){ true, 95 };
	def.recover_margin = 5;
	rule_state_init(&rs);
	for (size_t i = 0; i < ELEMENTSOF(values); i++) {
		memset(&res, 0, sizeof(res));
		res.has_value = true;
		res.value = values[i];
		rule_update(&def, &rs, &res, i + 1, &tr);
		if (rs.state != want[i])
			fail_msg("value %g: %s, expected %s", values[i], check_status_name(rs.state),
				 check_status_name(want[i]));
	}
	/* Without a confirmed state the margin does not apply. */
	assert_int_equal(check_threshold_status(&def, 77, O), O);
	assert_int_equal(check_threshold_status(&def, 77, W), W);
	assert_int_equal(check_threshold_status(&def, 95, O), W); /* strictly above */
}

static void test_below_thresholds(void **state)
{
	struct check_def def;

	(void)state;
	def_init(&def, 1, 1);
	def.below = true;
	def.warn = (struct check_threshold){ true, 30 };
	def.crit = (struct check_threshold){ true, 7 };
	def.recover_margin = 2;
	assert_int_equal(check_threshold_status(&def, 60, O), O);
	assert_int_equal(check_threshold_status(&def, 29.5, O), W);
	assert_int_equal(check_threshold_status(&def, 6, O), C);
	assert_int_equal(check_threshold_status(&def, 8, C), C); /* 8 < 7 + 2 */
	assert_int_equal(check_threshold_status(&def, 31, W), W);
	assert_int_equal(check_threshold_status(&def, 32.5, W), O);
}

static void test_probe_failure_wins(void **state)
{
	struct check_def def;
	struct rule_state rs;
	struct rule_transition tr;
	struct probe_result res = { 0 };

	(void)state;
	def_init(&def, 1, 1);
	def.warn = (struct check_threshold){ true, 1 };
	def.on_change = W;
	rule_state_init(&rs);
	res.probe_status = C;
	rule_update(&def, &rs, &res, 1, &tr);
	assert_int_equal(res.status, C);
	assert_true(tr.changed);
	memset(&res, 0, sizeof(res));
	res.changed = true;
	res.has_value = true;
	res.value = 0.5;
	rule_update(&def, &rs, &res, 2, &tr);
	assert_int_equal(res.status, W);
	assert_int_equal(tr.to, W);
	/* A status the caller raised (an anomaly) stays. */
	memset(&res, 0, sizeof(res));
	res.status = C;
	rule_update(&def, &rs, &res, 3, &tr);
	assert_int_equal(res.status, C);
	assert_int_equal(tr.to, C);
}

static void test_flapping(void **state)
{
	struct check_def def;
	struct rule_state rs;
	struct rule_transition tr;
	unsigned started = 0, stopped = 0, cycle = 0;

	(void)state;
	def_init(&def, 1, 1);
	def.flap_changes = 6;
	def.flap_cycles = 20;
	rule_state_init(&rs);
	/* Alternating: the 6th change marks flapping. */
	for (int i = 0; i < 7; i++) {
		rule_update_status(&def, &rs, i % 2 ? C : O, ++cycle, &tr);
		if (tr.flap_changed)
			started = cycle;
		assert_int_equal(tr.flapping, i >= 6);
	}
	assert_int_equal(started, 7);
	assert_true(rs.flapping);
	/* what the agent announces: 6 changes, the worst being critical */
	assert_int_equal(rule_flap_changes(&def, &rs), 6);
	assert_int_equal(rule_recent_worst(&def, &rs), C);
	/* Steady: it stays flapping while 3 or more changes are in the window,
	 * then stops (hysteresis: below half of 6). */
	for (int i = 0; i < 30 && rs.flapping; i++) {
		rule_update_status(&def, &rs, C, ++cycle, &tr);
		if (tr.flap_changed)
			stopped = cycle;
	}
	assert_false(rs.flapping);
	/* Changes are between samples 1-2, ..., 7-8 (O then steady C): the
	 * window of the last 20 samples (t-19..t) holds 27 - t of them, at
	 * most 2 from t = 25. */
	assert_int_equal(stopped, 25);
	assert_int_equal(rs.state, C);
	assert_int_equal(rule_flap_changes(&def, &rs), 2);
}

static void test_recent_worst_is_the_window(void **state)
{
	struct check_def def;
	struct rule_state rs;
	struct rule_transition tr;
	unsigned cycle = 0;

	(void)state;
	def_init(&def, 1, 1);
	def.flap_changes = 3;
	def.flap_cycles = 4;
	rule_state_init(&rs);
	rule_update_status(&def, &rs, C, ++cycle, &tr);
	for (int i = 0; i < 3; i++)
		rule_update_status(&def, &rs, i % 2 ? W : O, ++cycle, &tr);
	assert_int_equal(rule_recent_worst(&def, &rs), C);
	rule_update_status(&def, &rs, O, ++cycle, &tr);
	/* the critical sample left the window of 4 */
	assert_int_equal(rule_recent_worst(&def, &rs), W);
	assert_int_equal(rule_flap_changes(&def, &rs), 2);
}

static void test_flap_off_and_restore(void **state)
{
	struct check_def def;
	struct rule_state rs;
	struct rule_transition tr;

	(void)state;
	def_init(&def, 2, 1);
	rule_state_init(&rs);
	for (int i = 0; i < 40; i++) {
		rule_update_status(&def, &rs, i % 2 ? C : O, i + 1, &tr);
		assert_false(tr.flapping);
		assert_int_equal(rs.state, O); /* never 2 bad cycles in a row */
	}
	rule_state_restore(&rs, C, 77);
	assert_int_equal(rs.state, C);
	assert_int_equal(rs.since, 77);
	rule_update_status(&def, &rs, C, 100, &tr);
	assert_false(tr.changed);
	rule_update_status(&def, &rs, O, 101, &tr);
	assert_true(tr.changed);
	assert_int_equal(tr.from, C);
	assert_int_equal(tr.to, O);
}

static void test_long_for(void **state)
{
	struct check_def def;
	struct rule_state rs;
	struct rule_transition tr;

	(void)state;
	def_init(&def, 500, 1); /* beyond the flap history: counters, not the ring */
	rule_state_init(&rs);
	for (int i = 1; i <= 500; i++) {
		rule_update_status(&def, &rs, W, i, &tr);
		assert_int_equal(rs.state, i < 500 ? O : W);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_for_one_is_immediate),
		cmocka_unit_test(test_for_three),
		cmocka_unit_test(test_for_per_level),
		cmocka_unit_test(test_unknown_ranks_between),
		cmocka_unit_test(test_recover_cycles),
		cmocka_unit_test(test_margin_hysteresis),
		cmocka_unit_test(test_below_thresholds),
		cmocka_unit_test(test_probe_failure_wins),
		cmocka_unit_test(test_flapping),
		cmocka_unit_test(test_recent_worst_is_the_window),
		cmocka_unit_test(test_flap_off_and_restore),
		cmocka_unit_test(test_long_for),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
