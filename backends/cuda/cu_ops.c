/* cu_ops.c - the op interface of the CUDA backend: the checks shared by supports_op and run (the
 * ABI's rules from bt_op_check plus this backend's formats, alignment and grid limits), view
 * bounds, `run` (ops enqueued in order on the instance's stream) and the non-weight ops. Weight
 * ops (MATMUL, DEQUANT, GET_ROWS) are in cu_matmul.c, the vq format's host side in cu_vq.c. */
#include "cu_int.h"

#include <stdio.h>
#include <string.h>

/* ---- formats ---------------------------------------------------------------------------------- */
int bt_cu_wfmt(const struct bt_cu_ctx *c, const struct bt_tfmt *fmt, int64_t cols,
               struct bt_cu_wfmt *out) {
    uint32_t blk = 0, bb = 0;
    switch (fmt->type) {
    case BT_TYPE_F32: case BT_TYPE_F16: case BT_TYPE_BF16: case BT_TYPE_Q8_0: case BT_TYPE_Q4_0:
    case BT_TYPE_TQ1_0: case BT_TYPE_TQ2_0:
        if (fmt->planes || fmt->block || fmt->layout) return 0;
        break;
    case BT_TYPE_MTQ:
        if (fmt->planes < 1 || fmt->planes > 8 || fmt->layout > 1) return 0;
        break;
    default: return 0; /* vq and plugin formats: no kernels */
    }
    if (!bt_fmt_geometry(fmt, &blk, &bb) || !blk || !bb) return 0;
    size_t rb = c->host->row_bytes(fmt, cols);
    if (!rb) return 0;
    memset(out, 0, sizeof *out);
    out->type = (int32_t)fmt->type;
    out->planes = (int32_t)fmt->planes;
    out->block = (int32_t)blk;
    out->layout = (int32_t)fmt->layout;
    out->block_bytes = (int32_t)bb;
    out->row_bytes = rb;
    return 1;
}

/* ---- checks ----------------------------------------------------------------------------------- */
/* NULL if op is well-formed and runnable here, else why not */
static const char *op_check(const struct bt_cu_ctx *c, const struct bt_op *op) {
    const char *why = bt_op_check(op, c->host);
    if (why) return why;
    const struct bt_view *d = &op->dst, *s0 = &op->src[0], *s1 = &op->src[1], *s2 = &op->src[2];
    int weights = bt_op_has_weights(op->code);
    if (weights && s0->fmt.type == BT_TYPE_VQ) { /* cu_vq.c */
        const char *vq = bt_cu_vq_why(s0);
        if (vq) return vq;
    } else if (weights) {
        struct bt_cu_wfmt wf;
        if (!bt_cu_wfmt(c, &s0->fmt, s0->cols, &wf)) return "weight format not supported";
        if (s0->fmt.type == BT_TYPE_F32 && (s0->off % 4 || wf.row_bytes % 4))
            return "F32 weight view offset not a multiple of 4 bytes";
    }
    if (d->off % 4 || (!weights && s0->off % 4)) return "view offset not a multiple of 4 bytes";
    switch (op->code) {
    case BT_OP_RMSNORM: case BT_OP_ROPE: case BT_OP_SWIGLU: case BT_OP_ADD: case BT_OP_MATMUL:
    case BT_OP_RELU2:
        if (s1->off % 4) return "view offset not a multiple of 4 bytes";
        if (op->code == BT_OP_ROPE && (int64_t)op->pos0 + d->rows > (1ll << 31)) return "positions out of range";
        return NULL;
    case BT_OP_ATTN:
        if (op->head_dim > BT_CU_HDMAX) return "head_dim above 512";
        if (d->rows > 65535) return "more than 65535 query rows";
        return s1->off % 4 || s2->off % 4 ? "view offset not a multiple of 4 bytes" : NULL;
    case BT_OP_KMEANS:
        return s1->off % 4 || (s2->buf && s2->off % 4) ? "view offset not a multiple of 4 bytes" : NULL;
    case BT_OP_GEMM: case BT_OP_CHOL_INV: /* cu_la.c */
        return s1->off % 4 ? "view offset not a multiple of 4 bytes" : NULL;
    case BT_OP_GET_ROWS: case BT_OP_CPY: case BT_OP_DEQUANT: case BT_OP_QUANT_ROW: case BT_OP_SCALE:
        return NULL;
    }
    return "not implemented by the cuda backend"; /* ops of later ABI versions */
}

int bt_cu_supports_op(void *ctx, const struct bt_op *op) {
    return op && op_check(ctx, op) == NULL;
}

static bt_status view_ok(struct bt_cu_ctx *c, const struct bt_op *op, const char *which,
                         const struct bt_view *v, bt_err *err) {
    uint64_t n = bt_view_bytes(v, c->host);
    if (!v->buf)
        return c->host->set_error(err, BT_E_INVAL, "cuda: %s: %s has no buffer", bt_op_name(op->code), which);
    if (v->off > v->buf->n || n > v->buf->n - v->off)
        return c->host->set_error(err, BT_E_INVAL, "cuda: %s: %s [%llu, +%llu) lies outside its "
                                  "buffer of %llu bytes", bt_op_name(op->code), which,
                                  (unsigned long long)v->off, (unsigned long long)n,
                                  (unsigned long long)v->buf->n);
    return BT_OK;
}

