#include "cluster/etcd.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/http-client.h"

#define ETCD_ATTEMPT_MIN (100 * USEC_PER_MSEC) /* an endpoint's share, at least */
#define ETCD_PASSWORD_MAX 4096u

struct endpoint {
	char *url; /* without a trailing '/' */
	bool https;
	struct http_client *http; /* http:// */
	CURL *curl;               /* https:// */
};

struct etcd {
	struct endpoint eps[ETCD_ENDPOINTS_MAX];
	size_t n_eps;
	size_t current;     /* the endpoint tried first */
	const char *prefix; /* "/v3"..., NULL until asked */
	char *ca_file, *cert_file, *key_file;
	char *username, *password; /* password: from the file */
	char *token;               /* authentication token, NULL before */
	const bool *cancel;
	char error[512];
};

static char *strdup_or_null(const char *s, bool *failed)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*failed = true;
	return d;
}

int etcd_new(const struct etcd_options *o, struct etcd **ret)
{
	_cleanup_(etcd_freep) struct etcd *e = calloc(1, sizeof(*e));
	bool failed = false;
	int r;

	if (!e)
		return -ENOMEM;
	for (size_t i = 0; o->endpoints && o->endpoints[i]; i++) {
		struct endpoint *ep = &e->eps[i];
		size_t len;

		if (i == ETCD_ENDPOINTS_MAX)
			return -E2BIG;
		ep->url = strdup(o->endpoints[i]);
		if (!ep->url)
			return -ENOMEM;
		e->n_eps++;
		len = strlen(ep->url);
		while (len > 0 && ep->url[len - 1] == '/')
			ep->url[--len] = '\0';
		ep->https = strncmp(ep->url, "https://", 8) == 0;
		if (!ep->https && strncmp(ep->url, "http://", 7) != 0)
			return -EPROTONOSUPPORT;
	}
	if (e->n_eps == 0)
		return -EINVAL;
	e->ca_file = strdup_or_null(o->ca_file, &failed);
	e->cert_file = strdup_or_null(o->cert_file, &failed);
	e->key_file = strdup_or_null(o->key_file, &failed);
	e->username = strdup_or_null(o->username, &failed);
	if (failed)
		return -ENOMEM;
	if (o->username) {
		size_t len;

		if (!o->password_file)
			return -EINVAL;
		r = fs_read_file(o->password_file, ETCD_PASSWORD_MAX, &e->password, &len);
		if (r < 0)
			return r;
		e->password[strcspn(e->password, "\r\n")] = '\0';
	}
	e->cancel = o->cancel;
	*ret = TAKE_PTR(e);
	return 0;
}

void etcd_free(struct etcd *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n_eps; i++) {
		free(e->eps[i].url);
		http_client_free(e->eps[i].http);
		if (e->eps[i].curl)
			curl_easy_cleanup(e->eps[i].curl);
	}
	free(e->ca_file);
	free(e->cert_file);
	free(e->key_file);
	free(e->username);
	if (e->password)
		explicit_bzero(e->password, strlen(e->password));
	free(e->password);
	free(e->token);
	free(e);
}

const char *etcd_last_error(const struct etcd *e)
{
	return e->error[0] ? e->error : "no error";
}

const char *etcd_endpoint(const struct etcd *e)
{
	return e->eps[e->current].url;
}

/* Appends "url: message" to the call's error. */
static void note(struct etcd *e, const struct endpoint *ep, const char *fmt, const char *msg)
{
	size_t off = strlen(e->error);
	char what[256];

	snprintf(what, sizeof(what), fmt, msg);
	snprintf(e->error + off, sizeof(e->error) - off, "%s%s: %s", off ? "; " : "", ep->url,
		 what);
}

/* "HTTP 400: <the first line of the body>", printable, for an answer that
 * is no gateway error (a proxy's page, etcd's own plain-text refusals). */
