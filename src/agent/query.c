#include "agent/query.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/hex.h"

static int digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)**p))
			return -EINVAL;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*ret = v;
	return 0;
}

static int expect(const char **p, char c)
{
	if (**p != c && !(c == 'T' && (**p == 't' || **p == ' ')))
		return -EINVAL;
	(*p)++;
	return 0;
}

int query_parse_rfc3339(const char *s, usec_t *ret)
{
	struct tm tm = {};
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	usec_t frac = 0, scale = USEC_PER_SEC;
	const char *p = s;
	time_t t;

	if (!s || strlen(s) > 64)
		return -EINVAL;
	if (digits(&p, 4, &y) < 0 || expect(&p, '-') < 0 || digits(&p, 2, &mo) < 0 ||
	    expect(&p, '-') < 0 || digits(&p, 2, &d) < 0 || expect(&p, 'T') < 0 ||
	    digits(&p, 2, &h) < 0 || expect(&p, ':') < 0 || digits(&p, 2, &mi) < 0 ||
	    expect(&p, ':') < 0 || digits(&p, 2, &sec) < 0)
		return -EINVAL;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		while (isdigit((unsigned char)*p)) {
			if (scale > 1) {
				scale /= 10;
				frac += (usec_t)(*p - '0') * scale;
			}
			p++;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		p++;
		if (digits(&p, 2, &oh) < 0 || expect(&p, ':') < 0 || digits(&p, 2, &om) < 0)
			return -EINVAL;
		if (oh > 23 || om > 59)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (*p || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	t -= sign * (oh * 3600 + om * 60);
	if (t < 0)
		return -EINVAL;
	*ret = (usec_t)t * USEC_PER_SEC + frac;
	return 0;
}

int query_parse_since(const char *s, usec_t now, usec_t *ret)
{
	usec_t ago;
	char *end;

	if (!s || !*s)
		return -EINVAL;
	if (strchr(s, 'T') || strchr(s, 't'))
		return query_parse_rfc3339(s, ret);
	if (isdigit((unsigned char)s[0])) {
		unsigned long long secs;

		errno = 0;
		secs = strtoull(s, &end, 10);
		if (!errno && !*end) {
			if (secs > 100ull * 365 * 86400)
				return -ERANGE;
			ago = (usec_t)secs * USEC_PER_SEC;
			*ret = now > ago ? now - ago : 0;
			return 0;
		}
	}
	if (duration_parse(s, &ago) < 0)
		return -EINVAL;
	*ret = now > ago ? now - ago : 0;
	return 0;
}

/* Decodes %XX and '+' of [s, s+len) into a new string; NUL bytes refused. */
static int decode(const char *s, size_t len, char **ret)
{
	char *out = malloc(len + 1), *o = out;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (i + 2 >= len) {
				free(out);
				return -EINVAL;
			}
			hi = hex_digit(s[i + 1]);
			lo = hex_digit(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return -EINVAL;
			}
			*o++ = (char)(hi * 16 + lo);
			i += 2;
		} else if (s[i] == '+') {
			*o++ = ' ';
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	*ret = out;
	return 0;
}

void query_release(struct query *q)
{
	for (size_t i = 0; i < q->n; i++) {
		free(q->params[i].key);
		free(q->params[i].value);
	}
	q->n = 0;
}

int query_parse(const char *s, const char *const *allowed, struct query *ret)
{
	struct query q = {};
	const char *p = s;
	int r;

	if (!s || !*s) {
		*ret = q;
		return 0;
	}
	if (strlen(s) > QUERY_MAX_LEN)
		return -BCDR_ERR_TOO_BIG;
	while (*p) {
		const char *amp = strchrnul(p, '&');
		const char *eq = memchr(p, '=', (size_t)(amp - p));
		struct query_param *qp;
		bool known = false;

		if (amp == p) { /* "a=1&&b=2": tolerate empty pieces */
			p++;
			continue;
		}
		if (q.n == QUERY_MAX_PARAMS) {
			query_release(&q);
			return -BCDR_ERR_TOO_BIG;
		}
		qp = &q.params[q.n];
		r = decode(p, (size_t)((eq ? eq : amp) - p), &qp->key);
		if (r >= 0)
			r = eq ? decode(eq + 1, (size_t)(amp - eq - 1), &qp->value)
			       : ((qp->value = strdup("")) ? 0 : -ENOMEM);
		if (r < 0) {
			free(qp->key);
			qp->key = NULL;
			query_release(&q);
			return r;
		}
		q.n++;
		for (const char *const *a = allowed; a && *a; a++)
			known = known || strcmp(*a, qp->key) == 0;
		for (size_t i = 0; i + 1 < q.n; i++)
			if (strcmp(q.params[i].key, qp->key) == 0)
				known = false; /* a key given twice is ambiguous */
		if (!known) {
			query_release(&q);
			return -EINVAL;
		}
		p = *amp ? amp + 1 : amp;
	}
	*ret = q;
	return 0;
}

const char *query_get(const struct query *q, const char *key)
{
	for (size_t i = 0; i < q->n; i++)
		if (strcmp(q->params[i].key, key) == 0)
			return q->params[i].value;
	return NULL;
}
