/* The metadata of a snapshot: one flat list of nodes in walk order
 * (parents before children), serialised as a byte stream which is cut
 * into tree blobs by the same content-defined chunker as file data, so an
 * unchanged part of the list is stored once across snapshots.
 *
 * Node encoding (little endian):
 *   u8 type | u16 path length | path | u32 mode | u32 uid | u32 gid |
 *   u64 size | i64 mtime ns | i64 ctime ns | u64 inode | u64 device |
 *   u16 link length | link | u16 xattr count | (u16 name length | name |
 *   u32 value length | value)* | u32 chunk count | 32-byte chunk IDs
 *
 * The reader (tree_reader.h) refuses hostile nodes; the encoder writes
 * whatever it is given (the tests craft hostile trees with it). */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum node_type {
	NODE_FILE = 1,
	NODE_DIR = 2,
	NODE_SYMLINK = 3,
	NODE_HARDLINK = 4, /* link = path of the first name of the inode */
	NODE_SPECIAL = 5,  /* fifo, socket, device: mode and rdev (in size) */
	NODE_ERROR = 6,    /* skipped: link = what went wrong */
};

/* node.flags */
#define NODE_LINKED 1u /* a file with more names: hard links may follow */
#define TREE_MODE_LINKED (1u << 31)

#define TREE_MAX_PATH 4096u
#define TREE_MAX_XATTRS 256u
#define TREE_MAX_XATTR_VALUE (64u << 10)
#define TREE_MAX_STREAM (2ull << 30)
/* Refused nodes kept for messages; all are counted. */
#define TREE_MAX_REFUSALS 1000u

struct xattr {
	char *name;
	uint8_t *value;
	uint32_t len;
};

struct node {
	uint8_t type;
	uint8_t flags; /* NODE_LINKED */
	char *path;    /* relative to the snapshot root, "/"-separated, no leading "/" */
	uint32_t mode, uid, gid;
	uint64_t size;
	int64_t mtime_ns, ctime_ns;
	uint64_t ino, dev;
	char *link;
	struct xattr *xattrs;
	uint16_t nxattrs;
	uint8_t (*chunks)[32];
	uint32_t nchunks;
};

struct tree_refusal {
	char *path;      /* made printable: control bytes, quote, backslash as \xNN */
	char *link;      /* a hard link's target, printable, or NULL */
	const char *why; /* static */
};

struct tree {
	struct node *nodes;
	size_t n, cap;
	struct tree_refusal *refused; /* the first TREE_MAX_REFUSALS */
	size_t nrefused_kept;
	uint64_t nrefused;
};

/* Why path is not a valid node path (static text), NULL when it is one:
 * relative, components separated by one "/", none empty, "." or "..". */
const char *tree_path_invalid(const char *path);

/* Walk order, the order of a stream the backup writes: "/" sorts before
 * every other byte, so a directory's entries (sorted by name) come right
 * after it and before its next sibling. */
int tree_path_cmp(const char *x, const char *y);

void node_release(struct node *n);
struct tree *tree_new(void);
void tree_free(struct tree *t);
/* Appends a zeroed node and returns it (NULL on ENOMEM). */
struct node *tree_append(struct tree *t);

/* Room for n nodes in all, so a walk of a known size does not regrow. */
int tree_reserve(struct tree *t, size_t n);

/* Serialises the nodes; heap buffer (free() it). */
int tree_encode(const struct tree *t, uint8_t **ret, size_t *ret_len);
/* One node at a time, for a writer that streams: its size in the stream
 * (-ENAMETOOLONG past the limits), then its bytes at p (returns the end). */
int tree_node_size(const struct node *n, size_t *ret);
uint8_t *tree_node_write(const struct node *n, uint8_t *p);
/* Decodes the one node at data[0, len) into n (zeroed first), *ret_used
 * is its size: -EAGAIN when the bytes end inside it, -BCDR_ERR_CORRUPT for
 * garbage. No order rules: see tree_reader.h. */
int tree_node_read(const uint8_t *data, size_t len, struct node *n, size_t *ret_used);
/* Counts n as refused for why (static text) in t, keeping the first
 * TREE_MAX_REFUSALS for messages. */
int tree_note_refusal(struct tree *t, const struct node *n, const char *why);
