/* bcdr check: the repository's structure (keys, index, snapshots, trees,
 * every referenced chunk indexed, every indexed pack present) and, with
 * read_data, every byte of every pack (hash, header, each blob's tag and
 * keyed ID), several packs at once (as many as the repository's
 * connections, or a thread per CPU for a local one). Each problem names
 * the object it is in; they come in the listing's order whatever the
 * threads did. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "lib/timeutil.h"
#include "repo/repo.h"

/* How far check --read-data is: packs and their bytes. */
struct check_progress {
	uint64_t packs_done, packs, bytes_done, bytes;
	usec_t elapsed;
};

struct check_options {
	bool read_data;
	/* read_data: every second, how far the reading is; may be NULL.
	 * Called on the thread that called check_run(). */
	void (*progress)(const struct check_progress *p, void *userdata);
	/* error: damage; !error: a note (unreferenced data prune removes). */
	void (*report)(bool error, const char *object, const char *what, void *userdata);
	void *userdata;
};

struct check_result {
	uint64_t errors, notes;
	uint64_t keys, packs, index_files, snapshots, blobs, bytes_read;
};

/* 0 when clean, -BCDR_ERR_CORRUPT when damage was found (each reported),
 * other errors when the check itself could not run. */
int check_run(struct repo *repo, const struct check_options *o, struct check_result *ret);
