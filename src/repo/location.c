#include "repo/location.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/hex.h"

const char *location_kind_name(enum location_kind k)
{
	switch (k) {
	case LOCATION_LOCAL:
		return "local";
	case LOCATION_SFTP:
		return "sftp";
	case LOCATION_REST:
		return "rest";
	case LOCATION_S3:
		return "s3";
	}
	return "?";
}

void location_free(struct location *l)
{
	if (!l)
		return;
	free(l->user);
	if (l->password) {
		explicit_bzero(l->password, strlen(l->password));
		free(l->password);
	}
	free(l->host);
	free(l->bucket);
	free(l->path);
	free(l->display);
	free(l);
}

static bool is_unreserved(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* A percent-decoded copy of s[0..len); NUL and control bytes refused. */
static int decode_part(const char *s, size_t len, char **ret)
{
	char *out = malloc(len + 1);
	size_t n = 0;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1;
			int lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;

			if (lo < 0) {
				free(out);
				return -EINVAL;
			}
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f) {
			free(out);
			return -EINVAL;
		}
		out[n++] = (char)c;
	}
	out[n] = 0;
	*ret = out;
	return 0;
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

/* HOST or [V6] at s, then an optional ":PORT" when want_port; *end is
 * where parsing stopped. */
static int parse_host(struct location *l, const char *s, const char *stop, bool want_port,
		      const char **end, const char **why)
{
	const char *p = s, *h0, *h1;

	if (*p == '[') {
		h0 = ++p;
		while (p < stop && *p != ']') {
			if (!(hex_digit(*p) >= 0 || *p == ':' || *p == '.')) {
				*why = "an IPv6 address in brackets has only hex digits, "
				       "':' and '.'";
				return -EINVAL;
			}
			p++;
		}
		if (p >= stop) {
			*why = "missing ']' after an IPv6 address";
			return -EINVAL;
		}
		h1 = p++;
		l->ipv6 = true;
	} else {
		h0 = p;
		while (p < stop && host_char(*p))
			p++;
		h1 = p;
	}
	if (h1 == h0) {
		*why = "no host name";
		return -EINVAL;
	}
	if (h1 - h0 > LOCATION_HOST_MAX) {
		*why = "the host name is longer than 253 characters";
		return -EINVAL;
	}
	if (*h0 == '-' || *h0 == '.') {
		*why = "a host name cannot start with '-' or '.'";
		return -EINVAL;
	}
	l->host = strndup(h0, h1 - h0);
	if (!l->host)
		return -ENOMEM;
	if (want_port && p < stop && *p == ':') {
		unsigned long port = 0;
		const char *d = ++p;

		while (p < stop && *p >= '0' && *p <= '9' && p - d < 6)
			port = port * 10 + (unsigned long)(*p++ - '0');
		if (p == d || port == 0 || port > 65535) {
			*why = "the port is not a number from 1 to 65535";
			return -EINVAL;
		}
		l->port = (uint16_t)port;
	}
	*end = p;
	return 0;
}

/* A URL path of unreserved characters and '/', without "." or ".."
 * segments; copied without its trailing slashes (and, when strip_lead,
 * without its leading ones). */
static int parse_url_path(const char *s, bool strip_lead, char **ret, const char **why)
{
	size_t len = strlen(s);
	const char *seg = s;

	for (const char *p = s;; p++) {
		if (*p == '/' || !*p) {
			size_t n = p - seg;

			bool dots = (n == 1 && seg[0] == '.') ||
				    (n == 2 && seg[0] == '.' && seg[1] == '.');

			if (dots) {
				*why = "the path has a '.' or '..' part";
				return -EINVAL;
			}
			if (!*p)
				break;
			seg = p + 1;
		} else if (!is_unreserved(*p)) {
			*why = "a URL path takes only letters, digits, '-', '.', '_', '~' and '/'";
			return -EINVAL;
		}
	}
	while (len && s[len - 1] == '/')
		len--;
	if (strip_lead)
		while (len && *s == '/') {
			s++;
			len--;
		}
	if (strstr(s, "//") && (size_t)(strstr(s, "//") - s) < len) {
		*why = "the path has an empty part ('//')";
		return -EINVAL;
	}
	*ret = strndup(s, len);
	return *ret ? 0 : -ENOMEM;
}

