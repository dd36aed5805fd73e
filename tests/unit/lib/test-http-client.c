/* lib/http-client.c: URLs, and requests against a scripted server on
 * 127.0.0.1 (a thread of this test) that answers, closes, stalls or
 * talks nonsense on cue: what is sent, connection reuse, the one retry
 * when a kept connection was closed, timeouts and bad responses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/err.h"
#include "lib/http-client.h"

static void test_url_parse(void **state)
{
	struct http_url u;

	(void)state;
	assert_int_equal(http_url_parse("http://127.0.0.1:8080/health?x=1#frag", &u), 0);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 8080);
	assert_int_equal(u.path_len, strlen("/health?x=1"));
	assert_memory_equal(u.path, "/health?x=1", u.path_len);
	assert_false(u.ipv6);

	assert_int_equal(http_url_parse("HTTP://Example.COM", &u), 0);
	assert_string_equal(u.host, "Example.COM");
	assert_int_equal(u.port, 80);
	assert_int_equal(u.path_len, 0);

	assert_int_equal(http_url_parse("http://[::1]:81/a", &u), 0);
	assert_string_equal(u.host, "::1");
	assert_true(u.ipv6);
	assert_int_equal(u.port, 81);
	assert_int_equal(http_url_parse("http://[fe80::1%25eth0]/", &u), 0);
	assert_string_equal(u.host, "fe80::1%eth0");
	assert_int_equal(http_url_parse("http://h:/x", &u), 0);
	assert_int_equal(u.port, 80);
	assert_int_equal(http_url_parse("http://h?q", &u), 0);
	assert_memory_equal(u.path, "?q", 2);

	assert_int_equal(http_url_parse("https://h/", &u), -EPROTONOSUPPORT);
	assert_int_equal(http_url_parse("ftp://h/", &u), -EPROTONOSUPPORT);
	assert_int_equal(http_url_parse("http://user:pw@h/", &u), -ENOTSUP);
	static const char *const bad[] = {
		"http://", "http:///x", "http://h:0/", "http://h:65536/", "http://h:123456/",
		"http://h:8x/", "http://bad host/", "http://h/a b", "http://h/\x01",
		"http://[::1/", "http://[nothex]/", "http://[::1]x/", "http://[fe80::1%eth0]/",
		"http://h%41/", "http://h\x7f/",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (http_url_parse(bad[i], &u) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
	{
		char long_url[HTTP_URL_MAX + 16];

		memset(long_url, 'a', sizeof(long_url) - 1);
		long_url[sizeof(long_url) - 1] = '\0';
		memcpy(long_url, "http://h/", 9);
		assert_int_equal(http_url_parse(long_url, &u), -BCDR_ERR_TOO_BIG);
	}
}

/* ---- a scripted server ---- */

struct step {
	const char *reply;  /* sent after reading a request, or NULL */
	bool close;         /* close the connection after it */
	int delay_ms;       /* before replying */
};

struct server {
	int lfd;
	uint16_t port;
	const struct step *steps;
	size_t n_steps;
	int accepts;
	char last_request[4096];
	pthread_t thread;
};

