/* http(s): one request, bounded by the deadline; checks the status and the
 * body, and for https reads the certificate's expiry for cert_days.
 * http:// goes through bcdr's own client (lib/http-client.h), https://
 * through libcurl, loaded the first time such a check runs
 * (lib/curl-loader.c). Both keep their connection between runs (and curl
 * its TLS session): what a browser would do, and far cheaper at a 1 s
 * interval. */
#include <curl/curl.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/http-client.h"
#include "monitor/probes.h"

/* Bytes of a body read at most (the first PROBE_BODY_MAX are matched). */
#define HTTP_BODY_READ_MAX ((uint64_t)64 << 20)

struct body {
	struct buf buf; /* at most PROBE_BODY_MAX bytes; grows as the body comes */
	bool truncated;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct body *b = userdata;
	size_t n = size * nmemb, room = PROBE_BODY_MAX - b->buf.len;

	/* Keep the first PROBE_BODY_MAX bytes; read the rest and drop it. */
	if (n > room)
		b->truncated = true;
	if (room && buf_append(&b->buf, ptr, n < room ? n : room) < 0)
		b->truncated = true;
	return n;
}

void probe_http_state_free(struct probe_state *ps)
{
	if (!ps)
		return;
	if (ps->curl) {
		curl_easy_cleanup(ps->curl);
		ps->curl = NULL;
	}
	http_client_free(ps->http);
	ps->http = NULL;
}

/* "Expire date:Mar 14 12:00:00 2027 GMT" in curl's certinfo. */
static int cert_expiry(CURL *c, time_t *ret)
{
	struct curl_certinfo *ci = NULL;

	if (curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs < 1)
		return -1;
	for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next) {
		struct tm tm = { 0 };
		const char *v;

		if (strncmp(s->data, "Expire date:", 12) != 0)
			continue;
		v = s->data + 12;
		while (*v == ' ')
			v++;
		if (!strptime(v, "%b %d %H:%M:%S %Y", &tm))
			return -1;
		*ret = timegm(&tm);
		return 0;
	}
	return -1;
}

/* The verdict on a response, the same for both clients: the status, then
 * the body's match. */
static void judge(const struct check_def *def, long status, struct buf *body, bool truncated,
		  struct probe_result *res)
{
	int64_t expect = def->probe.http.expect_status;
	regex_t re;
	int m;

	if (expect ? status != expect : status >= 400) {
		if (def->probe.http.expect_status)
			probe_fail(res, CHECK_CRITICAL, "HTTP %ld (expected %lld) from %s", status,
				   (long long)def->probe.http.expect_status, def->probe.http.url);
		else
			probe_fail(res, CHECK_CRITICAL, "HTTP %ld from %s", status,
				   def->probe.http.url);
		return;
	}
	if (!def->probe.http.body)
		return;
	/* NUL bytes would end the text early. */
	for (size_t i = 0; i < body->len; i++)
		if (!body->data[i])
			body->data[i] = ' ';
	if (regcomp(&re, def->probe.http.body, PROBE_REGEX_FLAGS) != 0) {
		probe_fail(res, CHECK_UNKNOWN, "invalid body regular expression");
		return;
	}
	m = regexec(&re, body->data, 0, NULL, 0);
	regfree(&re);
	if (m != 0) {
		char shown[64];

		probe_printable(body->data, body->len, shown, sizeof(shown));
		probe_fail(res, CHECK_CRITICAL, "HTTP %ld but the body%s does not match '%s': "
			   "'%s%s'", status, truncated ? " (first 1 MiB)" : "",
			   def->probe.http.body, shown, body->len >= sizeof(shown) ? "..." : "");
	}
}

static void report_latency(long status, usec_t took, struct probe_result *res)
{
	probe_set_value(res, (double)took / 1e6, "s");
	if (res->probe_status == CHECK_OK)
		probe_message(res, "HTTP %ld in %.1fms", status, (double)took / 1000.0);
}

