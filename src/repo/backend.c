/* The table of backends: which one serves a location. */
#include "repo/backend.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "repo/backend-sftp.h"

typedef int (*backend_open_fn)(const struct location *loc, const struct backend_options *o,
			       struct backend **ret);

/* One row per backend; a kind without a row is not in this build. */
static const struct {
	enum location_kind kind;
	backend_open_fn open, create;
} backends[] = {
	{ LOCATION_LOCAL, backend_local_open_at, backend_local_create_at },
	{ LOCATION_REST, backend_rest_open, backend_rest_create },
	{ LOCATION_S3, backend_s3_open, backend_s3_create },
	{ LOCATION_SFTP, backend_sftp_open, backend_sftp_create },
};

/* The windows of backend_read(): the last READAHEAD_SLOTS, least recently
 * used replaced first. */
struct readahead {
	pthread_mutex_t lock;
	struct window {
		char *name;
		uint64_t offset, tick;
		size_t len;
		uint8_t *data;
	} w[READAHEAD_SLOTS];
	uint64_t tick;
};

static void readahead_free(struct readahead *ra)
{
	if (!ra)
		return;
	for (size_t i = 0; i < READAHEAD_SLOTS; i++) {
		free(ra->w[i].name);
		free(ra->w[i].data);
	}
	pthread_mutex_destroy(&ra->lock);
	free(ra);
}

static int dispatch(const struct location *loc, const struct backend_options *o, bool create,
		    struct backend **ret)
{
	static const struct backend_options defaults = {};
	int r = -BCDR_ERR_UNSUPPORTED;

	if (!o)
		o = &defaults;
	for (size_t i = 0; i < ELEMENTSOF(backends); i++)
		if (backends[i].kind == loc->kind)
			r = (create ? backends[i].create : backends[i].open)(loc, o, ret);
	if (r < 0 || loc->kind == LOCATION_LOCAL)
		return r;
	(*ret)->connections = o->connections               ? o->connections
			      : loc->kind == LOCATION_SFTP ? SFTP_DEFAULT_CONNECTIONS
							   : BACKEND_DEFAULT_CONNECTIONS;
	if (backend_setup(*ret) < 0) {
		backend_free(*ret);
		return -ENOMEM;
	}
	return r;
}

int backend_setup(struct backend *b)
{
	if (!b->ops->get_upto || b->ahead)
		return 0;
	if (!(b->ahead = calloc(1, sizeof(struct readahead))))
		return -ENOMEM;
	pthread_mutex_init(&b->ahead->lock, NULL);
	return 0;
}

/* A kept window holding [offset, offset + len): copied into buf. */
static bool window_find(struct readahead *ra, const char *name, uint64_t offset, size_t len,
			uint8_t *buf)
{
	bool hit = false;

	pthread_mutex_lock(&ra->lock);
	for (size_t i = 0; i < READAHEAD_SLOTS && !hit; i++) {
		struct window *w = &ra->w[i];

		if (w->name && offset >= w->offset && offset - w->offset <= w->len &&
		    len <= w->len - (offset - w->offset) && strcmp(w->name, name) == 0) {
			memcpy(buf, w->data + (offset - w->offset), len);
			w->tick = ++ra->tick;
			hit = true;
		}
	}
	pthread_mutex_unlock(&ra->lock);
	return hit;
}

/* Keeps a window (takes data) in place of the least recently used one. */
static void window_keep(struct readahead *ra, const char *name, uint64_t offset, uint8_t *data,
			size_t len)
{
	char *n = strdup(name);
	struct window *old = NULL;

	if (!n) {
		free(data);
		return;
	}
	pthread_mutex_lock(&ra->lock);
	for (size_t i = 0; i < READAHEAD_SLOTS; i++)
		if (!old || ra->w[i].tick < old->tick)
			old = &ra->w[i];
	free(old->name);
	free(old->data);
	*old = (struct window){
		.name = n, .offset = offset, .len = len, .data = data, .tick = ++ra->tick
	};
	pthread_mutex_unlock(&ra->lock);
}

int backend_read(struct backend *b, const char *name, uint64_t offset, size_t len, uint8_t *buf)
{
	uint8_t *data;
	size_t got;
	int r;

	if (!b->ahead || len == 0 || len > READAHEAD_WINDOW / 2 || strncmp(name, "data/", 5) != 0)
		return b->ops->get_range(b, name, offset, len, buf);
	if (window_find(b->ahead, name, offset, len, buf))
		return 0;
	if (!(data = malloc(READAHEAD_WINDOW)))
		return b->ops->get_range(b, name, offset, len, buf);
	r = b->ops->get_upto(b, name, offset, len, READAHEAD_WINDOW, data, &got);
	if (r < 0) {
		free(data);
		return r;
	}
	memcpy(buf, data, len);
	window_keep(b->ahead, name, offset, data, got);
	return 0;
}

int backend_stream(struct backend *b, const char *name, uint64_t offset, uint64_t len,
		   backend_stream_fn fn, void *ctx)
{
	_cleanup_free_ uint8_t *piece = NULL;

	if (b->ops->get_stream)
		return b->ops->get_stream(b, name, offset, len, fn, ctx);
	if (len && !(piece = malloc(len < STREAM_PIECE ? len : STREAM_PIECE)))
		return -ENOMEM;
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < STREAM_PIECE ? (size_t)(len - done) : STREAM_PIECE;
		int r = b->ops->get_range(b, name, offset + done, n, piece);

		if (r < 0 || (r = fn(piece, n, ctx)) < 0)
			return r;
		done += n;
	}
	return 0;
}

int backend_open(const struct location *loc, const struct backend_options *o,
		 struct backend **ret)
{
	return dispatch(loc, o, false, ret);
}

int backend_create(const struct location *loc, const struct backend_options *o,
		   struct backend **ret)
{
	return dispatch(loc, o, true, ret);
}

int backend_flush(struct backend *b)
{
	return b->ops->flush ? b->ops->flush(b) : 0;
}

void backend_free(struct backend *b)
{
	if (!b)
		return;
	readahead_free(b->ahead);
	b->ops->free(b);
}
