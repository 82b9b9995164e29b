/* bench_residual.c - quality (rel RMSE, exact bits/weight, both MTQ layouts, decoded through
 * bt_to_f32) and single-thread speed (M weights/s) of the residual ternary quantizer on
 * i.i.d. Gaussian matrices, for each init (the plugin default is balanced). Prints one JSON
 * object. Usage: bt-bench-residual [--quick] [--rounds R] [--speed N [--init I]] */
#include "bt_types.h"
#include "mtq_algo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double rng_u(void) { /* xorshift64*, (0,1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return ((double)((rng_state * 0x2545f4914f6cdd1dull) >> 11) + 0.5) / 9007199254740992.0;
}
static void gauss_fill(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 2) {
        double u = rng_u(), v = rng_u(), r = sqrt(-2.0 * log(u));
        x[i] = (float)(r * cos(6.283185307179586 * v));
        if (i + 1 < n) x[i + 1] = (float)(r * sin(6.283185307179586 * v));
    }
}
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: single-thread speed */
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* quantize + pack W for fmt, decode with bt_to_f32, return rel RMSE of the decoded matrix */
static double quality(const float *W, int64_t rows, int64_t cols, const struct bt_tfmt *fmt,
                      int rounds, int init, double *algo_rel) {
    int B = (int)fmt->block, N = (int)fmt->planes;
    size_t rb = bt_fmt_row_bytes(fmt, cols), bb = bt_mtq_block_bytes(N, B, fmt->layout);
    uint8_t *row = malloc(rb);
    float *dec = malloc(sizeof(float) * (size_t)cols);
    int8_t *t = malloc((size_t)N * (size_t)cols);
    float *a = malloc(sizeof(float) * (size_t)N * (size_t)(cols / B));
    struct bt_mtq_work *ws = bt_mtq_work_new();
    double e2 = 0, r2 = 0, ea = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *w = W + r * cols;
        double ref;
        ea += bt_mtq_quantize_row(w, NULL, cols, B, N, rounds, init, t, a, &ref, ws);
        for (int64_t b = 0; b < cols / B; b++)
            bt_mtq_pack_block(fmt, t + b * N * B, a + b * N, row + b * bb);
        bt_to_f32(fmt, row, dec, cols);
        for (int64_t c = 0; c < cols; c++) {
            double d = (double)w[c] - dec[c];
            e2 += d * d;
            r2 += (double)w[c] * w[c];
        }
    }
    *algo_rel = sqrt(ea / r2);
    free(row); free(dec); free(t); free(a); bt_mtq_work_free(ws);
    return sqrt(e2 / r2);
}

static double speed(const float *W, int64_t rows, int64_t cols, int N, int rounds, int init) {
    int8_t *t = malloc((size_t)N * (size_t)cols);
    float *a = malloc(sizeof(float) * (size_t)N * (size_t)(cols / 256));
    struct bt_mtq_work *ws = bt_mtq_work_new();
    double t0 = now_s(), sink = 0;
    for (int64_t r = 0; r < rows; r++)
        sink += bt_mtq_quantize_row(W + r * cols, NULL, cols, 256, N, rounds, init, t, a, NULL, ws);
    double dt = now_s() - t0;
    free(t); free(a); bt_mtq_work_free(ws);
    return sink >= 0 ? (double)rows * (double)cols / dt / 1e6 : 0;
}

int main(int argc, char **argv) {
    int quick = 0, rounds = 6, only = 0, sinit = BT_MTQ_INIT_BALANCED; /* plugin default */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--speed") && i + 1 < argc) only = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--init") && i + 1 < argc) sinit = atoi(argv[++i]);
        else { fprintf(stderr, "usage: %s [--quick] [--rounds R] [--speed N] [--init 0|1|2]\n", argv[0]); return 2; }
    }
    int64_t qr = quick ? 256 : 4096, qc = 4096, sr = quick ? 128 : 4096, sc = 14336;
    float *Q = malloc(sizeof(float) * (size_t)(qr * qc));
    float *S = malloc(sizeof(float) * (size_t)(sr * sc));
    if (!Q || !S) { fprintf(stderr, "out of memory\n"); return 1; }
    gauss_fill(Q, qr * qc);
    gauss_fill(S, sr * sc);
    if (only >= 1 && only <= BT_MTQ_MAX_PLANES) { /* speed of one N only (profiling) */
        printf("{\"N%d\": %.2f}\n", only, speed(S, sr, sc, only, rounds, sinit));
        free(Q); free(S);
        return 0;
    }
    static const char *inits[3] = {"greedy", "balanced", "best"};
    printf("{\n  \"rounds\": %d,\n  \"quality\": {\"rows\": %lld, \"cols\": %lld, \"block\": 256, "
           "\"results\": [\n", rounds, (long long)qr, (long long)qc);
    int first = 1;
    for (int N = 1; N <= 3; N++)
        for (int init = 0; init < 3; init++)
            for (uint32_t layout = 0; layout < 2; layout++) {
                if (init != 2 && layout == 1) continue;
                struct bt_tfmt f = {BT_TYPE_MTQ, (uint32_t)N, 256, layout};
                double arel, rel = quality(Q, qr, qc, &f, rounds, init, &arel);
                printf("%s    {\"N\": %d, \"init\": \"%s\", \"layout\": \"%s\", \"rel_rmse\": %.5f,"
                       " \"rel_rmse_algo\": %.5f, \"bpw\": %.4f}", first ? "" : ",\n", N,
                       inits[init], layout ? "compact" : "interleaved", rel, arel,
                       bt_fmt_bpw(&f, qc));
                first = 0;
            }
    printf("\n  ]},\n  \"speed\": {\"rows\": %lld, \"cols\": %lld, \"block\": 256, "
           "\"threads\": 1, \"clock\": \"process cpu time\",\n    \"mweights_per_s\": {",
           (long long)sr, (long long)sc);
    for (int init = 0; init < 3; init++) {
        printf("%s\"%s\": {", init ? ", " : "", inits[init]);
        for (int N = 1; N <= 3; N++)
            printf("%s\"N%d\": %.2f", N > 1 ? ", " : "", N, speed(S, sr, sc, N, rounds, init));
        printf("}");
    }
    printf("},\n    \"default_init\": \"%s\"}\n}\n", inits[sinit]);
    free(Q);
    free(S);
    return 0;
}
