/* cpu_avx2.c - AVX2+FMA+F16C kernels: ternary int8 GEMM/GEMV (unsigned codes x int8 activations
 * with vpmaddubsw in 4-row x 3-token tiles, the -1 folded into activation run sums), ternary /
 * F16 / BF16 / F32 f32 GEMV, fast decoders, and the f32 4x3 gemm micro-kernel.
 * Compiled with -mavx2 -mfma -mf16c -ffp-contract=off. */
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

AI float tscale(const struct bt_cpu_tgeom *g, const uint8_t *blk, uint32_t p) {
    return h2f(blk + g->scale_off + 2 * p);
}

/* ---- int8 GEMM/GEMV tiles (ternary): 4 rows, one per float lane, x T tokens ------------------ */
/* Per (row, token), block, plane and activation-scale run (the block when ablock % B == 0, else
 * 32 elements): isum = sum c*xq (vpmaddubsw into int16 lanes, |lane| <= 8*2*2*127 over a run of
 * 256) minus sum xq, exact in int32; then y += (sw * xs) * (float)isum with a separate mul, mul
 * and add (this file is built with -ffp-contract=off): the scalar reference's arithmetic, so the
 * value of a (row, token) depends neither on the tile, the token count, the thread split nor on
 * the backend. Codes come straight from the packed rows (L0 with whole runs) or from rows
 * decoded once per token block into scratch (TQ1_0, MTQ layout 1, runs of 32). */
#define Q8_T  3            /* tokens per tile */
#define Q8_XL (384u << 10) /* activation bytes per token block (kept in L2) */
#define Q8_PF 8            /* rows ahead prefetched by the one-token tile */
#define Q8_KL (16u << 10)  /* bytes of decoded codes of 4 rows per column slice (kept in L1) */

