/* Retention: which snapshots a keep policy keeps (forget), and freeing
 * the data no snapshot uses any more (prune). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backup/plan.h"
#include "repo/repo.h"

/* True when the policy sets at least one bucket. */
bool keep_policy_set(const struct keep_policy *k);

/* Decides for snapshots v[0..n) (oldest first, one group) which to keep:
 * keep-last N keeps the N newest; each of hourly, daily, weekly (ISO),
 * monthly, yearly keeps the newest snapshot of each of the N most recent
 * periods that have one (local time), like restic. */
void keep_policy_apply(const struct keep_policy *k, struct snapshot *const *v, size_t n,
		       bool *keep);

struct forget_result {
	size_t kept, removed;
};

/* Applies the policy per group (host and paths, or job) and removes the
 * other snapshots (exclusive lock). Calls fn for each decision when set. */
int forget_run(struct repo *repo, const struct keep_policy *k, const char *job, bool dry_run,
	       void (*fn)(const struct snapshot *s, bool keep, void *userdata), void *userdata,
	       struct forget_result *ret);

struct prune_result {
	uint64_t packs_deleted, packs_repacked, packs_kept, blobs_removed;
	uint64_t bytes_freed;
	uint64_t packs_spared; /* no index named them, another lock was live */
};

/* Removes the data no snapshot refers to: deletes unused packs, rewrites
 * mostly unused ones, writes a new index and removes the old index files
 * (exclusive lock). Crash-safe at every step. Packs no index named when it
 * started are left alone while another process holds a live lock (or wrote
 * an index meanwhile): they may be a running backup's. */
int prune_run(struct repo *repo, bool dry_run, struct prune_result *ret);
