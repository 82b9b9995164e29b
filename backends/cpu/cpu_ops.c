/* cpu_ops.c - the op interface of the CPU backends: checks (shared by supports_op and run),
 * view resolution with bounds checks, and the element-wise ops (RMSNORM, ROPE, CPY, SWIGLU, ADD,
 * GET_ROWS, KMEANS). Weight products go to cpu_matmul.c, attention to cpu_attn*.c, GEMM and
 * CHOL_INV to cpu_la.c. The scalar
 * "cpu" backend defines the semantics of every op for all backends. */
#include "cpu_act.h"
#include "cpu_kern.h"

#include <math.h>
#include <stdio.h>
#include <string.h>


/* NULL if op is well-formed and runnable here, else why not: the ABI's rules (bt_op_check)
 * plus the formats these kernels decode */
static const char *op_check(const struct bt_cpu_ctx *c, const struct bt_op *op) {
    const char *why = bt_op_check(op, c->host);
    if (!why && bt_op_has_weights(op->code) && !bt_cpu_fmt_ok(&op->src[0].fmt))
        why = "weight format not supported";
    return why;
}

static bt_status view_ptr(struct bt_cpu_ctx *c, const struct bt_op *op, const char *which,
                          const struct bt_view *v, int write, void **p, bt_err *err) {
    uint64_t n = bt_view_bytes(v, c->host);
    if (!v->buf)
        return c->host->set_error(err, BT_E_INVAL, "cpu: %s: %s has no buffer", bt_op_name(op->code), which);
    if (v->off > v->buf->n || n > v->buf->n - v->off)
        return c->host->set_error(err, BT_E_INVAL, "cpu: %s: %s [%llu, +%llu) lies outside its "
                                  "buffer of %llu bytes", bt_op_name(op->code), which,
                                  (unsigned long long)v->off, (unsigned long long)n,
                                  (unsigned long long)v->buf->n);
    if (write && v->buf->wrapped)
        return c->host->set_error(err, BT_E_INVAL, "cpu: %s: %s is a wrapped read-only buffer",
                                  bt_op_name(op->code), which);
    *p = v->buf->p + v->off;
    return BT_OK;
}

int bt_cpu_supports_op(void *ctx, const struct bt_op *op) {
    return op && op_check(ctx, op) == NULL;
}

/* ---- element-wise ops, in parallel over rows ------------------------------------------------ */
struct ew_job {
    const struct bt_op *op;
    float              *d;
    const float        *a, *b;
};

static void rmsnorm_row(const float *x, const float *w, int64_t n, float eps, float *y) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float sc = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (int64_t i = 0; i < n; i++) y[i] = w[i] * (x[i] * sc);
}

/* BitNet's 8-bit per-token activations: s = 127 / max|x|, q = clamp(rint(x s), -128, 127)
 * (rint: round half to even, as torch.round), y = q / s */
static void quant_row(const float *x, int64_t n, float *y) {
    float mx = 0.0f;
    for (int64_t i = 0; i < n; i++) mx = fabsf(x[i]) > mx ? fabsf(x[i]) : mx;
    float s = 127.0f / (mx > 1e-5f ? mx : 1e-5f);
    for (int64_t i = 0; i < n; i++) {
        float q = rintf(x[i] * s);
        y[i] = (q > 127.0f ? 127.0f : q < -128.0f ? -128.0f : q) / s;
    }
}

static void rope_row(const struct bt_op *op, const float *inv, int pos, float *v, int64_t cols) {
    float cs[2048];
    int half = op->n_rot / 2;
    for (int i = 0; i < half; i++) {
        float th = (float)pos * inv[i];
        cs[2 * i] = cosf(th);
        cs[2 * i + 1] = sinf(th);
    }
    for (int64_t h = 0; h < cols / op->head_dim; h++) {
        float *p = v + h * op->head_dim;
        for (int i = 0; i < half; i++) {
            int a = op->halves ? i : 2 * i, b = op->halves ? i + half : 2 * i + 1;
            float c = cs[2 * i], s = cs[2 * i + 1], x0 = p[a], x1 = p[b];
            p[a] = x0 * c - x1 * s;
            p[b] = x0 * s + x1 * c;
        }
    }
}

static void kmeans_row(const struct bt_op *op, const float *x, const float *C, const float *w,
                       int32_t *out) {
    int64_t d = op->src[0].cols, K = op->src[1].rows;
    double best = INFINITY;
    int32_t bk = 0;
    for (int64_t k = 0; k < K; k++) {
        const float *c = C + k * d;
        double s = 0.0;
        for (int64_t j = 0; j < d; j++) {
            double e = (double)x[j] - c[j];
            s += (w ? w[j] : 1.0) * e * e;
        }
        if (s < best) { best = s; bk = (int32_t)k; }
    }
    *out = bk;
}