/* "http://" or "https://" at *s. */
static int parse_scheme(struct location *l, const char **s, bool optional, const char **why)
{
	if (strncmp(*s, "https://", 8) == 0) {
		l->tls = true;
		*s += 8;
	} else if (strncmp(*s, "http://", 7) == 0) {
		*s += 7;
	} else if (optional && !strstr(*s, "://")) {
		l->tls = true;
	} else {
		*why = "the URL must start with http:// or https://";
		return -EINVAL;
	}
	return 0;
}

static int parse_rest(struct location *l, const char *s, const char **why)
{
	const char *auth_end, *at = NULL, *p;
	int r = parse_scheme(l, &s, false, why);

	if (r < 0)
		return r;
	if (strpbrk(s, "?#")) {
		*why = "a repository URL has no query or fragment";
		return -EINVAL;
	}
	auth_end = s + strcspn(s, "/");
	for (p = s; p < auth_end; p++)
		if (*p == '@')
			at = p;
	if (at) {
		const char *colon = memchr(s, ':', at - s);

		r = decode_part(s, (colon ? colon : at) - s, &l->user);
		if (r >= 0 && colon)
			r = decode_part(colon + 1, at - colon - 1, &l->password);
		if (r < 0) {
			*why = "bad %-escape or control character in the user or password";
			return r;
		}
		if (!*l->user) {
			*why = "empty user name before '@'";
			return -EINVAL;
		}
		s = at + 1;
	}
	r = parse_host(l, s, auth_end, true, &p, why);
	if (r < 0)
		return r;
	if (p != auth_end) {
		*why = "unexpected character after the host (a port is ':' and digits)";
		return -EINVAL;
	}
	return parse_url_path(auth_end, false, &l->path, why);
}

static bool bucket_ok(const char *b, size_t n)
{
	if (n < 3 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!host_char(b[i]))
			return false;
	return b[0] != '-' && b[0] != '.';
}

static int parse_s3(struct location *l, const char *s, const char **why)
{
	const char *auth_end, *p, *bucket, *bucket_end;
	int r = parse_scheme(l, &s, true, why);

	if (r < 0)
		return r;
	if (strpbrk(s, "?#")) {
		*why = "a repository URL has no query or fragment";
		return -EINVAL;
	}
	auth_end = s + strcspn(s, "/@");
	if (*auth_end == '@') {
		*why = "credentials do not go in an s3 location: use AWS_ACCESS_KEY_ID and "
		       "AWS_SECRET_ACCESS_KEY, a credentials file or the plan's key files";
		return -EINVAL;
	}
	r = parse_host(l, s, auth_end, true, &p, why);
	if (r < 0)
		return r;
	if (p != auth_end) {
		*why = "unexpected character after the host (a port is ':' and digits)";
		return -EINVAL;
	}
	bucket = auth_end;
	while (*bucket == '/')
		bucket++;
	bucket_end = bucket + strcspn(bucket, "/");
	if (!bucket_ok(bucket, bucket_end - bucket)) {
		*why = "no bucket, or a bucket name that is not 3-63 letters, digits, "
		       "'.', '-', '_'";
		return -EINVAL;
	}
	l->bucket = strndup(bucket, bucket_end - bucket);
	if (!l->bucket)
		return -ENOMEM;
	return parse_url_path(bucket_end, true, &l->path, why);
}

/* Anything printable: the path goes to the sftp server as a protocol
 * string, never through a shell. */
