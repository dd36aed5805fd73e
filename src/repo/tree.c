#include "repo/tree.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/err.h"

void node_release(struct node *n)
{
	free(n->path);
	free(n->link);
	for (size_t i = 0; i < n->nxattrs; i++) {
		free(n->xattrs[i].name);
		free(n->xattrs[i].value);
	}
	free(n->xattrs);
	free(n->chunks);
	memset(n, 0, sizeof(*n));
}

struct tree *tree_new(void)
{
	return calloc(1, sizeof(struct tree));
}

void tree_free(struct tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		node_release(&t->nodes[i]);
	for (size_t i = 0; i < t->nrefused_kept; i++) {
		free(t->refused[i].path);
		free(t->refused[i].link);
	}
	free(t->refused);
	free(t->nodes);
	free(t);
}

const char *tree_path_invalid(const char *path)
{
	const char *p = path;

	if (!path || !*path)
		return "an empty path";
	if (*path == '/')
		return "an absolute path";
	for (;;) {
		const char *end = strchrnul(p, '/');
		size_t len = (size_t)(end - p);

		if (len == 0)
			return "an empty path component";
		if (len == 1 && p[0] == '.')
			return "a '.' path component";
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return "a '..' path component";
		if (!*end)
			return NULL;
		p = end + 1;
	}
}

int tree_path_cmp(const char *x, const char *y)
{
	for (;; x++, y++) {
		unsigned char cx = (unsigned char)*x, cy = (unsigned char)*y;

		if (cx != cy || !cx)
			return (cx == '/' ? 1
				: cx      ? cx + 1
					  : 0) -
			       (cy == '/' ? 1
				: cy      ? cy + 1
					  : 0);
	}
}

struct node *tree_append(struct tree *t)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 256;
		struct node *nn = realloc(t->nodes, ncap * sizeof(*nn));

		if (!nn)
			return NULL;
		t->nodes = nn;
		t->cap = ncap;
	}
	memset(&t->nodes[t->n], 0, sizeof(struct node));
	return &t->nodes[t->n++];
}

int tree_reserve(struct tree *t, size_t n)
{
	struct node *nn;

	if (n <= t->cap)
		return 0;
	nn = realloc(t->nodes, n * sizeof(*nn));
	if (!nn)
		return -ENOMEM;
	t->nodes = nn;
	t->cap = n;
	return 0;
}

int tree_node_size(const struct node *n, size_t *ret)
{
	size_t path = strlen(n->path), link = n->link ? strlen(n->link) : 0;
	size_t size = 1 + 2 + path + 4 * 3 + 8 * 5 + 2 + link + 2 + 4 + (size_t)n->nchunks * 32;

	if (path > TREE_MAX_PATH || link > TREE_MAX_PATH)
		return -ENAMETOOLONG;
	for (size_t x = 0; x < n->nxattrs; x++)
		size += 2 + strlen(n->xattrs[x].name) + 4 + n->xattrs[x].len;
	*ret = size;
	return 0;
}

static uint8_t *put_u(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + bytes;
}

static uint8_t *put_bytes(uint8_t *p, const void *data, size_t len)
{
	if (len)
		memcpy(p, data, len);
	return p + len;
}

static uint8_t *put_str(uint8_t *p, const char *s)
{
	size_t len = s ? strlen(s) : 0;

	return put_bytes(put_u(p, len, 2), s, len);
}

uint8_t *tree_node_write(const struct node *n, uint8_t *p)
{
	p = put_u(p, n->type, 1);
	p = put_str(p, n->path);
	p = put_u(p,
		  (n->mode & ~TREE_MODE_LINKED) | (n->flags & NODE_LINKED ? TREE_MODE_LINKED : 0),
		  4);
	p = put_u(p, n->uid, 4);
	p = put_u(p, n->gid, 4);
	p = put_u(p, n->size, 8);
	p = put_u(p, (uint64_t)n->mtime_ns, 8);
	p = put_u(p, (uint64_t)n->ctime_ns, 8);
	p = put_u(p, n->ino, 8);
	p = put_u(p, n->dev, 8);
	p = put_str(p, n->link);
	p = put_u(p, n->nxattrs, 2);
	for (size_t x = 0; x < n->nxattrs; x++) {
		p = put_str(p, n->xattrs[x].name);
		p = put_u(p, n->xattrs[x].len, 4);
		p = put_bytes(p, n->xattrs[x].value, n->xattrs[x].len);
	}
	p = put_u(p, n->nchunks, 4);
	return put_bytes(p, n->chunks, (size_t)n->nchunks * 32);
}

int tree_encode(const struct tree *t, uint8_t **ret, size_t *ret_len)
{
	size_t total = 0, size;
	uint8_t *out, *p;
	int r;

	/* Sized first: one allocation, no copies while growing. */
	for (size_t i = 0; i < t->n; i++) {
		if ((r = tree_node_size(&t->nodes[i], &size)) < 0)
			return r;
		total += size;
	}
	out = malloc(total ? total : 1);
	if (!out)
		return -ENOMEM;
	p = out;
	for (size_t i = 0; i < t->n; i++)
		p = tree_node_write(&t->nodes[i], p);
	*ret = out;
	*ret_len = total;
	return 0;
}

struct in {
	const uint8_t *p;
	size_t len, off;
	bool bad;
	bool ended; /* bad because the bytes ran out (more may come) */
};

static uint64_t in_u(struct in *i, unsigned bytes)
{
	uint64_t v = 0;

	if (i->bad || i->len - i->off < bytes) {
		i->ended |= !i->bad;
		i->bad = true;
		return 0;
	}
	for (unsigned k = 0; k < bytes; k++)
		v |= (uint64_t)i->p[i->off + k] << (8 * k);
	i->off += bytes;
	return v;
}

