#include "agent/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/hostport.h"
#include "lib/secret.h"

struct agent_client {
	char *url;
	char *token;
	bool (*abort)(void *userdata);
	void *abort_userdata;
};

void agent_client_free(struct agent_client *c)
{
	if (!c)
		return;
	free(c->url);
	secret_free(c->token);
	free(c);
}

int agent_client_new(const struct agent_settings *settings, const char *url,
		     const char *token_file, struct agent_client **ret, char **ret_error)
{
	_cleanup_(agent_client_freep) struct agent_client *c = calloc(1, sizeof(*c));
	_cleanup_free_ char *path = NULL;
	_cleanup_secret_ char *data = NULL;
	char why[8400];
	size_t len;
	int r;

	if (!c)
		return -ENOMEM;
	if (url) {
		if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
			if (asprintf(&c->url, "http://%s", url) < 0)
				return -ENOMEM;
		} else if (!(c->url = strdup(url))) {
			return -ENOMEM;
		}
		len = strlen(c->url);
		while (len > 0 && c->url[len - 1] == '/')
			c->url[--len] = '\0';
	} else {
		char host[256];
		uint16_t port;

		r = hostport_split(settings->listen, strlen(settings->listen), 0, host, sizeof(host),
				   &port);
		if (r < 0)
			return r;
		/* An agent listening on every address is reached on loopback. */
		if (strcmp(host, "0.0.0.0") == 0)
			snprintf(host, sizeof(host), "127.0.0.1");
		else if (strcmp(host, "::") == 0)
			snprintf(host, sizeof(host), "::1");
		if (asprintf(&c->url, strchr(host, ':') ? "http://[%s]:%u" : "http://%s:%u", host,
			     port) < 0)
			return -ENOMEM;
	}
	path = token_file ? strdup(token_file) : agent_token_path(settings);
	if (!path)
		return -ENOMEM;
	r = agent_token_read(path, &data, why, sizeof(why));
	if (r >= 0) {
		c->token = TAKE_PTR(data);
	} else if (r != -ENOENT || token_file || settings->token_file) {
		/* Only the default token may be missing: reads on loopback need none. */
		if (ret_error && !(*ret_error = strdup(why)))
			return -ENOMEM;
		return r;
	}
	*ret = TAKE_PTR(c);
	return 0;
}

const char *agent_client_url(const struct agent_client *c)
{
	return c->url;
}

static size_t on_data(char *ptr, size_t size, size_t n, void *userdata)
{
	struct buf *b = userdata;

	if (buf_append(b, ptr, size * n) < 0)
		return 0; /* over CLIENT_MAX_RESPONSE: curl stops */
	return size * n;
}

void agent_client_set_abort(struct agent_client *c, bool (*abort)(void *userdata),
			    void *userdata)
{
	c->abort = abort;
	c->abort_userdata = userdata;
}

/* libcurl calls this about once a second while a call waits. */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const struct agent_client *c = userdata;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return c->abort(c->abort_userdata) ? 1 : 0;
}

static void curl_cleanupp(CURL **c)
{
	if (*c)
		curl_easy_cleanup(*c);
}

static void slist_freep(struct curl_slist **l)
{
	curl_slist_free_all(*l);
}

int agent_client_call(struct agent_client *c, const char *method, const char *path,
		      const json_t *body, long *ret_status, json_t **ret_json, char **ret_error)
{
	_cleanup_(curl_cleanupp) CURL *curl = curl_easy_init();
	_cleanup_(slist_freep) struct curl_slist *headers = NULL;
	_cleanup_free_ char *url = NULL, *auth = NULL, *text = NULL;
	_cleanup_(buf_release) struct buf resp;
	char errbuf[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode rc;

	buf_init(&resp, CLIENT_MAX_RESPONSE);
	if (!curl || asprintf(&url, "%s%s", c->url, path) < 0)
		return -ENOMEM;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	/* The agent is local or named explicitly: never through a proxy. */
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	if (c->abort) {
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, c);
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	}
	if (c->token) {
		if (asprintf(&auth, "Authorization: Bearer %s", c->token) < 0)
			return -ENOMEM;
		headers = curl_slist_append(headers, auth);
	}
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text)
			return -ENOMEM;
		headers = curl_slist_append(headers, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "{}");
	}
	if (headers)
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	rc = curl_easy_perform(curl);
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		return -ECANCELED;
	if (rc != CURLE_OK) {
		if (ret_error && asprintf(ret_error, "cannot reach the agent at '%s': %s (is `bcdr "
					  "agent` running? see --agent)", c->url,
					  errbuf[0] ? errbuf : curl_easy_strerror(rc)) < 0)
			*ret_error = NULL;
		return rc == CURLE_WRITE_ERROR ? -BCDR_ERR_TOO_BIG : -ECONNREFUSED;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	*ret_status = status;
	*ret_json = resp.len ? json_loadb(resp.data, resp.len, 0, NULL) : NULL;
	return 0;
}
