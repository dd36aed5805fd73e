/* Where repository objects live. Every object is written whole and never
 * changed, so a backend needs only get, put, list and delete (plus a ranged
 * get so a restore reads a blob, not the whole pack). Object names are
 * "<dir>/<name>", dir one of config, keys, data, index, snapshots, locks;
 * in keys, data, index and snapshots the name is the SHA-256 of the
 * object's bytes in lower-case hex (S3 sends it as the body's hash).
 *
 * backend_open() and backend_create() pick the backend from the location's
 * kind (repo/location.h) in one table in backend.c: a new backend is one
 * row there and a pair of functions with the signature of
 * backend_local_open_at(). Every backend is safe to call from several
 * threads at once (the archiver's and the restorer's workers). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "repo/location.h"

struct backend;

/* Receives a stream's bytes in order, each byte once; returning < 0 stops
 * the stream, which then returns that value. */
typedef int (*backend_stream_fn)(const uint8_t *data, size_t len, void *ctx);

struct backend_ops {
	/* Whole object into a heap buffer (free() it); at most max bytes. */
	int (*get)(struct backend *b, const char *name, size_t max, uint8_t **ret, size_t *ret_len);
	/* len bytes at offset into buf; a short object is -BCDR_ERR_CORRUPT. */
	int (*get_range)(struct backend *b, const char *name, uint64_t offset, size_t len,
			 uint8_t *buf);
	/* Up to len bytes at offset, fewer when the object ends first but at
	 * least need (else -BCDR_ERR_CORRUPT); *ret_len says how many. Remote
	 * backends have it, for the read-ahead of packs (backend_read()). */
	int (*get_upto)(struct backend *b, const char *name, uint64_t offset, size_t need,
			size_t len, uint8_t *buf, size_t *ret_len);
	/* [offset, offset + len) of name to fn as the bytes arrive: one
	 * request (per pipeline on sftp), no buffer of the whole. A connection
	 * that breaks is resumed from the last byte delivered, within the
	 * backend's bounded retries; a shorter object is -BCDR_ERR_CORRUPT.
	 * NULL: backend_stream() reads ranges. */
	int (*get_stream)(struct backend *b, const char *name, uint64_t offset, uint64_t len,
			  backend_stream_fn fn, void *ctx);
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
	/* Waits for the writes a remote backend still has in flight and
	 * returns the first error among them; NULL when put is synchronous. */
	int (*flush)(struct backend *b);
	/* Object Lock: gives the object a full retention from now (maybe in
	 * the background: flush() waits); NULL, or 0 without a request, for
	 * stores without retention. With name NULL: 1 when the repository
	 * has a retention, else 0. */
	int (*extend)(struct backend *b, const char *name);
	void (*free)(struct backend *b);
};

struct readahead;

struct backend {
	const struct backend_ops *ops;
	char *location; /* for messages: never holds a secret */
	struct readahead *ahead; /* backend_read()'s windows, when ops->get_upto */
	unsigned connections;    /* a remote store's parallel connections; 0: local */
};

/* How an S3 request names the bucket. */
enum s3_addressing {
	/* virtual-host style where the store asks for it (AWS, Google Cloud
	 * Storage, Alibaba OSS) and the bucket can be a host name, else path
	 * style */
	S3_ADDRESSING_AUTO,
	S3_ADDRESSING_PATH,         /* HOST/BUCKET/KEY */
	S3_ADDRESSING_VIRTUAL_HOST, /* BUCKET.HOST/KEY */
};

/* How to reach a location, besides the location itself (the plan's
 * repositories: entry, or defaults). Strings are borrowed. */
struct backend_options {
	unsigned connections;   /* parallel requests to a remote store; 0: 8 */
	const char *ca_file;    /* TLS: this CA bundle instead of the system's */
	uint64_t timeout_usec;  /* a request without a byte for this long fails; 0: 60 s */
	int retries;            /* tries after the first; 0: 6, -1: none */
	/* s3 */
	const char *region;     /* NULL: $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1 */
	const char *storage_class;
	enum s3_addressing addressing; /* BUCKET.HOST or HOST/BUCKET */
	bool list_v1;           /* ListObjects v1 from the start (v2 broken) */
	const char *access_key_id_file, *secret_access_key_file;
	const char *profile;    /* NULL: $AWS_PROFILE, "default" */
	/* Object Lock: retention given to every object, 0 for none */
	uint64_t object_lock_days;
	bool object_lock_governance; /* GOVERNANCE instead of COMPLIANCE */
	/* sftp: the ssh program and its first arguments, as restic's
	 * sftp.command; NULL: $BCDR_SSH_COMMAND, else "ssh" */
	const char *ssh_command;
};

#define BACKEND_DEFAULT_CONNECTIONS 8
#define BACKEND_MAX_CONNECTIONS 64

/* Opens the repository's storage at loc; o may be NULL. -ENOENT when the
 * location does not exist, -BCDR_ERR_UNSUPPORTED for a kind this build
 * cannot reach. */
int backend_open(const struct location *loc, const struct backend_options *o,
		 struct backend **ret);
/* Creates it: the directory, remote path or bucket prefix must be missing
 * or empty (-EEXIST). */
int backend_create(const struct location *loc, const struct backend_options *o,
		   struct backend **ret);
/* What backend_open() adds to the backend a row of its table made: the
 * read-ahead of backend_read() when ops->get_upto is there. For a backend
 * made outside the table (the unit tests' in memory); backend_free()
 * releases it. */
int backend_setup(struct backend *b);
/* backend->ops->flush when the backend has one. */
int backend_flush(struct backend *b);
/* get_range() of a blob for restore, check and copy, which read a pack's
 * blobs mostly in the order they were written: on a remote backend a small
 * read of a pack fetches a window (READAHEAD_WINDOW) that the next blobs
 * come from, so a restore makes one request per window, not per blob. The
 * last windows are kept (READAHEAD_SLOTS), shared by the threads. */
int backend_read(struct backend *b, const char *name, uint64_t offset, size_t len, uint8_t *buf);
#define READAHEAD_WINDOW ((size_t)2 << 20)
#define READAHEAD_SLOTS 8

/* ops->get_stream, or get_range() of STREAM_PIECE at a time. */
int backend_stream(struct backend *b, const char *name, uint64_t offset, uint64_t len,
		   backend_stream_fn fn, void *ctx);
#define STREAM_PIECE ((size_t)1 << 20)

/* The backends, one pair each (backend-<kind>.c). */
int backend_local_open_at(const struct location *loc, const struct backend_options *o,
			  struct backend **ret);
int backend_local_create_at(const struct location *loc, const struct backend_options *o,
			    struct backend **ret);
int backend_sftp_open(const struct location *loc, const struct backend_options *o,
		      struct backend **ret);
int backend_sftp_create(const struct location *loc, const struct backend_options *o,
			struct backend **ret);
int backend_rest_open(const struct location *loc, const struct backend_options *o,
		      struct backend **ret);
int backend_rest_create(const struct location *loc, const struct backend_options *o,
			struct backend **ret);
int backend_s3_open(const struct location *loc, const struct backend_options *o,
		    struct backend **ret);
int backend_s3_create(const struct location *loc, const struct backend_options *o,
		      struct backend **ret);

/* A repository in a local directory (created by backend_local_create). */
int backend_local_open(const char *path, struct backend **ret);
/* Creates the directory layout; the directory must be missing or empty. */
int backend_local_create(const char *path, struct backend **ret);

void backend_free(struct backend *b);
