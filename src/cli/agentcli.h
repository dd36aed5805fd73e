/* Shared by the commands that talk to a running agent (status, checks,
 * events, silence, act): the --agent and --token-file options, the
 * connection, and printing the API's errors. */
#pragma once

#include <jansson.h>

#include "cli/cli.h"
#include "cli/options.h"

struct agent_client;

/* The rows of --agent and --token-file, for a command's option table. */
#define AGENTCLI_OPTIONS(ac)                                                                \
	{ CLI_COLUMN(24) },                                                                 \
	{ CLI_STRING("agent", 0, &(ac)->url, "URL",                                         \
		     "the agent (default: agent.listen of the plan,\n"                      \
		     "else 127.0.0.1:8470)") },                                             \
	{ CLI_STRING("token-file", 0, &(ac)->token_file, "FILE",                            \
		     "the API token (default: agent.token_file, else\n<state_dir>/token)") }

struct agentcli {
	const char *url;
	const char *token_file;
	struct agent_client *client;
};

/* Loads the plan if there is one and makes the client; 0 or an exit code. */
int agentcli_connect(struct cli *cli, struct agentcli *ac);
void agentcli_release(struct agentcli *ac);

/* Calls the API; on a 2xx answer returns 0 with its JSON in *ret (may be
 * NULL when ret is NULL); else logs the agent's error and returns an exit
 * code (1; 2 for a 400 the user caused). */
int agentcli_call(struct agentcli *ac, const char *method, const char *path, const json_t *body,
		  json_t **ret);

/* For a command with no options of its own: parses the agent and common
 * options; CLI_CONTINUE with optind at the first operand, or an exit code. */
int agentcli_parse(struct cli *cli, struct agentcli *ac, int argc, char **argv);

/* agentcli_connect() then agentcli_call(). */
int agentcli_request(struct cli *cli, struct agentcli *ac, const char *method, const char *path,
		     const json_t *body, json_t **ret);
/* All of a command on one named thing without options of its own: parses,
 * expects exactly one operand (else usage_error, "reset takes one action
 * NAME"), calls method on path_fmt with its one "%s" replaced by the
 * URI-encoded operand ("/api/v1/actions/%s/reset"). CLI_CONTINUE when it
 * was done (optind at the operand), or an exit code (EXIT_OK after --help). */
int agentcli_name_command(struct cli *cli, struct agentcli *ac, int argc, char **argv,
			  const char *usage_error, const char *method, const char *path_fmt);

/* All of a listing command without options of its own: parses, GETs path,
 * prints the answer with --json. CLI_CONTINUE with *ret (to print as text),
 * or an exit code (EXIT_OK when --json printed it). */
int agentcli_get_list(struct cli *cli, struct agentcli *ac, int argc, char **argv,
		      const char *path, json_t **ret);

/* "3h10m ago" style age of an RFC 3339 time, into out. */
const char *agentcli_age(const char *rfc3339, char *out, size_t size);
