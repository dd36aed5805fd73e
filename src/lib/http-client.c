/* The http:// client (see the header). One request costs, on a kept
 * connection, a poll() to see that the server has not closed it, one
 * send(), and a poll() and a recv() per piece of the response: what makes
 * a 1 s health check cheap, where libcurl spends far more per transfer on
 * its generic machinery. */
#include "lib/http-client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/http-response.h"
#include "lib/net.h"

#define DNS_ADDRS_MAX 8 /* addresses of a name tried, in getaddrinfo()'s order */
#define RECV_CHUNK 16384

struct http_client {
	int fd; /* the kept connection, or -1 */
	char conn_host[256];
	uint16_t conn_port;
	/* The last name looked up (a client talks to one place: a check's URL,
	 * a receiver's). */
	struct {
		char host[256];
		uint16_t port;
		usec_t expires; /* monotonic */
		size_t n;
		struct sockaddr_storage addr[DNS_ADDRS_MAX];
		socklen_t len[DNS_ADDRS_MAX];
	} dns;
};

/* ---- URLs ---- */

static bool is_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

/* "[::1]" or "[fe80::1%25eth0]" (the zone's "%" encoded, RFC 6874). */
static int parse_ipv6(const char *s, size_t n, struct http_url *u)
{
	struct in6_addr a;
	char addr[INET6_ADDRSTRLEN];
	size_t alen = 0, out = 0;

	while (alen < n && s[alen] != '%')
		alen++;
	if (!alen || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET6, addr, &a) != 1)
		return -EINVAL;
	memcpy(u->host, s, alen);
	out = alen;
	if (alen < n) {
		/* "%25" then the zone's name. */
		if (n - alen < 4 || memcmp(s + alen, "%25", 3) != 0 || n - 2 >= sizeof(u->host))
			return -EINVAL;
		u->host[out++] = '%';
		for (size_t i = alen + 3; i < n; i++) {
			if (!is_host_char(s[i]))
				return -EINVAL;
			u->host[out++] = s[i];
		}
	}
	u->host[out] = '\0';
	u->ipv6 = true;
	return 0;
}

int http_url_parse(const char *url, struct http_url *ret)
{
	size_t len = strnlen(url, HTTP_URL_MAX + 1);
	struct http_url u = { .port = 80 };
	const char *a, *end, *p, *path_end;

	if (len > HTTP_URL_MAX)
		return -BCDR_ERR_TOO_BIG;
	if (strncasecmp(url, "http://", 7) != 0)
		return -EPROTONOSUPPORT;
	a = url + 7;
	end = a + strcspn(a, "/?#");
	if (memchr(a, '@', (size_t)(end - a)))
		return -ENOTSUP;
	if (*a == '[') {
		const char *close = memchr(a, ']', (size_t)(end - a));

		if (!close || parse_ipv6(a + 1, (size_t)(close - a - 1), &u) < 0)
			return -EINVAL;
		p = close + 1;
	} else {
		p = a;
		while (p < end && *p != ':') {
			if (!is_host_char(*p))
				return -EINVAL;
			p++;
		}
		if (p == a || (size_t)(p - a) >= sizeof(u.host))
			return -EINVAL;
		memcpy(u.host, a, (size_t)(p - a));
	}
	if (p < end) {
		unsigned port = 0;

		if (*p++ != ':')
			return -EINVAL;
		if (end - p > 5)
			return -EINVAL;
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			port = port * 10 + (unsigned)(*p - '0');
		}
		/* "host:" is the default port (RFC 3986 3.2.3). */
		if (port > 65535 || (port == 0 && p[-1] != ':'))
			return -EINVAL;
		if (port)
			u.port = (uint16_t)port;
	}
	path_end = end + strcspn(end, "#");
	for (p = end; p < path_end; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return -EINVAL; /* a space or a control byte: not a URL */
	u.path = end;
	u.path_len = (size_t)(path_end - end);
	*ret = u;
	return 0;
}

