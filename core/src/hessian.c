/* hessian.c - a tensor's input Hessian prepared for the second-order engine: dead columns,
 * damping relative to mean(diag H), act-order permutation, and U = the upper Cholesky factor of
 * H^-1 (in processing order) that the GPTQ column loop feeds its error through. The factorization
 * is op CHOL_INV on the quantizer's compute backend when [quantize] so_backend routes there
 * (compute.c), else bt_la.c's tiles (OpenBLAS single-threaded per call + LAPACKE) on the host
 * pool - the cpu backends run the same code, so the bits do not depend on the route or the
 * thread count. */
#include "hessian.h"
#include "bt/bt.h"
#include "bt_la.h"
#include "compute.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TILE 128 /* rows per tile of the Gram accumulation */

void bt_la_init(void) {
    static int done;
    if (!done) { openblas_set_num_threads(1); done = 1; }
}

void bt_hessian_free(bt_hessian *h) {
    if (!h) return;
    free(h->H);
    free(h->U);
    free(h->perm);
    free(h->iperm);
    free(h->dead);
    free(h);
}

/* act order: decreasing diag, ties by index (a stable merge sort; reentrant) */
static void sort_by_diag(int64_t *idx, int64_t *tmp, int64_t n, const float *diag) {
    if (n < 2) return;
    int64_t h = n / 2;
    sort_by_diag(idx, tmp, h, diag);
    sort_by_diag(idx + h, tmp, n - h, diag);
    int64_t a = 0, b = h, k = 0;
    while (a < h && b < n) tmp[k++] = diag[idx[b]] > diag[idx[a]] ? idx[b++] : idx[a++];
    while (a < h) tmp[k++] = idx[a++];
    while (b < n) tmp[k++] = idx[b++];
    memcpy(idx, tmp, (size_t)n * sizeof(int64_t));
}

bt_status bt_hessian_prepare(const float *G, int64_t n, double damp, int act_order, bt_hessian **out,
                             bt_err *err) {
    *out = NULL;
    bt_la_init();
    if (n <= 0 || n > (1 << 20)) return bt_err_set(err, BT_E_INVAL, "hessian: bad size %lld", (long long)n);
    bt_hessian *h = calloc(1, sizeof(*h));
    float *A = NULL;
    if (!h) return bt_err_set(err, BT_E_NOMEM, "hessian: out of memory");
    h->n = n;
    size_t nn = (size_t)n * (size_t)n;
    h->H = malloc(nn * sizeof(float));
    h->U = calloc(nn, sizeof(float));
    A = malloc(nn * sizeof(float));
    h->perm = malloc((size_t)n * sizeof(int64_t));
    h->iperm = malloc((size_t)n * sizeof(int64_t));
    h->dead = calloc((size_t)n, 1);
    float *diag = malloc((size_t)n * sizeof(float));
    if (!h->H || !h->U || !A || !h->perm || !h->iperm || !h->dead || !diag) {
        free(A); free(diag); bt_hessian_free(h);
        return bt_err_set(err, BT_E_NOMEM, "hessian: out of memory for %lld x %lld", (long long)n, (long long)n);
    }
    /* symmetric from the upper triangle (callers may pass an accumulator that only fills it) */
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = i; k < n; k++) h->H[i * n + k] = h->H[k * n + i] = G[i * n + k];
    double mean = 0;
    for (int64_t i = 0; i < n; i++) {
        float d = h->H[i * n + i];
        if (!(d > 0) || !isfinite(d)) { /* a column that never saw input: its weight cannot matter */
            h->dead[i] = 1;
            for (int64_t k = 0; k < n; k++) h->H[i * n + k] = h->H[k * n + i] = 0.0f;
            h->H[i * n + i] = 1.0f;
        }
        mean += h->H[i * n + i];
    }
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) h->H[i * n + i] += (float)(damp * mean);
    for (int64_t i = 0; i < n; i++) { h->perm[i] = i; diag[i] = h->H[i * n + i]; }
    if (act_order) sort_by_diag(h->perm, h->iperm, n, diag); /* iperm as scratch, filled below */
    for (int64_t a = 0; a < n; a++) h->iperm[h->perm[a]] = a;
    /* A = reversed processing-order H: A[a][b] = H[perm[n-1-a]][perm[n-1-b]] */
    for (int64_t a = 0; a < n; a++) {
        const float *src = h->H + h->perm[n - 1 - a] * n;
        for (int64_t b = 0; b < n; b++) A[a * n + b] = src[h->perm[n - 1 - b]];
    }
    bt_status st = BT_OK;
    int64_t bad = 0;
    int routed = 0;
    /* X = L^-1 (lower, L L^T = A) into U's buffer */
    if ((st = bt_compute_so_route(&routed, err))) {
        /* so_backend = backend and it cannot: the message is set */
    } else if (routed) {
        st = bt_compute_chol_inv(A, h->U, n, &bad, err);
    } else {
        bad = bt_la_chol_lower(A, n, bt_parallel_for);
        if (!bad) bt_la_tri_inv(A, h->U, n, bt_parallel_for);
    }
    if (!st && bad) {
        st = bt_err_set(err, BT_E_INVAL, "hessian: not positive definite at column %lld (raise damp)", (long long)bad);
    } else if (!st) {
        /* U = J X J: element (a, b) <- (n-1-a, n-1-b) is the flat index i <- n*n-1-i, i.e. the
         * flat array reversed; upper, U^T U = (P H P^T)^-1 */
        for (size_t i = 0, k = nn - 1; i < k; i++, k--) {
            float t = h->U[i];
            h->U[i] = h->U[k];
            h->U[k] = t;
        }
    }
    free(A);
    free(diag);
    if (st) { bt_hessian_free(h); return st; }
    *out = h;
    return BT_OK;
}

