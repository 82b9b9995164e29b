/* vq_algo.h - the VPTQ-style algorithm behind the "vptq" quantizer plugin: Hessian-weighted
 * k-means of codebooks (assignment on the host's compute backend), nearest-centroid search, and
 * the column-by-column quantization with error feedback (host->so_quantize) that produces bt's
 * vq format (core/types/bt_vq.c). */
#ifndef BT_VQ_ALGO_H
#define BT_VQ_ALGO_H

#include "bt/bt_plugin.h"
#include "bt_types.h"

/* quantizer settings */
struct vq_opts {
    uint32_t v, b1, b2;      /* vector length, main / residual index bits (b2 0: none) */
    uint32_t G;              /* codebooks per tensor */
    double   outlier_pct;    /* % of columns (largest diag H) with their own codebook */
    uint32_t v0, b0;         /* outlier vector length and index bits */
    int      norm;           /* per-column scale and bias */
    int      iters;          /* k-means iterations */
    int64_t  sample;         /* k-means points at most (sampled, seeded) */
    uint64_t seed;
};

/* weighted k-means of n points (n x d) with weights wt (NULL: 1) into K centroids C (K x d):
 * seeded sample and init, assignment through host->kmeans_assign, weighted means in a fixed
 * order. Deterministic for any thread count. */
bt_status vq_kmeans(const struct bt_host *h, const float *pts, const double *wt, int64_t n,
                    int64_t d, int64_t K, int iters, int64_t sample, uint64_t seed, float *C,
                    bt_err *err);

/* round each value to fp16 and back (what the file will hold) */
void vq_round_f16(float *x, int64_t n);

/* the format vq_quantize will write for a rows x cols tensor (has_cw: calibration weights) */
int vq_plan_fmt(const struct vq_opts *o, int64_t rows, int64_t cols, int has_cw,
                struct bt_tfmt *out);

/* quantize W (rows x cols) into fmt: dst = packed rows, parts = the format's parts. cw: input
 * column weights (diag H / E[x^2]) or NULL; hess: the Hessian for error feedback or NULL.
 * *err2 = sum (W - What)^2, *herr2 = the engine's Hessian-weighted error (0 without hess). */
bt_status vq_quantize(const struct bt_host *h, const struct vq_opts *o, const struct bt_tfmt *fmt,
                      const char *name, const float *W, int64_t rows, int64_t cols, const float *cw,
                      const bt_hessian *hess, uint8_t *dst, void *const *parts, double *err2,
                      double *herr2, bt_err *err);

#endif
