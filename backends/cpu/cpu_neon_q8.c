/* cpu_neon_q8.c - int8-activation kernels of the cpu-neon backend: ternary GEMM/GEMV (unsigned
 * codes x int8 activations, the -1 folded into activation run sums), Q8_0 and Q4_0 GEMV.
 * Built twice: plain ARMv8-A (vmull/vmlal into int16 lanes) and, as cpu_neon_q8_dot.c with
 * BT_NEON_DOT and -march=armv8.2-a+dotprod, with sdot (vdotq_s32). Both give exactly the
 * scalar reference's floats: the integer sums are exact, and the float steps are the
 * reference's own (mul, mul, add per run, -ffp-contract=off). */
#include "cpu_kern.h"

#include <arm_neon.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

#ifdef BT_NEON_DOT
#define NQ(name) bt_cpu_neon_dot_##name
/* integer accumulator of 16-element dot products */
typedef int32x4_t iacc;
AI iacc iacc_zero(void) { return vdupq_n_s32(0); }
AI iacc idot(iacc a, int8x16_t w, int8x16_t x) { return vdotq_s32(a, w, x); }
AI int32_t ihsum(iacc a) { return vaddvq_s32(a); }
#else
#define NQ(name) bt_cpu_neon_##name
/* int16 lanes: each 16-element step adds 2 products of |w| <= 2 (ternary codes) by |x| <= 128
 * to a lane; a run of at most 256 elements (bt's largest block) adds at most 32: |lane| <= 8192 */
typedef int16x8_t iacc;
AI iacc iacc_zero(void) { return vdupq_n_s16(0); }
AI iacc idot(iacc a, int8x16_t w, int8x16_t x) {
    return vmlal_high_s8(vmlal_s8(a, vget_low_s8(w), vget_low_s8(x)), w, x);
}
AI int32_t ihsum(iacc a) { return vaddlvq_s16(a); }
#endif

AI float h2f(const uint8_t *p) {
    uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* ---- ternary -------------------------------------------------------------------------------- */
#define NQ_T  4            /* tokens per tile: one code vector feeds NQ_T dot products */
#define NQ_XL (256u << 10) /* activation bytes per token block (kept in L2) */

/* what one row x T tokens reads */
struct nq_row {
    const struct bt_cpu_tgeom *g;    /* block geometry */
    const uint8_t             *row;  /* packed row */
    const uint8_t             *cp;   /* its decoded codes (plane-major per block), or NULL */
    int64_t                    nb;   /* blocks per row */
    int64_t                    cols; /* distance between tokens in xq */
    uint32_t                   rl;   /* run: elements per integer dot (B, or 32) */
    int64_t                    nrun; /* runs per token: cols / rl */
    const int8_t              *xq;   /* first token's activations */
    const int32_t             *sum;  /* first token's activation sums per run, nrun apart */
    const float               *xs;   /* first token's activation scale per run, nrun apart */
};

/* end of a run: y[t] += (sw * xs[t]) * (isum - sum[t]); two accumulators per token (two
 * independent sdot / smlal chains) */
AI void nq_epi(const iacc acc[2][NQ_T], const uint32_t T, float sw, const int32_t *sum,
               const float *xs, int64_t nrun, float *y) {
    for (uint32_t t = 0; t < T; t++) {
        int32_t is = ihsum(acc[0][t]) + ihsum(acc[1][t]) - sum[t * nrun];
        y[t] += sw * xs[t * nrun] * (float)is;
    }
}

/* L0 codes read in place (rl == B): per block and plane, C/4 bytes per chunk give 4 vectors of
 * codes with shifts 0/2/4/6, each aligned with a contiguous slice of activations */
AI void nq_l0(const struct nq_row *k0, const uint32_t T, const uint32_t C, float *yo) {
    const struct nq_row kl = *k0, *k = &kl; /* locals: no aliasing with y */
    const struct bt_cpu_tgeom *g = k->g;
    const uint32_t N = g->N, B = g->B, S = C / 4, NC = B / C;
    float y[NQ_T];
    for (uint32_t t = 0; t < T; t++) y[t] = yo[t];
    const uint8x16_t m3 = vdupq_n_u8(3);
    const int64_t cols = k->cols;
    for (int64_t b = 0; b < k->nb; b++) {
        const uint8_t *blk = k->row + (size_t)b * g->bb;
        const int8_t *xb = k->xq + b * B;
        for (uint32_t p = 0; p < N; p++) {
            iacc acc[2][NQ_T];
            for (uint32_t t = 0; t < T; t++) acc[0][t] = acc[1][t] = iacc_zero();
            for (uint32_t ci = 0; ci < NC; ci++) {
                const uint8_t *q = blk + g->code_off + (size_t)(ci * N + p) * S;
                const int8_t *xc = xb + ci * C;
                for (uint32_t m = 0; m < S; m += 16) {
                    uint8x16_t v = vld1q_u8(q + m);
                    int8x16_t c0 = vreinterpretq_s8_u8(vandq_u8(v, m3));
                    int8x16_t c1 = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 2), m3));
                    int8x16_t c2 = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 4), m3));
                    int8x16_t c3 = vreinterpretq_s8_u8(vshrq_n_u8(v, 6));
                    for (uint32_t t = 0; t < T; t++) {
                        const int8_t *x = xc + t * cols + m;
                        acc[0][t] = idot(acc[0][t], c0, vld1q_s8(x));
                        acc[1][t] = idot(acc[1][t], c1, vld1q_s8(x + S));
                        acc[0][t] = idot(acc[0][t], c2, vld1q_s8(x + 2 * S));
                        acc[1][t] = idot(acc[1][t], c3, vld1q_s8(x + 3 * S));
                    }
                }
            }
            nq_epi(acc, T, h2f(blk + g->scale_off + 2 * p), k->sum + b, k->xs + b, k->nrun, y);
        }
    }
    for (uint32_t t = 0; t < T; t++) yo[t] = y[t];
}

