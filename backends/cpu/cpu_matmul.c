/* cpu_matmul.c - weight products and decoding of the CPU backends on host pointers: argument
 * checks, kernel selection (ISA table, scalar fallback) and row splitting over
 * host->parallel_for. cpu_ops.c maps MATMUL / DEQUANT / GET_ROWS ops onto these. */
#include "cpu_act.h"
#include "cpu_kern.h"

#include <stdatomic.h>
#include <string.h>

/* Rows are handed to threads in units of BT_CPU_RU rows, and every output element is computed
 * by one thread with an order that does not depend on the split: results are identical for
 * any thread count. */
#define BT_CPU_RU 4
#define BT_CPU_GEMM_RT 16 /* rows decoded to f32 at once by gemm */

/* ---- selection ----------------------------------------------------------------------------- */
static const struct bt_cpu_isa *isa_of(const struct bt_cpu_ctx *c) {
    return c->isa ? c->isa : &bt_cpu_isa_ref;
}

static bt_cpu_gemv_f32_fn pick_gemv_f32(const struct bt_cpu_isa *isa, const struct bt_tfmt *f) {
    bt_cpu_gemv_f32_fn fn = isa->gemv_f32(f);
    return fn ? fn : bt_cpu_isa_ref.gemv_f32(f);
}

static bt_cpu_gemv_q8_fn pick_gemv_q8(const struct bt_cpu_isa *isa, const struct bt_tfmt *f) {
    bt_cpu_gemv_q8_fn fn = isa->gemv_q8(f);
    return fn ? fn : bt_cpu_isa_ref.gemv_q8(f);
}

static bt_cpu_decode_fn pick_decode(const struct bt_cpu_isa *isa, const struct bt_tfmt *f) {
    bt_cpu_decode_fn fn = isa->decode(f);
    return fn ? fn : bt_cpu_isa_ref.decode(f);
}

int bt_cpu_fmt_ok(const struct bt_tfmt *fmt) {
    struct bt_cpu_tgeom g;
    if (!fmt) return 0;
    switch (fmt->type) {
    case BT_TYPE_F32: case BT_TYPE_F16: case BT_TYPE_BF16: case BT_TYPE_Q8_0: case BT_TYPE_Q4_0:
    case BT_TYPE_TQ1_0: case BT_TYPE_TQ2_0:
        return 1;
    case BT_TYPE_MTQ: return bt_cpu_tgeom_of(fmt, &g);
    case BT_TYPE_VQ: return bt_vq_params_ok(fmt); /* cpu_vq.c */
    default: return bt_cpu_fmt_generic(fmt);
    }
}

int bt_cpu_fmt_generic(const struct bt_tfmt *fmt) {
    const struct bt_format *f = bt_format_get(fmt->type);
    uint32_t b = 0, bb = 0;
    if (!f || !(f->flags & BT_FMT_WEIGHT) || (f->flags & BT_FMT_PARAMS) || f->n_parts ||
        !f->to_f32 || BT_HAS(f, to_f32_rows) || BT_HAS(f, row_bytes))
        return 0;
    return bt_fmt_geometry(fmt, &b, &bb) && b <= 256 && 256 % b == 0;
}

/* common checks; on success *rb is the row size in bytes */
static bt_status check_w(struct bt_cpu_ctx *c, const char *fn, const struct bt_tfmt *fmt,
                         const void *W, int64_t rows, int64_t cols, size_t *rb, bt_err *err) {
    char fs[32];
    if (!fmt || !W || rows <= 0 || cols <= 0)
        return c->host->set_error(err, BT_E_INVAL, "cpu: %s: null weights or empty shape "
                                  "(%lld x %lld)", fn, (long long)rows, (long long)cols);
    bt_fmt_str(fmt, fs, sizeof(fs));
    if (!bt_cpu_fmt_ok(fmt))
        return c->host->set_error(err, BT_E_UNSUPPORTED, "cpu: %s: format %s not supported", fn, fs);
    *rb = bt_fmt_row_bytes(fmt, cols);
    if (!*rb)
        return c->host->set_error(err, BT_E_INVAL, "cpu: %s: %lld columns is not a whole number "
                                  "of %s blocks", fn, (long long)cols, fs);
    return BT_OK;
}

/* Bytes of weights (x tokens) per parallel chunk at least. A single-token product is split
 * finely: the pool's workers spin between the ~60 calls of a decode step, so a split costs
 * little, and a matrix left to one thread leaves the others idle. */
static size_t grain_bytes(int64_t ntok) { return ntok == 1 ? (size_t)16 << 10 : (size_t)256 << 10; }

