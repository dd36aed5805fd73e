/* What the remote backends share: a pool of libcurl connections to one
 * server (rest, s3), requests retried with exponential backoff and jitter,
 * uploads in the background on the backend's connections (sftp too, with
 * its own ssh connections and remote_retry_wait()), and the explanation
 * of the last failure for the command to print.
 *
 * Retried: connection failures, resets, timeouts and stalls (no byte for
 * stall_timeout), 5xx but 501, 429 and 408, and what the backend's own
 * classify() says (S3's 400 RequestTimeout). At most max_attempts tries
 * within max_time; then the request fails with the last cause. Never
 * retried: other 4xx, TLS verification failures. libcurl is loaded on
 * first use (src/lib/curl-loader.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/timeutil.h"

struct remote;
struct curl_slist;

struct remote_options {
	unsigned connections;  /* 0: BACKEND_DEFAULT_CONNECTIONS */
	const char *ca_file;   /* NULL: the system's CAs */
	const char *display;   /* the location, for messages (no secret) */
	const char *username, *password; /* HTTP basic auth, NULL for none */
	const char *aws_sigv4; /* CURLOPT_AWS_SIGV4, NULL for none */
	const char *aws_userpwd; /* its "KEY:SECRET" */
	unsigned max_attempts; /* 0: 7 */
	usec_t max_time;       /* 0: 2 minutes across the attempts */
	usec_t stall_timeout;  /* 0: 60 s without a byte */
	/* Extra retry rule: true when status and reply say "try again". */
	bool (*classify)(long status, const uint8_t *reply, size_t len);
};

struct remote_request {
	const char *method; /* GET, HEAD, PUT, POST, DELETE */
	const char *url;
	struct curl_slist *headers; /* borrowed; may be rebuilt by sign() */
	const void *body;
	size_t body_len;
	const char *body_sha256; /* the body's SHA-256 in hex when the caller knows it */
	/* A ranged GET into the caller's buffer: length bytes, or fewer down to
	 * need when need is set (the object ends first; got says how many). */
	bool ranged;
	uint64_t offset;
	size_t length, need;
	uint8_t *into;
	/* A ranged GET to a callback instead (into unused): the bytes as they
	 * arrive, exactly length of them. A broken connection is resumed with
	 * a Range from the last byte delivered; progress renews the retries
	 * (at most REMOTE_STREAM_RESUMES resumes in all). stream() returning
	 * < 0 ends the request with that value, never retried. */
	int (*stream)(const uint8_t *data, size_t len, void *ctx);
	void *stream_ctx;
	size_t max_reply; /* a longer reply is -BCDR_ERR_TOO_BIG */
	/* Called before each attempt (S3 signs with the current time). */
	int (*sign)(struct remote_request *rq, void *userdata);
	void *userdata;

	/* results */
	long status;
	uint8_t *reply; /* heap, NUL-terminated; remote_request_release() */
	size_t reply_len;
	int64_t content_length; /* -1 when unknown */
	char content_type[96];
	char etag[96];
	unsigned attempts;
	size_t got; /* ranged: bytes written into `into`, or streamed */
	unsigned retry_after_s; /* the reply's Retry-After in seconds (capped), 0: none */
};

/* The longest Retry-After a 429 or 503 is waited for; a longer one gets
 * this (and the request's max_time still bounds the whole). */
#define REMOTE_RETRY_AFTER_MAX 60
/* Resumes of one stream at most, however much each one delivered. */
#define REMOTE_STREAM_RESUMES 32

int remote_new(const struct remote_options *o, struct remote **ret);
/* Waits for the background uploads, then frees. */
void remote_free(struct remote *rm);
unsigned remote_connections(const struct remote *rm);

/* Sends rq, retrying what is transient; 0 once a reply came (any status
 * not retried), else a -errno with remote_error() set: -ECONNREFUSED,
 * -EHOSTUNREACH, -ETIMEDOUT, -ECONNRESET, -EIO, -BCDR_ERR_TOO_BIG,
 * -EKEYREJECTED (TLS verification). */
int remote_request(struct remote *rm, struct remote_request *rq);
void remote_request_release(struct remote_request *rq);

/* Background uploads: fn(b, name, data, len) runs on one of the
 * connections with a copy of data. Blocks while every connection has one
 * in flight and as many queued; returns the first failure of an earlier
 * upload, which stays until remote_flush(). */
typedef int (*remote_put_fn)(void *b, const char *name, const void *data, size_t len);
int remote_put_async(struct remote *rm, remote_put_fn fn, void *b, const char *name,
		     const void *data, size_t len);
/* Waits until every upload is done; the first failure among them. */
int remote_flush(struct remote *rm);

/* Why the last remote operation that failed with code r failed, for the
 * command's message ("" when none did). Process-wide, one message per
 * code: the failure may be a worker's, while another failed otherwise. */
void remote_set_error(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *remote_error(int r);

/* The delay before attempt n (1-based) of a request: base 250 ms doubled
 * each time, capped at 16 s, with "full jitter" (uniform in [d/2, d]). */
usec_t remote_backoff(unsigned attempt, uint64_t random);
/* For a backend with a retry loop of its own (sftp, whose transport is
 * ssh): after attempt (1-based) failed with something transient, sleeps
 * the backoff and returns true when another try is allowed; false, at
 * once, when max_attempts tries were made or max_time has passed since
 * start. */
bool remote_retry_wait(unsigned attempt, unsigned max_attempts, usec_t start, usec_t max_time);