/* [sum a, sum b, sum c, sum d] of 8 int32 lanes each */
AI __m128i hsum4_epi32(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

AI short ld16(const uint8_t *p) { return (short)(uint16_t)(p[0] | (p[1] << 8)); }

/* fp16 scales at byte offset off of the 4 rows */
AI __m128 scales4(const uint8_t *const rp[4], size_t off) {
    return _mm_cvtph_ps(_mm_setr_epi16(ld16(rp[0] + off), ld16(rp[1] + off), ld16(rp[2] + off),
                                       ld16(rp[3] + off), 0, 0, 0, 0));
}

/* end of a run: facc[t] += (sw * xs[t]) * (sum_r acc[r][t] - sb[t]), lane r */
AI void q8_epi(__m256i acc[4][Q8_T], const uint32_t T, __m128 sw, const int32_t *sb,
               const float *xs, int64_t sbs, __m128 *facc) {
    const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 4
    for (uint32_t t = 0; t < T; t++) {
        __m128i is = hsum4_epi32(_mm256_madd_epi16(acc[0][t], ones), _mm256_madd_epi16(acc[1][t], ones),
                                 _mm256_madd_epi16(acc[2][t], ones), _mm256_madd_epi16(acc[3][t], ones));
        is = _mm_sub_epi32(is, _mm_set1_epi32(sb[t * sbs]));
        __m128 sc = _mm_mul_ps(sw, _mm_set1_ps(xs[t * sbs]));
        facc[t] = _mm_add_ps(facc[t], _mm_mul_ps(sc, _mm_cvtepi32_ps(is)));
    }
}

/* what a tile of 4 rows x T tokens reads */
struct q8_tile {
    const struct bt_cpu_tgeom *g;     /* block geometry */
    const uint8_t             *rp[4]; /* packed rows (the last row repeats past the end) */
    const uint8_t             *cp;    /* decoded codes of the 4 rows: per block, plane and 32
                                         columns, the rows' 32 codes one after the other */
    const __m128              *sw;    /* [block * N + plane]: the 4 rows' scales (codes tiles) */
    int64_t                    cols;  /* columns = distance between tokens in xq */
    uint32_t                   rl;    /* run: elements per integer dot (B, or 32) */
    const int8_t              *xq;    /* first token's int8 activations */
    const int32_t             *sum;   /* first token's activation sums per run, sums apart */
    const float               *xs;    /* first token's activation scale per run, sums apart */
    int64_t                    sums;  /* runs per token: cols / rl */
    int64_t                    b0, b1;/* the blocks to add to facc (in order) */
    size_t                     pf;    /* prefetch distance from rp[0] (bytes) */
};

#define Q8_ZERO(acc, T)                                                                     \
    _Pragma("GCC unroll 4") for (int r_ = 0; r_ < 4; r_++)                                  \
    _Pragma("GCC unroll 4") for (uint32_t t_ = 0; t_ < (T); t_++)                           \
        acc[r_][t_] = _mm256_setzero_si256()

/* acc[r][t] += codes v (row r) . xq of token t at x (tokens cols apart) */
#define Q8_MAC(acc, r, v, x, T)                                                             \
    _Pragma("GCC unroll 4") for (uint32_t t_ = 0; t_ < (T); t_++)                           \
        acc[r][t_] = _mm256_add_epi16(acc[r][t_], _mm256_maddubs_epi16(                     \
            v, _mm256_loadu_si256((const __m256i *)((x) + t_ * cols))))

/* L0 codes straight from the packed rows (rl == B); C: chunk, 128 or 64 */
AI void q8_l0_tile(const struct q8_tile *k0, const uint32_t T, const uint32_t C, __m128 *fio) {
    const struct q8_tile kl = *k0, *k = &kl; /* locals: no aliasing with fio */
    const struct bt_cpu_tgeom *g = k->g;
    __m128 facc[Q8_T];
    for (uint32_t t = 0; t < T; t++) facc[t] = fio[t];
    const uint32_t N = g->N, B = g->B, S = C / 4, NC = B / C;
    const __m256i m3 = _mm256_set1_epi8(3);
    const int64_t cols = k->cols;
    for (int64_t b = k->b0; b < k->b1; b++) {
        const size_t boff = (size_t)b * g->bb;
        const int8_t *xb = k->xq + b * B;
        if (T == 1) /* the 4 interleaved row streams defeat the prefetcher: fetch the next group */
            for (size_t o = 0; o < 4 * g->bb; o += 64)
                _mm_prefetch((const char *)k->rp[0] + k->pf + 4 * boff + o, _MM_HINT_T0);
        for (uint32_t p = 0; p < N; p++) {
            __m256i acc[4][Q8_T];
            Q8_ZERO(acc, T);
            for (uint32_t ci = 0; ci < NC; ci++) {
                const size_t qo = boff + g->code_off + (size_t)(ci * N + p) * S;
                const int8_t *xc = xb + ci * C;
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++) {
                    if (C == 128) {
                        __m256i q = _mm256_loadu_si256((const __m256i *)(k->rp[r] + qo));
                        __m256i v0 = _mm256_and_si256(q, m3);
                        Q8_MAC(acc, r, v0, xc, T);
                        __m256i v1 = _mm256_and_si256(_mm256_srli_epi16(q, 2), m3);
                        Q8_MAC(acc, r, v1, xc + 32, T);
                        __m256i v2 = _mm256_and_si256(_mm256_srli_epi16(q, 4), m3);
                        Q8_MAC(acc, r, v2, xc + 64, T);
                        __m256i v3 = _mm256_and_si256(_mm256_srli_epi16(q, 6), m3);
                        Q8_MAC(acc, r, v3, xc + 96, T);
                    } else { /* 16 bytes: low lane gets shifts 0/4, high lane 2/6 */
                        __m256i q = _mm256_broadcastsi128_si256(
                            _mm_loadu_si128((const __m128i *)(k->rp[r] + qo)));
                        __m256i v0 = _mm256_and_si256(
                            _mm256_srlv_epi32(q, _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2)), m3);
                        Q8_MAC(acc, r, v0, xc, T);
                        __m256i v1 = _mm256_and_si256(
                            _mm256_srlv_epi32(q, _mm256_setr_epi32(4, 4, 4, 4, 6, 6, 6, 6)), m3);
                        Q8_MAC(acc, r, v1, xc + 32, T);
                    }
                }
            }
            /* scales read here, in the streaming order (a separate gather pass over the rows
             * would take the cache misses without the prefetcher) */
            q8_epi(acc, T, scales4(k->rp, boff + g->scale_off + 2 * p), k->sum + b, k->xs + b,
                   k->sums, facc);
        }
    }
    for (uint32_t t = 0; t < T; t++) fio[t] = facc[t];
}

