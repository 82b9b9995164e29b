/* bench_gemv_bw.c - batch-1 MATMUL bandwidth of one backend through the op interface, against
 * the device's own copy bandwidth (op CPY of a large buffer, read + write bytes / time):
 *   copy      CPY of `copy_mib` MiB, bytes read + written per second
 *   gemv      4096 x 14336 TQ2_0 (rows x cols), 1 token, cycling over enough copies of the matrix
 *             to exceed `stream_mib` MiB (no cache reuse), f32 and int8 (Q8) activations
 *   layers    Llama-3-8B layer mix (q 4096x4096, k/v 1024x4096, o 4096x4096, gate/up 14336x4096,
 *             down 4096x14336), all TQ2_0, `layers` distinct layers, one op list per layer
 * Each timing is the best of `reps` runs of `iters` passes, synchronized by a 4-byte buf_read.
 * Prints one JSON object per line: weight bytes per pass, seconds per pass, GB/s, and the
 * fraction of the copy bandwidth.
 * --small: 1/8 of each dimension and small buffers (a smoke test of the bench on a CPU backend).
 * usage: bench_gemv_bw PLUGIN_DIR BACKEND [-o key=value]... [--small] [--layers N] [--reps N]
 *        [--threads N] */
#include "bk_host.h"
#include "bt_types.h"

#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rs = 0x243f6a8885a308d3ull;
static uint32_t rnd(void) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (uint32_t)(rs >> 20);
}

static struct bk_backend B;
static bt_err E;

static void die(const char *what) {
    fprintf(stderr, "bench_gemv_bw: %s: %s\n", what, E.msg);
    exit(1);
}

static bt_buf *alloc_buf(uint64_t n, uint32_t usage) {
    bt_buf *b = NULL;
    if (B.be->buf_alloc(B.ctx, n, usage, &b, &E) != BT_OK) die("buf_alloc");
    return b;
}

static void sync_read(bt_buf *b) {
    float v;
    if (B.be->buf_read(B.ctx, b, 0, &v, 4, &E) != BT_OK) die("buf_read");
}

/* random TQ2_0 rows x cols, packed */
static uint8_t *tq2_rows(int64_t rows, int64_t cols) {
    int64_t nb = rows * cols / 256;
    uint8_t *w = malloc((size_t)nb * 66);
    int8_t t[256];
    if (!w) { snprintf(E.msg, sizeof E.msg, "out of memory"); die("weights"); }
    for (int64_t b = 0; b < nb; b++) {
        for (int i = 0; i < 256; i++) t[i] = (int8_t)(rnd() % 3) - 1;
        bt_tq2_0_pack(t, 0.01f * (float)(1 + rnd() % 7), w + 66 * b);
    }
    return w;
}

struct mat {
    int64_t rows, cols;
    bt_buf *w;
};

static struct mat upload(int64_t rows, int64_t cols, const uint8_t *host) {
    struct mat m = {rows, cols, NULL};
    uint64_t n = (uint64_t)(rows * cols / 256) * 66;
    m.w = alloc_buf(n, BT_BUF_WEIGHTS);
    if (B.be->buf_write(B.ctx, m.w, 0, host, n, &E) != BT_OK) die("buf_write");
    return m;
}

static struct bt_op matmul(const struct mat *m, bt_buf *x, bt_buf *y, int act) {
    struct bt_op op;
    memset(&op, 0, sizeof op);
    op.code = BT_OP_MATMUL;
    op.act = act;
    op.src[0] = bt_view_of(m->w, 0, bt_fmt(BT_TYPE_TQ2_0), m->rows, m->cols);
    op.src[1] = bt_view_of(x, 0, bt_fmt(BT_TYPE_F32), 1, m->cols);
    op.dst = bt_view_of(y, 0, bt_fmt(BT_TYPE_F32), 1, m->rows);
    return op;
}

