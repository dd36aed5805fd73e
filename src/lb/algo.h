/* Balancing algorithms: given the backends able to take a connection now,
 * pick one. Pure functions over a small per-worker state, so each worker
 * thread balances on its own without locks. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lb/config.h"

#define LB_MAGLEV_SIZE 65537u /* a prime, as Maglev's table must be */

/* A backend that may take this connection. */
struct lb_cand {
	unsigned idx;    /* the backend's index in its balancer, < LB_MAX_BACKENDS */
	unsigned weight; /* effective weight, > 0 */
	unsigned conns;  /* connections in progress */
	double latency;  /* peak-EWMA latency in microseconds (peak-ewma only) */
};

struct lb_algo {
	int algorithm;                    /* enum lb_algorithm */
	int64_t current[LB_MAX_BACKENDS]; /* smooth weighted round robin */
	uint64_t rng;                     /* xorshift state, never 0 */
	uint16_t *maglev;                 /* LB_MAGLEV_SIZE backend indexes */
	uint64_t maglev_generation;       /* of the set it was built from */
};

void lb_algo_init(struct lb_algo *a, int algorithm, uint64_t seed);
void lb_algo_release(struct lb_algo *a);

/* Builds the Maglev table from the named backends with their weights
 * (idx[i] is stored; weights > 0). Returns -ENOMEM, or 0. */
int lb_algo_maglev_build(struct lb_algo *a, const char *const *names, const unsigned *idx,
			 const unsigned *weights, size_t n, uint64_t generation);

/* Picks among c[0..n) (n > 0); hash is the client's (maglev). Returns the
 * position in c. */
size_t lb_algo_pick(struct lb_algo *a, const struct lb_cand *c, size_t n, uint64_t hash);

/* 64-bit hash of bytes (FNV-1a, then mixed). */
uint64_t lb_hash(const void *data, size_t len);