/* ---- the client ---- */

int http_client_new(struct http_client **ret)
{
	struct http_client *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->fd = -1;
	*ret = c;
	return 0;
}

static void close_conn(struct http_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	close_conn(c);
	free(c);
}

void http_reply_release(struct http_reply *r)
{
	buf_release(&r->body);
}

static int errorf(char *error, size_t size, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int errorf(char *error, size_t size, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(error, size, fmt, ap);
	va_end(ap);
	return r;
}

static int resolve(struct http_client *c, const struct http_url *u, char *error, size_t size)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	usec_t now = now_monotonic();
	char port[8];
	int r;

	if (c->dns.n && c->dns.port == u->port && now < c->dns.expires &&
	    strcmp(c->dns.host, u->host) == 0)
		return 0;
	snprintf(port, sizeof(port), "%u", u->port);
	c->dns.n = 0;
	r = getaddrinfo(u->host, port, &hints, &ai);
	if (r != 0)
		return errorf(error, size, -EHOSTUNREACH, "cannot resolve '%s': %s", u->host,
			      r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
	for (struct addrinfo *a = ai; a && c->dns.n < DNS_ADDRS_MAX; a = a->ai_next) {
		if (a->ai_addrlen > sizeof(c->dns.addr[0]))
			continue;
		memcpy(&c->dns.addr[c->dns.n], a->ai_addr, a->ai_addrlen);
		c->dns.len[c->dns.n++] = a->ai_addrlen;
	}
	freeaddrinfo(ai);
	if (!c->dns.n)
		return errorf(error, size, -EHOSTUNREACH, "cannot resolve '%s': no address",
			      u->host);
	snprintf(c->dns.host, sizeof(c->dns.host), "%s", u->host);
	c->dns.port = u->port;
	c->dns.expires = now + HTTP_DNS_TTL;
	return 0;
}

static int open_conn(struct http_client *c, const struct http_url *u, usec_t deadline,
		     const bool *cancel, char *error, size_t size)
{
	int r = resolve(c, u, error, size), fd = -1;

	if (r < 0)
		return r;
	r = -ECONNREFUSED;
	for (size_t i = 0; i < c->dns.n && fd < 0 && r != -ECANCELED; i++)
		r = net_connect((const struct sockaddr *)&c->dns.addr[i], c->dns.len[i], true,
				deadline, cancel, &fd);
	if (fd < 0) {
		if (r == -ECANCELED)
			return errorf(error, size, r, "cancelled");
		if (r == -ETIMEDOUT)
			return errorf(error, size, r, "timed out connecting to %s port %u",
				      u->host, u->port);
		return errorf(error, size, r, "cannot connect to %s port %u: %s", u->host, u->port,
			      strerror(-r));
	}
	c->fd = fd;
	snprintf(c->conn_host, sizeof(c->conn_host), "%s", u->host);
	c->conn_port = u->port;
	return 0;
}

/* A kept connection is usable while nothing is to be read on it: the
 * server's close (or a reset, or stray bytes) makes it readable. */
static bool conn_usable(const struct http_client *c, const struct http_url *u)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	if (c->conn_port != u->port || strcmp(c->conn_host, u->host) != 0)
		return false;
	return poll(&p, 1, 0) == 0;
}

static bool header_named(const char *h, const char *name)
{
	size_t n = strlen(name);

	return strncasecmp(h, name, n) == 0 && (h[n] == ':' || h[n] == ';');
}

/* "Name:" with nothing after it: the default header is not sent (curl's
 * convention, which plans written for the curl-based probe may use). */
static bool header_removes(const char *h)
{
	const char *colon = strchr(h, ':');

	if (!colon)
		return false;
	for (colon++; *colon == ' ' || *colon == '\t'; colon++)
		;
	return !*colon;
}