/* codes from the decoded row, runs of rl elements */
AI void nq_codes(const struct nq_row *k0, const uint32_t T, float *yo) {
    const struct nq_row kl = *k0, *k = &kl; /* locals: no aliasing with y */
    const struct bt_cpu_tgeom *g = k->g;
    float y[NQ_T];
    for (uint32_t t = 0; t < T; t++) y[t] = yo[t];
    const uint32_t N = g->N, B = g->B, rl = k->rl;
    const int64_t cols = k->cols;
    for (int64_t b = 0; b < k->nb; b++) {
        const uint8_t *blk = k->row + (size_t)b * g->bb;
        const int8_t *xb = k->xq + b * B;
        const int64_t u0 = b * (B / rl);
        for (uint32_t p = 0; p < N; p++) {
            const uint8_t *cb = k->cp + ((size_t)b * N + p) * B;
            const float sw = h2f(blk + g->scale_off + 2 * p);
            for (uint32_t e0 = 0, u = (uint32_t)u0; e0 < B; e0 += rl, u++) {
                iacc acc[2][NQ_T];
                for (uint32_t t = 0; t < T; t++) acc[0][t] = acc[1][t] = iacc_zero();
                for (uint32_t e = e0; e < e0 + rl; e += 32) { /* rl is a multiple of 32 */
                    int8x16_t c0 = vreinterpretq_s8_u8(vld1q_u8(cb + e));
                    int8x16_t c1 = vreinterpretq_s8_u8(vld1q_u8(cb + e + 16));
                    for (uint32_t t = 0; t < T; t++) {
                        acc[0][t] = idot(acc[0][t], c0, vld1q_s8(xb + t * cols + e));
                        acc[1][t] = idot(acc[1][t], c1, vld1q_s8(xb + t * cols + e + 16));
                    }
                }
                nq_epi(acc, T, sw, k->sum + u, k->xs + u, k->nrun, y);
            }
        }
    }
    for (uint32_t t = 0; t < T; t++) yo[t] = y[t];
}

