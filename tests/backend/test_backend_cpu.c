/* test_backend_cpu.c - conformance of a CPU backend plugin (every format x every function)
 * against a double-precision reference on bt_to_f32 weights, plus determinism and error paths.
 * usage: test_backend_cpu <plugin.so> <expected name>; exit 77 if the CPU cannot run it. */
#include "../bt_test.h"
#include "bk_host.h"
#include "bt_types.h"
#include "cpu_act.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* ---- random data --------------------------------------------------------------------------- */
static uint64_t rng_s = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
    rng_s ^= rng_s << 13;
    rng_s ^= rng_s >> 7;
    rng_s ^= rng_s << 17;
    return rng_s;
}
static float urand(void) { return (float)((rng() >> 11) * (1.0 / 9007199254740992.0)); } /* [0,1) */
static float nrand(void) { return (urand() + urand() + urand() - 1.5f) * 2.0f; }
static int8_t trand(void) { return (int8_t)(rng() % 3) - 1; }
static float srand_scale(void) { return (0.01f + urand()) * (rng() & 1 ? -1.0f : 1.0f); }

/* rows x cols weights in fmt, random codes/scales for ternary types; caller frees */
static uint8_t *make_weights(const struct bt_tfmt *f, int64_t rows, int64_t cols) {
    size_t rb = bt_fmt_row_bytes(f, cols);
    uint8_t *w = malloc(rb * (size_t)rows);
    if (f->type == BT_TYPE_TQ1_0 || f->type == BT_TYPE_TQ2_0) {
        int8_t t[256];
        for (int64_t b = 0; b < rows * cols / 256; b++) {
            for (int i = 0; i < 256; i++) t[i] = trand();
            if (f->type == BT_TYPE_TQ2_0) bt_tq2_0_pack(t, srand_scale(), w + 66 * b);
            else bt_tq1_0_pack(t, srand_scale(), w + 54 * b);
        }
    } else if (f->type == BT_TYPE_MTQ) {
        int8_t t[8 * 256];
        float a[8];
        size_t bb = bt_mtq_block_bytes(f->planes, f->block, f->layout);
        for (int64_t b = 0; b < rows * cols / f->block; b++) {
            for (uint32_t i = 0; i < f->planes * f->block; i++) t[i] = trand();
            for (uint32_t p = 0; p < f->planes; p++) a[p] = srand_scale() / (float)(1 << p);
            bt_mtq_pack_block(f, t, a, w + bb * b);
        }
    } else {
        float *src = malloc(sizeof(float) * (size_t)(rows * cols));
        for (int64_t i = 0; i < rows * cols; i++) src[i] = nrand();
        bt_from_f32(f, src, w, rows * cols);
        free(src);
    }
    return w;
}

/* ---- comparison ---------------------------------------------------------------------------- */
static int n_bad = 0; /* mismatches reported so far (to cap the output) */

/* got[t*ldy+r] vs sum_c Wf[r,c] X[t,c] in double; tolerance tol * sum |W||X| */
static void check_mat(const char *what, const char *fs, const float *Wf, int64_t rows,
                      int64_t cols, const float *X, int64_t ntok, const float *got, double tol) {
    for (int64_t t = 0; t < ntok; t++)
        for (int64_t r = 0; r < rows; r++) {
            double ref = 0, mag = 0;
            for (int64_t c = 0; c < cols; c++) {
                double p = (double)Wf[r * cols + c] * (double)X[t * cols + c];
                ref += p;
                mag += fabs(p);
            }
            double g = got[t * rows + r];
            bt_test_checks++;
            if (!(fabs(g - ref) <= tol * mag + 1e-30)) {
                bt_test_failures++;
                if (n_bad++ < 20)
                    fprintf(stderr, "%s %s %lldx%lld: tok %lld row %lld: got %.9g want %.9g "
                            "(tol %.3g)\n", what, fs, (long long)rows, (long long)cols,
                            (long long)t, (long long)r, g, ref, tol * mag);
            }
        }
}

