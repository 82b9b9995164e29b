/* cpu_ref.c - portable scalar kernels: the reference semantics every other backend matches.
 * gemv per block: (integer or float) dot of codes with x, then x scale; f32 accumulation. */
#include "cpu_kern.h"

#include <string.h>

/* ---- ternary geometry and decode ---------------------------------------------------------- */
int bt_cpu_tgeom_of(const struct bt_tfmt *fmt, struct bt_cpu_tgeom *g) {
    memset(g, 0, sizeof(*g));
    switch (fmt->type) {
    case BT_TYPE_TQ2_0:
        *g = (struct bt_cpu_tgeom){1, 256, BT_CPU_L0, 128, 66, 0, 64};
        return 1;
    case BT_TYPE_TQ1_0:
        *g = (struct bt_cpu_tgeom){1, 256, BT_CPU_TQ1, 0, 54, 0, 52};
        return 1;
    case BT_TYPE_MTQ: {
        size_t bb = bt_mtq_block_bytes(fmt->planes, fmt->block, fmt->layout);
        if (!bb) return 0;
        g->N = fmt->planes;
        g->B = fmt->block;
        g->kind = fmt->layout == 0 ? BT_CPU_L0 : BT_CPU_L1;
        g->C = g->B < 128 ? g->B : 128;
        g->bb = bb;
        g->code_off = 2u * g->N;
        g->scale_off = 0;
        return 1;
    }
    default: return 0;
    }
}

/* byte v -> digits d0..d4 of v in base 3, digit k in byte k */
#define B3(v) ((uint64_t)((v) % 3) | ((uint64_t)((v) / 3 % 3) << 8) |                         \
               ((uint64_t)((v) / 9 % 3) << 16) | ((uint64_t)((v) / 27 % 3) << 24) |         \
               ((uint64_t)((v) / 81 % 3) << 32))
#define B3_4(v)   B3(v), B3((v) + 1), B3((v) + 2), B3((v) + 3)
#define B3_16(v)  B3_4(v), B3_4((v) + 4), B3_4((v) + 8), B3_4((v) + 12)
#define B3_64(v)  B3_16(v), B3_16((v) + 16), B3_16((v) + 32), B3_16((v) + 48)
const uint64_t bt_cpu_b3_lut[256] = {B3_64(0), B3_64(64), B3_64(128), B3_64(192)};

static void codes_l0(const struct bt_cpu_tgeom *g, const uint8_t *q, uint8_t *codes) {
    uint32_t N = g->N, B = g->B, C = g->C, S = C / 4;
    for (uint32_t c0 = 0; c0 < B; c0 += C)
        for (uint32_t p = 0; p < N; p++) {
            const uint8_t *s = q + (size_t)(c0 / C) * N * S + (size_t)p * S;
            uint8_t *o = codes + (size_t)p * B + c0;
            for (uint32_t j = 0; j < 4; j++)
                for (uint32_t m = 0; m < S; m++) o[j * S + m] = (s[m] >> (2 * j)) & 3;
        }
}

static void codes_l1(const struct bt_cpu_tgeom *g, const uint8_t *q, uint8_t *codes) {
    uint32_t N = g->N, B = g->B, G = (B + 4) / 5;
    for (uint32_t p = 0; p < N; p++) {
        uint8_t *o = codes + (size_t)p * B;
        for (uint32_t k = 0; k + 1 < G; k++) { /* 8-byte stores: bytes 5..7 get overwritten */
            uint64_t d = bt_cpu_b3_lut[q[k * N + p]];
            memcpy(o + 5 * k, &d, 8);
        }
        uint64_t d = bt_cpu_b3_lut[q[(G - 1) * N + p]];
        for (uint32_t e = 5 * (G - 1); e < B; e++, d >>= 8) o[e] = (uint8_t)(d & 0xff);
    }
}

void bt_cpu_ref_codes(const struct bt_cpu_tgeom *g, const uint8_t *blk, uint8_t *codes) {
    if (g->kind == BT_CPU_L0) {
        codes_l0(g, blk + g->code_off, codes);
    } else if (g->kind == BT_CPU_L1) {
        codes_l1(g, blk + g->code_off, codes);
    } else {
        int8_t t[256];
        float d;
        bt_tq1_0_unpack(blk, t, &d);
        for (int i = 0; i < 256; i++) codes[i] = (uint8_t)(t[i] + 1);
    }
}

/* ---- helpers ------------------------------------------------------------------------------- */
static inline float h2f(const uint8_t *p) { return bt_fp16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

/* f32 dot with 8 independent lanes (a fixed order the compiler may vectorize) */
static float dot8(const float *a, const float *b, int64_t n) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, t = 0.0f;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += a[i + k] * b[i + k];
    for (; i < n; i++) t += a[i] * b[i];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])) + t;
}

