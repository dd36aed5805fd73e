/* The rule state machine: raw statuses in, confirmed states and transitions
 * out. `for` delays a worse state, `recover` delays a better one (with an
 * optional value margin, applied in check_threshold_status()), and flap
 * detection marks a check whose raw status keeps changing. */
#include <string.h>

#include "monitor/monitor.h"

static const enum check_status by_rank[4] = { CHECK_OK, CHECK_WARNING, CHECK_UNKNOWN,
					      CHECK_CRITICAL };

void rule_state_init(struct rule_state *rs)
{
	memset(rs, 0, sizeof(*rs));
	rs->state = CHECK_OK;
	rs->raw = CHECK_OK;
}

void rule_state_restore(struct rule_state *rs, enum check_status state, usec_t since)
{
	rule_state_init(rs);
	rs->state = state < CHECK_STATUS_MAX ? state : CHECK_UNKNOWN;
	rs->raw = rs->state;
	rs->since = since;
}

static unsigned history_changes(const struct rule_state *rs, unsigned window)
{
	unsigned n = rs->n < window ? rs->n : window, changes = 0;

	for (unsigned i = 1; i < n; i++) {
		unsigned a = (rs->head + rs->n - i) % RULE_HISTORY_MAX;
		unsigned b = (rs->head + rs->n - i - 1) % RULE_HISTORY_MAX;

		if (rs->history[a] != rs->history[b])
			changes++;
	}
	return changes;
}

unsigned rule_flap_changes(const struct check_def *def, const struct rule_state *rs)
{
	return history_changes(rs, def->flap_cycles ? (unsigned)def->flap_cycles : RULE_HISTORY_MAX);
}

enum check_status rule_recent_worst(const struct check_def *def, const struct rule_state *rs)
{
	unsigned window = def->flap_cycles ? (unsigned)def->flap_cycles : RULE_HISTORY_MAX;
	unsigned n = rs->n < window ? rs->n : window;
	enum check_status worst = rs->state;

	for (unsigned i = 1; i <= n; i++)
		worst = check_status_worst(worst, (enum check_status)
					   rs->history[(rs->head + rs->n - i) % RULE_HISTORY_MAX]);
	return worst;
}

static void history_push(struct rule_state *rs, enum check_status s)
{
	if (rs->n < RULE_HISTORY_MAX) {
		rs->history[(rs->head + rs->n) % RULE_HISTORY_MAX] = (uint8_t)s;
		rs->n++;
	} else {
		rs->history[rs->head] = (uint8_t)s;
		rs->head = (rs->head + 1) % RULE_HISTORY_MAX;
	}
}

void rule_update_status(const struct check_def *def, struct rule_state *rs,
			enum check_status status, usec_t now, struct rule_transition *ret)
{
	int raw_rank, state_rank;
	uint64_t need_for = def->for_cycles ? def->for_cycles : 1;
	uint64_t need_recover = def->recover_cycles ? def->recover_cycles : 1;
	enum check_status next;

	if (status >= CHECK_STATUS_MAX)
		status = CHECK_UNKNOWN;
	memset(ret, 0, sizeof(*ret));
	ret->from = rs->state;
	if (!rs->since)
		rs->since = now;
	rs->cycles++;
	rs->raw = status;
	raw_rank = check_status_rank(status);
	for (int k = 0; k < 4; k++) {
		rs->at_least[k] = raw_rank >= k ? rs->at_least[k] + 1 : 0;
		rs->at_most[k] = raw_rank <= k ? rs->at_most[k] + 1 : 0;
	}

	/* Worse: the worst level held for `for` cycles; better: the best level
	 * held for `recover` cycles. */
	state_rank = check_status_rank(rs->state);
	next = rs->state;
	if (raw_rank > state_rank) {
		for (int k = 3; k > state_rank; k--)
			if (rs->at_least[k] >= need_for) {
				next = by_rank[k];
				break;
			}
	} else if (raw_rank < state_rank) {
		for (int k = 0; k < state_rank; k++)
			if (rs->at_most[k] >= need_recover) {
				next = by_rank[k];
				break;
			}
	}
	if (next != rs->state) {
		ret->changed = true;
		rs->state = next;
		rs->since = now;
	}
	ret->to = rs->state;
	ret->pending = raw_rank > check_status_rank(rs->state);

	history_push(rs, status);
	if (def->flap_changes && def->flap_cycles) {
		unsigned changes = history_changes(rs, (unsigned)def->flap_cycles);

		if (!rs->flapping && changes >= def->flap_changes) {
			rs->flapping = true;
			ret->flap_changed = true;
		} else if (rs->flapping && changes * 2 < def->flap_changes) {
			rs->flapping = false;
			ret->flap_changed = true;
		}
	} else if (rs->flapping) {
		rs->flapping = false;
		ret->flap_changed = true;
	}
	ret->flapping = rs->flapping;
}

void rule_update(const struct check_def *def, struct rule_state *rs, struct probe_result *result,
		 usec_t now, struct rule_transition *ret)
{
	enum check_status s = result->probe_status;

	if (result->has_value)
		s = check_status_worst(s, check_threshold_status(def, result->value, rs->state));
	if (result->changed && def->on_change != CHECK_OK)
		s = check_status_worst(s, def->on_change);
	/* The margin only ever holds a check in a bad state longer, so the
	 * status probe_run() gave stays a floor; a caller may have raised it
	 * (an anomaly score) and that must stick. */
	s = check_status_worst(s, result->status < CHECK_STATUS_MAX ? result->status : CHECK_UNKNOWN);
	result->status = s;
	rule_update_status(def, rs, s, now, ret);
}
