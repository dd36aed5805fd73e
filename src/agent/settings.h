/* The plan's agent: section: where the daemon listens, where it keeps its
 * state, how often checks run by default. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/conf.h"
#include "lib/timeutil.h"

#define AGENT_DEFAULT_LISTEN "127.0.0.1:8470"
#define AGENT_DEFAULT_STATE_DIR "/var/lib/bcdr"
#define AGENT_STATE_DB "state.db" /* in state_dir */
#define AGENT_DEFAULT_INTERVAL (10 * USEC_PER_SEC)
#define AGENT_DEFAULT_RETENTION (30 * USEC_PER_DAY)
#define AGENT_DEFAULT_API_MAX_CONNECTIONS 128

struct agent_settings {
	char *listen;       /* "host:port"; host may be [v6] */
	char *state_dir;
	usec_t interval;    /* default interval of a check without its own */
	char *token_file;   /* NULL: <state_dir>/token, created on first start */
	int64_t lb_report_port; /* 0: no HAProxy agent-check responder */
	usec_t retention;   /* how long samples and events are kept */
	char **api_hosts;   /* more names the API's Host header may carry */
	uint64_t api_max_connections; /* open API connections at once; more are closed */
};

/* Defaults for a plan without an agent: section (free with agent_settings_free). */
int agent_settings_new(struct agent_settings **ret);
void agent_settings_free(struct agent_settings *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct agent_settings *, agent_settings_free)

/* Parses the agent: map into *ret. */
int agent_settings_parse(struct conf_ctx *ctx, const struct conf_node *node,
			 struct agent_settings **ret);

/* <state_dir>/state.db, where the agent keeps its tables (a heap string);
 * NULL for no settings (a plan without agent:) or no memory. */
char *agent_state_db_path(const struct agent_settings *s);
/* The token file the agent uses: token_file, else <state_dir>/token.
 * Returns a heap string. */
char *agent_token_path(const struct agent_settings *s);
/* Reads the API token in path (lib/secret.h: mode 600, bounded, one
 * trailing newline stripped), at least AGENT_TOKEN_MIN characters, into
 * *ret (secret_free() it). On failure why says what went wrong, naming the
 * file (chmod 600 for one others may read); -ENOENT when it is missing. */
#define AGENT_TOKEN_MIN 16
int agent_token_read(const char *path, char **ret, char *why, size_t why_size);
