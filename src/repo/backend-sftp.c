/* sftp:[USER@]HOST[:PORT]:/PATH: the repository as files on an ssh server,
 * in the local backend's layout (data/xx/NAME), spoken to in SFTP v3 over
 * the system's ssh (repo/backend-sftp.h says why not a library).
 *
 * Each connection is one ssh process; a pool of up to `connections` of
 * them is opened on demand and shared by the threads (one operation holds
 * one connection). Within a connection, reads and writes are pipelined:
 * up to SFTP_WINDOW requests of SFTP_CHUNK bytes are in flight, so a
 * transfer is not one round trip per 64 KiB; the read-ahead of packs
 * (backend_read(), through sftp_get_upto()) fetches a window of one
 * pipeline's worth, and the pack stays open on its connection. Packs upload in the
 * background on the connections (remote_put_async(), as rest and s3);
 * an index or a snapshot waits for them.
 *
 * Puts write "NAME.tmp.RANDOM", fsync it when the server offers
 * fsync@openssh.com, and rename it over NAME (posix-rename@openssh.com,
 * else RENAME); data/xx directories are made when a put finds one
 * missing. A connection that breaks (ssh dies, the server is killed, a
 * stall) is closed and the operation is tried again on a new one, with
 * the shared backoff (remote_retry_wait()); what ssh printed says what
 * went wrong and is not retried when retrying cannot help (host key,
 * login, no such host). */
#include "repo/backend-sftp.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/strv.h"
#include "lib/timeutil.h"
#include "repo/remote.h"
#include "repo/sftp-proto.h"
#include "repo/sftp-request.h"
#include "repo/sftp-session.h"

static const char *const layout[] = { "keys", "data", "index", "snapshots", "locks" };

/* The message for an error the server gave (not a broken connection). */
static int server_error(struct sftp *s, int r, const char *verb, const char *name)
{
	if (r == -EACCES)
		remote_set_error(r,
				 "'%s' denied the %s of '%s' (permission denied): the ssh user "
				 "needs to read and write the repository's directory",
				 s->display, verb, name);
	else if (r == -EOPNOTSUPP)
		remote_set_error(r, "the sftp server of '%s' does not support the %s of '%s'",
				 s->display, verb, name);
	else if (r == -EIO)
		remote_set_error(r,
				 "the sftp server of '%s' failed the %s of '%s' (is its disk "
				 "full, or the path not a directory?)",
				 s->display, verb, name);
	return r;
}

static bool name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n < 200 && !strstr(name, "..") && name[0] != '/' &&
	       strchr(name, '/') == strrchr(name, '/');
}

/* The remote path of an object: data/<first two hex digits>/<name>, as
 * the local backend lays it out. */
