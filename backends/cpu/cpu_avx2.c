/* cpu_avx2.c - AVX2+FMA+F16C kernels: ternary int8 GEMV (unsigned codes x int8 activations with
 * vpmaddubsw, the -1 folded into activation block sums), ternary/F16/BF16/F32 f32 GEMV, fast
 * decoders, and the f32 4x3 gemm micro-kernel. Compiled with -mavx2 -mfma -mf16c. */
#include "cpu_kern.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* ---- helpers ------------------------------------------------------------------------------- */
AI float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AI float h2f(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | (p[1] << 8))); }

/* codes of one L0 chunk of one plane in element order: 4 x 32 (C = 128) or 2 x 32 (C = 64) */
AI void l0_chunk(const uint8_t *s, uint32_t C, __m256i *v) {
    const __m256i m3 = _mm256_set1_epi8(3);
    if (C == 128) {
        __m256i q = _mm256_loadu_si256((const __m256i *)s);
        v[0] = _mm256_and_si256(q, m3);
        v[1] = _mm256_and_si256(_mm256_srli_epi16(q, 2), m3);
        v[2] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m3);
        v[3] = _mm256_and_si256(_mm256_srli_epi16(q, 6), m3);
    } else { /* 16 bytes: low lane gets shifts 0/4, high lane 2/6 */
        __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)s));
        v[0] = _mm256_and_si256(_mm256_srlv_epi32(q, _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2)), m3);
        v[1] = _mm256_and_si256(_mm256_srlv_epi32(q, _mm256_setr_epi32(4, 4, 4, 4, 6, 6, 6, 6)), m3);
    }
}

/* TQ1_0 trits of 16 bytes (in the high byte of 16-bit lanes) times 3^n: code = ((q*3^n)%256*3)>>8 */
AI __m256i tq1_digits32(__m256i q, int pw) {
    __m256i lo = _mm256_unpacklo_epi8(_mm256_setzero_si256(), q);
    __m256i hi = _mm256_unpackhi_epi8(_mm256_setzero_si256(), q);
    __m256i m = _mm256_set1_epi16((short)pw), three = _mm256_set1_epi16(3);
    lo = _mm256_mulhi_epu16(_mm256_mullo_epi16(lo, m), three);
    hi = _mm256_mulhi_epu16(_mm256_mullo_epi16(hi, m), three);
    return _mm256_packus_epi16(lo, hi);
}

AI __m128i tq1_digits16(__m128i q, int pw) {
    __m128i lo = _mm_unpacklo_epi8(_mm_setzero_si128(), q);
    __m128i hi = _mm_unpackhi_epi8(_mm_setzero_si128(), q);
    __m128i m = _mm_set1_epi16((short)pw), three = _mm_set1_epi16(3);
    lo = _mm_mulhi_epu16(_mm_mullo_epi16(lo, m), three);
    hi = _mm_mulhi_epu16(_mm_mullo_epi16(hi, m), three);
    return _mm_packus_epi16(lo, hi);
}

static void tq1_codes(const uint8_t *blk, uint8_t *codes) {
    static const int pw[5] = {1, 3, 9, 27, 81};
    __m256i q0 = _mm256_loadu_si256((const __m256i *)blk);
    __m128i q1 = _mm_loadu_si128((const __m128i *)(blk + 32));
    for (int n = 0; n < 5; n++) {
        _mm256_storeu_si256((__m256i *)(codes + 32 * n), tq1_digits32(q0, pw[n]));
        _mm_storeu_si128((__m128i *)(codes + 160 + 16 * n), tq1_digits16(q1, pw[n]));
    }
    for (int n = 0; n < 4; n++)
        for (int j = 0; j < 4; j++) {
            uint8_t p = (uint8_t)(blk[48 + j] * pw[n]);
            codes[240 + j + 4 * n] = (uint8_t)(((uint16_t)p * 3) >> 8);
        }
}

/* codes (t+1, plane-major N x B) of any ternary block */
static void tern_codes(const struct bt_cpu_tgeom *g, const uint8_t *blk, uint8_t *codes) {
    if (g->kind == BT_CPU_TQ1) {
        tq1_codes(blk, codes);
    } else if (g->kind == BT_CPU_L0) {
        uint32_t N = g->N, B = g->B, C = g->C, S = C / 4;
        const uint8_t *q = blk + g->code_off;
        for (uint32_t c0 = 0; c0 < B; c0 += C)
            for (uint32_t p = 0; p < N; p++) {
                __m256i v[4];
                l0_chunk(q + (size_t)(c0 / C) * N * S + (size_t)p * S, C, v);
                for (uint32_t k = 0; k < C / 32; k++)
                    _mm256_storeu_si256((__m256i *)(codes + p * B + c0 + 32 * k), v[k]);
            }
    } else {
        bt_cpu_ref_codes(g, blk, codes);
    }
}

