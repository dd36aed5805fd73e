#include "backup/db-drill.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/hooks.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/spawn.h"
#include "lib/timeutil.h"

#define STEP_TIMEOUT (3600 * USEC_PER_SEC)
#define STEP_OUTPUT (64u << 10)

/* One step; false with msg when it could not run or failed. The output
 * (its tail: where a tool's error is) goes to *ret_out when asked. */
static bool step(const char *what, char *const *argv, char *const *envp, const char *input,
		 usec_t timeout, char **ret_out, char *msg, size_t size)
{
	struct spawn_options o = { .argv = argv, .envp = envp, .input_file = input,
				   .timeout = timeout, .output_max = STEP_OUTPUT,
				   .keep_tail = true };
	struct spawn_result res = {};
	char how[64], tail[400];
	int r = spawn_run(&o, &res);

	if (r < 0) {
		snprintf(msg, size, "%s '%s' cannot run: %s", what, argv[0], err_str(r));
		return false;
	}
	if (res.exit_status != 0 || res.timed_out) {
		hooks_output_tail(res.output, res.output_len, tail, sizeof(tail));
		snprintf(msg, size, "%s '%s' failed (%s)%s%s", what, hooks_program_name(argv[0]),
			 spawn_describe(&res, timeout, how, sizeof(how)), tail[0] ? ": " : "", tail);
		spawn_result_release(&res);
		return false;
	}
	if (ret_out)
		*ret_out = TAKE_PTR(res.output);
	spawn_result_release(&res);
	return true;
}

static const char *skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	return s;
}

bool db_drill_expect(const char *expect, const char *output, char *why, size_t size)
{
	static const char *const ops[] = { ">=", "<=", "!=", "==", ">", "<", "=" };
	const char *e = skip_space(expect), *out = skip_space(output), *op = NULL;
	char shown[64], *end;
	double want, got;
	size_t l;

	l = strcspn(out, "\r\n");
	snprintf(shown, sizeof(shown), "%.*s", (int)(l < 60 ? l : 60), out);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]) && !op; i++)
		if (strncmp(e, ops[i], strlen(ops[i])) == 0)
			op = ops[i];
	want = strtod(op ? skip_space(e + strlen(op)) : e, &end);
	if (end == (op ? skip_space(e + strlen(op)) : e) || *skip_space(end) || !isfinite(want)) {
		if (op) {
			snprintf(why, size, "expect '%s' is not an operator and a number", expect);
			return false;
		}
		if (strstr(output, e))
			return true;
		snprintf(why, size, "verify printed '%s', which does not contain '%s'", shown, e);
		return false;
	}
	if (!op)
		op = ">=";
	got = strtod(out, &end);
	if (end == out || !isfinite(got)) {
		snprintf(why, size, "verify printed '%s', not a number (expect %s %g)", shown, op,
			 want);
		return false;
	}
	if ((!strcmp(op, ">=") && got >= want) || (!strcmp(op, "<=") && got <= want) ||
	    (!strcmp(op, ">") && got > want) || (!strcmp(op, "<") && got < want) ||
	    (!strcmp(op, "!=") && got != want) ||
	    ((!strcmp(op, "=") || !strcmp(op, "==")) && got == want))
		return true;
	snprintf(why, size, "verify printed %s, expected %s %g", shown, op, want);
	return false;
}

int db_drill_run(const struct backup_job *job, const char *file, bool *ret_ok,
		 double *ret_verified_s, char *msg, size_t size)
{
	const struct db_drill *d = &job->db;
	usec_t timeout = d->timeout ? d->timeout : STEP_TIMEOUT, start = now_monotonic();
	_cleanup_strv_free_ char **env = NULL, **env2 = NULL;
	_cleanup_free_ char *out = NULL, *fenv = NULL;
	char tmsg[256];
	size_t n = 0;
	bool ok;
	int r;

	*ret_ok = false;
	*ret_verified_s = 0;
	r = job_env(job, &env, msg, size);
	if (r < 0) {
		if (!msg[0])
			snprintf(msg, size, "%s", err_str(r));
		return r;
	}
	/* BCDR_DRILL_FILE for tools that want a path (pg_restore FILE) */
	while (env[n])
		n++;
	if (asprintf(&fenv, "BCDR_DRILL_FILE=%s", file) < 0 ||
	    !(env2 = calloc(n + 2, sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		env2[i] = TAKE_PTR(env[i]);
	env2[n] = TAKE_PTR(fenv);

	ok = !d->setup || step("setup", d->setup, env2, NULL, timeout, NULL, msg, size);
	if (ok)
		ok = step("load", d->load, env2, file, timeout, NULL, msg, size);
	if (ok && d->verify) {
		ok = step("verify", d->verify, env2, NULL, timeout, &out, msg, size);
		if (ok && d->expect)
			ok = db_drill_expect(d->expect, out, msg, size);
		if (ok) {
			const char *o = skip_space(out);
			size_t l = strcspn(o, "\r\n");

			snprintf(msg, size, "loaded and verified: verify printed '%.*s'%s%s",
				 (int)(l < 80 ? l : 80), o, d->expect ? ", expect " : "",
				 d->expect ? d->expect : "");
		}
	} else if (ok) {
		snprintf(msg, size, "loaded");
	}
	*ret_verified_s = (double)(now_monotonic() - start) / USEC_PER_SEC;
	if (d->teardown && !step("teardown", d->teardown, env2, NULL, timeout, NULL, tmsg,
				 sizeof(tmsg))) {
		size_t l = strlen(msg);

		/* the drill's verdict stands; the operator learns the scratch is left */
		snprintf(msg + l, size - l, "; %s", tmsg);
	}
	*ret_ok = ok;
	return 0;
}
