/* cu_matmul.c - the weight ops of the CUDA backend: MATMUL (small batches: the warp-per-row
 * kernels of cu_weights.cu, which stream the weights once for up to 8 tokens - for TQ2_0 one that
 * takes 4 code bytes per lane and, with int8 activations, __dp4a; from BT_CU_GEMM_MIN
 * tokens on: weights decoded slice by slice to f32 and multiplied by cublasSgemm, no TF32),
 * DEQUANT and GET_ROWS (row ids checked on the host, then copied to the device). vq weights
 * (cu_vq.c / cu_vq.cu): their own small-batch kernel, the same decoded slices for cuBLAS. */
#include "cu_int.h"

#include <stdio.h>
#include <string.h>

#define F32P(v) ((float *)(void *)((v)->buf->p + (v)->off))

static bt_status launch_fail(struct bt_cu_ctx *c, bt_err *err, const char *what, cudaError_t e) {
    return bt_cu_fail(c, err, what, "kernel launch", e);
}

/* w's description for the kernels: wf, or (vq weights) q; 0 if it has no kernels */
static int weight_of(struct bt_cu_ctx *c, const struct bt_view *w, struct bt_cu_wfmt *wf,
                     struct bt_cu_vq *q) {
    memset(wf, 0, sizeof *wf);
    if (w->fmt.type != BT_TYPE_VQ) return bt_cu_wfmt(c, &w->fmt, w->cols, wf);
    if (bt_cu_vq_why(w)) return 0;
    bt_cu_vq_of(w, q);
    wf->type = BT_TYPE_VQ;
    return 1;
}

/* rows [r0, r0 + m) of w decoded to dst (m x cols) */
static cudaError_t decode_rows(struct bt_cu_ctx *c, const struct bt_view *w,
                               const struct bt_cu_wfmt *wf, const struct bt_cu_vq *q, int64_t r0,
                               int64_t m, float *dst) {
    if (wf->type == BT_TYPE_VQ) return bt_cuk_vq_rows(c->st, q, NULL, r0, m, dst);
    return bt_cuk_dequant(c->st, *wf, w->buf->p + w->off + (uint64_t)r0 * wf->row_bytes, m, w->cols, dst);
}

bt_status bt_cu_matmul(struct bt_cu_ctx *c, const struct bt_op *op, bt_err *err) {
    const struct bt_view *w = &op->src[0];
    struct bt_cu_wfmt wf;
    struct bt_cu_vq q;
    if (!weight_of(c, w, &wf, &q))
        return c->host->set_error(err, BT_E_UNSUPPORTED, "cuda: matmul: weight format not supported");
    const int64_t rows = w->rows, cols = w->cols, ntok = op->dst.rows;
    const uint8_t *W = w->buf->p + w->off;
    const float *x = F32P(&op->src[1]);
    float *y = F32P(&op->dst);
    cudaError_t e;
    bt_status st;
    if (wf.type == BT_TYPE_TQ2_0 && ntok < BT_CU_GEMM_MIN) { /* the TQ2_0 kernel (int8: dp4a) */
        int8_t *xq = NULL;
        float *xs = NULL;
        if (op->act == BT_ACT_Q8) { /* codes (ntok x cols), then the scales (ntok x cols/256) */
            size_t nq = (size_t)(ntok * cols);
            if ((st = bt_cu_scratch(c, &c->act, nq + nq / 256 * 4, "matmul", err))) return st;
            xq = c->act.p;
            xs = (float *)(void *)((uint8_t *)c->act.p + nq); /* nq % 256 == 0: aligned */
            if ((e = bt_cuk_act_q8(c->st, x, ntok, cols, NULL, xq, xs)) != cudaSuccess)
                return launch_fail(c, err, "matmul (int8 activations)", e);
        }
        e = bt_cuk_gemv_tq2(c->st, W, wf.row_bytes, rows, cols, x, xq, xs, ntok, y);
        return e == cudaSuccess ? BT_OK : launch_fail(c, err, "matmul", e);
    }
    if (op->act == BT_ACT_Q8) { /* the int8 round trip of the activations, then f32 products */
        if ((st = bt_cu_scratch(c, &c->act, (size_t)(ntok * cols) * 4, "matmul", err))) return st;
        if ((e = bt_cuk_act_q8(c->st, x, ntok, cols, c->act.p, NULL, NULL)) != cudaSuccess)
            return launch_fail(c, err, "matmul (int8 activations)", e);
        x = c->act.p;
    }
    if (ntok < BT_CU_GEMM_MIN && wf.type == BT_TYPE_VQ) return bt_cu_vq_gemv(c, w, x, ntok, y, err);
    if (ntok < BT_CU_GEMM_MIN) {
        e = bt_cuk_gemv(c->st, wf, W, rows, cols, x, ntok, y);
        return e == cudaSuccess ? BT_OK : launch_fail(c, err, "matmul", e);
    }
    /* y (ntok x rows, row-major) = x W^T: column-major, y^T[r, t] = sum_c W[r, c] x[t, c], so
     * slice rows [r0, r0 + m): C = A^T B with A = W's slice (cols x m, ld cols), B = x (cols x
     * ntok, ld cols), C at y + r0 (m x ntok, ld rows) */
    int64_t slice = (int64_t)(BT_CU_WDQ_BYTES / ((size_t)cols * 4));
    if (slice < 1) slice = 1;
    if (slice > rows) slice = rows;
    if ((st = bt_cu_scratch(c, &c->wdq, (size_t)(slice * cols) * 4, "matmul", err))) return st;
    const float one = 1.0f, zero = 0.0f;
    for (int64_t r0 = 0; r0 < rows; r0 += slice) {
        const int64_t m = rows - r0 < slice ? rows - r0 : slice;
        if ((e = decode_rows(c, w, &wf, &q, r0, m, c->wdq.p)) != cudaSuccess)
            return launch_fail(c, err, "matmul (weight slice)", e);
        cublasStatus_t bs = cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)m, (int)ntok, (int)cols,
                                        &one, c->wdq.p, (int)cols, x, (int)cols, &zero, y + r0, (int)rows);
        if (bs != CUBLAS_STATUS_SUCCESS)
            return c->host->set_error(err, BT_E_BACKEND, "cuda: matmul: cublasSgemm failed (status %d, "
                                      "%lld x %lld x %lld)", (int)bs, (long long)m, (long long)ntok,
                                      (long long)cols);
    }
    return BT_OK;
}

