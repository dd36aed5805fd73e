#include "agent/settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/secret.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct agent_settings *, agent_settings_free)

static int parse_listen(struct conf_ctx *ctx, const struct conf_node *node, void *field)
{
	char **listen = field;
	char host[256];
	uint16_t port;
	int r;

	if (node->type != CONF_NODE_SCALAR)
		return conf_errorf(ctx, node, "listen is host:port, such as 127.0.0.1:8470");
	r = agent_listen_split(node->value, host, sizeof(host), &port);
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
	*ret = TAKE_PTR(s);
	return 0;
}

int agent_listen_split(const char *listen, char *host, size_t size, uint16_t *ret_port)
{
	const char *colon, *h = listen;
	size_t hlen;
	char *end;
	long port;

	if (!listen || !*listen)
		return -EINVAL;
	if (*listen == '[') {
		const char *close = strchr(listen, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		h = listen + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(listen, ':');
		if (!colon || memchr(listen, ':', (size_t)(colon - listen)))
			return -EINVAL;
		hlen = (size_t)(colon - listen);
	}
	if (hlen == 0 || hlen >= size)
		return -EINVAL;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*ret_port = (uint16_t)port;
	return 0;
}

bool agent_host_is_loopback(const char *host)
{
	return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
	       strcmp(host, "localhost") == 0;
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

char *agent_token_path(const struct agent_settings *s)
{
	char *p = NULL;

	if (s->token_file)
		return strdup(s->token_file);
	if (asprintf(&p, "%s/token", s->state_dir) < 0)
		return NULL;
	return p;
}
