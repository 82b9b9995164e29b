/* hessian.h - prepared input Hessians and the second-order (GPTQ-style) engine behind the
 * host services so_quantize / hess_mul / spd_solve (ABI 1.1, docs/plugin-abi.md). */
#ifndef BT_HESSIAN_H
#define BT_HESSIAN_H
#include "bt/bt_plugin.h"

struct bt_hessian {
    int64_t  n;     /* columns */
    float   *H;     /* (n x n) damped Hessian in tensor column order, row-major */
    float   *U;     /* (n x n) upper Cholesky factor of H^-1 in processing order: U^T U = P H^-1 P^T */
    int64_t *perm;  /* processing position -> tensor column */
    int64_t *iperm; /* tensor column -> processing position */
    uint8_t *dead;  /* 1: the column never saw input (its weights are treated as 0) */
};

void      bt_la_init(void); /* BLAS single-threaded: bt parallelizes over fixed tiles itself */
/* G: (n x n) E[x x^T] (only the upper triangle is read); damp: fraction of mean(diag) added to the diagonal */
bt_status bt_hessian_prepare(const float *G, int64_t n, double damp, int act_order, bt_hessian **out,
                             bt_err *err);
void      bt_hessian_free(bt_hessian *h);
bt_status bt_hessian_mul(const bt_hessian *h, int64_t c0, int64_t c1, const float *X, int64_t nrows,
                         float *Y, bt_err *err);
bt_status bt_spd_solve(int64_t n, double *A, double *b);
bt_status bt_so_quantize(const bt_hessian *h, const float *W, int64_t rows, int64_t cols,
                         const struct bt_so_cb *cb, double *herr, bt_err *err);
#endif
