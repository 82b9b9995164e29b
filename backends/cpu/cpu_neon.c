/* cpu_neon.c - AArch64 NEON kernels of the cpu-neon backend that do not depend on the
 * dot-product extension: F32/F16/BF16/ternary f32 GEMV, fast decoders, the f32 gemm
 * micro-kernel, and the two kernel tables (plain NEON and +dotprod; their int8 kernels live in
 * cpu_neon_q8.c, built twice). Compiled with -O3 -ffp-contract=off for plain ARMv8-A. */
#include "cpu_kern.h"

#include <arm_neon.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* ---- ternary codes -------------------------------------------------------------------------- */
/* codes (t+1, plane-major N x B) of any ternary block: L0 with shifts and masks, else scalar */
void bt_cpu_neon_codes(const struct bt_cpu_tgeom *g, const uint8_t *blk, uint8_t *codes) {
    if (g->kind != BT_CPU_L0) {
        bt_cpu_ref_codes(g, blk, codes);
        return;
    }
    const uint32_t N = g->N, B = g->B, C = g->C, S = C / 4;
    const uint8x16_t m3 = vdupq_n_u8(3);
    const uint8_t *q = blk + g->code_off;
    for (uint32_t c0 = 0; c0 < B; c0 += C)
        for (uint32_t p = 0; p < N; p++) {
            const uint8_t *s = q + (size_t)(c0 / C) * N * S + (size_t)p * S;
            uint8_t *o = codes + (size_t)p * B + c0;
            if (S % 16) { /* chunks of 32 or fewer elements */
                for (uint32_t j = 0; j < 4; j++)
                    for (uint32_t m = 0; m < S; m++) o[j * S + m] = (s[m] >> (2 * j)) & 3;
                continue;
            }
            for (uint32_t m = 0; m < S; m += 16) {
                uint8x16_t v = vld1q_u8(s + m);
                vst1q_u8(o + m, vandq_u8(v, m3));
                vst1q_u8(o + S + m, vandq_u8(vshrq_n_u8(v, 2), m3));
                vst1q_u8(o + 2 * S + m, vandq_u8(vshrq_n_u8(v, 4), m3));
                vst1q_u8(o + 3 * S + m, vshrq_n_u8(v, 6));
            }
        }
}

/* 8 codes (t+1) -> two f32x4 of t */
AI void codes8_f32(const uint8_t *c, float32x4_t *lo, float32x4_t *hi) {
    int16x8_t t = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(c)));
    t = vsubq_s16(t, vdupq_n_s16(1));
    *lo = vcvtq_f32_s32(vmovl_s16(vget_low_s16(t)));
    *hi = vcvtq_f32_s32(vmovl_high_s16(t));
}

/* fp16 scale p of a block (the hardware conversion: exact, as bt_fp16_to_f32) */
AI float tscale(const struct bt_cpu_tgeom *g, const uint8_t *blk, uint32_t p) {
    const uint8_t *s = blk + g->scale_off + 2 * p;
    uint16_t h = (uint16_t)(s[0] | (s[1] << 8));
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* ---- f32 GEMV ------------------------------------------------------------------------------- */
static void f32_tern(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                     int64_t cols, const float *x, float *y) {
    struct bt_cpu_tgeom g;
    uint8_t codes[8 * 256 + 8] __attribute__((aligned(16)));
    bt_cpu_tgeom_of(fmt, &g);
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *blk = W + (size_t)r * rb;
        float32x4_t tot = vdupq_n_f32(0.0f);
        for (int64_t c0 = 0; c0 < cols; c0 += g.B, blk += g.bb) {
            bt_cpu_neon_codes(&g, blk, codes);
            for (uint32_t p = 0; p < g.N; p++) {
                const uint8_t *cp = codes + (size_t)p * g.B;
                float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
                for (uint32_t i = 0; i < g.B; i += 8) {
                    float32x4_t lo, hi;
                    codes8_f32(cp + i, &lo, &hi);
                    a0 = vfmaq_f32(a0, lo, vld1q_f32(x + c0 + i));
                    a1 = vfmaq_f32(a1, hi, vld1q_f32(x + c0 + i + 4));
                }
                tot = vfmaq_n_f32(tot, vaddq_f32(a0, a1), tscale(&g, blk, p));
            }
        }
        y[r] = vaddvq_f32(tot);
    }
}

