#include "agent/settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/hostguard.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/hostport.h"
#include "lib/secret.h"
#include "lib/strv.h"

static int parse_listen(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	char **listen = field;
	char host[256];
	uint16_t port;
	int r;

	if (node->type != CONF_NODE_SCALAR)
		return conf_errorf(ctx, node, "listen is host:port, such as 127.0.0.1:8470");
	r = hostport_split(node->value, strlen(node->value), 0, host, sizeof(host), &port);
	if (r < 0)
		return conf_errorf(ctx, node, "invalid listen address '%s': expected host:port, "
				   "such as 127.0.0.1:8470 or [::1]:8470", node->value);
	free(*listen);
	*listen = strdup(node->value);
	return *listen ? 0 : -ENOMEM;
}

static const struct conf_field settings_fields[] = {
	CONF_CUSTOM_FIELD("listen", struct agent_settings, listen, 0, parse_listen),
	CONF_FIELD("state_dir", CONF_STRING, struct agent_settings, state_dir, 0),
	CONF_RANGE("interval", CONF_DURATION, struct agent_settings, interval, 0, 0.1, 86400),
	CONF_FIELD("token_file", CONF_STRING, struct agent_settings, token_file, 0),
	CONF_RANGE("lb_report_port", CONF_INT, struct agent_settings, lb_report_port, 0, 1, 65535),
	CONF_RANGE("retention", CONF_DURATION, struct agent_settings, retention, 0, 3600,
		   10 * 365 * 86400.0),
	CONF_FIELD("api_hosts", CONF_STRV, struct agent_settings, api_hosts, 0),
	CONF_RANGE("api_max_connections", CONF_UINT, struct agent_settings, api_max_connections,
		   0, 1, 100000),
	{}
};

int agent_settings_new(struct agent_settings **ret)
{
	_cleanup_(agent_settings_freep) struct agent_settings *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->listen = strdup(AGENT_DEFAULT_LISTEN);
	s->state_dir = strdup(AGENT_DEFAULT_STATE_DIR);
	if (!s->listen || !s->state_dir)
		return -ENOMEM;
	s->interval = AGENT_DEFAULT_INTERVAL;
	s->retention = AGENT_DEFAULT_RETENTION;
	s->api_max_connections = AGENT_DEFAULT_API_MAX_CONNECTIONS;
	*ret = TAKE_PTR(s);
	return 0;
}

void agent_settings_free(struct agent_settings *s)
{
	if (!s)
		return;
	free(s->listen);
	free(s->state_dir);
	free(s->token_file);
	strv_free(s->api_hosts);
	free(s);
}

int agent_settings_parse(struct conf_ctx *ctx, const struct conf_node *node,
			 struct agent_settings **ret)
{
	_cleanup_(agent_settings_freep) struct agent_settings *s = NULL;
	int r;

	r = conf_expect(ctx, node, CONF_NODE_MAP, "agent");
	if (r < 0)
		return r;
	r = agent_settings_new(&s);
	if (r < 0)
		return r;
	r = conf_parse_fields(ctx, node, settings_fields, s);
	if (r < 0)
		return r;
	if (!s->state_dir || !*s->state_dir)
		return conf_errorf(ctx, conf_map_get(node, "state_dir"), "state_dir is empty");
	for (size_t i = 0; s->api_hosts && s->api_hosts[i]; i++)
		if (!host_guard_name_valid(s->api_hosts[i]))
			return conf_errorf(ctx, conf_map_get(node, "api_hosts"),
					   "api_hosts: '%s' is not a host name (no port, no scheme)",
					   s->api_hosts[i]);
	*ret = TAKE_PTR(s);
	return 0;
}

int agent_token_read(const char *path, char **ret, char *why, size_t why_size)
{
	_cleanup_secret_ char *token = NULL;
	int r = secret_read_file(path, 4096, &token);

	if (r < 0) {
		secret_message(r, "API token", path, why, why_size);
		return r;
	}
	if (strlen(token) < AGENT_TOKEN_MIN) {
		snprintf(why, why_size, "the API token in '%s' is shorter than %d characters", path,
			 AGENT_TOKEN_MIN);
		return -EINVAL;
	}
	*ret = TAKE_PTR(token);
	return 0;
}

char *agent_state_db_path(const struct agent_settings *s)
{
	char *p = NULL;

	if (!s || !s->state_dir || asprintf(&p, "%s/" AGENT_STATE_DB, s->state_dir) < 0)
		return NULL;
	return p;
}

char *agent_token_path(const struct agent_settings *s)
{
	char *p = NULL;

	if (s->token_file)
		return strdup(s->token_file);
	if (asprintf(&p, "%s/token", s->state_dir) < 0)
		return NULL;
	return p;
}
