/* SFTP version 3: requests into a buffer, replies out of one packet. */
#include "repo/sftp-proto.h"

#include <errno.h>
#include <string.h>

#include "lib/err.h"

/* ---- encoding ---- */

struct wr {
	struct buf *b;
	size_t start;
	int r;
};

static void w_bytes(struct wr *w, const void *p, size_t n)
{
	if (w->r >= 0)
		w->r = buf_append(w->b, p, n);
}

static void w_u8(struct wr *w, uint8_t v)
{
	w_bytes(w, &v, 1);
}

static void w_u32(struct wr *w, uint32_t v)
{
	uint8_t x[4] = { v >> 24, v >> 16, v >> 8, v };

	w_bytes(w, x, 4);
}

static void w_u64(struct wr *w, uint64_t v)
{
	w_u32(w, (uint32_t)(v >> 32));
	w_u32(w, (uint32_t)v);
}

static void w_str(struct wr *w, const void *p, size_t n)
{
	if (n > SFTP_MAX_PACKET) {
		w->r = -BCDR_ERR_TOO_BIG;
		return;
	}
	w_u32(w, (uint32_t)n);
	w_bytes(w, p, n);
}

static void w_begin(struct wr *w, struct buf *b, uint8_t type)
{
	*w = (struct wr){ .b = b, .start = b->len };
	w_u32(w, 0); /* the length, set by w_end() */
	w_u8(w, type);
}

static int w_end(struct wr *w)
{
	size_t n = w->b->len - w->start - 4;

	if (w->r >= 0 && n > SFTP_MAX_PACKET)
		w->r = -BCDR_ERR_TOO_BIG;
	if (w->r < 0) {
		w->b->len = w->start;
		if (w->b->data)
			w->b->data[w->start] = 0;
		return w->r;
	}
	uint8_t *p = (uint8_t *)w->b->data + w->start;

	p[0] = n >> 24;
	p[1] = n >> 16;
	p[2] = n >> 8;
	p[3] = n;
	return 0;
}

int sftp_put_init(struct buf *b)
{
	struct wr w;

	w_begin(&w, b, SFTP_INIT);
	w_u32(&w, SFTP_VERSION);
	return w_end(&w);
}

int sftp_put_path(struct buf *b, uint8_t type, uint32_t id, const char *path)
{
	struct wr w;

	w_begin(&w, b, type);
	w_u32(&w, id);
	w_str(&w, path, strlen(path));
	return w_end(&w);
}

int sftp_put_mkdir(struct buf *b, uint32_t id, const char *path, uint32_t perms)
{
	struct wr w;

	w_begin(&w, b, SFTP_MKDIR);
	w_u32(&w, id);
	w_str(&w, path, strlen(path));
	w_u32(&w, SFTP_ATTR_PERMISSIONS);
	w_u32(&w, perms);
	return w_end(&w);
}

int sftp_put_open(struct buf *b, uint32_t id, const char *path, uint32_t pflags, uint32_t perms)
{
	struct wr w;

	w_begin(&w, b, SFTP_OPEN);
	w_u32(&w, id);
	w_str(&w, path, strlen(path));
	w_u32(&w, pflags);
	if (pflags & SFTP_FXF_CREAT) {
		w_u32(&w, SFTP_ATTR_PERMISSIONS);
		w_u32(&w, perms);
	} else {
		w_u32(&w, 0);
	}
	return w_end(&w);
}

int sftp_put_handle(struct buf *b, uint8_t type, uint32_t id, const struct sftp_handle *h)
{
	struct wr w;

	w_begin(&w, b, type);
	w_u32(&w, id);
	w_str(&w, h->data, h->len);
	return w_end(&w);
}

int sftp_put_read(struct buf *b, uint32_t id, const struct sftp_handle *h, uint64_t offset,
		  uint32_t len)
{
	struct wr w;

	w_begin(&w, b, SFTP_READ);
	w_u32(&w, id);
	w_str(&w, h->data, h->len);
	w_u64(&w, offset);
	w_u32(&w, len);
	return w_end(&w);
}

int sftp_put_write(struct buf *b, uint32_t id, const struct sftp_handle *h, uint64_t offset,
		   const void *data, uint32_t len)
{
	struct wr w;

	w_begin(&w, b, SFTP_WRITE);
	w_u32(&w, id);
	w_str(&w, h->data, h->len);
	w_u64(&w, offset);
	w_str(&w, data, len);
	return w_end(&w);
}

