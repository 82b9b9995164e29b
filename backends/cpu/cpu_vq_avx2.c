/* cpu_vq_avx2.c - AVX2 kernels of the vq format: the batch-1 accumulation (for each row block,
 * the codebook vectors of its codes scaled by the pre-scaled activations, summed in registers;
 * v = 4 and 8 eight row blocks at a time, other lengths in a short loop) and the k-means
 * assignment. Built with -mavx2 -mfma -mbmi2. */
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

#define AI inline __attribute__((always_inline))

/* bits [lo, lo + n) of w times 2^sh: a byte offset into rows of 2^sh bytes (one rotate, one and) */
static AI uint64_t idx_off(uint64_t w, uint32_t lo, uint32_t n, uint32_t sh) {
    uint32_t r = (lo - sh) & 63;
    uint64_t x = r ? (w >> r) | (w << (64 - r)) : w;
    return x & ((((uint64_t)1 << n) - 1) << sh);
}

static AI const float *at(const float *base, uint64_t off) {
    return (const float *)(const void *)((const char *)base + off);
}

#if defined(__clang__)
#define UNROLL_ALL _Pragma("unroll 8")
#else
#define UNROLL_ALL _Pragma("GCC unroll 8")
#endif

/* Accumulation over all codes of NB (<= 8) row blocks whose streams are s0 + k*st, for v = 4
 * (VT __m128) or 8 (__m256): a_k += x[q] * (C + R)[code q of block k], one chain per row block
 * in stream order, so a block's sum is the same for any NB. Each pass reads a 64-bit word per
 * block (cpw codes of T bits; T = 0: any t <= 28, shifted into place); an index becomes a byte
 * offset by one rotate and one and, and the codebook row is the FMA's memory operand. RES: a
 * residual index above B1 main bits (B1 = 0: L->b1). Writes V*NB outputs at y. */