static int object_path(struct sftp *s, const char *name, char *out, size_t size)
{
	const char *slash = strchr(name, '/');
	const char *sep = s->root[strlen(s->root) - 1] == '/' ? "" : "/";
	int n;

	if (!name_ok(name))
		return -EINVAL;
	if (slash && strncmp(name, "data/", 5) == 0 && strlen(slash + 1) >= 2)
		n = snprintf(out, size, "%s%sdata/%.2s/%s", s->root, sep, slash + 1, slash + 1);
	else
		n = snprintf(out, size, "%s%s%s", s->root, sep, name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

struct get_arg {
	const char *name;
	bool ranged;
	uint64_t offset;
	size_t max, len;
	size_t need, got; /* ranged: len may read ahead of need, up to EOF */
	uint8_t *buf;     /* ranged: the caller's; else ours */
};

/* Makes the pack at path the connection's open pack handle (a restore's
 * and a check's reads go on in the same pack), closing the one before. */
static int open_pack(struct sftp *s, struct conn *c, const char *path, const char *name)
{
	int r;

	if (c->pack.len && strcmp(c->pack_path, path) == 0)
		return 0;
	if (c->pack.len && (r = sftp_conn_close(s, c, &c->pack)) < 0 && c->broken)
		return r;
	c->pack.len = 0;
	if ((r = sftp_conn_open(s, c, path, SFTP_FXF_READ, &c->pack)) < 0) {
		c->pack.len = 0;
		return r == -ENOENT || c->broken ? r : server_error(s, r, "read", name);
	}
	snprintf(c->pack_path, sizeof(c->pack_path), "%s", path);
	return 0;
}

static int op_get(struct sftp *s, struct conn *c, void *arg, bool again)
{
	struct get_arg *g = arg;
	struct sftp_handle h;
	struct sftp_attrs a = {};
	char path[LOCATION_MAX + 300];
	int r = object_path(s, g->name, path, sizeof(path)), r2;

	(void)again;
	if (r < 0)
		return r;
	if (g->ranged && strncmp(g->name, "data/", 5) == 0) {
		if ((r = open_pack(s, c, path, g->name)) < 0)
			return r;
		return sftp_transfer(s, c, &c->pack, g->offset, g->len, g->buf, NULL, g->need,
				     &g->got);
	}
	if ((r = sftp_conn_open(s, c, path, SFTP_FXF_READ, &h)) < 0)
		return r == -ENOENT || c->broken ? r : server_error(s, r, "read", g->name);
	if (!g->ranged) {
		uint32_t id = c->next_id++;
		struct sftp_reply rep;

		free(g->buf);
		g->buf = NULL;
		if ((r = sftp_put_handle(&c->out, SFTP_FSTAT, id, &h)) >= 0 &&
		    (r = sftp_call(s, c, id, &rep)) >= 0) {
			if (rep.type != SFTP_ATTRS)
				r = (r = sftp_status_of(c, &rep)) < 0 ? r :
					sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
			else if (!(rep.attrs.flags & SFTP_ATTR_SIZE))
				r = sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
			a = rep.attrs;
		}
		if (r >= 0 && a.size > g->max)
			r = -BCDR_ERR_TOO_BIG;
		if (r >= 0 && !(g->buf = malloc(a.size ? a.size : 1)))
			r = -ENOMEM;
		if (r >= 0)
			g->len = (size_t)a.size;
	}
	if (r >= 0)
		r = sftp_transfer(s, c, &h, g->offset, g->len, g->buf, NULL,
				  g->ranged ? g->need : g->len, &g->got);
	if (c->broken)
		return r;
	r2 = sftp_conn_close(s, c, &h);
	if (r >= 0 && r2 < 0)
		r = c->broken ? r2 : server_error(s, r2, "read", g->name);
	return r;
}

static int sftp_get(struct backend *b, const char *name, size_t max, uint8_t **ret, size_t *ret_len)
{
	struct sftp *s = (struct sftp *)b;
	struct get_arg g = { .name = name, .max = max };
	char what[256];
	int r;

	snprintf(what, sizeof(what), "the read of '%s'", name);
	r = sftp_run(s, what, op_get, &g);
	if (r < 0) {
		free(g.buf);
		return r;
	}
	*ret = g.buf;
	*ret_len = g.len;
	return 0;
}

/* Up to len bytes at offset, at least need (the object may end first):
 * the read-ahead windows of backend_read() cost one round trip of the
 * pipeline, as cheap as the blob alone. */
static int sftp_get_upto(struct backend *b, const char *name, uint64_t offset, size_t need,
			 size_t len, uint8_t *buf, size_t *ret_len)
{
	struct sftp *s = (struct sftp *)b;
	struct get_arg g = {
		.name = name, .ranged = true, .offset = offset, .len = len, .need = need, .buf = buf
	};
	char what[256];
	int r;

	*ret_len = 0;
	if (len == 0)
		return 0;
	snprintf(what, sizeof(what), "the read of '%s'", name);
	r = sftp_run(s, what, op_get, &g);
	if (r >= 0)
		*ret_len = g.got;
	return r;
}

static int sftp_get_range(struct backend *b, const char *name, uint64_t offset, size_t len,
			  uint8_t *buf)
{
	size_t got;

	return sftp_get_upto(b, name, offset, len, len, buf, &got);
}

struct stream_arg {
	const char *name;
	uint64_t offset, len, delivered;
	backend_stream_fn fn;
	void *ctx;
	int fn_err; /* what fn said: not the connection's, never retried */
};

static int stream_fn(const uint8_t *data, size_t len, void *ctx)
{
	struct stream_arg *g = ctx;
	int r = g->fn(data, len, g->ctx);

	if (r < 0)
		g->fn_err = r;
	return r;
}

/* A pack's range in one pipeline, on the pack's handle kept open as
 * op_get() does; a retry (on a new connection) goes on from the last byte
 * delivered. */
static int op_stream(struct sftp *s, struct conn *c, void *arg, bool again)
{
	struct stream_arg *g = arg;
	char path[LOCATION_MAX + 300];
	int r = object_path(s, g->name, path, sizeof(path));

	(void)again;
	if (r < 0 || g->fn_err)
		return g->fn_err ? g->fn_err : r;
	if ((r = open_pack(s, c, path, g->name)) < 0)
		return r;
	r = sftp_stream(s, c, &c->pack, g->offset + g->delivered, g->len - g->delivered,
			stream_fn, g, &g->delivered);
	return g->fn_err ? g->fn_err : r;
}

static int sftp_get_stream(struct backend *b, const char *name, uint64_t offset, uint64_t len,
			   backend_stream_fn fn, void *ctx)
{
	struct sftp *s = (struct sftp *)b;
	struct stream_arg g = { .name = name, .offset = offset, .len = len, .fn = fn, .ctx = ctx };
	char what[256];
	int r;

	if (len == 0)
		return 0;
	snprintf(what, sizeof(what), "the read of '%s'", name);
	r = sftp_run(s, what, op_stream, &g);
	return g.fn_err ? g.fn_err : r;
}

struct put_arg {
	const char *name;
	const void *data;
	size_t len;
};

static int op_put(struct sftp *s, struct conn *c, void *arg, bool again)
{
	struct put_arg *p = arg;
	struct sftp_handle h;
	char path[LOCATION_MAX + 300], tmp[LOCATION_MAX + 340];
	uint64_t x;
	int r = object_path(s, p->name, path, sizeof(path)), r2;

	(void)again;
	if (r < 0)
		return r;
	if (getrandom(&x, sizeof(x), 0) != sizeof(x))
		return -EIO;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%016llx", path, (unsigned long long)x);
	r = sftp_conn_open(s, c, tmp, SFTP_FXF_WRITE | SFTP_FXF_CREAT | SFTP_FXF_EXCL, &h);
	if (r == -ENOENT && strncmp(p->name, "data/", 5) == 0) {
		/* data/xx is made by the first pack that goes there */
		char dir[LOCATION_MAX + 300];

		snprintf(dir, sizeof(dir), "%s", path);
		*strrchr(dir, '/') = 0;
		r = sftp_conn_mkdir(s, c, dir);
		if (r >= 0 || !c->broken)
			r = sftp_conn_open(s, c, tmp,
					   SFTP_FXF_WRITE | SFTP_FXF_CREAT | SFTP_FXF_EXCL, &h);
	}
	if (r < 0)
		return c->broken ? r : server_error(s, r, "write", p->name);
	r = sftp_transfer(s, c, &h, 0, p->len, NULL, p->data, 0, NULL);
	if (r >= 0 && c->v.fsync) {
		uint32_t id = c->next_id++;

		if ((r = sftp_put_fsync(&c->out, id, &h)) >= 0)
			r = sftp_conn_status(s, c, id);
	}
	if (c->broken)
		return r;
	r2 = sftp_conn_close(s, c, &h);
	if (r >= 0)
		r = r2;
	if (r >= 0) {
		uint32_t id = c->next_id++;

		if ((r = sftp_put_rename(&c->out, id, tmp, path, c->v.posix_rename)) >= 0)
			r = sftp_conn_status(s, c, id);
		/* a plain RENAME does not replace: the same object (the name is
		 * its hash, or unique) is there already */
		if (r == -EIO && !c->v.posix_rename) {
			struct sftp_attrs a;

			if (sftp_conn_stat(s, c, path, &a) >= 0)
				r = 0;
		}
	}
	if (r < 0 && !c->broken) {
		sftp_conn_path(s, c, SFTP_REMOVE, tmp);
		return server_error(s, r, "write", p->name);
	}
	if (r >= 0 && !c->broken && !c->v.posix_rename)
		sftp_conn_path(s, c, SFTP_REMOVE, tmp); /* the leftover when it was there */
	return r;
}

static int put_now(void *b, const char *name, const void *data, size_t len)
{
	struct sftp *s = b;
	struct put_arg p = { name, data, len };
	char what[256];

	snprintf(what, sizeof(what), "the write of '%s'", name);
	return sftp_run(s, what, op_put, &p);
}

static int sftp_put(struct backend *b, const char *name, const void *data, size_t len)
{
	struct sftp *s = (struct sftp *)b;
	int r;

	if (strncmp(name, "data/", 5) == 0)
		return remote_put_async(s->rm, put_now, s, name, data, len);
	/* An index or a snapshot names packs: they must be stored first.
	 * Locks do not wait (a lock refresh must not stall behind packs). */
	if (strncmp(name, "locks/", 6) != 0 && (r = remote_flush(s->rm)) < 0)
		return r;
	return put_now(s, name, data, len);
}

struct entry {
	char *name;
	uint64_t size;
};

struct list_arg {
	const char *dir;
	struct entry *v;
	size_t n, cap, bytes;
};

static void list_clear(struct list_arg *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = l->bytes = 0;
}

static int list_add(struct list_arg *l, const char *name, size_t len, uint64_t size)
{
	if (l->bytes > SFTP_MAX_LIST_BYTES - len)
		return -BCDR_ERR_TOO_BIG;
	l->bytes += len + 1;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct entry *v;

		if (l->n >= SFTP_MAX_ENTRIES)
			return -BCDR_ERR_TOO_BIG;
		v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n].name = strndup(name, len)))
		return -ENOMEM;
	l->v[l->n++].size = size;
	return 0;
}

