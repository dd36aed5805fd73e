#include "repo/s3-xml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

/* The text of the first <name>...</name> in [p, end), raw (entities not
 * decoded): *ret_text, *ret_len, and *ret_after just past the close tag.
 * Returns 1 found, 0 not found. */
static int find_element(const char *p, const char *end, const char *name, const char **ret_text,
			size_t *ret_len, const char **ret_after)
{
	size_t n = strlen(name);

	while (p < end) {
		const char *lt = memchr(p, '<', end - p), *gt, *text;

		if (!lt)
			return 0;
		if ((size_t)(end - lt) < n + 2) /* "<name>" does not fit */
			return 0;
		if (memcmp(lt + 1, name, n) == 0 && (lt[n + 1] == '>' || lt[n + 1] == ' ')) {
			gt = memchr(lt, '>', end - lt);
			if (!gt)
				return 0;
			text = gt + 1;
			if (gt[-1] == '/') { /* <name/> */
				*ret_text = text;
				*ret_len = 0;
				*ret_after = text;
				return 1;
			}
			for (const char *q = text; q + n + 3 <= end; q++) {
				q = memchr(q, '<', end - q);
				if (!q || q + n + 3 > end)
					break;
				if (q[1] == '/' && memcmp(q + 2, name, n) == 0 && q[n + 2] == '>') {
					*ret_text = text;
					*ret_len = q - text;
					*ret_after = q + n + 3;
					return 1;
				}
			}
			return -1; /* not closed */
		}
		p = lt + 1;
	}
	return 0;
}

/* Decodes XML text (the five entities and &#N; / &#xN;) into out. */
static int decode_text(const char *s, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned long c = (unsigned char)s[i];

		if (c == '<')
			return -BCDR_ERR_PROTOCOL; /* markup inside text: not what S3 sends */
		if (c == '&') {
			const char *semi = memchr(s + i, ';', len - i > 12 ? 12 : len - i);
			size_t el;

			if (!semi)
				return -BCDR_ERR_PROTOCOL;
			el = semi - (s + i) + 1;
			if (el == 5 && memcmp(s + i, "&amp;", 5) == 0)
				c = '&';
			else if (el == 4 && memcmp(s + i, "&lt;", 4) == 0)
				c = '<';
			else if (el == 4 && memcmp(s + i, "&gt;", 4) == 0)
				c = '>';
			else if (el == 6 && memcmp(s + i, "&quot;", 6) == 0)
				c = '"';
			else if (el == 6 && memcmp(s + i, "&apos;", 6) == 0)
				c = '\'';
			else if (el > 3 && s[i + 1] == '#') {
				char num[12], *e;

				snprintf(num, sizeof(num), "%.*s", (int)(el - 3), s + i + 2);
				c = num[0] == 'x' ? strtoul(num + 1, &e, 16) : strtoul(num, &e, 10);
				if (*e || c == 0 || c > 0x7f) /* keys bcdr writes are ASCII */
					return -BCDR_ERR_PROTOCOL;
			} else {
				return -BCDR_ERR_PROTOCOL;
			}
			i += el - 1;
		}
		if (o + 1 >= size)
			return -BCDR_ERR_TOO_BIG;
		out[o++] = (char)c;
	}
	out[o] = 0;
	return 0;
}

static int element_text(const char *p, const char *end, const char *name, char *out,
			size_t size)
{
	const char *text, *after;
	size_t len;
	int r = find_element(p, end, name, &text, &len, &after);

	if (r <= 0)
		return r < 0 ? -BCDR_ERR_PROTOCOL : 0;
	r = decode_text(text, len, out, size);
	return r < 0 ? r : 1;
}

