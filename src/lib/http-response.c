/* The HTTP/1.x response parser (see the header). Lines end in LF with an
 * optional CR before it, as RFC 9112 lets a recipient accept; a line that
 * arrives whole in one feed is parsed in place, only one split across
 * feeds is copied. */
#include "lib/http-response.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "lib/err.h"

void http_response_parser_init(struct http_response_parser *p, bool head_request,
			       uint64_t body_max, http_body_fn on_body, void *userdata)
{
	*p = (struct http_response_parser){
		.content_length = -1,
		.state = HTTP_PARSE_HEAD,
		.head_request = head_request,
		.body_max = body_max,
		.on_body = on_body,
		.userdata = userdata,
	};
	buf_init(&p->line, HTTP_HEAD_MAX);
}

void http_response_parser_release(struct http_response_parser *p)
{
	buf_release(&p->line);
}

static int fail(struct http_response_parser *p, int r, const char *why)
{
	p->error = why;
	return r;
}

static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Whether the comma-separated list s (n bytes) has token (any case). With
 * last, whether it is the list's last element. */
static bool list_has(const char *s, size_t n, const char *token, bool last)
{
	size_t tlen = strlen(token);
	bool found = false;

	while (n) {
		size_t len = 0;

		while (n && (is_ows(*s) || *s == ',')) {
			s++;
			n--;
		}
		if (!n)
			break;
		while (len < n && s[len] != ',')
			len++;
		size_t elen = len;

		while (elen && is_ows(s[elen - 1]))
			elen--;
		found = elen == tlen && strncasecmp(s, token, tlen) == 0;
		if (found && !last)
			return true;
		s += len;
		n -= len;
	}
	return found;
}

/* "HTTP/1.1 200 OK": the reason may be empty or missing. */
static int parse_status_line(struct http_response_parser *p, const char *s, size_t n)
{
	int status;

	if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
		return fail(p, -BCDR_ERR_PROTOCOL, "not an HTTP/1 status line");
	for (int i = 9; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return fail(p, -BCDR_ERR_PROTOCOL, "invalid status code");
	status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	if (status < 100 || (n > 12 && s[12] != ' '))
		return fail(p, -BCDR_ERR_PROTOCOL, "invalid status code");
	p->status = status;
	p->minor = s[7] - '0';
	p->have_status = true;
	return 0;
}

static int parse_content_length(struct http_response_parser *p, const char *v, size_t n)
{
	uint64_t value = 0;

	if (!n || n > 18)
		return fail(p, -BCDR_ERR_PROTOCOL, "invalid Content-Length");
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return fail(p, -BCDR_ERR_PROTOCOL, "invalid Content-Length");
		value = value * 10 + (uint64_t)(v[i] - '0');
	}
	/* Repeated, it must say the same (RFC 9112 6.3). */
	if (p->content_length >= 0 && (uint64_t)p->content_length != value)
		return fail(p, -BCDR_ERR_PROTOCOL, "conflicting Content-Length headers");
	p->content_length = (int64_t)value;
	return 0;
}

static int parse_header(struct http_response_parser *p, const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n), *v;
	size_t name_len, vlen;

	/* An obsolete folded continuation: ignored (RFC 9112 5.2 allows it),
	 * as no header bcdr reads is folded. */
	if (is_ows(s[0]))
		return 0;
	if (!colon || colon == s)
		return fail(p, -BCDR_ERR_PROTOCOL, "a header line without a name");
	name_len = (size_t)(colon - s);
	for (size_t i = 0; i < name_len; i++)
		if (!is_tchar((unsigned char)s[i]))
			return fail(p, -BCDR_ERR_PROTOCOL, "invalid header name");
	v = colon + 1;
	vlen = n - name_len - 1;
	while (vlen && is_ows(*v)) {
		v++;
		vlen--;
	}
	while (vlen && is_ows(v[vlen - 1]))
		vlen--;
	if (name_len == 14 && strncasecmp(s, "content-length", 14) == 0)
		return parse_content_length(p, v, vlen);
	if (name_len == 17 && strncasecmp(s, "transfer-encoding", 17) == 0) {
		/* The last coding decides; other codings mean a body up to the close. */
		p->transfer_encoding = true;
		p->chunked = list_has(v, vlen, "chunked", true);
	} else if (name_len == 10 && strncasecmp(s, "connection", 10) == 0) {
		p->conn_close |= list_has(v, vlen, "close", false);
		p->conn_keep_alive |= list_has(v, vlen, "keep-alive", false);
	}
	return 0;
}

