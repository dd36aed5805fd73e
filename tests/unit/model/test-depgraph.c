/* The dependency graph: hand-worked small graphs, and igraph's dominators
 * against a brute force (remove each node, search again) on random ones. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <gsl/gsl_rng.h>

#include "model/depgraph.h"
#include "plan/plan.h"

static const char *const diamond_names[] = { "s", "a", "b", "c", "d" };
/* s needs a and b, both need c, c needs d. */
static const uint32_t diamond_edges[] = { 0, 1, 0, 2, 1, 3, 2, 3, 3, 4 };

static void test_diamond(void **state)
{
	(void)state;
	struct depgraph_input in = { diamond_names, 5, diamond_edges, 5, 0, NULL, NULL };
	struct depgraph_options o = { .trials = 5, .steps = 4, .seed = 1 };
	struct depgraph_report *r = NULL;

	assert_int_equal(depgraph_analyse(&in, &o, &r), 0);
	assert_int_equal(r->requirements, 4);
	assert_true(r->acyclic);
	assert_int_equal(r->node[0].idom, -1);
	assert_int_equal(r->node[3].idom, 0); /* two ways to c */
	assert_int_equal(r->node[4].idom, 3);
	assert_int_equal(r->node[3].dominated, 1);
	assert_int_equal(r->node[1].dominated, 0);
	/* Undirected, only c separates d from the rest. */
	assert_true(r->node[3].articulation);
	assert_false(r->node[1].articulation || r->node[2].articulation || r->node[4].articulation);
	/* Directed betweenness: c is on (s,d), (a,d), (b,d); a and b split
	 * (s,c) and (s,d) half each. */
	assert_true(fabs(r->node[3].betweenness - 3) < 1e-12);
	assert_true(fabs(r->node[1].betweenness - 1) < 1e-12);
	assert_true(fabs(r->node[2].betweenness - 1) < 1e-12);
	assert_int_equal(r->by_betweenness[0], 3);
	assert_int_equal(r->by_impact[0], 3);
	/* Without replica counts, a SPOF is a node cutting off others. */
	assert_true(r->node[3].spof);
	assert_false(r->node[1].spof || r->node[4].spof);
	/* Targeted: c goes first (25%): a and b are left of a, b, c, d. */
	assert_int_equal(r->steps, 5);
	assert_true(r->targeted[0] == 1 && fabs(r->targeted[1] - 0.5) < 1e-12);
	assert_true(r->targeted[4] == 0 && r->random_mean[0] == 1 && r->random_mean[4] == 0);
	assert_int_equal(r->max_out, 2);
	assert_int_equal(r->max_in, 2);
	depgraph_report_free(r);
}

static void test_cycles_and_duplicates(void **state)
{
	(void)state;
	static const uint32_t edges[] = { 0, 1, 1, 2, 2, 1, 1, 2, 2, 2, 3, 0 };
	struct depgraph_input in = { diamond_names, 4, edges, 6, 0, NULL, NULL };
	struct depgraph_options o = { .trials = 2, .steps = 2, .seed = 1 };
	struct depgraph_report *r = NULL;

	assert_int_equal(depgraph_analyse(&in, &o, &r), 0);
	assert_false(r->acyclic);
	assert_int_equal(r->loops_dropped, 1);
	assert_int_equal(r->duplicates_dropped, 1);
	assert_int_equal(r->edges, 4);
	assert_int_equal(r->requirements, 2); /* c (index 3) needs s but is not needed */
	assert_false(r->node[3].reachable);
	assert_int_equal(r->node[3].idom, -2);
	depgraph_report_free(r);
}

