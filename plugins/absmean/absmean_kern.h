/* absmean_kern.h - the absmean block ternarizer shared by the portable and AVX2 builds. */
#ifndef BT_ABSMEAN_KERN_H
#define BT_ABSMEAN_KERN_H
#include <stdint.h>

/* per-block sums the error is computed from: ||w - s q||^2 = x2 - 2 s sup + s^2 nz */
struct bt_absmean_sums {
    float x2;  /* sum of w^2 */
    float sup; /* sum of |w| over the support (q != 0) */
    int   nz;  /* support size */
};

/* 8 lanes combined pairwise: the fixed summation order of every absmean kernel */
static inline float bt_absmean_lanes_sum(const float *a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* codes q (n elements, n % 8 == 0) and the block scale (absmean, or least squares if lsq) */
float bt_absmean_block_avx2(const float *w, int n, int lsq, int8_t *q, struct bt_absmean_sums *bs);
#endif
