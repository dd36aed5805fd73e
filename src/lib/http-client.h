/* A small HTTP/1.1 client for plain http:// URLs: health checks (the http
 * probe) and webhooks, without libcurl (docs/monitor.md, "http"). One
 * request at a time per client; the connection is kept open between
 * requests and reused, opened again once if the server closed it meanwhile;
 * name lookups are cached for HTTP_DNS_TTL. Every step is bounded by the
 * request's deadline (a non-blocking socket and poll()), except
 * getaddrinfo() of a name whose resolver hangs. Redirects are not followed.
 * https:// is libcurl's job: http_url_parse() says -EPROTONOSUPPORT. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/timeutil.h"

#define HTTP_URL_MAX 8192u                    /* bytes of a URL */
#define HTTP_DNS_TTL (60 * USEC_PER_SEC)      /* how long a name lookup is reused */
#define HTTP_REQUEST_HEAD_MAX (64u * 1024)    /* request line and headers sent */

/* The parts of an http:// URL the client needs. */
struct http_url {
	char host[256];   /* a name or an address, IPv6 without its brackets */
	bool ipv6;        /* the host was [bracketed] */
	uint16_t port;    /* 80 when not given */
	const char *path; /* into the URL: path and query, without a fragment */
	size_t path_len;  /* 0: the URL had none, "/" is sent */
};

/* Parses url (which must outlive ret->path). -EPROTONOSUPPORT when it is
 * not http:// (https:// included), -ENOTSUP when it carries user:password@
 * (left to libcurl), -EINVAL when malformed, -BCDR_ERR_TOO_BIG over
 * HTTP_URL_MAX. */
int http_url_parse(const char *url, struct http_url *ret);

struct http_request {
	const char *method;         /* "GET", "HEAD", "POST" ... */
	const struct http_url *url;
	char *const *headers;       /* "Name: value", NULL-terminated, or NULL; a
				       "Name:" without a value removes a default
				       header (Host, User-Agent, Accept), as curl */
	const char *user_agent;     /* NULL: no User-Agent header */
	const void *body;           /* sent with Content-Length when not NULL */
	size_t body_len;
	usec_t deadline;            /* monotonic: everything ends by then */
	const bool *cancel;         /* NULL, or stops the request (-ECANCELED)
				       when it turns true, seen within 100 ms */
	size_t body_keep;           /* response body bytes kept in the reply */
	uint64_t body_max;          /* response body bytes read at most */
};

struct http_reply {
	int status;
	struct buf body;            /* the first body_keep bytes, NUL-terminated */
	bool truncated;             /* the body was longer than that */
	bool reused;                /* sent over a connection kept from before */
};

struct http_client;

int http_client_new(struct http_client **ret);
void http_client_free(struct http_client *c);

/* Sends the request and reads the whole response into *ret
 * (http_reply_release() it). On failure returns -ETIMEDOUT, -ECANCELED,
 * -ECONNREFUSED and the like, -BCDR_ERR_PROTOCOL or -BCDR_ERR_TOO_BIG for a
 * bad response, -EINVAL for a header with a line break, and writes one line
 * about it into error (never NULL) for people: "cannot connect to 127.0.0.1
 * port 8080: Connection refused", "timed out waiting for the response", ... */
int http_client_request(struct http_client *c, const struct http_request *req,
			struct http_reply *ret, char *error, size_t error_size);

void http_reply_release(struct http_reply *r);
