/* Reader of NAB-style metric files: `timestamp,value` rows, oldest first.
 * Bounded: one line at most SERIES_MAX_LINE bytes in a fixed buffer, so a
 * file of any size streams in constant memory.
 *
 * Timestamps: "2014-04-01 00:05:00" (NAB), RFC 3339 ("2014-04-01T00:05:00Z",
 * fractions and +hh:mm offsets accepted) or Unix seconds ("1396310700.5").
 * Values: any strtod() number; empty, "nan", "null", "NA" or garbage make a
 * missing value (NaN). A first line whose timestamp does not parse is a
 * header; blank lines and lines starting with '#' are skipped. Quotes around
 * a field are removed; columns after the second are ignored. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/timeutil.h"

#define SERIES_MAX_LINE 4096

struct series_row {
	usec_t t;
	bool time_ok;           /* false: the timestamp did not parse */
	double value;           /* NaN when missing or unparseable */
	bool value_ok;          /* a finite number */
	const char *time_text;  /* the fields as written (no quotes), valid */
	const char *value_text; /* until the next series_next() */
	size_t line;            /* 1-based line number */
};

struct series_reader {
	FILE *f;
	size_t line;
	bool header_seen;  /* a header line was skipped */
	bool content_seen; /* a non-blank line was read */
	char buf[SERIES_MAX_LINE + 2];
	char time_field[SERIES_MAX_LINE + 1];
	char value_field[SERIES_MAX_LINE + 1];
};

void series_reader_init(struct series_reader *r, FILE *f);
/* 1 and a row, 0 at the end, -BCDR_ERR_TOO_BIG for an over-long line (the
 * reader stops there), -EIO on a read error. */
int series_next(struct series_reader *r, struct series_row *row);

/* Parses one timestamp; -EINVAL when it is none of the forms above. */
int series_parse_time(const char *s, usec_t *ret);