/* ---- gemv_f32 ------------------------------------------------------------------------------ */
static void gemv_f32_float(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                           int64_t cols, const float *x, float *y) {
    float buf[256];
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *row = W + (size_t)r * rb;
        if (fmt->type == BT_TYPE_F32) {
            float w[256];
            float acc = 0.0f;
            for (int64_t c0 = 0; c0 < cols; c0 += 256) {
                int64_t n = cols - c0 < 256 ? cols - c0 : 256;
                memcpy(w, row + 4 * c0, (size_t)n * 4);
                acc += dot8(w, x + c0, n);
            }
            y[r] = acc;
            continue;
        }
        float acc = 0.0f;
        for (int64_t c0 = 0; c0 < cols; c0 += 256) {
            int64_t n = cols - c0 < 256 ? cols - c0 : 256;
            bt_to_f32(fmt, row + 2 * c0, buf, n);
            acc += dot8(buf, x + c0, n);
        }
        y[r] = acc;
    }
}

static void gemv_f32_q8_0(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                          int64_t cols, const float *x, float *y) {
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *b = W + (size_t)r * rb;
        float acc = 0.0f;
        for (int64_t c0 = 0; c0 < cols; c0 += 32, b += 34) {
            float s = 0.0f;
            for (int i = 0; i < 32; i++) s += (float)(int8_t)b[2 + i] * x[c0 + i];
            acc += h2f(b) * s;
        }
        y[r] = acc;
    }
}

static void gemv_f32_q4_0(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                          int64_t cols, const float *x, float *y) {
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *b = W + (size_t)r * rb;
        float acc = 0.0f;
        for (int64_t c0 = 0; c0 < cols; c0 += 32, b += 18) {
            float s = 0.0f;
            for (int i = 0; i < 16; i++)
                s += (float)((b[2 + i] & 15) - 8) * x[c0 + i] +
                     (float)((b[2 + i] >> 4) - 8) * x[c0 + 16 + i];
            acc += h2f(b) * s;
        }
        y[r] = acc;
    }
}

static void gemv_f32_tern(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                          int64_t cols, const float *x, float *y) {
    struct bt_cpu_tgeom g;
    uint8_t codes[8 * 256 + 8];
    bt_cpu_tgeom_of(fmt, &g);
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *blk = W + (size_t)r * rb;
        float acc = 0.0f;
        for (int64_t c0 = 0; c0 < cols; c0 += g.B, blk += g.bb) {
            bt_cpu_ref_codes(&g, blk, codes);
            for (uint32_t p = 0; p < g.N; p++) {
                const uint8_t *cp = codes + (size_t)p * g.B;
                float s = 0.0f;
                for (uint32_t i = 0; i < g.B; i++) s += (float)((int)cp[i] - 1) * x[c0 + i];
                acc += bt_cpu_tscale(&g, blk, p) * s;
            }
        }
        y[r] = acc;
    }
}

/* formats without kernels of their own (bt_cpu_fmt_generic): BT_CPU_GEN_COLS columns of a row
 * decoded at a time by the format's decoder, then an f32 dot */
void bt_cpu_gemv_generic(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                         int64_t cols, const float *x, float *y, bt_cpu_dot_fn dot) {
    float buf[BT_CPU_GEN_COLS] __attribute__((aligned(32)));
    const struct bt_format *d = bt_format_get(fmt->type);
    uint32_t b = 1, bb = 1;
    bt_fmt_geometry(fmt, &b, &bb);
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *row = W + (size_t)r * rb;
        float acc = 0.0f;
        for (int64_t c0 = 0; c0 < cols; c0 += BT_CPU_GEN_COLS) {
            int64_t n = cols - c0 < BT_CPU_GEN_COLS ? cols - c0 : BT_CPU_GEN_COLS;
            d->to_f32(fmt, NULL, row + (size_t)(c0 / b) * bb, buf, n);
            acc += dot(buf, x + c0, n);
        }
        y[r] = acc;
    }
}

static void gemv_f32_generic(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb,
                             int64_t nrows, int64_t cols, const float *x, float *y) {
    bt_cpu_gemv_generic(fmt, W, rb, nrows, cols, x, y, dot8);
}

static bt_cpu_gemv_f32_fn ref_pick_gemv_f32(const struct bt_tfmt *fmt) {
    switch (fmt->type) {
    case BT_TYPE_F32: case BT_TYPE_F16: case BT_TYPE_BF16: return gemv_f32_float;
    case BT_TYPE_Q8_0: return gemv_f32_q8_0;
    case BT_TYPE_Q4_0: return gemv_f32_q4_0;
    case BT_TYPE_TQ1_0: case BT_TYPE_TQ2_0: case BT_TYPE_MTQ: return gemv_f32_tern;
    default: return bt_cpu_fmt_generic(fmt) ? gemv_f32_generic : NULL;
    }
}

/* ---- gemv_q8 ------------------------------------------------------------------------------- */
static void gemv_q8_q8_0(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                         int64_t cols, const struct bt_cpu_act *a, float *y) {
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *b = W + (size_t)r * rb;
        float acc = 0.0f;
        for (int64_t c0 = 0; c0 < cols; c0 += 32, b += 34) {
            int32_t s = 0;
            for (int i = 0; i < 32; i++) s += (int8_t)b[2 + i] * a->xq[c0 + i];
            acc += h2f(b) * a->xs[c0 / a->ablock] * (float)s;
        }
        y[r] = acc;
    }
}

