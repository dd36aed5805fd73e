/* Small helpers over SQLite for the engines that keep tables in the
 * agent's state.db (agent state, alert queue, act limits): prepare and bind
 * in one call, step to the end, and SQLite result codes as -errno.
 *
 *   sqlite3_stmt *st;
 *   r = sql_prepare(db, &st, "SELECT x FROM t WHERE a = ? AND b = ?", "ti", name, 3LL);
 *   r = sql_exec(db, "DELETE FROM t WHERE a = ?", "t", name);
 *
 * Bind letters: 't' text (const char *, NULL binds NULL; copied), 'i'
 * int64 (long long), 'd' double, 'n' NULL (no argument). */
#pragma once

#include <sqlite3.h>
#include <stdarg.h>

/* An SQLite result code (primary or extended) as -errno / -BCDR_ERR_*:
 * full -ENOSPC, read-only and permissions -EACCES, corrupt
 * -BCDR_ERR_CORRUPT, busy or locked -BCDR_ERR_LOCKED, else -EIO. */
int sql_error(int rc);

/* Prepares sql and binds the arguments by the letters of types. */
int sql_prepare(sqlite3 *db, sqlite3_stmt **ret, const char *sql, const char *types, ...);
int sql_vprepare(sqlite3 *db, sqlite3_stmt **ret, const char *sql, const char *types,
		 va_list ap);
/* Steps st once more (expects the end, or a row it ignores). Does not
 * finalize. */
int sql_step_done(sqlite3_stmt *st);
/* Prepares, binds, steps and finalizes: for statements without rows. */
int sql_exec(sqlite3 *db, const char *sql, const char *types, ...);

static inline void sql_finalizep(sqlite3_stmt **st)
{
	sqlite3_finalize(*st);
}
#define _cleanup_stmt_ __attribute__((cleanup(sql_finalizep)))