/* Reads one request (head, and a body by Content-Length); false at EOF. */
static bool read_request(int fd, char *out, size_t size)
{
	size_t got = 0;
	char *end, *cl;

	for (;;) {
		ssize_t n = recv(fd, out + got, size - 1 - got, 0);

		if (n <= 0)
			return false;
		got += (size_t)n;
		out[got] = '\0';
		end = strstr(out, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(out, "Content-Length: ");
		if (!cl || got >= (size_t)(end + 4 - out) + strtoul(cl + 16, NULL, 10))
			return true;
	}
}

static void *serve(void *userdata)
{
	struct server *s = userdata;
	int fd = -1;

	for (size_t i = 0; i < s->n_steps; i++) {
		char req[4096];

		if (fd < 0) {
			fd = accept(s->lfd, NULL, NULL);
			if (fd < 0)
				break;
			s->accepts++;
		}
		if (!read_request(fd, req, sizeof(req))) {
			/* The client closed: this step goes to the next connection. */
			close(fd);
			fd = -1;
			i--;
			continue;
		}
		memcpy(s->last_request, req, sizeof(req));
		if (s->steps[i].delay_ms)
			usleep((useconds_t)s->steps[i].delay_ms * 1000);
		/* The client may be gone (it timed out): then so is this reply. */
		if (s->steps[i].reply)
			(void)send(fd, s->steps[i].reply, strlen(s->steps[i].reply), MSG_NOSIGNAL);
		if (s->steps[i].close) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void server_start(struct server *s, const struct step *steps, size_t n)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->steps = steps;
	s->n_steps = n;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 8), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
	shutdown(s->lfd, SHUT_RDWR); /* wakes a pending accept() */
	pthread_join(s->thread, NULL);
	close(s->lfd);
}

struct call {
	int r;
	struct http_reply reply;
	char error[256];
};

static void call(struct http_client *c, const struct server *s, const char *method,
		 const char *path, char *const *headers, const char *body, usec_t timeout,
		 struct call *ret)
{
	char url[128];
	struct http_url u;
	struct http_request req = {
		.method = method,
		.url = &u,
		.headers = headers,
		.user_agent = "test/1",
		.body = body,
		.body_len = body ? strlen(body) : 0,
		.deadline = now_monotonic() + timeout,
		.body_keep = 4,
		.body_max = 1024,
	};

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", s->port, path);
	assert_int_equal(http_url_parse(url, &u), 0);
	memset(ret, 0, sizeof(*ret));
	ret->r = http_client_request(c, &req, &ret->reply, ret->error, sizeof(ret->error));
}

#define OK_LONG "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"
#define OK_SHORT "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

static void test_request_and_reuse(void **state)
{
	static const struct step steps[] = {
		{ OK_LONG },
		{ "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" },
		{ OK_SHORT },
	};
	char *headers[] = { "X-A: 1", "Accept:", "X-Empty;", NULL };
	struct http_client *c;
	struct server s;
	struct call r;
	char expect[512];

	(void)state;
	server_start(&s, steps, 3);
	assert_int_equal(http_client_new(&c), 0);

	call(c, &s, "GET", "/p?q=1", headers, NULL, USEC_PER_SEC, &r);
	assert_int_equal(r.r, 0);
	assert_int_equal(r.reply.status, 200);
	assert_false(r.reply.reused);
	/* body_keep 4 of a 10-byte body. */
	assert_string_equal(r.reply.body.data, "0123");
	assert_true(r.reply.truncated);
	http_reply_release(&r.reply);
	snprintf(expect, sizeof(expect), "GET /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
		 "User-Agent: test/1\r\nX-A: 1\r\nX-Empty:\r\n\r\n", s.port);
	assert_string_equal(s.last_request, expect);

	call(c, &s, "HEAD", "", NULL, NULL, USEC_PER_SEC, &r);
	assert_int_equal(r.r, 0);
	assert_int_equal(r.reply.status, 404);
	assert_true(r.reply.reused);
	http_reply_release(&r.reply);
	assert_non_null(strstr(s.last_request, "HEAD / HTTP/1.1\r\n"));
	assert_non_null(strstr(s.last_request, "Accept: */*\r\n"));

	call(c, &s, "POST", "/hook", NULL, "{\"a\":1}", USEC_PER_SEC, &r);
	assert_int_equal(r.r, 0);
	assert_string_equal(r.reply.body.data, "ok");
	assert_false(r.reply.truncated);
	assert_true(r.reply.reused);
	http_reply_release(&r.reply);
	assert_non_null(strstr(s.last_request, "Content-Length: 7\r\n\r\n{\"a\":1}"));

	http_client_free(c);
	server_stop(&s);
	assert_int_equal(s.accepts, 1); /* three requests, one connection */
}

static void test_server_closed_kept_connection(void **state)
{
	/* 1: closes after answering; 2: reads the request and closes without a
	 * word (a keep-alive timeout racing the request); 3: answers. */
	static const struct step steps[] = {
		{ OK_SHORT, .close = false }, { NULL, .close = true }, { OK_SHORT, .close = true },
		{ OK_SHORT },
	};
	struct http_client *c;
	struct server s;
	struct call r;

	(void)state;
	server_start(&s, steps, 4);
	assert_int_equal(http_client_new(&c), 0);
	call(c, &s, "GET", "/", NULL, NULL, USEC_PER_SEC, &r);
	assert_int_equal(r.r, 0);
	http_reply_release(&r.reply);
	/* Sent on the kept connection, closed unanswered: once more, anew. */
	call(c, &s, "GET", "/", NULL, NULL, USEC_PER_SEC, &r);
	assert_int_equal(r.r, 0);
	assert_int_equal(r.reply.status, 200);
	assert_false(r.reply.reused);
	http_reply_release(&r.reply);
	/* The server closed after that answer: seen before sending. */
	usleep(50 * 1000);
	call(c, &s, "GET", "/", NULL, NULL, USEC_PER_SEC, &r);
	assert_int_equal(r.r, 0);
	assert_false(r.reply.reused);
	http_reply_release(&r.reply);
	http_client_free(c);
	server_stop(&s);
	assert_int_equal(s.accepts, 3);
}

static void test_failures(void **state)
{
	static const struct step steps[] = {
		{ OK_SHORT, .delay_ms = 400 },
		{ "SSH-2.0-OpenSSH_9.2\r\n" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nshort", .close = true },
	};
	struct http_client *c;
	struct server s, closed;
	struct call r;
	usec_t t0;
	char expect[128];

	(void)state;
	server_start(&s, steps, 4);
	assert_int_equal(http_client_new(&c), 0);

	t0 = now_monotonic();
	call(c, &s, "GET", "/", NULL, NULL, 100 * USEC_PER_MSEC, &r);
	assert_int_equal(r.r, -ETIMEDOUT);
	assert_string_equal(r.error, "timed out waiting for the response");
	assert_true(now_monotonic() - t0 < 300 * USEC_PER_MSEC);

	call(c, &s, "GET", "/", NULL, NULL, USEC_PER_SEC, &r);
	assert_int_equal(r.r, -BCDR_ERR_PROTOCOL);
	assert_string_equal(r.error, "invalid response: not an HTTP/1 status line");

	call(c, &s, "GET", "/", NULL, NULL, USEC_PER_SEC, &r);
	assert_int_equal(r.r, -BCDR_ERR_TOO_BIG);
	assert_string_equal(r.error, "invalid response: Content-Length over the limit");

	call(c, &s, "GET", "/", NULL, NULL, USEC_PER_SEC, &r);
	assert_int_equal(r.r, -BCDR_ERR_PROTOCOL);
	assert_string_equal(r.error, "the connection closed in the middle of the response");
	server_stop(&s);

	/* Nobody listens: refused. */
	server_start(&closed, NULL, 0);
	server_stop(&closed);
	call(c, &closed, "GET", "/", NULL, NULL, USEC_PER_SEC, &r);
	assert_int_equal(r.r, -ECONNREFUSED);
	snprintf(expect, sizeof(expect), "cannot connect to 127.0.0.1 port %u: Connection refused",
		 closed.port);
	assert_string_equal(r.error, expect);

	/* A header with a line break is never sent. */
	{
		char *headers[] = { "X-A: 1\r\nX-Injected: 1", NULL };

		call(c, &closed, "GET", "/", headers, NULL, USEC_PER_SEC, &r);
		assert_int_equal(r.r, -EINVAL);
	}
	http_client_free(c);
}

static void *cancel_later(void *userdata)
{
	usleep(150 * 1000);
	__atomic_store_n((bool *)userdata, true, __ATOMIC_RELAXED);
	return NULL;
}

static void test_cancel(void **state)
{
	static const struct step steps[] = { { OK_SHORT, .delay_ms = 1500 } };
	struct http_url u;
	char url[64], error[128];
	bool cancel = false;
	struct http_client *c;
	struct http_reply reply;
	struct server s;
	pthread_t t;
	usec_t t0;

	(void)state;
	server_start(&s, steps, 1);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", s.port);
	assert_int_equal(http_url_parse(url, &u), 0);
	struct http_request req = {
		.method = "GET", .url = &u, .deadline = now_monotonic() + 10 * USEC_PER_SEC,
		.cancel = &cancel, .body_keep = 16, .body_max = 16,
	};
	assert_int_equal(http_client_new(&c), 0);
	assert_int_equal(pthread_create(&t, NULL, cancel_later, &cancel), 0);
	t0 = now_monotonic();
	assert_int_equal(http_client_request(c, &req, &reply, error, sizeof(error)), -ECANCELED);
	/* Seen within CANCEL_POLL_MS of the flag, far before the deadline. */
	assert_true(now_monotonic() - t0 < 600 * USEC_PER_MSEC);
	assert_string_equal(error, "cancelled");
	pthread_join(t, NULL);
	http_client_free(c);
	server_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_parse),
		cmocka_unit_test(test_request_and_reuse),
		cmocka_unit_test(test_server_closed_kept_connection),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_cancel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
