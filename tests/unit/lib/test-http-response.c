/* lib/http-response.c: framings (Content-Length, chunked, up to the close,
 * none), every split of the input giving the same result, interim 1xx
 * responses, keep-alive rules, and garbage and oversize refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/http-response.h"

struct outcome {
	int r;          /* 1 done, 0 needs more (then eof's result), < 0 error */
	int status;
	bool close;
	size_t used;    /* bytes of the input taken */
	struct buf body;
};

static int collect(void *userdata, const char *data, size_t len)
{
	return buf_append(userdata, data, len);
}

/* Feeds text in pieces of step bytes (0: all at once), then the close if
 * eof and the response is not complete. */
static void parse(const char *text, size_t len, size_t step, bool head, bool eof,
		  uint64_t body_max, struct outcome *o)
{
	struct http_response_parser p;
	size_t at = 0;

	memset(o, 0, sizeof(*o));
	buf_init(&o->body, 1 << 24);
	http_response_parser_init(&p, head, body_max, collect, &o->body);
	do {
		size_t n = step && len - at > step ? step : len - at, used = 0;

		o->r = http_response_parser_feed(&p, text + at, n, &used);
		if (o->r == 0)
			assert_int_equal(used, n);
		at += used;
	} while (o->r == 0 && at < len);
	if (o->r == 0 && eof)
		o->r = http_response_parser_eof(&p);
	o->status = p.status;
	o->close = p.close;
	o->used = at;
	if (o->r < 0)
		assert_non_null(p.error);
	http_response_parser_release(&p);
}

/* The same outcome whatever the pieces: all at once, byte by byte, and in
 * pieces of 2, 3, 7 and 64. */
static void parse_all_ways(const char *text, bool head, bool eof, uint64_t body_max,
			   struct outcome *o)
{
	static const size_t steps[] = { 1, 2, 3, 7, 64 };
	size_t len = strlen(text);

	parse(text, len, 0, head, eof, body_max, o);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct outcome other;

		parse(text, len, steps[i], head, eof, body_max, &other);
		assert_int_equal(other.r, o->r);
		assert_int_equal(other.status, o->status);
		assert_int_equal(other.close, o->close);
		/* A failure stops wherever the bad byte was. */
		if (o->r >= 0) {
			assert_int_equal(other.used, o->used);
			assert_int_equal(other.body.len, o->body.len);
			if (o->body.len)
				assert_memory_equal(other.body.data, o->body.data, o->body.len);
		}
		buf_release(&other.body);
	}
}

static void expect_body(const char *text, int status, const char *body, bool close)
{
	struct outcome o;

	parse_all_ways(text, false, true, 1 << 20, &o);
	assert_int_equal(o.r, 1);
	assert_int_equal(o.status, status);
	assert_int_equal(o.close, close);
	assert_int_equal(o.body.len, strlen(body));
	if (*body)
		assert_memory_equal(o.body.data, body, strlen(body));
	buf_release(&o.body);
}

static void expect_error(const char *text, uint64_t body_max, int error)
{
	struct outcome o;

	parse_all_ways(text, false, true, body_max, &o);
	assert_int_equal(o.r, error);
	buf_release(&o.body);
}

static void test_content_length(void **state)
{
	(void)state;
	expect_body("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n", 200, "ok\n", false);
	expect_body("HTTP/1.1 404 Not Found\r\ncontent-length:  0 \r\n\r\n", 404, "", false);
	/* Bare LF line ends, no reason phrase. */
	expect_body("HTTP/1.1 200\nContent-Length: 2\n\nhi", 200, "hi", false);
	/* Repeated with the same value is fine. */
	expect_body("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 200, "x",
		    false);
}

static void test_response_ends_at_its_length(void **state)
{
	const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 500";
	struct outcome o;

	(void)state;
	parse(two, strlen(two), 0, false, false, 100, &o);
	assert_int_equal(o.r, 1);
	assert_int_equal(o.used, strlen(two) - strlen("HTTP/1.1 500"));
	assert_int_equal(o.body.len, 2);
	buf_release(&o.body);
}

static void test_chunked(void **state)
{
	(void)state;
	expect_body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "3\r\nabc\r\n10;name=value\r\n0123456789abcdef\r\n0\r\n\r\n",
		    200, "abc0123456789abcdef", false);
	/* Trailers, upper-case hex, a coding list ending in chunked. */
	expect_body("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
		    "A\r\n0123456789\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n",
		    200, "0123456789", false);
	/* Both framings: chunked wins, the connection is not reused. */
	expect_body("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "2\r\nok\r\n0\r\n\r\n", 200, "ok", true);
}

static void test_read_to_close(void **state)
{
	(void)state;
	expect_body("HTTP/1.1 200 OK\r\n\r\nall of it\n", 200, "all of it\n", true);
	expect_body("HTTP/1.0 200 OK\r\n\r\nold", 200, "old", true);
	/* A coding other than chunked last: up to the close. */
	expect_body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nzz", 200, "zz",
		    true);
}

