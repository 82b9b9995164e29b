/* cpu_vq_avx2.c - AVX2 accumulation kernel of the vq format: for each row block, the codebook
 * vectors of its codes, scaled by the pre-scaled activations, summed in registers (v = 4, 8, 16
 * in one or two vector registers; other lengths in a short loop). Codes are read 64 bits at a
 * time where the stream has room, else bit by bit. Built with -mavx2 -mfma. */
#include "cpu_kern.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* code p of a stream of S bytes, t bits each */
static inline uint32_t code_at(const uint8_t *s, uint64_t S, int64_t p, uint32_t t, uint64_t mask) {
    uint64_t bit = (uint64_t)p * t, by = bit >> 3;
    if (by + 8 <= S) {
        uint64_t w;
        memcpy(&w, s + by, 8);
        return (uint32_t)((w >> (bit & 7)) & mask);
    }
    return bt_vq_get_code(s, bit, t);
}

/* code p of a stream, t bits: byte and 16-bit codes read directly */
static inline __attribute__((always_inline)) uint32_t code_t(const uint8_t *s, uint64_t S, int64_t p,
                                                             uint32_t t, uint64_t mask, uint32_t T) {
    if (T == 8) return s[p];
    if (T == 16) return (uint32_t)(s[2 * p] | (s[2 * p + 1] << 8));
    return code_at(s, S, p, t, mask);
}

/* v = 4: two row blocks per pass, their codebook vectors side by side in one register;
 * two accumulators */
static inline __attribute__((always_inline)) void v4_pair(const struct bt_vq_layout *L, const float *cm0,
                                                          const float *cr0, const uint8_t *s0, const uint8_t *s1,
                                                          const float *xp, float *out, uint32_t T, int res) {
    uint32_t t = L->t, m1 = (1u << L->b1) - 1;
    uint64_t mask = (1ull << t) - 1;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (uint32_t g = 0; g < L->G; g++) {
        const float *cm = cm0 + ((uint64_t)g << L->b1) * 4, *cr = cr0 + ((uint64_t)g << L->b2) * 4;
        int64_t p = (int64_t)g * L->gs, p1 = p + L->gs;
        for (; p + 2 <= p1; p += 2) {
            uint32_t c00 = code_t(s0, L->S, p, t, mask, T), c10 = code_t(s1, L->S, p, t, mask, T);
            uint32_t c01 = code_t(s0, L->S, p + 1, t, mask, T), c11 = code_t(s1, L->S, p + 1, t, mask, T);
            __m256 w0 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(cm + (c00 & m1) * 4)),
                                             _mm_loadu_ps(cm + (c10 & m1) * 4), 1);
            __m256 w1 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(cm + (c01 & m1) * 4)),
                                             _mm_loadu_ps(cm + (c11 & m1) * 4), 1);
            if (res) {
                w0 = _mm256_add_ps(w0, _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(cr + (c00 >> L->b1) * 4)),
                                                            _mm_loadu_ps(cr + (c10 >> L->b1) * 4), 1));
                w1 = _mm256_add_ps(w1, _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(cr + (c01 >> L->b1) * 4)),
                                                            _mm_loadu_ps(cr + (c11 >> L->b1) * 4), 1));
            }
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(xp[p]), w0, a0);
            a1 = _mm256_fmadd_ps(_mm256_set1_ps(xp[p + 1]), w1, a1);
        }
        for (; p < p1; p++) {
            uint32_t c0 = code_t(s0, L->S, p, t, mask, T), c1 = code_t(s1, L->S, p, t, mask, T);
            __m256 w0 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(cm + (c0 & m1) * 4)),
                                             _mm_loadu_ps(cm + (c1 & m1) * 4), 1);
            if (res)
                w0 = _mm256_add_ps(w0, _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(cr + (c0 >> L->b1) * 4)),
                                                            _mm_loadu_ps(cr + (c1 >> L->b1) * 4), 1));
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(xp[p]), w0, a0);
        }
    }
    _mm256_storeu_ps(out, _mm256_add_ps(a0, a1));
}

