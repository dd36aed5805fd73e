/* lib/sql: binding by letters (NULL text, doubles), stepping, and SQLite's
 * result codes as errors, on a real (in-memory and read-only) database. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/err.h"
#include "lib/sql.h"

static void test_bind_and_read_back(void **state)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	sqlite3 *db;

	(void)state;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sql_exec(db, "CREATE TABLE t(a TEXT, b INTEGER, c REAL, d TEXT)", NULL), 0);
	assert_int_equal(sql_exec(db, "INSERT INTO t VALUES (?,?,?,?)", "tidt", "x",
				  (long long)1 << 40, 2.5, NULL), 0);
	assert_int_equal(sql_exec(db, "INSERT INTO t VALUES (?,?,?,?)", "tnnt", "y", "z"), 0);
	assert_int_equal(sql_prepare(db, &st, "SELECT b, c, d FROM t WHERE a = ?", "t", "x"), 0);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_true(sqlite3_column_int64(st, 0) == (long long)1 << 40);
	assert_true(sqlite3_column_double(st, 1) == 2.5);
	assert_int_equal(sqlite3_column_type(st, 2), SQLITE_NULL);
	assert_int_equal(sql_step_done(st), 0);
	sqlite3_finalize(st);
	assert_int_equal(sql_prepare(db, &st, "SELECT d FROM t WHERE a = 'y' AND b IS NULL", NULL),
			 0);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "z");
	sqlite3_close_v2(db);
}

static void test_errors(void **state)
{
	char path[] = "/tmp/bcdr-test-sql-XXXXXX";
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int fd;

	(void)state;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	/* bad SQL, too many bindings */
	assert_int_equal(sql_prepare(db, &st, "SELEKT 1", NULL), -EIO);
	assert_null(st);
	assert_int_equal(sql_exec(db, "SELECT ?", "ii", 1LL, 2LL), -EIO);
	sqlite3_close(db);
	/* a read-only database refuses writes with -EACCES */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sql_exec(db, "CREATE TABLE t(a)", NULL), 0);
	sqlite3_close(db);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sql_exec(db, "INSERT INTO t VALUES (?)", "i", 1LL), -EACCES);
	sqlite3_close(db);
	unlink(path);
	assert_int_equal(sql_error(SQLITE_FULL), -ENOSPC);
	assert_int_equal(sql_error(SQLITE_BUSY), -BCDR_ERR_LOCKED);
	assert_int_equal(sql_error(SQLITE_CORRUPT), -BCDR_ERR_CORRUPT);
	assert_int_equal(sql_error(SQLITE_DONE), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bind_and_read_back),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
