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

struct copy_missing_result {
	unsigned copied;       /* snapshots copied now */
	uint64_t bytes_copied; /* new data stored in dst */
	usec_t newest;         /* of the wanted snapshots in dst afterwards; 0: none */
};

/* Brings dst up to date (a plan job's copies): every snapshot of src that
 * want() accepts and that is newer than the newest such one in dst (what
 * failed copies missed; older ones dst lacks were left out or forgotten
 * there on purpose), oldest first. each(), if not NULL, hears of every
 * snapshot copied. The caller holds both repositories' locks. On error,
 * *ret says how far it got. */
int copy_missing(struct repo *src, struct repo *dst,
		 bool (*want)(const struct snapshot *s, void *userdata),
		 void (*each)(const struct snapshot *s, const struct copy_result *r,
			      void *userdata),
		 void *userdata, struct copy_missing_result *ret);
