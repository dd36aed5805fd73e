/* An HTTP/1.x response parser for the client (lib/http-client.h): fed the
 * bytes as they arrive, in pieces of any size, it reads the status line
 * and the headers, then the body by Content-Length, chunked, or up to the
 * close, handing body bytes to a callback. Everything is bounded: the head
 * (status line, headers, and the trailers of a chunked body) by
 * HTTP_HEAD_MAX, a chunk-size line by HTTP_CHUNK_LINE_MAX, the body by the
 * caller's limit, and so the bytes read in all. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define HTTP_HEAD_MAX (64u * 1024)   /* status line and headers, and trailers */
#define HTTP_CHUNK_LINE_MAX 4096u    /* a chunk-size line with its extensions */

/* Receives body bytes; a negative return stops the parser with that error. */
typedef int (*http_body_fn)(void *userdata, const char *data, size_t len);

enum http_parse_state {
	HTTP_PARSE_HEAD,        /* status line and headers (also of 1xx responses) */
	HTTP_PARSE_BODY_LENGTH, /* Content-Length bytes */
	HTTP_PARSE_CHUNK_SIZE,  /* the line of the next chunk's size */
	HTTP_PARSE_CHUNK_DATA,
	HTTP_PARSE_CHUNK_END,   /* the CRLF after a chunk's data */
	HTTP_PARSE_TRAILER,     /* trailer lines after the last chunk */
	HTTP_PARSE_BODY_CLOSE,  /* everything up to the close */
	HTTP_PARSE_DONE,
};

struct http_response_parser {
	/* What the response said (status set once its status line is read). */
	int status;             /* 100..999 of the final response */
	int minor;              /* HTTP/1.minor */
	int64_t content_length; /* -1: none */
	bool chunked;
	bool close;             /* the connection cannot carry another request */
	uint64_t body_len;      /* body bytes handed to the callback */
	uint64_t wire_len;      /* bytes fed in all */
	const char *error;      /* static: what was wrong, after a failure */

	/* Private. */
	enum http_parse_state state;
	bool head_request;      /* a HEAD response has no body, whatever it says */
	bool have_status;       /* the status line of the current head was read */
	bool transfer_encoding; /* a Transfer-Encoding header was seen */
	bool conn_close, conn_keep_alive;
	uint64_t left;          /* of Content-Length, or of the current chunk */
	uint64_t body_max;
	size_t head_len;        /* bytes of the heads (and trailers) so far */
	uint64_t framing_len;   /* bytes of chunk-size lines and chunk ends */
	struct buf line;        /* a line split across feeds */
	http_body_fn on_body;
	void *userdata;
};

/* Ready for the response to one request. body_max: body bytes accepted at
 * most (more fails with -BCDR_ERR_TOO_BIG). on_body may be NULL. */
void http_response_parser_init(struct http_response_parser *p, bool head_request,
			       uint64_t body_max, http_body_fn on_body, void *userdata);
void http_response_parser_release(struct http_response_parser *p);

/* Feeds len bytes. Returns 0 when more are needed (all taken), 1 when the
 * response is complete (*ret_used: bytes of data it took; any left over
 * were not part of it), -BCDR_ERR_PROTOCOL on a malformed response,
 * -BCDR_ERR_TOO_BIG over a limit (p->error says which), or the callback's
 * error. */
int http_response_parser_feed(struct http_response_parser *p, const char *data, size_t len,
			      size_t *ret_used);

/* The peer closed the connection: 1 when that ends the response (a body
 * read up to the close), -BCDR_ERR_PROTOCOL when it was cut short. */
int http_response_parser_eof(struct http_response_parser *p);