/* ---- Y = X H[c0:c1, :] on fixed row tiles ------------------------------------------------- */
struct mul_job {
    const bt_hessian *h;
    int64_t           c0, c1, nrows;
    const float      *X;
    float            *Y;
};

static void mul_tiles(void *arg, int64_t i0, int64_t i1, int tid) {
    struct mul_job *j = arg;
    (void)tid;
    int64_t n = j->h->n, k = j->c1 - j->c0;
    for (int64_t t = i0; t < i1; t++) {
        int64_t r0 = t * 64, nr = j->nrows - r0 < 64 ? j->nrows - r0 : 64;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)n, (int)k, 1.0f,
                    j->X + r0 * k, (int)k, j->h->H + j->c0 * n, (int)n, 0.0f, j->Y + r0 * n, (int)n);
    }
}

bt_status bt_hessian_mul(const bt_hessian *h, int64_t c0, int64_t c1, const float *X, int64_t nrows,
                         float *Y, bt_err *err) {
    if (!h || c0 < 0 || c1 > h->n || c0 >= c1 || nrows < 0)
        return bt_err_set(err, BT_E_INVAL, "hess_mul: bad column range [%lld, %lld)", (long long)c0, (long long)c1);
    bt_la_init();
    struct mul_job j = {h, c0, c1, nrows, X, Y};
    bt_parallel_for((nrows + 63) / 64, 1, mul_tiles, &j);
    return BT_OK;
}

bt_status bt_spd_solve(int64_t n, double *A, double *b) {
    if (n <= 0) return BT_E_INVAL;
    bt_la_init();
    lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', (lapack_int)n, 1, A, (lapack_int)n, b, 1);
    return info == 0 ? BT_OK : BT_E_INVAL;
}

/* ---- Gram accumulation for calibration ----------------------------------------------------- */
struct gram_job {
    double       *G;
    const double *X;
    int64_t       n, ntok;
};

static void gram_tiles(void *arg, int64_t i0, int64_t i1, int tid) {
    struct gram_job *j = arg;
    (void)tid;
    int64_t n = j->n;
    for (int64_t t = i0; t < i1; t++) {
        int64_t r0 = t * TILE, nr = n - r0 < TILE ? n - r0 : TILE;
        /* G[r0:r0+nr, r0:] += X[:, r0:r0+nr]^T X[:, r0:] (the diagonal tile's lower part too; unused) */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nr, (int)(n - r0), (int)j->ntok, 1.0,
                    j->X + r0, (int)n, j->X + r0, (int)n, 1.0, j->G + r0 * n + r0, (int)n);
    }
}

bt_status bt_gram_accumulate(double *G, int64_t n, const float *X, int64_t ntok) {
    if (n <= 0 || ntok <= 0) return BT_OK;
    bt_la_init();
    double *Xd = malloc((size_t)n * (size_t)ntok * sizeof(double));
    if (!Xd) return BT_E_NOMEM;
    for (int64_t i = 0; i < n * ntok; i++) Xd[i] = X[i];
    struct gram_job j = {G, Xd, n, ntok};
    bt_parallel_for((n + TILE - 1) / TILE, 1, gram_tiles, &j);
    free(Xd);
    return BT_OK;
}