static bool user_sets(char *const *headers, const char *name)
{
	for (char *const *h = headers; h && *h; h++)
		if (header_named(*h, name))
			return true;
	return false;
}

static int build_request(const struct http_request *req, struct buf *out, char *error,
			 size_t size)
{
	const struct http_url *u = req->url;
	int r;

	for (const char *m = req->method; *m; m++)
		if (*m <= ' ' || *m >= 0x7f)
			return errorf(error, size, -EINVAL, "invalid method '%s'", req->method);
	/* No path, or only a query ("http://h?x"): the path is "/". */
	r = buf_printf(out, "%s %s%.*s HTTP/1.1\r\n", req->method,
		       !u->path_len || u->path[0] == '?' ? "/" : "", (int)u->path_len, u->path);
	if (r >= 0 && !user_sets(req->headers, "Host")) {
		/* The zone of a link-local address is ours, not the server's. */
		int hlen = (int)strcspn(u->host, "%");

		r = buf_printf(out, u->ipv6 ? "Host: [%.*s]" : "Host: %.*s", hlen, u->host);
		if (r >= 0 && u->port != 80)
			r = buf_printf(out, ":%u", u->port);
		if (r >= 0)
			r = buf_append_str(out, "\r\n");
	}
	if (r >= 0 && req->user_agent && !user_sets(req->headers, "User-Agent"))
		r = buf_printf(out, "User-Agent: %s\r\n", req->user_agent);
	if (r >= 0 && !user_sets(req->headers, "Accept"))
		r = buf_append_str(out, "Accept: */*\r\n");
	for (char *const *h = req->headers; r >= 0 && h && *h; h++) {
		const char *semi = strchr(*h, ';'), *colon = strchr(*h, ':');

		if (strpbrk(*h, "\r\n"))
			return errorf(error, size, -EINVAL, "the header '%.40s' has a line break",
				      *h);
		/* The body is framed here; another framing would break it. */
		if (header_named(*h, "Content-Length") || header_named(*h, "Transfer-Encoding") ||
		    header_removes(*h))
			continue;
		if (colon)
			r = buf_printf(out, "%s\r\n", *h);
		else if (semi && !semi[1]) /* "Name;": the header with an empty value */
			r = buf_printf(out, "%.*s:\r\n", (int)(semi - *h), *h);
		else
			return errorf(error, size, -EINVAL,
				      "the header '%.40s' is not 'Name: value'", *h);
	}
	if (r >= 0 && req->body)
		r = buf_printf(out, "Content-Length: %zu\r\n", req->body_len);
	if (r >= 0)
		r = buf_append_str(out, "\r\n");
	if (r == -BCDR_ERR_TOO_BIG)
		return errorf(error, size, r, "the request's headers are over 64 KiB");
	if (r < 0)
		return errorf(error, size, r, "%s", err_str(r));
	return 0;
}

static int send_all(int fd, const char *p, size_t len, usec_t deadline, const bool *cancel)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		int r;

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		r = net_wait_fd(fd, POLLOUT, deadline, cancel);
		if (r < 0)
			return r;
	}
	return 0;
}

struct body_sink {
	struct http_reply *reply;
	size_t keep;
};

static int keep_body(void *userdata, const char *data, size_t len)
{
	struct body_sink *s = userdata;
	size_t room = s->keep - s->reply->body.len;

	if (len > room)
		s->reply->truncated = true;
	return room ? buf_append(&s->reply->body, data, len < room ? len : room) : 0;
}

/* One request and its response on c->fd. *ret_got_any: some of the
 * response arrived (a request that failed before may not be retried). */
