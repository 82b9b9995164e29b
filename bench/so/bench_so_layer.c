/* bench_so_layer.c - speed of the second-order (GPTQ-style) path on one Llama-3-8B-shaped layer:
 * q 4096x4096, k 1024x4096, v 1024x4096 (one input), o 4096x4096, gate 14336x4096 and up
 * 14336x4096 (one input), down 4096x14336. For each distinct input it times the Gram
 * accumulation of random activations (bt_gram_accumulate; Gaussian tokens with 8 shared factors,
 * neighbour-correlated columns and x12 outlier columns), bt_hessian_prepare (damp 0.01, act
 * order), then bt_mtq_so_quantize (one ternary plane, block 256, refit) of every linear on that
 * input, for each requested pass count. Weights are Gaussian (sd 0.02). Prints one JSON object
 * (wall seconds, peak RSS, threads). Not a test.
 * Usage: bt-bench-so [--threads N] [--passes P] [--scale S] [--tokens T] [--vq V:K]
 *   --passes P  time only P passes (default: 1 and 2); --scale S  shapes times S (multiples of
 *   256; 0.25 for a quick run); --tokens T  calibration tokens (default 8192);
 *   --vq V:K    time the vptq quantizer instead (vectors of V, K centroids, Hessian-weighted
 *               k-means of 20 iterations on at most 262144 vectors, column loop; the k-means
 *               assignment on the cpu-avx2 backend, else cpu, from the build's plugin folder) */
#include "bt/bt.h"
#include "hessian.h"
#include "mtq_so.h"
#include "vq_algo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define TOK_CHUNK 1024 /* activations generated and accumulated this many tokens at a time */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) {
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return ((double)((rng * 0x2545f4914f6cdd1dull) >> 11) + 0.5) / 9007199254740992.0;
}
static void gauss2(double *a, double *b) {
    double u = urand(), v = urand(), r = sqrt(-2.0 * log(u));
    *a = r * cos(6.283185307179586 * v);
    *b = r * sin(6.283185307179586 * v);
}

struct linear { const char *name; int64_t rows; };
struct input {
    const char   *name;
    int64_t       cols;
    struct linear lin[3];
    int           nlin;
};

static void die(const char *what) {
    fprintf(stderr, "bt-bench-so: %s\n", what);
    exit(1);
}

/* G (n x n f32, symmetric) = X^T X / ntok of random activations; *secs gets the time spent in
 * bt_gram_accumulate alone (generation excluded) */