int sftp_put_rename(struct buf *b, uint32_t id, const char *from, const char *to, bool posix)
{
	static const char ext[] = "posix-rename@openssh.com";
	struct wr w;

	w_begin(&w, b, posix ? SFTP_EXTENDED : SFTP_RENAME);
	w_u32(&w, id);
	if (posix)
		w_str(&w, ext, sizeof(ext) - 1);
	w_str(&w, from, strlen(from));
	w_str(&w, to, strlen(to));
	return w_end(&w);
}

int sftp_put_fsync(struct buf *b, uint32_t id, const struct sftp_handle *h)
{
	static const char ext[] = "fsync@openssh.com";
	struct wr w;

	w_begin(&w, b, SFTP_EXTENDED);
	w_u32(&w, id);
	w_str(&w, ext, sizeof(ext) - 1);
	w_str(&w, h->data, h->len);
	return w_end(&w);
}

/* ---- decoding: every read checks what is left ---- */

struct rd {
	const uint8_t *p;
	size_t len, pos;
};

static bool r_u8(struct rd *r, uint8_t *v)
{
	if (r->len - r->pos < 1)
		return false;
	*v = r->p[r->pos++];
	return true;
}

static bool r_u32(struct rd *r, uint32_t *v)
{
	const uint8_t *p = r->p + r->pos;

	if (r->len - r->pos < 4)
		return false;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	r->pos += 4;
	return true;
}

static bool r_u64(struct rd *r, uint64_t *v)
{
	uint32_t hi, lo;

	if (!r_u32(r, &hi) || !r_u32(r, &lo))
		return false;
	*v = (uint64_t)hi << 32 | lo;
	return true;
}

static bool r_str(struct rd *r, const uint8_t **ret, uint32_t *ret_len)
{
	uint32_t n;

	if (!r_u32(r, &n) || n > r->len - r->pos)
		return false;
	*ret = r->p + r->pos;
	*ret_len = n;
	r->pos += n;
	return true;
}

static bool r_attrs(struct rd *r, struct sftp_attrs *a)
{
	*a = (struct sftp_attrs){};
	if (!r_u32(r, &a->flags))
		return false;
	if ((a->flags & SFTP_ATTR_SIZE) && !r_u64(r, &a->size))
		return false;
	if ((a->flags & SFTP_ATTR_UIDGID) && (!r_u32(r, &a->uid) || !r_u32(r, &a->gid)))
		return false;
	if ((a->flags & SFTP_ATTR_PERMISSIONS) && !r_u32(r, &a->perms))
		return false;
	if ((a->flags & SFTP_ATTR_ACMODTIME) && (!r_u32(r, &a->atime) || !r_u32(r, &a->mtime)))
		return false;
	if (a->flags & SFTP_ATTR_EXTENDED) {
		uint32_t count;

		/* each pair takes at least 8 bytes: a count beyond that is a lie */
		if (!r_u32(r, &count) || count > (r->len - r->pos) / 8)
			return false;
		for (uint32_t i = 0; i < count; i++) {
			const uint8_t *s;
			uint32_t n;

			if (!r_str(r, &s, &n) || !r_str(r, &s, &n))
				return false;
		}
	}
	return true;
}

int sftp_packet_length(const uint8_t hdr[4], uint32_t *ret)
{
	uint32_t n =
		(uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];

	if (n == 0 || n > SFTP_MAX_PACKET)
		return -BCDR_ERR_PROTOCOL;
	*ret = n;
	return 0;
}

static bool str_is(const uint8_t *s, uint32_t n, const char *want)
{
	return n == strlen(want) && memcmp(s, want, n) == 0;
}

int sftp_parse_version(const uint8_t *p, size_t len, struct sftp_version *ret)
{
	struct rd r = { p, len, 0 };
	struct sftp_version v = {};
	uint8_t type;

	if (!r_u8(&r, &type) || type != SFTP_VERSION_REPLY || !r_u32(&r, &v.version) ||
	    v.version < SFTP_VERSION)
		return -BCDR_ERR_PROTOCOL;
	while (r.pos < r.len) {
		const uint8_t *name, *data;
		uint32_t nlen, dlen;

		if (!r_str(&r, &name, &nlen) || !r_str(&r, &data, &dlen))
			return -BCDR_ERR_PROTOCOL;
		if (str_is(name, nlen, "posix-rename@openssh.com") && str_is(data, dlen, "1"))
			v.posix_rename = true;
		else if (str_is(name, nlen, "fsync@openssh.com") && str_is(data, dlen, "1"))
			v.fsync = true;
	}
	*ret = v;
	return 0;
}

