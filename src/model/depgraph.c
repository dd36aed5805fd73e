#include "model/depgraph.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <igraph.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "lib/cleanup.h"
#include "lib/err.h"

void depgraph_plan_input_release(struct depgraph_plan_input *p)
{
	free(p->names);
	free(p->edges);
	free(p->replicas);
	free(p->needs);
	memset(p, 0, sizeof(*p));
}

int depgraph_input_from_plan(const struct topology_plan *t, struct depgraph_plan_input *ret)
{
	struct depgraph_plan_input p = { 0 };
	size_t n = t->n_components + 1, m = 0, cap = 0;

	for (size_t i = 0; t->requires[i]; i++)
		cap++;
	for (size_t i = 0; i < t->n_components; i++)
		for (size_t j = 0; t->components[i].depends_on && t->components[i].depends_on[j]; j++)
			cap++;
	p.names = calloc(n, sizeof(char *));
	p.edges = calloc(2 * cap + 2, sizeof(uint32_t));
	p.replicas = calloc(n, sizeof(int));
	p.needs = calloc(n, sizeof(int));
	if (!p.names || !p.edges || !p.replicas || !p.needs) {
		depgraph_plan_input_release(&p);
		return -ENOMEM;
	}
	p.names[0] = t->service;
	p.replicas[0] = p.needs[0] = 1;
	for (size_t i = 0; i < t->n_components; i++) {
		p.names[i + 1] = t->components[i].name;
		p.replicas[i + 1] = (int)t->components[i].replicas;
		p.needs[i + 1] = (int)t->components[i].needs;
	}
	for (size_t i = 0; t->requires[i]; i++) {
		p.edges[2 * m] = 0;
		p.edges[2 * m + 1] = (uint32_t)topology_find(t, t->requires[i]) + 1;
		m++;
	}
	for (size_t i = 0; i < t->n_components; i++)
		for (size_t j = 0; t->components[i].depends_on && t->components[i].depends_on[j]; j++) {
			p.edges[2 * m] = (uint32_t)i + 1;
			p.edges[2 * m + 1] = (uint32_t)topology_find(t, t->components[i].depends_on[j]) + 1;
			m++;
		}
	p.in = (struct depgraph_input){
		.names = p.names, .n = n, .edges = p.edges, .n_edges = m, .service = 0,
		.replicas = p.replicas, .needs = p.needs,
	};
	*ret = p;
	return 0;
}

void depgraph_report_free(struct depgraph_report *r)
{
	if (!r)
		return;
	free(r->node);
	free(r->by_betweenness);
	free(r->by_impact);
	free(r->out_degrees);
	free(r->in_degrees);
	free(r->fraction);
	free(r->random_mean);
	free(r->random_sd);
	free(r->targeted);
	free(r);
}


static int igraph_errno(igraph_error_t e)
{
	return e == IGRAPH_ENOMEM ? -ENOMEM : -EINVAL;
}

#define TRY(expr)                                  \
	do {                                       \
		igraph_error_t e_ = (expr);        \
		if (e_ != IGRAPH_SUCCESS)          \
			return igraph_errno(e_);   \
	} while (0)

struct graph {
	igraph_t g;
	bool has_g;
	igraph_adjlist_t adj;
	bool has_adj;
};

static void graph_release(struct graph *gr)
{
	if (gr->has_adj)
		igraph_adjlist_destroy(&gr->adj);
	if (gr->has_g)
		igraph_destroy(&gr->g);
}

