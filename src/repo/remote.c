#include "repo/remote.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "repo/backend.h"

struct upload {
	struct upload *next;
	remote_put_fn fn;
	void *b;
	char *name;
	uint8_t *data;
	size_t len;
};

struct remote {
	struct remote_options o;
	char *display, *ca_file, *username, *password, *aws_sigv4, *aws_userpwd;
	pthread_mutex_t lock;
	pthread_cond_t handle_free, queue_changed;
	CURL **handles; /* idle ones, up to connections */
	size_t nidle, created;
	/* background uploads */
	pthread_t *threads;
	size_t nthreads;
	struct upload *head, *tail;
	size_t queued, in_flight;
	int upload_error;
	bool stopping;
};

/* ---- errors ---- */

/* The last messages, one per error code: threads that fail at once with
 * different codes (a reset here, a refused connection there) each keep
 * theirs, so the code a command returns finds its own message. */
#define ERROR_SLOTS 8

static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int code;
	char text[1024];
} errors[ERROR_SLOTS];
static unsigned error_next; /* the slot a new code takes */

void remote_set_error(int r, const char *fmt, ...)
{
	va_list ap;
	unsigned i;

	pthread_mutex_lock(&error_lock);
	for (i = 0; i < ERROR_SLOTS && errors[i].code != r; i++)
		;
	if (i == ERROR_SLOTS)
		i = error_next++ % ERROR_SLOTS;
	errors[i].code = r;
	va_start(ap, fmt);
	vsnprintf(errors[i].text, sizeof(errors[i].text), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&error_lock);
}

const char *remote_error(int r)
{
	static __thread char copy[1024];

	copy[0] = 0;
	pthread_mutex_lock(&error_lock);
	for (unsigned i = 0; r < 0 && i < ERROR_SLOTS; i++)
		if (errors[i].code == r)
			snprintf(copy, sizeof(copy), "%s", errors[i].text);
	pthread_mutex_unlock(&error_lock);
	return copy;
}

/* ---- pool ---- */

static char *dup_or_null(const char *s, bool *fail)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*fail = true;
	return d;
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

int remote_new(const struct remote_options *o, struct remote **ret)
{
	struct remote *rm = calloc(1, sizeof(*rm));
	bool fail = false;

	if (!rm)
		return -ENOMEM;
	rm->o = *o;
	if (!rm->o.connections)
		rm->o.connections = BACKEND_DEFAULT_CONNECTIONS;
	if (rm->o.connections > BACKEND_MAX_CONNECTIONS)
		rm->o.connections = BACKEND_MAX_CONNECTIONS;
	if (!rm->o.max_attempts)
		rm->o.max_attempts = 7;
	if (!rm->o.max_time)
		rm->o.max_time = 120 * USEC_PER_SEC;
	if (!rm->o.stall_timeout)
		rm->o.stall_timeout = 60 * USEC_PER_SEC;
	rm->display = dup_or_null(o->display ? o->display : "?", &fail);
	rm->ca_file = dup_or_null(o->ca_file, &fail);
	rm->username = dup_or_null(o->username, &fail);
	rm->password = dup_or_null(o->password, &fail);
	rm->aws_sigv4 = dup_or_null(o->aws_sigv4, &fail);
	rm->aws_userpwd = dup_or_null(o->aws_userpwd, &fail);
	rm->handles = calloc(rm->o.connections, sizeof(CURL *));
	rm->threads = calloc(rm->o.connections, sizeof(pthread_t));
	pthread_mutex_init(&rm->lock, NULL);
	pthread_cond_init(&rm->handle_free, NULL);
	pthread_cond_init(&rm->queue_changed, NULL);
	if (fail || !rm->handles || !rm->threads) {
		remote_free(rm);
		return -ENOMEM;
	}
	*ret = rm;
	return 0;
}

unsigned remote_connections(const struct remote *rm)
{
	return rm->o.connections;
}

static CURL *take_handle(struct remote *rm)
{
	CURL *c = NULL;

	pthread_mutex_lock(&rm->lock);
	while (rm->nidle == 0 && rm->created >= rm->o.connections)
		pthread_cond_wait(&rm->handle_free, &rm->lock);
	if (rm->nidle)
		c = rm->handles[--rm->nidle];
	else
		rm->created++;
	pthread_mutex_unlock(&rm->lock);
	if (!c) {
		c = curl_easy_init();
		if (!c) {
			pthread_mutex_lock(&rm->lock);
			rm->created--;
			pthread_cond_signal(&rm->handle_free);
			pthread_mutex_unlock(&rm->lock);
		}
	}
	return c;
}