#define F32P(v) ((float *)(void *)((v)->buf->p + (v)->off))

/* ---- run -------------------------------------------------------------------------------------- */
bt_status bt_cu_check_one(struct bt_cu_ctx *c, const struct bt_op *op, bt_err *err) {
    const char *why = op_check(c, op);
    if (why) {
        char fs[32] = "";
        bt_fmt_str(&op->src[0].fmt, fs, sizeof fs);
        return c->host->set_error(err, BT_E_UNSUPPORTED, "cuda: op %s (code %u) on %s: %s",
                                  bt_op_name(op->code), op->code, fs, why);
    }
    int nsrc = op->code == BT_OP_KMEANS && op->src[2].buf ? 3 : bt_op_n_src(op->code);
    static const char *const which[3] = {"src0", "src1", "src2"};
    bt_status st = view_ok(c, op, "dst", &op->dst, err);
    for (int i = 0; !st && i < nsrc && i < 3; i++) st = view_ok(c, op, which[i], &op->src[i], err);
    if (!st && bt_op_has_weights(op->code) && op->src[0].fmt.type == BT_TYPE_VQ)
        st = bt_cu_vq_perm(c, &op->src[0], err);
    return st;
}

bt_status bt_cu_run_one(struct bt_cu_ctx *c, const struct bt_op *op, bt_err *err) {
    bt_status st = bt_cu_check_one(c, op, err);
    if (st) return st;
    const struct bt_view *d = &op->dst, *a = &op->src[0], *b = &op->src[1];
    int64_t n = d->rows * d->cols;
    cudaError_t e = cudaSuccess;
    d->buf->perm_ok = 0; /* written by a kernel: a vq permutation in it is checked again */
    switch (op->code) {
    case BT_OP_GET_ROWS: return bt_cu_get_rows(c, op, err);
    case BT_OP_MATMUL: return bt_cu_matmul(c, op, err);
    case BT_OP_DEQUANT: return bt_cu_dequant(c, op, err);
    case BT_OP_GEMM: return bt_cu_gemm(c, op, err);
    case BT_OP_CHOL_INV: return bt_cu_chol_inv(c, op, err);
    case BT_OP_ATTN:
        e = bt_cuk_attn(c->st, F32P(a), F32P(b), F32P(&op->src[2]), (int)d->rows, op->pos0,
                        op->n_head, op->n_head_kv, op->head_dim, op->scale, F32P(d));
        break;
    case BT_OP_RMSNORM:
        e = bt_cuk_rmsnorm(c->st, F32P(a), F32P(b), d->rows, d->cols, op->eps, F32P(d));
        break;
    case BT_OP_ROPE:
        e = bt_cuk_rope(c->st, F32P(a), F32P(b), d->rows, d->cols, op->head_dim, op->n_rot,
                        op->halves != 0, op->pos0, F32P(d));
        break;
    case BT_OP_CPY:
        if (a->buf == d->buf && a->off == d->off) return BT_OK; /* the same range */
        e = cudaMemcpyAsync(F32P(d), F32P(a), (size_t)n * 4, cudaMemcpyDeviceToDevice, c->st);
        break;
    case BT_OP_SWIGLU: e = bt_cuk_swiglu(c->st, F32P(a), F32P(b), n, F32P(d)); break;
    case BT_OP_ADD: e = bt_cuk_add(c->st, F32P(a), F32P(b), n, F32P(d)); break;
    case BT_OP_RELU2: e = bt_cuk_relu2(c->st, F32P(a), F32P(b), n, F32P(d)); break;
    case BT_OP_QUANT_ROW: e = bt_cuk_quant_row(c->st, F32P(a), d->rows, d->cols, F32P(d)); break;
    case BT_OP_SCALE: e = bt_cuk_scale(c->st, F32P(a), op->scale, n, F32P(d)); break;
    case BT_OP_KMEANS: {
        const struct bt_view *w = &op->src[2];
        e = bt_cuk_kmeans(c->st, F32P(a), a->rows, a->cols, F32P(b), b->rows,
                          w->buf ? F32P(w) : NULL, (int32_t *)(void *)(d->buf->p + d->off));
        break;
    }
    default:
        return c->host->set_error(err, BT_E_UNSUPPORTED, "cuda: unknown op code %u", op->code);
    }
    return e == cudaSuccess ? BT_OK : bt_cu_fail(c, err, bt_op_name(op->code), "kernel launch", e);
}

bt_status bt_cu_run(void *ctx, const struct bt_op *ops, uint32_t n, bt_err *err) {
    struct bt_cu_ctx *c = ctx;
    if (!ops && n) return c->host->set_error(err, BT_E_INVAL, "cuda: run with a NULL op list");
    bt_cu_bind(c);
    if (c->graphs && n > 1) {
        int ran = 0;
        bt_status st = bt_cu_run_graph(c, ops, n, &ran, err);
        if (ran || st) return st;
    }
    for (uint32_t i = 0; i < n; i++) {
        bt_status st = bt_cu_run_one(c, &ops[i], err);
        if (st) return st;
    }
    return BT_OK;
}
