/* Packs in data/ that no index file names: what a backup interrupted
 * after uploading them leaves (a dead server, a kill -9, a lost network).
 * The next backup adopts them so it sends them no second time. */
#pragma once

#include "repo/repo.h"

/* The objects of data/ as listed, ids and sizes (listed apart from the
 * adoption, so that the listing can go on while the index loads). */
struct pack_list {
	uint8_t (*ids)[32];
	uint64_t *sizes;
	size_t n, cap;
};
int repo_list_packs(struct repo *repo, struct pack_list *ret);
void pack_list_release(struct pack_list *l);

/* When repo holds the only lock (so no other backup is still writing
 * packs it has not indexed yet), reads the header of every pack of packs
 * the index lacks and adds the pack and its blobs to repo->index, as if
 * this process had written them: the caller's index file must then name
 * them (they come after the packs the index had). A pack whose header does
 * not open is left alone (prune removes it). *ret_n counts the packs
 * adopted. */
int repo_adopt_orphans(struct repo *repo, const struct pack_list *packs, unsigned *ret_n);