static float *gram(int64_t n, int64_t ntok, double *secs) {
    double *Gd = calloc((size_t)(n * n), sizeof(double)), *amp = malloc(sizeof(double) * (size_t)n);
    float *X = malloc(sizeof(float) * (size_t)(n * TOK_CHUNK));
    if (!Gd || !amp || !X) die("out of memory (gram)");
    for (int64_t c = 0; c < n; c++) amp[c] = (0.5 + 1.5 * urand()) * (c % 397 == 11 ? 12.0 : 1.0);
    *secs = 0;
    for (int64_t t0 = 0; t0 < ntok; t0 += TOK_CHUNK) {
        int64_t nt = ntok - t0 < TOK_CHUNK ? ntok - t0 : TOK_CHUNK;
        for (int64_t t = 0; t < nt; t++) {
            double fac[8], prev = 0, z[2];
            for (int f = 0; f < 8; f += 2) gauss2(&fac[f], &fac[f + 1]);
            for (int64_t c = 0; c < n; c++) {
                if (!(c & 1)) gauss2(&z[0], &z[1]);
                double zz = z[c & 1];
                X[t * n + c] = (float)(amp[c] * (zz + 0.6 * fac[c % 8] + 0.5 * prev));
                prev = zz;
            }
        }
        double s = now_s();
        if (bt_gram_accumulate(Gd, n, X, nt) != BT_OK) die("gram accumulation failed");
        *secs += now_s() - s;
    }
    free(X);
    float *G = malloc(sizeof(float) * (size_t)(n * n));
    if (!G) die("out of memory (G)");
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            G[i * n + j] = (float)((j >= i ? Gd[i * n + j] : Gd[j * n + i]) / (double)ntok);
    free(Gd);
    free(amp);
    return G;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

static int64_t scaled(int64_t x, double s) {
    int64_t v = (int64_t)llround(x * s / 256.0) * 256;
    return v < 256 ? 256 : v;
}

int main(int argc, char **argv) {
    int threads = 0, only_passes = 0, npass_vq = 0;
    double scale = 1.0;
    int64_t ntok = 8192;
    int vq_v = 0, vq_k = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--passes") && i + 1 < argc) only_passes = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--scale") && i + 1 < argc) scale = atof(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) ntok = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--vq") && i + 1 < argc && sscanf(argv[++i], "%d:%d", &vq_v, &vq_k) == 2) continue;
        else {
            fprintf(stderr, "usage: %s [--threads N] [--passes P] [--scale S] [--tokens T] [--vq V:K]\n", argv[0]);
            return 2;
        }
    }
    if (!(scale > 0) || ntok < 1 || only_passes < 0) die("bad option value");
    bt_threads_set(threads);
    bt_registry *reg = NULL;
    struct vq_opts vo = {(uint32_t)vq_v, 0, 0, 1, 0.0, 4, 10, 1, 20, 262144, 1};
    if (vq_v) {
        while ((1 << vo.b1) < vq_k) vo.b1++;
        if (bt_registry_new(&reg) || bt_registry_scan_dir(reg, BT_BENCH_PLUGIN_DIR) <= 0) die("no plugins");
        bt_compute_begin(reg, "auto", NULL);
        npass_vq = 1;
    }
    int64_t d = scaled(4096, scale), kv = scaled(1024, scale), ff = scaled(14336, scale);
    struct input in[4] = {
        {"attn_in", d, {{"q", d}, {"k", kv}, {"v", kv}}, 3},
        {"o_in", d, {{"o", d}}, 1},
        {"mlp_in", d, {{"gate", ff}, {"up", ff}}, 2},
        {"down_in", ff, {{"down", d}}, 1},
    };
    int pass_list[2] = {1, 2}, npass = 2;
    if (only_passes || npass_vq) { pass_list[0] = only_passes ? only_passes : 1; npass = 1; }
    const double damp = 0.01;
    const int act_order = 1, block = 256;
    double t_gram[4], t_prep[4], t_q[4][3][2], herr[4][3][2], t_all0 = now_s();
    for (int ii = 0; ii < 4; ii++) {
        struct input *x = &in[ii];
        float *G = gram(x->cols, ntok, &t_gram[ii]);
        bt_err err;
        bt_err_clear(&err);
        bt_hessian *h = NULL;
        double s = now_s();
        if (bt_hessian_prepare(G, x->cols, damp, act_order, &h, &err)) die(err.msg);
        t_prep[ii] = now_s() - s;
        free(G);
        for (int li = 0; li < x->nlin; li++) {
            int64_t rows = x->lin[li].rows, cols = x->cols;
            float *W = malloc(sizeof(float) * (size_t)(rows * cols));
            int8_t *t = malloc((size_t)(rows * cols));
            float *a = malloc(sizeof(float) * (size_t)(rows * (cols / block)));
            if (!W || !t || !a) die("out of memory (weights)");
            for (int64_t k = 0; k < rows * cols; k += 2) {
                double g0, g1;
                gauss2(&g0, &g1);
                W[k] = (float)(0.02 * g0);
                if (k + 1 < rows * cols) W[k + 1] = (float)(0.02 * g1);
            }
            for (int pi = 0; pi < npass; pi++) {
                struct bt_mtq_so_opts o = {.planes = 1, .block = block, .refit = 1, .passes = pass_list[pi],
                                           .rounds = 6, .init = 0};
                s = now_s();
                if (vq_v) {
                    struct bt_tfmt f;
                    struct bt_vq_layout L;
                    float *cw = malloc(sizeof(float) * (size_t)cols);
                    for (int64_t j = 0; j < cols; j++) cw[j] = 1.0f + (float)(j % 7);
                    if (!vq_plan_fmt(&vo, rows, cols, 1, &f) || !bt_vq_layout(&f, rows, cols, &L)) die("vq plan");
                    uint8_t *dst = malloc((size_t)(rows * L.R) + 1);
                    void *parts[BT_MAX_PARTS] = {0};
                    for (uint32_t k = 0; k < L.n_parts; k++) parts[k] = malloc(L.part_bytes[k]);
                    double e2;
                    if (vq_quantize(bt_host(), &vo, &f, x->lin[li].name, W, rows, cols, cw, h, dst, parts, &e2,
                                    &herr[ii][li][pi], &err)) die(err.msg);
                    for (uint32_t k = 0; k < L.n_parts; k++) free(parts[k]);
                    free(dst);
                    free(cw);
                } else if (bt_mtq_so_quantize(bt_host(), h, W, rows, cols, &o, t, a, &herr[ii][li][pi], &err)) {
                    die(err.msg);
                }
                t_q[ii][li][pi] = now_s() - s;
                fprintf(stderr, "%s %lldx%lld passes %d: %.2f s\n", x->lin[li].name, (long long)rows,
                        (long long)cols, pass_list[pi], t_q[ii][li][pi]);
            }
            free(W); free(t); free(a);
        }
        bt_hessian_free(h);
        fprintf(stderr, "%s (%lld): gram %.2f s, prepare %.2f s\n", x->name, (long long)x->cols, t_gram[ii], t_prep[ii]);
    }
    double t_all = now_s() - t_all0, g_sum = 0, p_sum = 0;
    for (int ii = 0; ii < 4; ii++) { g_sum += t_gram[ii]; p_sum += t_prep[ii]; }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
                 1e-6 * ru.ru_stime.tv_usec;
    printf("{\n  \"bench\": \"so_layer\",\n  \"shape\": \"llama-3-8b layer x %.3g\",\n", scale);
    printf("  \"threads\": %d,\n  \"tokens\": %lld,\n  \"damp\": %g,\n  \"act_order\": %d,\n", bt_threads_get(),
           (long long)ntok, damp, act_order);
    if (vq_v) printf("  \"quantizer\": \"vptq v%d k%d, kmeans 20 iters, sample 262144\",\n", vq_v, vq_k);
    else printf("  \"planes\": 1,\n  \"block\": %d,\n  \"refit\": 1,\n", block);
    printf("  \"gram_s\": {");
    for (int ii = 0; ii < 4; ii++) printf("%s\"%s\": %.3f", ii ? ", " : "", in[ii].name, t_gram[ii]);
    printf(", \"total\": %.3f},\n  \"prepare_s\": {", g_sum);
    for (int ii = 0; ii < 4; ii++)
        printf("%s\"%s\": %.3f", ii ? ", " : "", in[ii].name, t_prep[ii]);
    printf(", \"total\": %.3f},\n  \"quantize_s\": {\n", p_sum);
    for (int pi = 0; pi < npass; pi++) {
        double qs = 0;
        printf("    \"passes_%d\": {", pass_list[pi]);
        int first = 1;
        for (int ii = 0; ii < 4; ii++)
            for (int li = 0; li < in[ii].nlin; li++) {
                printf("%s\"%s\": %.3f", first ? "" : ", ", in[ii].lin[li].name, t_q[ii][li][pi]);
                qs += t_q[ii][li][pi];
                first = 0;
            }
        printf(", \"total\": %.3f}%s\n", qs, pi + 1 < npass ? "," : "");
    }
    printf("  },\n  \"herr\": {\n");
    for (int pi = 0; pi < npass; pi++) {
        printf("    \"passes_%d\": {", pass_list[pi]);
        int first = 1;
        for (int ii = 0; ii < 4; ii++)
            for (int li = 0; li < in[ii].nlin; li++) {
                printf("%s\"%s\": %.6g", first ? "" : ", ", in[ii].lin[li].name, herr[ii][li][pi]);
                first = 0;
            }
        printf("}%s\n", pi + 1 < npass ? "," : "");
    }
    printf("  },\n  \"layer_s\": {");
    for (int pi = 0; pi < npass; pi++) {
        double qs = 0;
        for (int ii = 0; ii < 4; ii++)
            for (int li = 0; li < in[ii].nlin; li++) qs += t_q[ii][li][pi];
        printf("%s\"passes_%d\": %.3f", pi ? ", " : "", pass_list[pi], g_sum + p_sum + qs);
    }
    printf("},\n  \"wall_s\": %.3f,\n  \"cpu_s\": %.3f,\n  \"peak_rss_mb\": %.1f\n}\n", t_all, cpu, peak_rss_mb());
    if (reg) { bt_compute_end(); bt_registry_free(reg); }
    return 0;
}