static void ew_rows(void *arg, int64_t r0, int64_t r1, int tid) {
    const struct ew_job *j = arg;
    const struct bt_op *op = j->op;
    int64_t n = op->dst.cols;
    (void)tid;
    for (int64_t r = r0; r < r1; r++) {
        float *d = j->d + r * n;
        const float *a = j->a + r * n, *b = j->b ? j->b + r * n : NULL;
        switch (op->code) {
        case BT_OP_RMSNORM: rmsnorm_row(a, j->b, n, op->eps, d); break;
        case BT_OP_ROPE:
            if (d != a) memmove(d, a, (size_t)n * sizeof(float));
            rope_row(op, j->b, op->pos0 + (int)r, d, n);
            break;
        case BT_OP_CPY: memmove(d, a, (size_t)n * sizeof(float)); break;
        case BT_OP_SWIGLU:
            for (int64_t i = 0; i < n; i++) { float g = a[i]; d[i] = b[i] * (g / (1.0f + expf(-g))); }
            break;
        case BT_OP_ADD:
            for (int64_t i = 0; i < n; i++) d[i] = a[i] + b[i];
            break;
        case BT_OP_RELU2:
            for (int64_t i = 0; i < n; i++) { float g = a[i] > 0.0f ? a[i] : 0.0f; d[i] = b[i] * (g * g); }
            break;
        case BT_OP_QUANT_ROW: quant_row(a, n, d); break;
        case BT_OP_SCALE:
            for (int64_t i = 0; i < n; i++) d[i] = a[i] * op->scale;
            break;
        case BT_OP_KMEANS: {
            int64_t dd = op->src[0].cols;
            kmeans_row(op, j->a + r * dd, j->b, (const float *)(const void *)op->ids,
                       (int32_t *)(void *)j->d + r);
            break;
        }
        }
    }
}

static void ew_run(struct bt_cpu_ctx *c, struct ew_job *j, int64_t rows, int64_t work) {
    if (rows < 4 || work < (1 << 14)) ew_rows(j, 0, rows, 0); /* a pool wake-up costs more */
    else c->host->parallel_for(rows, 1, ew_rows, j);
}

/* ---- int8 activations, cached for BT_OPF_SAME_INPUT ----------------------------------------- */
struct actq_job {
    const float *X;
    int64_t      cols;
    int8_t      *xq;
    float       *xs;
    int32_t     *bsum;
};

static void actq_rows(void *arg, int64_t t0, int64_t t1, int tid) {
    const struct actq_job *j = arg;
    int64_t nb = j->cols / BT_ACT_Q8_BLOCK, nbs = j->cols / 32;
    (void)tid;
    for (int64_t t = t0; t < t1; t++) {
        int8_t *q = j->xq + t * j->cols;
        bt_cpu_act_quantize(j->X + t * j->cols, j->cols, BT_ACT_Q8_BLOCK, q, j->xs + t * nb);
        for (int64_t b = 0; b < nbs; b++) {
            int32_t s = 0;
            for (int i = 0; i < 32; i++) s += q[b * 32 + i];
            j->bsum[t * nbs + b] = s;
        }
    }
}

static bt_status act_q8(struct bt_cpu_ctx *c, const struct bt_op *op, const float *X, bt_err *err) {
    int64_t ntok = op->src[1].rows, cols = op->src[1].cols;
    if ((op->flags & BT_OPF_SAME_INPUT) && c->q8_src == X && c->q8_ntok == ntok && c->q8_cols == cols)
        return BT_OK;
    size_t n = (size_t)(ntok * cols);
    if (n > c->q8_cap) {
        c->host->free(c->xq); c->host->free(c->xs); c->host->free(c->bsum);
        c->xq = c->host->alloc(n);
        c->xs = c->host->alloc(n / BT_ACT_Q8_BLOCK * sizeof(float) + 64);
        c->bsum = c->host->alloc(n / 32 * sizeof(int32_t) + 64);
        c->q8_cap = c->xq && c->xs && c->bsum ? n : 0;
        if (!c->q8_cap) {
            c->q8_src = NULL;
            return c->host->set_error(err, BT_E_NOMEM, "cpu: matmul: out of memory for int8 "
                                      "activations");
        }
    }
    struct actq_job j = {X, cols, c->xq, c->xs, c->bsum};
    if (ntok < 4) actq_rows(&j, 0, ntok, 0);
    else c->host->parallel_for(ntok, 8, actq_rows, &j);
    c->q8_src = X;
    c->q8_ntok = ntok;
    c->q8_cols = cols;
    return BT_OK;
}

