/* bt_linear.c - linear layers of the model runner: dispatch to the backend (gemm_f32 for token
 * batches, gemv_f32 / gemv_q8 for single tokens) and a built-in row-decoding kernel fallback. */
#include "bt_model_int.h"

#include <stddef.h>

#include "bt_types.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BT_ACT_BLOCK 256

void bt_act_quant_q8(const float *x, int64_t n, int8_t *xq, float *xs) {
    for (int64_t b = 0; b * BT_ACT_BLOCK < n; b++) {
        const float *xb = x + b * BT_ACT_BLOCK;
        int64_t      len = n - b * BT_ACT_BLOCK < BT_ACT_BLOCK ? n - b * BT_ACT_BLOCK : BT_ACT_BLOCK;
        float        amax = 0.0f;
        for (int64_t i = 0; i < len; i++) { float a = fabsf(xb[i]); amax = a > amax ? a : amax; }
        float d  = amax / 127.0f;
        float id = d > 0.0f ? 1.0f / d : 0.0f;
        xs[b]    = d;
        int8_t *q = xq + b * BT_ACT_BLOCK;
        for (int64_t i = 0; i < len; i++) {
            float v = xb[i] * id; /* |v| <= 127: round half away from zero, branch-free */
            q[i] = (int8_t)(int)(v + copysignf(0.5f, v));
        }
    }
}

struct act_job {
    const float *X;
    int64_t      cols;
    int8_t      *xq;
    float       *xs;
};

static void act_rows(void *arg, int64_t t0, int64_t t1, int tid) {
    const struct act_job *j = arg;
    int64_t nb = j->cols / BT_ACT_BLOCK;
    for (int64_t t = t0; t < t1; t++) bt_act_quant_q8(j->X + t * j->cols, j->cols, j->xq + t * j->cols, j->xs + t * nb);
}

/* ---- built-in kernel: decode one weight row to f32, dot it with every token ------------------- */
static float dot_f32(const float *a, const float *b, int64_t n) {
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    float r = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

struct lin_job {
    const struct bt_lin *w;      /* weight */
    const float         *X;      /* (ntok x cols) */
    float               *Y;      /* (ntok x rows) */
    int                  ntok;   /* tokens */
    float               *wrow;   /* per-thread row buffers (n_thr x stride) */
    int64_t              stride; /* floats per thread buffer */
    int                  n_thr;  /* buffers available */
    int                  failed; /* set if a row could not be decoded */
};

static void lin_range(void *arg, int64_t r0, int64_t r1, int tid) {
    struct lin_job *j = arg;
    const struct bt_lin *w = j->w;
    float *buf = tid < j->n_thr ? j->wrow + (int64_t)tid * j->stride : malloc(w->cols * 4);
    if (!buf) { j->failed = 1; return; }
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *src = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        if (bt_to_f32(&w->fmt, src, buf, w->cols) != BT_OK) { j->failed = 1; break; }
        for (int t = 0; t < j->ntok; t++)
            j->Y[(int64_t)t * w->rows + r] = dot_f32(buf, j->X + (int64_t)t * w->cols, w->cols);
    }
    if (tid >= j->n_thr) free(buf);
}

static bt_status lin_builtin(bt_model *m, const struct bt_lin *w, const float *X, int ntok,
                             float *Y, bt_err *err) {
    struct lin_job j = {w, X, Y, ntok, m->s.wrow, 0, m->s.n_thr, 0};
    int64_t maxd = m->hp.n_embd;
    if (m->hp.n_ff > maxd) maxd = m->hp.n_ff;
    if ((int64_t)m->hp.n_head * m->hp.head_dim > maxd) maxd = (int64_t)m->hp.n_head * m->hp.head_dim;
    j.stride = maxd + 256;
    if (w->cols > maxd) j.n_thr = 0; /* lm_head-like shapes never exceed maxd; be safe anyway */
    bt_parallel_for(w->rows, 16, lin_range, &j);
    if (j.failed)
        return bt_err_set(err, BT_E_UNSUPPORTED, "model: tensor '%s': cannot decode %s rows",
                          w->name, bt_type_name(w->fmt.type));
    return BT_OK;
}

/* ---- dispatch --------------------------------------------------------------------------------- */
enum { LIN_BUILTIN, LIN_GEMM_Q8, LIN_GEMV_Q8, LIN_GEMV_F32, LIN_GEMM_F32 };