static bool is_dir(const struct sftp_attrs *a, size_t name_len)
{
	if (a->flags & SFTP_ATTR_PERMISSIONS)
		return S_ISDIR(a->perms);
	return name_len == 2; /* a server that gives no mode: data/xx */
}

static bool is_file(const struct sftp_attrs *a)
{
	return !(a->flags & SFTP_ATTR_PERMISSIONS) || S_ISREG(a->perms);
}

/* The entries of a NAME reply into l; with subdirs, directories go there
 * (data/xx). Dot files and temporary names are not objects. */
static int add_names(struct conn *c, const struct sftp_reply *rep, struct list_arg *l,
		     struct list_arg *subdirs)
{
	struct sftp_names it;
	struct sftp_attrs a;
	const char *name;
	size_t len;
	int r = 0;

	/* an empty batch is no progress: a server sending them forever
	 * would keep the listing going */
	if (rep->count == 0)
		return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
	sftp_names_begin(rep, &it);
	while (r >= 0 && sftp_names_next(&it, &name, &len, &a) > 0) {
		if (len == 0 || name[0] == '.' || memmem(name, len, ".tmp.", 5) || len > 255 ||
		    memchr(name, '/', len))
			continue;
		if (subdirs && is_dir(&a, len))
			r = list_add(subdirs, name, len, 0);
		else if (is_file(&a))
			r = list_add(l, name, len, a.size);
	}
	return r;
}