/* ---- one format x shape --------------------------------------------------------------------- */
static struct bk_backend B;

static void run_case(const struct bt_tfmt *f, int64_t rows, int64_t cols) {
    char fs[32];
    bt_fmt_str(f, fs, sizeof(fs));
    if (!bt_fmt_row_bytes(f, cols)) return;
    const struct bt_backend_i *be = B.be;
    bt_err err = {0, ""};
    int64_t n = rows * cols, ntok = 7;
    uint8_t *w = make_weights(f, rows, cols);
    float *wf = malloc(sizeof(float) * (size_t)n), *wd = malloc(sizeof(float) * (size_t)n);
    float *X = malloc(sizeof(float) * (size_t)(ntok * cols)), *Y = malloc(sizeof(float) * (size_t)(ntok * rows));
    float *xd = malloc(sizeof(float) * (size_t)cols);
    int8_t *xq = malloc((size_t)cols);
    float *xs = malloc(sizeof(float) * (size_t)cols);
    CHECK(bt_to_f32(f, w, wf, n) == BT_OK);
    for (int64_t i = 0; i < ntok * cols; i++) X[i] = nrand();

    /* dequant: bit-identical to bt_to_f32 */
    memset(wd, 0xff, sizeof(float) * (size_t)n);
    CHECK_EQ(be->dequant(B.ctx, f, w, n, wd, &err), BT_OK);
    bt_test_checks++;
    if (memcmp(wd, wf, sizeof(float) * (size_t)n)) {
        bt_test_failures++;
        fprintf(stderr, "dequant %s %lldx%lld differs from bt_to_f32\n", fs, (long long)rows, (long long)cols);
    }
    /* gemv_f32 (a single token) */
    CHECK_EQ(be->gemv_f32(B.ctx, f, w, rows, cols, X, Y, &err), BT_OK);
    check_mat("gemv_f32", fs, wf, rows, cols, X, 1, Y, 2e-6);
    /* gemm_f32 for 1, 2, 7 tokens */
    for (int64_t nt = 1; nt <= ntok; nt = nt == 1 ? 2 : nt == 2 ? 7 : 8) {
        memset(Y, 0, sizeof(float) * (size_t)(nt * rows));
        CHECK_EQ(be->gemm_f32(B.ctx, f, w, rows, cols, X, nt, Y, &err), BT_OK);
        check_mat("gemm_f32", fs, wf, rows, cols, X, nt, Y, 2e-6);
    }
    /* gemv_q8 against the reference on the quantized activations */
    for (int64_t ab = 32; ab <= 256; ab *= 8) {
        if (cols % ab) continue;
        CHECK_EQ(bt_cpu_act_quantize(X, cols, ab, xq, xs), BT_OK);
        bt_cpu_act_dequantize(xq, xs, cols, ab, xd);
        bt_status st = be->gemv_q8(B.ctx, f, w, rows, cols, xq, xs, ab, Y, &err);
        CHECK_EQ(st, BT_OK);
        if (st == BT_OK) {
            char what[32];
            snprintf(what, sizeof(what), "gemv_q8/%lld", (long long)ab);
            check_mat(what, fs, wf, rows, cols, xd, 1, Y, 2e-6);
        } else {
            fprintf(stderr, "gemv_q8 %s: %s\n", fs, err.msg);
        }
    }
    free(w); free(wf); free(wd); free(X); free(Y); free(xd); free(xq); free(xs);
}

/* ---- gemm_q8: reference on the quantized activations, and bit-identical to gemv_q8 per token,
 * for ntok 1/3/17/64, ablock 32/256 and 1..3 threads ----------------------------------------- */
