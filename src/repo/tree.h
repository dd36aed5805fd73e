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
 * The decoder refuses (drops, and lists in tree.refused) a node whose path
 * is not a valid one (tree_path_invalid), a second node of one path, a node
 * whose parent is not an earlier directory node, and a hard link whose
 * target is not an earlier file node: a repository is outside input, and
 * nothing that reads a decoded tree may be led outside a restore's target.
 * The encoder writes whatever it is given (the tests craft hostile trees
 * with it). */
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
	char *path; /* relative to the snapshot root, "/"-separated, no leading "/" */
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
/* Parses a stream made by tree_encode into a new tree; garbage gives
 * -BCDR_ERR_CORRUPT. */
int tree_decode(const uint8_t *data, size_t len, struct tree **ret);

/* The same, fed piece by piece (tree blobs as they are read), so the whole
 * stream is never held: nodes may span pieces. */
struct tree_decoder {
	struct tree *tree;
	uint8_t *pending; /* the start of a node cut by a piece's end */
	size_t len, cap;
	uint64_t total;
	/* Positions of the accepted nodes by path (open addressing), for the
	 * order rules; SIZE_MAX is empty. */
	size_t *slots;
	size_t nslots, nused;
	size_t last_dir; /* the latest parent found: most nodes share it */
};

int tree_decoder_init(struct tree_decoder *d);
int tree_decoder_feed(struct tree_decoder *d, const uint8_t *data, size_t len);
/* The tree, once every piece is in; a stream ending inside a node is
 * -BCDR_ERR_CORRUPT. */
int tree_decoder_finish(struct tree_decoder *d, struct tree **ret);
void tree_decoder_release(struct tree_decoder *d);