/* ---- int8 GEMV: L0 (TQ2_0, MTQ layout 0) straight from registers ---------------------------- */
AI float tscale(const struct bt_cpu_tgeom *g, const uint8_t *blk, uint32_t p) {
    return h2f(blk + g->scale_off + 2 * p);
}

/* One row. Per block and plane, codes {0,1,2} x xq accumulate in int16 (|sum| <= 8*2*2*128 over
 * a 256-block), widen once, and one FMA applies scale_w*xs; sum(t*x) = sum(c*x) - sum(x) with
 * the activation sums subtracted once per row (corr). Needs ablock % B == 0. N, B constant. */
AI float q8_l0_row(const struct bt_cpu_tgeom *g, const uint8_t *blk, int64_t nb,
                   const struct bt_cpu_act *a, const uint32_t N, const uint32_t B) {
    const uint32_t C = B < 128 ? B : 128, S = C / 4, NV = C / 32, NC = B / C;
    const __m256i ones = _mm256_set1_epi16(1);
    const size_t bb = g->bb, co = g->code_off;
    __m256 facc = _mm256_setzero_ps();
    float corr = 0.0f;
    for (int64_t b = 0; b < nb; b++, blk += bb) {
        const int8_t *xq = a->xq + b * B;
        const uint8_t *q = blk + co;
        __m256i acc[8];
#pragma GCC unroll 8
        for (uint32_t p = 0; p < N; p++) acc[p] = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (uint32_t ci = 0; ci < NC; ci++) {
            __m256i xv[4];
#pragma GCC unroll 4
            for (uint32_t k = 0; k < NV; k++)
                xv[k] = _mm256_loadu_si256((const __m256i *)(xq + ci * C + 32 * k));
#pragma GCC unroll 8
            for (uint32_t p = 0; p < N; p++) {
                __m256i v[4];
                l0_chunk(q + (size_t)ci * N * S + (size_t)p * S, C, v);
#pragma GCC unroll 4
                for (uint32_t k = 0; k < NV; k++)
                    acc[p] = _mm256_add_epi16(acc[p], _mm256_maddubs_epi16(v[k], xv[k]));
            }
        }
        const int32_t *bs = a->bsum + b * (B / 32);
        int32_t sb = 0;
#pragma GCC unroll 8
        for (uint32_t k = 0; k < B / 32; k++) sb += bs[k];
        float xs = a->xs[(b * B) / a->ablock];
#pragma GCC unroll 8
        for (uint32_t p = 0; p < N; p++) {
            float sc = tscale(g, blk, p) * xs;
            __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(acc[p], ones));
            facc = _mm256_fmadd_ps(f, _mm256_set1_ps(sc), facc);
            corr += sc * (float)sb;
        }
    }
    return hsum8(facc) - corr;
}

#define Q8_L0(NP, BB)                                                                      \
    static void q8_l0_##NP##_##BB(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb,  \
                                  int64_t nrows, int64_t cols, const struct bt_cpu_act *a, \
                                  float *y) {                                              \
        struct bt_cpu_tgeom g;                                                             \
        bt_cpu_tgeom_of(fmt, &g);                                                          \
        for (int64_t r = 0; r < nrows; r++)                                                \
            y[r] = q8_l0_row(&g, W + (size_t)r * rb, cols / BB, a, NP, BB);                \
    }
#define Q8_L0_N(BB)                                                                        \
    Q8_L0(1, BB) Q8_L0(2, BB) Q8_L0(3, BB) Q8_L0(4, BB)                                    \
    Q8_L0(5, BB) Q8_L0(6, BB) Q8_L0(7, BB) Q8_L0(8, BB)