/* ---- gemv ---------------------------------------------------------------------------------- */
struct gemv_job {
    const struct bt_tfmt    *fmt;  /* weight format */
    const uint8_t           *W;    /* first row */
    size_t                   rb;   /* bytes per row */
    int64_t                  rows; /* total rows */
    int64_t                  cols; /* columns */
    const float             *x;    /* f32 activations */
    bt_cpu_gemv_f32_fn       f32;  /* kernel */
    float                   *y;    /* (rows) output */
};

static void gemv_run(void *arg, int64_t u0, int64_t u1, int tid) {
    const struct gemv_job *j = arg;
    int64_t r0 = u0 * BT_CPU_RU, r1 = u1 * BT_CPU_RU;
    if (r1 > j->rows) r1 = j->rows;
    if (r0 >= r1) return;
    j->f32(j->fmt, j->W + (size_t)r0 * j->rb, j->rb, r1 - r0, j->cols, j->x, j->y + r0);
}

static void gemv_dispatch(struct bt_cpu_ctx *c, struct gemv_job *j) {
    int64_t units = (j->rows + BT_CPU_RU - 1) / BT_CPU_RU;
    int64_t grain = (int64_t)(grain_bytes(1) / (j->rb * BT_CPU_RU + 1)) + 1;
    c->host->parallel_for(units, grain, gemv_run, j);
}

static bt_status gemv_f32(struct bt_cpu_ctx *c, const struct bt_tfmt *fmt, const void *W,
                          int64_t rows, int64_t cols, const float *x, float *y, bt_err *err) {
    size_t rb;
    bt_status st = check_w(c, "matmul", fmt, W, rows, cols, &rb, err);
    if (st) return st;
    if (!x || !y) return c->host->set_error(err, BT_E_INVAL, "cpu: matmul: null x or y");
    struct gemv_job j = {fmt, W, rb, rows, cols, x, pick_gemv_f32(isa_of(c), fmt), y};
    gemv_dispatch(c, &j);
    return BT_OK;
}

/* ---- int8 activations: gemv_q8 and gemm_q8 ---------------------------------------------------- */
#define BT_CPU_Q8_PANEL 64 /* rows per panel in the per-token fallback (weights stay in cache) */
#define BT_CPU_Q8_STACK 4096 /* gemm scratch and run sums up to this size live on the stack */

struct q8_job {
    const struct bt_tfmt    *fmt;     /* weight format */
    const struct bt_host    *host;    /* scratch allocation */
    const uint8_t           *W;       /* first row */
    size_t                   rb;      /* bytes per row */
    int64_t                  rows;    /* total rows (= ldy) */
    int64_t                  cols;    /* columns */
    const struct bt_cpu_act *a;       /* token 0 (token t at the strides of bt_cpu_gemm_q8_fn) */
    int64_t                  ntok;    /* tokens */
    bt_cpu_gemm_q8_fn        gemm;    /* batched kernel, or NULL */
    bt_cpu_gemv_q8_fn        gemv;    /* per-token kernel when gemm is NULL */
    size_t                   scratch; /* scratch bytes per chunk for gemm */
    float                   *Y;       /* (ntok x rows) */
    atomic_int               nomem;   /* a worker could not get its scratch */
};

static void q8_run(void *arg, int64_t u0, int64_t u1, int tid) {
    struct q8_job *j = arg;
    int64_t r0 = u0 * BT_CPU_RU, r1 = u1 * BT_CPU_RU;
    if (r1 > j->rows) r1 = j->rows;
    if (r0 >= r1) return;
    if (j->gemm) {
        uint8_t buf[BT_CPU_Q8_STACK] __attribute__((aligned(64)));
        uint8_t *scr = j->scratch <= sizeof(buf) ? buf : NULL; /* no allocation per token */
        if (!scr && !(scr = j->host->alloc(j->scratch))) { atomic_store(&j->nomem, 1); return; }
        j->gemm(j->fmt, j->W + (size_t)r0 * j->rb, j->rb, r1 - r0, j->cols, j->a, j->ntok,
                j->Y + r0, j->rows, scr);
        if (scr != buf) j->host->free(scr);
        return;
    }
    int64_t nsb = j->cols / j->a->ablock, nbs = j->cols / 32;
    for (int64_t r = r0; r < r1; r += BT_CPU_Q8_PANEL) {
        int64_t nr = r1 - r < BT_CPU_Q8_PANEL ? r1 - r : BT_CPU_Q8_PANEL;
        for (int64_t t = 0; t < j->ntok; t++) {
            struct bt_cpu_act at = {j->a->xq + t * j->cols, j->a->xs + t * nsb, j->a->ablock,
                                    j->a->bsum + t * nbs};
            j->gemv(j->fmt, j->W + (size_t)r * j->rb, j->rb, nr, j->cols, &at, j->Y + t * j->rows + r);
        }
    }
}

