/* cu_vq.c - bt's vq format in the CUDA backend, host side: the checks of a vq weight view (its
 * parameters for the view's shape, the sizes of its parts, and - read back once after each write
 * of the columns part - the column permutation, as the cpu backend checks it), the kernels'
 * description of the view (struct bt_cu_vq) and MATMUL for small batches. DEQUANT, GET_ROWS and
 * the cuBLAS slices of prompt batches decode through bt_cuk_vq_rows (cu_matmul.c). */
#include "cu_int.h"

#include <string.h>

_Static_assert(BT_CU_VQ_MAX_V == BT_VQ_MAX_V, "cu_vq.h: BT_CU_VQ_MAX_V must be BT_VQ_MAX_V");

const char *bt_cu_vq_why(const struct bt_view *w) {
    struct bt_vq_layout L;
    if (!bt_vq_layout(&w->fmt, w->rows, w->cols, &L)) return "vq parameters do not fit the weight's shape";
    for (uint32_t k = 0; k < L.n_parts; k++)
        if (!w->parts[k] || w->parts[k]->n < L.part_bytes[k]) return "a vq part is missing or too small";
    return NULL;
}

void bt_cu_vq_of(const struct bt_view *w, struct bt_cu_vq *q) {
    struct bt_vq_layout L;
    memset(q, 0, sizeof *q);
    if (!bt_vq_layout(&w->fmt, w->rows, w->cols, &L)) return; /* checked before (bt_cu_vq_why) */
    q->data = w->buf->p + w->off;
    q->cb = w->parts[L.p_cb]->p;
    q->colp = L.p_col >= 0 ? w->parts[L.p_col]->p : NULL;
    q->oc = L.p_out >= 0 ? w->parts[L.p_out]->p : NULL;
    q->tail = L.p_tail >= 0 ? w->parts[L.p_tail]->p : NULL;
    q->rows = L.rows;
    q->cols = L.cols;
    q->ncode = L.ncode;
    q->gs = L.gs;
    q->R = L.R;
    q->cb_main = L.cb_main;
    q->cb_res = L.cb_res;
    q->cb_out = L.cb_out;
    q->col_perm = L.col_perm;
    q->col_scale = L.col_scale;
    q->col_bias = L.col_bias;
    q->v = (int32_t)L.v;
    q->b1 = (int32_t)L.b1;
    q->b2 = (int32_t)L.b2;
    q->t = (int32_t)L.t;
    q->n_out = (int32_t)L.n_out;
    q->v0 = (int32_t)L.v0;
    q->b0 = (int32_t)L.b0;
}

bt_status bt_cu_vq_perm(struct bt_cu_ctx *c, const struct bt_view *w, bt_err *err) {
    struct bt_vq_layout L;
    if (!bt_vq_layout(&w->fmt, w->rows, w->cols, &L) || L.col_perm == UINT64_MAX) return BT_OK;
    struct bt_buf *b = w->parts[L.p_col];
    if (b->perm_ok == b->gen + 1 && b->perm_cols == L.cols) return BT_OK;
    if (c->capturing) /* prepare() checked every op before capturing: not reached */
        return c->host->set_error(err, BT_E_BACKEND, "cuda: vq: permutation not checked before capture");
    const size_t n = (size_t)L.cols;
    uint8_t *h = c->host->alloc(3 * n);
    if (!h) return c->host->set_error(err, BT_E_NOMEM, "cuda: vq: out of host memory");
    uint8_t *seen = h + 2 * n;
    cudaError_t e = cudaMemcpyAsync(h, b->p + L.col_perm, 2 * n, cudaMemcpyDeviceToHost, c->st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->st);
    if (e != cudaSuccess) {
        c->host->free(h);
        return bt_cu_fail(c, err, "vq: reading the column permutation", "cudaMemcpy", e);
    }
    memset(seen, 0, n);
    int ok = 1;
    for (size_t p = 0; p < n && ok; p++) {
        size_t col = (size_t)h[2 * p] | ((size_t)h[2 * p + 1] << 8);
        if (col >= n || seen[col]) ok = 0;
        else seen[col] = 1;
    }
    c->host->free(h);
    if (!ok) return c->host->set_error(err, BT_E_FORMAT, "cuda: vq: the column permutation is not one");
    b->perm_ok = b->gen + 1;
    b->perm_cols = L.cols;
    return BT_OK;
}

bt_status bt_cu_vq_gemv(struct bt_cu_ctx *c, const struct bt_view *w, const float *x, int64_t ntok,
                        float *y, bt_err *err) {
    struct bt_cu_vq q;
    bt_cu_vq_of(w, &q);
    bt_status st = bt_cu_scratch(c, &c->vqx, bt_cu_vq_scratch(w->cols, ntok), "matmul (vq)", err);
    if (st) return st;
    cudaError_t e = bt_cuk_vq_gemv(c->st, &q, x, ntok, c->vqx.p, y);
    return e == cudaSuccess ? BT_OK : bt_cu_fail(c, err, "matmul (vq)", "kernel launch", e);
}