Q8_L0_N(64)
Q8_L0_N(128)
Q8_L0_N(256)
#define Q8_L0_ROW(BB)                                                                      \
    {q8_l0_1_##BB, q8_l0_2_##BB, q8_l0_3_##BB, q8_l0_4_##BB,                               \
     q8_l0_5_##BB, q8_l0_6_##BB, q8_l0_7_##BB, q8_l0_8_##BB}
static const bt_cpu_gemv_q8_fn q8_l0_tab[3][8] = {Q8_L0_ROW(64), Q8_L0_ROW(128), Q8_L0_ROW(256)};

/* ---- int8 GEMV from a decoded code buffer (TQ1_0, MTQ layout 1, and any ablock) ------------- */
static void q8_codes(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                     int64_t cols, const struct bt_cpu_act *a, float *y) {
    struct bt_cpu_tgeom g;
    uint8_t codes[8 * 256 + 8] __attribute__((aligned(32)));
    bt_cpu_tgeom_of(fmt, &g);
    const __m256i ones = _mm256_set1_epi16(1);
    const int whole = a->ablock % g.B == 0;
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *blk = W + (size_t)r * rb;
        __m256 facc = _mm256_setzero_ps();
        float corr = 0.0f;
        for (int64_t c0 = 0; c0 < cols; c0 += g.B, blk += g.bb) {
            tern_codes(&g, blk, codes);
            for (uint32_t p = 0; p < g.N; p++) {
                const uint8_t *cp = codes + p * g.B;
                float sw = tscale(&g, blk, p);
                if (whole) {
                    __m256i acc = _mm256_setzero_si256();
                    int32_t sb = 0;
                    for (uint32_t e = 0; e < g.B; e += 32) {
                        __m256i c = _mm256_load_si256((const __m256i *)(cp + e));
                        __m256i x = _mm256_loadu_si256((const __m256i *)(a->xq + c0 + e));
                        acc = _mm256_add_epi16(acc, _mm256_maddubs_epi16(c, x));
                        sb += a->bsum[(c0 + e) / 32];
                    }
                    float sc = sw * a->xs[c0 / a->ablock];
                    __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(acc, ones));
                    facc = _mm256_fmadd_ps(f, _mm256_set1_ps(sc), facc);
                    corr += sc * (float)sb;
                    continue;
                }
                for (uint32_t e = 0; e < g.B; e += 32) { /* one scale per 32 */
                    __m256i c = _mm256_load_si256((const __m256i *)(cp + e));
                    __m256i x = _mm256_loadu_si256((const __m256i *)(a->xq + c0 + e));
                    __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(c, x), ones));
                    float sc = sw * a->xs[(c0 + e) / a->ablock];
                    facc = _mm256_fmadd_ps(f, _mm256_set1_ps(sc), facc);
                    corr += sc * (float)a->bsum[(c0 + e) / 32];
                }
            }
        }
        y[r] = hsum8(facc) - corr;
    }
}

/* Q8_0 weights x int8 activations: |w| x sign(x, w) through vpmaddubsw */
static void q8_q8_0(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                    int64_t cols, const struct bt_cpu_act *a, float *y) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *b = W + (size_t)r * rb;
        __m256 facc = _mm256_setzero_ps();
        for (int64_t c0 = 0; c0 < cols; c0 += 32, b += 34) {
            __m256i w = _mm256_loadu_si256((const __m256i *)(b + 2));
            __m256i x = _mm256_loadu_si256((const __m256i *)(a->xq + c0));
            __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
            __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
            facc = _mm256_fmadd_ps(f, _mm256_set1_ps(h2f(b) * a->xs[c0 / a->ablock]), facc);
        }
        y[r] = hsum8(facc);
    }
}

/* ternary: the L0 register kernel when ablock is a multiple of the block, else the code buffer */
static void q8_tern(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                    int64_t cols, const struct bt_cpu_act *a, float *y) {
    struct bt_cpu_tgeom g;
    bt_cpu_tgeom_of(fmt, &g);
    if (g.kind == BT_CPU_L0 && a->ablock % g.B == 0)
        q8_l0_tab[g.B == 64 ? 0 : g.B == 128 ? 1 : 2][g.N - 1](fmt, W, rb, nrows, cols, a, y);
    else
        q8_codes(fmt, W, rb, nrows, cols, a, y);
}

static bt_cpu_gemv_q8_fn avx2_pick_gemv_q8(const struct bt_tfmt *fmt) {
    struct bt_cpu_tgeom g;
    if (fmt->type == BT_TYPE_Q8_0) return q8_q8_0;
    return bt_cpu_tgeom_of(fmt, &g) ? q8_tern : NULL;
}

/* ---- f32 GEMV -------------------------------------------------------------------------------- */
/* sum_i (codes[i] - 1) * x[i] over n (multiple of 8) codes */
AI __m256 dot_codes_f32(const uint8_t *c, const float *x, uint32_t n, __m256 acc) {
    const __m256i one = _mm256_set1_epi32(1);
    for (uint32_t i = 0; i < n; i += 8) {
        __m256i ci = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(c + i)));
        __m256 t = _mm256_cvtepi32_ps(_mm256_sub_epi32(ci, one));
        acc = _mm256_fmadd_ps(t, _mm256_loadu_ps(x + i), acc);
    }
    return acc;
}

