/* ocl_ops.c - the op interface of the OpenCL backend: the checks shared by supports_op and run
 * (the ABI's rules from bt_op_check plus this backend's alignment and grid limits), view
 * bounds, the kernel launch helper, and the non-weight ops (RMSNORM, ROPE, CPY, SWIGLU, ADD,
 * ATTN, KMEANS). Weight ops (MATMUL, DEQUANT, GET_ROWS) are in ocl_matmul.c. */
#include "ocl_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>


/* ---- checks ---------------------------------------------------------------------------------- */
/* the same range of the same buffer (an in-place op: nothing to copy first) */
static int same_range(const struct bt_ocl_ctx *c, const struct bt_view *a, const struct bt_view *b) {
    return a->buf == b->buf && a->off == b->off && bt_view_bytes(a, c->host) == bt_view_bytes(b, c->host);
}

/* NULL if op is well-formed and runnable here, else why not: the ABI's rules (bt_op_check:
 * shapes, sizes, aliasing), then this backend's limits (formats with kernels, alignment, grid) */
static const char *op_check(const struct bt_ocl_ctx *c, const struct bt_op *op) {
    const char *why = bt_op_check(op, c->host);
    if (why) return why;
    const struct bt_view *d = &op->dst, *s0 = &op->src[0], *s1 = &op->src[1], *s2 = &op->src[2];
    int weights = bt_op_has_weights(op->code);
    if (weights) {
        if (!bt_ocl_fmt_ok(&s0->fmt)) return "weight format not supported";
        if (s0->off % (s0->fmt.type == BT_TYPE_F32 ? 4 : 2))
            return "weight view offset not aligned to 4 (F32) / 2 bytes";
    }
    if (d->off % 4 || (!weights && s0->off % 4)) return "view offset not a multiple of 4 bytes";
    switch (op->code) {
    case BT_OP_RMSNORM: case BT_OP_ROPE: case BT_OP_SWIGLU: case BT_OP_ADD: case BT_OP_MATMUL:
    case BT_OP_RELU2:
        if (s1->off % 4) return "view offset not a multiple of 4 bytes";
        if (op->code == BT_OP_ROPE && (int64_t)op->pos0 + d->rows > (1ll << 31)) return "positions out of range";
        if (op->code == BT_OP_MATMUL && d->rows > 65535 * (int64_t)BT_OCL_TN) return "too many tokens";
        return NULL;
    case BT_OP_ATTN:
        if (op->head_dim > BT_OCL_HDMAX) return "head_dim above 512";
        if (d->rows > 65535 || op->n_head > 65535) return "too many queries or heads";
        return s1->off % 4 || s2->off % 4 ? "view offset not a multiple of 4 bytes" : NULL;
    case BT_OP_KMEANS:
        return s1->off % 4 || (s2->buf && s2->off % 4) ? "view offset not a multiple of 4 bytes" : NULL;
    case BT_OP_GEMM: case BT_OP_CHOL_INV: /* ABI 2.3 (second-order engine): on the host */
        return "not implemented by this backend";
    case BT_OP_QUANT_ROW:
        return d->rows > 65535 * 256 ? "too many rows" : NULL;
    case BT_OP_GET_ROWS: case BT_OP_CPY: case BT_OP_DEQUANT: case BT_OP_SCALE:
        return NULL;
    }
    return "not implemented by this backend"; /* ops of later ABI versions */
}

int bt_ocl_supports_op(void *ctx, const struct bt_op *op) {
    return op && op_check(ctx, op) == NULL;
}

static bt_status view_ok(struct bt_ocl_ctx *c, const struct bt_op *op, const char *which,
                         const struct bt_view *v, int write, bt_err *err) {
    uint64_t n = bt_view_bytes(v, c->host);
    if (!v->buf)
        return c->host->set_error(err, BT_E_INVAL, "opencl: %s: %s has no buffer",
                                  bt_op_name(op->code), which);
    if (v->off > v->buf->n || n > v->buf->n - v->off)
        return c->host->set_error(err, BT_E_INVAL, "opencl: %s: %s [%llu, +%llu) lies outside "
                                  "its buffer of %llu bytes", bt_op_name(op->code), which,
                                  (unsigned long long)v->off, (unsigned long long)n,
                                  (unsigned long long)v->buf->n);
    if (write && v->buf->wrapped)
        return c->host->set_error(err, BT_E_INVAL, "opencl: %s: %s is a wrapped read-only buffer",
                                  bt_op_name(op->code), which);
    return BT_OK;
}