/* broken: the connection is closed, not kept (after a failure). */
static void give_handle(struct remote *rm, CURL *c, bool broken)
{
	if (broken) {
		curl_easy_cleanup(c);
		c = NULL;
	}
	pthread_mutex_lock(&rm->lock);
	if (c)
		rm->handles[rm->nidle++] = c;
	else
		rm->created--;
	pthread_cond_signal(&rm->handle_free);
	pthread_mutex_unlock(&rm->lock);
}

/* ---- one attempt ---- */

struct sink {
	struct remote_request *rq;
	uint8_t *buf;
	size_t len, cap;
	bool too_big;
	size_t delivered; /* a stream's bytes so far, across attempts */
	int stream_err;   /* what stream() or the reply's range said: stops */
};

/* A stream's body: on to rq->stream, never past length, and only from
 * where the request asked (a 200 ignores the range: good at offset 0). */
static size_t stream_body(struct sink *s, const uint8_t *data, size_t len)
{
	struct remote_request *rq = s->rq;
	int r;

	if (rq->status == 200 && rq->offset + s->delivered != 0) {
		s->stream_err = -BCDR_ERR_PROTOCOL;
		return 0;
	}
	if (len > rq->length - s->delivered) {
		s->too_big = true;
		return 0;
	}
	if ((r = rq->stream(data, len, rq->stream_ctx)) < 0) {
		s->stream_err = r;
		return 0;
	}
	s->delivered += len;
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
	struct sink *s = userdata;
	struct remote_request *rq = s->rq;
	size_t len = size * n;

	if (rq->ranged && rq->stream && rq->status / 100 == 2)
		return stream_body(s, (const uint8_t *)data, len);
	if (rq->ranged && rq->into && rq->status / 100 == 2) {
		if (s->len + len > rq->length) {
			s->too_big = true;
			return 0;
		}
		memcpy(rq->into + s->len, data, len);
		s->len += len;
		return len;
	}
	if (s->len + len > rq->max_reply) {
		s->too_big = true;
		return 0;
	}
	if (s->len + len + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		uint8_t *nb;

		while (cap < s->len + len + 1)
			cap *= 2;
		nb = realloc(s->buf, cap);
		if (!nb)
			return 0;
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	return len;
}

static void copy_value(const char *v, size_t n, char *out, size_t size)
{
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	while (n && *v == ' ') {
		v++;
		n--;
	}
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), v);
}

static size_t on_header(char *data, size_t size, size_t n, void *userdata)
{
	struct sink *s = userdata;
	size_t len = size * n;

	/* a new status line (after a redirect or 100 Continue) starts over */
	if (len > 5 && strncmp(data, "HTTP/", 5) == 0) {
		s->rq->etag[0] = 0;
		s->rq->content_type[0] = 0;
		s->rq->retry_after_s = 0;
		const char *sp = memchr(data, ' ', len);

		s->rq->status = sp ? strtol(sp + 1, NULL, 10) : 0;
	} else if (len > 5 && strncasecmp(data, "etag:", 5) == 0) {
		copy_value(data + 5, len - 5, s->rq->etag, sizeof(s->rq->etag));
	} else if (len > 13 && strncasecmp(data, "content-type:", 13) == 0) {
		copy_value(data + 13, len - 13, s->rq->content_type, sizeof(s->rq->content_type));
	} else if (len > 12 && strncasecmp(data, "retry-after:", 12) == 0) {
		char v[16];
		unsigned long secs = 0;

		/* delta-seconds only; an HTTP-date is left to the backoff */
		copy_value(data + 12, len - 12, v, sizeof(v));
		for (const char *d = v; *d >= '0' && *d <= '9' && secs <= REMOTE_RETRY_AFTER_MAX; d++)
			secs = secs * 10 + (unsigned long)(*d - '0');
		s->rq->retry_after_s =
			(unsigned)(secs > REMOTE_RETRY_AFTER_MAX ? REMOTE_RETRY_AFTER_MAX : secs);
	}
	return len;
}

