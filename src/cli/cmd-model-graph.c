/* bcdr model graph: the dependency graph of the plan or of an edge list:
 * single points of failure, dominators, cascades. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/model-cli.h"
#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "model/depgraph.h"
#include "model/edges.h"
#include "plan/plan.h"


static void dot_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

static void print_graph_dot(const struct depgraph_input *in, const struct depgraph_report *r)
{
	printf("// bcdr model graph: red = single point of failure, bold = its loss cuts the\n"
	       "// service off from others, dashed = not needed by the service\n");
	printf("digraph ");
	dot_quoted(stdout, in->names[in->service]);
	printf(" {\n  rankdir=TB;\n  node [shape=box, style=rounded, fontname=\"sans\"];\n");
	for (size_t v = 0; v < in->n; v++) {
		const struct depgraph_node *nd = &r->node[v];

		printf("  n%zu [label=", v);
		if (in->replicas && v != in->service) {
			_cleanup_free_ char *label = NULL;

			if (asprintf(&label, "%s\n%d of %d", in->names[v], in->needs[v],
				     in->replicas[v]) < 0)
				label = NULL;
			dot_quoted(stdout, label ? label : in->names[v]);
		} else {
			dot_quoted(stdout, in->names[v]);
		}
		if (v == in->service)
			printf(", shape=doubleoctagon");
		else if (!nd->reachable)
			printf(", style=\"rounded,dashed\", color=gray50");
		else if (nd->spof)
			printf(", style=\"rounded,filled\", fillcolor=\"#ffd0d0\", color=red");
		if (nd->reachable && nd->dominated > 0)
			printf(", penwidth=3");
		printf("];\n");
	}
	for (size_t i = 0; i < in->n_edges; i++)
		printf("  n%u -> n%u;\n", in->edges[2 * i], in->edges[2 * i + 1]);
	printf("}\n");
}

static json_t *curve_json(const double *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_real(v[i]));
	return a;
}

static json_t *degrees_json(const struct degree_count *d, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *pair = json_array();

		json_array_append_new(pair, json_integer(d[i].degree));
		json_array_append_new(pair, json_integer((json_int_t)d[i].nodes));
		json_array_append_new(a, pair);
	}
	return a;
}

static void print_graph_json(const struct depgraph_input *in, const struct depgraph_report *r,
			     const char *cycle)
{
	_cleanup_json_ json_t *root = json_object();
	json_t *deg = json_object(), *spofs = json_array(), *arts = json_array();
	json_t *casc = json_array(), *btw = json_array(), *rob = json_object(),
	       *nodes = json_array();
	size_t R = r->requirements;

	json_set_str(root, "service", in->names[in->service]);
	json_set_int(root, "nodes", (long long)r->nodes);
	json_set_int(root, "edges", (long long)r->edges);
	json_set_int(root, "requirements", (long long)R);
	json_set_bool(root, "acyclic", r->acyclic);
	json_set_str(root, "cycle", cycle);
	json_set_int(root, "loops_dropped", (long long)r->loops_dropped);
	json_set_int(root, "duplicates_dropped", (long long)r->duplicates_dropped);
	json_set_real(deg, "mean", r->mean_degree);
	json_set_int(deg, "max_in", r->max_in);
	json_set_int(deg, "max_out", r->max_out);
	json_object_set_new(deg, "out", degrees_json(r->out_degrees, r->n_out_degrees));
	json_object_set_new(deg, "in", degrees_json(r->in_degrees, r->n_in_degrees));
	if (r->power_law) {
		json_t *pl = json_object();

		json_set_real(pl, "alpha", r->power_law_alpha);
		json_set_real(pl, "xmin", r->power_law_xmin);
		json_object_set_new(deg, "power_law", pl);
	} else {
		json_object_set_new(deg, "power_law", json_null());
	}
	json_object_set_new(root, "degree", deg);
	for (size_t i = 0; i < R; i++) {
		size_t v = r->by_impact[i];
		json_t *c = json_object();

		if (r->node[v].spof)
			json_array_append_new(spofs, json_string(in->names[v]));
		if (r->node[v].articulation)
			json_array_append_new(arts, json_string(in->names[v]));
		json_set_str(c, "name", in->names[v]);
		json_set_int(c, "requirements_lost", (long long)r->node[v].dominated + 1);
		json_set_real(c, "share_left", (double)(R - 1 - r->node[v].dominated) / (double)R);
		json_array_append_new(casc, c);
	}
	json_object_set_new(root, "spofs", spofs);
	json_object_set_new(root, "articulation_points", arts);
	json_object_set_new(root, "cascades", casc);
	for (size_t i = 0; i < R; i++) {
		json_t *b = json_object();

		json_set_str(b, "name", in->names[r->by_betweenness[i]]);
		json_set_real(b, "betweenness", r->node[r->by_betweenness[i]].betweenness);
		json_array_append_new(btw, b);
	}
	json_object_set_new(root, "betweenness", btw);
	json_set_bool(root, "betweenness_exact", r->betweenness_exact);
	json_object_set_new(rob, "fraction_removed", curve_json(r->fraction, r->steps));
	json_object_set_new(rob, "random_mean", curve_json(r->random_mean, r->steps));
	json_object_set_new(rob, "random_sd", curve_json(r->random_sd, r->steps));
	json_object_set_new(rob, "targeted", curve_json(r->targeted, r->steps));
	json_set_int(rob, "trials", r->trials);
	json_object_set_new(root, "robustness", rob);
	for (size_t v = 0; v < r->nodes; v++) {
		const struct depgraph_node *nd = &r->node[v];
		json_t *j = json_object();

		json_set_str(j, "name", in->names[v]);
		json_set_bool(j, "requirement", nd->reachable);
		json_set_str(j, "idom", nd->idom >= 0 ? in->names[nd->idom] : NULL);
		json_set_int(j, "dominated", (long long)nd->dominated);
		json_set_bool(j, "articulation_point", nd->articulation);
		json_set_bool(j, "spof", nd->spof);
		if (nd->spare >= 0)
			json_set_int(j, "spare_replicas", nd->spare);
		json_set_real(j, "betweenness", nd->betweenness);
		json_set_int(j, "in_degree", nd->in_degree);
		json_set_int(j, "out_degree", nd->out_degree);
		json_array_append_new(nodes, j);
	}
	json_object_set_new(root, "node_detail", nodes);
	json_set_real(root, "elapsed_s", r->elapsed_s);
	{
		json_t *tj = json_object();

		json_set_real(tj, "build_s", r->build_s);
		json_set_real(tj, "dominators_s", r->dominators_s);
		json_set_real(tj, "centrality_s", r->centrality_s);
		json_set_real(tj, "robustness_s", r->robustness_s);
		json_object_set_new(root, "timings", tj);
	}
	json_print(stdout, root);
}

static void print_graph_text(const struct depgraph_input *in, const struct depgraph_report *r,
			     const char *cycle, size_t top)
{
	size_t R = r->requirements, shown = 0;

	printf("dependency graph of %s: %zu nodes, %zu edges, %zu requirements reachable from "
	       "the service (%.2fs)\n", in->names[in->service], r->nodes, r->edges, R,
	       r->elapsed_s);
	if (cycle)
		printf("  cycle: %s (the availability model refuses it)\n", cycle);
	else if (!r->acyclic)
		printf("  the graph has cycles\n");
	if (r->loops_dropped || r->duplicates_dropped)
		printf("  ignored %zu self loops and %zu repeated edges\n", r->loops_dropped,
		       r->duplicates_dropped);
	printf("  degree: mean %.2f, max out %" PRId64 ", max in %" PRId64, r->mean_degree,
	       r->max_out, r->max_in);
	if (r->power_law)
		printf("; out-degrees fit a power law, alpha %.2f from %.0f", r->power_law_alpha,
		       r->power_law_xmin);
	printf("\n  out-degree distribution (degree:nodes):");
	for (size_t i = 0; i < r->n_out_degrees && i < 12; i++)
		printf(" %" PRId64 ":%zu", r->out_degrees[i].degree, r->out_degrees[i].nodes);
	printf("%s\n", r->n_out_degrees > 12 ? " ..." : "");

	printf("\nsingle points of failure (%s):\n",
	       in->replicas ? "one failure takes the service down"
			    : "their loss cuts the service off from others");
	for (size_t i = 0; i < R; i++) {
		size_t v = r->by_impact[i];

		if (!r->node[v].spof)
			continue;
		if (shown++ >= top) {
			printf("  ...\n");
			break;
		}
		printf("  %-24s cuts off %zu of %zu requirements%s\n", in->names[v],
		       r->node[v].dominated + 1, R,
		       r->node[v].articulation ? ", articulation point" : "");
	}
	if (!shown)
		printf("  none\n");
	printf("\ncascades: requirements left when one node is lost (worst first):\n");
	for (size_t i = 0; i < R && i < top; i++) {
		size_t v = r->by_impact[i];
		char spare[32] = "";

		if (r->node[v].spare > 0)
			snprintf(spare, sizeof(spare), " (%d spare)", r->node[v].spare);
		printf("  %-24s %6.1f%% left%s\n", in->names[v],
		       100.0 * (double)(R - 1 - r->node[v].dominated) / (double)R, spare);
	}
	printf("\nbetweenness (paths between others through it)%s:\n",
	       r->betweenness_exact ? "" : ", paths of bounded length");
	for (size_t i = 0; i < R && i < top; i++)
		printf("  %2zu. %-24s %.6g\n", i + 1, in->names[r->by_betweenness[i]],
		       r->node[r->by_betweenness[i]].betweenness);
	printf("\nrobustness: requirements still reachable after removing a share of them\n");
	printf("  %-9s %-22s %s\n", "removed", "random (mean +/- sd)", "targeted (betweenness)");
	for (size_t i = 0; i < r->steps; i++)
		printf("  %5.0f%%    %6.1f%% +/- %-10.1f %6.1f%%\n", 100 * r->fraction[i],
		       100 * r->random_mean[i], 100 * r->random_sd[i], 100 * r->targeted[i]);
}

static int run_graph(struct cli *cli, int argc, char **argv)
{
	struct depgraph_options o = { .trials = 20, .steps = 20, .seed = 1,
				      .exact_betweenness_max = 0, .betweenness_cutoff = -1 };
	struct depgraph_plan_input pin = { 0 };
	struct depgraph_input in;
	_cleanup_(edge_list_freep) struct edge_list *edges = NULL;
	_cleanup_(depgraph_report_freep) struct depgraph_report *rep = NULL;
	const char *edges_path = NULL, *service = NULL, *cycle = NULL;
	bool dot = false;
	int code, r;

	int64_t trials = o.trials, seed = (int64_t)o.seed;
	const struct cli_option options[] = {
		{ CLI_COLUMN(21) },
		{ CLI_STRING("edges", 0, &edges_path, "FILE",
			     "a CSV edge list, one 'from,to' a line (from needs to)") },
		{ CLI_STRING("service", 0, &service, "NODE",
			     "the root in the edge list (default: its first node)") },
		{ CLI_FLAG("dot", 0, &dot, "Graphviz output, single points of failure in red") },
		{ CLI_INT("trials", 0, &trials, "N", 1, 10000,
			  "random-failure runs averaged (default 20)") },
		{ CLI_INT("seed", 0, &seed, "S", 0, UINT32_MAX, "random seed (default 1)") },
		{}
	};

	code = cli_parse(cli, argc, argv, options, CLI_PARSE_NO_OPERANDS);
	if (code != CLI_CONTINUE)
		return code;
	o.trials = (unsigned)trials;
	o.seed = (uint64_t)seed;
	if (dot && cli->json)
		return cli_usage_error(cli, "--dot and --json are two outputs: choose one");
	if (edges_path) {
		_cleanup_free_ char *error = NULL;
		int64_t root = 0;

		r = edges_load(edges_path, &edges, &error);
		if (r < 0) {
			log_error("%s", error ? error : err_str(r));
			return EXIT_FAIL;
		}
		if (service && (root = edge_list_find(edges, service)) < 0) {
			log_error("--service '%s' is not a node of '%s'", service, edges_path);
			return EXIT_FAIL;
		}
		in = (struct depgraph_input){
			.names = (const char *const *)edges->names, .n = edges->n_names,
			.edges = edges->edges, .n_edges = edges->n_edges, .service = (size_t)root,
		};
	} else {
		const struct topology_plan *t;

		if (service)
			return cli_usage_error(cli, "--service goes with --edges (a plan names its "
					       "service)");
		code = model_cli_load_topology(cli, false, &t);
		if (code != 0)
			return code;
		r = depgraph_input_from_plan(t, &pin);
		if (r < 0) {
			log_error_errno(r, "cannot build the graph");
			return EXIT_FAIL;
		}
		in = pin.in;
		cycle = t->cycle;
	}
	r = depgraph_analyse(&in, &o, &rep);
	if (r < 0) {
		depgraph_plan_input_release(&pin);
		log_error_errno(r, "cannot analyse the graph");
		return EXIT_FAIL;
	}
	if (dot)
		print_graph_dot(&in, rep);
	else if (cli->json)
		print_graph_json(&in, rep, cycle);
	else
		print_graph_text(&in, rep, cycle, 10);
	depgraph_plan_input_release(&pin);
	return EXIT_OK;
}

const struct command cmd_model_graph = {
	"graph", "dependency graph: single points of failure, cascades, robustness",
	"model graph [-c PLAN] [--edges FILE.csv [--service NODE]] [--dot | --json]\n"
	"            [--trials N] [--seed S]\n\n"
	"Analyses the dependency graph of the plan's topology (the service needs its\n"
	"requires, each component its depends_on), or of any edge list: nodes, edges,\n"
	"degree distribution, single points of failure, dominators from the service\n"
	"(what each node's loss cuts off), articulation points, betweenness, and\n"
	"cascades: the share of the service's requirements still reachable when one node\n"
	"is lost, and as a growing share is removed at random or most-between first.\n"
	"Cycles are shown, not refused. igraph does the graph work.\n",
	run_graph,
};