/* int8 activations: every token gets exactly the floats of ntok = 1 */
bt_status bt_cpu_mm_q8(struct bt_cpu_ctx *c, const struct bt_tfmt *fmt, const void *W,
                       int64_t rows, int64_t cols, const int8_t *xq, const float *xs,
                       const int32_t *bsum, int64_t ablock, int64_t ntok, float *Y, bt_err *err) {
    const char *fn = "matmul(q8)";
    const struct bt_cpu_isa *isa = isa_of(c);
    size_t rb;
    bt_status st = check_w(c, fn, fmt, W, rows, cols, &rb, err);
    if (st) return st;
    if (!xq || !xs || !bsum || !Y || ntok <= 0)
        return c->host->set_error(err, BT_E_INVAL, "cpu: %s: null xq, xs or y, or ntok %lld <= 0",
                                  fn, (long long)ntok);
    if (ablock <= 0 || ablock % 32 || cols % ablock)
        return c->host->set_error(err, BT_E_INVAL, "cpu: %s: activation block %lld must be a "
                                  "multiple of 32 dividing cols %lld", fn, (long long)ablock,
                                  (long long)cols);
    bt_cpu_gemv_q8_fn q8 = pick_gemv_q8(isa, fmt);
    if (!q8) { /* float weights: the f32 product of each token's dequantized activations */
        float *xf = c->host->alloc((size_t)cols * sizeof(float));
        if (!xf) return c->host->set_error(err, BT_E_NOMEM, "cpu: %s: out of memory", fn);
        for (int64_t t = 0; t < ntok && st == BT_OK; t++) {
            bt_cpu_act_dequantize(xq + t * cols, xs + t * (cols / ablock), cols, ablock, xf);
            st = gemv_f32(c, fmt, W, rows, cols, xf, Y + t * rows, err);
        }
        c->host->free(xf);
        return st;
    }
    struct bt_cpu_act a = {xq, xs, ablock, bsum};
    struct q8_job j = {fmt, c->host, W, rb, rows, cols, &a, ntok, NULL, q8, 0, Y, 0};
    if (isa->gemm_q8) j.gemm = isa->gemm_q8(fmt, cols, ablock, ntok, &j.scratch);
    int64_t units = (rows + BT_CPU_RU - 1) / BT_CPU_RU;
    int64_t grain = (int64_t)(grain_bytes(ntok) / ((double)rb * BT_CPU_RU * (double)ntok + 1.0)) + 1;
    c->host->parallel_for(units, grain, q8_run, &j);
    if (atomic_load(&j.nomem))
        return c->host->set_error(err, BT_E_NOMEM, "cpu: %s: out of memory for %zu bytes of "
                                  "scratch", fn, j.scratch);
    return BT_OK;
}

/* ---- gemm ---------------------------------------------------------------------------------- */
struct gemm_job {
    const struct bt_host *host;  /* for scratch allocation */
    const struct bt_tfmt *fmt;   /* weight format */
    const uint8_t        *W;     /* first row */
    size_t                rb;    /* bytes per row */
    int64_t               rows;  /* total rows (= ldy) */
    int64_t               cols;  /* columns */
    const float          *X;     /* (ntok x cols) */
    int64_t               ntok;  /* tokens */
    bt_cpu_decode_fn      dec;   /* row decoder (NULL for F32: rows are used in place) */
    bt_cpu_tile_fn        tile;  /* micro-kernel */
    float                *Y;     /* (ntok x rows) */
    atomic_int            nomem; /* set when a worker could not get scratch memory */
};

static void gemm_run(void *arg, int64_t u0, int64_t u1, int tid) {
    struct gemm_job *j = arg;
    int64_t r0 = u0 * BT_CPU_RU, r1 = u1 * BT_CPU_RU;
    if (r1 > j->rows) r1 = j->rows;
    if (r0 >= r1) return;
    float *buf = NULL;
    if (j->dec) {
        buf = j->host->alloc((size_t)BT_CPU_GEMM_RT * (size_t)j->cols * sizeof(float));
        if (!buf) { atomic_store(&j->nomem, 1); return; }
    }
    for (int64_t r = r0; r < r1; r += BT_CPU_GEMM_RT) {
        int64_t nr = r1 - r < BT_CPU_GEMM_RT ? r1 - r : BT_CPU_GEMM_RT;
        const float *wf = (const float *)(const void *)(j->W + (size_t)r * j->rb);
        if (j->dec) {
            j->dec(j->fmt, j->W + (size_t)r * j->rb, nr * j->cols, buf);
            wf = buf;
        }
        j->tile(wf, nr, j->cols, j->X, j->ntok, j->Y + r, j->rows);
    }
    if (buf) j->host->free(buf);
}

