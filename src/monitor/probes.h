/* Inside the monitor engine: the per-check probe state and one function per
 * probe kind, called by probe_run(). Not part of the seam (monitor.h). */
#pragma once

#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/http-client.h"
#include "monitor/monitor.h"

/* Matches on replies, bodies and output: extended syntax, and ^ and $ at
 * line ends, as grep has them. */
#define PROBE_REGEX_FLAGS (REG_EXTENDED | REG_NOSUB | REG_NEWLINE)

struct probe_state {
	/* The previous sample of counters, for rates (cpu, net, io, process cpu). */
	bool have_prev;
	usec_t prev_time; /* monotonic */
	uint64_t prev[4];
	/* process: the process seen last, to tell a restart */
	int pid;
	uint64_t pid_start;
	/* file: contents and what identifies them, for checksum changes */
	bool have_sum;
	unsigned char sum[32];
	uint64_t sum_size, sum_ino;
	int64_t sum_mtime_ns, sum_ctime_ns;
	/* http: the client or the curl handle, kept for connection (and TLS
	 * session) reuse */
	struct http_client *http;
	void *curl;
};

/* Writes the value and its unit. */
void probe_set_value(struct probe_result *res, double value, const char *unit);
/* Formats the message. */
void probe_message(struct probe_result *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Sets the probe's own verdict and the message, for failures. */
void probe_fail(struct probe_result *res, enum check_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Microseconds left before deadline (monotonic), 0 when passed. */
usec_t probe_remaining(usec_t deadline);
/* Sleeps for d, but not past the deadline. */
void probe_sleep(usec_t d, usec_t deadline);
/* Copies at most max bytes of s into out as printable text (others as '.'). */
void probe_printable(const char *s, size_t len, char *out, size_t max);

int probe_system(const struct check_def *def, struct probe_state *ps, usec_t deadline,
		 struct probe_result *res);
int probe_process(const struct check_def *def, struct probe_state *ps, usec_t deadline,
		  struct probe_result *res);
int probe_tcp(const struct check_def *def, usec_t deadline, struct probe_result *res);
int probe_http(const struct check_def *def, struct probe_state *ps, usec_t deadline,
	       struct probe_result *res);
int probe_file(const struct check_def *def, struct probe_state *ps, usec_t deadline,
	       struct probe_result *res);
int probe_program(const struct check_def *def, usec_t deadline, struct probe_result *res);
void probe_http_state_free(struct probe_state *ps);
