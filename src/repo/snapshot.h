/* Snapshot objects: the commit point of a backup. Stored as an encrypted
 * repository object whose plaintext is JSON:
 *   {"version":1,"time":"RFC 3339","time_us":N,"host":"...","job":"...",
 *    "paths":[...],"tags":[...],"parent":"hex"?,"tree":["hex",...],
 *    "summary":{"files_new":N,"files_changed":N,"files_unchanged":N,
 *               "dirs":N,"errors":N,"bytes_processed":N,"bytes_added":N,
 *               "bytes_stored":N,"duration_s":X}} */
#pragma once

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/timeutil.h"

#define SNAPSHOT_MAX_JSON (16u << 20)
#define SNAPSHOT_MAX_TREE_BLOBS 100000u

struct snapshot_summary {
	uint64_t files_new, files_changed, files_unchanged, dirs, errors;
	uint64_t bytes_processed, bytes_added, bytes_stored;
	double duration_s;
};

struct snapshot {
	uint8_t id[32]; /* the object's name, set when loaded or saved */
	usec_t time;
	char *host, *job;
	char **paths, **tags; /* NULL-terminated */
	bool has_parent;
	uint8_t parent[32];
	uint8_t (*tree)[32];
	size_t ntree;
	struct snapshot_summary summary;
};

void snapshot_free(struct snapshot *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct snapshot *, snapshot_free)
int snapshot_encode(const struct snapshot *s, char **ret, size_t *ret_len);
int snapshot_decode(const uint8_t *data, size_t len, struct snapshot **ret);
bool snapshot_has_tag(const struct snapshot *s, const char *tag);
/* A snapshot as `bcdr snapshots --json` lists it: its ID, time, host, job,
 * paths, tags, parent and summary (new reference). */
json_t *snapshot_list_json(const struct snapshot *s);
/* The summary as the snapshot object stores it (new reference). */
json_t *snapshot_summary_json(const struct snapshot_summary *sum);