static void f32_tern(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                     int64_t cols, const float *x, float *y) {
    struct bt_cpu_tgeom g;
    uint8_t codes[8 * 256 + 8] __attribute__((aligned(32)));
    bt_cpu_tgeom_of(fmt, &g);
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *blk = W + (size_t)r * rb;
        __m256 tot = _mm256_setzero_ps();
        for (int64_t c0 = 0; c0 < cols; c0 += g.B, blk += g.bb) {
            tern_codes(&g, blk, codes);
            for (uint32_t p = 0; p < g.N; p++) {
                __m256 acc = dot_codes_f32(codes + p * g.B, x + c0, g.B, _mm256_setzero_ps());
                tot = _mm256_fmadd_ps(acc, _mm256_set1_ps(tscale(&g, blk, p)), tot);
            }
        }
        y[r] = hsum8(tot);
    }
}

/* 8 weights of a float row starting at element i */
AI __m256 load8(uint32_t type, const uint8_t *row, int64_t i) {
    if (type == BT_TYPE_F32) return _mm256_loadu_ps((const float *)(const void *)(row + 4 * i));
    __m128i h = _mm_loadu_si128((const __m128i *)(row + 2 * i));
    if (type == BT_TYPE_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

AI float load1(uint32_t type, const uint8_t *row, int64_t i) {
    if (type == BT_TYPE_F32) { float f; memcpy(&f, row + 4 * i, 4); return f; }
    uint16_t h = (uint16_t)(row[2 * i] | (row[2 * i + 1] << 8));
    return type == BT_TYPE_F16 ? _cvtsh_ss(h) : bt_bf16_to_f32(h);
}

AI void f32_float_rows(uint32_t type, const uint8_t *W, size_t rb, int64_t nrows, int64_t cols,
                       const float *x, float *y) {
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *row = W + (size_t)r * rb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t i = 0;
        for (; i + 32 <= cols; i += 32) {
            a0 = _mm256_fmadd_ps(load8(type, row, i), _mm256_loadu_ps(x + i), a0);
            a1 = _mm256_fmadd_ps(load8(type, row, i + 8), _mm256_loadu_ps(x + i + 8), a1);
            a2 = _mm256_fmadd_ps(load8(type, row, i + 16), _mm256_loadu_ps(x + i + 16), a2);
            a3 = _mm256_fmadd_ps(load8(type, row, i + 24), _mm256_loadu_ps(x + i + 24), a3);
        }
        for (; i + 8 <= cols; i += 8) a0 = _mm256_fmadd_ps(load8(type, row, i), _mm256_loadu_ps(x + i), a0);
        float t = 0.0f;
        for (; i < cols; i++) t += load1(type, row, i) * x[i];
        y[r] = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) + t;
    }
}

static void f32_f32(const struct bt_tfmt *f, const uint8_t *W, size_t rb, int64_t n, int64_t c,
                    const float *x, float *y) { f32_float_rows(BT_TYPE_F32, W, rb, n, c, x, y); }
static void f32_f16(const struct bt_tfmt *f, const uint8_t *W, size_t rb, int64_t n, int64_t c,
                    const float *x, float *y) { f32_float_rows(BT_TYPE_F16, W, rb, n, c, x, y); }
static void f32_bf16(const struct bt_tfmt *f, const uint8_t *W, size_t rb, int64_t n, int64_t c,
                     const float *x, float *y) { f32_float_rows(BT_TYPE_BF16, W, rb, n, c, x, y); }

static bt_cpu_gemv_f32_fn avx2_pick_gemv_f32(const struct bt_tfmt *fmt) {
    struct bt_cpu_tgeom g;
    switch (fmt->type) {
    case BT_TYPE_F32: return f32_f32;
    case BT_TYPE_F16: return f32_f16;
    case BT_TYPE_BF16: return f32_bf16;
    default: return bt_cpu_tgeom_of(fmt, &g) ? f32_tern : NULL;
    }
}

