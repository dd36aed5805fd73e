/* The agent-check responder: a small TCP server that answers each
 * connection with one line of HAProxy's agent-check language, computed
 * from this host's CPU, load and check states ("up 75%\n", "drain\n",
 * "down\n", ...), so bcdr balancers and HAProxy's `agent-check` can
 * weight this host by its free capacity. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct lb_reporter;

enum lb_report_state { LB_REPORT_UP, LB_REPORT_DRAIN, LB_REPORT_MAINT, LB_REPORT_DOWN };

/* The host's state from its checks, asked at each connection on the loop
 * thread (e.g. DOWN while a critical check fails). */
typedef enum lb_report_state (*lb_report_state_fn)(void *userdata);

/* Listens on address:port (address NULL: "0.0.0.0") on base; fn may be
 * NULL (always up). CPU is sampled every second from /proc/stat. */
int lb_reporter_new(struct event_base *base, const char *address, unsigned port,
		    lb_report_state_fn fn, void *userdata, struct lb_reporter **ret);
void lb_reporter_free(struct lb_reporter *r);

/* The free capacity in percent (1..100) from CPU busy fraction and load
 * per CPU (both 0..1+): 100 * (1 - max(cpu, load)), at least 1. */
int lb_report_capacity(double cpu_busy, double load_per_cpu);
/* Writes the line ("up 75%\n") for state and capacity into out. */
int lb_report_format(enum lb_report_state state, int capacity, char *out, size_t size);

/* One reply of an agent, parsed. Fields absent from the line stay -1. */
struct lb_agent_report {
	int state;   /* enum lb_report_state, or -1 */
	int percent; /* 0..100 weight scale, or -1 */
	long maxconn; /* or -1 */
};

/* Parses one agent-check line (at most LB_REPORT_MAX_LINE bytes; words
 * separated by spaces, commas or tabs; unknown words ignored as HAProxy
 * does; "stopped"/"fail" read as down, "ready" as up). -BCDR_ERR_PROTOCOL
 * when nothing in it is understood. */
#define LB_REPORT_MAX_LINE 256
int lb_agent_parse(const char *line, size_t len, struct lb_agent_report *ret);
