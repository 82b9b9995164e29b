/* so_util.h - seeded problems for the second-order engine tests: Gaussian weights and the
 * Hessian G = X^T X / ntok of activations with correlated and outlier columns. */
#ifndef BT_SO_UTIL_H
#define BT_SO_UTIL_H
#include "bt/bt.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static inline double so_urand(uint64_t *s) {
    *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
    return ((double)((*s * 0x2545f4914f6cdd1dull) >> 11) + 0.5) / 9007199254740992.0;
}
static inline double so_gauss(uint64_t *s) {
    double u = so_urand(s), v = so_urand(s);
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* rows x cols Gaussian weights (sd 0.02); NULL on OOM */
static inline float *so_weights(int64_t rows, int64_t cols, uint64_t seed) {
    float *W = malloc(sizeof(float) * (size_t)(rows * cols));
    for (int64_t i = 0; W && i < rows * cols; i++) W[i] = (float)(0.02 * so_gauss(&seed));
    return W;
}

/* G (n x n f32, symmetric) = X^T X / ntok through bt_gram_accumulate; X has 8 shared factors,
 * neighbour correlation, column scales in [0.5, 2] and x12 on every 97th column; column dead
 * (if >= 0) is all zero. NULL on OOM. */
static inline float *so_gram(int64_t n, int64_t ntok, int64_t dead, uint64_t seed) {
    float *X = malloc(sizeof(float) * (size_t)(n * ntok)), *G = malloc(sizeof(float) * (size_t)(n * n));
    double *Gd = calloc((size_t)(n * n), sizeof(double)), *amp = malloc(sizeof(double) * (size_t)n);
    if (!X || !G || !Gd || !amp) { free(X); free(G); free(Gd); free(amp); return NULL; }
    for (int64_t c = 0; c < n; c++) amp[c] = (0.5 + 1.5 * so_urand(&seed)) * (c % 97 == 5 ? 12.0 : 1.0);
    for (int64_t t = 0; t < ntok; t++) {
        double fac[8], prev = 0;
        for (int f = 0; f < 8; f++) fac[f] = so_gauss(&seed);
        for (int64_t c = 0; c < n; c++) {
            double z = so_gauss(&seed);
            X[t * n + c] = c == dead ? 0.0f : (float)(amp[c] * (z + 0.6 * fac[c % 8] + 0.5 * prev));
            prev = z;
        }
    }
    bt_status st = bt_gram_accumulate(Gd, n, X, ntok);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            G[i * n + j] = (float)((j >= i ? Gd[i * n + j] : Gd[j * n + i]) / (double)ntok);
    free(X); free(Gd); free(amp);
    if (st) { free(G); return NULL; }
    return G;
}
#endif