/* 4 weights of a float row at element i as f32 */
AI float32x4_t load4(uint32_t type, const uint8_t *row, int64_t i) {
    if (type == BT_TYPE_F32) return vld1q_f32((const float *)(const void *)row + i);
    uint16x4_t h = vld1_u16((const uint16_t *)(const void *)row + i);
    if (type == BT_TYPE_F16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

AI float load1(uint32_t type, const uint8_t *row, int64_t i) {
    if (type == BT_TYPE_F32) { float f; memcpy(&f, row + 4 * i, 4); return f; }
    uint16_t h = (uint16_t)(row[2 * i] | (row[2 * i + 1] << 8));
    return type == BT_TYPE_F16 ? bt_fp16_to_f32(h) : bt_bf16_to_f32(h);
}

/* one row: 4 accumulators over 16-column steps, a 4-column loop, a scalar tail; the
 * arithmetic of a row depends only on cols, so the thread split does not matter */
AI float float_row(uint32_t type, const uint8_t *row, int64_t cols, const float *x) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= cols; i += 16) {
        a0 = vfmaq_f32(a0, load4(type, row, i), vld1q_f32(x + i));
        a1 = vfmaq_f32(a1, load4(type, row, i + 4), vld1q_f32(x + i + 4));
        a2 = vfmaq_f32(a2, load4(type, row, i + 8), vld1q_f32(x + i + 8));
        a3 = vfmaq_f32(a3, load4(type, row, i + 12), vld1q_f32(x + i + 12));
    }
    float32x4_t acc = vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3));
    for (; i + 4 <= cols; i += 4) acc = vfmaq_f32(acc, load4(type, row, i), vld1q_f32(x + i));
    float t = 0.0f;
    for (; i < cols; i++) t += load1(type, row, i) * x[i];
    return vaddvq_f32(acc) + t;
}

static void f32_f32(const struct bt_tfmt *f, const uint8_t *W, size_t rb, int64_t n, int64_t c,
                    const float *x, float *y) {
    for (int64_t r = 0; r < n; r++) y[r] = float_row(BT_TYPE_F32, W + (size_t)r * rb, c, x);
}
static void f32_f16(const struct bt_tfmt *f, const uint8_t *W, size_t rb, int64_t n, int64_t c,
                    const float *x, float *y) {
    for (int64_t r = 0; r < n; r++) y[r] = float_row(BT_TYPE_F16, W + (size_t)r * rb, c, x);
}
static void f32_bf16(const struct bt_tfmt *f, const uint8_t *W, size_t rb, int64_t n, int64_t c,
                     const float *x, float *y) {
    for (int64_t r = 0; r < n; r++) y[r] = float_row(BT_TYPE_BF16, W + (size_t)r * rb, c, x);
}

static bt_cpu_gemv_f32_fn neon_pick_gemv_f32(const struct bt_tfmt *fmt) {
    struct bt_cpu_tgeom g;
    switch (fmt->type) {
    case BT_TYPE_F32: return f32_f32;
    case BT_TYPE_F16: return f32_f16;
    case BT_TYPE_BF16: return f32_bf16;
    default: return bt_cpu_tgeom_of(fmt, &g) ? f32_tern : NULL;
    }
}

/* ---- decode (bit-identical to bt_to_f32) ---------------------------------------------------- */
static void dec_tern(const struct bt_tfmt *fmt, const uint8_t *src, int64_t n, float *dst) {
    struct bt_cpu_tgeom g;
    uint8_t codes[8 * 256 + 8] __attribute__((aligned(16)));
    bt_cpu_tgeom_of(fmt, &g);
    for (int64_t c0 = 0; c0 < n; c0 += g.B, src += g.bb) {
        bt_cpu_neon_codes(&g, src, codes);
        for (uint32_t i = 0; i < g.B; i += 8) {
            float32x4_t v0 = vdupq_n_f32(0.0f), v1 = v0;
            for (uint32_t p = 0; p < g.N; p++) {
                float32x4_t lo, hi;
                codes8_f32(codes + (size_t)p * g.B + i, &lo, &hi);
                float s = tscale(&g, src, p);
                lo = vmulq_n_f32(lo, s);
                hi = vmulq_n_f32(hi, s);
                if (fmt->type == BT_TYPE_MTQ) { v0 = vaddq_f32(v0, lo); v1 = vaddq_f32(v1, hi); }
                else { v0 = lo; v1 = hi; } /* TQ*: d * t */
            }
            vst1q_f32(dst + c0 + i, v0);
            vst1q_f32(dst + c0 + i + 4, v1);
        }
    }
}

