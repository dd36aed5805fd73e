/* The dashboard's files (web/ and Chart.js), embedded in the binary at build
 * time by scripts/embed-assets, so the agent serves them with nothing installed
 * beside it and the page works offline. */
#pragma once

#include <stddef.h>

/* One embedded file; the generated table is sorted by path (strcmp order). */
struct dashboard_file {
	const char *path;         /* "/index.html" */
	const char *content_type; /* "text/html; charset=utf-8" */
	const unsigned char *data;
	size_t len;
};

/* Generated (build/src/agent/dashboard-assets.c). */
extern const struct dashboard_file dashboard_files[];
extern const size_t dashboard_files_count;

/* Finds the file the agent serves for a GET of path ("/" is "/index.html"; a
 * query string or fragment is ignored). data, len and content_type point into
 * static storage, written only on success. Returns 0, -EINVAL for a path that
 * does not start with '/' or is longer than 256 bytes, -ENOENT when no file
 * has that path. */
int dashboard_asset(const char *path, const void **data, size_t *len,
		    const char **content_type);
