/* An edge list for the dependency graph of a large estate: CSV lines
 * "from,to" (from needs to). A header line (from,to or source,target),
 * blank lines and # comments are skipped; fields may be "quoted" with ""
 * for a quote; CRLF is accepted. Bounded: the file, the edges, the nodes
 * and each name have hard maximums. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"

#define EDGES_MAX_BYTES (256u << 20)
#define EDGES_MAX_EDGES 20000000u
#define EDGES_MAX_NODES 10000000u
#define EDGES_MAX_NAME 1024u

struct edge_list {
	char **names;      /* node names, in order of first appearance */
	size_t n_names;
	uint32_t *edges;   /* 2 * n_edges: from, to (indexes into names) */
	size_t n_edges;
};

/* Parses text (len bytes, need not be NUL-terminated); file names it in
 * errors. On failure *ret_error (free() it) says "file:line:col: message". */
int edges_parse(const char *file, const char *text, size_t len, struct edge_list **ret,
		char **ret_error);
int edges_load(const char *path, struct edge_list **ret, char **ret_error);
void edge_list_free(struct edge_list *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct edge_list *, edge_list_free)

/* Index of a name, or -1 (linear: for lookups of one name). */
int64_t edge_list_find(const struct edge_list *e, const char *name);