static void describe_answer(int status, const struct buf *out, char *msg, size_t size)
{
	char line[121];
	size_t n = 0;

	for (size_t i = 0; out->data && i < out->len && n < sizeof(line) - 1; i++) {
		char ch = out->data[i];

		if (ch == '\n' || ch == '\r')
			break;
		line[n++] = ch >= 0x20 && ch < 0x7f ? ch : '?';
	}
	line[n] = '\0';
	snprintf(msg, size, "HTTP %d%s%s", status, n ? ": " : "", line);
}

/* ---- one request on one endpoint ---- */

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
	struct buf *b = userdata;

	return buf_append(b, data, size * n) < 0 ? 0 : size * n;
}

static int on_progress(void *userdata, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	const struct etcd *e = userdata;

	(void)a, (void)b, (void)c, (void)d;
	return e->cancel && __atomic_load_n(e->cancel, __ATOMIC_RELAXED);
}

static int send_curl(struct etcd *e, struct endpoint *ep, const char *url, const char *body,
		     struct curl_slist *headers, usec_t deadline, int *ret_status, struct buf *out)
{
	usec_t now = now_monotonic();
	long ms = deadline > now ? (long)((deadline - now) / USEC_PER_MSEC) : 1;
	long status = 0;
	CURLcode cr;

