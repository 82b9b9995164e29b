/* vq_kmeans.c - weighted k-means for the vptq quantizer: a seeded sample of the points, init
 * from distinct sampled points, Lloyd iterations whose assignment step runs on the host's compute
 * backend (host->kmeans_assign, op KMEANS) and whose update is a weighted mean summed in point
 * order (double). Empty clusters take the sampled point farthest from its centroid. */
#include "vq_algo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void vq_round_f16(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = bt_fp16_to_f32(bt_f32_to_fp16(x[i]));
}

bt_status vq_kmeans(const struct bt_host *h, const float *pts, const double *wt, int64_t n,
                    int64_t d, int64_t K, int iters, int64_t sample, uint64_t seed, float *C,
                    bt_err *err) {
    if (n < 1) { memset(C, 0, sizeof(float) * (size_t)(K * d)); return BT_OK; }
    if (!BT_HAS(h, kmeans_assign))
        return h->set_error(err, BT_E_UNSUPPORTED, "vptq: the host has no kmeans_assign (ABI 2.1)");
    uint64_t rs = seed * 0x2545f4914f6cdd1dull + 17;
    int64_t m = n < sample ? n : sample;
    int64_t *sel = malloc(sizeof(int64_t) * (size_t)n);
    float *P = malloc(sizeof(float) * (size_t)(m * d));
    double *pw = malloc(sizeof(double) * (size_t)m), *sum = malloc(sizeof(double) * (size_t)(K * (d + 1)));
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)m), *prev = malloc(sizeof(int32_t) * (size_t)m);
    bt_status st = BT_OK;
    if (!sel || !P || !pw || !sum || !idx || !prev) { st = h->set_error(err, BT_E_NOMEM, "vptq: out of memory (k-means of %lld points)", (long long)n); goto done; }
    for (int64_t i = 0; i < n; i++) sel[i] = i;
    for (int64_t i = 0; i < m; i++) { /* partial Fisher-Yates: the first m are the sample */
        int64_t j = i + (int64_t)(mix(&rs) % (uint64_t)(n - i)), t = sel[i];
        sel[i] = sel[j];
        sel[j] = t;
    }
    for (int64_t i = 0; i < m; i++) {
        memcpy(P + i * d, pts + sel[i] * d, sizeof(float) * (size_t)d);
        pw[i] = wt ? wt[sel[i]] : 1.0;
    }
    /* init: the first K sampled points (a random sample already), cycled if m < K */
    for (int64_t k = 0; k < K; k++) memcpy(C + k * d, P + (k % m) * d, sizeof(float) * (size_t)d);
    for (int64_t i = 0; i < m; i++) prev[i] = -1;
    for (int it = 0; it < iters; it++) {
        if ((st = h->kmeans_assign(P, m, d, C, K, NULL, idx, err))) goto done;
        int changed = 0;
        for (int64_t i = 0; i < m; i++) changed |= idx[i] != prev[i];
        if (!changed) break;
        memcpy(prev, idx, sizeof(int32_t) * (size_t)m);
        memset(sum, 0, sizeof(double) * (size_t)(K * (d + 1)));
        for (int64_t i = 0; i < m; i++) {
            double *s = sum + (int64_t)idx[i] * (d + 1);
            for (int64_t e = 0; e < d; e++) s[e] += pw[i] * P[i * d + e];
            s[d] += pw[i];
        }
        for (int64_t k = 0; k < K; k++) {
            double *s = sum + k * (d + 1);
            if (s[d] > 0) {
                for (int64_t e = 0; e < d; e++) C[k * d + e] = (float)(s[e] / s[d]);
                continue;
            }
            /* empty: the point farthest from its centroid (weighted), then it is taken */
            double best = -1;
            int64_t bi = 0;
            for (int64_t i = 0; i < m; i++) {
                double e2 = 0;
                for (int64_t e = 0; e < d; e++) {
                    double df = (double)P[i * d + e] - C[(int64_t)idx[i] * d + e];
                    e2 += df * df;
                }
                e2 *= pw[i];
                if (e2 > best) { best = e2; bi = i; }
            }
            memcpy(C + k * d, P + bi * d, sizeof(float) * (size_t)d);
            idx[bi] = (int32_t)k;
            prev[bi] = -1;
        }
    }
done:
    free(sel); free(P); free(pw); free(sum); free(idx); free(prev);
    return st;
}