/* ---- launching ------------------------------------------------------------------------------- */
bt_status bt_ocl_launch(struct bt_ocl_ctx *c, cl_kernel k, const char *what, cl_uint dims,
                        const size_t *gws, const size_t *lws, bt_err *err, ...) {
    va_list ap;
    va_start(ap, err);
    cl_int e = CL_SUCCESS;
    for (cl_uint i = 0; e == CL_SUCCESS; i++) {
        int ty = va_arg(ap, int);
        if (ty == BT_OCL_A_END) break;
        if (ty == BT_OCL_A_MEM) {
            cl_mem m = va_arg(ap, cl_mem);
            e = clSetKernelArg(k, i, sizeof m, &m);
        } else if (ty == BT_OCL_A_U64) {
            cl_ulong v = va_arg(ap, uint64_t);
            e = clSetKernelArg(k, i, sizeof v, &v);
        } else if (ty == BT_OCL_A_I32) {
            cl_int v = va_arg(ap, int);
            e = clSetKernelArg(k, i, sizeof v, &v);
        } else {
            cl_float v = (cl_float)va_arg(ap, double);
            e = clSetKernelArg(k, i, sizeof v, &v);
        }
    }
    va_end(ap);
    if (e != CL_SUCCESS) return bt_ocl_fail(c, err, what, "clSetKernelArg", e);
    for (cl_uint i = 0; i < dims; i++)
        if (!gws[i]) return BT_OK; /* nothing to do */
    e = clEnqueueNDRangeKernel(c->q, k, dims, NULL, gws, lws, 0, NULL, NULL);
    return e == CL_SUCCESS ? BT_OK : bt_ocl_fail(c, err, what, "clEnqueueNDRangeKernel", e);
}

#define MEM(v) BT_OCL_A_MEM, (v)->buf->mem, BT_OCL_A_U64, (uint64_t)(v)->off
#define I32(x) BT_OCL_A_I32, (int)(x)
#define U64(x) BT_OCL_A_U64, (uint64_t)(x)
#define F32(x) BT_OCL_A_F32, (double)(x)
#define END    BT_OCL_A_END

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/* ---- attention ------------------------------------------------------------------------------- */
static bt_status attn(struct bt_ocl_ctx *c, const struct bt_op *op, bt_err *err) {
    int ntok = (int)op->dst.rows, nh = op->n_head, hd = op->head_dim;
    int64_t npos_max = (int64_t)op->pos0 + ntok;
    int dl = 1;
    while (dl < hd && dl < BT_OCL_AW) dl <<= 1;
    /* few queries over a long context: split positions into segments to fill the device */
    int64_t wgs = (int64_t)ntok * nh, target = 4 * (int64_t)c->cus;
    int64_t nseg = 1, seg_len = npos_max;
    if (wgs < target && npos_max > 2 * BT_OCL_AW) {
        int64_t a = (npos_max + 2 * BT_OCL_AW - 1) / (2 * BT_OCL_AW), b = (target + wgs - 1) / wgs;
        nseg = a < b ? a : b;
        seg_len = round_up((size_t)((npos_max + nseg - 1) / nseg), BT_OCL_AW);
        nseg = (npos_max + seg_len - 1) / seg_len;
    }
    if (nseg > 1) {
        size_t need = (size_t)wgs * (size_t)nseg * (size_t)(hd + 2) * sizeof(float);
        bt_status st = bt_ocl_scratch(c, &c->part, &c->part_cap, need, "attn", err);
        if (st) return st;
    }
    size_t gws[3] = {(size_t)nseg * BT_OCL_AW, (size_t)nh, (size_t)ntok}, lws[3] = {BT_OCL_AW, 1, 1};
    bt_status st = bt_ocl_launch(c, c->mk[BT_OCL_K_ATTN], "attn", 3, gws, lws, err,
                                 MEM(&op->src[0]), MEM(&op->src[1]), MEM(&op->src[2]),
                                 MEM(&op->dst), BT_OCL_A_MEM, nseg > 1 ? c->part : NULL, I32(hd),
                                 I32(nh), I32(op->n_head_kv), I32(op->pos0), F32(op->scale),
                                 I32(seg_len), I32(nseg), I32(dl), END);
    if (st || nseg == 1) return st;
    size_t g2[3] = {(size_t)hd, (size_t)nh, (size_t)ntok};
    return bt_ocl_launch(c, c->mk[BT_OCL_K_ATTN_COMBINE], "attn", 3, g2, NULL, err,
                         BT_OCL_A_MEM, c->part, MEM(&op->dst), I32(hd), I32(nh), I32(nseg), END);
}