/* The empty line after the headers: what the body is. */
static int end_of_head(struct http_response_parser *p)
{
	if (p->status < 200) {
		/* 1xx: interim (100 Continue, 103 Early Hints); the real one follows. */
		if (p->status == 101)
			return fail(p, -BCDR_ERR_PROTOCOL,
				    "101 Switching Protocols, never asked for");
		p->have_status = p->transfer_encoding = p->chunked = false;
		p->conn_close = p->conn_keep_alive = false;
		p->content_length = -1;
		return 0; /* head_len goes on: all heads together are bounded */
	}
	p->close = p->conn_close || (p->minor == 0 && !p->conn_keep_alive);
	if (p->head_request || p->status == 204 || p->status == 304) {
		p->state = HTTP_PARSE_DONE;
	} else if (p->transfer_encoding) {
		/* Both framings: chunked wins, and the connection is not reused
		 * (RFC 9112 6.3: it may have been a smuggling attempt). */
		if (p->content_length >= 0)
			p->close = true;
		p->content_length = -1;
		if (p->chunked) {
			p->state = HTTP_PARSE_CHUNK_SIZE;
		} else {
			p->state = HTTP_PARSE_BODY_CLOSE;
			p->close = true;
		}
	} else if (p->content_length >= 0) {
		if ((uint64_t)p->content_length > p->body_max)
			return fail(p, -BCDR_ERR_TOO_BIG, "Content-Length over the limit");
		p->left = (uint64_t)p->content_length;
		p->state = p->left ? HTTP_PARSE_BODY_LENGTH : HTTP_PARSE_DONE;
	} else {
		p->state = HTTP_PARSE_BODY_CLOSE;
		p->close = true;
	}
	p->head_len = 0;
	return 0;
}

/* "1a2f;ext=1": a hexadecimal size, optional extensions (ignored). */
static int parse_chunk_size(struct http_response_parser *p, const char *s, size_t n)
{
	uint64_t size = 0;
	size_t i = 0;

	for (; i < n; i++) {
		char c = s[i];
		unsigned digit;

		if (c >= '0' && c <= '9')
			digit = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			digit = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			digit = (unsigned)(c - 'A' + 10);
		else
			break;
		if (i >= 15)
			return fail(p, -BCDR_ERR_PROTOCOL, "chunk size too large");
		size = size * 16 + digit;
	}
	if (i == 0)
		return fail(p, -BCDR_ERR_PROTOCOL, "invalid chunk size");
	while (i < n && is_ows(s[i]))
		i++;
	if (i < n && s[i] != ';')
		return fail(p, -BCDR_ERR_PROTOCOL, "invalid chunk size");
	if (size > p->body_max - p->body_len)
		return fail(p, -BCDR_ERR_TOO_BIG, "body over the limit");
	p->left = size;
	p->state = size ? HTTP_PARSE_CHUNK_DATA : HTTP_PARSE_TRAILER;
	return 0;
}

/* One whole line, its LF (and CR) removed. */
static int on_line(struct http_response_parser *p, const char *s, size_t n)
{
	switch (p->state) {
	case HTTP_PARSE_HEAD:
		if (!p->have_status) {
			/* One or two tolerated before the status line (a stray CRLF
			 * after the previous response's body), as curl does. */
			if (n == 0 && p->head_len <= 4)
				return 0;
			return parse_status_line(p, s, n);
		}
		if (n == 0)
			return end_of_head(p);
		return parse_header(p, s, n);
	case HTTP_PARSE_CHUNK_SIZE:
		return parse_chunk_size(p, s, n);
	case HTTP_PARSE_CHUNK_END:
		if (n != 0)
			return fail(p, -BCDR_ERR_PROTOCOL, "no line end after a chunk");
		p->state = HTTP_PARSE_CHUNK_SIZE;
		return 0;
	case HTTP_PARSE_TRAILER:
		if (n == 0)
			p->state = HTTP_PARSE_DONE;
		return 0;
	default:
		return fail(p, -BCDR_ERR_PROTOCOL, "internal: a line in a body");
	}
}