/* v = 8: one row block, four accumulators */
static inline __attribute__((always_inline)) void v8_one(const struct bt_vq_layout *L, const float *cm0,
                                                         const float *cr0, const uint8_t *s, const float *xp,
                                                         float *out, uint32_t T, int res) {
    uint32_t t = L->t, m1 = (1u << L->b1) - 1;
    uint64_t mask = (1ull << t) - 1;
    __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (uint32_t g = 0; g < L->G; g++) {
        const float *cm = cm0 + ((uint64_t)g << L->b1) * 8, *cr = cr0 + ((uint64_t)g << L->b2) * 8;
        int64_t p = (int64_t)g * L->gs, p1 = p + L->gs;
        for (; p + 4 <= p1; p += 4)
            for (int u = 0; u < 4; u++) {
                uint32_t c = code_t(s, L->S, p + u, t, mask, T);
                __m256 w = _mm256_loadu_ps(cm + (c & m1) * 8);
                if (res) w = _mm256_add_ps(w, _mm256_loadu_ps(cr + (c >> L->b1) * 8));
                a[u] = _mm256_fmadd_ps(_mm256_set1_ps(xp[p + u]), w, a[u]);
            }
        for (; p < p1; p++) {
            uint32_t c = code_t(s, L->S, p, t, mask, T);
            __m256 w = _mm256_loadu_ps(cm + (c & m1) * 8);
            if (res) w = _mm256_add_ps(w, _mm256_loadu_ps(cr + (c >> L->b1) * 8));
            a[0] = _mm256_fmadd_ps(_mm256_set1_ps(xp[p]), w, a[0]);
        }
    }
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
}

/* any v: a short loop per code */
static void any_one(const struct bt_vq_layout *L, const float *cm0, const float *cr0, const uint8_t *s,
                    const float *xp, float *out) {
    uint32_t v = L->v, t = L->t, m1 = (1u << L->b1) - 1;
    uint64_t mask = (1ull << t) - 1;
    float acc[BT_VQ_MAX_V] = {0};
    for (uint32_t g = 0; g < L->G; g++) {
        const float *cm = cm0 + ((uint64_t)g << L->b1) * v, *cr = cr0 + ((uint64_t)g << L->b2) * v;
        for (int64_t p = (int64_t)g * L->gs; p < (int64_t)(g + 1) * L->gs; p++) {
            uint32_t c = code_at(s, L->S, p, t, mask);
            const float *a = cm + (c & m1) * v;
            float xv = xp[p];
            for (uint32_t e = 0; e < v; e++) acc[e] += xv * a[e];
            if (L->b2) {
                const float *b = cr + (c >> L->b1) * v;
                for (uint32_t e = 0; e < v; e++) acc[e] += xv * b[e];
            }
        }
    }
    memcpy(out, acc, sizeof(float) * v);
}

/* one variant of the whole row-block loop per (v, code width, residual): small functions the
 * compiler keeps in registers */
#define STREAM(rb) ((((rb) + 1) * (int64_t)L->v > L->rows) ? tail : data + (uint64_t)(rb) * L->v * L->R)
#define V4_ROWS(NAME, T, RES)                                                                         \
    static __attribute__((noinline)) void NAME(const struct bt_vq_layout *L, const float *cm0,        \
                                               const float *cr0, const uint8_t *data,                \
                                               const uint8_t *tail, int64_t rb0, int64_t rb1,         \
                                               const float *xp, float *y) {                          \
        float out[8];                                                                                \
        for (int64_t rb = rb0; rb < rb1;) {                                                          \
            if (rb + 1 < rb1 && (rb + 2) * 4 <= L->rows) {                                           \
                v4_pair(L, cm0, cr0, STREAM(rb), STREAM(rb + 1), xp, out, T, RES);                   \
                memcpy(y + rb * 4, out, sizeof(out));                                                \
                rb += 2;                                                                             \
            } else {                                                                                 \
                any_one(L, cm0, cr0, STREAM(rb), xp, out);                                           \
                for (int64_t e = 0; e < 4 && rb * 4 + e < L->rows; e++) y[rb * 4 + e] = out[e];      \
                rb++;                                                                                \
            }                                                                                        \
        }                                                                                            \
    }
