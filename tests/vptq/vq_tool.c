/* vq_tool.c - drives the vptq quantizer's algorithm (plugins/vptq/vq_kmeans.c, vq_quant.c) on
 * files for the numpy reference test_vq_ref.py, with the real core (host services, second-order
 * engine, k-means assignment on a backend plugin).
 *   vq_tool PLUGIN_DIR BACKEND kmeans DIR   pts.bin (n x d f32) w.bin (n f64) km.txt "n d K iters sample seed"
 *                                           -> C.bin (K x d f32)
 *   vq_tool PLUGIN_DIR BACKEND quant DIR    w.bin (rows x cols f32) g.bin (cols x cols f32, or absent)
 *                                           q.txt "rows cols v b1 b2 G pct v0 b0 norm iters sample seed damp"
 *                                           -> fmt.txt, data.bin, part<k>.bin, dec.bin (f32), herr.txt */
#include "../../core/src/hessian.h"
#include "bt/bt.h"
#include "bt_types.h"
#include "vq_algo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *rfile(const char *dir, const char *name, size_t *n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc((size_t)sz + 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) { free(b); b = NULL; }
    fclose(f);
    if (n) *n = (size_t)sz;
    return b;
}

static int wfile(const char *dir, const char *name, const void *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    int bad = fwrite(p, 1, n, f) != n;
    return fclose(f) || bad;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: vq_tool PLUGIN_DIR BACKEND kmeans|quant DIR\n"); return 2; }
    const char *dir = argv[4];
    bt_registry *reg = NULL;
    bt_err err;
    bt_err_clear(&err);
    if (bt_registry_new(&reg) || bt_registry_scan_dir(reg, argv[1]) <= 0) { fprintf(stderr, "no plugins in %s\n", argv[1]); return 1; }
    bt_compute_begin(reg, argv[2], NULL);
    const struct bt_host *h = bt_host();
    int rc = 1;
    char path[1024];
    if (!strcmp(argv[3], "kmeans")) {
        long long n, d, K, iters, sample, seed;
        snprintf(path, sizeof path, "%s/km.txt", dir);
        FILE *f = fopen(path, "r");
        if (!f || fscanf(f, "%lld %lld %lld %lld %lld %lld", &n, &d, &K, &iters, &sample, &seed) != 6) return 1;
        fclose(f);
        float *P = rfile(dir, "pts.bin", NULL), *C = malloc(sizeof(float) * (size_t)(K * d));
        double *w = rfile(dir, "w.bin", NULL);
        if (P && w && C && !vq_kmeans(h, P, w, n, d, K, (int)iters, sample, (uint64_t)seed, C, &err))
            rc = wfile(dir, "C.bin", C, sizeof(float) * (size_t)(K * d));
        free(P); free(C); free(w);
    } else {
        long long rows, cols, v, b1, b2, G, v0, b0, norm, iters, sample, seed;
        double pct, damp;
        snprintf(path, sizeof path, "%s/q.txt", dir);
        FILE *f = fopen(path, "r");
        if (!f || fscanf(f, "%lld %lld %lld %lld %lld %lld %lf %lld %lld %lld %lld %lld %lld %lf", &rows, &cols, &v,
                         &b1, &b2, &G, &pct, &v0, &b0, &norm, &iters, &sample, &seed, &damp) != 14) return 1;
        fclose(f);
        struct vq_opts o = {(uint32_t)v, (uint32_t)b1, (uint32_t)b2, (uint32_t)G, pct, (uint32_t)v0, (uint32_t)b0,
                            (int)norm, (int)iters, sample, (uint64_t)seed};
        float *W = rfile(dir, "w.bin", NULL), *Gm = rfile(dir, "g.bin", NULL);
        float *cw = NULL;
        bt_hessian *hs = NULL;
        if (Gm) {
            cw = malloc(sizeof(float) * (size_t)cols);
            for (long long j = 0; j < cols; j++) cw[j] = Gm[j * cols + j];
            if (damp >= 0 && bt_hessian_prepare(Gm, cols, damp, 1, &hs, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
        }
        struct bt_tfmt fmt;
        struct bt_vq_layout L;
        if (!W || !vq_plan_fmt(&o, rows, cols, cw != NULL, &fmt) || !bt_vq_layout(&fmt, rows, cols, &L)) {
            fprintf(stderr, "plan failed\n");
            return 1;
        }
        uint8_t *data = calloc(1, (size_t)(rows * L.R) + 1);
        void *parts[BT_MAX_PARTS] = {0};
        for (uint32_t k = 0; k < L.n_parts; k++) parts[k] = calloc(1, L.part_bytes[k]);
        double e2 = 0, he2 = 0;
        if (vq_quantize(h, &o, &fmt, "test", W, rows, cols, cw, hs, data, parts, &e2, &he2, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        float *dec = malloc(sizeof(float) * (size_t)(rows * cols));
        const void *pp[BT_MAX_PARTS] = {parts[0], parts[1], parts[2], parts[3]};
        bt_vq_to_f32_rows(&fmt, pp, data, rows, cols, 0, rows, dec);
        snprintf(path, sizeof path, "%s/fmt.txt", dir);
        f = fopen(path, "w");
        fprintf(f, "%u %u %u %u\n%.17g %.17g\n", fmt.planes, fmt.block, fmt.layout, L.n_parts, e2, he2);
        fclose(f);
        rc = wfile(dir, "data.bin", data, (size_t)(rows * L.R)) || wfile(dir, "dec.bin", dec, sizeof(float) * (size_t)(rows * cols));
        for (uint32_t k = 0; k < L.n_parts; k++) {
            char nm[32];
            snprintf(nm, sizeof nm, "part%u.bin", k);
            rc |= wfile(dir, nm, parts[k], L.part_bytes[k]);
            free(parts[k]);
        }
        free(W); free(Gm); free(cw); free(data); free(dec);
        bt_hessian_free(hs);
    }
    if (err.status) fprintf(stderr, "%s\n", err.msg);
    bt_compute_end();
    bt_registry_free(reg);
    return rc;
}
