/* A hash map from strings to indices, for the few lookups a backup makes
 * per file (parent snapshot by path, hard links by device and inode). */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct pathmap {
	const char **keys; /* borrowed */
	size_t *values;
	size_t n, nslots;
};

void pathmap_release(struct pathmap *m);
/* Room for n keys without rehashing. */
int pathmap_reserve(struct pathmap *m, size_t n);
/* key is borrowed and must outlive the map. */
int pathmap_put(struct pathmap *m, const char *key, size_t value);
/* 0 and *ret when present, -ENOENT otherwise. */
int pathmap_get(const struct pathmap *m, const char *key, size_t *ret);