/* The entries of path; with subdirs, the names of its directories go
 * there instead (data/xx). */
static int list_one(struct sftp *s, struct conn *c, const char *path, struct list_arg *l,
		    struct list_arg *subdirs)
{
	struct sftp_handle h;
	int r = sftp_conn_opendir(s, c, path, &h), r2;

	if (r < 0)
		return r;
	for (;;) {
		uint32_t id = c->next_id++;
		struct sftp_reply rep;

		if ((r = sftp_put_handle(&c->out, SFTP_READDIR, id, &h)) < 0 ||
		    (r = sftp_call(s, c, id, &rep)) < 0)
			break;
		if (rep.type != SFTP_NAME) {
			r = sftp_status_of(c, &rep);
			if (r == -ENODATA || r == 0)
				r = r == 0 ? sftp_conn_broke(c, -BCDR_ERR_PROTOCOL) : 0;
			break;
		}
		if ((r = add_names(c, &rep, l, subdirs)) < 0)
			break;
	}
	if (c->broken)
		return r;
	r2 = sftp_conn_close(s, c, &h);
	return r < 0 ? r : r2;
}

struct dir_slot {
	uint32_t id;
	struct sftp_handle h;
	bool open, done, asked;
};

/* Reads the reply to each slot asked (the server may answer in any
 * order); fn judges it. */