/* One NAME entry; the filename may not hold a NUL (it becomes a C string). */
static bool r_name(struct rd *r, const uint8_t **name, uint32_t *nlen, struct sftp_attrs *a)
{
	const uint8_t *longname;
	uint32_t llen;

	return r_str(r, name, nlen) && !memchr(*name, 0, *nlen) && r_str(r, &longname, &llen) &&
	       r_attrs(r, a);
}

int sftp_parse_reply(const uint8_t *p, size_t len, struct sftp_reply *ret)
{
	struct rd r = { p, len, 0 };
	struct sftp_reply v = {};
	const uint8_t *s;
	uint32_t n;

	if (!r_u8(&r, &v.type) || !r_u32(&r, &v.id))
		return -BCDR_ERR_PROTOCOL;
	switch (v.type) {
	case SFTP_STATUS:
		if (!r_u32(&r, &v.code))
			return -BCDR_ERR_PROTOCOL;
		/* message and language tag: optional (older servers omit them) */
		if (r.pos < r.len) {
			if (!r_str(&r, &s, &n))
				return -BCDR_ERR_PROTOCOL;
			v.msg = (const char *)s;
			v.msg_len = n;
			if (r.pos < r.len && !r_str(&r, &s, &n))
				return -BCDR_ERR_PROTOCOL;
		}
		break;
	case SFTP_HANDLE:
		if (!r_str(&r, &s, &n) || n == 0 || n > SFTP_MAX_HANDLE)
			return -BCDR_ERR_PROTOCOL;
		v.handle.len = (uint16_t)n;
		memcpy(v.handle.data, s, n);
		break;
	case SFTP_DATA:
		if (!r_str(&r, &v.data, &v.data_len))
			return -BCDR_ERR_PROTOCOL;
		break;
	case SFTP_NAME: {
		struct sftp_attrs a;

		/* each entry takes at least 12 bytes */
		if (!r_u32(&r, &v.count) || v.count > (r.len - r.pos) / 12)
			return -BCDR_ERR_PROTOCOL;
		v.names = r.p + r.pos;
		for (uint32_t i = 0; i < v.count; i++)
			if (!r_name(&r, &s, &n, &a))
				return -BCDR_ERR_PROTOCOL;
		v.names_len = (size_t)(r.p + r.pos - v.names);
		break;
	}
	case SFTP_ATTRS:
		if (!r_attrs(&r, &v.attrs))
			return -BCDR_ERR_PROTOCOL;
		break;
	case SFTP_EXTENDED_REPLY:
		v.data = r.p + r.pos;
		v.data_len = (uint32_t)(r.len - r.pos);
		r.pos = r.len;
		break;
	default:
		return -BCDR_ERR_PROTOCOL;
	}
	if (r.pos != r.len)
		return -BCDR_ERR_PROTOCOL;
	*ret = v;
	return 0;
}

void sftp_names_begin(const struct sftp_reply *r, struct sftp_names *it)
{
	*it = (struct sftp_names){ .p = r->names,
				   .len = r->names_len,
				   .left = r->type == SFTP_NAME ? r->count : 0 };
}

int sftp_names_next(struct sftp_names *it, const char **ret_name, size_t *ret_len,
		    struct sftp_attrs *ret_attrs)
{
	struct rd r = { it->p, it->len, it->pos };
	const uint8_t *name;
	uint32_t n;

	if (it->left == 0 || !r_name(&r, &name, &n, ret_attrs))
		return 0;
	it->left--;
	it->pos = r.pos;
	*ret_name = (const char *)name;
	*ret_len = n;
	return 1;
}

int sftp_status_errno(uint32_t code)
{
	switch (code) {
	case SFTP_OK:
		return 0;
	case SFTP_EOF:
		return -ENODATA;
	case SFTP_NO_SUCH_FILE:
		return -ENOENT;
	case SFTP_PERMISSION_DENIED:
		return -EACCES;
	case SFTP_OP_UNSUPPORTED:
		return -EOPNOTSUPP;
	case SFTP_NO_CONNECTION:
	case SFTP_CONNECTION_LOST:
		return -ECONNRESET;
	default:
		return -EIO;
	}
}
