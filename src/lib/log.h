/* Logging to stderr. Libraries return errors; the command or the agent
 * logs once where an error surfaces. Messages: lower case, no full stop,
 * values quoted: log_error_errno(r, "cannot open '%s'", path). */
#pragma once

#include <stdarg.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_set_level(enum log_level level);
/* Prefix each line with an ISO-8601 time (the agent does, commands do not). */
void log_set_timestamps(int on);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_msgv(enum log_level level, const char *fmt, va_list ap);

/* Logs "fmt: err_str(r)" and returns r (negative), for `return log_...;`. */
int log_errno(enum log_level level, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_error_errno(r, ...) log_errno(LOG_LEVEL_ERROR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_errno(LOG_LEVEL_WARNING, (r), __VA_ARGS__)
