/* JSON output for --json and the API, through jansson. */
#pragma once

#include <jansson.h>
#include <stdio.h>

#include "lib/cleanup.h"

/* jansson defines json_decrefp() for this. */
#define _cleanup_json_ _cleanup_(json_decrefp)

/* Prints j to f as one line of JSON followed by a newline (JSON lines, so
 * progress events and results can be streamed and read with jq). */
int json_print(FILE *f, const json_t *j);

/* Sets key to a new string/integer/real/bool value; returns -ENOMEM on failure. */
int json_set_str(json_t *obj, const char *key, const char *value);
int json_set_int(json_t *obj, const char *key, long long value);
int json_set_real(json_t *obj, const char *key, double value);
int json_set_bool(json_t *obj, const char *key, int value);

/* A new JSON array of the strings of a NULL-terminated list (NULL: empty). */
json_t *json_from_strv(char *const *v);