/* ---- decode (bit-identical to bt_to_f32) ------------------------------------------------------ */
static void dec_tern(const struct bt_tfmt *fmt, const uint8_t *src, int64_t n, float *dst) {
    struct bt_cpu_tgeom g;
    uint8_t codes[8 * 256 + 8] __attribute__((aligned(32)));
    bt_cpu_tgeom_of(fmt, &g);
    const __m256i one = _mm256_set1_epi32(1);
    for (int64_t c0 = 0; c0 < n; c0 += g.B, src += g.bb) {
        tern_codes(&g, src, codes);
        for (uint32_t i = 0; i < g.B; i += 8) {
            __m256 v = _mm256_setzero_ps();
            for (uint32_t p = 0; p < g.N; p++) {
                __m256i ci = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(codes + p * g.B + i)));
                __m256 t = _mm256_cvtepi32_ps(_mm256_sub_epi32(ci, one));
                __m256 m = _mm256_mul_ps(_mm256_set1_ps(tscale(&g, src, p)), t);
                v = fmt->type == BT_TYPE_MTQ ? _mm256_add_ps(v, m) : m; /* TQ*: d * t */
            }
            _mm256_storeu_ps(dst + c0 + i, v);
        }
    }
}

AI void dec_float(uint32_t type, const uint8_t *src, int64_t n, float *dst) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8(type, src, i));
    for (; i < n; i++) dst[i] = load1(type, src, i);
}

static void dec_f32(const struct bt_tfmt *f, const uint8_t *s, int64_t n, float *d) { dec_float(BT_TYPE_F32, s, n, d); }
static void dec_f16(const struct bt_tfmt *f, const uint8_t *s, int64_t n, float *d) { dec_float(BT_TYPE_F16, s, n, d); }
static void dec_bf16(const struct bt_tfmt *f, const uint8_t *s, int64_t n, float *d) { dec_float(BT_TYPE_BF16, s, n, d); }

static bt_cpu_decode_fn avx2_pick_decode(const struct bt_tfmt *fmt) {
    struct bt_cpu_tgeom g;
    switch (fmt->type) {
    case BT_TYPE_F32: return dec_f32;
    case BT_TYPE_F16: return dec_f16;
    case BT_TYPE_BF16: return dec_bf16;
    default: return bt_cpu_tgeom_of(fmt, &g) ? dec_tern : NULL;
    }
}

/* ---- gemm micro-kernel ------------------------------------------------------------------------ */
/* One (row, token) pair is always: 8-lane FMA accumulation over 8-column steps, scalar tail,
 * fixed horizontal sum -- the 4x3 block and the edge path give bit-identical values. */
AI float dot_pair(const float *w, const float *x, int64_t cols) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= cols; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), acc);
    float t = 0.0f;
    for (; i < cols; i++) t += w[i] * x[i];
    return hsum8(acc) + t;
}

static void tile43(const float *W, int64_t cols, const float *X, float *Y, int64_t ldy) {
    __m256 acc[4][3];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 3; t++) acc[r][t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= cols; i += 8) {
        __m256 x0 = _mm256_loadu_ps(X + i), x1 = _mm256_loadu_ps(X + cols + i),
               x2 = _mm256_loadu_ps(X + 2 * cols + i);
        for (int r = 0; r < 4; r++) {
            __m256 w = _mm256_loadu_ps(W + r * cols + i);
            acc[r][0] = _mm256_fmadd_ps(w, x0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(w, x1, acc[r][1]);
            acc[r][2] = _mm256_fmadd_ps(w, x2, acc[r][2]);
        }
    }
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 3; t++) {
            float s = 0.0f;
            for (int64_t k = i; k < cols; k++) s += W[r * cols + k] * X[t * cols + k];
            Y[t * ldy + r] = hsum8(acc[r][t]) + s;
        }
}

static void avx2_tile(const float *Wf, int64_t nr, int64_t cols, const float *X, int64_t ntok,
                      float *Y, int64_t ldy) {
    for (int64_t t0 = 0; t0 < ntok; t0 += 3)
        for (int64_t r0 = 0; r0 < nr; r0 += 4) {
            if (t0 + 3 <= ntok && r0 + 4 <= nr) {
                tile43(Wf + r0 * cols, cols, X + t0 * cols, Y + t0 * ldy + r0, ldy);
                continue;
            }
            for (int64_t t = t0; t < ntok && t < t0 + 3; t++)
                for (int64_t r = r0; r < nr && r < r0 + 4; r++)
                    Y[t * ldy + r] = dot_pair(Wf + r * cols, X + t * cols, cols);
        }
}

const struct bt_cpu_isa bt_cpu_isa_avx2 = {
    "avx2", avx2_pick_gemv_f32, avx2_pick_gemv_q8, avx2_pick_decode, avx2_tile,
};