	if (!ep->curl && !(ep->curl = curl_easy_init())) {
		note(e, ep, "%s", curl_easy_strerror(CURLE_FAILED_INIT));
		return -BCDR_ERR_UNSUPPORTED;
	}
	curl_easy_reset(ep->curl);
	curl_easy_setopt(ep->curl, CURLOPT_URL, url);
	curl_easy_setopt(ep->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(ep->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(ep->curl, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L);
	curl_easy_setopt(ep->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(ep->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(ep->curl, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(ep->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(ep->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(ep->curl, CURLOPT_XFERINFODATA, e);
	curl_easy_setopt(ep->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(ep->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (e->ca_file)
		curl_easy_setopt(ep->curl, CURLOPT_CAINFO, e->ca_file);
	if (e->cert_file)
		curl_easy_setopt(ep->curl, CURLOPT_SSLCERT, e->cert_file);
	if (e->key_file)
		curl_easy_setopt(ep->curl, CURLOPT_SSLKEY, e->key_file);
	if (body) {
		curl_easy_setopt(ep->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(ep->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	cr = curl_easy_perform(ep->curl);
	if (cr != CURLE_OK) {
		if (cr == CURLE_WRITE_ERROR) {
			note(e, ep, "%s", "response too large");
			return -BCDR_ERR_TOO_BIG;
		}
		note(e, ep, "%s", curl_easy_strerror(cr));
		return cr == CURLE_ABORTED_BY_CALLBACK  ? -ECANCELED
		       : cr == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
							: -ECONNREFUSED;
	}
	curl_easy_getinfo(ep->curl, CURLINFO_RESPONSE_CODE, &status);
	*ret_status = (int)status;
	return 0;
}

static int send_http(struct etcd *e, struct endpoint *ep, const char *url, const char *body,
		     char *const *headers, usec_t deadline, int *ret_status, struct buf *out)
{
	struct http_url u;
	struct http_reply reply = {};
	char error[256];
	int r;

	r = http_url_parse(url, &u);
	if (r < 0) {
		note(e, ep, "%s", "not a valid http:// URL");
		return r;
	}
	if (!ep->http && (r = http_client_new(&ep->http)) < 0)
		return r;
	struct http_request req = {
		.method = body ? "POST" : "GET",
		.url = &u,
		.headers = headers,
		.user_agent = "bcdr/" BCDR_VERSION,
		.body = body,
		.body_len = body ? strlen(body) : 0,
		.deadline = deadline,
		.cancel = e->cancel,
		.body_keep = ETCD_RESPONSE_MAX,
		.body_max = ETCD_RESPONSE_MAX,
	};
	r = http_client_request(ep->http, &req, &reply, error, sizeof(error));
	if (r < 0) {
		note(e, ep, "%s", error);
		return r;
	}
	if (reply.truncated) {
		http_reply_release(&reply);
		note(e, ep, "%s", "response too large");
		return -BCDR_ERR_TOO_BIG;
	}
	*ret_status = reply.status;
	r = buf_append(out, reply.body.data ? reply.body.data : "", reply.body.len);
	http_reply_release(&reply);
	return r;
}

/* One request: 0 with the status and body, or a transport error. */
static int send_one(struct etcd *e, struct endpoint *ep, const char *path, const char *body,
		    usec_t deadline, int *ret_status, struct buf *out)
{
	_cleanup_free_ char *url = NULL, *auth = NULL;
	char *headers[3] = {};
	size_t nh = 0;
	int r;

	buf_reset(out);
	if (asprintf(&url, "%s%s", ep->url, path) < 0)
		return -ENOMEM;
	if (body)
		headers[nh++] = "Content-Type: application/json";
	if (e->token) {
		if (asprintf(&auth, "Authorization: %s", e->token) < 0)
			return -ENOMEM;
		headers[nh++] = auth;
	}
	if (!ep->https)
		return send_http(e, ep, url, body, headers, deadline, ret_status, out);

	struct curl_slist *list = NULL;

	for (size_t i = 0; i < nh; i++) {
		struct curl_slist *l = curl_slist_append(list, headers[i]);

		if (!l) {
			curl_slist_free_all(list);
			return -ENOMEM;
		}
		list = l;
	}
	r = send_curl(e, ep, url, body, list, deadline, ret_status, out);
	curl_slist_free_all(list);
	return r;
}

/* The API prefix and the token, on this endpoint, if not had yet. */
static int prepare(struct etcd *e, struct endpoint *ep, usec_t deadline, struct buf *out)
{
	int status, r;

	if (!e->prefix) {
		r = send_one(e, ep, "/version", NULL, deadline, &status, out);
		if (r < 0)
			return r;
		if (status != 200) {
			note(e, ep, "/version answered HTTP %s", status == 404 ? "404" : "error");
			return -BCDR_ERR_PROTOCOL;
		}
		r = etcd_parse_version(out->data, out->len, &e->prefix);
		if (r < 0) {
			note(e, ep, "%s", "/version: not an etcd 3.2 or later");
			return r;
		}
	}
	if (e->username && !e->token) {
		_cleanup_free_ char *req = etcd_req_auth(e->username, e->password);
		_cleanup_free_ char *path = NULL;
		char msg[256];

		if (!req || asprintf(&path, "%s/auth/authenticate", e->prefix) < 0)
			return -ENOMEM;
		r = send_one(e, ep, path, req, deadline, &status, out);
		explicit_bzero(req, strlen(req));
		if (r < 0)
			return r;
		r = etcd_parse_error(out->data, out->len, msg, sizeof(msg));
		if (r < 0) {
			note(e, ep, "authentication failed: %s", msg);
			return r == -EINVAL ? -BCDR_ERR_AUTH : r;
		}
		if (status != 200) {
			describe_answer(status, out, msg, sizeof(msg));
			note(e, ep, "authentication refused: %s", msg);
			return -BCDR_ERR_AUTH;
		}
		r = etcd_parse_auth(out->data, out->len, &e->token);
		if (r < 0) {
			note(e, ep, "%s", "authentication: no token in the answer");
			return r;
		}
	}
	return 0;
}

/* Whether the next endpoint may answer where this one did not. */
static bool try_next(int r)
{
	return r == -EAGAIN || r == -ETIMEDOUT || r == -ECONNREFUSED || r == -ECONNRESET ||
	       r == -EHOSTUNREACH || r == -ENETUNREACH || r == -EPIPE || r == -BCDR_ERR_PROTOCOL ||
	       r == -BCDR_ERR_TIMEOUT || r == -EADDRNOTAVAIL || r == -ECONNABORTED;
}

/* POSTs body to <prefix><path>, failing over between the endpoints until
 * one answers; *out holds an answer that is not a gateway error (the
 * parsers see the rest). */
static int call(struct etcd *e, const char *path, const char *body, usec_t deadline,
		struct buf *out)
{
	int r = -ETIMEDOUT;

	e->error[0] = '\0';
	if (!body)
		return -ENOMEM;
	for (size_t k = 0; k < e->n_eps; k++) {
		size_t i = (e->current + k) % e->n_eps;
		struct endpoint *ep = &e->eps[i];
		usec_t now = now_monotonic();
		usec_t share, attempt;
		_cleanup_free_ char *full = NULL;
		bool reauthed = false;
		char msg[256];
		int status;

		if (e->cancel && __atomic_load_n(e->cancel, __ATOMIC_RELAXED))
			return -ECANCELED;
		if (now >= deadline)
			break;
		/* the time left, shared among the endpoints not tried yet */
		share = (deadline - now) / (e->n_eps - k);
		attempt = now + (share < ETCD_ATTEMPT_MIN ? ETCD_ATTEMPT_MIN : share);
		if (attempt > deadline)
			attempt = deadline;
again:
		r = prepare(e, ep, attempt, out);
		if (r >= 0 && asprintf(&full, "%s%s", e->prefix, path) < 0)
			return -ENOMEM;
		if (r >= 0)
			r = send_one(e, ep, full, body, attempt, &status, out);
		if (r >= 0) {
			r = etcd_parse_error(out->data, out->len, msg, sizeof(msg));
			if (r == -EKEYREJECTED && e->username && !reauthed) {
				free(e->token);
				e->token = NULL;
				free(full);
				full = NULL;
				reauthed = true;
				goto again;
			}
			if (r < 0)
				note(e, ep, "%s", msg);
			else if (status != 200) {
				describe_answer(status, out, msg, sizeof(msg));
				note(e, ep, "%s", msg);
				r = -BCDR_ERR_PROTOCOL;
			}
			if (r >= 0 || !try_next(r)) {
				e->current = i;
				return r;
			}
		}
		if (r == -ECANCELED || r == -ENOMEM || r == -BCDR_ERR_TOO_BIG || !try_next(r))
			return r;
	}
	if (r == -ETIMEDOUT && !e->error[0])
		snprintf(e->error, sizeof(e->error), "no etcd endpoint answered in time");
	return r;
}

/* ---- the calls ---- */

int etcd_lease_grant(struct etcd *e, int64_t ttl_s, usec_t deadline, int64_t *ret_id)
{
	_cleanup_free_ char *req = etcd_req_grant(ttl_s);
	_cleanup_(buf_release) struct buf out;
	int64_t id, ttl;
	int r;

	buf_init(&out, ETCD_RESPONSE_MAX);
	r = call(e, "/lease/grant", req, deadline, &out);
	if (r >= 0)
		r = etcd_parse_grant(out.data, out.len, &id, &ttl);
	if (r < 0)
		return r;
	*ret_id = id;
	return 0;
}

int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t min_revision, usec_t deadline,
			 int64_t *ret_ttl, int64_t *ret_revision)
{
	_cleanup_free_ char *req = etcd_req_lease(id);
	_cleanup_(buf_release) struct buf out;
	int64_t ttl, rev = 0;
	int r = -EINVAL;

	buf_init(&out, ETCD_RESPONSE_MAX);
	/* "not found" from one member is not the cluster's word: a member
	 * that was frozen answers so for a lease it did not see renewed, in
	 * the moment before it learns it is no leader any more. Another
	 * member is asked before the lease is taken for gone. */
	for (size_t k = 0; k < e->n_eps; k++) {
		r = call(e, "/lease/keepalive", req, deadline, &out);
		if (r >= 0)
			r = etcd_parse_keepalive(out.data, out.len, &ttl, &rev);
		if (r >= 0 && rev < min_revision) {
			snprintf(e->error, sizeof(e->error),
				 "%s: answered at revision %lld, behind "
				 "%lld: a member that lags",
				 etcd_endpoint(e), (long long)rev, (long long)min_revision);
			r = -EAGAIN;
		}
		if ((r != -ENOENT && r != -EAGAIN) || e->n_eps == 1 || now_monotonic() >= deadline)
			break;
		e->current = (e->current + 1) % e->n_eps;
	}
	if (r < 0)
		return r;
	*ret_ttl = ttl;
	*ret_revision = rev;
	return 0;
}

/* A call whose answer says nothing but its header: it worked, or why not.
 * Takes req (call() refuses NULL, out of memory). */
static int call_expecting_header(struct etcd *e, const char *path, char *req, usec_t deadline)
{
	_cleanup_free_ char *body = req;
	_cleanup_(buf_release) struct buf out;
	int64_t rev;
	int r;

	buf_init(&out, ETCD_RESPONSE_MAX);
	r = call(e, path, body, deadline, &out);
	return r < 0 ? r : etcd_parse_header(out.data, out.len, &rev);
}

/* A transaction: whether it succeeded, the store's revision, and what
 * its failure branch read into holder (may be NULL). Takes req. */
static int call_txn(struct etcd *e, char *req, usec_t deadline, bool *ret_succeeded,
		    int64_t *ret_revision, struct etcd_kv *holder)
{
	_cleanup_free_ char *body = req;
	_cleanup_(buf_release) struct buf out;
	int r;

	buf_init(&out, ETCD_RESPONSE_MAX);
	r = call(e, "/kv/txn", body, deadline, &out);
	return r < 0 ? r : etcd_parse_txn(out.data, out.len, ret_succeeded, ret_revision, holder);
}

int etcd_lease_revoke(struct etcd *e, int64_t id, usec_t deadline)
{
	return call_expecting_header(e, "/lease/revoke", etcd_req_lease(id), deadline);
}

int etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease, usec_t deadline)
{
	return call_expecting_header(e, "/kv/put", etcd_req_put(key, value, lease), deadline);
}

int etcd_create(struct etcd *e, const char *key, const char *value, int64_t lease, usec_t deadline,
		bool *ret_created, int64_t *ret_revision, struct etcd_kv *ret_holder)
{
	struct etcd_kv holder;
	bool ok;
	int64_t rev;
	int r = call_txn(e, etcd_req_create(key, value, lease), deadline, &ok, &rev, &holder);

	if (r < 0)
		return r;
	if (!ok && holder.key && lease && holder.lease == lease) {
		/* an earlier attempt that timed out on another endpoint made it */
		ok = true;
		rev = holder.create_revision;
		etcd_kv_release(&holder);
	}
	*ret_created = ok;
	*ret_revision = ok ? rev : 0;
	*ret_holder = holder;
	return 0;
}

int etcd_delete_if(struct etcd *e, const char *key, int64_t create_revision, usec_t deadline,
		   bool *ret_deleted)
{
	bool ok;
	int64_t rev;
	int r = call_txn(e, etcd_req_delete_if(key, create_revision), deadline, &ok, &rev, NULL);

	if (r < 0)
		return r;
	*ret_deleted = ok;
	return 0;
}

int etcd_exists_at(struct etcd *e, const char *key, int64_t revision, usec_t deadline,
		   bool *ret_exists)
{
	_cleanup_free_ char *req = etcd_req_range_at(key, revision);
	_cleanup_(buf_release) struct buf out;
	struct etcd_kv *kvs = NULL;
	size_t n = 0;
	int64_t rev;
	int r;

	if (!req)
		return -ENOMEM;
	buf_init(&out, ETCD_RESPONSE_MAX);
	r = call(e, "/kv/range", req, deadline, &out);
	if (r < 0)
		return r;
	r = etcd_parse_range(out.data, out.len, &kvs, &n, &rev);
	if (r < 0)
		return r;
	*ret_exists = n > 0;
	etcd_kvs_free(kvs, n);
	return 0;
}

int etcd_range_prefix(struct etcd *e, const char *prefix, usec_t deadline, struct etcd_kv **ret_kvs,
		      size_t *ret_n, int64_t *ret_revision)
{
	_cleanup_free_ char *end = NULL, *req = NULL;
	_cleanup_(buf_release) struct buf out;
	int r;

	buf_init(&out, ETCD_RESPONSE_MAX);
	r = etcd_prefix_end(prefix, &end);
	if (r < 0)
		return r;
	req = etcd_req_range(prefix, end);
	r = call(e, "/kv/range", req, deadline, &out);
	if (r < 0)
		return r;
	return etcd_parse_range(out.data, out.len, ret_kvs, ret_n, ret_revision);
}
