/* cu_la.c - the second-order engine's ops (ABI 2.3) in the CUDA backend: GEMM as one
 * cublasSgemm (row-major operands read as their column-major transposes; pedantic math: no
 * TF32) and CHOL_INV as cusolverDnSpotrf (row-major lower = column-major upper) followed by
 * cublasStrsm against the identity: U X = I with U^T U = A gives X^T = (U^T)^-1 = L^-1. The
 * cuSOLVER handle is made on first use; its workspace is scratch counted against max_memory. */
#include "cu_int.h"

#include <stdio.h>

#define F32P(v) ((float *)(void *)((v)->buf->p + (v)->off))

static bt_status blas_fail(struct bt_cu_ctx *c, bt_err *err, const char *what, int status) {
    return c->host->set_error(err, BT_E_BACKEND, "cuda: %s failed (status %d)", what, status);
}

bt_status bt_cu_gemm(struct bt_cu_ctx *c, const struct bt_op *op, bt_err *err) {
    const struct bt_view *a = &op->src[0], *b = &op->src[1], *d = &op->dst;
    const int ta = (op->flags & BT_OPF_TRANS_A) != 0, tb = (op->flags & BT_OPF_TRANS_B) != 0;
    const int64_t k = ta ? a->rows : a->cols;
    const float alpha = op->scale, beta = op->eps;
    /* column-major: dst^T (N x M) = op(src1)^T op(src0)^T + beta dst^T */
    cublasStatus_t bs = cublasSgemm(c->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                    (int)d->cols, (int)d->rows, (int)k, &alpha, F32P(b), (int)b->cols,
                                    F32P(a), (int)a->cols, &beta, F32P(d), (int)d->cols);
    return bs == CUBLAS_STATUS_SUCCESS ? BT_OK : blas_fail(c, err, "gemm: cublasSgemm", (int)bs);
}

bt_status bt_cu_chol_inv(struct bt_cu_ctx *c, const struct bt_op *op, bt_err *err) {
    const int n = (int)op->dst.rows;
    float *A = F32P(&op->src[0]), *X = F32P(&op->dst);
    int *info = (int *)(void *)(op->src[1].buf->p + op->src[1].off);
    cusolverStatus_t ss;
    if (!c->solver) {
        if ((ss = cusolverDnCreate(&c->solver)) != CUSOLVER_STATUS_SUCCESS) {
            c->solver = NULL;
            return blas_fail(c, err, "chol_inv: cusolverDnCreate", (int)ss);
        }
        if ((ss = cusolverDnSetStream(c->solver, c->st)) != CUSOLVER_STATUS_SUCCESS)
            return blas_fail(c, err, "chol_inv: cusolverDnSetStream", (int)ss);
    }
    int lwork = 0;
    ss = cusolverDnSpotrf_bufferSize(c->solver, CUBLAS_FILL_MODE_UPPER, n, A, n, &lwork);
    if (ss != CUSOLVER_STATUS_SUCCESS) return blas_fail(c, err, "chol_inv: cusolverDnSpotrf_bufferSize", (int)ss);
    bt_status st = bt_cu_scratch(c, &c->la, (size_t)(lwork > 0 ? lwork : 1) * sizeof(float), "chol_inv", err);
    if (st) return st;
    ss = cusolverDnSpotrf(c->solver, CUBLAS_FILL_MODE_UPPER, n, A, n, c->la.p, lwork, info);
    if (ss != CUSOLVER_STATUS_SUCCESS) return blas_fail(c, err, "chol_inv: cusolverDnSpotrf", (int)ss);
    cudaError_t e = bt_cuk_eye(c->st, X, n);
    if (e != cudaSuccess) return bt_cu_fail(c, err, "chol_inv", "kernel launch", e);
    /* with info != 0 the factor is partial: X is then unspecified (the op's contract) */
    const float one = 1.0f;
    cublasStatus_t bs = cublasStrsm(c->blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N,
                                    CUBLAS_DIAG_NON_UNIT, n, n, &one, A, n, X, n);
    return bs == CUBLAS_STATUS_SUCCESS ? BT_OK : blas_fail(c, err, "chol_inv: cublasStrsm", (int)bs);
}
