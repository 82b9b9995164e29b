/* cpu_act.c - int8 activation quantizer (absmax per block) of the MATMUL op with BT_ACT_Q8:
 * the portable definition and an AVX2 path (chosen at run time) that gives the same bytes. */
#include "cpu_act.h"

#include <math.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BT_ACT_X86 1
#endif

/* one block: xs = amax / 127, xq = round(x / xs) half away from zero, clamped, NaN -> 0 */
static void block_ref(const float *xb, int64_t ablock, int8_t *q, float *xs) {
    float amax = 0.0f;
    for (int64_t i = 0; i < ablock; i++) amax = fmaxf(amax, fabsf(xb[i]));
    float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    *xs = d;
    for (int64_t i = 0; i < ablock; i++) {
        float v = roundf(xb[i] * id);
        v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
        if (v != v) v = 0.0f; /* NaN input */
        q[i] = (int8_t)v;
    }
}

#ifdef BT_ACT_X86
/* the same numbers: amax by max (NaN lanes lose), v = x * id rounded half away from zero as
 * trunc(v) + sign(v) when |v - trunc(v)| >= 0.5 (exact: v - trunc(v) has no rounding error) */
__attribute__((target("avx2"))) static void block_avx2(const float *xb, int64_t ablock, int8_t *q,
                                                       float *xs) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 vm = _mm256_setzero_ps();
    for (int64_t i = 0; i < ablock; i += 8)
        vm = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xb + i)), vm);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float amax = _mm_cvtss_f32(h);
    float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    *xs = d;
    const __m256 vid = _mm256_set1_ps(id), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 lim = _mm256_set1_ps(127.0f), nlim = _mm256_set1_ps(-127.0f);
    for (int64_t i = 0; i < ablock; i += 32) {
        __m256i iv[4];
        for (int k = 0; k < 4; k++) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xb + i + 8 * k), vid);
            __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            __m256 fr = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
            __m256 up = _mm256_and_ps(_mm256_cmp_ps(fr, half, _CMP_GE_OQ),
                                      _mm256_or_ps(one, _mm256_and_ps(sign, v)));
            t = _mm256_add_ps(t, up);
            t = _mm256_min_ps(_mm256_max_ps(t, nlim), lim);
            t = _mm256_and_ps(t, _mm256_cmp_ps(v, v, _CMP_ORD_Q)); /* NaN -> 0 */
            iv[k] = _mm256_cvttps_epi32(t);
        }
        __m256i p01 = _mm256_packs_epi32(iv[0], iv[1]), p23 = _mm256_packs_epi32(iv[2], iv[3]);
        __m256i p = _mm256_packs_epi16(p01, p23); /* lanes: 0-3 8-11 16-19 24-27 | 4-7 ... */
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(void *)(q + i), p);
    }
}

static int have_avx2(void) {
    static int v = -1;
    if (v < 0) v = __builtin_cpu_supports("avx2");
    return v;
}
#endif

bt_status bt_cpu_act_quantize(const float *x, int64_t n, int64_t ablock, int8_t *xq, float *xs) {
    if (!x || !xq || !xs || ablock <= 0 || n <= 0 || n % ablock) return BT_E_INVAL;
#ifdef BT_ACT_X86
    int fast = ablock % 32 == 0 && have_avx2();
#endif
    for (int64_t b = 0; b < n / ablock; b++) {
#ifdef BT_ACT_X86
        if (fast) { block_avx2(x + b * ablock, ablock, xq + b * ablock, xs + b); continue; }
#endif
        block_ref(x + b * ablock, ablock, xq + b * ablock, xs + b);
    }
    return BT_OK;
}

void bt_cpu_act_dequantize(const int8_t *xq, const float *xs, int64_t n, int64_t ablock, float *x) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)xq[i] * xs[i / ablock];
}
