/* The table of backends: which one serves a location. */
#include "repo/backend.h"

#include <errno.h>
#include <stddef.h>

#include "lib/cleanup.h"
#include "lib/err.h"

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

static int dispatch(const struct location *loc, const struct backend_options *o, bool create,
		    struct backend **ret)
{
	static const struct backend_options defaults = {};

	if (!o)
		o = &defaults;
	for (size_t i = 0; i < ELEMENTSOF(backends); i++)
		if (backends[i].kind == loc->kind)
			return (create ? backends[i].create : backends[i].open)(loc, o, ret);
	return -BCDR_ERR_UNSUPPORTED;
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
	if (b)
		b->ops->free(b);
}