/* KMEANS through the ISA's kernel: centroids component-major in blocks of 8 (padding far away) */
struct km_job {
    bt_cpu_kmeans_fn fn;
    const float *P, *cs, *w;
    int64_t d, K;
    int32_t *idx;
};
static void km_rows(void *arg, int64_t i0, int64_t i1, int tid) {
    const struct km_job *j = arg;
    (void)tid;
    j->fn(j->P, j->d, j->cs, j->K, j->w, i0, i1, j->idx);
}
static bt_status kmeans_fast(struct bt_cpu_ctx *c, const struct bt_op *op, const float *P,
                             const float *C, const float *w, void *out, bt_err *err) {
    int64_t n = op->src[0].rows, d = op->src[0].cols, K = op->src[1].rows, nb = (K + 7) / 8;
    float *cs = c->host->alloc(sizeof(float) * (size_t)(nb * d * 8));
    if (!cs) return c->host->set_error(err, BT_E_NOMEM, "cpu: kmeans: out of memory");
    for (int64_t kb = 0; kb < nb; kb++)
        for (int64_t e = 0; e < d; e++)
            for (int64_t l = 0; l < 8; l++) {
                int64_t k = kb * 8 + l;
                cs[(kb * d + e) * 8 + l] = k < K ? C[k * d + e] : 1e30f;
            }
    struct km_job j = {c->isa->kmeans, P, cs, w, d, K, out};
    c->host->parallel_for(n, (int64_t)(1 << 16) / (nb * 8 * d + 1) + 1, km_rows, &j);
    c->host->free(cs);
    return BT_OK;
}

/* weight ops on the vq format (cpu_vq.c); int8 activations are the f32 product of their
 * dequantized values, as for float weights */
static bt_status run_vq(struct bt_cpu_ctx *c, const struct bt_op *op, const void *W, const float *X,
                        float *Y, bt_err *err) {
    int64_t rows = op->dst.rows, cols = op->src[0].cols;
    switch (op->code) {
    case BT_OP_GET_ROWS:
        for (int64_t t = 0; t < rows; t++)
            if (op->ids[t] < 0 || op->ids[t] >= op->src[0].rows)
                return c->host->set_error(err, BT_E_INVAL, "cpu: get_rows: row %d out of range "
                                          "[0, %lld)", op->ids[t], (long long)op->src[0].rows);
        return bt_cpu_vq_rows(c, &op->src[0], W, op->ids, rows, Y, err);
    case BT_OP_DEQUANT:
        return bt_cpu_vq_op(c, &op->src[0], W, NULL, 0, Y, err);
    default: break;
    }
    if (op->act != BT_ACT_Q8) return bt_cpu_vq_op(c, &op->src[0], W, X, rows, Y, err);
    bt_status st = act_q8(c, op, X, err);
    if (st) return st;
    float *xf = c->host->alloc((size_t)(rows * cols) * sizeof(float));
    if (!xf) return c->host->set_error(err, BT_E_NOMEM, "cpu: matmul: out of memory");
    for (int64_t t = 0; t < rows; t++)
        bt_cpu_act_dequantize(c->xq + t * cols, c->xs + t * (cols / BT_ACT_Q8_BLOCK), cols,
                              BT_ACT_Q8_BLOCK, xf + t * cols);
    st = bt_cpu_vq_op(c, &op->src[0], W, xf, rows, Y, err);
    c->host->free(xf);
    return st;
}

