/* bench_so.c - the second-order (GPTQ-style) engine on one layer, on the host and routed through
 * a compute backend ([quantize] so_backend = host / backend): a random Hessian X^T X (ntok x
 * cols activations, damp 0.01, act order), random weights (rows x cols), ternary absmean rounding
 * per 128-column group. Times bt_hessian_prepare (Cholesky + inverse: op CHOL_INV when routed) and
 * bt_so_quantize (the column loop; lazy-batch products: op GEMM when routed), and compares the two
 * routes: the fraction of equal rounded weights and the relative difference of the Hessian-
 * weighted error (on a cpu backend both must be exact: equal 1, difference 0).
 * Default shape: Llama-3-8B's down_proj (4096 x 14336). Prints one JSON object per line.
 * usage: bench_so PLUGIN_DIR BACKEND [--rows N] [--cols N] [--ntok N] [--threads N] [--host-only]
 *        [--backend-only] */
#include "bt/bt.h"
#include "compute.h"
#include "hessian.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static float nrand(void) {
    double s = 0;
    for (int k = 0; k < 3; k++) {
        rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
        s += (double)(rs >> 11) * (1.0 / 9007199254740992.0);
    }
    return (float)((s - 1.5) * 2.0);
}

#define GROUP 128

/* ternary absmean rounding per group: the scale of row r's current group in scale[r] */
struct tern {
    float  *scale; /* rows */
    float  *Q;     /* rows x cols: what each column was rounded to */
    int64_t cols;
};

static void t_group(void *user, int64_t row0, int64_t nrows, int64_t g, const float *W) {
    struct tern *t = user;
    (void)g;
    for (int64_t i = 0; i < nrows; i++) {
        double s = 0;
        for (int64_t k = 0; k < GROUP; k++) s += fabs(W[i * GROUP + k]);
        t->scale[row0 + i] = (float)(s / GROUP) + 1e-12f;
    }
}

static void t_column(void *user, int64_t row0, int64_t nrows, int64_t c, const float *w, float *q) {
    struct tern *t = user;
    for (int64_t i = 0; i < nrows; i++) {
        float s = t->scale[row0 + i], v = rintf(w[i] / s);
        q[i] = (v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v) * s;
        t->Q[(row0 + i) * t->cols + c] = q[i];
    }
}

/* one route: prints its JSON line; Q gets the rounded weights */
static int run(bt_registry *reg, const char *backend, int mode, const float *G, const float *W,
               int64_t rows, int64_t cols, float *Q, double *herr) {
    struct tern t = {malloc((size_t)rows * sizeof(float)), Q, cols};
    struct bt_so_cb cb = {&t, GROUP, t_group, t_column};
    bt_err err = {0, ""};
    bt_compute_begin(reg, backend, NULL);
    bt_compute_so_mode(mode);
    bt_hessian *h = NULL;
    double t0 = now();
    bt_status st = bt_hessian_prepare(G, cols, 0.01, 1, &h, &err);
    double t1 = now();
    if (!st) st = bt_so_quantize(h, W, rows, cols, &cb, herr, &err);
    double t2 = now();
    bt_compute_end();
    bt_hessian_free(h);
    free(t.scale);
    printf("{\"route\":\"%s\",\"backend\":\"%s\",\"rows\":%lld,\"cols\":%lld,\"threads\":%d,"
           "\"ok\":%s,\"prepare_s\":%.3f,\"so_quantize_s\":%.3f,\"total_s\":%.3f,\"herr\":%.9g,"
           "\"error\":\"%s\"}\n", mode == BT_SO_HOST ? "host" : "backend", backend, (long long)rows,
           (long long)cols, bt_threads_get(), st ? "false" : "true", t1 - t0, t2 - t1, t2 - t0,
           *herr, st ? err.msg : "");
    fflush(stdout);
    return st ? 1 : 0;
}

int main(int argc, char **argv) {
    int64_t rows = 4096, cols = 14336, ntok = 512;
    int threads = 0, host = 1, dev = 1;
    if (argc < 3) {
        fprintf(stderr, "usage: %s PLUGIN_DIR BACKEND [--rows N] [--cols N] [--ntok N] [--threads N] "
                "[--host-only] [--backend-only]\n", argv[0]);
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc) rows = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--cols") && i + 1 < argc) cols = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--ntok") && i + 1 < argc) ntok = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--host-only")) dev = 0;
        else if (!strcmp(argv[i], "--backend-only")) host = 0;
        else { fprintf(stderr, "bench_so: unknown argument %s\n", argv[i]); return 2; }
    }
    if (rows < 1 || cols < GROUP || cols % GROUP || ntok < 1) {
        fprintf(stderr, "bench_so: rows >= 1, cols a multiple of %d, ntok >= 1\n", GROUP);
        return 2;
    }
    bt_threads_set(threads);
    bt_registry *reg = NULL;
    if (bt_registry_new(&reg) || bt_registry_scan_dir(reg, argv[1]) <= 0) {
        fprintf(stderr, "bench_so: no plugins in %s\n", argv[1]);
        return 1;
    }
    size_t nn = (size_t)cols * (size_t)cols;
    double *Gd = calloc(nn, sizeof(double));
    float *G = malloc(nn * sizeof(float)), *X = malloc((size_t)(ntok * cols) * sizeof(float));
    float *W = malloc((size_t)(rows * cols) * sizeof(float));
    float *Q0 = calloc((size_t)(rows * cols), sizeof(float)), *Q1 = calloc((size_t)(rows * cols), sizeof(float));
    if (!Gd || !G || !X || !W || !Q0 || !Q1) { fprintf(stderr, "bench_so: out of memory\n"); return 1; }
    for (int64_t i = 0; i < ntok * cols; i++) X[i] = nrand() * (1.0f + (float)(i % cols % 7));
    for (int64_t i = 0; i < rows * cols; i++) W[i] = nrand() * 0.02f;
    double tg = now();
    bt_gram_accumulate(Gd, cols, X, ntok);
    for (size_t i = 0; i < nn; i++) G[i] = (float)(Gd[i] / (double)ntok);
    free(Gd);
    free(X);
    fprintf(stderr, "bench_so: Hessian of %lld x %lld from %lld tokens in %.1f s\n", (long long)cols,
            (long long)cols, (long long)ntok, now() - tg);
    double e0 = 0, e1 = 0;
    int rc = 0;
    if (host) rc |= run(reg, argv[2], BT_SO_HOST, G, W, rows, cols, Q0, &e0);
    if (dev) rc |= run(reg, argv[2], BT_SO_BACKEND, G, W, rows, cols, Q1, &e1);
    if (host && dev && !rc) {
        int64_t same = 0;
        for (int64_t i = 0; i < rows * cols; i++) same += Q0[i] == Q1[i];
        printf("{\"compare\":\"host vs %s\",\"same_fraction\":%.6f,\"herr_rel_diff\":%.3g}\n", argv[2],
               (double)same / (double)(rows * cols), fabs(e1 - e0) / (e0 > 0 ? e0 : 1));
    }
    free(G); free(W); free(Q0); free(Q1);
    bt_registry_free(reg);
    return rc;
}
