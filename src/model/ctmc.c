#include "model/ctmc.h"

#include <errno.h>
#include <math.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_permutation.h>

#include "lib/cleanup.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(gsl_matrix *, gsl_matrix_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(gsl_vector *, gsl_vector_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(gsl_permutation *, gsl_permutation_free)

void ctmc_fill_diagonal(gsl_matrix *Q)
{
	for (size_t i = 0; i < Q->size1; i++) {
		double out = 0;

		for (size_t j = 0; j < Q->size2; j++)
			if (j != i)
				out += gsl_matrix_get(Q, i, j);
		gsl_matrix_set(Q, i, i, -out);
	}
}

/* Checks Q; returns the largest rate (> 0) or a negative error. */
static int check_generator(const gsl_matrix *Q, const gsl_vector *pi, double *ret_scale)
{
	size_t n = Q->size1;
	double scale = 0;

	if (n == 0 || Q->size2 != n || pi->size != n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			double q = gsl_matrix_get(Q, i, j);

			if (!isfinite(q) || (i != j && q < 0))
				return -EINVAL;
			if (fabs(q) > scale)
				scale = fabs(q);
		}
	*ret_scale = scale;
	return 0;
}

int ctmc_steady_state(const gsl_matrix *Q, gsl_vector *pi)
{
	size_t n = Q->size1;
	double scale, sum = 0;
	int r;

	r = check_generator(Q, pi, &scale);
	if (r < 0)
		return r;
	if (n == 1) {
		gsl_vector_set(pi, 0, 1);
		return 0;
	}
	if (scale == 0)
		return -EDOM;

	_cleanup_(gsl_matrix_freep) gsl_matrix *P = gsl_matrix_alloc(n, n);
	_cleanup_(gsl_vector_freep) gsl_vector *x = gsl_vector_alloc(n);

	if (!P || !x)
		return -ENOMEM;
	gsl_matrix_memcpy(P, Q);
	/* Reduce the chain one state at a time, from the last: the rates of
	 * the states left are those of the chain watched only while in them. */
	for (size_t k = n - 1; k > 0; k--) {
		double out = 0;

		for (size_t j = 0; j < k; j++)
			out += gsl_matrix_get(P, k, j);
		if (!(out > 0))
			return -EDOM; /* state k never returns: several closed classes */
		for (size_t i = 0; i < k; i++)
			gsl_matrix_set(P, i, k, gsl_matrix_get(P, i, k) / out);
		for (size_t i = 0; i < k; i++) {
			double pik = gsl_matrix_get(P, i, k);

			if (pik == 0)
				continue;
			for (size_t j = 0; j < k; j++)
				if (j != i)
					*gsl_matrix_ptr(P, i, j) += pik * gsl_matrix_get(P, k, j);
		}
	}
	gsl_vector_set(x, 0, 1);
	sum = 1;
	for (size_t k = 1; k < n; k++) {
		double v = 0;

		for (size_t i = 0; i < k; i++)
			v += gsl_vector_get(x, i) * gsl_matrix_get(P, i, k);
		gsl_vector_set(x, k, v);
		sum += v;
	}
	if (!isfinite(sum))
		return -EDOM;
	gsl_vector_scale(x, 1 / sum);
	gsl_vector_memcpy(pi, x);
	return 0;
}

int ctmc_steady_state_lu(const gsl_matrix *Q, gsl_vector *pi)
{
	size_t n = Q->size1;
	double scale, sum = 0;
	int signum, r;

	r = check_generator(Q, pi, &scale);
	if (r < 0)
		return r;
	/* GSL's default handler aborts; errors come back as return codes. */
	gsl_set_error_handler_off();
	if (n == 1) {
		gsl_vector_set(pi, 0, 1);
		return 0;
	}
	if (scale == 0)
		return -EDOM;

	_cleanup_(gsl_matrix_freep) gsl_matrix *A = gsl_matrix_alloc(n, n);
	_cleanup_(gsl_matrix_freep) gsl_matrix *LU = gsl_matrix_alloc(n, n);
	_cleanup_(gsl_vector_freep) gsl_vector *b = gsl_vector_calloc(n);
	_cleanup_(gsl_vector_freep) gsl_vector *x = gsl_vector_alloc(n);
	_cleanup_(gsl_vector_freep) gsl_vector *work = gsl_vector_alloc(n);
	_cleanup_(gsl_permutation_freep) gsl_permutation *perm = gsl_permutation_alloc(n);

	if (!A || !LU || !b || !x || !work || !perm)
		return -ENOMEM;
	/* pi Q = 0 is Q^T pi^T = 0; one balance equation is redundant, so the
	 * last is replaced by the normalisation sum(pi) = 1. Rates are scaled
	 * to at most 1 so the matrix is well balanced. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			gsl_matrix_set(A, i, j, i == n - 1 ? 1.0 : gsl_matrix_get(Q, j, i) / scale);
	gsl_vector_set(b, n - 1, 1);
	gsl_matrix_memcpy(LU, A);
	if (gsl_linalg_LU_decomp(LU, perm, &signum) != GSL_SUCCESS)
		return -EDOM;
	for (size_t i = 0; i < n; i++)
		if (gsl_matrix_get(LU, i, i) == 0)
			return -EDOM;
	if (gsl_linalg_LU_solve(LU, perm, b, x) != GSL_SUCCESS)
		return -EDOM;
	/* One step of iterative refinement for the tiny probabilities of the
	 * down states, which are what an availability is made of. */
	if (gsl_linalg_LU_refine(A, LU, perm, b, x, work) != GSL_SUCCESS)
		return -EDOM;
	for (size_t i = 0; i < n; i++) {
		double v = gsl_vector_get(x, i);

		if (!isfinite(v))
			return -EDOM;
		if (v < 0) /* rounding below zero */
			v = 0;
		gsl_vector_set(x, i, v);
		sum += v;
	}
	if (!(sum > 0))
		return -EDOM;
	gsl_vector_scale(x, 1 / sum);
	gsl_vector_memcpy(pi, x);
	return 0;
}