/* 32 columns of a 4-row x 3-token tile: 2 tokens' activations in registers, the third as a
 * memory operand, 4 code loads, 12 vpmaddubsw, 12 vpaddw. In asm because GCC keeps all three
 * in registers and then spills accumulators; ymm12-15 are named to stay within 30 operands. */
#define Q8_ROW3(c, a0, a1, a2)                                                              \
    "vmovdqu " c "(%[c]), %%ymm14\n\t"                                                      \
    "vpmaddubsw %%ymm12, %%ymm14, %%ymm15\n\t"                                               \
    "vpaddw %%ymm15, %[" a0 "], %[" a0 "]\n\t"                                              \
    "vpmaddubsw %%ymm13, %%ymm14, %%ymm15\n\t"                                               \
    "vpaddw %%ymm15, %[" a1 "], %[" a1 "]\n\t"                                              \
    "vpmaddubsw (%[x],%[n],2), %%ymm14, %%ymm14\n\t"                                         \
    "vpaddw %%ymm14, %[" a2 "], %[" a2 "]\n\t"
AI void q8_step3(__m256i acc[4][Q8_T], const uint8_t *c, const int8_t *x, int64_t n) {
    __asm__("vmovdqu (%[x]), %%ymm12\n\t"
            "vmovdqu (%[x],%[n],1), %%ymm13\n\t"
            Q8_ROW3("", "a00", "a01", "a02") Q8_ROW3("32", "a10", "a11", "a12")
            Q8_ROW3("64", "a20", "a21", "a22") Q8_ROW3("96", "a30", "a31", "a32")
            : [a00] "+x"(acc[0][0]), [a01] "+x"(acc[0][1]), [a02] "+x"(acc[0][2]),
              [a10] "+x"(acc[1][0]), [a11] "+x"(acc[1][1]), [a12] "+x"(acc[1][2]),
              [a20] "+x"(acc[2][0]), [a21] "+x"(acc[2][1]), [a22] "+x"(acc[2][2]),
              [a30] "+x"(acc[3][0]), [a31] "+x"(acc[3][1]), [a32] "+x"(acc[3][2])
            : [c] "r"(c), [x] "r"(x), [n] "r"(n)
            : "xmm12", "xmm13", "xmm14", "xmm15");
}

/* codes from the decoded rows (k->cp), runs of rl elements */
AI void q8_codes_tile(const struct q8_tile *k0, const uint32_t T, __m128 *fio) {
    const struct q8_tile kl = *k0, *k = &kl; /* locals: no aliasing with fio */
    const struct bt_cpu_tgeom *g = k->g;
    __m128 facc[Q8_T];
    for (uint32_t t = 0; t < T; t++) facc[t] = fio[t];
    const uint32_t N = g->N, B = g->B, rl = k->rl;
    const int64_t cols = k->cols;
    for (int64_t b = k->b0; b < k->b1; b++) {
        const int8_t *xb = k->xq + b * B;
        const int64_t u0 = b * (B / rl); /* first run of the block */
        for (uint32_t p = 0; p < N; p++) {
            const uint8_t *cb = k->cp + ((size_t)b * N + p) * B * 4;
            for (uint32_t e0 = 0, u = (uint32_t)u0; e0 < B; e0 += rl, u++) {
                __m256i acc[4][Q8_T];
                Q8_ZERO(acc, T);
                for (uint32_t e = e0; e < e0 + rl; e += 32) {
                    const uint8_t *c = cb + 4 * e;
                    if (T == 3) {
                        q8_step3(acc, c, xb + e, cols);
                        continue;
                    }
                    __m256i v0 = _mm256_load_si256((const __m256i *)c);
                    Q8_MAC(acc, 0, v0, xb + e, T);
                    __m256i v1 = _mm256_load_si256((const __m256i *)(c + 32));
                    Q8_MAC(acc, 1, v1, xb + e, T);
                    __m256i v2 = _mm256_load_si256((const __m256i *)(c + 64));
                    Q8_MAC(acc, 2, v2, xb + e, T);
                    __m256i v3 = _mm256_load_si256((const __m256i *)(c + 96));
                    Q8_MAC(acc, 3, v3, xb + e, T);
                }
                q8_epi(acc, T, k->sw[b * N + p], k->sum + u, k->xs + u, k->sums, facc);
            }
        }
    }
    for (uint32_t t = 0; t < T; t++) fio[t] = facc[t];
}