static void test_keep_alive_rules(void **state)
{
	(void)state;
	expect_body("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", 200, "x",
		    true);
	expect_body("HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n",
		    200, "", true);
	expect_body("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, "x", true);
	expect_body("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", 200,
		    "x", false);
}

static void test_no_body(void **state)
{
	struct outcome o;
	const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";

	(void)state;
	expect_body("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 204, "", false);
	expect_body("HTTP/1.1 304 Not Modified\r\n\r\n", 304, "", false);
	/* A HEAD response: the headers describe a body that is not sent. */
	parse_all_ways(head, true, false, 100, &o);
	assert_int_equal(o.r, 1);
	assert_int_equal(o.status, 200);
	assert_int_equal(o.body.len, 0);
	buf_release(&o.body);
}

static void test_interim_responses(void **state)
{
	(void)state;
	expect_body("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
		    "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 201, "ok", false);
	expect_body("\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, "", false);
	expect_error("HTTP/1.1 101 Switching Protocols\r\n\r\n", 100, -BCDR_ERR_PROTOCOL);
}

static void test_garbage(void **state)
{
	static const char *const bad[] = {
		"garbage\r\n\r\n",
		"HTTP/2 200\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 099 Low\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1  200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
		"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 x\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
		"\r\n\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		/* Cut short: the close comes before the end. */
		"",
		"HTTP/1.1 200 OK\r\nContent-",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTrailer: x\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct outcome o;

		parse_all_ways(bad[i], false, true, 1 << 20, &o);
		if (o.r != -BCDR_ERR_PROTOCOL)
			fail_msg("accepted (%d): %s", o.r, bad[i]);
		buf_release(&o.body);
	}
}

static char *repeat(const char *head, char c, size_t n, const char *tail)
{
	size_t hl = strlen(head), tl = strlen(tail);
	char *s = malloc(hl + n + tl + 1);

	assert_non_null(s);
	memcpy(s, head, hl);
	memset(s + hl, c, n);
	memcpy(s + hl + n, tail, tl + 1);
	return s;
}

static void test_limits(void **state)
{
	char *s;

	(void)state;
	/* Headers: 64 KiB in all, one line or many. */
	s = repeat("HTTP/1.1 200 OK\r\nX-Big: ", 'a', HTTP_HEAD_MAX, "\r\n\r\n");
	expect_error(s, 100, -BCDR_ERR_TOO_BIG);
	free(s);
	s = repeat("HTTP/1.1 200 OK\r\nX-Big: ", 'a', HTTP_HEAD_MAX - 100, "\r\n\r\n");
	expect_body(s, 200, "", true);
	free(s);
	/* Endless interim responses count together. */
	{
		struct buf b;

		buf_init(&b, 1 << 20);
		while (b.len <= HTTP_HEAD_MAX)
			assert_int_equal(buf_append_str(&b, "HTTP/1.1 100 Continue\r\n\r\n"), 0);
		expect_error(b.data, 100, -BCDR_ERR_TOO_BIG);
		buf_release(&b);
	}
	/* The body: by Content-Length at once, chunked, and up to the close. */
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n0123456789a", 10,
		     -BCDR_ERR_TOO_BIG);
	expect_body("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", 200, "0123456789",
		    false);
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n"
		     "5\r\n01234\r\n0\r\n\r\n", 10, -BCDR_ERR_TOO_BIG);
	expect_error("HTTP/1.1 200 OK\r\n\r\n0123456789a", 10, -BCDR_ERR_TOO_BIG);
	/* A chunk-size line of 4 KiB of extensions. */
	s = repeat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;", 'e',
		   HTTP_CHUNK_LINE_MAX, "\r\nx\r\n0\r\n\r\n");
	expect_error(s, 100, -BCDR_ERR_TOO_BIG);
	free(s);
}

static void test_chunk_framing_bounded(void **state)
{
	struct buf b;

	(void)state;
	/* Each one-byte chunk with 2 KiB of extensions: framing out of all
	 * proportion to the body is refused long before the body limit. */
	buf_init(&b, 1 << 24);
	assert_int_equal(buf_append_str(&b, "HTTP/1.1 200 OK\r\n"
					"Transfer-Encoding: chunked\r\n\r\n"), 0);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(buf_append_str(&b, "1;"), 0);
		for (int j = 0; j < 2048; j++)
			assert_int_equal(buf_append(&b, "e", 1), 0);
		assert_int_equal(buf_append_str(&b, "\r\nx\r\n"), 0);
	}
	assert_int_equal(buf_append_str(&b, "0\r\n\r\n"), 0);
	{
		struct outcome o;

		parse(b.data, b.len, 0, false, true, 1 << 20, &o);
		assert_int_equal(o.r, -BCDR_ERR_TOO_BIG);
		assert_true(o.body.len < 100);
		buf_release(&o.body);
	}
	buf_release(&b);
}

static int refuse(void *userdata, const char *data, size_t len)
{
	(void)userdata;
	(void)data;
	(void)len;
	return -ENOSPC;
}

static void test_callback_error_stops(void **state)
{
	const char *text = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct http_response_parser p;
	size_t used;

	(void)state;
	http_response_parser_init(&p, false, 100, refuse, NULL);
	assert_int_equal(http_response_parser_feed(&p, text, strlen(text), &used), -ENOSPC);
	assert_true(p.close);
	/* Once failed, it stays failed. */
	assert_true(http_response_parser_feed(&p, "x", 1, &used) < 0);
	http_response_parser_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_response_ends_at_its_length),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_read_to_close),
		cmocka_unit_test(test_keep_alive_rules),
		cmocka_unit_test(test_no_body),
		cmocka_unit_test(test_interim_responses),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_chunk_framing_bounded),
		cmocka_unit_test(test_callback_error_stops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