/* best seconds per pass over reps of iters passes of (ops, n) lists, lists[k] for k < nl */
static double time_lists(struct bt_op **lists, const uint32_t *n, int nl, int iters, int reps,
                         bt_buf *sync) {
    double best = 1e30;
    for (int k = 0; k < nl; k++)
        if (B.be->run(B.ctx, lists[k], n[k], &E) != BT_OK) die("run (warm-up)");
    sync_read(sync);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int i = 0; i < iters; i++)
            for (int k = 0; k < nl; k++)
                if (B.be->run(B.ctx, lists[k], n[k], &E) != BT_OK) die("run");
        sync_read(sync);
        double t = (now() - t0) / iters;
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *name = NULL, *opts[16];
    int n_opts = 0, small = 0, layers = 8, reps = 5, threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc && n_opts < 16) opts[n_opts++] = argv[++i];
        else if (!strcmp(argv[i], "--small")) small = 1;
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else if (argv[i][0] != '-' && !name) name = argv[i];
        else { dir = NULL; break; }
    }
    if (!dir || !name || layers < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_gemv_bw PLUGIN_DIR BACKEND [-o key=value]... [--small] "
                        "[--layers N] [--reps N] [--threads N]\n");
        return 2;
    }
    bk_set_threads(threads); /* host threads (CPU backends only) */
    char path[4096], why[1200];
    snprintf(path, sizeof path, "%s/libbt-backend-%s.so", dir, name);
    if (bk_load_ex(path, opts, n_opts, &B, why, sizeof why) != BK_OK) {
        fprintf(stderr, "bench_gemv_bw: %s: %s\n", path, why);
        return 1;
    }
    struct bt_device_info di;
    B.be->device_info(B.ctx, &di);
    const int64_t E8 = small ? 512 : 4096, KV = small ? 128 : 1024, FF = small ? 1792 : 14336;
    const uint64_t copy_bytes = (small ? 64ull : 1024ull) << 20, stream = (small ? 64ull : 512ull) << 20;
    printf("{\"bench\":\"device\",\"backend\":\"%s\",\"device\":\"%s\",\"mem_mib\":%.0f,\"small\":%d}\n",
           name, di.name, (double)di.mem_bytes / 1048576.0, small);

    /* copy bandwidth */
    bt_buf *ca = alloc_buf(copy_bytes, BT_BUF_ACT), *cb = alloc_buf(copy_bytes, BT_BUF_ACT);
    struct bt_op cp;
    memset(&cp, 0, sizeof cp);
    cp.code = BT_OP_CPY;
    cp.src[0] = bt_view_of(ca, 0, bt_fmt(BT_TYPE_F32), (int64_t)(copy_bytes / 4 / 4096), 4096);
    cp.dst = bt_view_of(cb, 0, bt_fmt(BT_TYPE_F32), (int64_t)(copy_bytes / 4 / 4096), 4096);
    struct bt_op *cl = &cp;
    uint32_t one = 1;
    double tc = time_lists(&cl, &one, 1, 10, reps, cb);
    double copy_gbs = 2.0 * (double)copy_bytes / tc / 1e9;
    printf("{\"bench\":\"copy\",\"bytes\":%llu,\"seconds\":%.6g,\"gb_s_read_write\":%.1f}\n",
           (unsigned long long)copy_bytes, tc, copy_gbs);
    B.be->buf_free(B.ctx, ca);
    B.be->buf_free(B.ctx, cb);

    /* activations (one token) and outputs */
    bt_buf *x = alloc_buf((uint64_t)FF * 4, BT_BUF_ACT), *y = alloc_buf((uint64_t)FF * 4, BT_BUF_ACT);
    float *xh = malloc((size_t)FF * 4);
    for (int64_t i = 0; i < FF; i++) xh[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;
    if (B.be->buf_write(B.ctx, x, 0, xh, (uint64_t)FF * 4, &E) != BT_OK) die("buf_write");
    free(xh);

    /* 4096 x 14336, cycling over copies */
    uint8_t *h = tq2_rows(E8, FF);
    uint64_t mb = (uint64_t)(E8 * FF / 256) * 66;
    int nc = (int)((stream + mb - 1) / mb);
    if (nc < 2) nc = 2;
    struct mat *ms = calloc((size_t)nc, sizeof *ms);
    struct bt_op *ops = calloc((size_t)nc, sizeof *ops);
    for (int k = 0; k < nc; k++) ms[k] = upload(E8, FF, h);
    free(h);
    for (int act = 0; act < 2; act++) {
        for (int k = 0; k < nc; k++) ops[k] = matmul(&ms[k], x, y, act ? BT_ACT_Q8 : BT_ACT_F32);
        uint32_t n = (uint32_t)nc;
        double t = time_lists(&ops, &n, 1, 20, reps, y) / nc;
        printf("{\"bench\":\"gemv\",\"shape\":\"%lldx%lld\",\"format\":\"tq2_0\",\"act\":\"%s\","
               "\"copies\":%d,\"bytes\":%llu,\"seconds\":%.6g,\"gb_s\":%.1f,\"of_copy_bw\":%.3f}\n",
               (long long)E8, (long long)FF, act ? "q8" : "f32", nc, (unsigned long long)mb, t,
               (double)mb / t / 1e9, (double)mb / t / 1e9 / copy_gbs);
    }
    for (int k = 0; k < nc; k++) B.be->buf_free(B.ctx, ms[k].w);
    free(ms);
    free(ops);

    /* the 8B layer mix: q k v o gate up down per layer */
    const int64_t shp[7][2] = {{E8, E8}, {KV, E8}, {KV, E8}, {E8, E8}, {FF, E8}, {FF, E8}, {E8, FF}};
    struct mat *lm = calloc((size_t)layers * 7, sizeof *lm);
    struct bt_op **lists = calloc((size_t)layers, sizeof *lists);
    uint32_t *ln = calloc((size_t)layers, sizeof *ln);
    uint64_t bytes = 0;
    for (int s = 0; s < 7; s++) {
        uint8_t *hs = tq2_rows(shp[s][0], shp[s][1]);
        for (int l = 0; l < layers; l++) {
            lm[l * 7 + s] = upload(shp[s][0], shp[s][1], hs);
            bytes += (uint64_t)(shp[s][0] * shp[s][1] / 256) * 66;
        }
        free(hs);
    }
    for (int act = 0; act < 2; act++) {
        for (int l = 0; l < layers; l++) {
            if (!lists[l]) lists[l] = calloc(7, sizeof(struct bt_op));
            for (int s = 0; s < 7; s++) lists[l][s] = matmul(&lm[l * 7 + s], x, y, act ? BT_ACT_Q8 : BT_ACT_F32);
            ln[l] = 7;
        }
        double t = time_lists(lists, ln, layers, 10, reps, y);
        printf("{\"bench\":\"layers\",\"mix\":\"llama3-8b q,k,v,o,gate,up,down\",\"format\":\"tq2_0\","
               "\"act\":\"%s\",\"layers\":%d,\"bytes\":%llu,\"seconds\":%.6g,\"gb_s\":%.1f,"
               "\"of_copy_bw\":%.3f,\"us_per_matmul\":%.2f}\n", act ? "q8" : "f32", layers,
               (unsigned long long)bytes, t, (double)bytes / t / 1e9,
               (double)bytes / t / 1e9 / copy_gbs, t / (7.0 * layers) * 1e6);
    }
    for (int l = 0; l < layers * 7; l++) B.be->buf_free(B.ctx, lm[l].w);
    for (int l = 0; l < layers; l++) free(lists[l]);
    free(lists);
    free(ln);
    free(lm);
    B.be->buf_free(B.ctx, x);
    B.be->buf_free(B.ctx, y);
    bk_unload(&B);
    bk_shutdown();
    return 0;
}
