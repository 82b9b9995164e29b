/* bt_la.h - the tiled dense factorizations of the second-order engine (OpenBLAS + LAPACKE on
 * fixed 128-wide tiles spread over a parallel_for), shared by the core's host path
 * (core/src/hessian.c) and the cpu backends' op CHOL_INV, so both give the same bits for any
 * thread count. Library bt_la (static); callers set OpenBLAS to one thread per call. */
#ifndef BT_LA_H
#define BT_LA_H

#include "bt/bt_plugin.h"

/* host->parallel_for / bt_parallel_for */
typedef void (*bt_la_pfor)(int64_t n, int64_t grain, bt_range_fn fn, void *arg);

/* lower Cholesky factor of A (row-major n x n, lower triangle read and overwritten; the strict
 * upper triangle is left as it was): 0, or the 1-based column where A is not positive definite */
int64_t bt_la_chol_lower(float *A, int64_t n, bt_la_pfor pfor);
/* X (n x n, row-major) = L^-1 for the lower-triangular L (strict upper triangle ignored);
 * X's strict upper triangle is set to 0 */
void bt_la_tri_inv(const float *L, float *X, int64_t n, bt_la_pfor pfor);

#endif
