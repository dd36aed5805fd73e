#include "lib/sql.h"

#include <errno.h>
#include <stddef.h>

#include "lib/err.h"

int sql_error(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		return -EACCES;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -BCDR_ERR_CORRUPT;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -BCDR_ERR_LOCKED;
	default:
		return -EIO;
	}
}

int sql_vprepare(sqlite3 *db, sqlite3_stmt **ret, const char *sql, const char *types,
		 va_list ap)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return sql_error(rc);
	for (int i = 0; types && types[i] && rc == SQLITE_OK; i++) {
		const char *text;

		switch (types[i]) {
		case 't':
			text = va_arg(ap, const char *);
			rc = text ? sqlite3_bind_text(st, i + 1, text, -1, SQLITE_TRANSIENT)
				  : sqlite3_bind_null(st, i + 1);
			break;
		case 'i':
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, long long));
			break;
		case 'd':
			rc = sqlite3_bind_double(st, i + 1, va_arg(ap, double));
			break;
		default:
			rc = sqlite3_bind_null(st, i + 1);
			break;
		}
	}
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		return sql_error(rc);
	}
	*ret = st;
	return 0;
}

int sql_prepare(sqlite3 *db, sqlite3_stmt **ret, const char *sql, const char *types, ...)
{
	va_list ap;
	int r;

	va_start(ap, types);
	r = sql_vprepare(db, ret, sql, types, ap);
	va_end(ap);
	return r;
}

int sql_step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sql_error(rc);
}

int sql_exec(sqlite3 *db, const char *sql, const char *types, ...)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	va_list ap;
	int r;

	va_start(ap, types);
	r = sql_vprepare(db, &st, sql, types, ap);
	va_end(ap);
	return r < 0 ? r : sql_step_done(st);
}
