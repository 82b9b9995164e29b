/* compute.h - the second-order engine's side of the quantizers' compute backend (compute.c):
 * whether its dense algebra is routed there ([quantize] so_backend), and locked wrappers of the
 * backend's buffers and ops for hessian.c and so_engine.c. Every call takes the compute lock, so
 * host threads may share the one backend instance. */
#ifndef BT_COMPUTE_H
#define BT_COMPUTE_H
#include "bt/bt.h"

/* *routed = 1 if the engine's GEMM / CHOL_INV run on the compute backend (decided once between
 * bt_compute_begin and _end, opening the backend); 0 outside a conversion. An error only with
 * so_backend = backend when the backend cannot open or run them. */
bt_status bt_compute_so_route(int *routed, bt_err *err);
/* X (n x n) = L^-1 of the lower Cholesky factor of A (A destroyed) by op CHOL_INV; *bad = 0 or
 * the 1-based column where A is not positive definite */
bt_status bt_compute_chol_inv(float *A, float *X, int64_t n, int64_t *bad, bt_err *err);
bt_status bt_compute_alloc(uint64_t n, bt_buf **out, bt_err *err);
void      bt_compute_free(bt_buf *b);
bt_status bt_compute_write(bt_buf *b, uint64_t off, const void *src, uint64_t n, bt_err *err);
bt_status bt_compute_read(bt_buf *b, uint64_t off, void *dst, uint64_t n, bt_err *err);
/* runs one op (an error naming the backend if it does not support it) */
bt_status bt_compute_run(const struct bt_op *op, bt_err *err);
#endif