static int exchange(struct http_client *c, const struct http_request *req,
		    const struct buf *wire, struct http_reply *reply, bool *ret_got_any,
		    char *error, size_t size)
{
	const struct http_url *u = req->url;
	struct http_response_parser p;
	struct body_sink sink = { .reply = reply, .keep = req->body_keep };
	char in[RECV_CHUNK];
	bool keep = false;
	int r;

	*ret_got_any = false;
	r = send_all(c->fd, wire->data, wire->len, req->deadline, req->cancel);
	if (r >= 0 && req->body && req->body_len)
		r = send_all(c->fd, req->body, req->body_len, req->deadline, req->cancel);
	if (r == -ECANCELED)
		return errorf(error, size, r, "cancelled");
	if (r == -ETIMEDOUT)
		return errorf(error, size, r, "timed out sending the request");
	if (r < 0)
		return errorf(error, size, r, "cannot send to %s port %u: %s", u->host, u->port,
			      strerror(-r));
	http_response_parser_init(&p, strcasecmp(req->method, "HEAD") == 0, req->body_max,
				  keep_body, &sink);
	for (;;) {
		ssize_t n;
		size_t used;

		r = net_wait_fd(c->fd, POLLIN, req->deadline, req->cancel);
		if (r == -ECANCELED) {
			r = errorf(error, size, r, "cancelled");
			break;
		}
		if (r == -ETIMEDOUT) {
			r = errorf(error, size, r, "timed out %s",
				   p.wire_len ? "reading the response" : "waiting for the response");
			break;
		}
		if (r < 0) {
			r = errorf(error, size, r, "cannot receive from %s port %u: %s", u->host,
				   u->port, strerror(-r));
			break;
		}
		n = recv(c->fd, in, sizeof(in), 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			r = errorf(error, size, -errno, "cannot receive from %s port %u: %s",
				   u->host, u->port, strerror(errno));
			break;
		}
		if (n == 0) {
			r = http_response_parser_eof(&p);
			if (r < 0)
				r = errorf(error, size, r, "%s", p.error);
			break;
		}
		*ret_got_any = true;
		r = http_response_parser_feed(&p, in, (size_t)n, &used);
		if (r < 0) {
			if (r == -ENOMEM)
				r = errorf(error, size, r, "%s", err_str(r));
			else
				r = errorf(error, size, r, "invalid response: %s", p.error);
			break;
		}
		if (r == 1) {
			/* Bytes past the response: the server is out of step. */
			keep = !p.close && used == (size_t)n;
			break;
		}
	}
	if (r >= 0) {
		reply->status = p.status;
		if (!reply->body.data && buf_append(&reply->body, "", 0) < 0)
			r = -ENOMEM;
	}
	http_response_parser_release(&p);
	if (r < 0 || !keep)
		close_conn(c);
	return r < 0 ? r : 0;
}

int http_client_request(struct http_client *c, const struct http_request *req,
			struct http_reply *ret, char *error, size_t error_size)
{
	_cleanup_(buf_release) struct buf wire;
	struct http_reply reply = { 0 };
	int r;

	error[0] = '\0';
	buf_init(&wire, HTTP_REQUEST_HEAD_MAX);
	r = build_request(req, &wire, error, error_size);
	if (r < 0)
		return r;
	for (int attempt = 0;; attempt++) {
		bool reused = false, got_any = false;

		if (c->fd >= 0 && !conn_usable(c, req->url))
			close_conn(c);
		if (c->fd >= 0)
			reused = true;
		else if ((r = open_conn(c, req->url, req->deadline, req->cancel, error,
					error_size)) < 0)
			return r;
		buf_init(&reply.body, req->body_keep);
		reply.truncated = false;
		r = exchange(c, req, &wire, &reply, &got_any, error, error_size);
		if (r >= 0) {
			reply.reused = reused;
			*ret = reply;
			return 0;
		}
		http_reply_release(&reply);
		/* The server closed a kept connection as we sent: once more, on a
		 * new one (what curl and browsers do). */
		if (!reused || got_any || attempt > 0 || r == -ETIMEDOUT || r == -ECANCELED ||
		    r == -ENOMEM)
			return r;
	}
}