static void run_gemm_q8(const struct bt_tfmt *f, int64_t rows, int64_t cols, int64_t maxtok) {
    char fs[32];
    bt_fmt_str(f, fs, sizeof(fs));
    if (!bt_fmt_row_bytes(f, cols)) return;
    const struct bt_backend_i *be = B.be;
    CHECK(be->struct_size > offsetof(struct bt_backend_i, gemm_q8) && be->gemm_q8);
    if (!(be->struct_size > offsetof(struct bt_backend_i, gemm_q8) && be->gemm_q8)) return;
    bt_err err = {0, ""};
    uint8_t *w = make_weights(f, rows, cols);
    float *wf = malloc(sizeof(float) * (size_t)(rows * cols));
    float *X = malloc(sizeof(float) * (size_t)(maxtok * cols)), *xd = malloc(sizeof(float) * (size_t)(maxtok * cols));
    float *Y = malloc(sizeof(float) * (size_t)(maxtok * rows)), *Yv = malloc(sizeof(float) * (size_t)(maxtok * rows));
    float *Y2 = malloc(sizeof(float) * (size_t)(maxtok * rows));
    int8_t *xq = malloc((size_t)(maxtok * cols));
    float *xs = malloc(sizeof(float) * (size_t)(maxtok * cols / 32));
    CHECK(bt_to_f32(f, w, wf, rows * cols) == BT_OK);
    for (int64_t i = 0; i < maxtok * cols; i++) X[i] = nrand();
    static const int64_t toks[] = {1, 3, 17, 64};
    for (int64_t ab = 32; ab <= 256; ab *= 8) {
        if (cols % ab) continue;
        CHECK_EQ(bt_cpu_act_quantize(X, maxtok * cols, ab, xq, xs), BT_OK);
        bt_cpu_act_dequantize(xq, xs, maxtok * cols, ab, xd);
        for (size_t ti = 0; ti < sizeof(toks) / sizeof(toks[0]) && toks[ti] <= maxtok; ti++) {
            int64_t nt = toks[ti];
            char what[48];
            snprintf(what, sizeof(what), "gemm_q8/%lld/ntok %lld", (long long)ab, (long long)nt);
            memset(Y, 0xff, sizeof(float) * (size_t)(nt * rows));
            bt_status st = be->gemm_q8(B.ctx, f, w, rows, cols, xq, xs, ab, nt, Y, &err);
            CHECK_EQ(st, BT_OK);
            if (st != BT_OK) { fprintf(stderr, "%s %s: %s\n", what, fs, err.msg); continue; }
            check_mat(what, fs, wf, rows, cols, xd, nt, Y, 2e-6);
            for (int64_t t = 0; t < nt; t++) /* the same floats as gemv_q8 on each token */
                CHECK_EQ(be->gemv_q8(B.ctx, f, w, rows, cols, xq + t * cols, xs + t * (cols / ab), ab,
                                     Yv + t * rows, &err), BT_OK);
            bt_test_checks++;
            if (memcmp(Y, Yv, sizeof(float) * (size_t)(nt * rows))) {
                bt_test_failures++;
                fprintf(stderr, "%s %s %lldx%lld: differs from gemv_q8 per token\n", what, fs,
                        (long long)rows, (long long)cols);
            }
            for (int k = 1; k <= 3 && nt > 1; k += 2) { /* thread counts */
                bk_set_threads(k);
                CHECK_EQ(be->gemm_q8(B.ctx, f, w, rows, cols, xq, xs, ab, nt, Y2, &err), BT_OK);
                bt_test_checks++;
                if (memcmp(Y, Y2, sizeof(float) * (size_t)(nt * rows))) {
                    bt_test_failures++;
                    fprintf(stderr, "%s %s: %d threads differ\n", what, fs, k);
                }
            }
            bk_set_threads(2);
        }
    }
    /* bad arguments */
    CHECK_EQ(be->gemm_q8(B.ctx, f, w, rows, cols, xq, xs, 48, 1, Y, &err), BT_E_INVAL);
    CHECK_EQ(be->gemm_q8(B.ctx, f, w, rows, cols, xq, xs, 32, 0, Y, &err), BT_E_INVAL);
    CHECK_EQ(be->gemm_q8(B.ctx, f, w, rows, cols, NULL, xs, 32, 1, Y, &err), BT_E_INVAL);
    free(w); free(wf); free(X); free(xd); free(Y); free(Yv); free(Y2); free(xq); free(xs);
}