/* Counts (sorted by degree) of the nonzero entries of deg. */
static int degree_counts(const igraph_vector_int_t *deg, struct degree_count **ret, size_t *ret_n,
			 int64_t *ret_max)
{
	igraph_integer_t n = igraph_vector_int_size(deg), max = 0;
	_cleanup_free_ size_t *count = NULL;
	struct degree_count *v;
	size_t k = 0;

	for (igraph_integer_t i = 0; i < n; i++)
		if (VECTOR(*deg)[i] > max)
			max = VECTOR(*deg)[i];
	count = calloc((size_t)max + 1, sizeof(size_t));
	if (!count)
		return -ENOMEM;
	for (igraph_integer_t i = 0; i < n; i++)
		count[VECTOR(*deg)[i]]++;
	for (igraph_integer_t d = 0; d <= max; d++)
		k += count[d] > 0;
	v = calloc(k + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	k = 0;
	for (igraph_integer_t d = 0; d <= max; d++)
		if (count[d])
			v[k++] = (struct degree_count){ d, count[d] };
	*ret = v;
	*ret_n = k;
	*ret_max = max;
	return 0;
}

/* Requirements still reachable from the service, avoiding removed ones. */
static size_t reach(const struct graph *gr, size_t service, const unsigned char *removed,
		    unsigned char *seen, size_t *queue, size_t n)
{
	size_t head = 0, tail = 0, count = 0;

	memset(seen, 0, n);
	seen[service] = 1;
	queue[tail++] = service;
	while (head < tail) {
		igraph_vector_int_t *nb = igraph_adjlist_get(&gr->adj, queue[head++]);
		igraph_integer_t k = igraph_vector_int_size(nb);

		for (igraph_integer_t j = 0; j < k; j++) {
			size_t w = (size_t)VECTOR(*nb)[j];

			if (seen[w] || removed[w])
				continue;
			seen[w] = 1;
			queue[tail++] = w;
			count++;
		}
	}
	return count;
}

static int cmp_betweenness(const void *a, const void *b, void *nodes)
{
	const struct depgraph_node *x = (const struct depgraph_node *)nodes + *(const size_t *)a;
	const struct depgraph_node *y = (const struct depgraph_node *)nodes + *(const size_t *)b;

	if (x->betweenness != y->betweenness)
		return x->betweenness < y->betweenness ? 1 : -1;
	if (x->out_degree + x->in_degree != y->out_degree + y->in_degree)
		return x->out_degree + x->in_degree < y->out_degree + y->in_degree ? 1 : -1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int cmp_impact(const void *a, const void *b, void *nodes)
{
	const struct depgraph_node *x = (const struct depgraph_node *)nodes + *(const size_t *)a;
	const struct depgraph_node *y = (const struct depgraph_node *)nodes + *(const size_t *)b;

	if (x->dominated != y->dominated)
		return x->dominated < y->dominated ? 1 : -1;
	if (x->spof != y->spof)
		return x->spof ? -1 : 1;
	return cmp_betweenness(a, b, nodes);
}

static int dominators(struct graph *gr, const struct depgraph_input *in, struct depgraph_report *r)
{
	igraph_vector_int_t dom;
	size_t n = in->n;
	_cleanup_free_ size_t *first = calloc(n + 1, sizeof(size_t));
	_cleanup_free_ size_t *child = calloc(n + 1, sizeof(size_t));
	_cleanup_free_ size_t *order = calloc(n + 1, sizeof(size_t));
	_cleanup_free_ size_t *size = calloc(n + 1, sizeof(size_t));
	size_t head = 0, tail = 0;
	igraph_error_t e;

	if (!first || !child || !order || !size)
		return -ENOMEM;
	TRY(igraph_vector_int_init(&dom, 0));
	e = igraph_dominator_tree(&gr->g, (igraph_integer_t)in->service, &dom, NULL, NULL,
				  IGRAPH_OUT);
	if (e != IGRAPH_SUCCESS) {
		igraph_vector_int_destroy(&dom);
		return igraph_errno(e);
	}
	/* Children of each node in the dominator tree, as CSR. */
	for (size_t v = 0; v < n; v++) {
		r->node[v].idom = VECTOR(dom)[v];
		r->node[v].reachable = v != in->service && VECTOR(dom)[v] >= 0;
		if (VECTOR(dom)[v] >= 0)
			first[VECTOR(dom)[v] + 1]++;
	}
	igraph_vector_int_destroy(&dom);
	for (size_t v = 0; v < n; v++)
		first[v + 1] += first[v];
	for (size_t v = 0; v < n; v++)
		if (r->node[v].idom >= 0) {
			size_t p = (size_t)r->node[v].idom;

			child[first[p] + size[p]++] = v;
		}
	memset(size, 0, (n + 1) * sizeof(size_t));
	order[tail++] = in->service;
	while (head < tail) {
		size_t v = order[head++];

		for (size_t k = first[v]; k < first[v + 1]; k++)
			order[tail++] = child[k];
	}
	/* Subtree sizes, leaves first. */
	for (size_t i = tail; i-- > 0;) {
		size_t v = order[i];

		size[v] += 1;
		if (r->node[v].idom >= 0)
			size[r->node[v].idom] += size[v];
	}
	r->requirements = tail - 1;
	for (size_t v = 0; v < n; v++)
		r->node[v].dominated = size[v] ? size[v] - 1 : 0;
	return 0;
}

static int centrality(struct graph *gr, const struct depgraph_input *in,
		      const struct depgraph_options *o, struct depgraph_report *r)
{
	igraph_vector_int_t deg, arts;
	igraph_vector_t btw;
	igraph_error_t e;
	int rc = 0;

	TRY(igraph_vector_int_init(&deg, 0));
	e = igraph_degree(&gr->g, &deg, igraph_vss_all(), IGRAPH_OUT, true);
	if (e == IGRAPH_SUCCESS) {
		for (size_t v = 0; v < in->n; v++)
			r->node[v].out_degree = VECTOR(deg)[v];
		rc = degree_counts(&deg, &r->out_degrees, &r->n_out_degrees, &r->max_out);
		/* A power law is fitted to the out-degrees of nodes that have some. */
		if (rc >= 0 && in->n >= 100) {
			igraph_vector_t x;
			igraph_plfit_result_t fit;
			size_t k = 0;

			if (igraph_vector_init(&x, 0) == IGRAPH_SUCCESS) {
				for (size_t v = 0; v < in->n; v++)
					if (VECTOR(deg)[v] > 0 &&
					    igraph_vector_push_back(&x, (igraph_real_t)VECTOR(deg)[v]) ==
						    IGRAPH_SUCCESS)
						k++;
				if (k >= 50 && igraph_power_law_fit(&x, &fit, -1, false) ==
						       IGRAPH_SUCCESS) {
					r->power_law = true;
					r->power_law_alpha = fit.alpha;
					r->power_law_xmin = fit.xmin;
				}
				igraph_vector_destroy(&x);
			}
		}
	}
	if (e == IGRAPH_SUCCESS && rc >= 0)
		e = igraph_degree(&gr->g, &deg, igraph_vss_all(), IGRAPH_IN, true);
	if (e == IGRAPH_SUCCESS && rc >= 0) {
		for (size_t v = 0; v < in->n; v++)
			r->node[v].in_degree = VECTOR(deg)[v];
		rc = degree_counts(&deg, &r->in_degrees, &r->n_in_degrees, &r->max_in);
	}
	igraph_vector_int_destroy(&deg);
	if (e != IGRAPH_SUCCESS)
		return igraph_errno(e);
	if (rc < 0)
		return rc;
	r->mean_degree = in->n ? (double)r->edges / (double)in->n : 0;

	TRY(igraph_vector_int_init(&arts, 0));
	e = igraph_articulation_points(&gr->g, &arts);
	if (e == IGRAPH_SUCCESS)
		for (igraph_integer_t i = 0; i < igraph_vector_int_size(&arts); i++)
			r->node[VECTOR(arts)[i]].articulation = true;
	igraph_vector_int_destroy(&arts);
	if (e != IGRAPH_SUCCESS)
		return igraph_errno(e);

	TRY(igraph_vector_init(&btw, 0));
	r->betweenness_exact = !o->exact_betweenness_max || in->n <= o->exact_betweenness_max;
	r->betweenness_cutoff = r->betweenness_exact ? -1 : o->betweenness_cutoff;
	e = igraph_betweenness_cutoff(&gr->g, &btw, igraph_vss_all(), IGRAPH_DIRECTED, NULL,
				      r->betweenness_cutoff);
	if (e == IGRAPH_SUCCESS)
		for (size_t v = 0; v < in->n; v++)
			r->node[v].betweenness = VECTOR(btw)[v];
	igraph_vector_destroy(&btw);
	return e == IGRAPH_SUCCESS ? 0 : igraph_errno(e);
}

static int robustness(struct graph *gr, const struct depgraph_input *in,
		      const struct depgraph_options *o, struct depgraph_report *r)
{
	size_t n = in->n, R = r->requirements, steps = o->steps ? o->steps : 20;
	unsigned trials = o->trials ? o->trials : 20;
	_cleanup_free_ unsigned char *removed = calloc(n, 1);
	_cleanup_free_ unsigned char *seen = calloc(n, 1);
	_cleanup_free_ size_t *queue = calloc(n, sizeof(size_t));
	_cleanup_free_ size_t *order = calloc(R + 1, sizeof(size_t));
	_cleanup_free_ double *sumsq = calloc(steps + 1, sizeof(double));
	gsl_rng *rng;

	r->steps = steps + 1;
	r->trials = trials;
	r->fraction = calloc(steps + 1, sizeof(double));
	r->random_mean = calloc(steps + 1, sizeof(double));
	r->random_sd = calloc(steps + 1, sizeof(double));
	r->targeted = calloc(steps + 1, sizeof(double));
	if (!removed || !seen || !queue || !order || !sumsq || !r->fraction || !r->random_mean ||
	    !r->random_sd || !r->targeted)
		return -ENOMEM;
	for (size_t i = 0; i <= steps; i++)
		r->fraction[i] = (double)i / (double)steps;
	if (R == 0) {
		for (size_t i = 0; i <= steps; i++)
			r->random_mean[i] = r->targeted[i] = 1;
		return 0;
	}
	/* Removes order[0..k) step by step and measures what is left. */
#define CURVE(out_fn)                                                          \
	do {                                                                   \
		size_t done = 0;                                               \
		memset(removed, 0, n);                                         \
		for (size_t i = 0; i <= steps; i++) {                          \
			size_t k = (size_t)llround(r->fraction[i] * (double)R); \
			while (done < k)                                       \
				removed[order[done++]] = 1;                    \
			double share = (double)reach(gr, in->service, removed, seen, queue, n) / \
				       (double)R;                              \
			out_fn;                                                \
		}                                                              \
	} while (0)

	/* Targeted: the most between first. */
	memcpy(order, r->by_betweenness, R * sizeof(size_t));
	CURVE(r->targeted[i] = share);
	rng = gsl_rng_alloc(gsl_rng_mt19937);
	if (!rng)
		return -ENOMEM;
	gsl_rng_set(rng, (unsigned long)o->seed);
	for (unsigned t = 0; t < trials; t++) {
		gsl_ran_shuffle(rng, order, R, sizeof(size_t));
		CURVE({
			r->random_mean[i] += share;
			sumsq[i] += share * share;
		});
	}
#undef CURVE
	gsl_rng_free(rng);
	for (size_t i = 0; i <= steps; i++) {
		double m = r->random_mean[i] / trials;

		r->random_mean[i] = m;
		r->random_sd[i] = trials > 1 ?
			sqrt(fmax(0, (sumsq[i] - trials * m * m) / (trials - 1))) : 0;
	}
	return 0;
}

static double seconds_since(struct timespec *t)
{
	struct timespec now;
	double d;

	clock_gettime(CLOCK_MONOTONIC, &now);
	d = (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
	*t = now;
	return d;
}

int depgraph_analyse(const struct depgraph_input *in, const struct depgraph_options *o,
		     struct depgraph_report **ret)
{
	_cleanup_(depgraph_report_freep) struct depgraph_report *r = calloc(1, sizeof(*r));
	struct graph gr = { 0 };
	igraph_vector_int_t ev;
	igraph_bool_t dag;
	igraph_integer_t before;
	struct timespec t0, t1, lap;
	size_t k = 0;
	int rc;

	if (!r)
		return -ENOMEM;
	if (in->n == 0 || in->service >= in->n || in->n > EDGES_MAX_NODES)
		return -EINVAL;
	for (size_t i = 0; i < 2 * in->n_edges; i++)
		if (in->edges[i] >= in->n)
			return -EINVAL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	lap = t0;
	/* igraph aborts on errors by default; they come back as codes. */
	igraph_set_error_handler(igraph_error_handler_ignore);
	igraph_set_warning_handler(igraph_warning_handler_ignore);
	r->node = calloc(in->n, sizeof(*r->node));
	r->by_betweenness = calloc(in->n, sizeof(size_t));
	r->by_impact = calloc(in->n, sizeof(size_t));
	if (!r->node || !r->by_betweenness || !r->by_impact)
		return -ENOMEM;
	r->nodes = in->n;
	TRY(igraph_vector_int_init(&ev, (igraph_integer_t)(2 * in->n_edges)));
	for (size_t i = 0; i < 2 * in->n_edges; i++)
		VECTOR(ev)[i] = in->edges[i];
	if (igraph_create(&gr.g, &ev, (igraph_integer_t)in->n, IGRAPH_DIRECTED) != IGRAPH_SUCCESS) {
		igraph_vector_int_destroy(&ev);
		return -ENOMEM;
	}
	igraph_vector_int_destroy(&ev);
	gr.has_g = true;
	rc = igraph_is_dag(&gr.g, &dag) == IGRAPH_SUCCESS ? 0 : -ENOMEM;
	r->acyclic = dag;
	/* Self loops and repeated edges say nothing about reachability. */
	for (size_t i = 0; rc >= 0 && i < in->n_edges; i++)
		r->loops_dropped += in->edges[2 * i] == in->edges[2 * i + 1];
	before = igraph_ecount(&gr.g);
	if (rc >= 0 && igraph_simplify(&gr.g, true, true, NULL) != IGRAPH_SUCCESS)
		rc = -ENOMEM;
	if (rc >= 0) {
		r->edges = (size_t)igraph_ecount(&gr.g);
		r->duplicates_dropped = (size_t)before - r->edges - r->loops_dropped;
		if (igraph_adjlist_init(&gr.g, &gr.adj, IGRAPH_OUT, IGRAPH_NO_LOOPS,
					IGRAPH_NO_MULTIPLE) != IGRAPH_SUCCESS)
			rc = -ENOMEM;
		else
			gr.has_adj = true;
	}
	r->build_s = seconds_since(&lap);
	if (rc >= 0)
		rc = dominators(&gr, in, r);
	r->dominators_s = seconds_since(&lap);
	if (rc >= 0)
		rc = centrality(&gr, in, o, r);
	r->centrality_s = seconds_since(&lap);
	if (rc < 0) {
		graph_release(&gr);
		return rc;
	}
	for (size_t v = 0; v < in->n; v++) {
		struct depgraph_node *nd = &r->node[v];

		nd->spare = in->replicas ? in->replicas[v] - in->needs[v] : -1;
		/* With replica counts (a plan), every requirement without a spare
		 * takes the service down alone; without them (an edge list), the
		 * nodes whose loss cuts the service off from others. */
		nd->spof = nd->reachable && (in->replicas ? nd->spare == 0 : nd->dominated > 0);
		if (nd->reachable)
			r->by_betweenness[k++] = v;
	}
	memcpy(r->by_impact, r->by_betweenness, k * sizeof(size_t));
	qsort_r(r->by_betweenness, k, sizeof(size_t), cmp_betweenness, r->node);
	qsort_r(r->by_impact, k, sizeof(size_t), cmp_impact, r->node);
	rc = robustness(&gr, in, o, r);
	r->robustness_s = seconds_since(&lap);
	graph_release(&gr);
	if (rc < 0)
		return rc;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->elapsed_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	*ret = TAKE_PTR(r);
	return 0;
}
