/* cu_dec.h - the CUDA backend's element decoders of the weight formats (element c of a packed
 * row, the same arithmetic as bt_to_f32 in core/types, so decoded values are bit-identical) and
 * its int8 activation round trip (as backends/cpu/cpu_act.c). Plain C11 that nvcc also compiles
 * for the device: the kernels (cu_weights.cu) use it, and tests/backend/test_cuda_dec.c checks it
 * on the host against bt_to_f32 and the cpu quantizer (CI has no GPU). No FMA contraction: the
 * kernels are built with -fmad=false, the test with -ffp-contract=off. */
#ifndef BT_CU_DEC_H
#define BT_CU_DEC_H

#include "bt/bt_plugin.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* a weight format as the kernels decode it (BT_TYPE_F32/F16/BF16/Q8_0/Q4_0/TQ1_0/TQ2_0/MTQ) */
struct bt_cu_wfmt {
    int32_t  type;        /* BT_TYPE_* */
    int32_t  planes;      /* MTQ */
    int32_t  block;       /* elements per block (1 for F32/F16/BF16) */
    int32_t  layout;      /* MTQ */
    int32_t  block_bytes; /* bytes per block */
    uint64_t row_bytes;   /* bytes per row */
};

#ifdef __CUDACC__
#define BT_CU_FN static __host__ __device__ __forceinline__
#else
#define BT_CU_FN static inline
#endif

BT_CU_FN float bt_cu_bits2f(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, 4);
    return f;
#endif
}

/* IEEE half -> float by bits, as bt_fp16_to_f32 (NaN payloads kept) */
BT_CU_FN float bt_cu_h2f(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16, ex = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (ex == 0) {
        if (man == 0) return bt_cu_bits2f(sign);
        float v = (float)man * (1.0f / 16777216.0f); /* man * 2^-24, exact */
        return sign ? -v : v;
    }
    if (ex == 31) return bt_cu_bits2f(sign | 0x7f800000u | (man << 13));
    return bt_cu_bits2f(sign | ((ex + 112) << 23) | (man << 13));
}

BT_CU_FN uint32_t bt_cu_u16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }

/* trit n (0..4) of a TQ1_0 byte: the top "digit" of b * 3^n in 8-bit fixed point */
BT_CU_FN int bt_cu_tq1_trit(uint32_t b, int n) {
    const uint32_t pw = n == 0 ? 1u : n == 1 ? 3u : n == 2 ? 9u : n == 3 ? 27u : 81u;
    uint32_t p = (b * pw) & 0xffu;
    return (int)((p * 3u) >> 8) - 1;
}