#define VQ_BLOCKS(NAME, VT, V, SH, LOAD, BCAST, FMA, ADD, ZERO, STORE)                              \
    static AI VT NAME##_row(const float *cm, const float *cr, uint64_t w, uint32_t lo, uint32_t b1,  \
                            uint32_t b2, int RES) {                                                 \
        VT c = LOAD(at(cm, idx_off(w, lo, b1, SH)));                                                \
        return RES ? ADD(c, LOAD(at(cr, idx_off(w, lo + b1, b2, SH)))) : c;                         \
    }                                                                                               \
    static AI void NAME(const struct bt_vq_layout *L, const float *cm0, const float *cr0,            \
                        const uint8_t *s0, uint64_t st, const float *xp, float *y, const int NB,     \
                        const uint32_t T, const uint32_t B1, const int RES) {                        \
        const uint32_t t = T ? T : L->t, b1 = RES ? (B1 ? B1 : L->b1) : t, b2 = t - b1;             \
        const uint32_t cpw = T ? 64 / T : 57 / t;                                                   \
        VT a0 = ZERO(), a1 = ZERO(), a2 = ZERO(), a3 = ZERO(), a4 = ZERO(), a5 = ZERO(), a6 = ZERO(), \
           a7 = ZERO();                                                                             \
        for (uint32_t g = 0; g < L->G; g++) {                                                       \
            const float *cm = cm0 + ((uint64_t)g << b1) * V, *cr = cr0 + ((uint64_t)g << b2) * V;    \
            int64_t q0 = (int64_t)g * L->gs, nw = L->gs / cpw;                                      \
            while (nw > 0 && (((uint64_t)(q0 + (nw - 1) * cpw) * t) >> 3) + 8 > L->S) nw--;        \
            const float *xq = xp + q0;                                                              \
            uint64_t bit = (uint64_t)q0 * t;                                                        \
            for (int64_t i = 0; i < nw; i++, xq += cpw, bit += (uint64_t)cpw * t) {                 \
                const uint8_t *s = s0 + (bit >> 3);                                                 \
                uint64_t w[8] = {0};                                                                \
                for (int k = 0; k < NB; k++) {                                                      \
                    memcpy(&w[k], s + k * st, 8);                                                   \
                    if (!T) w[k] >>= bit & 7;                                                       \
                }                                                                                   \
                uint64_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6], \
                         w7 = w[7];                                                                 \
                UNROLL_ALL                                                                          \
                for (uint32_t j = 0; j < cpw; j++) {                                                \
                    VT xb = BCAST(xq + j);                                                          \
                    uint32_t lo = j * t;                                                            \
                    a0 = FMA(xb, NAME##_row(cm, cr, w0, lo, b1, b2, RES), a0);                      \
                    if (NB > 1) a1 = FMA(xb, NAME##_row(cm, cr, w1, lo, b1, b2, RES), a1);          \
                    if (NB > 2) a2 = FMA(xb, NAME##_row(cm, cr, w2, lo, b1, b2, RES), a2);          \
                    if (NB > 3) a3 = FMA(xb, NAME##_row(cm, cr, w3, lo, b1, b2, RES), a3);          \
                    if (NB > 4) a4 = FMA(xb, NAME##_row(cm, cr, w4, lo, b1, b2, RES), a4);          \
                    if (NB > 5) a5 = FMA(xb, NAME##_row(cm, cr, w5, lo, b1, b2, RES), a5);          \
                    if (NB > 6) a6 = FMA(xb, NAME##_row(cm, cr, w6, lo, b1, b2, RES), a6);          \
                    if (NB > 7) a7 = FMA(xb, NAME##_row(cm, cr, w7, lo, b1, b2, RES), a7);          \
                }                                                                                   \
            }                                                                                       \
            for (int64_t q = q0 + nw * cpw; q < q0 + L->gs; q++) { /* the rest, code by code */     \
                VT xb = BCAST(xp + q), c[8];                                                        \
                for (int k = 0; k < NB; k++)                                                        \
                    c[k] = NAME##_row(cm, cr, code_at(s0 + k * st, L->S, q, t, (1ull << t) - 1), 0, \
                                      b1, b2, RES);                                                 \
                a0 = FMA(xb, c[0], a0);                                                             \
                if (NB > 1) a1 = FMA(xb, c[1], a1);                                                 \
                if (NB > 2) a2 = FMA(xb, c[2], a2);                                                 \
                if (NB > 3) a3 = FMA(xb, c[3], a3);                                                 \
                if (NB > 4) a4 = FMA(xb, c[4], a4);                                                 \
                if (NB > 5) a5 = FMA(xb, c[5], a5);                                                 \
                if (NB > 6) a6 = FMA(xb, c[6], a6);                                                 \
                if (NB > 7) a7 = FMA(xb, c[7], a7);                                                 \
            }                                                                                       \
        }                                                                                           \
        VT a[8] = {a0, a1, a2, a3, a4, a5, a6, a7};                                                 \
        for (int k = 0; k < NB; k++) STORE(y + V * k, a[k]);                                        \
    }
VQ_BLOCKS(v4_blocks, __m128, 4, 4, _mm_loadu_ps, _mm_broadcast_ss, _mm_fmadd_ps, _mm_add_ps, _mm_setzero_ps,
          _mm_storeu_ps)
VQ_BLOCKS(v8_blocks, __m256, 8, 5, _mm256_loadu_ps, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_add_ps,
          _mm256_setzero_ps, _mm256_storeu_ps)

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

/* one variant of the whole row-block loop per (v, code width, residual): NB_MAX row blocks per
 * pass while whole ones remain, then one at a time (the same sums) */
#define NB_MAX 8
#define STREAM(rb) ((((rb) + 1) * (int64_t)L->v > L->rows) ? tail : data + (uint64_t)(rb) * L->v * L->R)
#define VQ_ROWS(NAME, BLOCKS, V, T, B1, RES)                                                         \
    static __attribute__((noinline)) void NAME(const struct bt_vq_layout *L, const float *cm0,       \
                                               const float *cr0, const uint8_t *data,               \
                                               const uint8_t *tail, int64_t rb0, int64_t rb1,        \
                                               const float *xp, float *y) {                         \
        uint64_t st = (uint64_t)L->v * L->R;                                                        \
        int64_t rb = rb0;                                                                           \
        for (; rb + NB_MAX <= rb1 && (rb + NB_MAX) * V <= L->rows; rb += NB_MAX)                     \
            BLOCKS(L, cm0, cr0, data + (uint64_t)rb * st, st, xp, y + rb * V, NB_MAX, T, B1, RES);   \
        for (; rb < rb1; rb++) {                                                                    \
            float out[V];                                                                           \
            BLOCKS(L, cm0, cr0, STREAM(rb), st, xp, out, 1, T, B1, RES);                            \
            for (int64_t e = 0; e < V && rb * V + e < L->rows; e++) y[rb * V + e] = out[e];         \
        }                                                                                           \
    }
VQ_ROWS(v4_8, v4_blocks, 4, 8, 0, 0)
VQ_ROWS(v4_16, v4_blocks, 4, 16, 0, 0)
VQ_ROWS(v4_any, v4_blocks, 4, 0, 0, 0)
VQ_ROWS(v4_8r8, v4_blocks, 4, 16, 8, 1)
VQ_ROWS(v4_anyr, v4_blocks, 4, 0, 0, 1)
VQ_ROWS(v8_8, v8_blocks, 8, 8, 0, 0)
VQ_ROWS(v8_16, v8_blocks, 8, 16, 0, 0)
VQ_ROWS(v8_any, v8_blocks, 8, 0, 0, 0)
VQ_ROWS(v8_8r8, v8_blocks, 8, 16, 8, 1)
VQ_ROWS(v8_anyr, v8_blocks, 8, 0, 0, 1)

typedef void (*rows_fn)(const struct bt_vq_layout *, const float *, const float *, const uint8_t *,
                        const uint8_t *, int64_t, int64_t, const float *, float *);

void bt_cpu_vq_gemv_avx2(const struct bt_cpu_vq *q, const uint8_t *data, const uint8_t *tail,
                         int64_t rb0, int64_t rb1, const float *xp, float *y) {
    const struct bt_vq_layout *L = &q->L;
    const float *cm0 = q->cb + L->cb_main / 2, *cr0 = q->cb + L->cb_res / 2;
    int res = L->b2 != 0, r88 = res && L->b1 == 8 && L->b2 == 8;
    rows_fn fn = NULL;
    if (L->t <= 28 && L->v == 4)
        fn = res ? (r88 ? v4_8r8 : v4_anyr) : L->t == 8 ? v4_8 : L->t == 16 ? v4_16 : v4_any;
    else if (L->t <= 28 && L->v == 8)
        fn = res ? (r88 ? v8_8r8 : v8_anyr) : L->t == 8 ? v8_8 : L->t == 16 ? v8_16 : v8_any;
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