/* ---- run -------------------------------------------------------------------------------------- */
static bt_status run_one(struct bt_cpu_ctx *c, const struct bt_op *op, bt_err *err) {
    const char *why = op_check(c, op);
    char fs[32] = "";
    if (why) {
        bt_fmt_str(&op->src[0].fmt, fs, sizeof fs);
        return c->host->set_error(err, BT_E_UNSUPPORTED, "cpu: op %s (code %u) on %s: %s (dst %lldx%lld, "
                                  "src0 %lldx%lld, src1 %lldx%lld)", bt_op_name(op->code), op->code, fs, why,
                                  (long long)op->dst.rows, (long long)op->dst.cols,
                                  (long long)op->src[0].rows, (long long)op->src[0].cols,
                                  (long long)op->src[1].rows, (long long)op->src[1].cols);
    }
    void *d = NULL, *a = NULL, *b = NULL, *w = NULL;
    bt_status st = view_ptr(c, op, "dst", &op->dst, 1, &d, err);
    if (!st) st = view_ptr(c, op, "src0", &op->src[0], 0, &a, err);
    int nsrc = op->code == BT_OP_KMEANS && op->src[2].buf ? 3 : bt_op_n_src(op->code);
    if (!st && nsrc > 1) st = view_ptr(c, op, "src1", &op->src[1], 0, &b, err);
    if (!st && nsrc > 2) st = view_ptr(c, op, "src2", &op->src[2], 0, &w, err);
    if (st) return st;
    if (c->q8_src) { /* an op writing over the cached activations ends BT_OPF_SAME_INPUT */
        const uint8_t *q0 = (const uint8_t *)c->q8_src, *d0 = d;
        uint64_t qn = (uint64_t)c->q8_ntok * (uint64_t)c->q8_cols * 4u, dn = bt_view_bytes(&op->dst, c->host);
        if (d0 < q0 + qn && q0 < d0 + dn) c->q8_src = NULL;
    }
    struct ew_job j = {op, d, a, b};
    int64_t rows = op->dst.rows, cols = op->dst.cols;
    if (bt_op_has_weights(op->code) && op->src[0].fmt.type == BT_TYPE_VQ)
        return run_vq(c, op, a, b, d, err);
    if (op->code == BT_OP_GEMM || op->code == BT_OP_CHOL_INV) return bt_cpu_la(c, op, d, a, b, err);
    switch (op->code) {
    case BT_OP_GET_ROWS:
        for (int64_t t = 0; t < rows; t++) {
            if (op->ids[t] < 0 || op->ids[t] >= op->src[0].rows)
                return c->host->set_error(err, BT_E_INVAL, "cpu: get_rows: row %d out of range "
                                          "[0, %lld)", op->ids[t], (long long)op->src[0].rows);
            bt_cpu_get_row(c, &op->src[0].fmt, a, op->ids[t], cols, (float *)d + t * cols);
        }
        return BT_OK;
    case BT_OP_ATTN: {
        struct bt_cpu_attn at = {a, b, w, d, (int)rows, op->pos0, op->n_head, op->n_head_kv,
                                 op->head_dim, op->scale};
        int rc = c->attn ? c->attn(c->host, &at) : bt_cpu_attn_ref(c->host, &at);
        return rc ? c->host->set_error(err, BT_E_NOMEM, "cpu: attn: out of memory") : BT_OK;
    }
    case BT_OP_MATMUL:
        if (op->act == BT_ACT_Q8) {
            if ((st = act_q8(c, op, b, err))) return st;
            return bt_cpu_mm_q8(c, &op->src[0].fmt, a, op->src[0].rows, op->src[0].cols, c->xq,
                                c->xs, c->bsum, BT_ACT_Q8_BLOCK, rows, d, err);
        }
        return bt_cpu_mm_f32(c, &op->src[0].fmt, a, op->src[0].rows, op->src[0].cols, b, rows, d, err);
    case BT_OP_DEQUANT:
        return bt_cpu_dequant(c, &op->src[0].fmt, a, rows * cols, d, err);
    case BT_OP_KMEANS: {
        if (c->isa && c->isa->kmeans) return kmeans_fast(c, op, a, b, w, d, err);
        struct bt_op o2 = *op;
        o2.ids = w; /* weights (or NULL) travel in the ids slot of the copy */
        j.op = &o2;
        ew_run(c, &j, rows, rows * op->src[1].rows * op->src[0].cols);
        return BT_OK;
    }
    default:
        ew_run(c, &j, rows, rows * cols);
        return BT_OK;
    }
}

bt_status bt_cpu_run(void *ctx, const struct bt_op *ops, uint32_t n, bt_err *err) {
    struct bt_cpu_ctx *c = ctx;
    if (!ops && n) return c->host->set_error(err, BT_E_INVAL, "cpu: run with a NULL op list");
    c->q8_src = NULL; /* BT_OPF_SAME_INPUT refers to a product earlier in this list only */
    for (uint32_t i = 0; i < n; i++) {
        bt_status st = run_one(c, &ops[i], err);
        if (st) return st;
    }
    return BT_OK;
}

void bt_cpu_ctx_free(struct bt_cpu_ctx *c) {
    while (c->bufs) bt_cpu_buf_free(c, c->bufs); /* close frees every buffer still allocated */
    c->host->free(c->xq);
    c->host->free(c->xs);
    c->host->free(c->bsum);
    c->xq = NULL; c->xs = NULL; c->bsum = NULL;
    c->q8_cap = 0;
}
