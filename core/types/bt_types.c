/* bt_types.c - fp16/bf16 conversion, TQ1_0/TQ2_0/MTQ block pack and unpack (the formats' descriptors
 * and codecs are in bt_formats.c).
 * Bit layouts follow docs/formats.md; TQ1_0/TQ2_0 are checked bit-exact against gguf-py. */
#include "bt_types.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- fp16 / bf16 --------------------------------------------------------------------------- */
static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float bt_fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp  = (h >> 10) & 0x1f;
    uint32_t man  = h & 0x3ff;
    if (exp == 0) {
        if (man == 0) return u2f(sign);
        float v = (float)man * (1.0f / 16777216.0f); /* man * 2^-24 */
        return sign ? -v : v;
    }
    if (exp == 31) return u2f(sign | 0x7f800000u | (man << 13));
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t bt_f32_to_fp16(float f) {
    uint32_t u    = f2u(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a    = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (a > 0x7f800000u ? 0x200 : 0));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {                                   /* subnormal or zero in fp16 */
        if (a < 0x33000000u) return sign;                    /* < 2^-25: rounds to 0 */
        uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;                            /* 14 - (e-127) + 13 - 1 ... */
        /* value = m * 2^(e-150); fp16 subnormal unit 2^-24 -> q = m >> (126 - e) */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t e = ((a >> 23) - 112) << 10, m = (a >> 13) & 0x3ff;
    uint32_t h = e | m, rem = a & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

uint16_t bt_f32_to_bf16(float f) {
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64); /* quiet NaN */
    return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

/* ---- traits -------------------------------------------------------------------------------- */
size_t bt_mtq_block_bytes(uint32_t planes, uint32_t block, uint32_t layout) {
    if (planes < 1 || planes > 8 || block < 5 || (block != 64 && block != 128 && block != 256))
        return 0;
    size_t codes = layout == 0 ? (size_t)planes * block / 4 : (size_t)planes * ((block + 4) / 5);
    return layout > 1 ? 0 : 2u * planes + codes;
}

/* ---- TQ2_0 / TQ1_0 ------------------------------------------------------------------------- */
void bt_tq2_0_pack(const int8_t *t, float d, uint8_t *blk) {
    /* byte m of half h holds elements 128h + m + 32l at bits 2l (l = 0..3) */
    for (int h = 0; h < 2; h++) {
        const int8_t *x = t + 128 * h;
        for (int m = 0; m < 32; m++)
            blk[32 * h + m] = (uint8_t)((x[m] + 1) | ((x[m + 32] + 1) << 2) | ((x[m + 64] + 1) << 4) |
                                        ((x[m + 96] + 1) << 6));
    }
    uint16_t hd = bt_f32_to_fp16(d);
    blk[64] = (uint8_t)(hd & 0xff);
    blk[65] = (uint8_t)(hd >> 8);
}

void bt_tq2_0_unpack(const uint8_t *blk, int8_t *t, float *d) {
    for (int e = 0; e < 256; e++) {
        int h = e / 128, l = (e % 128) / 32, m = e % 32;
        t[e] = (int8_t)(((blk[32 * h + m] >> (2 * l)) & 3) - 1);
    }
    *d = bt_fp16_to_f32((uint16_t)(blk[64] | (blk[65] << 8)));
}

static uint8_t tq1_byte(const int8_t *t, int start, int stride, int ntrits) {
    static const int pw[5] = {81, 27, 9, 3, 1};
    int q = 0;
    for (int n = 0; n < ntrits; n++) q += (t[start + stride * n] + 1) * pw[n];
    return (uint8_t)(((uint16_t)q * 256 + 242) / 243);
}

void bt_tq1_0_pack(const int8_t *t, float d, uint8_t *blk) {
    for (int m = 0; m < 32; m++) blk[m] = tq1_byte(t, m, 32, 5);
    for (int m = 0; m < 16; m++) blk[32 + m] = tq1_byte(t, 160 + m, 16, 5);
    for (int j = 0; j < 4; j++) blk[48 + j] = tq1_byte(t, 240 + j, 4, 4);
    uint16_t hd = bt_f32_to_fp16(d);
    blk[52] = (uint8_t)(hd & 0xff);
    blk[53] = (uint8_t)(hd >> 8);
}

static int8_t tq1_trit(uint8_t b, int n) {
    static const uint8_t pw[5] = {1, 3, 9, 27, 81};
    uint8_t p = (uint8_t)(b * pw[n]);
    return (int8_t)((((uint16_t)p * 3) >> 8) - 1);
}

void bt_tq1_0_unpack(const uint8_t *blk, int8_t *t, float *d) {
    for (int n = 0; n < 5; n++)
        for (int m = 0; m < 32; m++) t[m + 32 * n] = tq1_trit(blk[m], n);
    for (int n = 0; n < 5; n++)
        for (int m = 0; m < 16; m++) t[160 + m + 16 * n] = tq1_trit(blk[32 + m], n);
    for (int n = 0; n < 4; n++)
        for (int j = 0; j < 4; j++) t[240 + j + 4 * n] = tq1_trit(blk[48 + j], n);
    *d = bt_fp16_to_f32((uint16_t)(blk[52] | (blk[53] << 8)));
}

static float absmax_codes(const float *x, int8_t *t) {
    float d = 0;
    for (int i = 0; i < 256; i++) d = fmaxf(d, fabsf(x[i]));
    float id = d ? 1.0f / d : 0.0f;
    for (int i = 0; i < 256; i++) t[i] = (int8_t)lroundf(x[i] * id);
    return d;
}

void bt_tq2_0_quantize_ref(const float *x, uint8_t *blk) {
    int8_t t[256];
    float d = absmax_codes(x, t);
    bt_tq2_0_pack(t, d, blk);
}

void bt_tq1_0_quantize_ref(const float *x, uint8_t *blk) {
    int8_t t[256];
    float d = absmax_codes(x, t);
    bt_tq1_0_pack(t, d, blk);
}

/* ---- MTQ ------------------------------------------------------------------------------------ */
void bt_mtq_pack_block(const struct bt_tfmt *fmt, const int8_t *t, const float *a, uint8_t *dst) {
    uint32_t N = fmt->planes, B = fmt->block;
    for (uint32_t p = 0; p < N; p++) {
        uint16_t h = bt_f32_to_fp16(a[p]);
        dst[2 * p] = (uint8_t)(h & 0xff);
        dst[2 * p + 1] = (uint8_t)(h >> 8);
    }
    uint8_t *q = dst + 2 * N;
    if (fmt->layout == 0) {
        uint32_t C = B < 128 ? B : 128, S = C / 4;
        memset(q, 0, (size_t)N * B / 4);
        for (uint32_t c0 = 0; c0 < B; c0 += C)
            for (uint32_t p = 0; p < N; p++) {
                uint8_t *s = q + (size_t)(c0 / C) * N * S + (size_t)p * S;
                for (uint32_t e = 0; e < C; e++)
                    s[e % S] |= (uint8_t)((t[p * B + c0 + e] + 1) << (2 * (e / S)));
            }
    } else {
        uint32_t G = (B + 4) / 5;
        for (uint32_t g = 0; g < G; g++)
            for (uint32_t p = 0; p < N; p++) {
                int v = 0, pw = 1;
                for (uint32_t k = 0; k < 5; k++, pw *= 3) {
                    uint32_t e = 5 * g + k;
                    v += (e < B ? t[p * B + e] + 1 : 1) * pw;
                }
                q[g * N + p] = (uint8_t)v;
            }
    }
}

void bt_mtq_unpack_block(const struct bt_tfmt *fmt, const uint8_t *src, int8_t *t, float *a) {
    uint32_t N = fmt->planes, B = fmt->block;
    for (uint32_t p = 0; p < N; p++)
        a[p] = bt_fp16_to_f32((uint16_t)(src[2 * p] | (src[2 * p + 1] << 8)));
    const uint8_t *q = src + 2 * N;
    if (fmt->layout == 0) {
        uint32_t C = B < 128 ? B : 128, S = C / 4;
        for (uint32_t c0 = 0; c0 < B; c0 += C)
            for (uint32_t p = 0; p < N; p++) {
                const uint8_t *s = q + (size_t)(c0 / C) * N * S + (size_t)p * S;
                for (uint32_t e = 0; e < C; e++)
                    t[p * B + c0 + e] = (int8_t)(((s[e % S] >> (2 * (e / S))) & 3) - 1);
            }
    } else {
        uint32_t G = (B + 4) / 5;
        for (uint32_t g = 0; g < G; g++)
            for (uint32_t p = 0; p < N; p++) {
                int v = q[g * N + p];
                for (uint32_t k = 0; k < 5; k++, v /= 3) {
                    uint32_t e = 5 * g + k;
                    if (e < B) t[p * B + e] = (int8_t)(v % 3 - 1);
                }
            }
    }
}