int s3_list_parse(const char *xml, size_t len, struct s3_list_page *page,
		  int (*fn)(const char *key, uint64_t size, void *userdata), void *userdata)
{
	const char *end = xml + len, *p, *text, *after;
	char buf[S3_KEY_MAX + 1], last[S3_KEY_MAX + 1] = "", num[32];
	size_t tlen;
	int r;

	memset(page, 0, sizeof(*page));
	if (find_element(xml, end, "ListBucketResult", &text, &tlen, &after) != 1)
		return -BCDR_ERR_PROTOCOL;
	end = text + tlen;
	/* the top-level fields come outside <Contents>; read them in the
	 * text with the Contents blocks skipped, which S3 puts after them or
	 * before: search the whole and accept the first */
	r = element_text(text, end, "IsTruncated", num, sizeof(num));
	if (r < 0)
		return -BCDR_ERR_PROTOCOL;
	page->truncated = r > 0 && strcmp(num, "true") == 0;
	if (element_text(text, end, "NextContinuationToken", page->next_token,
			 sizeof(page->next_token)) < 0 ||
	    element_text(text, end, "NextMarker", page->next_marker,
			 sizeof(page->next_marker)) < 0)
		return -BCDR_ERR_PROTOCOL;
	for (p = text; p < end;) {
		const char *c, *cafter;
		size_t clen;
		char *e;
		unsigned long long size;

		r = find_element(p, end, "Contents", &c, &clen, &cafter);
		if (r < 0)
			return -BCDR_ERR_PROTOCOL;
		if (r == 0)
			break;
		if (element_text(c, c + clen, "Key", buf, sizeof(buf)) != 1 ||
		    element_text(c, c + clen, "Size", num, sizeof(num)) != 1)
			return -BCDR_ERR_PROTOCOL;
		errno = 0;
		size = strtoull(num, &e, 10);
		if (!num[0] || *e || errno || num[0] == '-')
			return -BCDR_ERR_PROTOCOL;
		page->nkeys++;
		r = fn(buf, size, userdata);
		if (r != 0)
			return r;
		snprintf(last, sizeof(last), "%s", buf);
		p = cafter;
	}
	/* v1 without NextMarker continues after the last key */
	if (!page->next_marker[0])
		snprintf(page->next_marker, sizeof(page->next_marker), "%s", last);
	return 0;
}

int s3_error_parse(const char *xml, size_t len, char *code, size_t code_size, char *message,
		   size_t message_size)
{
	const char *end = xml + len, *text, *after;
	size_t tlen;

	code[0] = message[0] = 0;
	if (find_element(xml, end, "Error", &text, &tlen, &after) != 1)
		return -BCDR_ERR_PROTOCOL;
	if (element_text(text, text + tlen, "Code", code, code_size) != 1) {
		code[0] = 0;
		return -BCDR_ERR_PROTOCOL;
	}
	if (element_text(text, text + tlen, "Message", message, message_size) < 0)
		message[0] = 0;
	return 0;
}

static void trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
		(*e)--;
}

int s3_credentials_parse(const char *text, size_t len, const char *profile, char *key_id,
			 size_t key_id_size, char *secret, size_t secret_size, char *token,
			 size_t token_size)
{
	const char *p = text, *end = text + len;
	bool in = false, found = false;

	key_id[0] = secret[0] = token[0] = 0;
	if (len > (1u << 20))
		return -BCDR_ERR_TOO_BIG;
	while (p < end) {
		const char *eol = memchr(p, '\n', end - p), *ls = p, *le = eol ? eol : end, *eq;

		p = eol ? eol + 1 : end;
		trim(&ls, &le);
		if (ls == le || *ls == '#' || *ls == ';')
			continue;
		if (*ls == '[') {
			const char *ns = ls + 1, *ne = le;

			if (ne[-1] != ']')
				return -BCDR_ERR_PROTOCOL;
			ne--;
			trim(&ns, &ne);
			/* "[name]" here; "[profile name]" in the config file */
			if ((size_t)(ne - ns) > 8 && memcmp(ns, "profile ", 8) == 0)
				ns += 8;
			in = (size_t)(ne - ns) == strlen(profile) &&
			     memcmp(ns, profile, ne - ns) == 0;
			found |= in;
			continue;
		}
		eq = memchr(ls, '=', le - ls);
		if (!eq || !in)
			continue;
		{
			const char *ks = ls, *ke = eq, *vs = eq + 1, *ve = le;
			char *out = NULL;
			size_t size = 0;

			trim(&ks, &ke);
			trim(&vs, &ve);
			size_t kl = ke - ks;

			if (kl == 17 && memcmp(ks, "aws_access_key_id", 17) == 0)
				out = key_id, size = key_id_size;
			else if (kl == 21 && memcmp(ks, "aws_secret_access_key", 21) == 0)
				out = secret, size = secret_size;
			else if (kl == 17 && memcmp(ks, "aws_session_token", 17) == 0)
				out = token, size = token_size;
			if (!out)
				continue;
			if ((size_t)(ve - vs) >= size)
				return -BCDR_ERR_TOO_BIG;
			memcpy(out, vs, ve - vs);
			out[ve - vs] = 0;
		}
	}
	return found ? 0 : -ENOENT;
}
