/* cpu_vq_avx2.c - AVX2 accumulation kernel of the vq format: for each row block, the codebook
 * vectors of its codes, scaled by the pre-scaled activations, summed in registers (v = 4, 8, 16
 * in one or two vector registers; other lengths in a short loop). Codes are read 64 bits at a
 * time where the stream has room, else bit by bit. Built with -mavx2 -mfma. */
#include "cpu_kern.h"

#include <immintrin.h>
#include <string.h>

/* code p of a stream of S bytes, t bits each */
static inline uint32_t code_at(const uint8_t *s, uint64_t S, int64_t p, uint32_t t, uint64_t mask) {
    uint64_t bit = (uint64_t)p * t, by = bit >> 3;
    if (by + 8 <= S) {
        uint64_t w;
        memcpy(&w, s + by, 8);
        return (uint32_t)((w >> (bit & 7)) & mask);
    }
    return bt_vq_get_code(s, bit, t);
}

#define LOOP(BODY)                                                                               \
    for (uint32_t g = 0; g < L->G; g++) {                                                        \
        const float *cm = cm0 + ((uint64_t)g << L->b1) * v;                                      \
        const float *cr = cr0 + ((uint64_t)g << (L->b2 ? L->b2 : 0)) * v;                        \
        int64_t p0 = (int64_t)g * L->gs, p1 = p0 + L->gs;                                        \
        for (int64_t p = p0; p < p1; p++) {                                                      \
            uint32_t code = code_at(s, L->S, p, t, mask);                                        \
            const float *a = cm + (code & m1) * v;                                               \
            const float *b = cr + (code >> L->b1) * v;                                           \
            (void)b;                                                                             \
            BODY                                                                                 \
        }                                                                                        \
    }

void bt_cpu_vq_gemv_avx2(const struct bt_cpu_vq *q, const uint8_t *data, const uint8_t *tail,
                         int64_t rb0, int64_t rb1, const float *xp, float *y) {
    const struct bt_vq_layout *L = &q->L;
    uint32_t v = L->v, t = L->t, m1 = (1u << L->b1) - 1;
    uint64_t mask = (1ull << t) - 1;
    const float *cm0 = q->cb + L->cb_main / 2, *cr0 = q->cb + L->cb_res / 2;
    int res = L->b2 != 0;
    for (int64_t rb = rb0; rb < rb1; rb++) {
        const uint8_t *s = (rb + 1) * (int64_t)v > L->rows ? tail : data + (uint64_t)rb * v * L->R;
        float out[BT_VQ_MAX_V];
        if (v == 4) {
            __m128 acc = _mm_setzero_ps(), acc2 = _mm_setzero_ps();
            if (res) {
                LOOP(__m128 x = _mm_set1_ps(xp[p]);
                     acc = _mm_fmadd_ps(x, _mm_loadu_ps(a), acc);
                     acc2 = _mm_fmadd_ps(x, _mm_loadu_ps(b), acc2);)
            } else {
                LOOP(acc = _mm_fmadd_ps(_mm_set1_ps(xp[p]), _mm_loadu_ps(a), acc);)
            }
            _mm_storeu_ps(out, _mm_add_ps(acc, acc2));
        } else if (v == 8) {
            __m256 acc = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps();
            if (res) {
                LOOP(__m256 x = _mm256_set1_ps(xp[p]);
                     acc = _mm256_fmadd_ps(x, _mm256_loadu_ps(a), acc);
                     acc2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b), acc2);)
            } else {
                LOOP(acc = _mm256_fmadd_ps(_mm256_set1_ps(xp[p]), _mm256_loadu_ps(a), acc);)
            }
            _mm256_storeu_ps(out, _mm256_add_ps(acc, acc2));
        } else if (v == 16) {
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            LOOP(__m256 x = _mm256_set1_ps(xp[p]);
                 a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(a), a0);
                 a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(a + 8), a1);
                 if (res) {
                     a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b), a0);
                     a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + 8), a1);
                 })
            _mm256_storeu_ps(out, a0);
            _mm256_storeu_ps(out + 8, a1);
        } else {
            float acc[BT_VQ_MAX_V] = {0};
            LOOP(float xv = xp[p];
                 for (uint32_t e = 0; e < v; e++) acc[e] += xv * a[e];
                 if (res) for (uint32_t e = 0; e < v; e++) acc[e] += xv * b[e];)
            memcpy(out, acc, sizeof(float) * v);
        }
        for (uint32_t e = 0; e < v && rb * v + e < L->rows; e++) y[rb * v + e] = out[e];
    }
}
