/* Time in microseconds, and the human forms operators write in plans:
 * durations ("200ms", "1h30m", "7d") and sizes ("512MiB", "10G"). */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef uint64_t usec_t;

#define USEC_PER_MSEC ((usec_t)1000)
#define USEC_PER_SEC ((usec_t)1000000)
#define USEC_PER_MINUTE (60 * USEC_PER_SEC)
#define USEC_PER_HOUR (60 * USEC_PER_MINUTE)
#define USEC_PER_DAY (24 * USEC_PER_HOUR)
#define USEC_PER_WEEK (7 * USEC_PER_DAY)
#define USEC_PER_YEAR (365 * USEC_PER_DAY)

usec_t now_realtime(void);
usec_t now_monotonic(void);

/* "1h30m", "200ms", "2.5s", "7d", "1w", "1y" (365 days). A bare number is
 * rejected: the unit is part of the meaning. */
int duration_parse(const char *s, usec_t *ret);
/* Shortest readable form with at most two units: "3h10m", "250ms", "0s". */
const char *duration_format(usec_t d, char *out, size_t size);

/* "4096", "10K", "512MiB", "2G" (K/M/G/T in powers of 1024; a B suffix is
 * optional). */
int size_parse(const char *s, uint64_t *ret);
/* "1.5 GiB", "812 B". */
const char *size_format(uint64_t bytes, char *out, size_t size);

/* RFC 3339 in UTC, "2026-11-26T03:48:52Z". */
const char *time_format_iso(usec_t t, char *out, size_t size);