static int replies(struct sftp *s, struct conn *c, struct dir_slot *d, size_t k,
		   int (*fn)(struct conn *c, struct dir_slot *d, const struct sftp_reply *rep,
			     struct list_arg *l),
		   struct list_arg *l)
{
	int r = sftp_send_out(s, c), err = 0;

	if (r < 0)
		return r;
	for (;;) {
		struct sftp_reply rep;
		size_t i, left = 0;

		for (i = 0; i < k; i++)
			left += d[i].asked;
		if (!left)
			return err;
		if ((r = sftp_read_reply(s, c, &rep)) < 0)
			return r;
		for (i = 0; i < k && !(d[i].asked && d[i].id == rep.id); i++)
			;
		if (i == k)
			return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
		d[i].asked = false;
		r = fn(c, &d[i], &rep, l);
		if (c->broken)
			return r;
		if (r < 0 && !err)
			err = r;
	}
}

static int on_opendir(struct conn *c, struct dir_slot *d, const struct sftp_reply *rep,
		      struct list_arg *l)
{
	int r;

	(void)l;
	if (rep->type == SFTP_HANDLE) {
		d->h = rep->handle;
		d->open = true;
		return 0;
	}
	d->done = true;
	r = sftp_status_of(c, rep);
	if (r == 0)
		return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
	return r == -ENOENT ? 0 : r; /* removed meanwhile */
}

static int on_readdir(struct conn *c, struct dir_slot *d, const struct sftp_reply *rep,
		      struct list_arg *l)
{
	int r;

	if (rep->type == SFTP_NAME)
		return add_names(c, rep, l, NULL);
	d->done = true;
	r = sftp_status_of(c, rep);
	if (r == 0)
		return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
	return r == -ENODATA ? 0 : r;
}

static int on_close(struct conn *c, struct dir_slot *d, const struct sftp_reply *rep,
		    struct list_arg *l)
{
	(void)d;
	(void)l;
	return sftp_status_of(c, rep);
}

/* The entries of the directories dirs under base, SFTP_WINDOW of them
 * at a time: each step (open, read, close) is one round trip for all of
 * them, so data/'s 256 directories take a few dozen round trips, not
 * several hundred. */
