/* bench_kernels.c - CPU backend kernel micro-bench: GEMV (f32 and int8 activations) per weight
 * format for 4096x4096 and 14336x4096 at 1 and 2 threads, and gemm_f32 / gemm_q8 (4096x4096)
 * at ntok tokens; prints JSON ("gweights_s" = GMAC/s for the gemms).
 * usage: bench_kernels [plugin_dir] [min_seconds_per_point] [format filter, e.g. tq2_0 or all]
 *        [ntok, default 64] [max threads, default 2] [backend filter, e.g. cpu-avx2] */
#include "bk_host.h"
#include "bt_types.h"
#include "cpu_act.h"

#include <stddef.h>
#include <time.h>

static uint64_t rng_s = 0x2545f4914f6cdd1dull;
static uint64_t rng(void) { rng_s ^= rng_s << 13; rng_s ^= rng_s >> 7; rng_s ^= rng_s << 17; return rng_s; }
static float frand(void) { return (float)((rng() >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint8_t *make_weights(const struct bt_tfmt *f, int64_t rows, int64_t cols) {
    size_t rb = bt_fmt_row_bytes(f, cols), bb;
    uint8_t *w = bk_alloc(rb * (size_t)rows);
    int8_t t[8 * 256];
    float a[8], buf[4096];
    int64_t n = rows * cols;
    if (!w) return NULL;
    switch (f->type) {
    case BT_TYPE_TQ1_0: case BT_TYPE_TQ2_0:
        for (int64_t b = 0; b < n / 256; b++) {
            for (int i = 0; i < 256; i++) t[i] = (int8_t)(rng() % 3) - 1;
            if (f->type == BT_TYPE_TQ2_0) bt_tq2_0_pack(t, 0.01f, w + 66 * b);
            else bt_tq1_0_pack(t, 0.01f, w + 54 * b);
        }
        break;
    case BT_TYPE_MTQ:
        bb = bt_mtq_block_bytes(f->planes, f->block, f->layout);
        for (int64_t b = 0; b < n / f->block; b++) {
            for (uint32_t i = 0; i < f->planes * f->block; i++) t[i] = (int8_t)(rng() % 3) - 1;
            for (uint32_t p = 0; p < f->planes; p++) a[p] = 0.01f / (float)(1 << p);
            bt_mtq_pack_block(f, t, a, w + bb * b);
        }
        break;
    default:
        for (int64_t r = 0; r < rows; r++) { /* cols <= 4096 */
            for (int64_t i = 0; i < cols; i++) buf[i] = frand();
            bt_from_f32(f, buf, w + (size_t)r * rb, cols);
        }
    }
    return w;
}

enum { FN_GEMV_F32, FN_GEMV_Q8, FN_GEMM, FN_GEMM_Q8, FN_N };
static const char *fn_name[] = {"gemv_f32", "gemv_q8", "gemm_f32", "gemm_q8"};

struct point {
    struct bk_backend *b;              /* backend */
    const struct bt_tfmt *f;           /* format */
    const uint8_t *w;                  /* weights */
    int64_t rows, cols, ntok;          /* shape */
    const float *x;                    /* (ntok x cols) activations */
    const int8_t *xq;                  /* int8 activations */
    const float *xs;                   /* their scales (ablock 256), ntok x cols/256 */
    float *y;                          /* output */
};

static int call(const struct point *p, int fn) {
    bt_err err = {0, ""};
    bt_status st;
    if (fn == FN_GEMV_F32) st = p->b->be->gemv_f32(p->b->ctx, p->f, p->w, p->rows, p->cols, p->x, p->y, &err);
    else if (fn == FN_GEMV_Q8) st = p->b->be->gemv_q8(p->b->ctx, p->f, p->w, p->rows, p->cols, p->xq, p->xs, 256, p->y, &err);
    else if (fn == FN_GEMM) st = p->b->be->gemm_f32(p->b->ctx, p->f, p->w, p->rows, p->cols, p->x, p->ntok, p->y, &err);
    else if (p->b->be->struct_size <= offsetof(struct bt_backend_i, gemm_q8) || !p->b->be->gemm_q8) return -1;
    else st = p->b->be->gemm_q8(p->b->ctx, p->f, p->w, p->rows, p->cols, p->xq, p->xs, 256, p->ntok, p->y, &err);
    if (st) fprintf(stderr, "%s: %s\n", fn_name[fn], err.msg);
    return st;
}

/* seconds per call: one warm-up, then repeat for at least tmin seconds (min 3 calls) */
static double measure(const struct point *p, int fn, double tmin) {
    if (call(p, fn)) return -1;
    int n = 0;
    double t0 = now(), t;
    do { call(p, fn); n++; t = now() - t0; } while (t < tmin || n < 3);
    return t / n;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : BT_BENCH_PLUGIN_DIR;
    double tmin = argc > 2 ? atof(argv[2]) : 0.3;
    const char *only = argc > 3 && strcmp(argv[3], "all") ? argv[3] : NULL;
    const int64_t ntok = argc > 4 ? atoll(argv[4]) : 64;
    const int maxthr = argc > 5 ? atoi(argv[5]) : 2;
    const char *bonly = argc > 6 ? argv[6] : NULL;
    if (ntok < 1 || ntok > 4096 || maxthr < 1) { fprintf(stderr, "bad ntok or threads\n"); return 2; }
    const char *names[2] = {"cpu", "cpu-avx2"};
    struct bk_backend be[2];
    int have[2];
    bk_log_quiet = 1;
    for (int i = 0; i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/libbt-backend-%s.so", dir, names[i]);
        have[i] = bk_load(path, &be[i]) == 0 && (!be[i].be->score || be[i].be->score() > 0);
    }
    const struct bt_tfmt fmts[] = {
        {BT_TYPE_F32, 0, 0, 0}, {BT_TYPE_F16, 0, 0, 0}, {BT_TYPE_BF16, 0, 0, 0},
        {BT_TYPE_Q8_0, 0, 0, 0}, {BT_TYPE_Q4_0, 0, 0, 0}, {BT_TYPE_TQ1_0, 0, 0, 0},
        {BT_TYPE_TQ2_0, 0, 0, 0}, {BT_TYPE_MTQ, 1, 256, 0}, {BT_TYPE_MTQ, 2, 256, 0},
        {BT_TYPE_MTQ, 3, 256, 0}, {BT_TYPE_MTQ, 2, 64, 0}, {BT_TYPE_MTQ, 3, 256, 1},
    };
    const int64_t shapes[2][2] = {{4096, 4096}, {14336, 4096}};
    const int64_t cols_max = 4096;
    float *x = bk_alloc(sizeof(float) * (size_t)(ntok * cols_max));
    float *y = bk_alloc(sizeof(float) * (size_t)(ntok * 14336));
    int8_t *xq = bk_alloc((size_t)(ntok * cols_max));
    float *xs = bk_alloc(sizeof(float) * (size_t)(ntok * cols_max / 256));
    for (int64_t i = 0; i < ntok * cols_max; i++) x[i] = frand();
    bt_cpu_act_quantize(x, ntok * cols_max, 256, xq, xs);

    printf("{\n  \"bench\": \"bt kernels\",\n  \"results\": [\n");
    int first = 1;
    for (size_t fi = 0; fi < sizeof(fmts) / sizeof(fmts[0]); fi++)
        for (int s = 0; s < 2; s++) {
            const struct bt_tfmt *f = &fmts[fi];
            int64_t rows = shapes[s][0], cols = shapes[s][1];
            char fs[32];
            bt_fmt_str(f, fs, sizeof(fs));
            if (only && strcmp(only, fs) != 0) continue;
            uint8_t *w = make_weights(f, rows, cols);
            double wbytes = (double)bt_fmt_row_bytes(f, cols) * (double)rows;
            for (int bi = 0; bi < 2; bi++) {
                if (!have[bi] || !w || (bonly && strcmp(bonly, names[bi]))) continue;
                for (int nt = 1; nt <= maxthr; nt++) {
                    bk_set_threads(nt);
                    for (int fn = 0; fn < FN_N; fn++) {
                        int gemm = fn == FN_GEMM || fn == FN_GEMM_Q8;
                        if (gemm && s == 1) continue; /* gemm: 4096x4096 only */
                        struct point p = {&be[bi], f, w, rows, cols, gemm ? ntok : 1, x, xq, xs, y};
                        double sec = measure(&p, fn, tmin);
                        if (sec < 0) continue;
                        double gw = (double)rows * (double)cols * (double)p.ntok / sec * 1e-9;
                        printf("%s    {\"backend\": \"%s\", \"fn\": \"%s\", \"fmt\": \"%s\", \"bpw\": %.4f, "
                               "\"rows\": %lld, \"cols\": %lld, \"ntok\": %lld, \"threads\": %d, "
                               "\"ms\": %.4f, \"gweights_s\": %.3f, \"gb_s\": %.3f}",
                               first ? "" : ",\n", names[bi], fn_name[fn], fs, wbytes * 8.0 / (double)(rows * cols),
                               (long long)rows, (long long)cols, (long long)p.ntok, nt, sec * 1e3,
                               gw, wbytes / sec * 1e-9);
                        first = 0;
                        fflush(stdout);
                    }
                }
            }
            bk_free(w);
        }
    printf("\n  ]\n}\n");
    for (int i = 0; i < 2; i++) if (have[i]) bk_unload(&be[i]);
    bk_shutdown();
    free(x); free(y); free(xq); free(xs);
    return 0;
}
