/* Parsing of the API's query strings and times: outside bytes, bounded
 * and strict (anything odd is an error the API answers with 400). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "lib/timeutil.h"

#define QUERY_MAX_LEN 4096u
#define QUERY_MAX_PARAMS 16u

/* RFC 3339 ("2026-11-26T03:48:52Z", "...52.25+02:00") into realtime usec. */
int query_parse_rfc3339(const char *s, usec_t *ret);
/* since=: an RFC 3339 time, seconds ago ("3600"), or a duration ago
 * ("1h"); relative forms count back from now. */
int query_parse_since(const char *s, usec_t now, usec_t *ret);

struct query_param {
	char *key, *value; /* decoded */
};
struct query {
	struct query_param params[QUERY_MAX_PARAMS];
	size_t n;
};

/* Parses "a=1&b=x%20y" (NULL or "" is empty); refuses more than
 * QUERY_MAX_PARAMS, longer than QUERY_MAX_LEN, bad escapes, keys not in
 * allowed (NULL-terminated). */
int query_parse(const char *s, const char *const *allowed, struct query *ret);
void query_release(struct query *q);
/* Value of key, or NULL. */
const char *query_get(const struct query *q, const char *key);