static int map_curl_error(struct remote *rm, CURLcode cc, const char *url_what)
{
	const char *msg = curl_easy_strerror(cc);

	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		remote_set_error(-ECONNREFUSED, "cannot connect to '%s' (%s): is the server up and "
				 "the address right?", rm->display, msg);
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		remote_set_error(-EHOSTUNREACH, "cannot resolve the host of '%s': check its name "
				 "and the DNS", rm->display);
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		remote_set_error(-ETIMEDOUT, "'%s' stopped answering (%s) for %s: the server or "
				 "the network stalls", rm->display, msg, url_what);
		return -ETIMEDOUT;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		remote_set_error(-EKEYREJECTED, "TLS verification of '%s' failed (%s): give the "
				 "server's CA in the repository's ca_file, or fix its certificate",
				 rm->display, msg);
		return -EKEYREJECTED;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		remote_set_error(-ECONNRESET, "the connection to '%s' broke (%s) for %s",
				 rm->display, msg, url_what);
		return -ECONNRESET;
	case CURLE_FAILED_INIT:
		remote_set_error(-ENOPKG, "cannot reach '%s': %s", rm->display, msg);
		return -ENOPKG;
	default:
		remote_set_error(-EIO, "request to '%s' failed (%s) for %s", rm->display, msg,
				 url_what);
		return -EIO;
	}
}

static bool transient_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static bool transient_status(struct remote *rm, struct remote_request *rq, const struct sink *s)
{
	long st = rq->status;

	if (st == 429 || st == 408 || (st >= 500 && st != 501 && st <= 599))
		return true;
	return rm->o.classify && rm->o.classify(st, s->buf, s->len);
}

/* What an error message says the request was: "GET /data/ab..." without
 * the host (the location is already in the message) or any query. */
static void describe(const struct remote_request *rq, char *out, size_t size)
{
	const char *p = strstr(rq->url, "://");

	p = p ? strchr(p + 3, '/') : NULL;
	snprintf(out, size, "%s %.*s", rq->method, p ? (int)strcspn(p, "?") : 1, p ? p : "/");
}

static int attempt(struct remote *rm, CURL *c, struct remote_request *rq, struct sink *s,
		   CURLcode *ret_cc)
{
	long secs = (long)(rm->o.stall_timeout / USEC_PER_SEC);
	bool head = strcmp(rq->method, "HEAD") == 0;
	struct curl_slist *extra = NULL, *h;
	char range[80];
	CURLcode cc;
	int r = 0;

	curl_easy_reset(c);
	rq->status = 0;
	rq->etag[0] = rq->content_type[0] = 0;
	rq->content_length = -1;
	s->len = 0;
	s->too_big = false;
	if (rq->sign && (r = rq->sign(rq, rq->userdata)) < 0)
		return r;
	for (h = rq->headers; h; h = h->next)
		extra = curl_slist_append(extra, h->data);
	/* No 100-continue round trip before every pack; but curl 7.88 would
	 * sign the empty "Expect:" it does not send, so SigV4 keeps it. */
	if (!rm->aws_sigv4)
		extra = curl_slist_append(extra, "Expect:");
	if (rq->body)
		extra = curl_slist_append(extra, "Content-Type: application/octet-stream");
	if (rq->ranged) {
		snprintf(range, sizeof(range), "Range: bytes=%llu-%llu",
			 (unsigned long long)(rq->offset + s->delivered),
			 (unsigned long long)(rq->offset + rq->length - 1));
		extra = curl_slist_append(extra, range);
	}
	if (!extra)
		return -ENOMEM;
	curl_easy_setopt(c, CURLOPT_URL, rq->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
	/* a stall, not a slow link: less than 1 byte/s for stall_timeout */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, secs > 0 ? secs : 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, extra);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (rm->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, rm->ca_file);
	if (rm->username) {
		curl_easy_setopt(c, CURLOPT_USERNAME, rm->username);
		curl_easy_setopt(c, CURLOPT_PASSWORD, rm->password ? rm->password : "");
	}
	if (rm->aws_sigv4) {
		curl_easy_setopt(c, CURLOPT_AWS_SIGV4, rm->aws_sigv4);
		curl_easy_setopt(c, CURLOPT_USERPWD, rm->aws_userpwd);
	}
	if (head) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(rq->method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
		if (rq->body || strcmp(rq->method, "DELETE") != 0) {
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
		}
	}
	cc = curl_easy_perform(c);
	curl_slist_free_all(extra);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	*ret_cc = cc;
	if (cc == CURLE_OK) {
		curl_off_t cl = -1;

		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rq->status);
		if (curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK)
			rq->content_length = cl;
	}
	return 0;
}

usec_t remote_backoff(unsigned attempt, uint64_t random)
{
	usec_t d = 250 * USEC_PER_MSEC;

	for (unsigned i = 1; i < attempt && d < 16 * USEC_PER_SEC; i++)
		d *= 2;
	if (d > 16 * USEC_PER_SEC)
		d = 16 * USEC_PER_SEC;
	return d / 2 + random % (d / 2 + 1);
}