static int deliver(struct http_response_parser *p, const char *data, size_t n)
{
	if (n > p->body_max - p->body_len)
		return fail(p, -BCDR_ERR_TOO_BIG, "body over the limit");
	p->body_len += n;
	if (p->on_body) {
		int r = p->on_body(p->userdata, data, n);

		if (r < 0)
			return fail(p, r, "the body was refused");
	}
	return 0;
}

static size_t line_max(const struct http_response_parser *p)
{
	return p->state == HTTP_PARSE_CHUNK_SIZE || p->state == HTTP_PARSE_CHUNK_END ?
		HTTP_CHUNK_LINE_MAX : HTTP_HEAD_MAX;
}

/* Takes bytes up to the end of a line; processes the line once whole. */
static int take_line(struct http_response_parser *p, const char *data, size_t len,
		     size_t *ret_used)
{
	const char *nl = memchr(data, '\n', len);
	size_t n = nl ? (size_t)(nl - data) + 1 : len;
	bool counts = p->state == HTTP_PARSE_HEAD || p->state == HTTP_PARSE_TRAILER;
	const char *s;
	size_t slen;
	int r;

	if (p->line.len + n > line_max(p) || (counts && p->head_len + n > HTTP_HEAD_MAX))
		return fail(p, -BCDR_ERR_TOO_BIG, p->state == HTTP_PARSE_HEAD ?
			    "headers over 64 KiB" : p->state == HTTP_PARSE_TRAILER ?
			    "trailers over 64 KiB" : "chunk-size line over 4 KiB");
	*ret_used = n;
	if (!nl || p->line.len) {
		r = buf_append(&p->line, data, n);
		if (r < 0)
			return fail(p, r, "out of memory");
		if (!nl) {
			if (counts)
				p->head_len += n;
			return 0;
		}
		s = p->line.data;
		slen = p->line.len;
	} else {
		s = data;
		slen = n;
	}
	slen--; /* the LF */
	if (slen && s[slen - 1] == '\r')
		slen--;
	if (counts)
		p->head_len += n;
	else if ((p->framing_len += n) > HTTP_HEAD_MAX + 8 * p->body_len)
		return fail(p, -BCDR_ERR_TOO_BIG, "chunk framing out of proportion to the body");
	r = on_line(p, s, slen);
	buf_reset(&p->line);
	return r;
}

int http_response_parser_feed(struct http_response_parser *p, const char *data, size_t len,
			      size_t *ret_used)
{
	size_t i = 0;
	int r = 0;

	if (p->error)
		return fail(p, -BCDR_ERR_PROTOCOL, p->error);
	while (i < len && p->state != HTTP_PARSE_DONE) {
		size_t n;

		switch (p->state) {
		case HTTP_PARSE_BODY_LENGTH:
		case HTTP_PARSE_CHUNK_DATA:
			n = len - i < p->left ? len - i : (size_t)p->left;
			r = deliver(p, data + i, n);
			p->left -= n;
			if (!p->left && p->state == HTTP_PARSE_CHUNK_DATA)
				p->state = HTTP_PARSE_CHUNK_END;
			else if (!p->left)
				p->state = HTTP_PARSE_DONE;
			break;
		case HTTP_PARSE_BODY_CLOSE:
			n = len - i;
			r = deliver(p, data + i, n);
			break;
		default:
			r = take_line(p, data + i, len - i, &n);
			break;
		}
		if (r < 0) {
			p->close = true;
			return r;
		}
		i += n;
		p->wire_len += n;
	}
	*ret_used = i;
	return p->state == HTTP_PARSE_DONE ? 1 : 0;
}

int http_response_parser_eof(struct http_response_parser *p)
{
	p->close = true;
	if (p->state == HTTP_PARSE_DONE)
		return 1;
	if (p->state == HTTP_PARSE_BODY_CLOSE && !p->error) {
		p->state = HTTP_PARSE_DONE;
		return 1;
	}
	if (!p->error)
		p->error = p->wire_len ? "the connection closed in the middle of the response" :
			   "the connection closed before a response";
	return -BCDR_ERR_PROTOCOL;
}
