#include "lib/log.h"

#include <stdio.h>
#include <time.h>

#include "lib/err.h"

static enum log_level max_level = LOG_LEVEL_INFO;
static int timestamps;

void log_set_level(enum log_level level)
{
	max_level = level;
}

void log_set_timestamps(int on)
{
	timestamps = on;
}

static void log_prefix(enum log_level level)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	if (timestamps) {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(stderr, "%s ", when);
	}
	/* Commands print info lines bare, like git; the rest say what they are. */
	if (level != LOG_LEVEL_INFO || timestamps)
		fprintf(stderr, "%s: ", names[level]);
}

void log_msgv(enum log_level level, const char *fmt, va_list ap)
{
	if (level > max_level)
		return;
	log_prefix(level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msgv(level, fmt, ap);
	va_end(ap);
}

int log_errno(enum log_level level, int r, const char *fmt, ...)
{
	va_list ap;

	if (level <= max_level) {
		log_prefix(level);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fprintf(stderr, ": %s\n", err_str(r));
	}
	return r < 0 ? r : -r;
}