/* ---- run ------------------------------------------------------------------------------------- */
static bt_status run_one(struct bt_ocl_ctx *c, const struct bt_op *op, bt_err *err) {
    const char *why = op_check(c, op);
    if (why) {
        char fs[32] = "";
        bt_fmt_str(&op->src[0].fmt, fs, sizeof fs);
        return c->host->set_error(err, BT_E_UNSUPPORTED, "opencl: op %s (code %u) on %s: %s",
                                  bt_op_name(op->code), op->code, fs, why);
    }
    int nsrc = op->code == BT_OP_ATTN ? 3 : op->code == BT_OP_KMEANS && op->src[2].buf ? 3
             : (op->code == BT_OP_RMSNORM || op->code == BT_OP_ROPE || op->code == BT_OP_SWIGLU ||
                op->code == BT_OP_ADD || op->code == BT_OP_MATMUL || op->code == BT_OP_KMEANS ||
                op->code == BT_OP_RELU2) ? 2 : 1;
    static const char *const which[3] = {"src0", "src1", "src2"};
    bt_status st = view_ok(c, op, "dst", &op->dst, 1, err);
    for (int i = 0; !st && i < nsrc; i++) st = view_ok(c, op, which[i], &op->src[i], 0, err);
    if (st) return st;
    const struct bt_view *d = &op->dst, *a = &op->src[0], *b = &op->src[1];
    uint64_t n = (uint64_t)d->rows * (uint64_t)d->cols;
    size_t gws[3], lws[3];
    switch (op->code) {
    case BT_OP_GET_ROWS: return bt_ocl_get_rows(c, op, err);
    case BT_OP_MATMUL: return bt_ocl_matmul(c, op, err);
    case BT_OP_DEQUANT: return bt_ocl_dequant(c, op, err);
    case BT_OP_ATTN: return attn(c, op, err);
    case BT_OP_RMSNORM:
        gws[0] = (size_t)d->rows * 256;
        lws[0] = 256;
        return bt_ocl_launch(c, c->mk[BT_OCL_K_RMSNORM], "rmsnorm", 1, gws, lws, err, MEM(a),
                             MEM(b), MEM(d), I32(d->cols), F32(op->eps), END);
    case BT_OP_ROPE:
        gws[0] = (size_t)(op->head_dim - op->n_rot / 2);
        gws[1] = (size_t)(d->cols / op->head_dim);
        gws[2] = (size_t)d->rows;
        return bt_ocl_launch(c, c->mk[BT_OCL_K_ROPE], "rope", 3, gws, NULL, err, MEM(a), MEM(d),
                             MEM(b), I32(d->cols), I32(op->head_dim), I32(op->n_rot),
                             I32(op->halves != 0), I32(op->pos0), END);
    case BT_OP_CPY: {
        if (same_range(c, d, a)) return BT_OK;
        cl_int e = clEnqueueCopyBuffer(c->q, a->buf->mem, d->buf->mem, (size_t)a->off,
                                       (size_t)d->off, (size_t)(n * 4), 0, NULL, NULL);
        return e == CL_SUCCESS ? BT_OK : bt_ocl_fail(c, err, "cpy", "clEnqueueCopyBuffer", e);
    }
    case BT_OP_QUANT_ROW:
        gws[0] = (size_t)d->rows * 256;
        lws[0] = 256;
        return bt_ocl_launch(c, c->mk[BT_OCL_K_QUANT_ROW], "quant_row", 1, gws, lws, err, MEM(a),
                             MEM(d), I32(d->cols), END);
    case BT_OP_SWIGLU: case BT_OP_ADD: case BT_OP_RELU2:
        gws[0] = round_up((size_t)n, 256);
        lws[0] = 256;
        return bt_ocl_launch(c, c->mk[op->code == BT_OP_ADD ? BT_OCL_K_ADD : op->code == BT_OP_RELU2
                                      ? BT_OCL_K_RELU2 : BT_OCL_K_SWIGLU],
                             bt_op_name(op->code), 1, gws, lws, err, MEM(a), MEM(b), MEM(d),
                             U64(n), END);
    case BT_OP_SCALE:
        gws[0] = round_up((size_t)n, 256);
        lws[0] = 256;
        return bt_ocl_launch(c, c->mk[BT_OCL_K_SCALE], "scale", 1, gws, lws, err, MEM(a), MEM(d),
                             F32(op->scale), U64(n), END);
    case BT_OP_KMEANS: {
        const struct bt_view *w = &op->src[2];
        gws[0] = round_up((size_t)d->rows, 64);
        lws[0] = 64;
        return bt_ocl_launch(c, c->mk[BT_OCL_K_KMEANS], "kmeans", 1, gws, lws, err, MEM(a), MEM(b),
                             BT_OCL_A_MEM, w->buf ? w->buf->mem : NULL, U64(w->buf ? w->off : 0),
                             I32(w->buf != NULL), I32(d->rows), I32(a->cols), I32(b->rows), MEM(d),
                             END);
    }
    }
    return c->host->set_error(err, BT_E_UNSUPPORTED, "opencl: unknown op code %u", op->code);
}

bt_status bt_ocl_run(void *ctx, const struct bt_op *ops, uint32_t n, bt_err *err) {
    struct bt_ocl_ctx *c = ctx;
    if (!ops && n) return c->host->set_error(err, BT_E_INVAL, "opencl: run with a NULL op list");
    c->q8_valid = 0;
    for (uint32_t i = 0; i < n; i++) {
        bt_status st = run_one(c, &ops[i], err);
        if (st) return st;
    }
    cl_int e = clFlush(c->q);
    return e == CL_SUCCESS ? BT_OK : bt_ocl_fail(c, err, "run", "clFlush", e);
}