#define V8_ROWS(NAME, T, RES)                                                                         \
    static __attribute__((noinline)) void NAME(const struct bt_vq_layout *L, const float *cm0,        \
                                               const float *cr0, const uint8_t *data,                \
                                               const uint8_t *tail, int64_t rb0, int64_t rb1,         \
                                               const float *xp, float *y) {                          \
        float out[8];                                                                                \
        for (int64_t rb = rb0; rb < rb1; rb++) {                                                     \
            v8_one(L, cm0, cr0, STREAM(rb), xp, out, T, RES);                                        \
            for (int64_t e = 0; e < 8 && rb * 8 + e < L->rows; e++) y[rb * 8 + e] = out[e];          \
        }                                                                                            \
    }
V4_ROWS(v4_8, 8, 0)
V4_ROWS(v4_16, 16, 0)
V4_ROWS(v4_any, 0, 0)
V4_ROWS(v4_16r, 16, 1)
V4_ROWS(v4_anyr, 0, 1)
V8_ROWS(v8_8, 8, 0)
V8_ROWS(v8_16, 16, 0)
V8_ROWS(v8_any, 0, 0)
V8_ROWS(v8_16r, 16, 1)
V8_ROWS(v8_anyr, 0, 1)

typedef void (*rows_fn)(const struct bt_vq_layout *, const float *, const float *, const uint8_t *,
                        const uint8_t *, int64_t, int64_t, const float *, float *);

void bt_cpu_vq_gemv_avx2(const struct bt_cpu_vq *q, const uint8_t *data, const uint8_t *tail,
                         int64_t rb0, int64_t rb1, const float *xp, float *y) {
    const struct bt_vq_layout *L = &q->L;
    const float *cm0 = q->cb + L->cb_main / 2, *cr0 = q->cb + L->cb_res / 2;
    int res = L->b2 != 0;
    rows_fn fn = NULL;
    if (L->v == 4)
        fn = res ? (L->t == 16 ? v4_16r : v4_anyr) : L->t == 8 ? v4_8 : L->t == 16 ? v4_16 : v4_any;
    else if (L->v == 8)
        fn = res ? (L->t == 16 ? v8_16r : v8_anyr) : L->t == 8 ? v8_8 : L->t == 16 ? v8_16 : v8_any;
    if (fn) {
        fn(L, cm0, cr0, data, tail, rb0, rb1, xp, y);
        return;
    }
    float out[BT_VQ_MAX_V];
    for (int64_t rb = rb0; rb < rb1; rb++) {
        any_one(L, cm0, cr0, STREAM(rb), xp, out);
        for (uint32_t e = 0; e < L->v && rb * L->v + e < L->rows; e++) y[rb * L->v + e] = out[e];
    }
}

/* ---- k-means assignment (op KMEANS) ---------------------------------------------------------- */
/* lanes of (best, index) -> the lowest index of the smallest value */
static inline int32_t reduce_best(__m256 best, __m256i bidx, int64_t K) {
    float bv[8];
    int32_t bi[8];
    _mm256_storeu_ps(bv, best);
    _mm256_storeu_si256((__m256i *)(void *)bi, bidx);
    float m = bv[0];
    int32_t mi = bi[0];
    for (int l = 1; l < 8; l++)
        if (bv[l] < m || (bv[l] == m && bi[l] < mi)) { m = bv[l]; mi = bi[l]; }
    return mi < K ? mi : 0;
}

