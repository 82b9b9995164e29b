/* st_bitnet.c - BitNet b1.58 weights into TQ2_0: unpacking HF's packed uint8 trits, and the
 * per-tensor absmean ternarization of bf16 master weights. See st_bitnet.h. */
#include "st_bitnet.h"
#include "bt_types.h" /* bt_tq2_0_pack */

#include <math.h>
#include <stdlib.h>

int bt_st_bitnet_unpack(const uint8_t *packed, int64_t rows, int64_t cols, float scale, uint8_t *dst) {
    int64_t q = rows / 4, nb = cols / 256;
    int8_t t[256];
    for (int64_t row = 0; row < rows; row++) {
        const uint8_t *src = packed + (row % q) * cols;
        int shift = 2 * (int)(row / q);
        for (int64_t b = 0; b < nb; b++) {
            for (int e = 0; e < 256; e++) {
                int c = (src[b * 256 + e] >> shift) & 3;
                if (c == 3) return -1;
                t[e] = (int8_t)(c - 1);
            }
            bt_tq2_0_pack(t, scale, dst + (row * nb + b) * 66);
        }
    }
    return 0;
}

float bt_st_bitnet_ternarize(const float *w, int64_t rows, int64_t cols, uint8_t *dst) {
    int64_t n = rows * cols, nb = cols / 256;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += fabs((double)w[i]);
    float s = (float)(sum / (double)(n ? n : 1));
    if (!(s >= 1e-5f)) s = 1e-5f;
    int8_t t[256];
    for (int64_t row = 0; row < rows; row++)
        for (int64_t b = 0; b < nb; b++) {
            const float *x = w + row * cols + b * 256;
            for (int e = 0; e < 256; e++) {
                float v = rintf(x[e] / s);
                t[e] = (int8_t)(v > 1.0f ? 1 : v < -1.0f ? -1 : v);
            }
            bt_tq2_0_pack(t, s, dst + (row * nb + b) * 66);
        }
    return s;
}
