/* Where a repository lives, as an operator writes it (--repo,
 * BCDR_REPOSITORY, the plan's repositories:):
 *
 *   /srv/backup/repo, ./repo, repo         a local directory
 *   sftp:[USER@]HOST[:PORT]:/PATH          over the system's ssh
 *   sftp://[USER@]HOST[:PORT]/PATH         the same, URL form
 *   rest:http(s)://[USER[:PASS]@]HOST[:PORT][/PATH]   restic's REST protocol v2
 *   s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX]          S3 (path style)
 *   s3:HOST[:PORT]/BUCKET[/PREFIX]                     the same over https
 *
 * A local path that starts with "s3:", "sftp:" or "rest:" is written
 * "./s3:...". The parser is bounded (LOCATION_MAX bytes) and refuses
 * control characters, spaces and, in URL paths, anything but unreserved
 * characters and '/', so every part can go into a URL or an ssh argument
 * without quoting. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"

#define LOCATION_MAX 4096
#define LOCATION_HOST_MAX 253

enum location_kind {
	LOCATION_LOCAL,
	LOCATION_SFTP,
	LOCATION_REST,
	LOCATION_S3,
};

struct location {
	enum location_kind kind;
	char *user;     /* sftp, rest: NULL when not given */
	char *password; /* rest: from the URL, NULL when not given (a secret) */
	char *host;     /* without brackets for IPv6 */
	uint16_t port;  /* 0: the scheme's default */
	bool tls;       /* rest, s3: https */
	bool ipv6;      /* host is an IPv6 literal */
	char *bucket;   /* s3 */
	/* local: the directory; sftp: the remote path; rest: the URL path
	 * without its trailing '/' ("" for the root); s3: the prefix without
	 * leading or trailing '/' ("" for none). */
	char *path;
	/* For messages: as written, with a password replaced by "***". */
	char *display;
};

/* Parses text into a new location (free with location_free()). -EINVAL
 * with a static explanation in *ret_why (may be NULL) for a malformed one. */
int location_parse(const char *text, struct location **ret, const char **ret_why);
void location_free(struct location *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct location *, location_free)
/* The text with any password in it masked, into out; for messages about a
 * location that may not parse. */
void location_redact(const char *text, char *out, size_t size);
/* "local", "sftp", "rest", "s3". */
const char *location_kind_name(enum location_kind k);