/* facc[t] (lane r) += the products of blocks b0..b1-1 */
typedef void (*q8_tile_fn)(const struct q8_tile *k, __m128 *facc);
static void q8_l0a_1(const struct q8_tile *k, __m128 *facc) { q8_l0_tile(k, 1, 128, facc); }
static void q8_l0b_1(const struct q8_tile *k, __m128 *facc) { q8_l0_tile(k, 1, 64, facc); }
static void q8_cd_1(const struct q8_tile *k, __m128 *facc) { q8_codes_tile(k, 1, facc); }
static void q8_cd_3(const struct q8_tile *k, __m128 *facc) { q8_codes_tile(k, Q8_T, facc); }

/* tokens per token block: Q8_XL bytes of activations, a multiple of Q8_T */
static int64_t q8_tb(int64_t cols) {
    int64_t tb = (int64_t)Q8_XL / cols;
    return tb < Q8_T ? Q8_T : tb - tb % Q8_T;
}

/* scratch layout: 4 decoded rows (when used), run sums and scales of a token block, the rows'
 * scales */
struct q8_scr {
    size_t codes; /* bytes of the 4 decoded rows (0: rows are not decoded) */
    size_t sums;  /* offset of the int32 run sums, then as many f32 run scales */
    size_t sw;    /* offset of the __m128 scales (32-byte aligned) */
    size_t total; /* bytes */
};

static struct q8_scr q8_scratch(const struct bt_cpu_tgeom *g, int64_t cols, int64_t ablock,
                                int64_t ntok) {
    struct q8_scr s = {0, 0, 0, 0};
    const int whole = ablock % g->B == 0;
    /* rows are decoded unless every tile reads L0 codes in place (one-token tiles only) */
    if (!(whole && g->kind == BT_CPU_L0 && ntok < Q8_T))
        s.codes = 4 * (size_t)g->N * (size_t)cols;
    s.sums = s.codes;
    int64_t tb = q8_tb(cols);
    if (tb > ntok) tb = ntok;
    s.sw = (s.sums + (size_t)tb * (size_t)(cols / (whole ? g->B : 32)) * 8 + 63) & ~(size_t)63;
    s.total = s.sw + (size_t)(cols / g->B) * g->N * sizeof(__m128) + 64;
    return s;
}

