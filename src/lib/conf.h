/* The plan's YAML, loaded into a tree whose every node knows its line and
 * column, and table-driven parsing of that tree into typed structs. Errors
 * read "file:line:col: message" like a compiler's.
 *
 * An engine parses its section with a table of fields:
 *
 *   static const struct conf_field job_fields[] = {
 *           CONF_FIELD("name", CONF_STRING, struct job, name, CONF_REQUIRED),
 *           CONF_FIELD("rpo", CONF_DURATION, struct job, rpo, 0),
 *           CONF_RANGE("retries", CONF_INT, struct job, retries, 0, 0, 100),
 *           {}
 *   };
 *   r = conf_parse_fields(ctx, node, job_fields, &job);
 *
 * Unknown keys, duplicate keys, wrong types and values out of range are
 * errors. Fields keep the defaults the caller set when their key is absent. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/timeutil.h"

/* Hard limits on outside bytes: a plan is written by a person. */
#define CONF_MAX_BYTES (4u << 20)
#define CONF_MAX_NODES 200000u
#define CONF_MAX_DEPTH 64u

enum conf_type { CONF_NODE_SCALAR, CONF_NODE_MAP, CONF_NODE_SEQ };

struct conf_pair;

struct conf_node {
	enum conf_type type;
	unsigned line, col; /* 1-based, where the node starts */
	char *value;        /* scalar text (NUL-terminated), else NULL */
	bool quoted;        /* scalar was quoted: never null/bool/number */
	size_t n;           /* entries in a map or items in a sequence */
	struct conf_pair *pairs;   /* map entries, in file order */
	struct conf_node **items;  /* sequence items */
};

struct conf_pair {
	struct conf_node *key; /* always a scalar */
	struct conf_node *value;
};

struct conf_doc {
	char *file;
	struct conf_node *root; /* NULL for an empty document */
};

/* Where parsing errors go: the first error is kept, formatted. */
struct conf_ctx {
	const char *file;
	char *error; /* "file:line:col: message", owned */
};

void conf_ctx_release(struct conf_ctx *ctx);
/* Records "file:line:col: message" (first error wins); returns
 * -BCDR_ERR_CONFIG so parsers can `return conf_errorf(...)`. */
int conf_errorf(struct conf_ctx *ctx, const struct conf_node *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parses YAML text (at most CONF_MAX_BYTES, one document, anchors and
 * aliases refused) into *ret (conf_doc_free() it). file names the text in
 * errors. */
int conf_doc_parse(struct conf_ctx *ctx, const char *file, const char *text, size_t len,
		   struct conf_doc **ret);
int conf_doc_load(struct conf_ctx *ctx, const char *path, struct conf_doc **ret);
void conf_doc_free(struct conf_doc *doc);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct conf_doc *, conf_doc_free)

/* Value of key in a map node, or NULL. */
const struct conf_node *conf_map_get(const struct conf_node *map, const char *key);

enum conf_kind {
	CONF_STRING,   /* char *, strdup'ed */
	CONF_STRV,     /* char **, NULL-terminated; a lone scalar is a list of one */
	CONF_BOOL,     /* bool */
	CONF_INT,      /* int64_t */
	CONF_UINT,     /* uint64_t */
	CONF_DOUBLE,   /* double */
	CONF_DURATION, /* usec_t: "30s", "1h30m" */
	CONF_SIZE,     /* uint64_t bytes: "512MiB" */
	CONF_PERCENT,  /* double fraction: "99.9%" -> 0.999, or 0.999 */
	CONF_ENUM,     /* int index into names[] */
	CONF_CUSTOM,   /* parse(ctx, node, field pointer) */
};

#define CONF_REQUIRED 1u

struct conf_field {
	const char *key;
	enum conf_kind kind;
	size_t offset;
	unsigned flags;
	double min, max;                /* inclusive bounds when min < max */
	const char *const *names;       /* CONF_ENUM: NULL-terminated */
	int (*parse)(struct conf_ctx *ctx, const struct conf_node *node, void *field);
};

#define CONF_FIELD(key, kind, type, member, flags) \
	{ (key), (kind), offsetof(type, member), (flags), 0, 0, NULL, NULL }
#define CONF_RANGE(key, kind, type, member, flags, lo, hi) \
	{ (key), (kind), offsetof(type, member), (flags), (lo), (hi), NULL, NULL }
#define CONF_ENUM_FIELD(key, type, member, flags, names) \
	{ (key), CONF_ENUM, offsetof(type, member), (flags), 0, 0, (names), NULL }
#define CONF_CUSTOM_FIELD(key, type, member, flags, fn) \
	{ (key), CONF_CUSTOM, offsetof(type, member), (flags), 0, 0, NULL, (fn) }
/* A key that is accepted but parsed by the caller itself. */
#define CONF_IGNORE(key) { (key), CONF_CUSTOM, 0, 0, 0, 0, NULL, NULL }

/* Parses map node into obj by the {}-terminated fields table. */
int conf_parse_fields(struct conf_ctx *ctx, const struct conf_node *map,
		      const struct conf_field *fields, void *obj);
/* conf_expect(node is a map, what) then conf_parse_fields(): a section or
 * an item that is a map of fields. */
int conf_parse_map(struct conf_ctx *ctx, const struct conf_node *node, const char *what,
		   const struct conf_field *fields, void *obj);
/* Frees what conf_parse_fields allocated in obj (strings, lists). */
void conf_free_fields(const struct conf_field *fields, void *obj);

/* Parses one scalar of the given kind (not ENUM/CUSTOM) into field. */
int conf_parse_scalar(struct conf_ctx *ctx, const struct conf_node *node, enum conf_kind kind,
		      void *field);

/* Checks node is a sequence (or a map, or a scalar); errors name what. */
int conf_expect(struct conf_ctx *ctx, const struct conf_node *node, enum conf_type type,
		const char *what);

/* Parses a sequence into a new array of elements of elem_size bytes: each
 * is zeroed, given init(elem) (may be NULL), then parse(ctx, item, elem).
 * On failure every element is given release(elem) (may be NULL; must cope
 * with a half-parsed one) and nothing is returned. */
int conf_parse_list(struct conf_ctx *ctx, const struct conf_node *seq, size_t elem_size,
		    void (*init)(void *elem),
		    int (*parse)(struct conf_ctx *ctx, const struct conf_node *item, void *elem),
		    void (*release)(void *elem), void **ret_array, size_t *ret_n);