static int list_many(struct sftp *s, struct conn *c, const char *base,
		     const struct list_arg *dirs, struct list_arg *l)
{
	for (size_t first = 0; first < dirs->n; first += SFTP_WINDOW) {
		size_t k = dirs->n - first < SFTP_WINDOW ? dirs->n - first : SFTP_WINDOW;
		struct dir_slot d[SFTP_WINDOW] = {};
		bool more = true;
		int r, err;

		for (size_t i = 0; i < k; i++) {
			char sub[LOCATION_MAX + 600];

			snprintf(sub, sizeof(sub), "%s/%s", base, dirs->v[first + i].name);
			d[i].id = c->next_id++;
			if ((r = sftp_put_path(&c->out, SFTP_OPENDIR, d[i].id, sub)) < 0)
				return sftp_conn_broke(c, r); /* half a window in c->out */
			d[i].asked = true;
		}
		err = replies(s, c, d, k, on_opendir, l);
		if (c->broken)
			return err;
		while (more) {
			more = false;
			for (size_t i = 0; i < k; i++)
				if (d[i].open && !d[i].done) {
					d[i].id = c->next_id++;
					if ((r = sftp_put_handle(&c->out, SFTP_READDIR, d[i].id,
								 &d[i].h)) < 0)
						return sftp_conn_broke(c, r);
					d[i].asked = more = true;
				}
			if (more && (r = replies(s, c, d, k, on_readdir, l)) < 0) {
				if (c->broken)
					return r;
				if (!err)
					err = r;
			}
		}
		for (size_t i = 0; i < k; i++)
			if (d[i].open) {
				d[i].id = c->next_id++;
				if ((r = sftp_put_handle(&c->out, SFTP_CLOSE, d[i].id, &d[i].h)) < 0)
					return sftp_conn_broke(c, r);
				d[i].asked = true;
			}
		r = replies(s, c, d, k, on_close, l);
		if (err < 0)
			return err;
		if (r < 0)
			return r;
	}
	return 0;
}

static int op_list(struct sftp *s, struct conn *c, void *arg, bool again)
{
	struct list_arg *l = arg, subdirs = { 0 };
	char path[LOCATION_MAX + 300];
	bool nested = strcmp(l->dir, "data") == 0;
	int r;

	(void)again;
	list_clear(l);
	if ((r = object_path(s, l->dir, path, sizeof(path))) < 0)
		return r;
	r = list_one(s, c, path, l, nested ? &subdirs : NULL);
	if (r >= 0)
		r = list_many(s, c, path, &subdirs, l);
	list_clear(&subdirs);
	if (r == -ENOENT)
		return 0; /* a directory some tool never made: empty */
	return r < 0 && !c->broken ? server_error(s, r, "listing", l->dir) : r;
}

static int sftp_list(struct backend *b, const char *dir,
		     int (*fn)(const char *name, uint64_t size, void *userdata), void *userdata)
{
	struct sftp *s = (struct sftp *)b;
	struct list_arg l = { .dir = dir };
	char what[128];
	int r;

	if (strchr(dir, '/') || !name_ok(dir))
		return -EINVAL;
	snprintf(what, sizeof(what), "the listing of '%s'", dir);
	/* the whole listing first: fn may use the backend (and a connection) */
	r = sftp_run(s, what, op_list, &l);
	for (size_t i = 0; r >= 0 && i < l.n; i++) {
		r = fn(l.v[i].name, l.v[i].size, userdata);
		if (r != 0)
			break;
	}
	list_clear(&l);
	return r < 0 ? r : 0;
}

static int op_remove(struct sftp *s, struct conn *c, void *arg, bool again)
{
	const char *name = arg;
	char path[LOCATION_MAX + 300];
	int r = object_path(s, name, path, sizeof(path));

	if (r < 0)
		return r;
	if (c->pack.len && strcmp(c->pack_path, path) == 0) {
		r = sftp_conn_close(s, c, &c->pack);
		c->pack.len = 0;
		if (c->broken)
			return r;
	}
	r = sftp_conn_path(s, c, SFTP_REMOVE, path);
	/* gone on a second try: the first one removed it before it broke */
	if (r == -ENOENT && again)
		return 0;
	return r < 0 && r != -ENOENT && !c->broken ? server_error(s, r, "removal", name) : r;
}

static int sftp_remove(struct backend *b, const char *name)
{
	char what[256];

	snprintf(what, sizeof(what), "the removal of '%s'", name);
	return sftp_run((struct sftp *)b, what, op_remove, (void *)name);
}

struct stat_arg {
	const char *name;
	uint64_t size;
};