static void gemv_q8_q4_0(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                         int64_t cols, const struct bt_cpu_act *a, float *y) {
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *b = W + (size_t)r * rb;
        float acc = 0.0f;
        for (int64_t c0 = 0; c0 < cols; c0 += 32, b += 18) {
            int32_t s = 0;
            for (int i = 0; i < 16; i++)
                s += ((b[2 + i] & 15) - 8) * a->xq[c0 + i] + ((b[2 + i] >> 4) - 8) * a->xq[c0 + 16 + i];
            acc += h2f(b) * a->xs[c0 / a->ablock] * (float)s;
        }
        y[r] = acc;
    }
}

/* Per block and plane: one integer dot per activation-scale run (the whole block when ablock is
 * a multiple of B, else runs of 32), then y += scale_w * xs * isum. */
static void gemv_q8_tern(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                         int64_t cols, const struct bt_cpu_act *a, float *y) {
    struct bt_cpu_tgeom g;
    uint8_t codes[8 * 256 + 8];
    bt_cpu_tgeom_of(fmt, &g);
    uint32_t run = a->ablock % g.B == 0 ? g.B : 32;
    for (int64_t r = 0; r < nrows; r++) {
        const uint8_t *blk = W + (size_t)r * rb;
        float acc = 0.0f;
        for (int64_t c0 = 0; c0 < cols; c0 += g.B, blk += g.bb) {
            bt_cpu_ref_codes(&g, blk, codes);
            for (uint32_t p = 0; p < g.N; p++) {
                const uint8_t *cp = codes + (size_t)p * g.B;
                float sw = bt_cpu_tscale(&g, blk, p);
                for (uint32_t e0 = 0; e0 < g.B; e0 += run) {
                    int32_t s = 0;
                    for (uint32_t i = e0; i < e0 + run; i++)
                        s += ((int)cp[i] - 1) * a->xq[c0 + i];
                    acc += sw * a->xs[(c0 + e0) / a->ablock] * (float)s;
                }
            }
        }
        y[r] = acc;
    }
}

static bt_cpu_gemv_q8_fn ref_pick_gemv_q8(const struct bt_tfmt *fmt) {
    switch (fmt->type) {
    case BT_TYPE_Q8_0: return gemv_q8_q8_0;
    case BT_TYPE_Q4_0: return gemv_q8_q4_0;
    case BT_TYPE_TQ1_0: case BT_TYPE_TQ2_0: case BT_TYPE_MTQ: return gemv_q8_tern;
    default: return NULL;
    }
}

/* ---- decode -------------------------------------------------------------------------------- */
static void decode_generic(const struct bt_tfmt *fmt, const uint8_t *src, int64_t n, float *dst) {
    bt_to_f32(fmt, src, dst, n);
}

/* same arithmetic as bt_to_f32 (d * t for TQ*, v = 0; v += a_p * t_p for MTQ) */
static void decode_tern(const struct bt_tfmt *fmt, const uint8_t *src, int64_t n, float *dst) {
    struct bt_cpu_tgeom g;
    uint8_t codes[8 * 256 + 8];
    float sc[8];
    bt_cpu_tgeom_of(fmt, &g);
    for (int64_t c0 = 0; c0 < n; c0 += g.B, src += g.bb) {
        bt_cpu_ref_codes(&g, src, codes);
        for (uint32_t p = 0; p < g.N; p++) sc[p] = bt_cpu_tscale(&g, src, p);
        if (fmt->type != BT_TYPE_MTQ) {
            for (uint32_t i = 0; i < g.B; i++) dst[c0 + i] = sc[0] * (float)((int)codes[i] - 1);
            continue;
        }
        for (uint32_t i = 0; i < g.B; i++) {
            float v = 0.0f;
            for (uint32_t p = 0; p < g.N; p++) v += sc[p] * (float)((int)codes[p * g.B + i] - 1);
            dst[c0 + i] = v;
        }
    }
}

static bt_cpu_decode_fn ref_pick_decode(const struct bt_tfmt *fmt) {
    switch (fmt->type) {
    case BT_TYPE_F32: case BT_TYPE_F16: case BT_TYPE_BF16: case BT_TYPE_Q8_0: case BT_TYPE_Q4_0:
        return decode_generic;
    case BT_TYPE_TQ1_0: case BT_TYPE_TQ2_0: case BT_TYPE_MTQ: return decode_tern;
    default: return bt_cpu_fmt_generic(fmt) ? decode_generic : NULL;
    }
}

/* ---- gemm tile ----------------------------------------------------------------------------- */
static void ref_tile(const float *Wf, int64_t nr, int64_t cols, const float *X, int64_t ntok,
                     float *Y, int64_t ldy) {
    for (int64_t t = 0; t < ntok; t++)
        for (int64_t r = 0; r < nr; r++)
            Y[t * ldy + r] = dot8(Wf + r * cols, X + t * cols, cols);
}

const struct bt_cpu_isa bt_cpu_isa_ref = {
    "scalar", ref_pick_gemv_f32, ref_pick_gemv_q8, ref_pick_decode, ref_tile, NULL, NULL, NULL,
};
