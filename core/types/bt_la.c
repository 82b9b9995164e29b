/* bt_la.c - tiled lower Cholesky and triangular inverse (bt_la.h): LAPACKE spotrf on each
 * 128-column panel, then the rows below it (strsm) and the trailing tiles (ssyrk / sgemm) as
 * independent work items; the inverse solves its 128-column tiles independently. The work items
 * are fixed by n alone, so results do not depend on the number of threads. */
#include "bt_la.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#define TILE 128 /* rows/cols per tile */

struct chol_job {
    float  *A;
    int64_t n, k0, kb, t0; /* current panel [k0, k0+kb); tiles start at row t0 */
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

int64_t bt_la_chol_lower(float *A, int64_t n, bt_la_pfor pfor) {
    for (int64_t k0 = 0; k0 < n; k0 += TILE) {
        int64_t kb = n - k0 < TILE ? n - k0 : TILE;
        lapack_int info = LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)kb, A + k0 * n + k0, (lapack_int)n);
        if (info != 0) return k0 + (info > 0 ? info : 1);
        int64_t t0 = k0 + kb, nt = (n - t0 + TILE - 1) / TILE;
        if (nt == 0) break;
        struct chol_job j = {A, n, k0, kb, t0};
        pfor(nt, 1, chol_panel, &j);
        pfor(nt * (nt + 1) / 2, 1, chol_trail, &j);
    }
    return 0;
}

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

void bt_la_tri_inv(const float *L, float *X, int64_t n, bt_la_pfor pfor) {
    memset(X, 0, (size_t)n * (size_t)n * sizeof(float));
    struct inv_job j = {L, X, n};
    pfor((n + TILE - 1) / TILE, 1, inv_tiles, &j);
}