/* ---- determinism: identical bytes for 1, 2 and 3 threads ------------------------------------- */
static void run_determinism(const struct bt_tfmt *f, int64_t rows, int64_t cols) {
    char fs[32];
    bt_fmt_str(f, fs, sizeof(fs));
    bt_err err = {0, ""};
    int64_t ntok = 5;
    uint8_t *w = make_weights(f, rows, cols);
    float *X = malloc(sizeof(float) * (size_t)(ntok * cols)), *Y[3];
    int8_t *xq = malloc((size_t)cols);
    float *xs = malloc(sizeof(float) * (size_t)cols);
    for (int64_t i = 0; i < ntok * cols; i++) X[i] = nrand();
    bt_cpu_act_quantize(X, cols, 256, xq, xs);
    size_t ny = (size_t)rows * (size_t)(ntok + 2);
    for (int k = 0; k < 3; k++) {
        bk_set_threads(k + 1);
        Y[k] = calloc(ny, sizeof(float));
        CHECK_EQ(B.be->gemv_f32(B.ctx, f, w, rows, cols, X, Y[k], &err), BT_OK);
        CHECK_EQ(B.be->gemv_q8(B.ctx, f, w, rows, cols, xq, xs, 256, Y[k] + rows, &err), BT_OK);
        CHECK_EQ(B.be->gemm_f32(B.ctx, f, w, rows, cols, X, ntok, Y[k] + 2 * rows, &err), BT_OK);
    }
    for (int k = 1; k < 3; k++) {
        bt_test_checks++;
        if (memcmp(Y[0], Y[k], ny * sizeof(float))) {
            bt_test_failures++;
            fprintf(stderr, "determinism %s: 1 vs %d threads differ\n", fs, k + 1);
        }
    }
    bk_set_threads(1);
    for (int k = 0; k < 3; k++) free(Y[k]);
    free(w); free(X); free(xq); free(xs);
}

/* ---- error paths ------------------------------------------------------------------------------ */
static void run_errors(void) {
    bt_err err = {0, ""};
    struct bt_tfmt i32 = bt_fmt(BT_TYPE_I32), tq2 = bt_fmt(BT_TYPE_TQ2_0);
    struct bt_tfmt bad = {BT_TYPE_MTQ, 9, 256, 0}, bad2 = {BT_TYPE_MTQ, 2, 96, 0};
    float x[512] = {0}, y[4];
    int8_t xq[512] = {0};
    float xs[16] = {0};
    uint8_t w[4 * 66 * 2] = {0};
    CHECK(!B.be->supports(B.ctx, &i32));
    CHECK(!B.be->supports(B.ctx, &bad));
    CHECK(!B.be->supports(B.ctx, &bad2));
    CHECK(B.be->supports(B.ctx, &tq2));
    CHECK_EQ(B.be->gemv_f32(B.ctx, &i32, w, 1, 4, x, y, &err), BT_E_UNSUPPORTED);
    CHECK(strstr(err.msg, "i32") != NULL);
    CHECK_EQ(B.be->gemv_f32(B.ctx, &tq2, w, 1, 100, x, y, &err), BT_E_INVAL);
    CHECK(strstr(err.msg, "100") != NULL);
    CHECK_EQ(B.be->gemv_q8(B.ctx, &tq2, w, 1, 512, xq, xs, 48, y, &err), BT_E_INVAL);
    CHECK_EQ(B.be->gemv_q8(B.ctx, &tq2, w, 1, 256, xq, xs, 512, y, &err), BT_E_INVAL);
    CHECK_EQ(B.be->gemm_f32(B.ctx, &tq2, w, 1, 256, x, 0, y, &err), BT_E_INVAL);
    CHECK_EQ(B.be->gemv_f32(B.ctx, &tq2, NULL, 1, 256, x, y, &err), BT_E_INVAL);
    CHECK_EQ(B.be->dequant(B.ctx, &tq2, w, 100, x, &err), BT_E_INVAL);
    CHECK_EQ(B.be->dequant(B.ctx, &bad, w, 256, x, &err), BT_E_UNSUPPORTED);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s plugin.so name\n", argv[0]); return 2; }
    int want_avx2 = strstr(argv[2], "avx2") != NULL;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (want_avx2 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                       __builtin_cpu_supports("f16c"))) {
        fprintf(stderr, "skip: this CPU has no AVX2/FMA/F16C\n");
        return 77;
    }