/* two points at a time, their components broadcast once, D known at compile time (0: any) */
static inline __attribute__((always_inline)) void km_pairs(const float *P, int64_t d, const float *cs, int64_t K,
                                                           const float *w, int64_t i0, int64_t i1, int32_t *idx,
                                                           const int D) {
    int64_t nb = (K + 7) / 8, dd = D ? D : d;
    const __m256i step = _mm256_set1_epi32(8);
    int64_t i = i0;
    for (; i + 2 <= i1; i += 2) {
        __m256 xa[8], xb[8], we[8];
        for (int64_t e = 0; e < dd && e < 8; e++) {
            xa[e] = _mm256_set1_ps(P[i * d + e]);
            xb[e] = _mm256_set1_ps(P[(i + 1) * d + e]);
            we[e] = _mm256_set1_ps(w ? w[e] : 1.0f);
        }
        __m256 ba = _mm256_set1_ps(INFINITY), bb = ba;
        __m256i ia = _mm256_setzero_si256(), ib = ia, cur = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for (int64_t kb = 0; kb < nb; kb++, cur = _mm256_add_epi32(cur, step)) {
            const float *c = cs + kb * dd * 8;
            __m256 sa = _mm256_setzero_ps(), sb = _mm256_setzero_ps();
            for (int64_t e = 0; e < dd; e++) {
                __m256 ce = _mm256_loadu_ps(c + e * 8);
                __m256 pa = e < 8 ? xa[e] : _mm256_set1_ps(P[i * d + e]);
                __m256 pb = e < 8 ? xb[e] : _mm256_set1_ps(P[(i + 1) * d + e]);
                __m256 da = _mm256_sub_ps(pa, ce), db = _mm256_sub_ps(pb, ce);
                if (w) {
                    __m256 ww = e < 8 ? we[e] : _mm256_set1_ps(w[e]);
                    sa = _mm256_fmadd_ps(ww, _mm256_mul_ps(da, da), sa);
                    sb = _mm256_fmadd_ps(ww, _mm256_mul_ps(db, db), sb);
                } else {
                    sa = _mm256_add_ps(sa, _mm256_mul_ps(da, da));
                    sb = _mm256_add_ps(sb, _mm256_mul_ps(db, db));
                }
            }
            __m256 la = _mm256_cmp_ps(sa, ba, _CMP_LT_OQ), lb = _mm256_cmp_ps(sb, bb, _CMP_LT_OQ);
            ba = _mm256_blendv_ps(ba, sa, la);
            bb = _mm256_blendv_ps(bb, sb, lb);
            ia = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(ia), _mm256_castsi256_ps(cur), la));
            ib = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(ib), _mm256_castsi256_ps(cur), lb));
        }
        idx[i] = reduce_best(ba, ia, K);
        idx[i + 1] = reduce_best(bb, ib, K);
    }
    for (; i < i1; i++) { /* the last odd point */
        __m256 best = _mm256_set1_ps(INFINITY);
        __m256i bidx = _mm256_setzero_si256(), cur = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for (int64_t kb = 0; kb < nb; kb++, cur = _mm256_add_epi32(cur, step)) {
            const float *c = cs + kb * dd * 8;
            __m256 acc = _mm256_setzero_ps();
            for (int64_t e = 0; e < dd; e++) {
                __m256 df = _mm256_sub_ps(_mm256_set1_ps(P[i * d + e]), _mm256_loadu_ps(c + e * 8));
                __m256 sq = _mm256_mul_ps(df, df);
                acc = w ? _mm256_fmadd_ps(_mm256_set1_ps(w[e]), sq, acc) : _mm256_add_ps(acc, sq);
            }
            __m256 lt = _mm256_cmp_ps(acc, best, _CMP_LT_OQ);
            best = _mm256_blendv_ps(best, acc, lt);
            bidx = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(bidx), _mm256_castsi256_ps(cur), lt));
        }
        idx[i] = reduce_best(best, bidx, K);
    }
}

/* idx[i] for points [i0, i1) of P (n x d): nearest of the K centroids given component-major in
 * blocks of 8 (cs[(kb*d + e)*8 + lane], K padded to a multiple of 8 with far points), by
 * sum_e w_e (p_e - c_e)^2 in f32 (w NULL: 1); lowest index on ties */
void bt_cpu_kmeans_avx2(const float *P, int64_t d, const float *cs, int64_t K, const float *w,
                        int64_t i0, int64_t i1, int32_t *idx) {
    if (d == 4) km_pairs(P, d, cs, K, w, i0, i1, idx, 4);
    else if (d == 8) km_pairs(P, d, cs, K, w, i0, i1, idx, 8);
    else if (d == 6) km_pairs(P, d, cs, K, w, i0, i1, idx, 6);
    else km_pairs(P, d, cs, K, w, i0, i1, idx, 0);
}
