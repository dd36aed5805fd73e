#include "backup/dump.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <zstd.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"

struct dumper {
	struct repo *repo;
	ZSTD_DCtx *dctx;
	uint8_t *buf, *scratch;
	size_t cap, scap;
	int fd;
	uint64_t bytes;
};

static int write_full(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t n = write(fd, c, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

static const char *strip(const char *path)
{
	while (*path == '/')
		path++;
	return path;
}

/* The first node at path p (length l) of s's stream, taken into *ret. */
static int find_in_stream(struct repo *repo, const struct snapshot *s, const char *p, size_t l,
			  struct node *ret)
{
	struct tree_reader *t;
	struct node *n;
	int r;

	if ((r = repo_tree_open(repo, s, &t)) < 0)
		return r;
	while ((r = tree_reader_next(t, &n)) == 1)
		if (strlen(n->path) == l && strncmp(n->path, p, l) == 0) {
			*ret = *n; /* taken: the reader's node keeps nothing */
			memset(n, 0, sizeof(*n));
			break;
		}
	repo_tree_close(t);
	return r < 0 ? r : r == 1 ? 0 : -BCDR_ERR_NOT_FOUND;
}

int dump_find(struct repo *repo, const struct snapshot *s, const char *path,
	      struct dump_target *ret)
{
	const char *p = strip(path);
	size_t l = strlen(p);
	struct node n = {};
	int r;

	while (l && p[l - 1] == '/')
		l--;
	memset(ret, 0, sizeof(*ret));
	if (l == 0) {
		ret->root = true;
		return 0;
	}
	r = find_in_stream(repo, s, p, l, &n);
	if (r >= 0 && n.type == NODE_HARDLINK) {
		/* The data is on the first name: an earlier file node (the
		 * reader refuses any other target), so one step at most. */
		_cleanup_free_ char *link = TAKE_PTR(n.link);

		node_release(&n);
		r = find_in_stream(repo, s, link, strlen(link), &n);
		if (r >= 0 && n.type != NODE_FILE)
			r = -BCDR_ERR_CORRUPT;
	}
	if (r < 0) {
		node_release(&n);
		return r;
	}
	ret->node = n;
	return 0;
}

void dump_target_release(struct dump_target *t)
{
	node_release(&t->node);
	memset(t, 0, sizeof(*t));
}

static int dump_file(struct dumper *d, const struct node *n)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < n->nchunks; i++) {
		int r = repo_read_blob(d->repo, d->repo->crypto, d->dctx, BLOB_DATA, n->chunks[i],
				       &d->buf, &d->cap, &d->scratch, &d->scap);

		size_t len = (size_t)r;

		if (r < 0)
			return r;
		if ((r = write_full(d->fd, d->buf, len)) < 0)
			return r;
		total += len;
	}
	d->bytes += total;
	return 0;
}

/* ---- tar ---- */

static void octal(char *field, size_t width, uint64_t v)
{
	/* width - 1 digits and a NUL, as GNU and BSD tar write them */
	field[width - 1] = 0;
	for (size_t i = width - 1; i-- > 0; v >>= 3)
		field[i] = (char)('0' + (v & 7));
}

/* A pax record "LEN key=value\n", whose LEN counts itself. */
static int pax_record(struct buf *b, const char *key, const char *value)
{
	size_t body = strlen(key) + strlen(value) + 3, len = body + 1;
	char digits[24];

	for (;;) {
		size_t d = (size_t)snprintf(digits, sizeof(digits), "%zu", len);

		if (body + d == len)
			break;
		len = body + d;
	}
	return buf_printf(b, "%zu %s=%s\n", len, key, value);
}

static int tar_header(struct dumper *d, char type, const char *name, const char *link,
		      uint32_t mode, uint32_t uid, uint32_t gid, uint64_t size, int64_t mtime_ns,
		      uint64_t rdev);

static int tar_pax(struct dumper *d, const char *name, const char *link, uint64_t size)
{
	struct buf b;
	char sz[32];
	int r = 0;
	static const char zero[512];

	buf_init(&b, 3 * TREE_MAX_PATH + 256);
	if (strlen(name) >= 100)
		r = pax_record(&b, "path", name);
	if (r >= 0 && link && strlen(link) >= 100)
		r = pax_record(&b, "linkpath", link);
	if (r >= 0 && size >= 077777777777ull) {
		snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
		r = pax_record(&b, "size", sz);
	}
	if (r >= 0 && b.len) {
		r = tar_header(d, 'x', "pax-header", NULL, 0644, 0, 0, b.len, 0, 0);
		if (r >= 0)
			r = write_full(d->fd, b.data, b.len);
		if (r >= 0 && b.len % 512)
			r = write_full(d->fd, zero, 512 - b.len % 512);
	}
	buf_release(&b);
	return r;
}