/* the path bt_lin_apply takes for w and ntok tokens */
static int lin_path(const bt_model *m, const struct bt_lin *w, int ntok) {
    if (!w->backend) return LIN_BUILTIN;
    const struct bt_backend_i *bi = m->b->i;
    int q8 = m->opts.act_q8 == 1 || (m->opts.act_q8 == 2 && ntok == 1); /* 2: single tokens only */
    int has_gemm_q8 = bi->struct_size > offsetof(struct bt_backend_i, gemm_q8) && bi->gemm_q8;
    if (w->ternary && m->opts.act_q8 && ntok > 1 && has_gemm_q8 && w->cols % BT_ACT_BLOCK == 0)
        return LIN_GEMM_Q8;
    if (w->ternary && q8 && bi->gemv_q8 && w->cols % BT_ACT_BLOCK == 0) return LIN_GEMV_Q8;
    if (ntok == 1 || !bi->gemm_f32) return LIN_GEMV_F32;
    return LIN_GEMM_F32;
}

/* int8 activations of ntok tokens into m->s.xq / m->s.xs */
static void lin_quantize(bt_model *m, const float *X, int64_t cols, int ntok) {
    if (ntok == 1) { bt_act_quant_q8(X, cols, m->s.xq, m->s.xs); return; }
    struct act_job aj = {X, cols, m->s.xq, m->s.xs};
    bt_parallel_for(ntok, 8, act_rows, &aj);
}

/* path p of w; quantized: X is already in m->s.xq / m->s.xs (int8 paths) */
static bt_status lin_run(bt_model *m, const struct bt_lin *w, int p, int quantized,
                         const float *X, int ntok, float *Y, bt_err *err) {
    if (p == LIN_BUILTIN) return lin_builtin(m, w, X, ntok, Y, err);
    const struct bt_backend_i *bi = m->b->i;
    void *ctx = m->b->ctx;
    bt_status st = BT_OK;
    if (p == LIN_GEMM_Q8) { /* batched int8 path: one backend call */
        if (!quantized) lin_quantize(m, X, w->cols, ntok);
        st = bi->gemm_q8(ctx, &w->fmt, w->data, w->rows, w->cols, m->s.xq, m->s.xs, BT_ACT_BLOCK, ntok, Y, err);
    } else if (p == LIN_GEMV_Q8) {
        for (int t = 0; t < ntok && st == BT_OK; t++) {
            if (!quantized || ntok > 1)
                bt_act_quant_q8(X + (int64_t)t * w->cols, w->cols, m->s.xq, m->s.xs);
            st = bi->gemv_q8(ctx, &w->fmt, w->data, w->rows, w->cols, m->s.xq, m->s.xs,
                             BT_ACT_BLOCK, Y + (int64_t)t * w->rows, err);
        }
    } else if (p == LIN_GEMV_F32) {
        for (int t = 0; t < ntok && st == BT_OK; t++)
            st = bi->gemv_f32(ctx, &w->fmt, w->data, w->rows, w->cols, X + (int64_t)t * w->cols,
                              Y + (int64_t)t * w->rows, err);
    } else {
        st = bi->gemm_f32(ctx, &w->fmt, w->data, w->rows, w->cols, X, ntok, Y, err);
    }
    if (st != BT_OK && err->status == BT_OK)
        bt_err_set(err, st, "model: backend failed on tensor '%s'", w->name);
    return st;
}

bt_status bt_lin_apply(bt_model *m, const struct bt_lin *w, const float *X, int ntok, float *Y,
                       bt_err *err) {
    return lin_run(m, w, lin_path(m, w, ntok), 0, X, ntok, Y, err);
}

bt_status bt_lin_apply_n(bt_model *m, const struct bt_lin *const *w, int n, const float *X,
                         int ntok, float *const *Y, bt_err *err) {
    int quantized = 0; /* m->s.xq holds X for weights of these columns */
    for (int i = 0; i < n; i++) {
        int p = lin_path(m, w[i], ntok);
        int q = (p == LIN_GEMM_Q8 || (p == LIN_GEMV_Q8 && ntok == 1)) && i > 0 &&
                w[i]->cols == w[0]->cols && quantized;
        bt_status st = lin_run(m, w[i], p, q, X, ntok, Y[i], err);
        if (st) return st;
        quantized = (p == LIN_GEMM_Q8 || (p == LIN_GEMV_Q8 && ntok == 1)) &&
                    w[i]->cols == w[0]->cols;
    }
    return BT_OK;
}

bt_status bt_lin_row_f32(const struct bt_lin *w, int64_t row, float *dst, bt_err *err) {
    if (row < 0 || row >= w->rows)
        return bt_err_set(err, BT_E_INVAL, "model: token id %lld out of range [0, %lld)",
                          (long long)row, (long long)w->rows);
    const uint8_t *src = (const uint8_t *)w->data + (size_t)row * w->row_bytes;
    if (bt_to_f32(&w->fmt, src, dst, w->cols) != BT_OK)
        return bt_err_set(err, BT_E_UNSUPPORTED, "model: tensor '%s': cannot decode %s rows",
                          w->name, bt_type_name(w->fmt.type));
    return BT_OK;
}
