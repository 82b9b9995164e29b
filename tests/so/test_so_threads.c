/* test_so_threads.c - the second-order path gives the same bits for 1, 2 and 3 threads: Gram
 * accumulation, bt_hessian_prepare (H, U, order), hess_mul, and bt_mtq_so_quantize (codes,
 * scales, herr) with act order, refit and two passes, for 1 and 2 planes. Shapes are chosen off
 * the engine's tiles: 200 rows (chunks of 64), 576 columns (Cholesky tiles and lazy batches of
 * 128), one dead column. */
#include "bt/bt.h"
#include "bt_test.h"
#include "hessian.h"
#include "mtq_so.h"
#include "so_util.h"

#include <string.h>

#define ROWS 200
#define COLS 576
#define NT   3

struct run {
    float  *G;
    float  *H, *U, *Y;
    int64_t perm[COLS];
    int8_t *t[2];
    float  *a[2];
    double  herr[2];
};

static int one_run(int threads, const float *W, struct run *o) {
    bt_threads_set(threads);
    o->G = so_gram(COLS, 700, 17, 4242);
    if (!o->G) return 1;
    bt_err err;
    bt_err_clear(&err);
    bt_hessian *h = NULL;
    if (bt_hessian_prepare(o->G, COLS, 0.01, 1, &h, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    size_t nn = (size_t)COLS * COLS;
    o->H = malloc(nn * sizeof(float));
    o->U = malloc(nn * sizeof(float));
    o->Y = malloc(sizeof(float) * ROWS * COLS);
    if (!o->H || !o->U || !o->Y) return 1;
    memcpy(o->H, h->H, nn * sizeof(float));
    memcpy(o->U, h->U, nn * sizeof(float));
    memcpy(o->perm, h->perm, sizeof(o->perm));
    /* Y = W[:, 64:192] H[64:192, :] */
    float *X = malloc(sizeof(float) * ROWS * 128);
    if (!X) return 1;
    for (int r = 0; r < ROWS; r++) memcpy(X + r * 128, W + r * COLS + 64, 128 * sizeof(float));
    if (bt_hessian_mul(h, 64, 192, X, ROWS, o->Y, &err)) return 1;
    free(X);
    for (int N = 1; N <= 2; N++) {
        struct bt_mtq_so_opts opt = {.planes = N, .block = 64, .refit = 1, .passes = 2, .rounds = 6, .init = 0};
        o->t[N - 1] = malloc((size_t)N * ROWS * COLS);
        o->a[N - 1] = malloc(sizeof(float) * N * ROWS * (COLS / 64));
        if (!o->t[N - 1] || !o->a[N - 1]) return 1;
        if (bt_mtq_so_quantize(bt_host(), h, W, ROWS, COLS, &opt, o->t[N - 1], o->a[N - 1], &o->herr[N - 1], &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
    }
    bt_hessian_free(h);
    return 0;
}

int main(void) {
    float *W = so_weights(ROWS, COLS, 31337);
    CHECK(W != NULL);
    if (!W) TEST_DONE();
    struct run r[NT];
    memset(r, 0, sizeof(r));
    for (int k = 0; k < NT; k++) {
        int bad = one_run(k + 1, W, &r[k]);
        CHECK(!bad);
        if (bad) TEST_DONE();
    }
    size_t nn = (size_t)COLS * COLS;
    for (int k = 1; k < NT; k++) {
        fprintf(stderr, "threads %d vs 1: herr %.17g / %.17g (N=1), %.17g / %.17g (N=2)\n", k + 1, r[k].herr[0],
                r[0].herr[0], r[k].herr[1], r[0].herr[1]);
        CHECK(memcmp(r[k].G, r[0].G, nn * sizeof(float)) == 0);
        CHECK(memcmp(r[k].H, r[0].H, nn * sizeof(float)) == 0);
        CHECK(memcmp(r[k].U, r[0].U, nn * sizeof(float)) == 0);
        CHECK(memcmp(r[k].perm, r[0].perm, sizeof(r[0].perm)) == 0);
        CHECK(memcmp(r[k].Y, r[0].Y, sizeof(float) * ROWS * COLS) == 0);
        for (int N = 1; N <= 2; N++) {
            CHECK(memcmp(r[k].t[N - 1], r[0].t[N - 1], (size_t)N * ROWS * COLS) == 0);
            CHECK(memcmp(r[k].a[N - 1], r[0].a[N - 1], sizeof(float) * N * ROWS * (COLS / 64)) == 0);
            CHECK(memcmp(&r[k].herr[N - 1], &r[0].herr[N - 1], sizeof(double)) == 0);
        }
    }
    /* the run did something: act order moved columns, the dead column is all zero codes */
    int moved = 0, dead0 = 1;
    for (int a = 0; a < COLS; a++) moved += r[0].perm[a] != a;
    for (int i = 0; i < ROWS; i++) dead0 &= r[0].t[0][i * COLS + 17] == 0;
    CHECK(moved > COLS / 2);
    CHECK(dead0);
    CHECK(r[0].herr[1] < r[0].herr[0]); /* two planes beat one */
    for (int k = 0; k < NT; k++) {
        free(r[k].G); free(r[k].H); free(r[k].U); free(r[k].Y);
        for (int N = 0; N < 2; N++) { free(r[k].t[N]); free(r[k].a[N]); }
    }
    free(W);
    TEST_DONE();
}
