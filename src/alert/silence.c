#include "alert/silence.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/sql.h"

#define LABEL_MAX 128
#define PATTERN_MAX 1024
#define COMMENT_MAX 4096
#define AUTHOR_MAX 256

/* Every error of the parser is the client's (a 400 from the API). */
#define bad(ret_error, ...) err_fail(ret_error, -BCDR_ERR_USAGE, __VA_ARGS__)

void silence_free(struct silence *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_matchers; i++) {
		free(s->matchers[i].label);
		free(s->matchers[i].pattern);
	}
	free(s->matchers);
	free(s->comment);
	free(s->created_by);
	free(s);
}


static void new_id(char out[33])
{
	unsigned char raw[16];
	size_t got = 0;

	while (got < sizeof(raw)) {
		ssize_t k = getrandom(raw + got, sizeof(raw) - got, 0);

		if (k <= 0) {
			/* no entropy source: time and address still make it unique here */
			unsigned long long t = now_realtime() ^ (unsigned long long)(uintptr_t)out;

			memcpy(raw, &t, sizeof(t));
			memcpy(raw + 8, &t, sizeof(t));
			break;
		}
		got += (size_t)k;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static int add_matcher(struct silence *s, const char *label, const char *pattern)
{
	struct alert_matcher *grown = realloc(s->matchers, (s->n_matchers + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	s->matchers = grown;
	grown[s->n_matchers].label = strdup(label);
	grown[s->n_matchers].pattern = strdup(pattern);
	s->n_matchers++;
	if (!grown[s->n_matchers - 1].label || !grown[s->n_matchers - 1].pattern)
		return -ENOMEM;
	return 0;
}

int silence_new(const char *const *matchers, usec_t starts_at, usec_t ends_at,
		const char *comment, const char *created_by, struct silence **ret)
{
	_cleanup_(silence_freep) struct silence *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	if (!matchers || !matchers[0] || ends_at <= starts_at)
		return -EINVAL;
	for (size_t i = 0; matchers[i] && matchers[i + 1]; i += 2) {
		if (s->n_matchers >= SILENCE_MAX_MATCHERS)
			return -BCDR_ERR_TOO_BIG;
		r = add_matcher(s, matchers[i], matchers[i + 1]);
		if (r < 0)
			return r;
	}
	new_id(s->id);
	s->starts_at = starts_at;
	s->ends_at = ends_at;
	s->comment = strdup(comment ? comment : "");
	s->created_by = strdup(created_by ? created_by : "");
	if (!s->comment || !s->created_by)
		return -ENOMEM;
	*ret = TAKE_PTR(s);
	return 0;
}

/* "2026-11-26T03:48:52Z" (UTC only, optional fraction). */
static int parse_rfc3339(const char *s, usec_t *ret)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	time_t t;

	if (!end)
		return -EINVAL;
	if (*end == '.') {
		end++;
		while (*end >= '0' && *end <= '9')
			end++;
	}
	if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
		return -EINVAL;
	t = timegm(&tm);
	if (t < 0)
		return -EINVAL;
	*ret = (usec_t)t * USEC_PER_SEC;
	return 0;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int silence_parse_json(const char *body, size_t len, usec_t now, struct silence **ret,
		       char **ret_error)
{
	_cleanup_(silence_freep) struct silence *s = NULL;
	_cleanup_json_ json_t *j = NULL;
	json_error_t jerr;
	const char *key, *comment = "", *author = "";
	json_t *v, *matchers = NULL;
	usec_t ends = 0;
	int r;

	if (len > SILENCE_BODY_MAX)
		return bad(ret_error, "request body over %u bytes", SILENCE_BODY_MAX);
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return bad(ret_error, "invalid JSON at line %d: %s", jerr.line, jerr.text);
	if (!json_is_object(j))
		return bad(ret_error, "expected a JSON object");
	json_object_foreach(j, key, v) {
		if (strcmp(key, "matchers") == 0) {
			matchers = v;
		} else if (strcmp(key, "duration_s") == 0) {
			double d = json_number_value(v);

			if (!json_is_number(v) || !isfinite(d) || d <= 0 ||
			    d > (double)(SILENCE_MAX_DURATION / USEC_PER_SEC))
				return bad(ret_error, "'duration_s' must be a number of seconds from 1"
					   " to %llu", (unsigned long long)(SILENCE_MAX_DURATION /
									    USEC_PER_SEC));
			if (ends)
				return bad(ret_error, "give 'duration_s' or 'ends_at', not both");
			ends = now + (usec_t)(d * (double)USEC_PER_SEC);
		} else if (strcmp(key, "ends_at") == 0) {
			usec_t t;

			if (!json_is_string(v) || parse_rfc3339(json_string_value(v), &t) < 0)
				return bad(ret_error, "'ends_at' must be an RFC 3339 UTC time such as"
					   " 2026-11-26T08:00:00Z");
			if (ends)
				return bad(ret_error, "give 'duration_s' or 'ends_at', not both");
			if (t <= now || t > now + SILENCE_MAX_DURATION)
				return bad(ret_error, "'ends_at' must be in the future, within a year");
			ends = t;
		} else if (strcmp(key, "comment") == 0 || strcmp(key, "created_by") == 0) {
			const char *text = json_string_value(v);
			size_t max = key[0] == 'c' && key[1] == 'o' ? COMMENT_MAX : AUTHOR_MAX;

			if (!text || strlen(text) > max || !printable(text))
				return bad(ret_error, "'%s' must be a string of at most %zu printable"
					   " characters", key, max);
			if (key[1] == 'o')
				comment = text;
			else
				author = text;
		} else {
			return bad(ret_error, "unknown key '%.64s' (known: matchers, duration_s, ends_at,"
				   " comment, created_by)", key);
		}
	}
	if (!json_is_object(matchers) || json_object_size(matchers) == 0)
		return bad(ret_error, "'matchers' must be an object of label: pattern, such as"
			   " {\"check\": \"web\"}");
	if (json_object_size(matchers) > SILENCE_MAX_MATCHERS)
		return bad(ret_error, "at most %d matchers", SILENCE_MAX_MATCHERS);
	if (!ends)
		return bad(ret_error, "missing 'duration_s' (or 'ends_at')");
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	json_object_foreach(matchers, key, v) {
		const char *p = json_string_value(v);

		if (!key[0] || strlen(key) > LABEL_MAX || !printable(key))
			return bad(ret_error, "a matcher's label must be 1 to %d printable characters",
				   LABEL_MAX);
		if (!p || !p[0] || strlen(p) > PATTERN_MAX || !printable(p))
			return bad(ret_error, "the pattern for '%.64s' must be a non-empty string of at"
				   " most %d printable characters", key, PATTERN_MAX);
		r = add_matcher(s, key, p);
		if (r < 0)
			return r;
	}
	new_id(s->id);
	s->starts_at = now;
	s->ends_at = ends;
	s->comment = strdup(comment);
	s->created_by = strdup(author);
	if (!s->comment || !s->created_by)
		return -ENOMEM;
	*ret = TAKE_PTR(s);
	return 0;
}

bool silence_active(const struct silence *s, usec_t now)
{
	return s->starts_at <= now && now < s->ends_at;
}

bool silence_matches(const struct silence *s, alert_label_fn labels, void *userdata)
{
	return alert_matchers_match(s->matchers, s->n_matchers, labels, userdata);
}

static json_t *matchers_json(const struct silence *s)
{
	json_t *m = json_object();

	for (size_t i = 0; m && i < s->n_matchers; i++)
		json_object_set_new(m, s->matchers[i].label, json_string(s->matchers[i].pattern));
	return m;
}

json_t *silence_json(const struct silence *s, usec_t now)
{
	char start[64], end[64];

	return json_pack("{s:s,s:o,s:s,s:s,s:s,s:s,s:b}", "id", s->id, "matchers",
			 matchers_json(s), "comment", s->comment, "created_by", s->created_by,
			 "starts_at", time_format_iso(s->starts_at, start, sizeof(start)), "ends_at",
			 time_format_iso(s->ends_at, end, sizeof(end)), "active",
			 silence_active(s, now));
}

int silence_save(sqlite3 *db, const struct silence *s)
{
	_cleanup_json_ json_t *m = matchers_json(s);
	_cleanup_free_ char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;

	if (!text)
		return -ENOMEM;
	return sql_exec(db,
			"INSERT OR REPLACE INTO alert_silences(id, matchers, comment, created_by,"
			" starts_us, ends_us) VALUES (?,?,?,?,?,?)",
			"ttttii", s->id, text, s->comment, s->created_by, (long long)s->starts_at,
			(long long)s->ends_at);
}

int silence_load_all(sqlite3 *db, struct silence ***ret, size_t *ret_n)
{
	struct silence **all = NULL;
	size_t n = 0;
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db,
				    "SELECT id, matchers, comment, created_by, starts_us, ends_us"
				    " FROM alert_silences ORDER BY starts_us", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		_cleanup_json_ json_t *m = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
		struct silence *s, **grown;
		const char *key;
		json_t *v;

		if (!id || strlen(id) != 32 || !json_is_object(m))
			continue;
		s = calloc(1, sizeof(*s));
		grown = realloc(all, (n + 1) * sizeof(*grown));
		if (grown)
			all = grown;
		if (!s || !grown) {
			free(s);
			goto fail;
		}
		memcpy(s->id, id, 33);
		json_object_foreach(m, key, v)
			if (json_is_string(v) && add_matcher(s, key, json_string_value(v)) < 0) {
				silence_free(s);
				goto fail;
			}
		s->comment = strdup(sqlite3_column_text(st, 2) ? (const char *)sqlite3_column_text(st, 2) : "");
		s->created_by = strdup(sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3) : "");
		s->starts_at = (usec_t)sqlite3_column_int64(st, 4);
		s->ends_at = (usec_t)sqlite3_column_int64(st, 5);
		all[n++] = s;
		if (!s->comment || !s->created_by)
			goto fail;
	}
	sqlite3_finalize(st);
	*ret = all;
	*ret_n = n;
	return 0;
fail:
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++)
		silence_free(all[i]);
	free(all);
	return -ENOMEM;
}
