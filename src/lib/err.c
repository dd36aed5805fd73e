#include "lib/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const messages[BCDR_ERR_LAST - BCDR_ERR_FIRST] = {
	[BCDR_ERR_CONFIG - BCDR_ERR_FIRST] = "invalid plan",
	[BCDR_ERR_USAGE - BCDR_ERR_FIRST] = "invalid usage",
	[BCDR_ERR_CORRUPT - BCDR_ERR_FIRST] = "data is corrupt",
	[BCDR_ERR_AUTH - BCDR_ERR_FIRST] = "wrong password or key",
	[BCDR_ERR_VERSION - BCDR_ERR_FIRST] = "format version not supported by this build",
	[BCDR_ERR_LOCKED - BCDR_ERR_FIRST] = "locked by another process",
	[BCDR_ERR_NOT_FOUND - BCDR_ERR_FIRST] = "not found",
	[BCDR_ERR_AMBIGUOUS - BCDR_ERR_FIRST] = "ambiguous prefix",
	[BCDR_ERR_TOO_BIG - BCDR_ERR_FIRST] = "input over its size limit",
	[BCDR_ERR_PARTIAL - BCDR_ERR_FIRST] = "completed with problems",
	[BCDR_ERR_TIMEOUT - BCDR_ERR_FIRST] = "timed out",
	[BCDR_ERR_PROTOCOL - BCDR_ERR_FIRST] = "protocol error",
	[BCDR_ERR_UNSUPPORTED - BCDR_ERR_FIRST] = "not supported",
	[BCDR_ERR_LOCK_LOST - BCDR_ERR_FIRST] = "the repository lock was lost",
	[BCDR_ERR_INSECURE - BCDR_ERR_FIRST] = "may be read by group or others (chmod 600)",
};

const char *err_str(int r)
{
	int code = r < 0 ? -r : r;

	if (code >= BCDR_ERR_FIRST && code < BCDR_ERR_LAST)
		return messages[code - BCDR_ERR_FIRST];
	return strerror(code);
}

int err_fail(char **ret_error, int r, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (!ret_error)
		return r;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	free(*ret_error);
	*ret_error = s;
	return r;
}
