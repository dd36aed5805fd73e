#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "predict/series.h"

void series_reader_init(struct series_reader *r, FILE *f)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -EINVAL;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*ret = v;
	return 0;
}

static int expect(const char **p, char c)
{
	if (**p != c)
		return -EINVAL;
	(*p)++;
	return 0;
}

static int parse_calendar(const char *s, usec_t *ret)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h = 0, mi = 0, se = 0, off = 0;
	double frac = 0;
	const char *p = s;
	int64_t secs;

	if (digits(&p, 4, &y) < 0 || expect(&p, '-') < 0 || digits(&p, 2, &mo) < 0 ||
	    expect(&p, '-') < 0 || digits(&p, 2, &d) < 0)
		return -EINVAL;
	if (*p == ' ' || *p == 'T' || *p == 't') {
		p++;
		if (digits(&p, 2, &h) < 0 || expect(&p, ':') < 0 || digits(&p, 2, &mi) < 0)
			return -EINVAL;
		if (*p == ':' && (p++, digits(&p, 2, &se) < 0))
			return -EINVAL;
		if (*p == '.') {
			double scale = 0.1;

			p++;
			if (!isdigit((unsigned char)*p))
				return -EINVAL;
			for (; isdigit((unsigned char)*p); p++, scale /= 10)
				frac += (*p - '0') * scale;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p == '-' ? -1 : 1, oh, om;

			p++;
			if (digits(&p, 2, &oh) < 0)
				return -EINVAL;
			if (*p == ':')
				p++;
			if (digits(&p, 2, &om) < 0 || oh > 23 || om > 59)
				return -EINVAL;
			off = sign * (oh * 3600 + om * 60);
		}
	}
	if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 ||
	    mi > 59 || se > 60)
		return -EINVAL;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -EINVAL;
	secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se -
	       off;
	if (secs < 0)
		return -EINVAL;
	*ret = (usec_t)secs * USEC_PER_SEC + (usec_t)(frac * USEC_PER_SEC);
	return 0;
}

int series_parse_time(const char *s, usec_t *ret)
{
	char *end;
	double secs;

	if (!*s)
		return -EINVAL;
	if (strchr(s, '-') && strlen(s) >= 10 && s[4] == '-')
		return parse_calendar(s, ret);
	/* Unix seconds: digits and at most one dot, nothing else */
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			return -EINVAL;
	errno = 0;
	secs = strtod(s, &end);
	if (errno || *end || !(secs >= 0) || secs > 1e13)
		return -EINVAL;
	*ret = (usec_t)(secs * USEC_PER_SEC);
	return 0;
}

/* Copies field [b, e) without surrounding blanks and quotes. */
static void take_field(char *out, const char *b, const char *e)
{
	while (b < e && (*b == ' ' || *b == '\t'))
		b++;
	while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e - b >= 2 && *b == '"' && e[-1] == '"') {
		b++;
		e--;
	}
	memcpy(out, b, (size_t)(e - b));
	out[e - b] = 0;
}

static double parse_value(const char *s)
{
	char *end;
	double v;

	if (!*s)
		return NAN;
	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end)
		return NAN;
	return v; /* overflow gives +-HUGE_VAL, kept: the caller clamps */
}

/* Reads one line into r->buf; 1 read, 0 EOF, <0 error. */
static int read_line(struct series_reader *r, size_t *len)
{
	size_t n = 0;
	int c;

	while ((c = getc(r->f)) != EOF) {
		if (c == '\n')
			break;
		if (n >= SERIES_MAX_LINE)
			return -BCDR_ERR_TOO_BIG;
		r->buf[n++] = (char)c;
	}
	if (c == EOF) {
		if (ferror(r->f))
			return -EIO;
		if (n == 0)
			return 0;
	}
	if (n > 0 && r->buf[n - 1] == '\r')
		n--;
	r->buf[n] = 0;
	r->line++;
	*len = n;
	return 1;
}

int series_next(struct series_reader *r, struct series_row *row)
{
	for (;;) {
		size_t len;
		int k = read_line(r, &len);
		char *comma, *end;

		if (k <= 0)
			return k;
		if (len == 0 || r->buf[0] == '#' || strspn(r->buf, " \t") == len)
			continue;
		len = strlen(r->buf); /* an embedded NUL ends the line */
		comma = strchr(r->buf, ',');
		end = comma ? strchr(comma + 1, ',') : NULL;
		take_field(r->time_field, r->buf, comma ? comma : r->buf + len);
		if (comma)
			take_field(r->value_field, comma + 1, end ? end : r->buf + len);
		else
			r->value_field[0] = 0;
		row->time_ok = series_parse_time(r->time_field, &row->t) == 0;
		if (!row->time_ok)
			row->t = 0;
		if (!row->time_ok && !r->content_seen) {
			r->content_seen = r->header_seen = true;
			continue;
		}
		r->content_seen = true;
		row->value = parse_value(r->value_field);
		row->value_ok = isfinite(row->value);
		row->time_text = r->time_field;
		row->value_text = r->value_field;
		row->line = r->line;
		return 1;
	}
}
