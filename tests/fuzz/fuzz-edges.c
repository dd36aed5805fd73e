/* The edge-list parser (bcdr model graph --edges) against arbitrary bytes:
 * an error or a list, never a crash, a leak or a read out of bounds; and
 * a parsed list must be a valid graph input (every edge names a node). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "model/depgraph.h"
#include "model/edges.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct edge_list *e = NULL;
	char *error = NULL;

	if (edges_parse("fuzz.csv", (const char *)data, size, &e, &error) >= 0) {
		struct depgraph_input in = {
			.names = (const char *const *)e->names, .n = e->n_names,
			.edges = e->edges, .n_edges = e->n_edges, .service = 0,
		};
		struct depgraph_options o = { .trials = 1, .steps = 2, .seed = 1 };
		struct depgraph_report *r = NULL;

		for (size_t i = 0; i < 2 * e->n_edges; i++)
			if (e->edges[i] >= e->n_names)
				abort();
		if (e->n_names <= 64 && depgraph_analyse(&in, &o, &r) >= 0)
			depgraph_report_free(r);
		edge_list_free(e);
	} else if (!error) {
		abort(); /* every failure says why */
	}
	free(error);
	return 0;
}