AI void dec_float(uint32_t type, const uint8_t *src, int64_t n, float *dst) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, load4(type, src, i));
    for (; i < n; i++) dst[i] = load1(type, src, i);
}

static void dec_f32(const struct bt_tfmt *f, const uint8_t *s, int64_t n, float *d) { dec_float(BT_TYPE_F32, s, n, d); }
static void dec_f16(const struct bt_tfmt *f, const uint8_t *s, int64_t n, float *d) { dec_float(BT_TYPE_F16, s, n, d); }
static void dec_bf16(const struct bt_tfmt *f, const uint8_t *s, int64_t n, float *d) { dec_float(BT_TYPE_BF16, s, n, d); }

static bt_cpu_decode_fn neon_pick_decode(const struct bt_tfmt *fmt) {
    struct bt_cpu_tgeom g;
    switch (fmt->type) {
    case BT_TYPE_F32: return dec_f32;
    case BT_TYPE_F16: return dec_f16;
    case BT_TYPE_BF16: return dec_bf16;
    default: return bt_cpu_tgeom_of(fmt, &g) ? dec_tern : NULL;
    }
}

/* ---- gemm micro-kernel ---------------------------------------------------------------------- */
/* One (row, token) pair is always: 4-lane FMA accumulation over 4-column steps, fixed
 * horizontal sum, scalar tail -- the 4x4 block and the edge path give bit-identical values. */
AI float dot_pair(const float *w, const float *x, int64_t cols) {
    float32x4_t acc = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 4 <= cols; i += 4) acc = vfmaq_f32(acc, vld1q_f32(w + i), vld1q_f32(x + i));
    float t = 0.0f;
    for (; i < cols; i++) t += w[i] * x[i];
    return vaddvq_f32(acc) + t;
}

static void tile44(const float *W, int64_t cols, const float *X, float *Y, int64_t ldy) {
    float32x4_t acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 4; t++) acc[r][t] = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 4 <= cols; i += 4) {
        float32x4_t x0 = vld1q_f32(X + i), x1 = vld1q_f32(X + cols + i),
                    x2 = vld1q_f32(X + 2 * cols + i), x3 = vld1q_f32(X + 3 * cols + i);
        for (int r = 0; r < 4; r++) {
            float32x4_t w = vld1q_f32(W + r * cols + i);
            acc[r][0] = vfmaq_f32(acc[r][0], w, x0);
            acc[r][1] = vfmaq_f32(acc[r][1], w, x1);
            acc[r][2] = vfmaq_f32(acc[r][2], w, x2);
            acc[r][3] = vfmaq_f32(acc[r][3], w, x3);
        }
    }
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 4; t++) {
            float s = 0.0f;
            for (int64_t k = i; k < cols; k++) s += W[r * cols + k] * X[t * cols + k];
            Y[t * ldy + r] = vaddvq_f32(acc[r][t]) + s;
        }
}

static void neon_tile(const float *Wf, int64_t nr, int64_t cols, const float *X, int64_t ntok,
                      float *Y, int64_t ldy) {
    for (int64_t t0 = 0; t0 < ntok; t0 += 4)
        for (int64_t r0 = 0; r0 < nr; r0 += 4) {
            if (t0 + 4 <= ntok && r0 + 4 <= nr) {
                tile44(Wf + r0 * cols, cols, X + t0 * cols, Y + t0 * ldy + r0, ldy);
                continue;
            }
            for (int64_t t = t0; t < ntok && t < t0 + 4; t++)
                for (int64_t r = r0; r < nr && r < r0 + 4; r++)
                    Y[t * ldy + r] = dot_pair(Wf + r * cols, X + t * cols, cols);
        }
}

/* ---- the kernel tables ---------------------------------------------------------------------- */
const struct bt_cpu_isa bt_cpu_isa_neon = {
    "neon", neon_pick_gemv_f32, bt_cpu_neon_pick_gemv_q8, neon_pick_decode, neon_tile,
    bt_cpu_neon_pick_gemm_q8, NULL, NULL,
};

const struct bt_cpu_isa bt_cpu_isa_neon_dot = {
    "neon+dotprod", neon_pick_gemv_f32, bt_cpu_neon_dot_pick_gemv_q8, neon_pick_decode, neon_tile,
    bt_cpu_neon_dot_pick_gemm_q8, NULL, NULL,
};
