/* `bcdr agent`: what the rest of bcdr sees of the agent. Everything else
 * under src/agent is the agent's own (daemon.h and the module headers). */
#pragma once

#include <stdbool.h>

struct plan;

struct agent_options {
	const char *plan_path;
	bool foreground_banner; /* print where the API listens (make run) */
};

/* Runs the agent on plan (taken: the agent owns and frees it; opts->plan_path
 * is where SIGHUP reloads it from) until SIGTERM/SIGINT; returns an exit code. */
int agent_run(struct plan *plan, const struct agent_options *opts);
