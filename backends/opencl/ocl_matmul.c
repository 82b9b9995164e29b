/* ocl_matmul.c - the weight ops of the OpenCL backend: MATMUL (f32 or int8-quantized
 * activations; GEMV kernels for up to BT_OCL_GEMM_MIN - 1 tokens, the tiled GEMM above),
 * DEQUANT and GET_ROWS. Activations for act = Q8 are quantized on the device into the `act`
 * scratch buffer as f32 values xq * xs (exactly the products the int8 path multiplies with), then
 * the f32 kernels run on them; BT_OPF_SAME_INPUT reuses that buffer. */
#include "ocl_int.h"

#include <string.h>

#define MEM(v) BT_OCL_A_MEM, (v)->buf->mem, BT_OCL_A_U64, (uint64_t)(v)->off
#define I32(x) BT_OCL_A_I32, (int)(x)
#define U64(x) BT_OCL_A_U64, (uint64_t)(x)
#define END    BT_OCL_A_END

static int is_float_fmt(uint32_t t) {
    return t == BT_TYPE_F32 || t == BT_TYPE_F16 || t == BT_TYPE_BF16;
}

static int same_view(const struct bt_view *a, const struct bt_view *b) {
    return a->buf == b->buf && a->off == b->off && a->rows == b->rows && a->cols == b->cols;
}

/* act = Q8: the activations as int8 x per-256 scale, stored dequantized in c->act */
static bt_status quantize_act(struct bt_ocl_ctx *c, const struct bt_op *op, bt_err *err) {
    const struct bt_view *x = &op->src[1];
    if ((op->flags & BT_OPF_SAME_INPUT) && c->q8_valid && same_view(&c->q8_src, x)) return BT_OK;
    c->q8_valid = 0;
    size_t n = (size_t)x->rows * (size_t)x->cols;
    bt_status st = bt_ocl_scratch(c, &c->act, &c->act_cap, n * sizeof(float), "matmul", err);
    if (st) return st;
    size_t gws[2] = {(size_t)x->cols, (size_t)x->rows}, lws[2] = {256, 1};
    st = bt_ocl_launch(c, c->mk[BT_OCL_K_ACTQ], "matmul (int8 activations)", 2, gws, lws, err,
                       MEM(x), BT_OCL_A_MEM, c->act, I32(x->cols), END);
    if (st) return st;
    c->q8_src = *x;
    c->q8_valid = 1;
    return BT_OK;
}

bt_status bt_ocl_matmul(struct bt_ocl_ctx *c, const struct bt_op *op, bt_err *err) {
    const struct bt_view *W = &op->src[0], *X = &op->src[1], *D = &op->dst;
    int64_t ntok = X->rows, rows = W->rows, cols = W->cols;
    uint64_t rb = bt_fmt_row_bytes(&W->fmt, cols);
    int vec = is_float_fmt(W->fmt.type) ? (cols % 4 == 0 ? 4 : 1) : 0;
    struct bt_ocl_wprog *p;
    bt_status st = bt_ocl_wprog(c, &W->fmt, vec, &p, err);
    if (st) return st;
    cl_mem xm = X->buf->mem;
    uint64_t xoff = X->off;
    if (op->act == BT_ACT_Q8) {
        if ((st = quantize_act(c, op, err))) return st;
        xm = c->act;
        xoff = 0;
    } else {
        c->q8_valid = 0;
    }
    if (ntok >= BT_OCL_GEMM_MIN) {
        size_t gws[2] = {(size_t)((rows + BT_OCL_TM - 1) / BT_OCL_TM) * 16,
                         (size_t)((ntok + BT_OCL_TN - 1) / BT_OCL_TN) * 16};
        size_t lws[2] = {16, 16};
        return bt_ocl_launch(c, p->k[BT_OCL_W_GEMM], "matmul", 2, gws, lws, err, MEM(W), U64(rb),
                             I32(rows), I32(cols), BT_OCL_A_MEM, xm, U64(xoff), I32(ntok), MEM(D),
                             END);
    }
    size_t lws[1] = {BT_OCL_TPR};
    for (int64_t t0 = 0; t0 < ntok;) {
        int64_t left = ntok - t0;
        int ki = left >= 8 ? BT_OCL_W_GEMV8 : left >= 4 ? BT_OCL_W_GEMV4 : left >= 2 ? BT_OCL_W_GEMV2
                                                                                     : BT_OCL_W_GEMV1;
        int nt = 1 << (ki - BT_OCL_W_GEMV1), rpt = nt <= 2 ? BT_OCL_RPT_SMALL : BT_OCL_RPT;
        size_t gws[1] = {(size_t)((rows + rpt - 1) / rpt) * BT_OCL_TPR};
        st = bt_ocl_launch(c, p->k[ki], "matmul", 1, gws, lws, err, MEM(W), U64(rb), I32(rows),
                           I32(cols), BT_OCL_A_MEM, xm, U64(xoff + (uint64_t)t0 * cols * 4),
                           BT_OCL_A_MEM, D->buf->mem, U64(D->off + (uint64_t)t0 * rows * 4), END);
        if (st) return st;
        t0 += nt;
    }
    return BT_OK;
}

/* Y[r, :] = decode(W[ids ? ids[r] : r, :]) for r < nrows */
static bt_status decode_rows(struct bt_ocl_ctx *c, const struct bt_op *op, int64_t nrows,
                             cl_mem ids, const char *what, bt_err *err) {
    const struct bt_view *W = &op->src[0], *D = &op->dst;
    struct bt_ocl_wprog *p; /* the program MATMUL uses too (vec only matters to its GEMV) */
    bt_status st = bt_ocl_wprog(c, &W->fmt, W->cols % 4 == 0 ? 4 : 1, &p, err);
    if (st) return st;
    size_t gws[2] = {(size_t)(W->cols + 63) / 64 * 64, (size_t)nrows}, lws[2] = {64, 1};
    return bt_ocl_launch(c, p->k[BT_OCL_W_DEQUANT], what, 2, gws, lws, err, MEM(W),
                         U64(bt_fmt_row_bytes(&W->fmt, W->cols)), I32(W->cols), BT_OCL_A_MEM, ids,
                         I32(ids != NULL), MEM(D), END);
}

bt_status bt_ocl_dequant(struct bt_ocl_ctx *c, const struct bt_op *op, bt_err *err) {
    return decode_rows(c, op, op->dst.rows, NULL, "dequant", err);
}

bt_status bt_ocl_get_rows(struct bt_ocl_ctx *c, const struct bt_op *op, bt_err *err) {
    int64_t n = op->dst.rows;
    for (int64_t t = 0; t < n; t++)
        if (op->ids[t] < 0 || op->ids[t] >= op->src[0].rows)
            return c->host->set_error(err, BT_E_INVAL, "opencl: get_rows: row %d out of range "
                                      "[0, %lld)", op->ids[t], (long long)op->src[0].rows);
    bt_status st = bt_ocl_scratch(c, &c->ids, &c->ids_cap, (size_t)n * sizeof(int32_t), "get_rows", err);
    if (st) return st;
    /* blocking: op->ids is only valid during run */
    cl_int e = clEnqueueWriteBuffer(c->q, c->ids, CL_TRUE, 0, (size_t)n * sizeof(int32_t), op->ids,
                                    0, NULL, NULL);
    if (e != CL_SUCCESS) return bt_ocl_fail(c, err, "get_rows", "clEnqueueWriteBuffer", e);
    return decode_rows(c, op, n, c->ids, "get_rows", err);
}
