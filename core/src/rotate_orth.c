/* rotate_orth.c - the orthogonal matrices of [quantize] rotate (rotate.c) and their application
 * to row-major matrices: a randomized Walsh-Hadamard matrix S H / sqrt(n) for power-of-two n
 * (fast transform, O(n log n) per vector), else a random orthogonal matrix from the QR of a
 * Gaussian matrix (LAPACKE, applied with OpenBLAS). Work is split in fixed tiles over the host
 * pool, one single-threaded BLAS call per tile, so results are identical for any thread count. */
#include "rotate.h"
#include "hessian.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TILE         64                     /* rows/columns per tile of an application */
#define SEED_DEFAULT 0x6274726f74617465ull  /* "btrotate": rotate_seed = 0 */

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double unif(uint64_t *x) { return ((double)(splitmix(x) >> 11) + 0.5) / 9007199254740992.0; }
static int is_pow2(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

void bt_orth_free(struct bt_orth *o) { free(o->s); free(o->M); memset(o, 0, sizeof(*o)); }

/* random orthogonal: QR of a Gaussian matrix, columns signed by diag(R) (Haar distributed) */
static bt_status orth_dense(struct bt_orth *o, uint64_t *x, bt_err *err) {
    int64_t n = o->n;
    double *A = malloc((size_t)(n * n) * sizeof(double)), *tau = malloc((size_t)n * sizeof(double));
    o->M = malloc((size_t)(n * n) * sizeof(float));
    o->s = malloc((size_t)n * sizeof(float));
    bt_status st = BT_OK;
    if (!A || !tau || !o->M || !o->s) {
        st = bt_err_set(err, BT_E_NOMEM, "rotate: out of memory for a %lld x %lld rotation", (long long)n, (long long)n);
        goto out;
    }
    for (int64_t i = 0; i < n * n; i += 2) { /* Box-Muller */
        double r = sqrt(-2.0 * log(unif(x))), a = 6.283185307179586 * unif(x);
        A[i] = r * cos(a);
        if (i + 1 < n * n) A[i + 1] = r * sin(a);
    }
    bt_la_init();
    if (LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)n, A, (lapack_int)n, tau) != 0) goto fail;
    for (int64_t j = 0; j < n; j++) o->s[j] = A[j * n + j] < 0 ? -1.0f : 1.0f;
    if (LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)n, (lapack_int)n, A, (lapack_int)n, tau) != 0) goto fail;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) o->M[i * n + j] = (float)(A[i * n + j] * o->s[j]);
    goto out;
fail:
    st = bt_err_set(err, BT_E_INVAL, "rotate: QR of the %lld x %lld random matrix failed", (long long)n, (long long)n);
out:
    free(A);
    free(tau);
    return st;
}

bt_status bt_orth_init(struct bt_orth *o, int kind, uint64_t seed, int stream, int64_t n, bt_err *err) {
    memset(o, 0, sizeof(*o));
    if (n <= 0 || n > (1 << 16)) return bt_err_set(err, BT_E_INVAL, "rotate: bad rotation size %lld", (long long)n);
    o->n = n;
    o->dense = kind == BT_ROTATE_DENSE || !is_pow2(n);
    uint64_t x = (seed ? seed : SEED_DEFAULT) ^ ((uint64_t)stream * 0xD1B54A32D192ED03ull);
    bt_status st;
    if (o->dense) {
        st = orth_dense(o, &x, err);
    } else if (!(o->s = malloc((size_t)n * sizeof(float)))) {
        st = bt_err_set(err, BT_E_NOMEM, "rotate: out of memory");
    } else {
        for (int64_t i = 0; i < n; i++) o->s[i] = (splitmix(&x) >> 63) ? -1.0f : 1.0f;
        st = BT_OK;
    }
    if (st) bt_orth_free(o);
    return st;
}

static void fwht(float *x, int64_t n) {
    for (int64_t h = 1; h < n; h *= 2)
        for (int64_t i = 0; i < n; i += 2 * h)
            for (int64_t j = i; j < i + h; j++) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
}

