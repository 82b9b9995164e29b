/* cpu_vq.c - bt's vector-quantized format ("vq", core/types/bt_vq.c) in the CPU backends: the
 * per-weight cache (f32 codebooks, column permutation, scales and biases, built on first use
 * and kept with the codebook buffer), exact row decoding, and MATMUL: one or a few tokens
 * accumulate codebook vectors scaled by the permuted, pre-scaled activations (no weight is
 * decoded); prompt batches decode tiles of rows and run the f32 tile kernel. Work is split in
 * whole row blocks; every output is computed by one thread in a fixed order. */
#include "cpu_act.h"
#include "cpu_kern.h"

#include <stdatomic.h>
#include <string.h>

#define VQ_BATCH 4 /* tokens from which a product decodes tiles instead of accumulating */

static void cache_free(const struct bt_host *h, struct bt_cpu_vq *q) {
    if (!q) return;
    h->free(q->cb);
    h->free(q->perm);
    h->free(q->scale);
    h->free(q->bias);
    h->free(q);
}

void bt_cpu_vq_drop(const struct bt_host *h, struct bt_buf *b) {
    cache_free(h, b->vq);
    b->vq = NULL;
}

static float h2f(const uint8_t *p) { return bt_fp16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

/* the cache of weight view w (codebook part buffer), built if missing or made for another shape */
static bt_status vq_cache(struct bt_cpu_ctx *c, const struct bt_view *w, const struct bt_cpu_vq **out,
                          bt_err *err) {
    struct bt_vq_layout L;
    const struct bt_host *h = c->host;
    if (!bt_vq_layout(&w->fmt, w->rows, w->cols, &L))
        return h->set_error(err, BT_E_INVAL, "cpu: vq: parameters do not fit %lld x %lld",
                            (long long)w->rows, (long long)w->cols);
    for (uint32_t k = 0; k < L.n_parts; k++)
        if (!w->parts[k] || w->parts[k]->n < L.part_bytes[k])
            return h->set_error(err, BT_E_INVAL, "cpu: vq: part %u missing or smaller than %llu bytes",
                                k, (unsigned long long)L.part_bytes[k]);
    struct bt_buf *cbb = w->parts[L.p_cb];
    struct bt_cpu_vq *q = cbb->vq;
    if (q && !memcmp(&q->fmt, &w->fmt, sizeof(w->fmt)) && q->L.rows == w->rows && q->L.cols == w->cols &&
        q->gen_cb == w->parts[L.p_cb]->gen &&
        (L.p_col < 0 || (q->colbuf == w->parts[L.p_col] && q->gen_col == w->parts[L.p_col]->gen))) {
        *out = q;
        return BT_OK;
    }
    bt_cpu_vq_drop(h, cbb);
    const void *pp[BT_MAX_PARTS] = {0};
    for (uint32_t k = 0; k < L.n_parts; k++) pp[k] = w->parts[k]->p;
    if (bt_vq_check_parts(&L, pp))
        return h->set_error(err, BT_E_FORMAT, "cpu: vq: the column permutation is not one");
    q = h->alloc(sizeof(*q));
    if (!q) return h->set_error(err, BT_E_NOMEM, "cpu: vq: out of memory");
    memset(q, 0, sizeof(*q));
    q->fmt = w->fmt;
    q->L = L;
    q->colbuf = L.p_col >= 0 ? w->parts[L.p_col] : NULL;
    q->gen_cb = cbb->gen;
    q->gen_col = q->colbuf ? q->colbuf->gen : 0;
    uint64_t ncb = L.part_bytes[L.p_cb] / 2;
    q->cb = h->alloc(ncb * sizeof(float) + 64);
    q->perm = h->alloc((size_t)L.cols * sizeof(int32_t));
    if (L.flags & BT_VQ_NORM) {
        q->scale = h->alloc((size_t)L.cols * sizeof(float));
        q->bias = h->alloc((size_t)L.cols * sizeof(float));
    }
    if (!q->cb || !q->perm || ((L.flags & BT_VQ_NORM) && (!q->scale || !q->bias))) {
        cache_free(h, q);
        return h->set_error(err, BT_E_NOMEM, "cpu: vq: out of memory for the codebook cache");
    }
    const uint8_t *cb = pp[L.p_cb], *cp = L.p_col >= 0 ? pp[L.p_col] : NULL;
    for (uint64_t i = 0; i < ncb; i++) q->cb[i] = h2f(cb + 2 * i);
    for (int64_t p = 0; p < L.cols; p++)
        q->perm[p] = L.col_perm != UINT64_MAX ? (int32_t)(cp[L.col_perm + 2 * p] | (cp[L.col_perm + 2 * p + 1] << 8))
                                              : (int32_t)p;
    if (L.flags & BT_VQ_NORM)
        for (int64_t j = 0; j < L.cols; j++) {
            q->scale[j] = h2f(cp + L.col_scale + 2 * j);
            q->bias[j] = h2f(cp + L.col_bias + 2 * j);
        }
    cbb->vq = q;
    *out = q;
    return BT_OK;
}

/* ---- exact decoding (bit-identical to bt_vq_to_f32_rows) ------------------------------------ */
static void decode_rows(const struct bt_cpu_vq *q, const uint8_t *data, const uint8_t *tail,
                        const uint8_t *ocodes, int64_t r0, int64_t r1, float *dst) {
    const struct bt_vq_layout *L = &q->L;
    int64_t cols = L->cols;
    uint32_t v = L->v, m1 = (1u << L->b1) - 1;
    const float *cm0 = q->cb + L->cb_main / 2, *cr0 = q->cb + L->cb_res / 2, *co = q->cb + L->cb_out / 2;
    for (int64_t rb = r0 / v; rb * v < r1; rb++) {
        const uint8_t *s = (rb + 1) * (int64_t)v > L->rows ? tail : data + (uint64_t)rb * v * L->R;
        for (int64_t p = 0; p < L->ncode; p++) {
            uint32_t code = bt_vq_get_code(s, (uint64_t)p * L->t, L->t);
            int64_t g = p / L->gs, col = q->perm[L->n_out + p];
            const float *cm = cm0 + (((uint64_t)g << L->b1) + (code & m1)) * v;
            const float *cr = L->b2 ? cr0 + (((uint64_t)g << L->b2) + (code >> L->b1)) * v : NULL;
            for (uint32_t e = 0; e < v; e++) {
                int64_t r = rb * v + e;
                if (r < r0 || r >= r1) continue;
                float w = cm[e];
                if (cr) w = w + cr[e];
                dst[(r - r0) * cols + col] = w;
            }
        }
    }
    for (int64_t rb = L->n_out ? r0 / L->v0 : 0; L->n_out && rb * L->v0 < r1; rb++)
        for (int64_t p = 0; p < L->n_out; p++) {
            const uint8_t *o = ocodes + ((uint64_t)rb * L->n_out + p) * 2;
            const float *c = co + (uint64_t)(o[0] | (o[1] << 8)) * L->v0;
            for (uint32_t e = 0; e < L->v0; e++) {
                int64_t r = rb * L->v0 + e;
                if (r >= r0 && r < r1) dst[(r - r0) * cols + q->perm[p]] = c[e];
            }
        }
    if (q->scale)
        for (int64_t r = 0; r < r1 - r0; r++)
            for (int64_t j = 0; j < cols; j++) dst[r * cols + j] = dst[r * cols + j] * q->scale[j] + q->bias[j];
}

/* ---- the scalar accumulation kernel ---------------------------------------------------------- */
/* y[r] for rows of row blocks [rb0, rb1): sum_p xp[p] * (C[code] + R[code]) (+ xb added by the
 * caller); xp: the activations of the coded columns in stream order, pre-scaled */
static void ref_vq_gemv(const struct bt_cpu_vq *q, const uint8_t *data, const uint8_t *tail,
                        int64_t rb0, int64_t rb1, const float *xp, float *y) {
    const struct bt_vq_layout *L = &q->L;
    uint32_t v = L->v, m1 = (1u << L->b1) - 1;
    const float *cm0 = q->cb + L->cb_main / 2, *cr0 = q->cb + L->cb_res / 2;
    float acc[BT_VQ_MAX_V];
    for (int64_t rb = rb0; rb < rb1; rb++) {
        const uint8_t *s = (rb + 1) * (int64_t)v > L->rows ? tail : data + (uint64_t)rb * v * L->R;
        memset(acc, 0, sizeof(acc));
        for (int64_t p = 0; p < L->ncode; p++) {
            uint32_t code = bt_vq_get_code(s, (uint64_t)p * L->t, L->t);
            int64_t g = p / L->gs;
            const float *cm = cm0 + (((uint64_t)g << L->b1) + (code & m1)) * v;
            float xv = xp[p];
            for (uint32_t e = 0; e < v; e++) acc[e] += xv * cm[e];
            if (L->b2) {
                const float *cr = cr0 + (((uint64_t)g << L->b2) + (code >> L->b1)) * v;
                for (uint32_t e = 0; e < v; e++) acc[e] += xv * cr[e];
            }
        }
        for (uint32_t e = 0; e < v && rb * v + e < L->rows; e++) y[rb * v + e] = acc[e];
    }
}

bt_cpu_vq_gemv_fn bt_cpu_vq_gemv_ref = ref_vq_gemv;

/* ---- driver -------------------------------------------------------------------------------- */
struct vq_job {
    const struct bt_cpu_vq *q;
    const struct bt_host   *host;
    bt_cpu_vq_gemv_fn       gemv;
    bt_cpu_tile_fn          tile;
    const uint8_t          *data, *tail, *ocodes; /* packed rows, tail part, outlier codes */
    const float            *X;    /* (ntok x cols) */
    const float            *xp;   /* (ntok x ncode) pre-scaled, permuted */
    const float            *xb;   /* (ntok) sum_j x_j b_j, or NULL */
    const float            *xo;   /* (ntok x n_out) pre-scaled outlier activations */
    int64_t                 ntok, unit; /* rows per work unit: a multiple of v (and v0) */
    float                  *Y, *D;      /* Y (ntok x rows); D decode output (DEQUANT) */
    atomic_int              nomem;
};

/* outlier columns' share for rows [r0, r1) of token t */
static void add_outliers(const struct vq_job *j, int64_t t, int64_t r0, int64_t r1, float *y) {
    const struct bt_vq_layout *L = &j->q->L;
    const float *co = j->q->cb + L->cb_out / 2, *xo = j->xo + t * L->n_out;
    for (int64_t rb = r0 / L->v0; rb * L->v0 < r1; rb++) {
        float acc[BT_VQ_MAX_V] = {0};
        const uint8_t *o = j->ocodes + (uint64_t)rb * L->n_out * 2;
        for (int64_t p = 0; p < L->n_out; p++) {
            const float *c = co + (uint64_t)(o[2 * p] | (o[2 * p + 1] << 8)) * L->v0;
            for (uint32_t e = 0; e < L->v0; e++) acc[e] += xo[p] * c[e];
        }
        for (uint32_t e = 0; e < L->v0; e++) {
            int64_t r = rb * L->v0 + e;
            if (r >= r0 && r < r1) y[r] += acc[e];
        }
    }
}

static void vq_mm_run(void *arg, int64_t u0, int64_t u1, int tid) {
    struct vq_job *j = arg;
    const struct bt_vq_layout *L = &j->q->L;
    int64_t r0 = u0 * j->unit, r1 = u1 * j->unit;
    (void)tid;
    if (r1 > L->rows) r1 = L->rows;
    if (r0 >= r1) return;
    if (j->D) { /* DEQUANT */
        decode_rows(j->q, j->data, j->tail, j->ocodes, r0, r1, j->D + r0 * L->cols);
        return;
    }
    if (j->ntok >= VQ_BATCH) { /* decode tiles, f32 tile kernel */
        int64_t RT = 16;
        float *buf = j->host->alloc((size_t)RT * L->cols * sizeof(float));
        if (!buf) { atomic_store(&j->nomem, 1); return; }
        for (int64_t r = r0; r < r1; r += RT) {
            int64_t nr = r1 - r < RT ? r1 - r : RT;
            decode_rows(j->q, j->data, j->tail, j->ocodes, r, r + nr, buf);
            j->tile(buf, nr, L->cols, j->X, j->ntok, j->Y + r, L->rows);
        }
        j->host->free(buf);
        return;
    }
    for (int64_t t = 0; t < j->ntok; t++) {
        float *y = j->Y + t * L->rows;
        j->gemv(j->q, j->data, j->tail, r0 / L->v, (r1 + L->v - 1) / L->v, j->xp + t * L->ncode, y);
        if (L->n_out) add_outliers(j, t, r0, r1, y);
        if (j->xb)
            for (int64_t r = r0; r < r1; r++) y[r] += j->xb[t];
    }
}

static int64_t gcd64(int64_t a, int64_t b) { return b ? gcd64(b, a % b) : a; }

/* op on a vq weight view w: MATMUL (X ntok x cols -> Y) or, with X NULL, DEQUANT into Y */
bt_status bt_cpu_vq_op(struct bt_cpu_ctx *c, const struct bt_view *w, const void *W,
                       const float *X, int64_t ntok, float *Y, bt_err *err) {
    const struct bt_cpu_vq *q;
    bt_status st = vq_cache(c, w, &q, err);
    if (st) return st;
    const struct bt_vq_layout *L = &q->L;
    const struct bt_host *h = c->host;
    struct vq_job j;
    memset(&j, 0, sizeof(j));
    j.q = q;
    j.host = h;
    j.data = W;
    j.tail = L->p_tail >= 0 ? w->parts[L->p_tail]->p : NULL;
    j.ocodes = L->p_out >= 0 ? w->parts[L->p_out]->p : NULL;
    j.gemv = c->isa && c->isa->vq_gemv ? c->isa->vq_gemv : bt_cpu_vq_gemv_ref;
    j.tile = (c->isa ? c->isa : &bt_cpu_isa_ref)->tile;
    j.X = X;
    j.ntok = ntok;
    j.unit = L->n_out ? L->v / gcd64(L->v, L->v0) * L->v0 : L->v;
    while (j.unit < 16 && L->rows > 64) j.unit *= 2;
    float *xs = NULL;
    if (!X) {
        j.D = Y;
    } else {
        j.Y = Y;
        if (ntok < VQ_BATCH) { /* permuted, pre-scaled activations */
            size_t n = (size_t)ntok * (L->ncode + L->n_out + 1);
            if (!(xs = h->alloc(n * sizeof(float)))) return h->set_error(err, BT_E_NOMEM, "cpu: vq: out of memory");
            float *xp = xs, *xo = xs + ntok * L->ncode, *xb = xo + ntok * L->n_out;
            for (int64_t t = 0; t < ntok; t++) {
                const float *x = X + t * L->cols;
                for (int64_t p = 0; p < L->ncode; p++) {
                    int32_t col = q->perm[L->n_out + p];
                    xp[t * L->ncode + p] = q->scale ? x[col] * q->scale[col] : x[col];
                }
                for (int64_t p = 0; p < L->n_out; p++) {
                    int32_t col = q->perm[p];
                    xo[t * L->n_out + p] = q->scale ? x[col] * q->scale[col] : x[col];
                }
                float sb = 0.0f;
                for (int64_t col = 0; q->bias && col < L->cols; col++) sb += x[col] * q->bias[col];
                xb[t] = sb;
            }
            j.xp = xp;
            j.xo = xo;
            j.xb = q->bias ? xb : NULL;
        }
    }
    int64_t units = (L->rows + j.unit - 1) / j.unit;
    double per = (double)j.unit * L->cols * (ntok > 0 ? ntok : 1);
    h->parallel_for(units, (int64_t)(65536.0 / per) + 1, vq_mm_run, &j);
    h->free(xs);
    if (atomic_load(&j.nomem)) return h->set_error(err, BT_E_NOMEM, "cpu: vq: out of memory");
    return BT_OK;
}

/* rows ids[t] of w into dst (GET_ROWS) */
bt_status bt_cpu_vq_rows(struct bt_cpu_ctx *c, const struct bt_view *w, const void *W,
                         const int32_t *ids, int64_t n, float *dst, bt_err *err) {
    const struct bt_cpu_vq *q;
    bt_status st = vq_cache(c, w, &q, err);
    if (st) return st;
    const struct bt_vq_layout *L = &q->L;
    const uint8_t *tail = L->p_tail >= 0 ? w->parts[L->p_tail]->p : NULL;
    const uint8_t *oc = L->p_out >= 0 ? w->parts[L->p_out]->p : NULL;
    for (int64_t t = 0; t < n; t++) decode_rows(q, W, tail, oc, ids[t], ids[t] + 1, dst + t * L->cols);
    return BT_OK;
}