/* Nodes lost when v is removed, by searching again without it. */
static size_t brute_lost(size_t n, const uint32_t *edges, size_t m, size_t v)
{
	unsigned char *seen = calloc(n, 1), *seen_v = calloc(n, 1);
	size_t *queue = calloc(n, sizeof(size_t)), lost = 0;

	for (int pass = 0; pass < 2; pass++) {
		unsigned char *s = pass ? seen_v : seen;
		size_t head = 0, tail = 0;

		s[0] = 1;
		queue[tail++] = 0;
		while (head < tail) {
			size_t u = queue[head++];

			for (size_t e = 0; e < m; e++)
				if (edges[2 * e] == u && !s[edges[2 * e + 1]] &&
				    !(pass && edges[2 * e + 1] == v)) {
					s[edges[2 * e + 1]] = 1;
					queue[tail++] = edges[2 * e + 1];
				}
		}
	}
	for (size_t u = 0; u < n; u++)
		lost += u != v && seen[u] && !seen_v[u];
	free(seen);
	free(seen_v);
	free(queue);
	return lost;
}

static void test_dominators_against_brute_force(void **state)
{
	(void)state;
	gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
	char names[200][8];
	const char *name_ptrs[200];

	for (size_t i = 0; i < 200; i++) {
		snprintf(names[i], sizeof(names[i]), "n%zu", i);
		name_ptrs[i] = names[i];
	}
	for (unsigned trial = 0; trial < 10; trial++) {
		size_t n = 30 + 17 * trial, m = 0;
		uint32_t *edges = calloc(2 * 3 * n, sizeof(uint32_t));
		struct depgraph_input in;
		struct depgraph_options o = { .trials = 1, .steps = 1, .seed = trial };
		struct depgraph_report *r = NULL;

		gsl_rng_set(rng, trial + 1);
		for (size_t i = 0; i < 3 * n; i++) {
			edges[2 * m] = (uint32_t)gsl_rng_uniform_int(rng, n);
			edges[2 * m + 1] = (uint32_t)gsl_rng_uniform_int(rng, n);
			m++;
		}
		in = (struct depgraph_input){ name_ptrs, n, edges, m, 0, NULL, NULL };
		assert_int_equal(depgraph_analyse(&in, &o, &r), 0);
		for (size_t v = 1; v < n; v++)
			if (r->node[v].reachable)
				assert_int_equal(r->node[v].dominated, brute_lost(n, edges, m, v));
		depgraph_report_free(r);
		free(edges);
	}
	gsl_rng_free(rng);
}

static void test_from_plan(void **state)
{
	(void)state;
	static const char text[] =
		"topology:\n  service: shop\n  requires: [web]\n  components:\n"
		"    - { name: web, mtbf: 10h, mttr: 1h, replicas: 2, depends_on: [db] }\n"
		"    - { name: db, mtbf: 10h, mttr: 1h }\n"
		"    - { name: idle, mtbf: 10h, mttr: 1h, depends_on: [db] }\n";
	struct plan *plan = NULL;
	char *error = NULL;
	struct depgraph_plan_input p;
	struct depgraph_options o = { .trials = 3, .steps = 2, .seed = 1 };
	struct depgraph_report *r = NULL;

	assert_int_equal(plan_parse("g.yaml", text, strlen(text), &plan, &error), 0);
	assert_int_equal(depgraph_input_from_plan(plan->topology, &p), 0);
	assert_int_equal(p.in.n, 4);
	assert_int_equal(p.in.n_edges, 3);
	assert_int_equal(depgraph_analyse(&p.in, &o, &r), 0);
	/* With replicas: web has a spare, db does not; idle is not needed. */
	assert_false(r->node[1].spof);
	assert_int_equal(r->node[1].spare, 1);
	assert_true(r->node[2].spof);
	assert_false(r->node[3].reachable || r->node[3].spof);
	assert_int_equal(r->node[1].dominated, 1);
	depgraph_report_free(r);
	depgraph_plan_input_release(&p);
	plan_free(plan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diamond),
		cmocka_unit_test(test_cycles_and_duplicates),
		cmocka_unit_test(test_dominators_against_brute_force),
		cmocka_unit_test(test_from_plan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