/* all ternary formats: token blocks (activations in L2) x groups of 4 rows x tiles of T tokens */
static void gemm_q8_tern(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                         int64_t cols, const struct bt_cpu_act *a, int64_t ntok, float *Y,
                         int64_t ldy, uint8_t *scratch) {
    struct bt_cpu_tgeom g;
    bt_cpu_tgeom_of(fmt, &g);
    const struct q8_scr ss = q8_scratch(&g, cols, a->ablock, ntok);
    uint8_t *scr = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    int32_t *sums = (int32_t *)(void *)(scr + ss.sums);
    __m128 *sw = (__m128 *)(void *)(scr + ss.sw);
    const int whole = a->ablock % g.B == 0;
    struct q8_tile k = {&g, {0}, scr, sw, cols, whole ? g.B : 32, NULL, sums, NULL, 0, 0, 0,
                        Q8_PF * rb};
    uint8_t codes[8 * 256 + 8] __attribute__((aligned(32)));
    k.sums = cols / k.rl;
    float *xsr = (float *)(void *)(sums + (q8_tb(cols) < ntok ? q8_tb(cols) : ntok) * k.sums);
    q8_tile_fn f1 = q8_cd_1;
    if (whole && g.kind == BT_CPU_L0) f1 = g.C == 128 ? q8_l0a_1 : q8_l0b_1;
    const int64_t nb = cols / g.B, nbs = cols / 32, nsb = cols / a->ablock, tb = q8_tb(cols);
    /* blocks per column slice: the 4 rows' codes of a slice stay in L1 across the token tiles */
    int64_t kc = ss.codes ? (int64_t)(Q8_KL / (4 * g.N * g.B)) : nb;
    kc = kc < 1 ? 1 : kc;
    for (int64_t t0 = 0; t0 < ntok; t0 += tb) {
        const int64_t t1 = ntok - t0 < tb ? ntok : t0 + tb;
        for (int64_t t = t0; t < t1; t++) /* activation sums per run */
            for (int64_t u = 0; u < k.sums; u++) {
                const int32_t *bs = a->bsum + t * nbs + u * (k.rl / 32);
                int32_t s = 0;
                for (uint32_t j = 0; j < k.rl / 32; j++) s += bs[j];
                sums[(t - t0) * k.sums + u] = s;
                xsr[(t - t0) * k.sums + u] = a->xs[t * nsb + u * k.rl / a->ablock];
            }
        for (int64_t r0 = 0; r0 < nrows; r0 += 4) {
            const int64_t nr = nrows - r0 < 4 ? nrows - r0 : 4;
            for (int r = 0; r < 4; r++) { /* rows past the end repeat the last one */
                k.rp[r] = W + (size_t)(r0 + (r < nr ? r : nr - 1)) * rb;
                if (!ss.codes) continue;
                for (int64_t b = 0; b < nb; b++) { /* interleave: 32 codes of each row */
                    for (uint32_t p = 0; r == 3 && p < g.N; p++)
                        sw[b * g.N + p] = scales4(k.rp, (size_t)b * g.bb + g.scale_off + 2 * p);
                    uint8_t *c = scr + (size_t)b * g.N * g.B * 4 + 32 * r;
                    tern_codes(&g, k.rp[r] + (size_t)b * g.bb, codes);
                    for (uint32_t e = 0; e < g.N * g.B; e += 32)
                        _mm256_store_si256((__m256i *)(c + 4 * e),
                                           _mm256_load_si256((const __m256i *)(codes + e)));
                }
            }
            for (k.b0 = 0; k.b0 < nb; k.b0 = k.b1) {
                k.b1 = nb - k.b0 < kc ? nb : k.b0 + kc;
                for (int64_t t = t0; t < t1;) {
                    __m128 facc[Q8_T];
                    const int nt = t + Q8_T <= t1 ? Q8_T : 1;
                    float tmp[4] = {0, 0, 0, 0};
                    for (int j = 0; j < nt; j++) { /* partial sums of the earlier slices */
                        const float *y = Y + (t + j) * ldy + r0;
                        if (k.b0 == 0) facc[j] = _mm_setzero_ps();
                        else if (nr == 4) facc[j] = _mm_loadu_ps(y);
                        else { memcpy(tmp, y, sizeof(float) * (size_t)nr); facc[j] = _mm_loadu_ps(tmp); }
                    }
                    k.xq = a->xq + t * cols;
                    k.xs = xsr + (t - t0) * k.sums;
                    k.sum = sums + (t - t0) * k.sums;
                    (nt == Q8_T ? q8_cd_3 : f1)(&k, facc);
                    for (int j = 0; j < nt; j++) {
                        float *y = Y + (t + j) * ldy + r0;
                        if (nr == 4) { _mm_storeu_ps(y, facc[j]); continue; }
                        _mm_storeu_ps(tmp, facc[j]);
                        memcpy(y, tmp, sizeof(float) * (size_t)nr);
                    }
                    t += nt;
                }
            }
        }
    }
}