static const uint8_t *in_take(struct in *i, size_t len)
{
	const uint8_t *p;

	if (i->bad || i->len - i->off < len) {
		i->ended |= !i->bad;
		i->bad = true;
		return NULL;
	}
	p = i->p + i->off;
	i->off += len;
	return p;
}

/* A string of at most max bytes with no NUL inside; NULL when empty. */
static int in_str(struct in *i, unsigned lenbytes, size_t max, char **ret)
{
	size_t len = in_u(i, lenbytes);
	const uint8_t *p;

	*ret = NULL;
	if (len > max)
		i->bad = true;
	p = in_take(i, len);
	if (i->bad)
		return -BCDR_ERR_CORRUPT;
	if (len == 0)
		return 0;
	if (memchr(p, 0, len))
		return -BCDR_ERR_CORRUPT;
	*ret = strndup((const char *)p, len);
	return *ret ? 0 : -ENOMEM;
}

static int decode_node(struct in *in, struct node *n)
{
	uint16_t want;
	int r;

	n->type = (uint8_t)in_u(in, 1);
	if (n->type < NODE_FILE || n->type > NODE_ERROR)
		return -BCDR_ERR_CORRUPT;
	/* An empty path is a refused node (decode_nodes), not garbage. */
	if ((r = in_str(in, 2, TREE_MAX_PATH, &n->path)) < 0)
		return r;
	n->mode = (uint32_t)in_u(in, 4);
	n->flags = n->mode & TREE_MODE_LINKED ? NODE_LINKED : 0;
	n->mode &= ~TREE_MODE_LINKED;
	n->uid = (uint32_t)in_u(in, 4);
	n->gid = (uint32_t)in_u(in, 4);
	n->size = in_u(in, 8);
	n->mtime_ns = (int64_t)in_u(in, 8);
	n->ctime_ns = (int64_t)in_u(in, 8);
	n->ino = in_u(in, 8);
	n->dev = in_u(in, 8);
	if ((r = in_str(in, 2, TREE_MAX_PATH, &n->link)) < 0)
		return r;
	want = (uint16_t)in_u(in, 2);
	if (in->bad || want > TREE_MAX_XATTRS)
		return -BCDR_ERR_CORRUPT;
	if (want) {
		n->xattrs = calloc(want, sizeof(*n->xattrs));
		if (!n->xattrs)
			return -ENOMEM;
		n->nxattrs = 0;
		for (uint16_t x = 0; x < want; x++) {
			struct xattr *xa = &n->xattrs[x];
			const uint8_t *v;

			n->nxattrs++;
			if ((r = in_str(in, 2, 255, &xa->name)) < 0)
				return r;
			if (!xa->name)
				return -BCDR_ERR_CORRUPT;
			xa->len = (uint32_t)in_u(in, 4);
			if (xa->len > TREE_MAX_XATTR_VALUE)
				return -BCDR_ERR_CORRUPT;
			v = in_take(in, xa->len);
			if (!v)
				return -BCDR_ERR_CORRUPT;
			xa->value = malloc(xa->len ? xa->len : 1);
			if (!xa->value)
				return -ENOMEM;
			memcpy(xa->value, v, xa->len);
		}
	}
	n->nchunks = (uint32_t)in_u(in, 4);
	if (!in->bad && (in->len - in->off) / 32 < n->nchunks)
		in->ended = in->bad = true;
	if (in->bad) {
		n->nchunks = 0;
		return -BCDR_ERR_CORRUPT;
	}
	if (n->nchunks) {
		n->chunks = malloc((size_t)n->nchunks * 32);
		if (!n->chunks)
			return -ENOMEM;
		memcpy(n->chunks, in_take(in, (size_t)n->nchunks * 32), (size_t)n->nchunks * 32);
	}
	return in->bad ? -BCDR_ERR_CORRUPT : 0;
}

/* The path for a message: control bytes, quote and backslash as \xNN. */
static char *printable(const char *s)
{
	size_t len = s ? strlen(s) : 0;
	char *out = malloc(len * 4 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\')
			o += snprintf(o, 5, "\\x%02x", c);
		else
			*o++ = (char)c;
	}
	*o = 0;
	return out;
}

int tree_note_refusal(struct tree *t, const struct node *n, const char *why)
{
	struct tree_refusal *f;

	t->nrefused++;
	if (t->nrefused_kept == TREE_MAX_REFUSALS)
		return 0;
	if (!t->refused && !(t->refused = calloc(TREE_MAX_REFUSALS, sizeof(*t->refused))))
		return -ENOMEM;
	f = &t->refused[t->nrefused_kept];
	f->why = why;
	f->path = printable(n->path);
	if (n->type == NODE_HARDLINK && n->link)
		f->link = printable(n->link);
	if (!f->path || (n->type == NODE_HARDLINK && n->link && !f->link)) {
		free(f->path);
		free(f->link);
		*f = (struct tree_refusal){};
		return -ENOMEM;
	}
	t->nrefused_kept++;
	return 0;
}

int tree_node_read(const uint8_t *data, size_t len, struct node *n, size_t *ret_used)
{
	struct in in = { .p = data, .len = len };
	int r;

	memset(n, 0, sizeof(*n));
	r = decode_node(&in, n);
	if (r < 0) {
		node_release(n);
		return r == -BCDR_ERR_CORRUPT && in.ended ? -EAGAIN : r;
	}
	*ret_used = in.off;
	return 0;
}