bt_status bt_cpu_mm_f32(struct bt_cpu_ctx *c, const struct bt_tfmt *fmt, const void *W,
                        int64_t rows, int64_t cols, const float *X, int64_t ntok, float *Y,
                        bt_err *err) {
    const struct bt_cpu_isa *isa = isa_of(c);
    size_t rb;
    bt_status st = check_w(c, "matmul", fmt, W, rows, cols, &rb, err);
    if (st) return st;
    if (!X || !Y || ntok <= 0)
        return c->host->set_error(err, BT_E_INVAL, "cpu: matmul: null X/Y or ntok %lld <= 0",
                                  (long long)ntok);
    if (ntok == 1) return gemv_f32(c, fmt, W, rows, cols, X, Y, err);
    struct gemm_job j = {c->host, fmt, W, rb, rows, cols, X, ntok, NULL, isa->tile, Y, 0};
    /* F32 rows are used in place when 4-byte aligned */
    if (fmt->type != BT_TYPE_F32 || ((uintptr_t)W & 3)) j.dec = pick_decode(isa, fmt);
    int64_t units = (rows + BT_CPU_RU - 1) / BT_CPU_RU;
    c->host->parallel_for(units, BT_CPU_GEMM_RT / BT_CPU_RU, gemm_run, &j);
    if (atomic_load(&j.nomem))
        return c->host->set_error(err, BT_E_NOMEM, "cpu: matmul: out of memory for %lld x %lld "
                                  "decode buffer", (long long)BT_CPU_GEMM_RT, (long long)cols);
    return BT_OK;
}

/* ---- dequant ------------------------------------------------------------------------------- */
struct deq_job {
    const struct bt_tfmt *fmt; /* format */
    const uint8_t        *src; /* packed data */
    int64_t               blk; /* elements per block */
    size_t                bb;  /* bytes per block */
    bt_cpu_decode_fn      dec; /* decoder */
    float                *dst; /* output */
};

static void deq_run(void *arg, int64_t b0, int64_t b1, int tid) {
    const struct deq_job *j = arg;
    j->dec(j->fmt, j->src + (size_t)b0 * j->bb, (b1 - b0) * j->blk, j->dst + b0 * j->blk);
}

bt_status bt_cpu_dequant(struct bt_cpu_ctx *c, const struct bt_tfmt *fmt, const void *src,
                         int64_t n, float *dst, bt_err *err) {
    char fs[32];
    if (!fmt || !src || !dst || n <= 0)
        return c->host->set_error(err, BT_E_INVAL, "cpu: dequant: null buffer or n %lld <= 0",
                                  (long long)n);
    bt_fmt_str(fmt, fs, sizeof(fs));
    if (!bt_cpu_fmt_ok(fmt))
        return c->host->set_error(err, BT_E_UNSUPPORTED, "cpu: dequant: format %s not supported", fs);
    int64_t blk = fmt->type == BT_TYPE_MTQ ? fmt->block : bt_type_block(fmt->type);
    size_t bb = bt_fmt_row_bytes(fmt, blk);
    if (n % blk)
        return c->host->set_error(err, BT_E_INVAL, "cpu: dequant: %lld elements is not a whole "
                                  "number of %s blocks", (long long)n, fs);
    struct deq_job j = {fmt, src, blk, bb, pick_decode(isa_of(c), fmt), dst};
    int64_t nb = n / blk, grain = (int64_t)(65536 / blk) + 1;
    c->host->parallel_for(nb, grain, deq_run, &j);
    return BT_OK;
}

bt_status bt_cpu_get_row(struct bt_cpu_ctx *c, const struct bt_tfmt *fmt, const void *W,
                         int64_t row, int64_t cols, float *dst) {
    size_t rb = bt_fmt_row_bytes(fmt, cols);
    if (!rb) return BT_E_INVAL;
    pick_decode(isa_of(c), fmt)(fmt, (const uint8_t *)W + (size_t)row * rb, cols, dst);
    return BT_OK;
}