static bt_cpu_gemm_q8_fn avx2_pick_gemm_q8(const struct bt_tfmt *fmt, int64_t cols,
                                           int64_t ablock, int64_t ntok, size_t *scratch) {
    struct bt_cpu_tgeom g;
    *scratch = 0;
    if (!bt_cpu_tgeom_of(fmt, &g)) return NULL;
    *scratch = q8_scratch(&g, cols, ablock, ntok).total;
    return gemm_q8_tern;
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

static bt_cpu_gemv_q8_fn avx2_pick_gemv_q8(const struct bt_tfmt *fmt) {
    /* ternary: gemm_q8_tern with ntok = 1 (the driver prefers the batched kernel) */
    return fmt->type == BT_TYPE_Q8_0 ? q8_q8_0 : NULL;
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

/* 16 weights of row (elements i..i+15) as two f32 vectors; BF16 comes out lane-permuted:
 * lo = elements 0-3, 8-11, hi = 4-7, 12-15 (x is permuted to match, see f32_float_rows) */
AI void load16(uint32_t type, const uint8_t *row, int64_t i, __m256 *lo, __m256 *hi) {
    if (type == BT_TYPE_F32) {
        const float *w = (const float *)(const void *)row + i;
        *lo = _mm256_loadu_ps(w);
        *hi = _mm256_loadu_ps(w + 8);
    } else if (type == BT_TYPE_F16) {
        *lo = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * i)));
        *hi = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * i + 16)));
    } else {
        __m256i h = _mm256_loadu_si256((const __m256i *)(row + 2 * i));
        *lo = _mm256_castsi256_ps(_mm256_unpacklo_epi16(_mm256_setzero_si256(), h));
        *hi = _mm256_castsi256_ps(_mm256_unpackhi_epi16(_mm256_setzero_si256(), h));
    }
}

/* R rows (1..4) at once sharing the x loads, 2 accumulators per row over 16-column steps;
 * every row gets the same arithmetic whatever R, so the thread split does not matter */
