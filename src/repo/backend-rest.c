/* rest:http(s)://HOST:PORT/PATH: restic's REST protocol v2 (restic's
 * doc/100_references.rst, "REST Backend"), as served by restic's
 * rest-server and `rclone serve restic`. Objects are {path}/{type}/{name}
 * with the same names as on disk (the server keeps data/xx/ itself);
 * listing is GET {path}/{type}/ with the v2 Accept header, one JSON array
 * of {name, size}. Packs upload in the background on the connections
 * (repo/remote.h); any other object waits for them first, so an index or
 * a snapshot is never stored before the packs it names. */
#include "repo/backend-rest.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "repo/remote.h"

#define REST_V2 "application/vnd.x.restic.rest.v2"
/* A listing of a million packs is about 100 MB of JSON. */
#define REST_MAX_LIST (256u << 20)

struct rest {
	struct backend b;
	struct remote *rm;
	char *base; /* scheme://host[:port][/path], no trailing '/' */
	char *display;
};

static bool name_ok(const char *name, size_t len)
{
	if (len == 0 || len > 128)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '-' || c == '_' || (c == '.' && i > 0)))
			return false;
	}
	return true;
}

int rest_list_parse(const uint8_t *data, size_t len,
		    int (*fn)(const char *name, uint64_t size, void *userdata), void *userdata,
		    bool *ret_v1)
{
	json_error_t err;
	json_t *j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &err);
	size_t i;
	json_t *e;
	int r = 0;

	*ret_v1 = false;
	if (!j)
		return -BCDR_ERR_PROTOCOL;
	if (!json_is_array(j)) {
		json_decref(j);
		return -BCDR_ERR_PROTOCOL;
	}
	json_array_foreach(j, i, e) {
		const char *name;
		json_t *size;

		if (json_is_string(e)) { /* version 1: names only */
			*ret_v1 = true;
			name = json_string_value(e);
			if (!name_ok(name, json_string_length(e))) {
				r = -BCDR_ERR_PROTOCOL;
				break;
			}
			r = fn(name, UINT64_MAX, userdata);
		} else {
			json_t *n = json_object_get(e, "name");

			size = json_object_get(e, "size");
			if (!json_is_string(n) || !json_is_integer(size) ||
			    json_integer_value(size) < 0 ||
			    !name_ok(json_string_value(n), json_string_length(n))) {
				r = -BCDR_ERR_PROTOCOL;
				break;
			}
			r = fn(json_string_value(n), (uint64_t)json_integer_value(size), userdata);
		}
		if (r != 0)
			break;
	}
	json_decref(j);
	return r;
}