/* ---- one function per format: element c of the packed row `row` ----------------------------- */
BT_CU_FN float bt_cu_dec_f32(const uint8_t *row, int64_t c) {
    return ((const float *)(const void *)row)[c];
}
BT_CU_FN float bt_cu_dec_f16(const uint8_t *row, int64_t c) { return bt_cu_h2f(bt_cu_u16(row + 2 * c)); }
BT_CU_FN float bt_cu_dec_bf16(const uint8_t *row, int64_t c) { return bt_cu_bits2f(bt_cu_u16(row + 2 * c) << 16); }
BT_CU_FN float bt_cu_dec_q8_0(const uint8_t *row, int64_t c) {
    const uint8_t *s = row + (c >> 5) * 34;
    return bt_cu_h2f(bt_cu_u16(s)) * (float)(int8_t)s[2 + (c & 31)];
}
BT_CU_FN float bt_cu_dec_q4_0(const uint8_t *row, int64_t c) {
    const uint8_t *s = row + (c >> 5) * 18;
    int j = (int)(c & 31);
    int q = j < 16 ? (s[2 + j] & 15) : (s[2 + j - 16] >> 4);
    return bt_cu_h2f(bt_cu_u16(s)) * (float)(q - 8);
}
/* byte m of half h holds elements 128h + m + 32l at bits 2l */
BT_CU_FN float bt_cu_dec_tq2_0(const uint8_t *row, int64_t c) {
    const uint8_t *s = row + (c >> 8) * 66;
    int e = (int)(c & 255), h = e >> 7, l = (e & 127) >> 5, m = e & 31;
    int t = ((s[32 * h + m] >> (2 * l)) & 3) - 1;
    return bt_cu_h2f(bt_cu_u16(s + 64)) * (float)t;
}
/* bytes 0..31: elements m + 32n; 32..47: 160 + m + 16n; 48..51: 240 + j + 4n */
BT_CU_FN float bt_cu_dec_tq1_0(const uint8_t *row, int64_t c) {
    const uint8_t *s = row + (c >> 8) * 54;
    int e = (int)(c & 255), t;
    if (e < 160) t = bt_cu_tq1_trit(s[e & 31], e >> 5);
    else if (e < 240) t = bt_cu_tq1_trit(s[32 + ((e - 160) & 15)], (e - 160) >> 4);
    else t = bt_cu_tq1_trit(s[48 + ((e - 240) & 3)], (e - 240) >> 2);
    return bt_cu_h2f(bt_cu_u16(s + 52)) * (float)t;
}
/* MTQ (docs/formats.md): planes scales (f16), then the codes; the planes summed in order */
BT_CU_FN float bt_cu_dec_mtq(const struct bt_cu_wfmt *f, const uint8_t *row, int64_t c) {
    const int B = f->block, N = f->planes, i = (int)(c % B);
    const uint8_t *s = row + (c / B) * (int64_t)f->block_bytes, *q = s + 2 * N;
    float v = 0.0f;
    for (int p = 0; p < N; p++) {
        float a = bt_cu_h2f(bt_cu_u16(s + 2 * p));
        int t;
        if (f->layout == 0) { /* chunks of C: plane slices of C/4 bytes, element e at bits 2(e / (C/4)) */
            const int C = B < 128 ? B : 128, S = C / 4, e = i % C;
            const uint8_t *ss = q + (i / C) * N * S + p * S;
            t = ((ss[e % S] >> (2 * (e / S))) & 3) - 1;
        } else { /* groups of 5 elements: one base-3 byte per plane */
            int val = q[(i / 5) * N + p];
            for (int k = i % 5; k > 0; k--) val /= 3;
            t = val % 3 - 1;
        }
        v = v + a * (float)t;
    }
    return v;
}

/* any format with kernels (f->type), 0 for others */
BT_CU_FN float bt_cu_dec(const struct bt_cu_wfmt *f, const uint8_t *row, int64_t c) {
    switch (f->type) {
    case BT_TYPE_F32: return bt_cu_dec_f32(row, c);
    case BT_TYPE_F16: return bt_cu_dec_f16(row, c);
    case BT_TYPE_BF16: return bt_cu_dec_bf16(row, c);
    case BT_TYPE_Q8_0: return bt_cu_dec_q8_0(row, c);
    case BT_TYPE_Q4_0: return bt_cu_dec_q4_0(row, c);
    case BT_TYPE_TQ2_0: return bt_cu_dec_tq2_0(row, c);
    case BT_TYPE_TQ1_0: return bt_cu_dec_tq1_0(row, c);
    case BT_TYPE_MTQ: return bt_cu_dec_mtq(f, row, c);
    }
    return 0.0f;
}

/* ---- TQ2_0 batch-1 products: 16 lanes per block -----------------------------------------------
 * Lane j (0..15) of a block takes its code bytes 32h + q .. 32h + q + 3 (h = j / 8, q = 4 (j % 8));
 * bit field l (0..3) of byte 32h + q + k holds element 128h + 32l + q + k. The 16 lanes' sums
 * add up to the block's sum_e t_e x_e (unscaled; times d by the caller). */