bt_status bt_cu_dequant(struct bt_cu_ctx *c, const struct bt_op *op, bt_err *err) {
    const struct bt_view *w = &op->src[0];
    struct bt_cu_wfmt wf;
    struct bt_cu_vq q;
    if (!weight_of(c, w, &wf, &q))
        return c->host->set_error(err, BT_E_UNSUPPORTED, "cuda: dequant: weight format not supported");
    cudaError_t e = decode_rows(c, w, &wf, &q, 0, w->rows, F32P(&op->dst));
    return e == cudaSuccess ? BT_OK : launch_fail(c, err, "dequant", e);
}

bt_status bt_cu_get_rows(struct bt_cu_ctx *c, const struct bt_op *op, bt_err *err) {
    const struct bt_view *w = &op->src[0];
    struct bt_cu_wfmt wf;
    struct bt_cu_vq q;
    if (!weight_of(c, w, &wf, &q))
        return c->host->set_error(err, BT_E_UNSUPPORTED, "cuda: get_rows: weight format not supported");
    const int64_t n = op->dst.rows;
    if (n > 0 && !op->ids)
        return c->host->set_error(err, BT_E_INVAL, "cuda: get_rows: no row ids");
    for (int64_t t = 0; t < n; t++)
        if (op->ids[t] < 0 || op->ids[t] >= w->rows)
            return c->host->set_error(err, BT_E_INVAL, "cuda: get_rows: row %d out of range [0, %lld)",
                                      op->ids[t], (long long)w->rows);
    if (n <= 0) return BT_OK;
    int32_t *dev = NULL;
    cudaError_t e;
    if (c->capturing) { /* a graph's copy reads pinned memory when it runs: a range per op */
        if (c->pin_used + (size_t)n > c->pin_cap || (c->pin_used + (size_t)n) * 4 > c->ids.cap)
            return c->host->set_error(err, BT_E_BACKEND, "cuda: get_rows: graph staging too small");
        memcpy(c->pin + c->pin_used, op->ids, (size_t)n * 4);
        dev = (int32_t *)c->ids.p + c->pin_used;
        e = cudaMemcpyAsync(dev, c->pin + c->pin_used, (size_t)n * 4, cudaMemcpyHostToDevice, c->st);
        c->pin_used += (size_t)n;
    } else {
        bt_status st = bt_cu_scratch(c, &c->ids, (size_t)n * 4, "get_rows", err);
        if (st) return st;
        dev = c->ids.p;
        /* from pageable memory: returns once the ids are staged, so the caller may reuse them */
        e = cudaMemcpyAsync(dev, op->ids, (size_t)n * 4, cudaMemcpyHostToDevice, c->st);
    }
    if (e != cudaSuccess) return bt_cu_fail(c, err, "get_rows", "cudaMemcpyAsync (row ids)", e);
    e = wf.type == BT_TYPE_VQ ? bt_cuk_vq_rows(c->st, &q, dev, 0, n, F32P(&op->dst))
                              : bt_cuk_get_rows(c->st, wf, w->buf->p + w->off, dev, n, w->cols, F32P(&op->dst));
    return e == cudaSuccess ? BT_OK : launch_fail(c, err, "get_rows", e);
}