static int object_url(struct rest *rs, const char *name, char *out, size_t size)
{
	const char *slash = strchr(name, '/');
	int n;

	if (!slash ? strcmp(name, "config") != 0
		   : !name_ok(slash + 1, strlen(slash + 1)) || !name_ok(name, slash - name))
		return -EINVAL;
	n = snprintf(out, size, "%s/%s", rs->base, name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* The error for a reply that is not 2xx, with remote_error() set. */
static int status_error(struct rest *rs, const struct remote_request *rq, const char *name)
{
	long st = rq->status;

	if (st == 404) {
		remote_set_error(-ENOENT, "'%s' is not in '%s'", name, rs->display);
		return -ENOENT;
	}
	if (st == 401) {
		remote_set_error(-EACCES, "'%s' refused the credentials (401): check the user and "
				 "password in the location", rs->display);
		return -EACCES;
	}
	if (st == 403 && strcmp(rq->method, "DELETE") == 0) {
		remote_set_error(-EPERM, "'%s' refuses to delete '%s' (403): the server is "
				 "append-only or these credentials may only add; forget and prune "
				 "need credentials that may delete", rs->display, name);
		return -EPERM;
	}
	if (st == 403) {
		remote_set_error(-EACCES, "'%s' refused access to '%s' (403): check the "
				 "credentials and the server's permissions", rs->display, name);
		return -EACCES;
	}
	remote_set_error(-EIO, "'%s' answered %ld to %s of '%s'", rs->display, st, rq->method,
			 name);
	return -EIO;
}

/* Sends rq to the object name, whose URL is filled in here. */
static int object_request(struct rest *rs, const char *name, struct remote_request *rq)
{
	char url[1024];
	int r = object_url(rs, name, url, sizeof(url));

	if (r < 0)
		return r;
	rq->url = url;
	r = remote_request(rs->rm, rq);
	rq->url = NULL;
	return r;
}

static int rest_get(struct backend *b, const char *name, size_t max, uint8_t **ret,
		    size_t *ret_len)
{
	struct rest *rs = (struct rest *)b;
	struct remote_request rq = { .method = "GET", .max_reply = max };
	int r = object_request(rs, name, &rq);

	if (r < 0)
		return r;
	if (rq.status != 200) {
		r = status_error(rs, &rq, name);
		remote_request_release(&rq);
		return r;
	}
	*ret = TAKE_PTR(rq.reply);
	*ret_len = rq.reply_len;
	return 0;
}

static int rest_get_upto(struct backend *b, const char *name, uint64_t offset, size_t need,
			 size_t len, uint8_t *buf, size_t *ret_len)
{
	struct rest *rs = (struct rest *)b;
	struct remote_request rq = {
		.method = "GET", .ranged = true, .offset = offset, .length = len, .need = need,
		.into = buf,
	};
	char url[1024];
	int r = object_url(rs, name, url, sizeof(url));

	*ret_len = 0;
	if (r < 0)
		return r;
	if (len == 0)
		return 0;
	rq.url = url;
	r = remote_request(rs->rm, &rq);
	if (r < 0)
		return r;
	if (rq.status == 416) {
		remote_request_release(&rq);
		return -BCDR_ERR_CORRUPT; /* the object is shorter */
	}
	if (rq.status != 206 && !(rq.status == 200 && offset == 0)) {
		r = status_error(rs, &rq, name);
		remote_request_release(&rq);
		return r;
	}
	*ret_len = rq.got;
	return 0;
}

static int rest_get_range(struct backend *b, const char *name, uint64_t offset, size_t len,
			  uint8_t *buf)
{
	size_t got;

	return rest_get_upto(b, name, offset, len, len, buf, &got);
}

static int rest_get_stream(struct backend *b, const char *name, uint64_t offset, uint64_t len,
			   backend_stream_fn fn, void *ctx)
{
	struct rest *rs = (struct rest *)b;
	struct remote_request rq = {
		.method = "GET", .ranged = true, .offset = offset, .length = (size_t)len,
		.stream = fn, .stream_ctx = ctx,
	};
	char url[1024];
	int r = object_url(rs, name, url, sizeof(url));

	if (r < 0 || len == 0)
		return r;
	rq.url = url;
	if ((r = remote_request(rs->rm, &rq)) < 0)
		return r;
	if (rq.status / 100 != 2) {
		r = rq.status == 416 ? -BCDR_ERR_CORRUPT : status_error(rs, &rq, name);
		remote_request_release(&rq);
	}
	return r;
}

/* rq on the object name, which must answer 2xx; rq is released. */
static int request_2xx(struct rest *rs, const char *name, struct remote_request *rq)
{
	int r = object_request(rs, name, rq);

	if (r < 0)
		return r;
	if (rq->status / 100 != 2)
		r = status_error(rs, rq, name);
	remote_request_release(rq);
	return r;
}

static int put_now(void *b, const char *name, const void *data, size_t len)
{
	struct remote_request rq = { .method = "POST", .body = data, .body_len = len };

	return request_2xx(b, name, &rq);
}

static int rest_put(struct backend *b, const char *name, const void *data, size_t len)
{
	struct rest *rs = (struct rest *)b;
	int r;

	if (strncmp(name, "data/", 5) == 0)
		return remote_put_async(rs->rm, put_now, rs, name, data, len);
	/* An index or a snapshot names packs: they must be stored first.
	 * Locks do not wait (a lock refresh must not stall behind packs). */
	if (strncmp(name, "locks/", 6) != 0 && (r = remote_flush(rs->rm)) < 0)
		return r;
	return put_now(rs, name, data, len);
}

struct list_ctx {
	struct rest *rs;
	const char *dir;
	int (*fn)(const char *name, uint64_t size, void *userdata);
	void *userdata;
};

static int rest_stat(struct backend *b, const char *name, uint64_t *ret_size);

/* Version 1 gives no sizes: ask for each. */
static int list_v1_entry(const char *name, uint64_t size, void *userdata)
{
	struct list_ctx *l = userdata;
	char full[256];
	int r;

	if (size == UINT64_MAX) {
		snprintf(full, sizeof(full), "%s/%s", l->dir, name);
		r = rest_stat(&l->rs->b, full, &size);
		if (r == -ENOENT)
			return 0; /* removed meanwhile */
		if (r < 0)
			return r;
	}
	return l->fn(name, size, l->userdata);
}

static int rest_list(struct backend *b, const char *dir,
		     int (*fn)(const char *name, uint64_t size, void *userdata), void *userdata)
{
	struct rest *rs = (struct rest *)b;
	struct curl_slist *h = curl_slist_append(NULL, "Accept: " REST_V2);
	struct remote_request rq = { .method = "GET", .headers = h, .max_reply = REST_MAX_LIST };
	struct list_ctx l = { rs, dir, fn, userdata };
	char url[1024];
	bool v1;
	int r;

	if (!h)
		return -ENOMEM;
	if (!name_ok(dir, strlen(dir))) {
		curl_slist_free_all(h);
		return -EINVAL;
	}
	snprintf(url, sizeof(url), "%s/%s/", rs->base, dir);
	rq.url = url;
	r = remote_request(rs->rm, &rq);
	curl_slist_free_all(h);
	if (r < 0)
		return r;
	if (rq.status == 404) { /* an empty directory some servers never made */
		remote_request_release(&rq);
		return 0;
	}
	if (rq.status != 200) {
		r = status_error(rs, &rq, dir);
		remote_request_release(&rq);
		return r;
	}
	r = rest_list_parse(rq.reply, rq.reply_len, list_v1_entry, &l, &v1);
	if (r == -BCDR_ERR_PROTOCOL)
		remote_set_error(r, "'%s' sent a listing of '%s' that is not restic's REST "
				 "protocol: is it a REST server?", rs->display, dir);
	remote_request_release(&rq);
	return r < 0 ? r : 0;
}

static int rest_remove(struct backend *b, const char *name)
{
	struct remote_request rq = { .method = "DELETE" };

	return request_2xx((struct rest *)b, name, &rq);
}

static int rest_stat(struct backend *b, const char *name, uint64_t *ret_size)
{
	struct rest *rs = (struct rest *)b;
	struct remote_request rq = { .method = "HEAD" };
	int r = object_request(rs, name, &rq);

	if (r < 0)
		return r;
	if (rq.status != 200)
		r = status_error(rs, &rq, name);
	else if (rq.content_length < 0)
		r = -BCDR_ERR_PROTOCOL;
	else
		*ret_size = (uint64_t)rq.content_length;
	remote_request_release(&rq);
	return r;
}

static int rest_flush(struct backend *b)
{
	return remote_flush(((struct rest *)b)->rm);
}

static void rest_free(struct backend *b)
{
	struct rest *rs = (struct rest *)b;

	remote_free(rs->rm);
	free(rs->base);
	free(rs->display);
	free(rs);
}

static const struct backend_ops rest_ops = {
	.get = rest_get,
	.get_range = rest_get_range,
	.get_upto = rest_get_upto,
	.get_stream = rest_get_stream,
	.put = rest_put,
	.list = rest_list,
	.remove = rest_remove,
	.stat = rest_stat,
	.flush = rest_flush,
	.free = rest_free,
};

static int rest_new(const struct location *loc, const struct backend_options *o,
		    struct rest **ret)
{
	struct rest *rs = calloc(1, sizeof(*rs));
	struct remote_options ro = {
		.connections = o->connections,
		.ca_file = o->ca_file,
		.display = loc->display,
		.username = loc->user,
		.password = loc->password,
		.stall_timeout = o->timeout_usec,
		.max_attempts = o->retries < 0 ? 1 : o->retries == 0 ? 0 : (unsigned)o->retries + 1,
	};
	char base[LOCATION_MAX + 300], port[8] = "";
	int r;

	if (!rs)
		return -ENOMEM;
	rs->b.ops = &rest_ops;
	if (loc->port)
		snprintf(port, sizeof(port), ":%u", loc->port);
	snprintf(base, sizeof(base), "%s://%s%s%s%s%s", loc->tls ? "https" : "http",
		 loc->ipv6 ? "[" : "", loc->host, loc->ipv6 ? "]" : "", port, loc->path);
	rs->base = strdup(base);
	rs->display = strdup(loc->display);
	rs->b.location = rs->display;
	if (!rs->base || !rs->display) {
		rest_free(&rs->b);
		return -ENOMEM;
	}
	r = remote_new(&ro, &rs->rm);
	if (r < 0) {
		free(rs->base);
		free(rs->display);
		free(rs);
		return r;
	}
	*ret = rs;
	return 0;
}

int backend_rest_open(const struct location *loc, const struct backend_options *o,
		      struct backend **ret)
{
	struct rest *rs;
	int r = rest_new(loc, o, &rs);

	if (r < 0)
		return r;
	*ret = &rs->b;
	return 0;
}

int backend_rest_create(const struct location *loc, const struct backend_options *o,
			struct backend **ret)
{
	struct remote_request rq = { .method = "POST" };
	struct rest *rs;
	uint64_t size;
	char url[LOCATION_MAX + 320];
	int r = rest_new(loc, o, &rs);

	if (r < 0)
		return r;
	r = rest_stat(&rs->b, "config", &size);
	if (r >= 0)
		r = -EEXIST;
	else if (r == -ENOENT)
		r = 0;
	if (r >= 0) {
		snprintf(url, sizeof(url), "%s/?create=true", rs->base);
		rq.url = url;
		r = remote_request(rs->rm, &rq);
		if (r >= 0 && rq.status / 100 != 2)
			r = status_error(rs, &rq, "?create=true");
		remote_request_release(&rq);
	}
	if (r < 0) {
		rest_free(&rs->b);
		return r;
	}
	*ret = &rs->b;
	return 0;
}