BT_CU_FN uint32_t bt_cu_tq2_lane_bytes(const uint8_t *blk, int j) {
    const uint8_t *p = blk + 32 * (j >> 3) + 4 * (j & 7); /* blocks are 66 B: byte loads */
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* f32 activations: xb = the block's 256 activations */
BT_CU_FN float bt_cu_tq2_lane_dot(const uint8_t *blk, const float *xb, int j) {
    const uint32_t w = bt_cu_tq2_lane_bytes(blk, j);
    const float *x = xb + 128 * (j >> 3) + 4 * (j & 7);
    float s = 0.0f;
    for (int l = 0; l < 4; l++)
        for (int k = 0; k < 4; k++) {
            int t = (int)((w >> (8 * k + 2 * l)) & 3u) - 1;
            s = s + (float)t * x[32 * l + k];
        }
    return s;
}

BT_CU_FN int bt_cu_dp4a(uint32_t a, uint32_t b, int c) { /* sum of 4 products of signed bytes */
#ifdef __CUDA_ARCH__
    return __dp4a((int)a, (int)b, c);
#else
    for (int k = 0; k < 4; k++) c += (int)(int8_t)(a >> (8 * k)) * (int)(int8_t)(b >> (8 * k));
    return c;
#endif
}

/* int8 activations: qb = the block's 256 int8 values (4-byte aligned); exact integer
 * sum_e t_e q_e over the lane's 16 elements, t = code - 1 */
BT_CU_FN int bt_cu_tq2_lane_idot(const uint8_t *blk, const int8_t *qb, int j) {
    const uint32_t w = bt_cu_tq2_lane_bytes(blk, j);
    const int8_t *q = qb + 128 * (j >> 3) + 4 * (j & 7);
    int s = 0;
    for (int l = 0; l < 4; l++) {
        uint32_t x4;
#ifdef __CUDA_ARCH__
        x4 = *(const uint32_t *)(const void *)(q + 32 * l); /* 4-byte aligned (see above) */
#else
        memcpy(&x4, q + 32 * l, 4);
#endif
        s = bt_cu_dp4a((w >> (2 * l)) & 0x03030303u, x4, s); /* sum of code * q, codes 0..2 */
        s -= bt_cu_dp4a(0x01010101u, x4, 0);                  /* minus sum of q: t = code - 1 */
    }
    return s;
}

/* ---- BitNet b1.58 (ABI 2.2): RELU2 and QUANT_ROW, element by element as cpu_ops.c ------------- */
/* max(a, 0)^2 * b (NaN a: 0) */
BT_CU_FN float bt_cu_relu2(float a, float b) {
    const float g = a > 0.0f ? a : 0.0f;
    return b * (g * g);
}
/* the running max of |x| as cpu_ops.c's quant_row takes it (NaNs skipped) */
BT_CU_FN float bt_cu_absmax(float mx, float x) { return fabsf(x) > mx ? fabsf(x) : mx; }
/* s = 127 / max(mx, 1e-5) */
BT_CU_FN float bt_cu_qrow_scale(float mx) { return 127.0f / (mx > 1e-5f ? mx : 1e-5f); }
/* clamp(rint(x s), -128, 127) / s (rint: round half to even) */
BT_CU_FN float bt_cu_qrow_val(float x, float s) {
    const float q = rintf(x * s);
    return (q > 127.0f ? 127.0f : q < -128.0f ? -128.0f : q) / s;
}

/* ---- int8 activations -------------------------------------------------------------------------
 * x's int8 round trip in its block of 256 whose largest |value| (NaNs skipped, 0 if none) is
 * amax: xs = amax / 127, q = x / xs rounded half away from zero, clamped to +-127, NaN -> 0;
 * the result q * xs (what MATMUL act = Q8 multiplies the weights with) */
BT_CU_FN float bt_cu_q8_scale(float amax) { return amax / 127.0f; }
BT_CU_FN int bt_cu_q8_code(float x, float d) {
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    float q = roundf(x * id);
    q = q > 127.0f ? 127.0f : (q < -127.0f ? -127.0f : q);
    if (q != q) q = 0.0f;
    return (int)q;
}
BT_CU_FN float bt_cu_q8_round_trip(float x, float amax) {
    const float d = bt_cu_q8_scale(amax);
    return (float)(int8_t)bt_cu_q8_code(x, d) * d;
}

#endif