#else
    if (want_avx2) return 77;
#endif
    if (bk_load(argv[1], &B)) return 1;
    CHECK(strcmp(B.desc->name, argv[2]) == 0);
    int score = B.be->score ? B.be->score() : 1;
    CHECK_EQ(score, want_avx2 ? 10 : 1);
    bk_set_threads(2);

    static const uint32_t std_types[] = {BT_TYPE_F32, BT_TYPE_F16, BT_TYPE_BF16, BT_TYPE_Q8_0,
                                         BT_TYPE_Q4_0, BT_TYPE_TQ1_0, BT_TYPE_TQ2_0};
    static const int64_t shapes[][2] = {{1, 256}, {3, 512}, {17, 768}, {5, 320}, {3, 259},
                                        {1000, 4096}, {2, 1024}};
    for (size_t i = 0; i < sizeof(std_types) / sizeof(std_types[0]); i++)
        for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
            struct bt_tfmt f = bt_fmt(std_types[i]);
            run_case(&f, shapes[s][0], shapes[s][1]);
        }
    /* MTQ: every plane count, block and layout on small shapes; a few on the big one */
    for (uint32_t lay = 0; lay < 2; lay++)
        for (uint32_t blk = 64; blk <= 256; blk *= 2)
            for (uint32_t np = 1; np <= 8; np++) {
                struct bt_tfmt f = {BT_TYPE_MTQ, np, blk, lay};
                run_case(&f, 3, 512);
                run_case(&f, 17, 256 + (blk == 64 ? 64 : 0));
                if (np == 1 || np == 3 || np == 8) run_case(&f, 5, 2048);
            }
    struct bt_tfmt m3 = {BT_TYPE_MTQ, 3, 256, 0}, m2 = {BT_TYPE_MTQ, 2, 128, 1};
    run_case(&m3, 1000, 4096);
    run_case(&m2, 1000, 4096);

    /* gemm_q8: every format; odd row counts; the big shape for the ternary hot paths */
    static const int64_t qshapes[][2] = {{3, 256}, {17, 768}, {5, 512}, {2, 1024}};
    for (size_t i = 0; i < sizeof(std_types) / sizeof(std_types[0]); i++)
        for (size_t s = 0; s < sizeof(qshapes) / sizeof(qshapes[0]); s++) {
            struct bt_tfmt f = bt_fmt(std_types[i]);
            run_gemm_q8(&f, qshapes[s][0], qshapes[s][1], 64);
        }
    for (uint32_t lay = 0; lay < 2; lay++)
        for (uint32_t blk = 64; blk <= 256; blk *= 2)
            for (uint32_t np = 1; np <= 8; np++) {
                struct bt_tfmt f = {BT_TYPE_MTQ, np, blk, lay};
                run_gemm_q8(&f, 7, 512, 17);
            }
    struct bt_tfmt tq2 = bt_fmt(BT_TYPE_TQ2_0), tq1 = bt_fmt(BT_TYPE_TQ1_0);
    run_gemm_q8(&tq2, 67, 4096, 64);
    run_gemm_q8(&tq1, 67, 4096, 17);
    run_gemm_q8(&m3, 67, 4096, 17);

    struct bt_tfmt det[] = {bt_fmt(BT_TYPE_TQ2_0), bt_fmt(BT_TYPE_TQ1_0), bt_fmt(BT_TYPE_F16),
                            bt_fmt(BT_TYPE_Q4_0), m3, m2};
    for (size_t i = 0; i < sizeof(det) / sizeof(det[0]); i++) run_determinism(&det[i], 1001, 1024);
    run_errors();

    bk_unload(&B);
    bk_shutdown();
    TEST_DONE();
}