typedef void (*nq_fn)(const struct nq_row *k, float *y);
/* chunks of 128 (a) or 64 (b) elements: the code loop unrolls fully */
static void l0a_1(const struct nq_row *k, float *y) { nq_l0(k, 1, 128, y); }
static void l0a_2(const struct nq_row *k, float *y) { nq_l0(k, 2, 128, y); }
static void l0a_3(const struct nq_row *k, float *y) { nq_l0(k, 3, 128, y); }
static void l0a_4(const struct nq_row *k, float *y) { nq_l0(k, 4, 128, y); }
static void l0b_1(const struct nq_row *k, float *y) { nq_l0(k, 1, 64, y); }
static void l0b_2(const struct nq_row *k, float *y) { nq_l0(k, 2, 64, y); }
static void l0b_3(const struct nq_row *k, float *y) { nq_l0(k, 3, 64, y); }
static void l0b_4(const struct nq_row *k, float *y) { nq_l0(k, 4, 64, y); }
static void cd_1(const struct nq_row *k, float *y) { nq_codes(k, 1, y); }
static void cd_2(const struct nq_row *k, float *y) { nq_codes(k, 2, y); }
static void cd_3(const struct nq_row *k, float *y) { nq_codes(k, 3, y); }
static void cd_4(const struct nq_row *k, float *y) { nq_codes(k, 4, y); }
static const nq_fn nq_l0a_fns[NQ_T + 1] = {NULL, l0a_1, l0a_2, l0a_3, l0a_4};
static const nq_fn nq_l0b_fns[NQ_T + 1] = {NULL, l0b_1, l0b_2, l0b_3, l0b_4};
static const nq_fn nq_cd_fns[NQ_T + 1] = {NULL, cd_1, cd_2, cd_3, cd_4};

/* tokens per token block: NQ_XL bytes of activations, a multiple of NQ_T, at most ntok */
static int64_t nq_tb(int64_t cols, int64_t ntok) {
    int64_t tb = (int64_t)NQ_XL / cols;
    tb = tb < NQ_T ? NQ_T : tb - tb % NQ_T;
    return tb < ntok ? tb : ntok;
}

/* scratch: one decoded row (unless L0 codes are read in place), then the run sums and scales
 * of a token block */
static size_t nq_codes_bytes(const struct bt_cpu_tgeom *g, int64_t cols, int whole) {
    int inplace = whole && g->kind == BT_CPU_L0 && (g->C == 128 || g->C == 64);
    /* + 8: the layout-1 decoder stores 8 bytes at a time past the end of a plane */
    return inplace ? 0 : ((size_t)g->N * (size_t)cols + 8 + 15) & ~(size_t)15;
}

static void NQ(gemm_tern)(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                          int64_t cols, const struct bt_cpu_act *a, int64_t ntok, float *Y,
                          int64_t ldy, uint8_t *scratch) {
    struct bt_cpu_tgeom g;
    bt_cpu_tgeom_of(fmt, &g);
    const int whole = a->ablock % g.B == 0;
    const size_t ncb = nq_codes_bytes(&g, cols, whole);
    uint8_t *scr = (uint8_t *)(((uintptr_t)scratch + 15) & ~(uintptr_t)15);
    struct nq_row k = {&g, NULL, ncb ? scr : NULL, cols / g.B, cols, whole ? g.B : 32, 0,
                       NULL, NULL, NULL};
    k.nrun = cols / k.rl;
    const int64_t tb = nq_tb(cols, ntok), nbs = cols / 32, nsb = cols / a->ablock;
    int32_t *sums = (int32_t *)(void *)(scr + ncb);
    float *xsr = (float *)(void *)(sums + tb * k.nrun);
    const nq_fn *fns = ncb ? nq_cd_fns : g.C == 128 ? nq_l0a_fns : nq_l0b_fns;
    for (int64_t t0 = 0; t0 < ntok; t0 += tb) {
        const int64_t t1 = ntok - t0 < tb ? ntok : t0 + tb;
        for (int64_t t = t0; t < t1; t++) /* activation sums and scales per run */
            for (int64_t u = 0; u < k.nrun; u++) {
                const int32_t *bs = a->bsum + t * nbs + u * (k.rl / 32);
                int32_t s = 0;
                for (uint32_t j = 0; j < k.rl / 32; j++) s += bs[j];
                sums[(t - t0) * k.nrun + u] = s;
                xsr[(t - t0) * k.nrun + u] = a->xs[t * nsb + u * k.rl / a->ablock];
            }
        for (int64_t r = 0; r < nrows; r++) {
            k.row = W + (size_t)r * rb;
            if (ncb)
                for (int64_t b = 0; b < k.nb; b++)
                    bt_cpu_neon_codes(&g, k.row + (size_t)b * g.bb, scr + (size_t)b * g.N * g.B);
            for (int64_t t = t0; t < t1;) {
                const int64_t nt = t1 - t < NQ_T ? t1 - t : NQ_T;
                float y[NQ_T] = {0, 0, 0, 0};
                k.xq = a->xq + t * cols;
                k.sum = sums + (t - t0) * k.nrun;
                k.xs = xsr + (t - t0) * k.nrun;
                fns[nt](&k, y);
                for (int64_t j = 0; j < nt; j++) Y[(t + j) * ldy + r] = y[j];
                t += nt;
            }
        }
    }
}

