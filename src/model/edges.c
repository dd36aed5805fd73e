#include "model/edges.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/fs.h"

struct parser {
	const char *file, *p, *end;
	unsigned line;
	const char *line_start;
	struct edge_list *e;
	size_t names_cap, edges_cap;
	uint32_t *table; /* open addressing: index + 1, 0 empty */
	size_t table_size;
	char *error;
};

static int errorf(struct parser *ps, const char *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int errorf(struct parser *ps, const char *at, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	if (asprintf(&ps->error, "%s:%u:%u: %s", ps->file, ps->line,
		     (unsigned)(at - ps->line_start) + 1, msg) < 0)
		ps->error = NULL;
	return -BCDR_ERR_CORRUPT;
}

static uint64_t hash(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static int table_grow(struct parser *ps)
{
	size_t size = ps->table_size ? ps->table_size * 2 : 1024;
	uint32_t *t = calloc(size, sizeof(uint32_t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < ps->e->n_names; i++) {
		const char *name = ps->e->names[i];
		size_t h = hash(name, strlen(name)) & (size - 1);

		while (t[h])
			h = (h + 1) & (size - 1);
		t[h] = (uint32_t)i + 1;
	}
	free(ps->table);
	ps->table = t;
	ps->table_size = size;
	return 0;
}

/* Index of the name (len bytes), added if new. */
static int intern(struct parser *ps, const char *at, const char *name, size_t len,
		  uint32_t *ret)
{
	size_t h;
	int r;

	if (2 * (ps->e->n_names + 1) > ps->table_size) {
		r = table_grow(ps);
		if (r < 0)
			return r;
	}
	h = hash(name, len) & (ps->table_size - 1);
	while (ps->table[h]) {
		const char *other = ps->e->names[ps->table[h] - 1];

		if (strlen(other) == len && memcmp(other, name, len) == 0) {
			*ret = ps->table[h] - 1;
			return 0;
		}
		h = (h + 1) & (ps->table_size - 1);
	}
	if (ps->e->n_names >= EDGES_MAX_NODES)
		return errorf(ps, at, "more than %u nodes", EDGES_MAX_NODES);
	if (ps->e->n_names == ps->names_cap) {
		size_t cap = ps->names_cap ? ps->names_cap * 2 : 256;
		char **v = realloc(ps->e->names, cap * sizeof(char *));

		if (!v)
			return -ENOMEM;
		ps->e->names = v;
		ps->names_cap = cap;
	}
	ps->e->names[ps->e->n_names] = strndup(name, len);
	if (!ps->e->names[ps->e->n_names])
		return -ENOMEM;
	ps->table[h] = (uint32_t)ps->e->n_names + 1;
	*ret = (uint32_t)ps->e->n_names++;
	return 0;
}

/* Reads one field into buf (at most EDGES_MAX_NAME bytes); stops before
 * the comma or the end of the line. */
static int read_field(struct parser *ps, char *buf, size_t *ret_len, const char **ret_at)
{
	size_t len = 0;

	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
		ps->p++;
	*ret_at = ps->p;
	if (ps->p < ps->end && *ps->p == '"') {
		ps->p++;
		for (;;) {
			if (ps->p >= ps->end || *ps->p == '\n')
				return errorf(ps, *ret_at, "unterminated quoted field");
			if (*ps->p == '"') {
				if (ps->p + 1 < ps->end && ps->p[1] == '"') {
					ps->p++;
				} else {
					ps->p++;
					break;
				}
			}
			if (len >= EDGES_MAX_NAME)
				return errorf(ps, *ret_at, "name longer than %u bytes", EDGES_MAX_NAME);
			if ((unsigned char)*ps->p < 0x20 && *ps->p != '\t')
				return errorf(ps, ps->p, "control character in a name");
			buf[len++] = *ps->p++;
		}
		while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
			ps->p++;
	} else {
		while (ps->p < ps->end && *ps->p != ',' && *ps->p != '\n') {
			if (*ps->p == '\r' && (ps->p + 1 == ps->end || ps->p[1] == '\n'))
				break;
			if (*ps->p == '"')
				return errorf(ps, ps->p, "a quote inside an unquoted name");
			if ((unsigned char)*ps->p < 0x20 && *ps->p != '\t')
				return errorf(ps, ps->p, "control character in a name");
			if (len >= EDGES_MAX_NAME)
				return errorf(ps, *ret_at, "name longer than %u bytes", EDGES_MAX_NAME);
			buf[len++] = *ps->p++;
		}
		while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
			len--;
	}
	if (len == 0)
		return errorf(ps, *ret_at, "empty name");
	*ret_len = len;
	return 0;
}

static bool is_header(const char *a, size_t alen, const char *b, size_t blen)
{
	return (alen == 4 && strncasecmp(a, "from", 4) == 0 && blen == 2 &&
		strncasecmp(b, "to", 2) == 0) ||
	       (alen == 6 && strncasecmp(a, "source", 6) == 0 && blen == 6 &&
		strncasecmp(b, "target", 6) == 0);
}

static int end_of_line(struct parser *ps)
{
	if (ps->p < ps->end && *ps->p == '\r')
		ps->p++;
	if (ps->p < ps->end && *ps->p != '\n')
		return errorf(ps, ps->p, "expected two fields, from,to (a third one or a "
			      "stray character here)");
	if (ps->p < ps->end)
		ps->p++;
	return 0;
}

static int parse_line(struct parser *ps, bool first)
{
	char a[EDGES_MAX_NAME], b[EDGES_MAX_NAME];
	size_t alen, blen;
	const char *at_a, *at_b;
	uint32_t from, to;
	int r;

	r = read_field(ps, a, &alen, &at_a);
	if (r < 0)
		return r;
	if (ps->p >= ps->end || *ps->p != ',')
		return errorf(ps, ps->p, "expected a comma: a line is from,to");
	ps->p++;
	r = read_field(ps, b, &blen, &at_b);
	if (r < 0)
		return r;
	r = end_of_line(ps);
	if (r < 0)
		return r;
	if (first && is_header(a, alen, b, blen))
		return 0;
	if (ps->e->n_edges >= EDGES_MAX_EDGES)
		return errorf(ps, at_a, "more than %u edges", EDGES_MAX_EDGES);
	if (ps->e->n_edges == ps->edges_cap) {
		size_t cap = ps->edges_cap ? ps->edges_cap * 2 : 1024;
		uint32_t *v = realloc(ps->e->edges, cap * 2 * sizeof(uint32_t));

		if (!v)
			return -ENOMEM;
		ps->e->edges = v;
		ps->edges_cap = cap;
	}
	r = intern(ps, at_a, a, alen, &from);
	if (r < 0)
		return r;
	r = intern(ps, at_b, b, blen, &to);
	if (r < 0)
		return r;
	ps->e->edges[2 * ps->e->n_edges] = from;
	ps->e->edges[2 * ps->e->n_edges + 1] = to;
	ps->e->n_edges++;
	return 0;
}

void edge_list_free(struct edge_list *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n_names; i++)
		free(e->names[i]);
	free(e->names);
	free(e->edges);
	free(e);
}


int edges_parse(const char *file, const char *text, size_t len, struct edge_list **ret,
		char **ret_error)
{
	_cleanup_(edge_list_freep) struct edge_list *e = calloc(1, sizeof(*e));
	struct parser ps = { .file = file ? file : "<edges>", .p = text, .end = text + len,
			     .line = 0 };
	bool first = true;
	int r = 0;

	if (!e)
		return -ENOMEM;
	ps.e = e;
	if (len > EDGES_MAX_BYTES) {
		ps.line = 1;
		ps.line_start = text;
		r = errorf(&ps, text, "edge list larger than %u bytes", EDGES_MAX_BYTES);
	}
	while (r >= 0 && ps.p < ps.end) {
		const char *q;

		ps.line++;
		ps.line_start = ps.p;
		q = ps.p;
		while (q < ps.end && (*q == ' ' || *q == '\t' || *q == '\r'))
			q++;
		if (q == ps.end || *q == '\n' || *q == '#') {
			while (q < ps.end && *q != '\n')
				q++;
			ps.p = q < ps.end ? q + 1 : q;
			continue;
		}
		r = parse_line(&ps, first);
		first = false;
	}
	if (r >= 0 && e->n_edges == 0) {
		ps.line = ps.line ? ps.line : 1;
		ps.line_start = ps.p;
		r = errorf(&ps, ps.p, "no edges: each line is from,to");
	}
	free(ps.table);
	if (r < 0) {
		if (ret_error)
			*ret_error = ps.error ? ps.error : strdup(err_str(r));
		else
			free(ps.error);
		return r;
	}
	*ret = TAKE_PTR(e);
	return 0;
}

int edges_load(const char *path, struct edge_list **ret, char **ret_error)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r;

	r = fs_read_file(path, EDGES_MAX_BYTES, &text, &len);
	if (r < 0) {
		if (asprintf(ret_error, "cannot read '%s': %s", path,
			     r == -BCDR_ERR_TOO_BIG ? "larger than 256 MiB" : err_str(r)) < 0)
			*ret_error = NULL;
		return r;
	}
	return edges_parse(path, text, len, ret, ret_error);
}

int64_t edge_list_find(const struct edge_list *e, const char *name)
{
	for (size_t i = 0; i < e->n_names; i++)
		if (strcmp(e->names[i], name) == 0)
			return (int64_t)i;
	return -1;
}