struct apply_job {
    const struct bt_orth *o;
    float             *X;
    int64_t            count, ld; /* right: rows of X (row stride ld); left: columns of X */
    int                left;      /* 0: X <- X Q (each row); 1: X <- Q^T X (each column) */
    int                failed;
};

static void apply_tiles(void *arg, int64_t t0, int64_t t1, int tid) {
    struct apply_job *j = arg;
    const struct bt_orth *o = j->o;
    int64_t n = o->n, ld = j->ld;
    float sc = (float)(1.0 / sqrt((double)n));
    float *tmp = o->dense ? malloc((size_t)(TILE * n) * sizeof(float)) : NULL;
    (void)tid;
    if (o->dense && !tmp) { j->failed = 1; return; }
    for (int64_t t = t0; t < t1; t++) {
        int64_t i0 = t * TILE, m = j->count - i0 < TILE ? j->count - i0 : TILE;
        if (!j->left) { /* rows i0..i0+m: x <- x Q */
            float *X = j->X + i0 * ld;
            if (o->dense) {
                for (int64_t r = 0; r < m; r++) memcpy(tmp + r * n, X + r * ld, (size_t)n * sizeof(float));
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)n, 1.0f, tmp,
                            (int)n, o->M, (int)n, 0.0f, X, (int)ld);
                continue;
            }
            for (int64_t r = 0; r < m; r++) {
                float *x = X + r * ld;
                for (int64_t k = 0; k < n; k++) x[k] *= o->s[k];
                fwht(x, n);
                for (int64_t k = 0; k < n; k++) x[k] *= sc;
            }
        } else { /* columns i0..i0+m of the n rows: X <- Q^T X */
            float *X = j->X + i0;
            if (o->dense) {
                for (int64_t r = 0; r < n; r++) memcpy(tmp + r * m, X + r * ld, (size_t)m * sizeof(float));
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)m, (int)n, 1.0f, o->M,
                            (int)n, tmp, (int)m, 0.0f, X, (int)ld);
                continue;
            }
            for (int64_t r = 0; r < n; r++)
                for (int64_t c = 0; c < m; c++) X[r * ld + c] *= o->s[r];
            for (int64_t h = 1; h < n; h *= 2)
                for (int64_t i = 0; i < n; i += 2 * h)
                    for (int64_t r = i; r < i + h; r++) {
                        float *a = X + r * ld, *b = X + (r + h) * ld;
                        for (int64_t c = 0; c < m; c++) {
                            float u = a[c], v = b[c];
                            a[c] = u + v;
                            b[c] = u - v;
                        }
                    }
            for (int64_t r = 0; r < n; r++)
                for (int64_t c = 0; c < m; c++) X[r * ld + c] *= sc;
        }
    }
    free(tmp);
}

/* right (left = 0): the count rows at X (stride ld, n = o->n columns each) become x Q;
 * left (left = 1): the n rows at X (stride ld) become Q^T X over count columns */
bt_status bt_orth_apply(const struct bt_orth *o, float *X, int64_t count, int64_t ld, int left, bt_err *err) {
    struct apply_job j = {o, X, count, ld, left, 0};
    bt_parallel_for((count + TILE - 1) / TILE, 1, apply_tiles, &j);
    return j.failed ? bt_err_set(err, BT_E_NOMEM, "rotate: out of memory") : BT_OK;
}

bt_status bt_rotate_matrix(int kind, uint64_t seed, int stream, int64_t n, float *M, bt_err *err) {
    struct bt_orth o;
    bt_status st = bt_orth_init(&o, kind, seed, stream, n, err);
    if (st) return st;
    memset(M, 0, (size_t)(n * n) * sizeof(float));
    for (int64_t i = 0; i < n; i++) M[i * n + i] = 1.0f;
    st = bt_orth_apply(&o, M, n, n, 0, err); /* I Q */
    bt_orth_free(&o);
    return st;
}