bt_cpu_gemm_q8_fn NQ(pick_gemm_q8)(const struct bt_tfmt *fmt, int64_t cols, int64_t ablock,
                                   int64_t ntok, size_t *scratch) {
    struct bt_cpu_tgeom g;
    *scratch = 0;
    if (!bt_cpu_tgeom_of(fmt, &g)) return NULL;
    int64_t nrun = cols / (ablock % g.B == 0 ? g.B : 32);
    *scratch = nq_codes_bytes(&g, cols, ablock % g.B == 0) +
               (size_t)nq_tb(cols, ntok) * (size_t)nrun * 8 + 16;
    return NQ(gemm_tern);
}

/* ---- Q8_0 and Q4_0 -------------------------------------------------------------------------- */
/* dot of 32 int8 weights with 32 int8 activations, exact */
AI int32_t dot32(int8x16_t w0, int8x16_t w1, const int8_t *x) {
    int8x16_t x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16);
#ifdef BT_NEON_DOT
    return vaddvq_s32(vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, x0), w1, x1));
#else
    /* 2 products per int16 lane: |lane| <= 2 * 128 * 127 */
    int16x8_t p0 = vmlal_high_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)), w0, x0);
    int16x8_t p1 = vmlal_high_s8(vmull_s8(vget_low_s8(w1), vget_low_s8(x1)), w1, x1);
    return vaddvq_s32(vpadalq_s16(vpaddlq_s16(p0), p1));
#endif
}

/* per 32-block: y += d * xs * isum, the reference's order */
static void q8_q8_0(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                    int64_t cols, const struct bt_cpu_act *a, float *y) {
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *b = W + (size_t)r * rb;
        float acc = 0.0f;
        for (int64_t c0 = 0; c0 < cols; c0 += 32, b += 34) {
            int32_t s = dot32(vld1q_s8((const int8_t *)b + 2), vld1q_s8((const int8_t *)b + 18),
                              a->xq + c0);
            acc += h2f(b) * a->xs[c0 / a->ablock] * (float)s;
        }
        y[r] = acc;
    }
}

static void q8_q4_0(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                    int64_t cols, const struct bt_cpu_act *a, float *y) {
    const uint8x16_t m15 = vdupq_n_u8(15);
    const int8x16_t eight = vdupq_n_s8(8);
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *b = W + (size_t)r * rb;
        float acc = 0.0f;
        for (int64_t c0 = 0; c0 < cols; c0 += 32, b += 18) {
            uint8x16_t q = vld1q_u8(b + 2);
            int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, m15)), eight);
            int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
            int32_t s = dot32(lo, hi, a->xq + c0);
            acc += h2f(b) * a->xs[c0 / a->ablock] * (float)s;
        }
        y[r] = acc;
    }
}

bt_cpu_gemv_q8_fn NQ(pick_gemv_q8)(const struct bt_tfmt *fmt) {
    /* ternary: gemm_tern with ntok = 1 (the driver prefers the batched kernel) */
    switch (fmt->type) {
    case BT_TYPE_Q8_0: return q8_q8_0;
    case BT_TYPE_Q4_0: return q8_q4_0;
    default: return NULL;
    }
}
