/* bcdr copy: snapshots into a second repository with its own key. Chunk
 * IDs are keyed per repository, so every chunk is read, checked and given
 * its ID in the destination; chunks the destination has are not stored
 * again, and a snapshot already copied (same time, host and paths) is
 * skipped. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "repo/repo.h"

struct copy_result {
	bool skipped; /* the destination has it already */
	uint8_t new_id[32];
	uint64_t blobs_copied, bytes_copied;
};

int copy_snapshot(struct repo *src, struct repo *dst, const struct snapshot *s,
		  struct copy_result *ret);
