#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "backup/plan.h"
#include "plan/plan.h"
#include "plan-helpers.h"

static const char good[] =
	"repositories:\n"
	"  - name: local\n"
	"    path: /srv/repo\n"
	"    password_file: /etc/bcdr/pw\n"
	"backups:\n"
	"  - name: home\n"
	"    repository: local\n"
	"    paths: [/home, /etc]\n"
	"    exclude: ['*.tmp']\n"
	"    schedule: '15 2 * * 1-5'\n"
	"    rpo: 1d\n"
	"    keep: {last: 3, daily: 7}\n"
	"    drill: weekly\n";

static void test_parse_good_plan(void **state)
{
	struct plan *p = NULL;
	char *err = NULL;
	const struct backup_job *j;

	(void)state;
	assert_int_equal(plan_parse("t.yaml", good, strlen(good), &p, &err), 0);
	j = backup_plan_job(p->backup, "home");
	assert_non_null(j);
	assert_string_equal(j->repo->path, "/srv/repo");
	assert_string_equal(j->paths[1], "/etc");
	assert_int_equal(j->keep.last, 3);
	assert_int_equal(j->keep.daily, 7);
	assert_int_equal(j->keep.weekly, -1);
	assert_int_equal(j->rpo, USEC_PER_DAY);
	assert_int_equal(j->drill_every, USEC_PER_WEEK);
	assert_int_equal(j->schedule.minutes, 1ull << 15);
	assert_int_equal(j->schedule.weekdays, 0x3e);
	plan_free(p);
}

static void test_errors_name_the_place(void **state)
{
	(void)state;
	plan_expect_error("backups:\n  - name: a\n    repository: nope\n    paths: [/x]\n",
		     "t.yaml:3:17: backup job 'a' names repository 'nope'");
	plan_expect_error("repositories:\n  - name: r\n    path: /r\nbackups:\n  - name: a\n"
		     "    repository: r\n    paths: [/x]\n    schedule: 'every 5'\n",
		     "t.yaml:8:15: bad schedule");
	plan_expect_error("repositories:\n  - name: r\n    path: /r\nbackups:\n  - name: a\n"
		     "    repository: r\n    paths: [/x]\n    schedule: '61 * * * *'\n",
		     "bad schedule");
	plan_expect_error("repositories:\n  - name: r\n    path: /r\nbackups:\n  - name: a\n"
		     "    repository: r\n    paths: [/x]\n    keep: {dayly: 3}\n",
		     "dayly");
	plan_expect_error("repositories:\n  - name: r\n    path: /r\n  - name: r\n    path: /s\n",
		     "duplicate repository name 'r'");
	plan_expect_error("repositories:\n  - name: r\n    path: /r\nbackups:\n  - name: a\n"
		     "    repository: r\n    paths: [/x]\n    drill: sometimes\n",
		     "bad drill");
}


static const char db_plan[] =
	"repositories:\n"
	"  - name: local\n"
	"    path: /srv/repo\n"
	"backups:\n"
	"  - name: shop\n"
	"    repository: local\n"
	"    command: [pg_dump, --no-owner, shop]\n"
	"    filename: shop.sql\n"
	"    env: {PGPASSWORD: /etc/bcdr/pg.pass}\n"
	"    before: [sync]\n"
	"    after: [[logger, done], [sync]]\n"
	"    drill:\n"
	"      every: daily\n"
	"      setup: [createdb, drill]\n"
	"      load: [psql, -v, ON_ERROR_STOP=1, -d, drill]\n"
	"      verify: [psql, -tA, -d, drill, -c, 'select count(*) from t']\n"
	"      expect: '>= 200000'\n"
	"      teardown: [dropdb, drill]\n"
	"      timeout: 10m\n";

static void test_parse_database_job(void **state)
{
	struct plan *p = NULL;
	char *err = NULL;
	const struct backup_job *j;

	(void)state;
	assert_int_equal(plan_parse("t.yaml", db_plan, strlen(db_plan), &p, &err), 0);
	j = backup_plan_job(p->backup, "shop");
	assert_non_null(j);
	assert_null(j->paths);
	assert_string_equal(j->command[0], "pg_dump");
	assert_string_equal(j->command[2], "shop");
	assert_null(j->command[3]);
	assert_string_equal(j->filename, "shop.sql");
	assert_int_equal(j->nenv, 1);
	assert_string_equal(j->env[0].name, "PGPASSWORD");
	assert_string_equal(j->env[0].path, "/etc/bcdr/pg.pass");
	assert_int_equal(j->before.n, 1);
	assert_string_equal(j->before.v[0][0], "sync");
	assert_int_equal(j->after.n, 2);
	assert_string_equal(j->after.v[0][1], "done");
	assert_int_equal(j->drill_every, USEC_PER_DAY);
	assert_string_equal(j->db.load[4], "drill");
	assert_string_equal(j->db.setup[0], "createdb");
	assert_string_equal(j->db.teardown[0], "dropdb");
	assert_string_equal(j->db.expect, ">= 200000");
	assert_int_equal(j->db.timeout, 10 * USEC_PER_MINUTE);
	plan_free(p);
}

#define DB_HEAD "repositories: [{name: l, path: /r}]\nbackups:\n  - name: j\n    repository: l\n"

