/* absmean_noavx2.c - stand-in for the AVX2 kernel on other architectures (never called). */
#include "absmean_kern.h"

float bt_absmean_block_avx2(const float *w, int n, int lsq, int8_t *q, struct bt_absmean_sums *bs) {
    (void)w; (void)n; (void)lsq; (void)q; (void)bs;
    return 0.0f;
}