static void sleep_usec(usec_t d)
{
	struct timespec ts = { (time_t)(d / USEC_PER_SEC), (long)(d % USEC_PER_SEC) * 1000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* remote_retry_wait(), sleeping at least at_least (a server's Retry-After)
 * but never past start + max_time. */
static bool retry_wait(unsigned attempt, unsigned max_attempts, usec_t start, usec_t max_time,
		       usec_t at_least)
{
	usec_t now = now_monotonic(), d;
	uint64_t x = 0;

	if (attempt >= max_attempts || now - start >= max_time)
		return false;
	if (getrandom(&x, sizeof(x), 0) != sizeof(x))
		x = (uint64_t)now;
	d = remote_backoff(attempt, x);
	if (d < at_least)
		d = at_least;
	if (d > start + max_time - now)
		d = start + max_time - now;
	sleep_usec(d);
	return true;
}

bool remote_retry_wait(unsigned attempt, unsigned max_attempts, usec_t start, usec_t max_time)
{
	return retry_wait(attempt, max_attempts, start, max_time, 0);
}

/* The end of remote_request() for a ranged GET (into or stream): the
 * byte count checked. */
static int ranged_done(struct remote *rm, struct remote_request *rq, struct sink *s, int r,
		       const char *what)
{
	size_t got = rq->stream ? s->delivered : s->len;

	free(s->buf);
	rq->got = got;
	if (r >= 0 && (got > rq->length || got < (rq->need && !rq->stream ? rq->need : rq->length))) {
		remote_set_error(-BCDR_ERR_CORRUPT, "'%s' sent %zu bytes of %zu for %s",
				 rm->display, got, rq->length, what);
		return -BCDR_ERR_CORRUPT;
	}
	return r;
}

/* The error once retrying is over: the last cause. */
static int gave_up(struct remote *rm, struct remote_request *rq, CURLcode cc, usec_t start,
		   const char *what)
{
	unsigned long long secs = (now_monotonic() - start) / USEC_PER_SEC;
	int r;

	if (cc != CURLE_OK)
		return map_curl_error(rm, cc, what);
	r = rq->status == 503 || rq->status == 429 ? -EBUSY : -EIO;
	remote_set_error(r, "'%s' answered %ld to %s, %u times over %llu s: the server is "
			 "overloaded or failing; try again later", rm->display, rq->status, what,
			 rq->attempts, secs);
	return r;
}

int remote_request(struct remote *rm, struct remote_request *rq)
{
	usec_t start = now_monotonic();
	struct sink s = { .rq = rq };
	unsigned tries = 0, resumes = 0; /* tries: since the last progress */
	char what[160];
	int r = 0;

	describe(rq, what, sizeof(what));
	rq->reply = NULL;
	rq->reply_len = 0;
	if (!rq->max_reply)
		rq->max_reply = 1 << 20;
	for (rq->attempts = 1;; rq->attempts++) {
		CURL *c = take_handle(rm);
		CURLcode cc = CURLE_OK;
		size_t before = s.delivered;
		bool retry;

		if (!c)
			return -ENOMEM;
		tries++;
		r = attempt(rm, c, rq, &s, &cc);
		give_handle(rm, c, r < 0 || cc != CURLE_OK);
		if (r < 0)
			break;
		if (s.stream_err) {
			r = s.stream_err;
			if (r == -BCDR_ERR_PROTOCOL)
				remote_set_error(r, "'%s' ignored the range of %s", rm->display, what);
			break;
		}
		if (s.too_big && cc != CURLE_OK) {
			remote_set_error(-BCDR_ERR_TOO_BIG, "'%s' sent more than expected for %s",
					 rm->display, what);
			r = -BCDR_ERR_TOO_BIG;
			break;
		}
		retry = cc != CURLE_OK ? transient_curl(cc) : transient_status(rm, rq, &s);
		if (!retry) {
			r = cc == CURLE_OK ? 0 : map_curl_error(rm, cc, what);
			break;
		}
		/* a stream that moved on starts its retries afresh, a bounded
		 * number of times */
		if (s.delivered > before && resumes++ < REMOTE_STREAM_RESUMES) {
			tries = 1;
			start = now_monotonic();
		}
		if (!retry_wait(tries, rm->o.max_attempts, start, rm->o.max_time,
				(usec_t)rq->retry_after_s * USEC_PER_SEC)) {
			r = gave_up(rm, rq, cc, start, what);
			break;
		}
	}
	if (r < 0 || (rq->ranged && (rq->into || rq->stream) && rq->status / 100 == 2))
		return ranged_done(rm, rq, &s, r, what);
	if (!s.buf && !(s.buf = malloc(1)))
		return -ENOMEM;
	s.buf[s.len] = 0;
	rq->reply = s.buf;
	rq->reply_len = s.len;
	return 0;
}

void remote_request_release(struct remote_request *rq)
{
	free(rq->reply);
	rq->reply = NULL;
	rq->reply_len = 0;
}

/* ---- background uploads ---- */

static void upload_free(struct upload *u)
{
	if (!u)
		return;
	free(u->name);
	free(u->data);
	free(u);
}

static void *upload_main(void *userdata)
{
	struct remote *rm = userdata;

	pthread_mutex_lock(&rm->lock);
	for (;;) {
		struct upload *u;
		int r;

		while (!rm->head && !rm->stopping)
			pthread_cond_wait(&rm->queue_changed, &rm->lock);
		if (!rm->head)
			break;
		u = rm->head;
		rm->head = u->next;
		if (!rm->head)
			rm->tail = NULL;
		rm->queued--;
		rm->in_flight++;
		pthread_cond_broadcast(&rm->queue_changed);
		pthread_mutex_unlock(&rm->lock);
		/* after a failure the rest is dropped: the backup stops anyway */
		r = rm->upload_error ? rm->upload_error : u->fn(u->b, u->name, u->data, u->len);
		upload_free(u);
		pthread_mutex_lock(&rm->lock);
		if (r < 0 && !rm->upload_error)
			rm->upload_error = r;
		rm->in_flight--;
		pthread_cond_broadcast(&rm->queue_changed);
	}
	pthread_mutex_unlock(&rm->lock);
	return NULL;
}

int remote_put_async(struct remote *rm, remote_put_fn fn, void *b, const char *name,
		     const void *data, size_t len)
{
	struct upload *u;
	int r;

	pthread_mutex_lock(&rm->lock);
	/* threads start on the first upload, one per connection */
	while (rm->nthreads < rm->o.connections) {
		if (pthread_create(&rm->threads[rm->nthreads], NULL, upload_main, rm) != 0)
			break;
		rm->nthreads++;
	}
	while (!rm->upload_error && rm->queued >= rm->o.connections)
		pthread_cond_wait(&rm->queue_changed, &rm->lock);
	r = rm->upload_error;
	if (r < 0 || rm->nthreads == 0) {
		pthread_mutex_unlock(&rm->lock);
		if (r < 0)
			return r;
		return fn(b, name, data, len); /* no thread: do it here */
	}
	rm->queued++; /* the place is ours while the copy is made */
	pthread_mutex_unlock(&rm->lock);

	/* The copy once there is room: a writer waiting for the queue holds
	 * only its own buffer, not a second one. */
	u = calloc(1, sizeof(*u));
	if (u) {
		*u = (struct upload){ .fn = fn, .b = b, .len = len, .name = strdup(name),
				      .data = malloc(len ? len : 1) };
		if (u->data)
			memcpy(u->data, data, len);
	}
	pthread_mutex_lock(&rm->lock);
	if (!u || !u->name || !u->data) {
		rm->queued--;
		pthread_cond_broadcast(&rm->queue_changed);
		pthread_mutex_unlock(&rm->lock);
		upload_free(u);
		return -ENOMEM;
	}
	if (rm->tail)
		rm->tail->next = u;
	else
		rm->head = u;
	rm->tail = u;
	pthread_cond_broadcast(&rm->queue_changed);
	pthread_mutex_unlock(&rm->lock);
	return 0;
}

int remote_flush(struct remote *rm)
{
	int r;

	pthread_mutex_lock(&rm->lock);
	while (rm->queued || rm->in_flight)
		pthread_cond_wait(&rm->queue_changed, &rm->lock);
	r = rm->upload_error;
	pthread_mutex_unlock(&rm->lock);
	return r;
}

void remote_free(struct remote *rm)
{
	if (!rm)
		return;
	pthread_mutex_lock(&rm->lock);
	rm->stopping = true;
	pthread_cond_broadcast(&rm->queue_changed);
	pthread_mutex_unlock(&rm->lock);
	for (size_t i = 0; i < rm->nthreads; i++)
		pthread_join(rm->threads[i], NULL);
	for (size_t i = 0; i < rm->nidle; i++)
		curl_easy_cleanup(rm->handles[i]);
	pthread_mutex_destroy(&rm->lock);
	pthread_cond_destroy(&rm->handle_free);
	pthread_cond_destroy(&rm->queue_changed);
	free(rm->handles);
	free(rm->threads);
	free(rm->display);
	free(rm->ca_file);
	free(rm->username);
	wipe_free(rm->password);
	free(rm->aws_sigv4);
	wipe_free(rm->aws_userpwd);
	free(rm);
}
