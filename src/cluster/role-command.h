/* A service's promote or demote, run on a thread of its own so that a slow
 * command never delays the engine's lease renewals: the VIP added before
 * the promote command, removed before the demote command. */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include "cluster/plan.h"
#include "lib/timeutil.h"

struct role_command {
	pthread_t thread;
	bool running; /* started, not joined yet (the engine's thread only) */
	bool done;    /* atomic: set by the command's thread at its end */
	bool promote;
	bool ok;
	char message[256]; /* what failed, when !ok */
	char **argv;       /* borrowed from the plan; NULL: none */
	char **envp;       /* owned; set by the caller before the start */
	usec_t timeout;
	const struct cluster_vip *vip; /* NULL: none */
};

/* Starts cmd (its envp set) on a thread: -EAGAIN when none can start. */
int role_command_start(struct role_command *cmd, bool promote, char **argv, usec_t timeout,
		       const struct cluster_vip *vip);
/* Joins a finished command; false while it runs. */
bool role_command_finished(struct role_command *cmd);
