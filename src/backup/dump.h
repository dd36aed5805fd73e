/* bcdr dump: one file of a snapshot to a file descriptor (restic's dump),
 * so `bcdr dump latest /shop.sql | psql shop2` loads a database without a
 * restore to disk; a directory (or "/", the whole snapshot) comes out as a
 * POSIX tar stream (ustar, with pax records for long names and large
 * sizes), its members named as in the snapshot. Every chunk is checked
 * against its ID as it is read. The snapshot's node stream is read node
 * by node (repo_tree_open), never whole: what a dump holds is the one node
 * it found, the reader's 8-byte hash per node, and a blob's buffers. */
#pragma once

#include <stdint.h>

#include "repo/repo.h"
#include "repo/snapshot.h"
#include "repo/tree.h"

/* What a dump path names: the snapshot's root, or a copy of one node. */
struct dump_target {
	bool root;
	struct node node; /* zeroed for the root */
};

/* The node of s at path ("/shop.sql", "shop.sql", "/" for the root: root
 * set); -BCDR_ERR_NOT_FOUND when there is none. A hard link is followed to
 * its first name (a second read of the stream). *ret owns the node's
 * members: dump_target_release() frees them. */
int dump_find(struct repo *repo, const struct snapshot *s, const char *path,
	      struct dump_target *ret);
void dump_target_release(struct dump_target *t);

/* Writes what t names (a file's bytes, or a directory and what is under
 * it as a tar stream, read from s's stream again) to fd; the
 * repository's index must be loaded. *ret_bytes: bytes of file data. */
int dump_node(struct repo *repo, const struct snapshot *s, const struct dump_target *t, int fd,
	      uint64_t *ret_bytes);
