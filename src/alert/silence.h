/* Silences: label matchers with a time window. An alert matching an active
 * silence is not notified (it still shows, marked silenced). Stored in the
 * engine's SQLite table alert_silences so they survive restarts. */
#pragma once

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "alert/route.h"
#include "lib/cleanup.h"
#include "lib/timeutil.h"

#define SILENCE_BODY_MAX (64u * 1024)
#define SILENCE_MAX_MATCHERS 32
#define SILENCE_MAX_DURATION (366 * USEC_PER_DAY)

struct silence {
	char id[33]; /* 32 hex digits */
	struct alert_matcher *matchers;
	size_t n_matchers;
	char *comment, *created_by;
	usec_t starts_at, ends_at;
};

/* matchers: label, pattern, ..., NULL (at least one pair). */
int silence_new(const char *const *matchers, usec_t starts_at, usec_t ends_at,
		const char *comment, const char *created_by, struct silence **ret);
void silence_free(struct silence *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct silence *, silence_free)

/* Parses an API body (untrusted, at most SILENCE_BODY_MAX bytes):
 * {"matchers":{"label":"pattern",...},"duration_s":N | "ends_at":"RFC3339",
 *  "comment":"...","created_by":"..."}. On -BCDR_ERR_USAGE *ret_error
 * (free() it) says what is wrong. */
int silence_parse_json(const char *body, size_t len, usec_t now, struct silence **ret,
		       char **ret_error);

bool silence_active(const struct silence *s, usec_t now);
bool silence_matches(const struct silence *s, alert_label_fn labels, void *userdata);
/* {"id","matchers":{},"comment","created_by","starts_at","ends_at","active"} */
json_t *silence_json(const struct silence *s, usec_t now);

/* Table alert_silences (made by the engine). */
int silence_save(sqlite3 *db, const struct silence *s);
int silence_load_all(sqlite3 *db, struct silence ***ret, size_t *ret_n);