static int sftp_path(const char *s, char **ret, const char **why)
{
	if (!*s) {
		*why = "no path after the host (sftp:HOST:/PATH)";
		return -EINVAL;
	}
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static int parse_sftp(struct location *l, const char *s, const char **why)
{
	bool url = strncmp(s, "//", 2) == 0;
	const char *stop, *at, *p;
	int r;

	if (url)
		s += 2;
	stop = url ? s + strcspn(s, "/") : s + strlen(s);
	at = memchr(s, '@', stop - s);
	if (at) {
		const char *colon = memchr(s, ':', at - s);

		if (colon) {
			*why = "no password in an sftp location: ssh asks for it, or use keys";
			return -EINVAL;
		}
		for (p = s; p < at; p++)
			if (!host_char(*p)) {
				*why = "a user name takes letters, digits, '-', '.' and '_'";
				return -EINVAL;
			}
		if (at == s || *s == '-') {
			*why = "empty user name, or one starting with '-'";
			return -EINVAL;
		}
		l->user = strndup(s, at - s);
		if (!l->user)
			return -ENOMEM;
		s = at + 1;
	}
	r = parse_host(l, s, stop, url, &p, why);
	if (r < 0)
		return r;
	if (url) {
		if (p != stop) {
			*why = "unexpected character after the host (a port is ':' and digits)";
			return -EINVAL;
		}
		return sftp_path(stop, &l->path, why);
	}
	if (*p != ':') {
		*why = "missing ':' between the host and the path (sftp:HOST:/PATH)";
		return -EINVAL;
	}
	p++;
	/* HOST:PORT:/PATH when digits and a colon follow */
	{
		const char *d = p;
		unsigned long port = 0;

		while (*d >= '0' && *d <= '9' && d - p < 6)
			port = port * 10 + (unsigned long)(*d++ - '0');
		if (d > p && *d == ':') {
			if (port == 0 || port > 65535) {
				*why = "the port is not a number from 1 to 65535";
				return -EINVAL;
			}
			l->port = (uint16_t)port;
			p = d + 1;
		}
	}
	return sftp_path(p, &l->path, why);
}

void location_redact(const char *text, char *out, size_t size)
{
	const char *scheme = strstr(text, "://"), *auth, *end, *at = NULL, *colon;

	if (!size)
		return;
	if (!scheme) {
		snprintf(out, size, "%s", text);
		return;
	}
	auth = scheme + 3;
	end = auth + strcspn(auth, "/?#");
	for (const char *p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	colon = at ? memchr(auth, ':', at - auth) : NULL;
	if (!colon) {
		snprintf(out, size, "%s", text);
		return;
	}
	snprintf(out, size, "%.*s***%s", (int)(colon + 1 - text), text, at);
}

int location_parse(const char *text, struct location **ret, const char **ret_why)
{
	_cleanup_(location_freep) struct location *l = calloc(1, sizeof(*l));
	const char *why = "malformed repository location", *dummy;
	size_t len = text ? strnlen(text, LOCATION_MAX + 1) : 0;
	char shown[LOCATION_MAX + 8];
	int r;

	if (!ret_why)
		ret_why = &dummy;
	if (!l)
		return -ENOMEM;
	if (len == 0) {
		*ret_why = "empty repository location";
		return -EINVAL;
	}
	if (len > LOCATION_MAX) {
		*ret_why = "the repository location is longer than 4096 characters";
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) {
			*ret_why = "control character in the repository location";
			return -EINVAL;
		}
	if (strncmp(text, "rest:", 5) == 0) {
		l->kind = LOCATION_REST;
		r = parse_rest(l, text + 5, &why);
	} else if (strncmp(text, "s3:", 3) == 0) {
		l->kind = LOCATION_S3;
		r = parse_s3(l, text + 3, &why);
	} else if (strncmp(text, "sftp:", 5) == 0) {
		l->kind = LOCATION_SFTP;
		r = parse_sftp(l, text + 5, &why);
	} else if (strstr(text, "://")) {
		why = "unknown kind of location: use a directory, sftp:, rest: or s3:";
		r = -EINVAL;
	} else {
		l->kind = LOCATION_LOCAL;
		l->path = strdup(text);
		r = l->path ? 0 : -ENOMEM;
	}
	if (r < 0) {
		if (r == -EINVAL)
			*ret_why = why;
		return r;
	}
	if (l->kind != LOCATION_LOCAL && strchr(text, ' ')) {
		*ret_why = "space in a repository URL";
		return -EINVAL;
	}
	location_redact(text, shown, sizeof(shown));
	l->display = strdup(shown);
	if (!l->display)
		return -ENOMEM;
	*ret = TAKE_PTR(l);
	return 0;
}
