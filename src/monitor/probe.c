/* probe_run(): one measurement of a check, bounded by its timeout, and the
 * thresholds that give it a status. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/err.h"
#include "monitor/probes.h"

int probe_state_new(const struct check_def *def, struct probe_state **ret)
{
	struct probe_state *ps = calloc(1, sizeof(*ps));

	(void)def;
	if (!ps)
		return -ENOMEM;
	*ret = ps;
	return 0;
}

void probe_state_free(struct probe_state *ps)
{
	if (!ps)
		return;
	probe_http_state_free(ps);
	free(ps);
}

void probe_set_value(struct probe_result *res, double value, const char *unit)
{
	res->has_value = true;
	res->value = value;
	res->unit = unit;
}

void probe_message(struct probe_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
}

void probe_fail(struct probe_result *res, enum check_status status, const char *fmt, ...)
{
	va_list ap;

	res->probe_status = check_status_worst(res->probe_status, status);
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
}

usec_t probe_remaining(usec_t deadline)
{
	usec_t now = now_monotonic();

	return now < deadline ? deadline - now : 0;
}

void probe_sleep(usec_t d, usec_t deadline)
{
	usec_t left = probe_remaining(deadline);
	struct timespec ts;

	if (d > left)
		d = left;
	ts.tv_sec = (time_t)(d / USEC_PER_SEC);
	ts.tv_nsec = (long)(d % USEC_PER_SEC) * 1000;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void probe_printable(const char *s, size_t len, char *out, size_t max)
{
	size_t n = 0;

	if (!max)
		return;
	for (size_t i = 0; i < len && n + 1 < max; i++) {
		unsigned char c = (unsigned char)s[i];

		out[n++] = c >= 0x20 && c < 0x7f ? (char)c : (c == '\n' || c == '\t' ? ' ' : '.');
	}
	out[n] = '\0';
}

static bool threshold_hit(const struct check_def *def, const struct check_threshold *t,
			  double value, bool inside)
{
	double limit;

	if (!t->set)
		return false;
	limit = t->value;
	/* Once past a threshold, coming back takes the margin too. */
	if (inside)
		limit = def->below ? limit + def->recover_margin : limit - def->recover_margin;
	return def->below ? value < limit : value > limit;
}

enum check_status check_threshold_status(const struct check_def *def, double value,
					 enum check_status confirmed)
{
	bool in_crit = confirmed == CHECK_CRITICAL;
	bool in_warn = confirmed == CHECK_WARNING || in_crit;

	if (threshold_hit(def, &def->crit, value, in_crit))
		return CHECK_CRITICAL;
	if (threshold_hit(def, &def->warn, value, in_warn))
		return CHECK_WARNING;
	return CHECK_OK;
}

static int probe_backup(const struct check_def *def, const struct probe_env *env,
			struct probe_result *res)
{
	usec_t newest = 0, rpo = 0, now, age;
	char age_s[32], rpo_s[32];
	int r;

	if (!env || !env->backup_newest) {
		probe_fail(res, CHECK_UNKNOWN, "backup checks need the backup engine (run them with "
			   "the agent)");
		return 0;
	}
	r = env->backup_newest(env->backup_userdata, def->probe.backup.job, &newest, &rpo);
	if (r == -BCDR_ERR_NOT_FOUND) {
		probe_fail(res, CHECK_CRITICAL, "backup job '%s' has no snapshot yet",
			   def->probe.backup.job);
		return 0;
	}
	if (r < 0) {
		probe_fail(res, CHECK_UNKNOWN, "cannot read the snapshots of backup job '%s': %s",
			   def->probe.backup.job, err_str(r));
		return 0;
	}
	now = now_realtime();
	age = now > newest ? now - newest : 0;
	probe_set_value(res, (double)age / (double)USEC_PER_SEC, "s");
	duration_format(age, age_s, sizeof(age_s));
	if (rpo) {
		duration_format(rpo, rpo_s, sizeof(rpo_s));
		probe_message(res, "newest snapshot of '%s' is %s old (rpo %s)",
			      def->probe.backup.job, age_s, rpo_s);
		/* Without thresholds of its own, the check holds the job to its rpo. */
		if (!def->warn.set && !def->crit.set && age > rpo)
			res->probe_status = CHECK_CRITICAL;
	} else {
		probe_message(res, "newest snapshot of '%s' is %s old", def->probe.backup.job, age_s);
	}
	return 0;
}

int probe_run(const struct check_def *def, struct probe_state *ps, const struct probe_env *env,
	      struct probe_result *ret)
{
	struct probe_state local = { 0 };
	usec_t start, deadline;
	int r = 0;

	memset(ret, 0, sizeof(*ret));
	ret->unit = "";
	ret->probe_status = CHECK_OK;
	ret->started = now_realtime();
	start = now_monotonic();
	deadline = start + (def->timeout ? def->timeout : 5 * USEC_PER_SEC);
	switch (def->kind) {
	case PROBE_SYSTEM:
		r = probe_system(def, ps ? ps : &local, deadline, ret);
		break;
	case PROBE_PROCESS:
		r = probe_process(def, ps ? ps : &local, deadline, ret);
		break;
	case PROBE_TCP:
		r = probe_tcp(def, deadline, ret);
		break;
	case PROBE_HTTP:
		r = probe_http(def, ps ? ps : &local, deadline, ret);
		break;
	case PROBE_FILE:
		r = probe_file(def, ps ? ps : &local, deadline, ret);
		break;
	case PROBE_PROGRAM:
		r = probe_program(def, deadline, ret);
		break;
	case PROBE_BACKUP:
		r = probe_backup(def, env, ret);
		break;
	default:
		probe_fail(ret, CHECK_UNKNOWN, "unknown probe kind");
	}
	if (!ps)
		probe_http_state_free(&local);
	ret->duration = now_monotonic() - start;
	if (r == -ENOMEM)
		return r;
	if (r < 0 && ret->probe_status == CHECK_OK)
		probe_fail(ret, CHECK_UNKNOWN, "%s", err_str(r));
	ret->status = ret->probe_status;
	if (ret->has_value)
		ret->status = check_status_worst(ret->status,
						 check_threshold_status(def, ret->value, CHECK_OK));
	if (ret->changed && def->on_change != CHECK_OK)
		ret->status = check_status_worst(ret->status, def->on_change);
	return 0;
}
