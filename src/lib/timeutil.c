#include "lib/timeutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/cleanup.h"

static usec_t now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / 1000;
}

usec_t now_realtime(void)
{
	return now(CLOCK_REALTIME);
}

usec_t now_monotonic(void)
{
	return now(CLOCK_MONOTONIC);
}

static const struct unit {
	const char *name;
	usec_t usec;
} duration_units[] = {
	/* Longest names first, so "ms" is not read as "m" followed by "s". */
	{ "us", 1 },
	{ "ms", USEC_PER_MSEC },
	{ "s", USEC_PER_SEC },
	{ "m", USEC_PER_MINUTE },
	{ "h", USEC_PER_HOUR },
	{ "d", USEC_PER_DAY },
	{ "w", USEC_PER_WEEK },
	{ "y", USEC_PER_YEAR },
};

int duration_parse(const char *s, usec_t *ret)
{
	double total = 0;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;
	while (*p) {
		const struct unit *unit = NULL;
		char *end;
		double v;

		if (*p == '-' || *p == '+' || *p == ' ')
			return -EINVAL;
		errno = 0;
		v = strtod(p, &end);
		if (end == p || errno || !isfinite(v) || v < 0)
			return -EINVAL;
		p = end;
		for (size_t i = 0; i < ELEMENTSOF(duration_units); i++) {
			size_t n = strlen(duration_units[i].name);

			if (strncmp(p, duration_units[i].name, n) == 0 &&
			    (!unit || n > strlen(unit->name)))
				unit = &duration_units[i];
		}
		if (!unit)
			return -EINVAL;
		p += strlen(unit->name);
		total += v * (double)unit->usec;
		if (total > 1e18)
			return -ERANGE;
	}
	*ret = (usec_t)llround(total);
	return 0;
}

const char *duration_format(usec_t d, char *out, size_t size)
{
	static const struct unit big[] = {
		{ "y", USEC_PER_YEAR }, { "d", USEC_PER_DAY }, { "h", USEC_PER_HOUR },
		{ "m", USEC_PER_MINUTE }, { "s", USEC_PER_SEC },
	};

	/* Under ten seconds, milliseconds matter: a 1.5 s timeout is not "1s". */
	if (d < USEC_PER_SEC || (d < 10 * USEC_PER_SEC && d % USEC_PER_SEC)) {
		if (d % USEC_PER_MSEC == 0 || d >= 10 * USEC_PER_MSEC)
			snprintf(out, size, "%llums", (unsigned long long)(d / USEC_PER_MSEC));
		else
			snprintf(out, size, "%lluus", (unsigned long long)d);
		return out;
	}
	for (size_t i = 0; i < ELEMENTSOF(big); i++) {
		usec_t whole = d / big[i].usec, rest;

		if (whole == 0)
			continue;
		rest = i + 1 < ELEMENTSOF(big) ? (d % big[i].usec) / big[i + 1].usec : 0;
		if (rest)
			snprintf(out, size, "%llu%s%llu%s", (unsigned long long)whole, big[i].name,
				 (unsigned long long)rest, big[i + 1].name);
		else
			snprintf(out, size, "%llu%s", (unsigned long long)whole, big[i].name);
		return out;
	}
	snprintf(out, size, "0s");
	return out;
}

int size_parse(const char *s, uint64_t *ret)
{
	static const char units[] = "KMGTPE";
	char *end;
	double v, mult = 1;

	if (!s || !*s || *s == '-' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v < 0)
		return -EINVAL;
	if (*end) {
		const char *u = strchr(units, *end);

		if (!u || !*u)
			return -EINVAL;
		for (const char *q = units; q <= u; q++)
			mult *= 1024;
		end++;
		if (*end == 'i')
			end++;
	}
	if (*end == 'B')
		end++;
	if (*end)
		return -EINVAL;
	if (v * mult > 1.8e19)
		return -ERANGE;
	*ret = (uint64_t)(v * mult);
	return 0;
}

const char *size_format(uint64_t bytes, char *out, size_t size)
{
	static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	size_t i = 0;

	while (v >= 1024 && i + 1 < ELEMENTSOF(names)) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(out, size, "%llu B", (unsigned long long)bytes);
	else
		snprintf(out, size, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, names[i]);
	return out;
}

const char *time_format_iso(usec_t t, char *out, size_t size)
{
	time_t secs = (time_t)(t / USEC_PER_SEC);
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}