/* http://, with the own client kept in the probe state. */
static int probe_http_plain(const struct check_def *def, struct probe_state *ps,
			    const struct http_url *url, usec_t deadline, struct probe_result *res)
{
	const char *method = def->probe.http.method ? def->probe.http.method : "GET";
	struct http_request req = {
		.method = method,
		.url = url,
		.headers = def->probe.http.headers,
		.user_agent = "bcdr/" BCDR_VERSION,
		.body = strcmp(method, "POST") == 0 ? "" : NULL,
		.deadline = deadline,
		.body_keep = PROBE_BODY_MAX,
		.body_max = HTTP_BODY_READ_MAX,
	};
	struct http_reply reply;
	char error[PROBE_MESSAGE_MAX / 2];
	usec_t start = now_monotonic();
	int r;

	if (!ps->http && (r = http_client_new(&ps->http)) < 0)
		return r;
	r = http_client_request(ps->http, &req, &reply, error, sizeof(error));
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		probe_fail(res, CHECK_CRITICAL, "%s %s: %s", method, def->probe.http.url, error);
		return 0;
	}
	judge(def, reply.status, &reply.body, reply.truncated, res);
	report_latency(reply.status, now_monotonic() - start, res);
	http_reply_release(&reply);
	return 0;
}

static int probe_http_curl(const struct check_def *def, struct probe_state *ps, usec_t deadline,
			   struct probe_result *res)
{
	const char *method = def->probe.http.method ? def->probe.http.method : "GET";
	bool cert = def->probe.http.measure == HTTP_CERT_DAYS;
	struct body body = { 0 };
	struct curl_slist *headers = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	long status = 0, left_ms;
	curl_off_t total_us = 0;
	CURLcode cr;
	CURL *c;

	if (!ps->curl && !(ps->curl = curl_easy_init())) {
		/* Out of memory, or libcurl missing: its message says which. */
		probe_fail(res, CHECK_UNKNOWN, "%s %s: %s", method, def->probe.http.url,
			   curl_easy_strerror(CURLE_FAILED_INIT));
		return 0;
	}
	c = ps->curl;
	curl_easy_reset(c);
	buf_init(&body.buf, PROBE_BODY_MAX);
	left_ms = (long)(probe_remaining(deadline) / 1000);
	if (left_ms < 1)
		left_ms = 1;
	curl_easy_setopt(c, CURLOPT_URL, def->probe.http.url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, left_ms);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "bcdr/" BCDR_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)64 << 20);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	for (char **h = def->probe.http.headers; h && *h; h++) {
		struct curl_slist *n = curl_slist_append(headers, *h);

		if (!n) {
			curl_slist_free_all(headers);
			return -ENOMEM;
		}
		headers = n;
	}
	if (headers)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if (def->probe.http.insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (def->probe.http.ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, def->probe.http.ca_file);
	if (cert) {
		/* The certificate is only seen on a new handshake. */
		curl_easy_setopt(c, CURLOPT_CERTINFO, 1L);
		curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(c, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	}
	cr = curl_easy_perform(c);
	curl_slist_free_all(headers);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	if (!body.buf.data && buf_append(&body.buf, "", 0) < 0) {
		buf_release(&body.buf);
		return -ENOMEM;
	}
	if (cr != CURLE_OK) {
		probe_fail(res, CHECK_CRITICAL, "%s %s: %s", method, def->probe.http.url,
			   cr == CURLE_OPERATION_TIMEDOUT ? "timed out" :
			   errbuf[0] ? errbuf : curl_easy_strerror(cr));
		buf_release(&body.buf);
		return 0;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &total_us);
	judge(def, status, &body.buf, body.truncated, res);
	buf_release(&body.buf);
	if (cert) {
		time_t expiry;

		if (cert_expiry(c, &expiry) < 0) {
			probe_fail(res, CHECK_UNKNOWN, "no certificate expiry from %s",
				   def->probe.http.url);
			return 0;
		}
		double days = ((double)expiry - (double)time(NULL)) / 86400.0;

		probe_set_value(res, days, "days");
		if (res->probe_status == CHECK_OK)
			probe_message(res, "HTTP %ld, certificate expires in %.1f days", status, days);
		if (days <= 0)
			probe_fail(res, CHECK_CRITICAL, "the certificate of %s has expired",
				   def->probe.http.url);
		return 0;
	}
	report_latency(status, (usec_t)total_us, res);
	return 0;
}

int probe_http(const struct check_def *def, struct probe_state *ps, usec_t deadline,
	       struct probe_result *res)
{
	struct http_url url;

	/* Anything the own client does not take (https, credentials in the
	 * URL) is libcurl's. */
	if (http_url_parse(def->probe.http.url, &url) == 0)
		return probe_http_plain(def, ps, &url, deadline, res);
	return probe_http_curl(def, ps, deadline, res);
}
