/* hessian.c - a tensor's input Hessian prepared for the second-order engine: dead columns,
 * damping relative to mean(diag H), act-order permutation, and U = the upper Cholesky factor of
 * H^-1 (in processing order) that the GPTQ column loop feeds its error through. Dense algebra is
 * OpenBLAS (single-threaded per call) + LAPACKE on fixed tiles spread over the host pool, so the
 * result is bit-identical for any thread count. */
#include "hessian.h"
#include "bt/bt.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TILE 128 /* rows/cols per tile of the blocked factorizations */

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

/* ---- blocked lower Cholesky, in place (row-major n x n, lower triangle) ------------------- */
struct chol_job {
    float  *A;
    int64_t n, k0, kb, t0; /* current panel [k0, k0+kb); tiles start at row t0 */
    int64_t nt;            /* tiles below the panel */
};

/* panel rows of tile it: X L_kk^T = A -> X */
static void chol_panel(void *arg, int64_t i0, int64_t i1, int tid) {
    struct chol_job *j = arg;
    (void)tid;
    for (int64_t it = i0; it < i1; it++) {
        int64_t r0 = j->t0 + it * TILE, nr = j->n - r0 < TILE ? j->n - r0 : TILE;
        cblas_strsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (int)nr,
                    (int)j->kb, 1.0f, j->A + j->k0 * j->n + j->k0, (int)j->n,
                    j->A + r0 * j->n + j->k0, (int)j->n);
    }
}

/* trailing update of tile pair (bi >= bj) numbered in row-major lower order */
static void chol_trail(void *arg, int64_t i0, int64_t i1, int tid) {
    struct chol_job *j = arg;
    (void)tid;
    for (int64_t p = i0; p < i1; p++) {
        int64_t bi = (int64_t)((sqrt(8.0 * (double)p + 1.0) - 1.0) / 2.0);
        while (bi * (bi + 1) / 2 > p) bi--;
        while ((bi + 1) * (bi + 2) / 2 <= p) bi++;
        int64_t bj = p - bi * (bi + 1) / 2;
        int64_t r0 = j->t0 + bi * TILE, c0 = j->t0 + bj * TILE;
        int64_t nr = j->n - r0 < TILE ? j->n - r0 : TILE, nc = j->n - c0 < TILE ? j->n - c0 : TILE;
        float *A = j->A;
        int64_t n = j->n;
        if (bi == bj)
            cblas_ssyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)nr, (int)j->kb, -1.0f,
                        A + r0 * n + j->k0, (int)n, 1.0f, A + r0 * n + r0, (int)n);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)nc, (int)j->kb, -1.0f,
                        A + r0 * n + j->k0, (int)n, A + c0 * n + j->k0, (int)n, 1.0f,
                        A + r0 * n + c0, (int)n);
    }
}

/* 0, or the 1-based column where A stopped being positive definite */
static int64_t chol_lower(float *A, int64_t n) {
    for (int64_t k0 = 0; k0 < n; k0 += TILE) {
        int64_t kb = n - k0 < TILE ? n - k0 : TILE;
        lapack_int info = LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)kb, A + k0 * n + k0, (lapack_int)n);
        if (info != 0) return k0 + (info > 0 ? info : 1);
        int64_t t0 = k0 + kb, nt = (n - t0 + TILE - 1) / TILE;
        if (nt == 0) break;
        struct chol_job j = {A, n, k0, kb, t0, nt};
        bt_parallel_for(nt, 1, chol_panel, &j);
        bt_parallel_for(nt * (nt + 1) / 2, 1, chol_trail, &j);
    }
    return 0;
}

/* ---- inverse of a lower-triangular L (row-major), column tiles solved independently -------- */
struct inv_job {
    const float *L;
    float       *X; /* n x n, zeroed; gets L^-1 */
    int64_t      n;
};

static void inv_tiles(void *arg, int64_t i0, int64_t i1, int tid) {
    struct inv_job *j = arg;
    (void)tid;
    int64_t n = j->n;
    for (int64_t t = i0; t < i1; t++) {
        int64_t c0 = t * TILE, nc = n - c0 < TILE ? n - c0 : TILE;
        for (int64_t k = 0; k < nc; k++) j->X[(c0 + k) * n + c0 + k] = 1.0f;
        /* rows < c0 of these columns stay 0: solve L[c0:, c0:] Y = I[c0:, c0:c0+nc] */
        cblas_strsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, (int)(n - c0),
                    (int)nc, 1.0f, j->L + c0 * n + c0, (int)n, j->X + c0 * n + c0, (int)n);
    }
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
    int64_t bad = chol_lower(A, n);
    if (bad) {
        st = bt_err_set(err, BT_E_INVAL, "hessian: not positive definite at column %lld (raise damp)", (long long)bad);
    } else {
        for (int64_t a = 0; a < n; a++) memset(A + a * n + a + 1, 0, (size_t)(n - a - 1) * sizeof(float));
        /* X = L^-1 (lower) into U's buffer, then U = J X J: element (a, b) <- (n-1-a, n-1-b) is
         * the flat index i <- n*n-1-i, i.e. the flat array reversed; upper, U^T U = (P H P^T)^-1 */
        struct inv_job j = {A, h->U, n};
        bt_parallel_for((n + TILE - 1) / TILE, 1, inv_tiles, &j);
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
