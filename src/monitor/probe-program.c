/* program: run argv without a shell (lib/spawn: its own session, killed
 * with its process group at the deadline, never outliving the agent),
 * capture what it prints (bounded), with the minimal environment of
 * spawn_default_env(). The status comes from the exit code (0
 * ok, or the Nagios plugin convention) and an optional match on the
 * output. */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/spawn.h"
#include "monitor/probes.h"

/* First number in the output: "load=1.5" -> 1.5. */
static bool first_number(const char *s, double *ret)
{
	for (; *s; s++) {
		char *end;
		double d;

		if (!((*s >= '0' && *s <= '9') ||
		      ((*s == '-' || *s == '.') && s[1] >= '0' && s[1] <= '9')))
			continue;
		d = strtod(s, &end);
		if (end != s && d == d) {
			*ret = d;
			return true;
		}
	}
	return false;
}

int probe_program(const struct check_def *def, usec_t deadline, struct probe_result *res)
{
	char *const *argv = def->probe.program.argv;
	usec_t left = probe_remaining(deadline);
	struct spawn_options o = {
		/* envp NULL: the minimal environment actions and receivers get
		 * (spawn_default_env), never the agent's own, which may hold
		 * BCDR_PASSWORD or a cloud key */
		.argv = argv, .envp = NULL, .timeout = left ? left : 1,
		.output_max = PROBE_OUTPUT_MAX, .kill_at_once = true, .die_with_parent = true,
	};
	struct spawn_result sr = {};
	_cleanup_free_ char *out = NULL;
	char first_line[160];
	size_t len;
	int r, code;

	r = spawn_run(&o, &sr);
	if (r == -ENOMEM)
		return r;
	if (r == -ENOENT || r == -EACCES || r == -ENOEXEC) {
		probe_fail(res, CHECK_UNKNOWN, "cannot execute '%s': %s", argv[0], strerror(-r));
		return 0;
	}
	if (r < 0) {
		probe_fail(res, CHECK_UNKNOWN, "cannot run '%s': %s", argv[0], strerror(-r));
		return 0;
	}
	out = sr.output;
	len = sr.output_len;
	for (size_t i = 0; i < len; i++)
		if (!out[i])
			out[i] = ' ';
	{
		size_t l = strcspn(out, "\n");

		probe_printable(out, l, first_line, sizeof(first_line));
	}
	if (sr.timed_out) {
		char d[32];

		probe_fail(res, CHECK_CRITICAL, "'%s' timed out after %s and was killed", argv[0],
			   duration_format(def->timeout, d, sizeof(d)));
		return 0;
	}
	if (sr.signal) {
		probe_fail(res, CHECK_CRITICAL, "'%s' was killed by signal %d: %s", argv[0],
			   sr.signal, first_line);
		return 0;
	}
	code = sr.exit_status;
	if (def->probe.program.measure == PROGRAM_OUTPUT) {
		double v;

		if (first_number(out, &v))
			probe_set_value(res, v, "");
		else
			probe_fail(res, CHECK_UNKNOWN, "no number in the output of '%s': '%s'",
				   argv[0], first_line);
	} else {
		probe_set_value(res, code, "");
	}
	if (res->probe_status == CHECK_OK)
		probe_message(res, "exit %d%s%s", code, first_line[0] ? ": " : "", first_line);
	if (def->probe.program.exit_codes == PROGRAM_EXIT_NAGIOS) {
		static const enum check_status nagios[] = { CHECK_OK, CHECK_WARNING, CHECK_CRITICAL,
							    CHECK_UNKNOWN };

		res->probe_status = check_status_worst(res->probe_status,
						       code < 4 ? nagios[code] : CHECK_UNKNOWN);
	} else if (code != 0) {
		res->probe_status = CHECK_CRITICAL;
	}
	if (def->probe.program.output) {
		regex_t re;
		int m;

		if (regcomp(&re, def->probe.program.output, PROBE_REGEX_FLAGS) != 0) {
			probe_fail(res, CHECK_UNKNOWN, "invalid output regular expression");
			return 0;
		}
		m = regexec(&re, out, 0, NULL, 0);
		regfree(&re);
		if (m != 0)
			probe_fail(res, CHECK_CRITICAL, "the output of '%s' does not match '%s': '%s'",
				   argv[0], def->probe.program.output, first_line);
	}
	return 0;
}
