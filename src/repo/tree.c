#include "repo/tree.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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
	free(t->nodes);
	free(t);
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

struct out {
	uint8_t *p;
	size_t len, cap;
	int err;
};

static void out_put(struct out *o, const void *data, size_t len)
{
	if (o->err || len == 0)
		return;
	if (o->len + len > o->cap) {
		size_t ncap = o->cap ? o->cap : 4096;
		uint8_t *np;

		while (ncap < o->len + len)
			ncap *= 2;
		np = realloc(o->p, ncap);
		if (!np) {
			o->err = -ENOMEM;
			return;
		}
		o->p = np;
		o->cap = ncap;
	}
	memcpy(o->p + o->len, data, len);
	o->len += len;
}

static void out_u(struct out *o, uint64_t v, unsigned bytes)
{
	uint8_t b[8];

	for (unsigned i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	out_put(o, b, bytes);
}

static void out_str(struct out *o, const char *s, unsigned lenbytes)
{
	size_t len = s ? strlen(s) : 0;

	out_u(o, len, lenbytes);
	out_put(o, s, len);
}

int tree_encode(const struct tree *t, uint8_t **ret, size_t *ret_len)
{
	struct out o = {};

	for (size_t i = 0; i < t->n; i++) {
		const struct node *n = &t->nodes[i];

		if (strlen(n->path) > TREE_MAX_PATH || (n->link && strlen(n->link) > TREE_MAX_PATH)) {
			free(o.p);
			return -ENAMETOOLONG;
		}
		out_u(&o, n->type, 1);
		out_str(&o, n->path, 2);
		out_u(&o, n->mode, 4);
		out_u(&o, n->uid, 4);
		out_u(&o, n->gid, 4);
		out_u(&o, n->size, 8);
		out_u(&o, (uint64_t)n->mtime_ns, 8);
		out_u(&o, (uint64_t)n->ctime_ns, 8);
		out_u(&o, n->ino, 8);
		out_u(&o, n->dev, 8);
		out_str(&o, n->link, 2);
		out_u(&o, n->nxattrs, 2);
		for (size_t x = 0; x < n->nxattrs; x++) {
			out_str(&o, n->xattrs[x].name, 2);
			out_u(&o, n->xattrs[x].len, 4);
			out_put(&o, n->xattrs[x].value, n->xattrs[x].len);
		}
		out_u(&o, n->nchunks, 4);
		out_put(&o, n->chunks, (size_t)n->nchunks * 32);
	}
	if (o.err) {
		free(o.p);
		return o.err;
	}
	if (!o.p && !(o.p = malloc(1)))
		return -ENOMEM;
	*ret = o.p;
	*ret_len = o.len;
	return 0;
}

struct in {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static uint64_t in_u(struct in *i, unsigned bytes)
{
	uint64_t v = 0;

	if (i->bad || i->len - i->off < bytes) {
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
	if ((r = in_str(in, 2, TREE_MAX_PATH, &n->path)) < 0)
		return r;
	if (!n->path)
		return -BCDR_ERR_CORRUPT;
	n->mode = (uint32_t)in_u(in, 4);
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
	if (in->bad || (in->len - in->off) / 32 < n->nchunks)
		return -BCDR_ERR_CORRUPT;
	if (n->nchunks) {
		n->chunks = malloc((size_t)n->nchunks * 32);
		if (!n->chunks)
			return -ENOMEM;
		memcpy(n->chunks, in_take(in, (size_t)n->nchunks * 32), (size_t)n->nchunks * 32);
	}
	return in->bad ? -BCDR_ERR_CORRUPT : 0;
}

int tree_decode(const uint8_t *data, size_t len, struct tree **ret)
{
	struct in in = { .p = data, .len = len };
	struct tree *t;

	if (len > TREE_MAX_STREAM)
		return -BCDR_ERR_TOO_BIG;
	t = tree_new();
	if (!t)
		return -ENOMEM;
	while (in.off < len) {
		struct node *n = tree_append(t);
		int r;

		if (!n) {
			tree_free(t);
			return -ENOMEM;
		}
		r = decode_node(&in, n);
		if (r < 0) {
			tree_free(t);
			return r;
		}
	}
	*ret = t;
	return 0;
}
