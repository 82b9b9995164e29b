/* cu_fmt.cuh - device decoders of the weight formats: element c of a packed row, with the same
 * arithmetic as bt_to_f32 (core/types: bt_formats.c, bt_types.c), so decoded values are
 * bit-identical. The kernels are built with -fmad=false; the products here are single roundings
 * either way. Included by cu_weights.cu only. */
#ifndef BT_CU_FMT_CUH
#define BT_CU_FMT_CUH

#include "bt/bt_plugin.h"
#include "cu_kern.h"

#include <stdint.h>

/* IEEE half -> float by bits, as bt_fp16_to_f32 (NaN payloads kept) */
__device__ __forceinline__ float bt_cu_h2f(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16, ex = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (ex == 0) {
        if (man == 0) return __uint_as_float(sign);
        float v = __fmul_rn((float)man, 1.0f / 16777216.0f); /* man * 2^-24, exact */
        return sign ? -v : v;
    }
    if (ex == 31) return __uint_as_float(sign | 0x7f800000u | (man << 13));
    return __uint_as_float(sign | ((ex + 112) << 23) | (man << 13));
}

__device__ __forceinline__ uint32_t bt_cu_u16(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

/* trit n (0..4) of a TQ1_0 byte: the top "digit" of b * 3^n (fixed point, as bt_types.c) */
__device__ __forceinline__ int bt_cu_tq1_trit(uint32_t b, int n) {
    const uint32_t pw = n == 0 ? 1u : n == 1 ? 3u : n == 2 ? 9u : n == 3 ? 27u : 81u;
    uint32_t p = (b * pw) & 0xffu;
    return (int)((p * 3u) >> 8) - 1;
}

/* element c of the packed row `row` of format T (f: its geometry) */
template <int T>
__device__ __forceinline__ float bt_cu_dec(const struct bt_cu_wfmt &f, const uint8_t *row, int64_t c) {
    switch (T) {
    case BT_TYPE_F32: return ((const float *)(const void *)row)[c];
    case BT_TYPE_F16: return bt_cu_h2f(bt_cu_u16(row + 2 * c));
    case BT_TYPE_BF16: return __uint_as_float(bt_cu_u16(row + 2 * c) << 16);
    case BT_TYPE_Q8_0: {
        const uint8_t *s = row + (c >> 5) * 34;
        return __fmul_rn(bt_cu_h2f(bt_cu_u16(s)), (float)(int8_t)s[2 + (c & 31)]);
    }
    case BT_TYPE_Q4_0: {
        const uint8_t *s = row + (c >> 5) * 18;
        int j = (int)(c & 31);
        int q = j < 16 ? (s[2 + j] & 15) : (s[2 + j - 16] >> 4);
        return __fmul_rn(bt_cu_h2f(bt_cu_u16(s)), (float)(q - 8));
    }
    case BT_TYPE_TQ2_0: {
        const uint8_t *s = row + (c >> 8) * 66;
        int e = (int)(c & 255), h = e >> 7, l = (e & 127) >> 5, m = e & 31;
        int t = ((s[32 * h + m] >> (2 * l)) & 3) - 1;
        return __fmul_rn(bt_cu_h2f(bt_cu_u16(s + 64)), (float)t);
    }
    case BT_TYPE_TQ1_0: {
        const uint8_t *s = row + (c >> 8) * 54;
        int e = (int)(c & 255), t;
        if (e < 160) t = bt_cu_tq1_trit(s[e & 31], e >> 5);
        else if (e < 240) t = bt_cu_tq1_trit(s[32 + ((e - 160) & 15)], (e - 160) >> 4);
        else t = bt_cu_tq1_trit(s[48 + ((e - 240) & 3)], (e - 240) >> 2);
        return __fmul_rn(bt_cu_h2f(bt_cu_u16(s + 52)), (float)t);
    }
    case BT_TYPE_MTQ: {
        const int B = f.block, N = f.planes;
        const uint8_t *s = row + (c / B) * (int64_t)f.block_bytes, *q = s + 2 * N;
        const int i = (int)(c % B);
        float v = 0.0f;
        for (int p = 0; p < N; p++) {
            float a = bt_cu_h2f(bt_cu_u16(s + 2 * p));
            int t;
            if (f.layout == 0) {
                const int C = B < 128 ? B : 128, S = C / 4, e = i % C;
                const uint8_t *ss = q + (i / C) * N * S + p * S;
                t = ((ss[e % S] >> (2 * (e / S))) & 3) - 1;
            } else {
                int val = q[(i / 5) * N + p];
                for (int k = i % 5; k > 0; k--) val /= 3;
                t = val % 3 - 1;
            }
            v = __fadd_rn(v, __fmul_rn(a, (float)t));
        }
        return v;
    }
    }
    return 0.0f;
}

/* call F<T>(args...) for the runtime type f.type (cudaErrorInvalidValue if it has no kernels) */
#define BT_CU_DISPATCH(ftype, call)                                                              \
    switch (ftype) {                                                                             \
    case BT_TYPE_F32: { constexpr int T_ = BT_TYPE_F32; call; break; }                           \
    case BT_TYPE_F16: { constexpr int T_ = BT_TYPE_F16; call; break; }                           \
    case BT_TYPE_BF16: { constexpr int T_ = BT_TYPE_BF16; call; break; }                         \
    case BT_TYPE_Q8_0: { constexpr int T_ = BT_TYPE_Q8_0; call; break; }                         \
    case BT_TYPE_Q4_0: { constexpr int T_ = BT_TYPE_Q4_0; call; break; }                         \
    case BT_TYPE_TQ2_0: { constexpr int T_ = BT_TYPE_TQ2_0; call; break; }                       \
    case BT_TYPE_TQ1_0: { constexpr int T_ = BT_TYPE_TQ1_0; call; break; }                       \
    case BT_TYPE_MTQ: { constexpr int T_ = BT_TYPE_MTQ; call; break; }                           \
    default: return cudaErrorInvalidValue;                                                       \
    }

#endif
