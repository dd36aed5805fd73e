#include "lb/algo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

uint64_t lb_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	/* FNV's low bits are weak: finish with splitmix64's mixer. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

void lb_algo_init(struct lb_algo *a, int algorithm, uint64_t seed)
{
	memset(a, 0, sizeof(*a));
	a->algorithm = algorithm;
	a->rng = lb_hash(&seed, sizeof(seed)) | 1;
}

void lb_algo_release(struct lb_algo *a)
{
	free(a->maglev);
	a->maglev = NULL;
}

static uint64_t next_random(struct lb_algo *a)
{
	uint64_t x = a->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	a->rng = x;
	return x;
}

int lb_algo_maglev_build(struct lb_algo *a, const char *const *names, const unsigned *idx,
			 const unsigned *weights, size_t n, uint64_t generation)
{
	const uint32_t m = LB_MAGLEV_SIZE;
	uint32_t offset[LB_MAX_BACKENDS], skip[LB_MAX_BACKENDS], next[LB_MAX_BACKENDS];
	uint64_t count[LB_MAX_BACKENDS];
	unsigned max_weight = 0;
	uint32_t filled = 0;

	if (n == 0 || n > LB_MAX_BACKENDS)
		return -EINVAL;
	if (!a->maglev && !(a->maglev = malloc(m * sizeof(uint16_t))))
		return -ENOMEM;
	for (uint32_t i = 0; i < m; i++)
		a->maglev[i] = UINT16_MAX;
	for (size_t i = 0; i < n; i++) {
		uint64_t h = lb_hash(names[i], strlen(names[i]));

		offset[i] = (uint32_t)(h % m);
		skip[i] = (uint32_t)((h >> 32) % (m - 1)) + 1;
		next[i] = 0;
		count[i] = 0;
		if (weights[i] > max_weight)
			max_weight = weights[i];
	}
	/* Weighted Maglev (Envoy's way): in round k a backend takes a slot only
	 * while its slots stay below k * weight / max_weight. */
	for (uint64_t round = 1; filled < m; round++) {
		for (size_t i = 0; i < n && filled < m; i++) {
			uint32_t slot;

			if (count[i] * max_weight > round * weights[i])
				continue;
			do {
				slot = (uint32_t)((offset[i] + (uint64_t)next[i] * skip[i]) % m);
				next[i]++;
			} while (a->maglev[slot] != UINT16_MAX);
			a->maglev[slot] = (uint16_t)idx[i];
			count[i]++;
			filled++;
		}
	}
	a->maglev_generation = generation;
	return 0;
}

/* Is (conns_a + 1) / weight_a below (conns_b + 1) / weight_b? */
static bool less_loaded(const struct lb_cand *x, const struct lb_cand *y)
{
	return (uint64_t)(x->conns + 1) * y->weight < (uint64_t)(y->conns + 1) * x->weight;
}

static size_t weighted_random(struct lb_algo *a, const struct lb_cand *c, size_t n)
{
	uint64_t total = 0, r;

	for (size_t i = 0; i < n; i++)
		total += c[i].weight;
	r = next_random(a) % total;
	for (size_t i = 0; i < n; i++) {
		if (r < c[i].weight)
			return i;
		r -= c[i].weight;
	}
	return n - 1;
}

static double ewma_cost(const struct lb_cand *c)
{
	/* Finagle: latency x (outstanding + 1), per unit of weight. A backend
	 * with no sample yet costs as little as possible so it gets one. */
	return (c->latency + 1.0) * (double)(c->conns + 1) / (double)c->weight;
}

static size_t pick_two(struct lb_algo *a, const struct lb_cand *c, size_t n, bool ewma)
{
	size_t x, y;

	if (n == 1)
		return 0;
	x = weighted_random(a, c, n);
	for (int tries = 0; tries < 8; tries++) {
		y = weighted_random(a, c, n);
		if (y != x)
			break;
	}
	if (y == x)
		y = (x + 1 + next_random(a) % (n - 1)) % n;
	if (ewma)
		return ewma_cost(&c[y]) < ewma_cost(&c[x]) ? y : x;
	return less_loaded(&c[y], &c[x]) ? y : x;
}

size_t lb_algo_pick(struct lb_algo *a, const struct lb_cand *c, size_t n, uint64_t hash)
{
	size_t best = 0;

	if (n <= 1)
		return 0;
	switch (a->algorithm) {
	case LB_ALGO_ROUNDROBIN: {
		/* nginx's smooth weighted round robin: a, a, b, a, c, a, a for
		 * 5:1:1, never a burst to one backend. */
		int64_t total = 0;

		for (size_t i = 0; i < n; i++) {
			a->current[c[i].idx] += c[i].weight;
			total += c[i].weight;
			if (a->current[c[i].idx] > a->current[c[best].idx])
				best = i;
		}
		a->current[c[best].idx] -= total;
		return best;
	}
	case LB_ALGO_LEASTCONN: {
		/* Ties go round the set, not always to the first. */
		size_t start = (size_t)(next_random(a) % n);

		best = start;
		for (size_t k = 1; k < n; k++) {
			size_t i = (start + k) % n;

			if (less_loaded(&c[i], &c[best]))
				best = i;
		}
		return best;
	}
	case LB_ALGO_P2C:
		return pick_two(a, c, n, false);
	case LB_ALGO_PEAK_EWMA:
		return pick_two(a, c, n, true);
	case LB_ALGO_MAGLEV: {
		int pos[LB_MAX_BACKENDS];

		if (!a->maglev)
			return (size_t)(hash % n);
		memset(pos, -1, sizeof(pos));
		for (size_t i = 0; i < n; i++)
			pos[c[i].idx] = (int)i;
		/* The client's slot; if that backend cannot take it (full, or
		 * just failed), the next slots of the table, still stable. */
		for (uint32_t k = 0; k < 1024; k++) {
			uint16_t e = a->maglev[(hash + k) % LB_MAGLEV_SIZE];

			if (e < LB_MAX_BACKENDS && pos[e] >= 0)
				return (size_t)pos[e];
		}
		return (size_t)(hash % n);
	}
	case LB_ALGO_FIRST:
	default:
		for (size_t i = 1; i < n; i++)
			if (c[i].idx < c[best].idx)
				best = i;
		return best;
	}
}
