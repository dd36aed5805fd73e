/* Steady state of a continuous-time Markov chain. The solver is GTH
 * (Grassmann-Taksar-Heyman state reduction) on a GSL matrix: it never
 * subtracts, so even a 1e-100 probability of "all replicas down" keeps its
 * full relative precision, which an LU solve (error ~1e-16 of the largest
 * probability) cannot give. GSL's LU solve is kept as a second, independent
 * solver that the tests and the bench compare against. */
#pragma once

#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>

/* Solves pi Q = 0, sum(pi) = 1 for the generator Q (n x n: off-diagonal
 * rates >= 0, rows summing to 0) of a chain with one closed class. pi has
 * n entries and is written only on success. Returns -EINVAL for a
 * malformed Q, -EDOM when the system is singular (several closed classes). */
int ctmc_steady_state(const gsl_matrix *Q, gsl_vector *pi);
/* The same through GSL's LU decomposition with one step of refinement:
 * accurate to about 1e-16 in absolute terms only. */
int ctmc_steady_state_lu(const gsl_matrix *Q, gsl_vector *pi);

/* Fills the diagonal of Q so that every row sums to 0. */
void ctmc_fill_diagonal(gsl_matrix *Q);
