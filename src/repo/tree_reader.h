/* Reading a node stream one node at a time, so that nothing holds a whole
 * snapshot's nodes: a merge walk against the next backup, restore, check,
 * ls go through the stream in its order.
 *
 * The reader refuses (drops, and lists in ->refused) a node whose path is
 * not a valid one (tree_path_invalid), a second node of one path, a node
 * whose parent is not an earlier directory node, and a hard link whose
 * target is not an earlier file node: a repository is outside input, and
 * nothing that reads a tree may be led outside a restore's target.
 *
 * A stream in walk order (tree_path_cmp: what every writer emits) needs
 * for those rules the last accepted path and an 8-byte keyed hash
 * (SipHash, a random key per reader, so no stream can be made to collide)
 * of each file marked NODE_LINKED (more names at backup time): memory that
 * does not grow with the node count. At a node that leaves the order, or a
 * hard link to an unmarked file (streams of older writers), a rewindable
 * reader (tree_reader_rewindable) reads the stream again from its start
 * and goes on with one such hash per accepted node; one that is not
 * rewindable keeps that set from the start. Either way it accepts and
 * refuses the same nodes, with the same reasons.
 *
 * Bytes come either from the caller (tree_reader_feed, tree_reader_end)
 * or from a fill function the reader calls when it runs dry. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/tree.h"

struct tree_reader;
/* Feeds the reader more bytes (tree_reader_feed) or ends it
 * (tree_reader_end); negative stops the read with that error. */
typedef int (*tree_fill_fn)(void *userdata, struct tree_reader *r);
/* Makes the next fill start again from the stream's first byte. */
typedef int (*tree_rewind_fn)(void *userdata);

/* A table of path hashes, low 2 bits the node's kind. */
struct tree_hset {
	uint64_t *slots;
	size_t nslots, nused;
};

struct tree_reader {
	uint8_t *buf;
	size_t off, len, cap;
	uint64_t total; /* bytes fed since the start (or the rewind) */
	uint64_t base;  /* the stream offset of buf[0] */
	bool ended;
	struct node node;     /* the one handed out: the reader's, until the next call */
	struct tree *refused; /* its refused, nrefused_kept, nrefused; no nodes */
	tree_fill_fn fill;
	tree_rewind_fn rewind;
	void *userdata;
	uint64_t k0, k1;
	/* The rules in walk order: the last accepted path and its kind, the
	 * marked files. */
	bool ordered;
	char *last;
	size_t last_len, last_cap;
	uint8_t last_kind;
	uint64_t naccepted;
	struct tree_hset links;
	/* The rules with the set of the accepted paths. */
	struct tree_hset set;
	size_t hint;
	char *dir; /* the latest parent found: most nodes share it */
	size_t dir_len, dir_cap;
	bool merge_only; /* tree_reader_merge_only(): no rules but the path's */
};

int tree_reader_init(struct tree_reader *r, tree_fill_fn fill, void *userdata);
void tree_reader_release(struct tree_reader *r);
/* Sizes the set, if the reader comes to one, for about nodes nodes at
 * once: a table grown by doubling holds the old and new one at its peak. */
int tree_reader_expect(struct tree_reader *r, size_t nodes);
/* Before the first node: the walk order's rules, and a fall back to the
 * set through rewind (which must make the fill feed the same bytes again). */
void tree_reader_rewindable(struct tree_reader *r, tree_rewind_fn rewind);
/* For a reader whose nodes are only looked up by path, never placed on
 * disk (the parent snapshot of a backup: its unchanged files lend their
 * chunks and xattrs to the walked nodes of the same path, and the new
 * stream comes from the walk): checks each path alone (tree_path_invalid)
 * and keeps no set, so its memory does not grow with the node count. */
void tree_reader_merge_only(struct tree_reader *r);
int tree_reader_feed(struct tree_reader *r, const uint8_t *data, size_t len);
void tree_reader_end(struct tree_reader *r);
/* 1 and the next accepted node in *ret (valid until the next call; its
 * members may be taken, leaving NULL behind); 0 when the stream is over
 * (or, without a fill function, until more is fed); -BCDR_ERR_CORRUPT
 * for garbage or a stream ending inside a node. */
int tree_reader_next(struct tree_reader *r, struct node **ret);

/* A whole tree in memory, for the small users (tests, dump of one file). */
int tree_decode(const uint8_t *data, size_t len, struct tree **ret);

struct tree_decoder {
	struct tree_reader r;
	struct tree *tree;
};

int tree_decoder_init(struct tree_decoder *d);
int tree_decoder_feed(struct tree_decoder *d, const uint8_t *data, size_t len);
/* The tree, once every piece is in; a stream ending inside a node is
 * -BCDR_ERR_CORRUPT. */
int tree_decoder_finish(struct tree_decoder *d, struct tree **ret);
void tree_decoder_release(struct tree_decoder *d);