static int tar_header(struct dumper *d, char type, const char *name, const char *link,
		      uint32_t mode, uint32_t uid, uint32_t gid, uint64_t size, int64_t mtime_ns,
		      uint64_t rdev)
{
	unsigned char h[512] = {};
	unsigned sum = 0;
	int r;

	if (type != 'x' && (r = tar_pax(d, name, link, size)) < 0)
		return r;
	/* Long values are in the pax record: the header gets a cut copy. */
	memcpy(h, name, strnlen(name, 99));
	octal((char *)h + 100, 8, mode & 07777);
	octal((char *)h + 108, 8, uid & 07777777);
	octal((char *)h + 116, 8, gid & 07777777);
	octal((char *)h + 124, 12, size < 077777777777ull ? size : 0);
	octal((char *)h + 136, 12, mtime_ns > 0 ? (uint64_t)(mtime_ns / 1000000000) : 0);
	h[156] = (unsigned char)type;
	if (link)
		memcpy(h + 157, link, strnlen(link, 99));
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	if (type == '3' || type == '4') {
		octal((char *)h + 329, 8, major(rdev) & 07777777);
		octal((char *)h + 337, 8, minor(rdev) & 07777777);
	}
	memset(h + 148, ' ', 8);
	for (size_t i = 0; i < sizeof(h); i++)
		sum += h[i];
	octal((char *)h + 148, 7, sum);
	h[155] = ' ';
	return write_full(d->fd, h, sizeof(h));
}

static int tar_node(struct dumper *d, const struct node *n)
{
	static const char zero[512];
	_cleanup_free_ char *dir = NULL;
	char type;
	int r;

	switch (n->type) {
	case NODE_FILE:
		r = tar_header(d, '0', n->path, NULL, n->mode, n->uid, n->gid, n->size,
			       n->mtime_ns, 0);
		if (r >= 0) {
			uint64_t before = d->bytes;

			r = dump_file(d, n);
			if (r >= 0 && d->bytes - before != n->size)
				r = -BCDR_ERR_CORRUPT; /* the header promised n->size */
		}
		if (r >= 0 && n->size % 512)
			r = write_full(d->fd, zero, 512 - n->size % 512);
		return r;
	case NODE_DIR:
		if (asprintf(&dir, "%s/", n->path) < 0)
			return -ENOMEM;
		return tar_header(d, '5', dir, NULL, n->mode, n->uid, n->gid, 0, n->mtime_ns, 0);
	case NODE_SYMLINK:
		return tar_header(d, '2', n->path, n->link, 0777, n->uid, n->gid, 0, n->mtime_ns, 0);
	case NODE_HARDLINK:
		return tar_header(d, '1', n->path, n->link, n->mode, n->uid, n->gid, 0,
				  n->mtime_ns, 0);
	case NODE_SPECIAL:
		type = S_ISFIFO(n->mode) ? '6' : S_ISCHR(n->mode) ? '3' : S_ISBLK(n->mode) ? '4' : 0;
		if (!type)
			return 0; /* a socket: tar has no such member */
		return tar_header(d, type, n->path, NULL, n->mode, n->uid, n->gid, 0, n->mtime_ns,
				  n->size);
	default:
		return 0; /* a path the backup could not read: nothing to give */
	}
}

static bool under(const char *path, const char *dir)
{
	size_t l = strlen(dir);

	return strncmp(path, dir, l) == 0 && path[l] == '/';
}

/* Every node of s's stream that is dir or under it (all of them for
 * NULL) as tar members, in the stream's order. */
static int tar_stream(struct dumper *d, const struct snapshot *s, const char *dir)
{
	struct tree_reader *t;
	struct node *n;
	int r;

	if ((r = repo_tree_open(d->repo, s, &t)) < 0)
		return r;
	while ((r = tree_reader_next(t, &n)) == 1)
		if (!dir || strcmp(n->path, dir) == 0 || under(n->path, dir))
			if ((r = tar_node(d, n)) < 0)
				break;
	repo_tree_close(t);
	return r < 0 ? r : 0;
}

int dump_node(struct repo *repo, const struct snapshot *s, const struct dump_target *t, int fd,
	      uint64_t *ret_bytes)
{
	static const char zero[1024];
	struct dumper d = { .repo = repo, .fd = fd };
	int r = 0;

	if (!(d.dctx = ZSTD_createDCtx()))
		return -ENOMEM;
	if (!t->root && t->node.type == NODE_FILE) {
		r = dump_file(&d, &t->node);
	} else if (!t->root && t->node.type != NODE_DIR) {
		r = -EINVAL; /* a symlink or special file has no data */
	} else {
		r = tar_stream(&d, s, t->root ? NULL : t->node.path);
		if (r >= 0)
			r = write_full(fd, zero, sizeof(zero)); /* two zero blocks end it */
	}
	ZSTD_freeDCtx(d.dctx);
	free(d.buf);
	free(d.scratch);
	if (r >= 0 && ret_bytes)
		*ret_bytes = d.bytes;
	return r;
}
