/* bench_vq.c - the vq format's compute through the op interface, JSON on stdout:
 *   kmeans: op KMEANS assignments per second for K = 256 .. 65536 centroids of d = 4, 6, 8
 *           (n = 65536 points), at 1..N threads, per CPU backend;
 *   gemv:   batch-1 MATMUL of random vq weights (4096 x 4096 and 14336 x 4096) for a few vq
 *           parameter sets beside TQ2_0, hot (one copy, cache-resident) and cold (copies in
 *           turn, >= 256 MiB, from memory), with the bytes each call reads (packed codes + the f32
 *           codebook cache + scales/permutation + activations) as a fraction of the machine's
 *           measured read bandwidth (a 1 GB sum, best of 5), weights and (vq) codes per core
 *           cycle (the clock measured by a chain of dependent adds).
 * Times are the fastest run (other jobs share the machine) with the mean beside it.
 * usage: bench_vq [plugin_dir] [min_seconds_per_point] [max threads, default 2] [backend]
 *                 [kmeans|gemv|all] */
#include "bk_host.h"
#include "bt_types.h"
#include "bench_bw.h"

#include <math.h>
#include <stddef.h>
#include <time.h>

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }
static float frand(void) { return (float)((rng() >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; }

static bt_buf *buf_of(struct bk_backend *b, const void *src, size_t n) {
    bt_buf *buf = NULL;
    bt_err err = {0, ""};
    if (b->be->buf_alloc(b->ctx, n ? n : 1, BT_BUF_WEIGHTS, &buf, &err) ||
        (src && n && b->be->buf_write(b->ctx, buf, 0, src, n, &err))) {
        fprintf(stderr, "%s: %s\n", b->desc->name, err.msg);
        return NULL;
    }
    return buf;
}

/* seconds per op of ops[0 .. n): the fastest pass over all n of >= 3 passes taking >= tmin s,
 * after one warm-up pass (other jobs share the machine; the mean goes to *mean). Each op is
 * followed by a read-back of one value. */
static double timed(struct bk_backend *b, const struct bt_op *ops, int n, bt_buf *out, double tmin, double *mean) {
    bt_err err = {0, ""};
    float probe;
    for (int i = 0; i < n; i++)
        if (b->be->run(b->ctx, &ops[i], 1, &err) || b->be->buf_read(b->ctx, out, 0, &probe, 4, &err)) {
            fprintf(stderr, "%s: %s\n", b->desc->name, err.msg);
            return -1;
        }
    int passes = 0;
    double t0 = now(), t, best = 1e30;
    do {
        double r0 = now();
        for (int i = 0; i < n; i++) {
            b->be->run(b->ctx, &ops[i], 1, &err);
            b->be->buf_read(b->ctx, out, 0, &probe, 4, &err);
        }
        best = fmin(best, now() - r0);
        passes++;
        t = now() - t0;
    } while (t < tmin || passes < 3);
    if (mean) *mean = t / passes / n;
    return best / n;
}

/* the core clock in GHz: a chain of dependent one-cycle adds (2 M of them, fastest of 200); 0
 * where there is no probe for the ISA */
static double core_ghz(void) {
    double best = 0;
    for (int r = 0; r < 200; r++) {
        uint64_t x = 0;
        long n = 2000000;
        double t0 = now();
        for (long i = 0; i < n; i += 4) {
#if defined(__x86_64__) || defined(__i386__)
            __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
#elif defined(__aarch64__)
            __asm__ volatile("add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1" : "+r"(x));
#else
            return 0;
#endif
        }
        best = fmax(best, (double)n / (now() - t0) * 1e-9);
    }
    return best;
}

static int first = 1;
static void sep(void) { printf("%s    ", first ? "" : ",\n"); first = 0; }

static void bench_kmeans(struct bk_backend *b, int maxthr, double tmin) {
    static const int64_t Ks[] = {256, 1024, 4096, 16384, 65536}, ds[] = {4, 6, 8};
    int64_t n = 65536;
    struct bt_tfmt f32 = {BT_TYPE_F32, 0, 0, 0}, i32 = {BT_TYPE_I32, 0, 0, 0};
    for (size_t a = 0; a < 3; a++)
        for (size_t k = 0; k < 5; k++) {
            int64_t d = ds[a], K = Ks[k];
            if (maxthr == 1 && K > 4096) continue; /* the scalar reference: small codebooks only */
            float *P = bk_alloc(sizeof(float) * (size_t)(n * d)), *C = bk_alloc(sizeof(float) * (size_t)(K * d));
            for (int64_t i = 0; i < n * d; i++) P[i] = frand();
            for (int64_t i = 0; i < K * d; i++) C[i] = frand();
            bt_buf *bp = buf_of(b, P, sizeof(float) * (size_t)(n * d)), *bc = buf_of(b, C, sizeof(float) * (size_t)(K * d));
            bt_buf *bi = buf_of(b, NULL, sizeof(int32_t) * (size_t)n);
            struct bt_op op;
            memset(&op, 0, sizeof op);
            op.code = BT_OP_KMEANS;
            op.src[0] = bt_view_of(bp, 0, f32, n, d);
            op.src[1] = bt_view_of(bc, 0, f32, K, d);
            op.dst = bt_view_of(bi, 0, i32, n, 1);
            for (int nt = 1; nt <= maxthr && bp && bc && bi; nt++) {
                bk_set_threads(nt);
                double s = timed(b, &op, 1, bi, tmin, NULL);
                if (s <= 0) continue;
                sep();
                printf("{\"backend\": \"%s\", \"fn\": \"kmeans_assign\", \"K\": %lld, \"d\": %lld, \"points\": %lld, "
                       "\"threads\": %d, \"assign_per_s\": %.4g, \"dist_per_s\": %.4g}",
                       b->desc->name, (long long)K, (long long)d, (long long)n, nt, (double)n / s, (double)n * K / s);
            }
            b->be->buf_free(b->ctx, bp); b->be->buf_free(b->ctx, bc); b->be->buf_free(b->ctx, bi);
            bk_free(P); bk_free(C);
        }
}

/* one vq (or plain) weight set on backend b: batch-1 product time and bytes read, with the
 * weights hot (one copy, run again and again: the shapes here stay in a 32 MB L3) and cold (as
 * many copies of the packed rows as make >= 256 MiB, run in turn, so they come from memory) */
static void bench_gemv(struct bk_backend *b, struct bt_tfmt f, int64_t rows, int64_t cols, int maxthr,
                       double tmin, const double *bw, double ghz) {
    struct bt_vq_layout L;
    int vq = f.type == BT_TYPE_VQ;
    if (vq && !bt_vq_layout(&f, rows, cols, &L)) return;
    size_t rb = bt_fmt_row_bytes(&f, cols), nb = rb * (size_t)rows;
    uint8_t *w = bk_alloc(nb);
    for (size_t i = 0; i < nb; i++) w[i] = (uint8_t)rng();
    if (f.type == BT_TYPE_TQ2_0) /* valid codes and scales */
        for (size_t blk = 0; blk < nb / 66; blk++) { w[blk * 66 + 64] = 0x00; w[blk * 66 + 65] = 0x20; }
    enum { MAXC = 256 };
    int ncold = (int)(((size_t)256 << 20) / nb) + 1;
    if (ncold > MAXC) ncold = MAXC;
    bt_buf *bws[MAXC] = {0}, *parts[BT_MAX_PARTS] = {0};
    for (int c = 0; c < ncold; c++) bws[c] = buf_of(b, w, nb);
    double extra = 0; /* bytes besides the codes: f32 codebook cache, columns, outliers */
    if (vq)
        for (uint32_t k = 0; k < L.n_parts; k++) {
            uint8_t *p = bk_alloc(L.part_bytes[k]);
            for (uint64_t i = 0; i < L.part_bytes[k] / 2; i++) {
                uint16_t h = (int)k == L.p_cb ? bt_f32_to_fp16(frand()) : (int)k == L.p_col && L.col_perm != UINT64_MAX &&
                             i < (uint64_t)cols ? (uint16_t)i : bt_f32_to_fp16(1.0f);
                p[2 * i] = (uint8_t)h;
                p[2 * i + 1] = (uint8_t)(h >> 8);
            }
            parts[k] = buf_of(b, p, L.part_bytes[k]);
            extra += (int)k == L.p_cb ? 2.0 * (double)L.part_bytes[k] : (double)L.part_bytes[k];
            bk_free(p);
        }
    float *x = bk_alloc(sizeof(float) * (size_t)cols);
    for (int64_t i = 0; i < cols; i++) x[i] = frand();
    bt_buf *bx = buf_of(b, x, sizeof(float) * (size_t)cols), *by = buf_of(b, NULL, sizeof(float) * (size_t)rows);
    static struct bt_op ops[MAXC];
    struct bt_tfmt f32 = {BT_TYPE_F32, 0, 0, 0};
    for (int c = 0; c < ncold; c++) {
        memset(&ops[c], 0, sizeof ops[c]);
        ops[c].code = BT_OP_MATMUL;
        ops[c].src[0] = bt_view_of(bws[c], 0, f, rows, cols);
        for (int k = 0; k < BT_MAX_PARTS; k++) ops[c].src[0].parts[k] = parts[k];
        ops[c].src[1] = bt_view_of(bx, 0, f32, 1, cols);
        ops[c].dst = bt_view_of(by, 0, f32, 1, rows);
        ops[c].act = (bt_format_get(f.type)->flags & BT_FMT_INTDOT) ? BT_ACT_Q8 : BT_ACT_F32;
    }
    char fs[48];
    bt_fmt_str(&f, fs, sizeof fs);
    double bytes = (double)nb + extra + 4.0 * (double)(cols + rows);
    for (int cold = 0; cold < 2; cold++)
        for (int nt = 1; nt <= maxthr; nt++) {
            int n = cold ? ncold : 1;
            bk_set_threads(nt);
            double mean = 0, s = timed(b, ops, n, by, tmin, &mean);
            if (s <= 0) continue;
            double codes = vq ? (double)L.nrb * (double)(L.ncode + L.n_out) : 0;
            sep();
            printf("{\"backend\": \"%s\", \"fn\": \"gemv\", \"fmt\": \"%s\", \"rows\": %lld, \"cols\": %lld, "
                   "\"bpw_codes\": %.4f, \"weights\": \"%s\", \"set_mb\": %.1f, \"threads\": %d, \"us\": %.2f, "
                   "\"us_mean\": %.2f, \"gweights_s\": %.3f, \"bytes_read\": %.0f, \"gb_s\": %.3f, \"of_read_bw\": %.3f",
                   b->desc->name, fs, (long long)rows, (long long)cols, 8.0 * (double)nb / ((double)rows * cols),
                   cold ? "cold" : "hot", (double)n * (double)nb * 1e-6, nt, s * 1e6, mean * 1e6,
                   (double)rows * cols / s * 1e-9, bytes, bytes / s * 1e-9, bytes / s * 1e-9 / bw[nt]);
            if (ghz > 0) /* per core cycle, on nt cores (vq: one code per v weights) */
                printf(", \"weights_per_cycle\": %.3f", (double)rows * cols / s * 1e-9 / (ghz * nt));
            if (ghz > 0 && vq) printf(", \"codes_per_cycle\": %.3f", codes / s * 1e-9 / (ghz * nt));
            printf("}");
            fflush(stdout);
        }
    for (int c = 0; c < ncold; c++) b->be->buf_free(b->ctx, bws[c]);
    b->be->buf_free(b->ctx, bx); b->be->buf_free(b->ctx, by);
    for (int k = 0; k < BT_MAX_PARTS; k++) b->be->buf_free(b->ctx, parts[k]);
    bk_free(w);
    bk_free(x);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : BT_BENCH_PLUGIN_DIR;
    double tmin = argc > 2 ? atof(argv[2]) : 0.5;
    int maxthr = argc > 3 ? atoi(argv[3]) : 2;
    const char *only = argc > 4 ? argv[4] : NULL, *what = argc > 5 ? argv[5] : "all";
    if (maxthr < 1 || maxthr > 64) { fprintf(stderr, "bad thread count\n"); return 2; }
    bk_log_quiet = 1;
    double bw[65] = {0};
    for (int nt = 1; nt <= maxthr; nt++) bw[nt] = read_bw(nt);
    double ghz = core_ghz();
    printf("{\n  \"bench\": \"bt vq kernels\",\n  \"timing\": \"us: fastest run, us_mean: mean\",\n"
           "  \"core_ghz\": %.3f,\n  \"read_gb_s\": [", ghz);
    for (int nt = 1; nt <= maxthr; nt++) printf("%s%.3f", nt > 1 ? ", " : "", bw[nt]);
    printf("],\n  \"results\": [\n");
    static const char *names[] = {"cpu-avx2", "cpu"};
    const struct bt_tfmt sets[] = {
        bt_vq_tfmt(4, 8, 0, 1, BT_VQ_NORM | BT_VQ_PERM, 0, 0, 0),   /* bt-small's 2-bit setting */
        bt_vq_tfmt(8, 16, 0, 1, BT_VQ_NORM | BT_VQ_PERM, 0, 0, 0),  /* VPTQ v8-k65536 (2 bits) */
        bt_vq_tfmt(6, 12, 0, 1, BT_VQ_NORM | BT_VQ_PERM, 0, 0, 0),  /* v6-k4096 (2 bits) */
        bt_vq_tfmt(8, 8, 8, 1, BT_VQ_NORM | BT_VQ_PERM, 0, 0, 0),   /* v8-k256 + 256 residual (2 bits) */
        {BT_TYPE_TQ2_0, 0, 0, 0},
    };
    static const int64_t shapes[2][2] = {{4096, 4096}, {14336, 4096}};
    for (int i = 0; i < 2; i++) {
        if (only && strcmp(only, names[i])) continue;
        struct bk_backend b;
        char path[1024], why[256];
        snprintf(path, sizeof path, "%s/libbt-backend-%s.so", dir, names[i]);
        if (bk_load_ex(path, NULL, 0, &b, why, sizeof why) != BK_OK) { fprintf(stderr, "%s: %s\n", names[i], why); continue; }
        if (strcmp(what, "gemv")) bench_kmeans(&b, i == 0 ? maxthr : 1, tmin);
        for (size_t s = 0; strcmp(what, "kmeans") && s < sizeof(sets) / sizeof(sets[0]); s++)
            for (int k = 0; k < 2; k++) bench_gemv(&b, sets[s], shapes[k][0], shapes[k][1], maxthr, tmin, bw, ghz);
        bk_unload(&b);
    }
    printf("\n  ]\n}\n");
    bk_shutdown();
    return 0;
}
