/* absmean_avx2.c - AVX2 version of the absmean block ternarizer. Same 8-lane summation order as
 * the portable code in absmean.c, so both give bit-identical codes and scales. Compiled with
 * -mavx2; only called after a CPUID check. */
#include "absmean_kern.h"

#include <immintrin.h>
#include <string.h>

static float lanes(__m256 v) {
    float a[8];
    _mm256_storeu_ps(a, v);
    return bt_absmean_lanes_sum(a);
}

float bt_absmean_block_avx2(const float *w, int n, int lsq, int8_t *q, struct bt_absmean_sums *bs) {
    const __m256 signmask = _mm256_set1_ps(-0.0f);
    __m256 acc = _mm256_setzero_ps(), sq = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        __m256 x = _mm256_loadu_ps(w + i);
        acc = _mm256_add_ps(acc, _mm256_andnot_ps(signmask, x));
        sq = _mm256_add_ps(sq, _mm256_mul_ps(x, x));
    }
    float s = lanes(acc) / (float)n;
    bs->x2 = lanes(sq);
    bs->sup = 0;
    bs->nz = 0;
    if (s == 0.0f) {
        memset(q, 0, (size_t)n);
        return 0.0f;
    }
    const __m256 inv = _mm256_set1_ps(1.0f / s), half = _mm256_set1_ps(0.5f),
                 mhalf = _mm256_set1_ps(-0.5f), one = _mm256_set1_ps(1.0f);
    __m256 sup = _mm256_setzero_ps(), cnt = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        __m256 w8 = _mm256_loadu_ps(w + i);
        __m256 x = _mm256_mul_ps(w8, inv);
        __m256 pos = _mm256_and_ps(_mm256_cmp_ps(x, half, _CMP_GE_OQ), one);
        __m256 neg = _mm256_and_ps(_mm256_cmp_ps(x, mhalf, _CMP_LE_OQ), one);
        __m256 c = _mm256_sub_ps(pos, neg);
        sup = _mm256_add_ps(sup, _mm256_mul_ps(c, w8));
        cnt = _mm256_add_ps(cnt, _mm256_mul_ps(c, c));
        __m256i ci = _mm256_cvtps_epi32(c);                          /* 8 x i32 in {-1,0,1} */
        __m128i c16 = _mm_packs_epi32(_mm256_castsi256_si128(ci), _mm256_extracti128_si256(ci, 1));
        __m128i c8 = _mm_packs_epi16(c16, c16);
        _mm_storel_epi64((__m128i *)(q + i), c8);
    }
    bs->sup = lanes(sup);
    bs->nz = (int)lanes(cnt);
    if (!lsq) return s;
    return bs->nz ? bs->sup / (float)bs->nz : 0.0f;
}