static void test_database_job_errors(void **state)
{
	(void)state;
	plan_expect_error(DB_HEAD "    command: [pg_dump]\n", "needs filename:");
	plan_expect_error(DB_HEAD "    paths: [/x]\n    filename: a.sql\n", "command:, which is missing");
	plan_expect_error(DB_HEAD "    command: pg_dump shop\n    filename: a\n", "never a shell");
	plan_expect_error(DB_HEAD "    command: []\n    filename: a\n", "never a shell");
	plan_expect_error(DB_HEAD "    command: [[a]]\n    filename: a\n", "each argument is a string");
	plan_expect_error(DB_HEAD "    command: ['']\n    filename: a\n", "name is empty");
	plan_expect_error(DB_HEAD "    command: [a]\n    filename: x/y\n", "without '/'");
	plan_expect_error(DB_HEAD "    command: [a]\n    filename: '..'\n", "without '/'");
	plan_expect_error(DB_HEAD "    command: [a]\n    filename: a\n    env: {PGPASSWORD: secret}\n",
		     "never written in the plan");
	plan_expect_error(DB_HEAD "    command: [a]\n    filename: a\n    env: {'A-B': /f}\n",
		     "not a variable name");
	plan_expect_error(DB_HEAD "    command: [a]\n    filename: a\n    env: [/f]\n", "env");
	plan_expect_error(DB_HEAD "    command: [a]\n    filename: a\n    before: sync\n", "never a shell");
	plan_expect_error(DB_HEAD "    command: [a]\n    filename: a\n    after: [[a], b]\n",
		     "never a shell");
	plan_expect_error(DB_HEAD "    command: [a]\n    filename: a\n    drill: {load: [psql]}\n",
		     "every:");
	plan_expect_error(DB_HEAD
		     "    command: [a]\n    filename: a\n    drill: {every: daily, verify: [p]}\n",
		     "needs load:");
	plan_expect_error(DB_HEAD "    command: [a]\n    filename: a\n"
		     "    drill: {every: daily, load: [p], expect: '1'}\n", "verify:");
	plan_expect_error(DB_HEAD "    command: [a]\n    filename: a\n"
		     "    drill: {every: daily, load: [p], bogus: 1}\n", "bogus");
	plan_expect_error(DB_HEAD "    paths: [/x]\n    drill: {every: daily, load: [p]}\n",
		     "output of command: back, which is missing");
	plan_expect_error(DB_HEAD "    schedule: every 1h\n", "paths:");
}

#define COPY_HEAD \
	"repositories: [{name: l, path: /r}, {name: off, path: 'rest:http://h:1/r'}, " \
	"{name: far, path: /far}]\nbackups:\n  - name: j\n    repository: l\n    paths: [/x]\n"

static void test_copies_and_drill_from(void **state)
{
	static const char text[] = COPY_HEAD "    copies: [off, far]\n"
					     "    drill: {from: far, every: weekly}\n";
	struct plan *p = NULL;
	char *err = NULL;
	const struct backup_job *j;

	(void)state;
	assert_int_equal(plan_parse("t.yaml", text, strlen(text), &p, &err), 0);
	j = backup_plan_job(p->backup, "j");
	assert_int_equal(j->ncopies, 2);
	assert_string_equal(j->copy_repos[0]->name, "off");
	assert_string_equal(j->copy_repos[1]->path, "/far");
	assert_string_equal(j->drill_repo->name, "far");
	assert_int_equal(j->drill_every, USEC_PER_WEEK);
	assert_null(j->db.load);
	plan_free(p);
	plan_expect_error(COPY_HEAD "    copies: [off, nope]\n",
		     "t.yaml:6:19: backup job 'j' copies to 'nope', which is not in repositories:");
	plan_expect_error(COPY_HEAD "    copies: [l]\n", "t.yaml:6:14: backup job 'j': 'l' is its own");
	plan_expect_error(COPY_HEAD "    copies: [off, off]\n", "t.yaml:6:19: backup job 'j' names copy "
							   "'off' twice");
	plan_expect_error(COPY_HEAD "    copies: [off]\n    drill: {from: far, every: daily}\n",
		     "t.yaml:7:19: drill from 'far': not the repository of backup job 'j' nor one "
		     "of its copies:");
	plan_expect_error(COPY_HEAD "    drill: {from: off}\n", "every:");
	plan_expect_error(COPY_HEAD "    copies: {off: 1}\n", "t.yaml:6:13: expected a list");
}

static void test_schedule_next(void **state)
{
	struct schedule s = {};
	const char *why;
	struct tm tm = { .tm_year = 2026 - 1900, .tm_mon = 10, .tm_mday = 26, .tm_hour = 3,
			 .tm_min = 0, .tm_isdst = -1 };
	usec_t t = (usec_t)mktime(&tm) * USEC_PER_SEC, next;
	time_t secs;
	struct tm got;

	(void)state;
	assert_int_equal(schedule_parse("every 1h", &s, &why), 0);
	assert_int_equal(schedule_next(&s, t) - t, USEC_PER_HOUR - (t % USEC_PER_HOUR));
	assert_int_equal(schedule_parse("*/15 2 * * *", &s, &why), 0);
	next = schedule_next(&s, t);
	secs = (time_t)(next / USEC_PER_SEC);
	localtime_r(&secs, &got);
	assert_int_equal(got.tm_hour, 2);
	assert_int_equal(got.tm_min, 0);
	assert_int_equal(got.tm_mday, 27);
	free(s.text);
	assert_true(schedule_parse("1 2 3", &s, &why) < 0);
	assert_true(schedule_parse("every 0s", &s, &why) < 0);
	s.text = NULL;
	assert_int_equal(schedule_parse("every 10s", &s, &why), 0);
	assert_int_equal(s.every, 10 * USEC_PER_SEC);
	free(s.text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good_plan),
		cmocka_unit_test(test_errors_name_the_place),
		cmocka_unit_test(test_schedule_next),
		cmocka_unit_test(test_parse_database_job),
		cmocka_unit_test(test_database_job_errors),
		cmocka_unit_test(test_copies_and_drill_from),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
