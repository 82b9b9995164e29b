/* bench_kernels.c - backend MATMUL micro-bench through the op interface: batch-1 products (f32
 * and int8 activations) per weight format for 4096x4096 and 14336x4096 at 1..N threads, batched
 * products (4096x4096) at ntok tokens, and a decode step over a weight set larger than the
 * last-level cache (whole Llama-3-8B-shaped layers, >= 128 MB) reported as a fraction of the
 * machine's measured read bandwidth. Prints JSON ("gweights_s" = GMAC/s).
 * usage: bench_kernels [plugin_dir] [min_seconds_per_point] [format filter, e.g. tq2_0 or all]
 *        [ntok, default 64] [max threads, default 2] [backend filter, e.g. cpu-avx2] */
#include "bk_host.h"
#include "bt_types.h"
#include "bench_bw.h"

#include <math.h>
#include <stddef.h>
#include <time.h>

static uint64_t rng_s = 0x2545f4914f6cdd1dull;
static uint64_t rng(void) { rng_s ^= rng_s << 13; rng_s ^= rng_s >> 7; rng_s ^= rng_s << 17; return rng_s; }
static float frand(void) { return (float)((rng() >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; }


static uint8_t *make_weights(const struct bt_tfmt *f, int64_t rows, int64_t cols) {
    size_t rb = bt_fmt_row_bytes(f, cols), bb;
    uint8_t *w = bk_alloc(rb * (size_t)rows);
    int8_t t[8 * 256];
    static float buf[14336];
    float a[8];
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
        for (int64_t r = 0; r < rows; r++) { /* cols <= 14336 */
            for (int64_t i = 0; i < cols; i++) buf[i] = frand();
            bt_from_f32(f, buf, w + (size_t)r * rb, cols);
        }
    }
    return w;
}

enum { FN_GEMV_F32, FN_GEMV_Q8, FN_GEMM, FN_GEMM_Q8, FN_N };
static const char *fn_name[] = {"gemv_f32", "gemv_q8", "gemm_f32", "gemm_q8"};

/* buffers on one backend */
static bt_buf *be_buf(struct bk_backend *b, const void *src, size_t n) {
    bt_buf *buf = NULL;
    bt_err err = {0, ""};
    if (b->be->buf_alloc(b->ctx, n, BT_BUF_WEIGHTS, &buf, &err) ||
        (src && b->be->buf_write(b->ctx, buf, 0, src, n, &err))) {
        fprintf(stderr, "%s: %s\n", b->desc->name, err.msg);
        if (buf) b->be->buf_free(b->ctx, buf);
        return NULL;
    }
    return buf;
}

struct point {
    struct bk_backend *b;     /* backend */
    struct bt_op       op[8]; /* the products of one call */
    int                nop;   /* how many */
    bt_buf            *y;     /* an output, read back to wait for the device */
};

static int call(struct point *p) {
    bt_err err = {0, ""};
    float probe;
    bt_status st = p->b->be->run(p->b->ctx, p->op, (uint32_t)p->nop, &err);
    if (!st) st = p->b->be->buf_read(p->b->ctx, p->y, 0, &probe, sizeof probe, &err);
    if (st) fprintf(stderr, "%s: %s\n", p->b->desc->name, err.msg);
    return st; /* int8 products include quantizing their activations, as in the runtime */
}

/* seconds per call: one warm-up, then repeat for at least tmin seconds (min 3 calls) */
static double measure(struct point *p, double tmin) {
    if (call(p)) return -1;
    int n = 0;
    double t0 = now(), t;
    do { call(p); n++; t = now() - t0; } while (t < tmin || n < 3);
    return t / n;
}

static struct bt_op mm_op(bt_buf *w, const struct bt_tfmt *f, int64_t rows, int64_t cols,
                          bt_buf *x, bt_buf *y, int64_t ntok, int q8) {
    struct bt_op op;
    struct bt_tfmt f32 = {BT_TYPE_F32, 0, 0, 0};
    memset(&op, 0, sizeof op);
    op.code = BT_OP_MATMUL;
    op.src[0] = bt_view_of(w, 0, *f, rows, cols);
    op.src[1] = bt_view_of(x, 0, f32, ntok, cols);
    op.dst = bt_view_of(y, 0, f32, ntok, rows);
    op.act = q8 ? BT_ACT_Q8 : BT_ACT_F32;
    return op;
}


/* ---- decode over whole 8B-shaped layers (q k v o gate up down), >= 128 MB of weights --------- */
static const int64_t layer8b[7][2] = {{4096, 4096}, {1024, 4096}, {1024, 4096}, {4096, 4096},
                                      {14336, 4096}, {14336, 4096}, {4096, 14336}};

static int big_set(struct bk_backend *b, const struct bt_tfmt *f, int maxthr, double tmin,
                   const double *bw, int first) {
    double lb = 0;
    for (int i = 0; i < 7; i++) lb += (double)bt_fmt_row_bytes(f, layer8b[i][1]) * (double)layer8b[i][0];
    int nl = (int)ceil(128e6 / lb);
    bt_buf *w[7 * 8] = {0};
    uint8_t *host[7] = {0};
    float *x = bk_alloc(14336 * sizeof(float));
    for (int i = 0; i < 14336; i++) x[i] = frand();
    bt_buf *bx = be_buf(b, x, 14336 * 4), *by = be_buf(b, NULL, 14336 * 4);
    int ok = bx && by && nl <= 8;
    for (int i = 0; i < 7 && ok; i++) ok = (host[i] = make_weights(f, layer8b[i][0], layer8b[i][1])) != NULL;
    for (int l = 0; l < nl && ok; l++)
        for (int i = 0; i < 7 && ok; i++)
            ok = (w[l * 7 + i] = be_buf(b, host[i], bt_fmt_row_bytes(f, layer8b[i][1]) * (size_t)layer8b[i][0])) != NULL;
    char fs[32];
    bt_fmt_str(f, fs, sizeof fs);
    for (int q8 = 0; q8 < 2 && ok; q8++) {
        if (q8 && (f->type == BT_TYPE_F32 || f->type == BT_TYPE_F16 || f->type == BT_TYPE_BF16)) continue;
        for (int nt = 1; nt <= maxthr; nt++) {
            bk_set_threads(nt);
            double tot = 0;
            for (int l = 0; l < nl; l++) {
                struct point p = {b, {{0}}, 7, by};
                for (int i = 0; i < 7; i++)
                    p.op[i] = mm_op(w[l * 7 + i], f, layer8b[i][0], layer8b[i][1], bx, by, 1, q8);
                double sec = measure(&p, tmin / nl);
                if (sec < 0) { ok = 0; break; }
                tot += sec;
            }
            if (!ok) break;
            double gbs = lb * nl / tot * 1e-9;
            printf("%s    {\"backend\": \"%s\", \"fn\": \"decode_8b_layers\", \"fmt\": \"%s\", \"act\": \"%s\", "
                   "\"layers\": %d, \"mbytes\": %.1f, \"threads\": %d, \"ms\": %.3f, \"gb_s\": %.3f, "
                   "\"read_gb_s\": %.3f, \"frac_of_read_bw\": %.3f}",
                   first ? "" : ",\n", b->desc->name, fs, q8 ? "q8" : "f32", nl, lb * nl * 1e-6, nt,
                   tot * 1e3, gbs, bw[nt], bw[nt] > 0 ? gbs / bw[nt] : 0);
            first = 0;
            fflush(stdout);
        }
    }
    for (int i = 0; i < 56; i++) if (w[i]) b->be->buf_free(b->ctx, w[i]);
    for (int i = 0; i < 7; i++) bk_free(host[i]);
    if (bx) b->be->buf_free(b->ctx, bx);
    if (by) b->be->buf_free(b->ctx, by);
    bk_free(x);
    return first;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : BT_BENCH_PLUGIN_DIR;
    double tmin = argc > 2 ? atof(argv[2]) : 0.3;
    const char *only = argc > 3 && strcmp(argv[3], "all") ? argv[3] : NULL;
    const int64_t ntok = argc > 4 ? atoll(argv[4]) : 64;
    const int maxthr = argc > 5 ? atoi(argv[5]) : 2;
    const char *bonly = argc > 6 ? argv[6] : NULL;
    if (ntok < 1 || ntok > 4096 || maxthr < 1) { fprintf(stderr, "bad ntok or threads\n"); return 2; }
    const char *names[3] = {"cpu", "cpu-avx2", "opencl"};
    struct bk_backend be[3];
    int have[3];
    bk_log_quiet = 1;
    for (int i = 0; i < 3; i++) {
        char path[1024], why[1200];
        snprintf(path, sizeof(path), "%s/libbt-backend-%s.so", dir, names[i]);
        have[i] = (!bonly || !strcmp(bonly, names[i])) && bk_load_ex(path, NULL, 0, &be[i], why, sizeof why) == BK_OK;
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
    for (int64_t i = 0; i < ntok * cols_max; i++) x[i] = frand();
    double bw[BK_MAX_THREADS + 1] = {0};
    for (int nt = 1; nt <= maxthr && nt <= BK_MAX_THREADS; nt++) bw[nt] = read_bw(nt);

    printf("{\n  \"bench\": \"bt kernels\",\n  \"read_gb_s\": [");
    for (int nt = 1; nt <= maxthr; nt++) printf("%s%.3f", nt > 1 ? ", " : "", bw[nt]);
    printf("],\n  \"results\": [\n");
    int first = 1;
    for (size_t fi = 0; fi < sizeof(fmts) / sizeof(fmts[0]); fi++) {
        const struct bt_tfmt *f = &fmts[fi];
        char fs[32];
        bt_fmt_str(f, fs, sizeof(fs));
        if (only && strcmp(only, fs) != 0) continue;
        for (int s = 0; s < 2; s++) {
            int64_t rows = shapes[s][0], cols = shapes[s][1];
            uint8_t *w = make_weights(f, rows, cols);
            size_t wb = bt_fmt_row_bytes(f, cols) * (size_t)rows;
            double wbytes = (double)wb;
            for (int bi = 0; bi < 3; bi++) {
                if (!have[bi] || !w) continue;
                bt_buf *bw_ = be_buf(&be[bi], w, wb), *bx = be_buf(&be[bi], x, sizeof(float) * (size_t)(ntok * cols));
                bt_buf *by = be_buf(&be[bi], NULL, sizeof(float) * (size_t)(ntok * rows));
                for (int nt = 1; nt <= maxthr && bw_ && bx && by; nt++) {
                    bk_set_threads(nt);
                    for (int fn = 0; fn < FN_N; fn++) {
                        int gemm = fn == FN_GEMM || fn == FN_GEMM_Q8, q8 = fn == FN_GEMV_Q8 || fn == FN_GEMM_Q8;
                        if (gemm && s == 1) continue; /* gemm: 4096x4096 only */
                        struct point p = {&be[bi], {{0}}, 1, by};
                        p.op[0] = mm_op(bw_, f, rows, cols, bx, by, gemm ? ntok : 1, q8);
                        if (!be[bi].be->supports_op(be[bi].ctx, &p.op[0])) continue;
                        double sec = measure(&p, tmin);
                        if (sec < 0) continue;
                        int64_t nt_ = gemm ? ntok : 1;
                        double gw = (double)rows * (double)cols * (double)nt_ / sec * 1e-9;
                        printf("%s    {\"backend\": \"%s\", \"fn\": \"%s\", \"fmt\": \"%s\", \"bpw\": %.4f, "
                               "\"rows\": %lld, \"cols\": %lld, \"ntok\": %lld, \"threads\": %d, "
                               "\"ms\": %.4f, \"gweights_s\": %.3f, \"gb_s\": %.3f}",
                               first ? "" : ",\n", names[bi], fn_name[fn], fs, wbytes * 8.0 / (double)(rows * cols),
                               (long long)rows, (long long)cols, (long long)nt_, nt, sec * 1e3,
                               gw, wbytes / sec * 1e-9);
                        first = 0;
                        fflush(stdout);
                    }
                }
                if (bw_) be[bi].be->buf_free(be[bi].ctx, bw_);
                if (bx) be[bi].be->buf_free(be[bi].ctx, bx);
                if (by) be[bi].be->buf_free(be[bi].ctx, by);
            }
            bk_free(w);
        }
        /* beyond the cache: TQ2_0, F16 and Q8_0 (the formats users decode with) */
        if (f->type == BT_TYPE_TQ2_0 || f->type == BT_TYPE_F16 || f->type == BT_TYPE_Q8_0)
            for (int bi = 0; bi < 3; bi++)
                if (have[bi]) first = big_set(&be[bi], f, maxthr, tmin, bw, first);
    }
    printf("\n  ]\n}\n");
    for (int i = 0; i < 3; i++) if (have[i]) bk_unload(&be[i]);
    bk_shutdown();
    bk_free(x);
    return 0;
}