AI void f32_float_tile(uint32_t type, const uint8_t *W, size_t rb, const int R, int64_t cols,
                       const float *x, float *y) {
    __m256 a0[4], a1[4];
    for (int r = 0; r < R; r++) a0[r] = a1[r] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= cols; i += 16) {
        __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
        if (type == BT_TYPE_BF16) { /* the order of the unpacked bf16: 0-3 8-11 | 4-7 12-15 */
            __m256 p0 = _mm256_permute2f128_ps(x0, x1, 0x20), p1 = _mm256_permute2f128_ps(x0, x1, 0x31);
            x0 = p0;
            x1 = p1;
        }
        /* the next tile's rows, a cache line at a time: 4 interleaved row streams get little
         * from the hardware prefetcher (measured ~2x on an L3-resident F16 lm_head) */
        if (R == 4 && (type == BT_TYPE_F32 || !(i & 31)))
            for (int r = 0; r < 4; r++)
                _mm_prefetch((const char *)W + (size_t)(4 + r) * rb + (type == BT_TYPE_F32 ? 4 : 2) * i,
                             _MM_HINT_T0);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256 lo, hi;
            load16(type, W + (size_t)r * rb, i, &lo, &hi);
            a0[r] = _mm256_fmadd_ps(lo, x0, a0[r]);
            a1[r] = _mm256_fmadd_ps(hi, x1, a1[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        const uint8_t *row = W + (size_t)r * rb;
        __m256 acc = _mm256_add_ps(a0[r], a1[r]);
        int64_t j = i;
        for (; j + 8 <= cols; j += 8)
            acc = _mm256_fmadd_ps(load8(type, row, j), _mm256_loadu_ps(x + j), acc);
        float t = 0.0f;
        for (; j < cols; j++) t += load1(type, row, j) * x[j];
        y[r] = hsum8(acc) + t;
    }
}

/* one row, 4 accumulators over 32-column steps, prefetching 1 KiB ahead in the one sequential
 * stream that consecutive short rows form (4 interleaved row streams of <= 2 KiB each get little
 * from the hardware prefetcher; docs/benchmarks.md: bt-small F16 tg128 1.2-1.4x) */
AI float f32_float_row1(uint32_t type, const uint8_t *row, int64_t cols, const float *x) {
    __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const int esz = type == BT_TYPE_F32 ? 4 : 2;
    int64_t i = 0;
    for (; i + 32 <= cols; i += 32) {
        _mm_prefetch((const char *)row + (size_t)esz * (size_t)i + 1024, _MM_HINT_T0);
        if (esz == 4) _mm_prefetch((const char *)row + 4 * (size_t)i + 1088, _MM_HINT_T0);
        for (int h = 0; h < 2; h++) {
            __m256 x0 = _mm256_loadu_ps(x + i + 16 * h), x1 = _mm256_loadu_ps(x + i + 16 * h + 8);
            if (type == BT_TYPE_BF16) {
                __m256 p0 = _mm256_permute2f128_ps(x0, x1, 0x20), p1 = _mm256_permute2f128_ps(x0, x1, 0x31);
                x0 = p0;
                x1 = p1;
            }
            __m256 lo, hi;
            load16(type, row, i + 16 * h, &lo, &hi);
            a[2 * h] = _mm256_fmadd_ps(lo, x0, a[2 * h]);
            a[2 * h + 1] = _mm256_fmadd_ps(hi, x1, a[2 * h + 1]);
        }
    }
    __m256 acc = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
    for (; i + 8 <= cols; i += 8) acc = _mm256_fmadd_ps(load8(type, row, i), _mm256_loadu_ps(x + i), acc);
    float t = 0.0f;
    for (; i < cols; i++) t += load1(type, row, i) * x[i];
    return hsum8(acc) + t;
}

/* rows of at most 2 KiB: one row at a time (one sequential stream); longer rows: 4-row tiles
 * sharing the x loads. The choice depends on the row size only, so every row gets the same
 * arithmetic whatever the thread split. */
AI void f32_float_rows(uint32_t type, const uint8_t *W, size_t rb, int64_t nrows, int64_t cols,
                       const float *x, float *y) {
    int64_t r = 0;
    if (rb <= 2048) {
        for (; r < nrows; r++) y[r] = f32_float_row1(type, W + (size_t)r * rb, cols, x);
        return;
    }
    for (; r + 4 <= nrows; r += 4) f32_float_tile(type, W + (size_t)r * rb, rb, 4, cols, x, y + r);
    for (; r < nrows; r++) f32_float_tile(type, W + (size_t)r * rb, rb, 1, cols, x, y + r);
}

static void f32_f32(const struct bt_tfmt *f, const uint8_t *W, size_t rb, int64_t n, int64_t c,
                    const float *x, float *y) { f32_float_rows(BT_TYPE_F32, W, rb, n, c, x, y); }
static void f32_f16(const struct bt_tfmt *f, const uint8_t *W, size_t rb, int64_t n, int64_t c,
                    const float *x, float *y) { f32_float_rows(BT_TYPE_F16, W, rb, n, c, x, y); }
static void f32_bf16(const struct bt_tfmt *f, const uint8_t *W, size_t rb, int64_t n, int64_t c,
                     const float *x, float *y) { f32_float_rows(BT_TYPE_BF16, W, rb, n, c, x, y); }

/* formats without kernels of their own (bt_cpu_fmt_generic): BT_CPU_GEN_COLS columns of a row
 * decoded at a time by the format's decoder, then an f32 dot */
static float dot_f32(const float *a, const float *b, int64_t n) {
    return f32_float_row1(BT_TYPE_F32, (const uint8_t *)a, n, b);
}

static void f32_generic(const struct bt_tfmt *f, const uint8_t *W, size_t rb, int64_t n, int64_t c,
                        const float *x, float *y) {
    bt_cpu_gemv_generic(f, W, rb, n, c, x, y, dot_f32);
}

static bt_cpu_gemv_f32_fn avx2_pick_gemv_f32(const struct bt_tfmt *fmt) {
    struct bt_cpu_tgeom g;
    switch (fmt->type) {
    case BT_TYPE_F32: return f32_f32;
    case BT_TYPE_F16: return f32_f16;
    case BT_TYPE_BF16: return f32_bf16;
    default:
        if (bt_cpu_tgeom_of(fmt, &g)) return f32_tern;
        return bt_cpu_fmt_generic(fmt) ? f32_generic : NULL;
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
    "avx2", avx2_pick_gemv_f32, avx2_pick_gemv_q8, avx2_pick_decode, avx2_tile, avx2_pick_gemm_q8,
    bt_cpu_vq_gemv_avx2, bt_cpu_kmeans_avx2,
};
