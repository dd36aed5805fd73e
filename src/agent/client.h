/* The CLI's side of the API: `bcdr status`, `checks`, `events`, `silence`,
 * `act` talk to a running agent over HTTP (libcurl). The address and token
 * come from the plan's agent: section, or --agent URL / --token-file. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "agent/settings.h"
#include "lib/cleanup.h"

#define CLIENT_MAX_RESPONSE (32u << 20)

struct agent_client;

/* url: "http://host:port" (NULL: from settings->listen); token_file: NULL
 * from the settings (a missing default token file is no error: reads on
 * loopback need none). */
int agent_client_new(const struct agent_settings *settings, const char *url,
		     const char *token_file, struct agent_client **ret, char **ret_error);
void agent_client_free(struct agent_client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct agent_client *, agent_client_free)

/* method "GET"/"POST"/"DELETE", path such as "/api/v1/status?x=1", body
 * borrowed (may be NULL). On an HTTP answer returns 0 with its status and
 * its JSON (NULL when the body is not JSON); on a transport failure
 * returns < 0 and *ret_error says what went wrong (free() it). */
int agent_client_call(struct agent_client *c, const char *method, const char *path,
		      const json_t *body, long *ret_status, json_t **ret_json, char **ret_error);

/* While a call waits (a long poll), abort(userdata) is asked about once a
 * second; true ends the call with -ECANCELED. */
void agent_client_set_abort(struct agent_client *c, bool (*abort)(void *userdata),
			    void *userdata);

/* The agent's base URL, for messages. */
const char *agent_client_url(const struct agent_client *c);
