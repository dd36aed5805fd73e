/* Error codes. Functions return >= 0 on success and -errno on failure;
 * bcdr's own failures use the reserved range below (never a real errno). */
#pragma once

enum {
	BCDR_ERR_FIRST = 10000,
	BCDR_ERR_CONFIG = BCDR_ERR_FIRST, /* the plan is invalid */
	BCDR_ERR_USAGE,                   /* bad command-line usage */
	BCDR_ERR_CORRUPT,                 /* stored data failed its checks */
	BCDR_ERR_AUTH,                    /* wrong password or key */
	BCDR_ERR_VERSION,                 /* format newer than this build */
	BCDR_ERR_LOCKED,                  /* someone else holds the lock */
	BCDR_ERR_NOT_FOUND,               /* no such object, snapshot, name */
	BCDR_ERR_AMBIGUOUS,               /* a prefix matches several objects */
	BCDR_ERR_TOO_BIG,                 /* input over its hard limit */
	BCDR_ERR_PARTIAL,                 /* done, but with problems */
	BCDR_ERR_TIMEOUT,                 /* gave up waiting */
	BCDR_ERR_PROTOCOL,                /* a peer spoke nonsense */
	BCDR_ERR_UNSUPPORTED,             /* not available in this build */
	BCDR_ERR_LOCK_LOST,               /* our lock was taken for stale */
	BCDR_ERR_INSECURE,                /* a secret file others may read */
	BCDR_ERR_LAST,
};

/* Message for a negative return code (-errno or -BCDR_ERR_*); static. */
const char *err_str(int r);

/* Why a call failed, for its caller to show: a function that can say more
 * than its code takes `char **ret_error` last and, when it fails, points
 * it at a malloc'd message the caller frees (docs/internals.md, "Errors").
 * err_fail() formats that message into *ret_error (replacing one already
 * there; nothing when ret_error is NULL) and returns r. */
int err_fail(char **ret_error, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
