#include "repo/retention.h"

#include <stdio.h>

struct extend_ctx {
	struct repo *repo;
	const char *dir;
	unsigned n;
};

static int extend_one(const char *name, uint64_t size, void *userdata)
{
	struct extend_ctx *x = userdata;
	char full[160];
	int r;

	(void)size;
	snprintf(full, sizeof(full), "%s/%s", x->dir, name);
	r = x->repo->backend->ops->extend(x->repo->backend, full);
	if (r >= 0)
		x->n++;
	return r < 0 ? r : 0;
}

int repo_extend_retention(struct repo *repo, unsigned *ret_n)
{
	static const char *const dirs[] = { "keys", "index", "snapshots", "data" };
	struct extend_ctx x = { .repo = repo };
	struct backend *b = repo->backend;
	int r = 0;

	*ret_n = 0;
	if (!b->ops->extend || b->ops->extend(b, NULL) <= 0)
		return 0;
	for (size_t i = 0; r >= 0 && i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		x.dir = dirs[i];
		r = b->ops->list(b, dirs[i], extend_one, &x);
	}
	if (r >= 0 && (r = b->ops->extend(b, "config")) >= 0)
		r = b->ops->extend(b, "object-lock");
	if (r >= 0)
		x.n += 2;
	{
		int rf = backend_flush(b);

		if (r >= 0)
			r = rf;
	}
	if (r < 0)
		return r;
	*ret_n = x.n;
	return 0;
}