static int op_stat(struct sftp *s, struct conn *c, void *arg, bool again)
{
	struct stat_arg *st = arg;
	struct sftp_attrs a;
	char path[LOCATION_MAX + 300];
	int r = object_path(s, st->name, path, sizeof(path));

	(void)again;
	if (r < 0)
		return r;
	r = sftp_conn_stat(s, c, path, &a);
	if (r < 0)
		return r == -ENOENT || c->broken ? r : server_error(s, r, "stat", st->name);
	if (!(a.flags & SFTP_ATTR_SIZE))
		return sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
	st->size = a.size;
	return 0;
}

static int sftp_stat(struct backend *b, const char *name, uint64_t *ret_size)
{
	struct stat_arg st = { .name = name };
	char what[256];
	int r;

	snprintf(what, sizeof(what), "the stat of '%s'", name);
	r = sftp_run((struct sftp *)b, what, op_stat, &st);
	if (r >= 0)
		*ret_size = st.size;
	return r;
}

static int sftp_flush(struct backend *b)
{
	return remote_flush(((struct sftp *)b)->rm);
}

static void sftp_free(struct backend *b)
{
	struct sftp *s = (struct sftp *)b;

	remote_free(s->rm); /* waits for the uploads, which use connections */
	for (size_t i = 0; i < s->nidle; i++) {
		sftp_conn_end(s->idle[i]);
		sftp_conn_free(s->idle[i]);
	}
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->freed);
	free(s->idle);
	strv_free(s->argv);
	free(s->root);
	free(s->display);
	free(s->host);
	free(s);
}

static const struct backend_ops sftp_ops = {
	.get = sftp_get,
	.get_range = sftp_get_range,
	.get_upto = sftp_get_upto,
	.get_stream = sftp_get_stream,
	.put = sftp_put,
	.list = sftp_list,
	.remove = sftp_remove,
	.stat = sftp_stat,
	.flush = sftp_flush,
	.free = sftp_free,
};

static int sftp_new(const struct location *loc, const struct backend_options *o, struct sftp **ret)
{
	struct sftp *s = calloc(1, sizeof(*s));
	struct remote_options ro = { .display = loc->display };
	const char *cmd = o->ssh_command ? o->ssh_command : getenv("BCDR_SSH_COMMAND");
	int r;

	if (!s)
		return -ENOMEM;
	s->b.ops = &sftp_ops;
	s->conns = o->connections ? o->connections : SFTP_DEFAULT_CONNECTIONS;
	if (s->conns > BACKEND_MAX_CONNECTIONS)
		s->conns = BACKEND_MAX_CONNECTIONS;
	s->max_attempts = o->retries < 0 ? 1 : o->retries == 0 ? 7 : (unsigned)o->retries + 1;
	s->max_time = 120 * USEC_PER_SEC;
	s->stall = o->timeout_usec ? o->timeout_usec : 60 * USEC_PER_SEC;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->freed, NULL);
	s->idle = calloc(s->conns, sizeof(*s->idle));
	s->root = strdup(loc->path);
	s->display = strdup(loc->display);
	s->host = strdup(loc->host);
	if (loc->port)
		snprintf(s->port_opt, sizeof(s->port_opt), " -p %u", loc->port);
	s->b.location = s->display;
	ro.connections = s->conns;
	if (!s->idle || !s->root || !s->display || !s->host) {
		r = -ENOMEM;
		goto fail;
	}
	r = sftp_ssh_argv(loc, cmd, &s->argv);
	if (r == -EINVAL)
		remote_set_error(r,
				 "%s is not a command (an unclosed quote, or more than %d words)",
				 o->ssh_command ? "the repository's ssh_command" : "BCDR_SSH_COMMAND",
				 SFTP_MAX_ARGS);
	if (r < 0)
		goto fail;
	if ((r = remote_new(&ro, &s->rm)) < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	sftp_free(&s->b);
	return r;
}

int backend_sftp_open(const struct location *loc, const struct backend_options *o,
		      struct backend **ret)
{
	struct sftp *s;
	int r = sftp_new(loc, o, &s);

	if (r < 0)
		return r;
	*ret = &s->b;
	return 0;
}

