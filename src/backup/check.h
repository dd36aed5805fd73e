/* bcdr check: the repository's structure (keys, index, snapshots, trees,
 * every referenced chunk indexed, every indexed pack present) and, with
 * read_data, every byte of every pack (hash, header, each blob's tag and
 * keyed ID). Each problem names the object it is in. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "repo/repo.h"

struct check_options {
	bool read_data;
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
