/* backup/db-drill: the verdict of expect: on what verify printed, and the
 * steps run in order with teardown whatever happened. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "backup/db-drill.h"

static void yes(const char *expect, const char *out)
{
	char why[256] = "";

	if (!db_drill_expect(expect, out, why, sizeof(why)))
		fail_msg("'%s' on '%s' should pass: %s", expect, out, why);
}

static void no(const char *expect, const char *out, const char *needle)
{
	char why[256] = "";

	if (db_drill_expect(expect, out, why, sizeof(why)))
		fail_msg("'%s' on '%s' should fail", expect, out);
	if (!strstr(why, needle))
		fail_msg("'%s' lacks '%s'", why, needle);
}

static void test_expect(void **state)
{
	(void)state;
	yes(">= 200000", "200000\n");
	yes(">=200000", " 200001 ");
	yes("200000", "250000\n");
	yes("> 0", "1");
	yes("= 3", "3\n");
	yes("== 3", "3.0");
	yes("!= 0", "7");
	yes("< 10", "9");
	yes("<= 9", "9");
	yes("ok", "all ok\n");
	no(">= 200000", "199999\n", "verify printed 199999, expected >= 200000");
	no("200000", "5", "expected >= 200000");
	no("= 3", "", "not a number");
	no("> 0", "(0 rows)", "not a number");
	no("> x", "1", "not an operator and a number");
	no("ok", "failed\n", "does not contain 'ok'");
	no("= 1", "nan", "not a number");
}

static char *const *argv_of(const char *sh)
{
	static char *v[8][4];
	static int k;
	char **a = v[k++ % 8];

	a[0] = "sh";
	a[1] = "-c";
	a[2] = (char *)sh;
	a[3] = NULL;
	return a;
}

static void test_steps(void **state)
{
	char dir[] = "/tmp/bcdr-drill-XXXXXX", file[300], log[300], cmd[4][700], msg[512];
	struct backup_job job = { .name = "j" };
	bool ok;
	double took;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/dump.sql", dir);
	snprintf(log, sizeof(log), "%s/log", dir);
	f = fopen(file, "w");
	fputs("3\n", f);
	fclose(f);
	snprintf(cmd[0], sizeof(cmd[0]), "echo setup $BCDR_JOB >> %s", log);
	snprintf(cmd[1], sizeof(cmd[1]), "cat > %s/loaded; test \"$BCDR_DRILL_FILE\" = %s", dir,
		 file);
	snprintf(cmd[2], sizeof(cmd[2]), "cat %s/loaded", dir);
	snprintf(cmd[3], sizeof(cmd[3]), "echo teardown >> %s", log);
	job.db.setup = (char **)argv_of(cmd[0]);
	job.db.load = (char **)argv_of(cmd[1]);
	job.db.verify = (char **)argv_of(cmd[2]);
	job.db.teardown = (char **)argv_of(cmd[3]);
	job.db.expect = "= 3";
	assert_int_equal(db_drill_run(&job, file, &ok, &took, msg, sizeof(msg)), 0);
	assert_true(ok);
	assert_string_equal(msg, "loaded and verified: verify printed '3', expect = 3");
	assert_true(took > 0);

	/* a load that fails: its message, and teardown still runs */
	job.db.load = (char **)argv_of("echo 'ERROR:  relation \"t\" already exists' >&2; exit 3");
	assert_int_equal(db_drill_run(&job, file, &ok, &took, msg, sizeof(msg)), 0);
	assert_false(ok);
	assert_string_equal(msg, "load 'sh' failed (exit status 3): ERROR:  relation \"t\" "
				 "already exists");
	f = fopen(log, "r");
	{
		char text[256] = "";
		size_t n = fread(text, 1, sizeof(text) - 1, f);

		text[n] = 0;
		assert_string_equal(text, "setup j\nteardown\nsetup j\nteardown\n");
	}
	fclose(f);
	{
		char rm[400];

		snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
		char *v[] = { "sh", "-c", rm, NULL };
		struct backup_job j2 = { .name = "x", .db = { .load = v } };

		assert_int_equal(db_drill_run(&j2, file, &ok, &took, msg, sizeof(msg)), 0);
		assert_true(ok);
		assert_string_equal(msg, "loaded");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expect),
		cmocka_unit_test(test_steps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
