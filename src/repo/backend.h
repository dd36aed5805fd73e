/* Where repository objects live. Every object is written whole and never
 * changed, so a backend needs only get, put, list and delete (plus a ranged
 * get so a restore reads a blob, not the whole pack). The local backend
 * keeps objects as files; object storage can come later behind the same
 * table. Object names are "<dir>/<name>", dir one of config, keys, data,
 * index, snapshots, locks. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct backend;

struct backend_ops {
	/* Whole object into a heap buffer (free() it); at most max bytes. */
	int (*get)(struct backend *b, const char *name, size_t max, uint8_t **ret, size_t *ret_len);
	/* len bytes at offset into buf; a short object is -BCDR_ERR_CORRUPT. */
	int (*get_range)(struct backend *b, const char *name, uint64_t offset, size_t len,
			 uint8_t *buf);
	/* Durably stores a new object: temp file, fsync, rename, dir fsync. */
	int (*put)(struct backend *b, const char *name, const void *data, size_t len);
	/* Names (without dir) of the objects in dir: calls fn for each;
	 * fn returning < 0 stops the listing with that value. */
	int (*list)(struct backend *b, const char *dir,
		    int (*fn)(const char *name, uint64_t size, void *userdata), void *userdata);
	int (*remove)(struct backend *b, const char *name);
	/* A read-only descriptor of an object, for callers that read many
	 * ranges of it (restore); NULL when the backend has no files. */
	int (*open_read)(struct backend *b, const char *name);
	/* Size of an object, -ENOENT when missing. */
	int (*stat)(struct backend *b, const char *name, uint64_t *ret_size);
	void (*free)(struct backend *b);
};

struct backend {
	const struct backend_ops *ops;
	char *location; /* for messages */
};

/* A repository in a local directory (created by backend_local_create). */
int backend_local_open(const char *path, struct backend **ret);
/* Creates the directory layout; the directory must be missing or empty. */
int backend_local_create(const char *path, struct backend **ret);

void backend_free(struct backend *b);
