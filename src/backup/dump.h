/* bcdr dump: one file of a snapshot to a file descriptor (restic's dump),
 * so `bcdr dump latest /shop.sql | psql shop2` loads a database without a
 * restore to disk; a directory (or "/", the whole snapshot) comes out as a
 * POSIX tar stream (ustar, with pax records for long names and large
 * sizes), its members named as in the snapshot. Every chunk is checked
 * against its ID as it is read. */
#pragma once

#include <stdint.h>

#include "repo/repo.h"
#include "repo/tree.h"

/* The node of t at path ("/shop.sql", "shop.sql", "/" for the root: NULL
 * with *ret_root set); -BCDR_ERR_NOT_FOUND when there is none. A hard
 * link is followed to its first name. */
int dump_find(const struct tree *t, const char *path, const struct node **ret, bool *ret_root);

/* Writes node n (a file's bytes, or with what is under it a tar stream)
 * to fd; the repository's index must be loaded. *ret_bytes: bytes of file
 * data written. */
int dump_node(struct repo *repo, const struct tree *t, const struct node *n, int fd,
	      uint64_t *ret_bytes);
