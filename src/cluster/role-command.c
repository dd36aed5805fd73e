#include "cluster/role-command.h"

#include <errno.h>
#include <stdio.h>

#include "cluster/vip.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/spawn.h"

#define COMMAND_OUTPUT_MAX 4096u

static void run_argv(struct role_command *cmd, char *const *argv, const char *what)
{
	struct spawn_options so = {
		.argv = argv,
		.envp = cmd->envp,
		.timeout = cmd->timeout,
		.output_max = COMMAND_OUTPUT_MAX,
		.kill_at_once = false,
	};
	struct spawn_result res = {};
	char how[128];
	int r = spawn_run(&so, &res);

	if (r < 0) {
		snprintf(cmd->message, sizeof(cmd->message), "%s '%s' could not run: %s", what,
			 argv[0], err_str(r));
		cmd->ok = false;
	} else if (res.exit_status != 0) {
		snprintf(cmd->message, sizeof(cmd->message), "%s '%s' failed: %s", what, argv[0],
			 spawn_describe(&res, cmd->timeout, how, sizeof(how)));
		cmd->ok = false;
	}
	spawn_result_release(&res);
}

static void run_vip(struct role_command *cmd, bool add)
{
	_cleanup_free_ char *error = NULL;

	if ((add ? vip_add(cmd->vip, &error) : vip_remove(cmd->vip, &error)) < 0) {
		snprintf(cmd->message, sizeof(cmd->message), "%s", error);
		cmd->ok = false;
	}
}

static void *command_main(void *arg)
{
	struct role_command *cmd = arg;

	cmd->ok = true;
	cmd->message[0] = '\0';
	if (cmd->promote) {
		if (cmd->vip)
			run_vip(cmd, true);
		if (cmd->ok && cmd->argv)
			run_argv(cmd, cmd->argv, "promote");
	} else {
		/* the vip first: no new traffic while the service steps down; the
		 * demote command runs even when the vip could not be removed */
		if (cmd->vip)
			run_vip(cmd, false);
		if (cmd->argv) {
			bool vip_ok = cmd->ok;

			cmd->ok = true;
			run_argv(cmd, cmd->argv, "demote");
			cmd->ok = cmd->ok && vip_ok;
		}
	}
	__atomic_store_n(&cmd->done, true, __ATOMIC_RELEASE);
	return NULL;
}

int role_command_start(struct role_command *cmd, bool promote, char **argv, usec_t timeout,
		       const struct cluster_vip *vip)
{
	cmd->promote = promote;
	cmd->argv = argv;
	cmd->timeout = timeout;
	cmd->vip = vip;
	cmd->done = false;
	if (pthread_create(&cmd->thread, NULL, command_main, cmd) != 0)
		return -EAGAIN;
	cmd->running = true;
	return 0;
}

bool role_command_finished(struct role_command *cmd)
{
	if (!cmd->running)
		return true;
	if (!__atomic_load_n(&cmd->done, __ATOMIC_ACQUIRE))
		return false;
	pthread_join(cmd->thread, NULL);
	cmd->running = false;
	return true;
}