/* mkdir -p, for the repository's own directory. */
static int mkdir_p(struct sftp *s, struct conn *c, const char *path)
{
	struct sftp_attrs a;
	char parent[LOCATION_MAX];
	char *slash;
	int r = sftp_conn_stat(s, c, path, &a);

	if (r >= 0)
		return (a.flags & SFTP_ATTR_PERMISSIONS) && !S_ISDIR(a.perms) ? -ENOTDIR : 0;
	if (r != -ENOENT)
		return r;
	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	while (slash && slash > parent && slash[1] == 0) { /* "a/b/" */
		*slash = 0;
		slash = strrchr(parent, '/');
	}
	if (slash && slash > parent) {
		*slash = 0;
		if ((r = mkdir_p(s, c, parent)) < 0)
			return r;
	}
	r = sftp_conn_mkdir(s, c, path);
	if (r < 0 && !c->broken && sftp_conn_stat(s, c, path, &a) >= 0)
		return 0; /* made meanwhile */
	return r;
}

static bool is_layout(const char *name, size_t len)
{
	for (size_t i = 0; i < ELEMENTSOF(layout); i++)
		if (strlen(layout[i]) == len && memcmp(layout[i], name, len) == 0)
			return true;
	return false;
}

/* The directory must be missing or empty; on a second try, the layout
 * the first one made is fine. */
static int op_create(struct sftp *s, struct conn *c, void *arg, bool again)
{
	struct sftp_handle h;
	int r = mkdir_p(s, c, s->root), r2;

	(void)arg;
	if (r >= 0)
		r = sftp_conn_opendir(s, c, s->root, &h);
	if (r < 0)
		return c->broken ? r : server_error(s, r, "creation", s->root);
	for (int round = 0;; round++) {
		uint32_t id = c->next_id++;
		struct sftp_reply rep;
		struct sftp_names it;
		struct sftp_attrs a;
		const char *name;
		size_t len;

		if ((r = sftp_put_handle(&c->out, SFTP_READDIR, id, &h)) < 0 ||
		    (r = sftp_call(s, c, id, &rep)) < 0)
			break;
		if (rep.type != SFTP_NAME) {
			r = sftp_status_of(c, &rep);
			r = r == -ENODATA ? 0 : r < 0 ? r : sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
			break;
		}
		/* "." and ".." come in the first batch or two */
		if (rep.count == 0 || round > 16) {
			r = sftp_conn_broke(c, -BCDR_ERR_PROTOCOL);
			break;
		}
		sftp_names_begin(&rep, &it);
		while (r >= 0 && sftp_names_next(&it, &name, &len, &a) > 0)
			if (!(len == 1 && name[0] == '.') &&
			    !(len == 2 && !memcmp(name, "..", 2)) &&
			    !(again && is_layout(name, len)))
				r = -EEXIST;
		if (r < 0)
			break;
	}
	if (c->broken)
		return r;
	r2 = sftp_conn_close(s, c, &h);
	if (r < 0)
		return r;
	if (r2 < 0)
		return r2;
	for (size_t i = 0; i < ELEMENTSOF(layout); i++) {
		char path[LOCATION_MAX + 300];

		if ((r = object_path(s, layout[i], path, sizeof(path))) < 0)
			return r;
		r = sftp_conn_mkdir(s, c, path);
		if (r < 0 && !c->broken && again) {
			struct sftp_attrs a;

			if (sftp_conn_stat(s, c, path, &a) >= 0)
				r = 0;
		}
		if (r < 0)
			return c->broken ? r : server_error(s, r, "creation", layout[i]);
	}
	return 0;
}

int backend_sftp_create(const struct location *loc, const struct backend_options *o,
			struct backend **ret)
{
	struct sftp *s;
	int r = sftp_new(loc, o, &s);

	if (r < 0)
		return r;
	r = sftp_run(s, "the creation of the repository", op_create, NULL);
	if (r < 0) {
		sftp_free(&s->b);
		return r;
	}
	*ret = &s->b;
	return 0;
}
