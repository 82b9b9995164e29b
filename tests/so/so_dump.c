/* so_dump.c - runs the second-order engine (bt_hessian_prepare + bt_mtq_so_quantize, one ternary
 * plane) on a small seeded problem and writes inputs and outputs as raw little-endian files for
 * test_so_ref.py (the numpy reference) to compare:
 *   w.bin      f32 rows x cols        weights (a few outlier columns)
 *   g.bin      f32 cols x cols        G = X^T X / ntok (X: correlated columns, outlier columns,
 *                                     one all-zero (dead) column), symmetric
 *   meta.txt   "rows cols ntok damp dead_col" then one line per run: "tag act block refit passes"
 *   perm_<act>.bin  i64 cols          processing position -> column of the prepared Hessian
 *   u_<act>.bin     f32 cols x cols   its U (upper Cholesky factor of H^-1, processing order)
 *   t_<tag>.bin i8  rows x cols       codes (N = 1: the layout of mtq_so.h is row-major codes)
 *   a_<tag>.bin f32 rows x cols/block block scales
 *   e_<tag>.bin f64 1                 herr reported by bt_mtq_so_quantize
 * Usage: bt-test-so-dump <outdir> */
#include "bt/bt.h"
#include "hessian.h"
#include "mtq_so.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 48
#define COLS 512
#define NTOK 2048
#define DAMP 0.01
#define DEAD 200 /* the column X never drives */
#define NFAC 8   /* shared factors that correlate X's columns */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) {
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return ((double)((rng * 0x2545f4914f6cdd1dull) >> 11) + 0.5) / 9007199254740992.0;
}
static double gauss(void) { return sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand()); }

static int wfile(const char *dir, const char *name, const void *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) { fprintf(stderr, "cannot write %s\n", path); if (f) fclose(f); return 1; }
    return fclose(f) != 0;
}

struct run { const char *tag; int act, block, refit, passes; };
static const struct run runs[] = {
    {"a0_b64_r0_p1", 0, 64, 0, 1},  {"a0_b64_r1_p1", 0, 64, 1, 1},
    {"a1_b64_r0_p1", 1, 64, 0, 1},  {"a1_b64_r1_p1", 1, 64, 1, 1},
    {"a1_b128_r0_p1", 1, 128, 0, 1}, {"a1_b128_r1_p2", 1, 128, 1, 2},
    {"a0_b128_r1_p2", 0, 128, 1, 2},
};

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s outdir\n", argv[0]); return 2; }
    const char *dir = argv[1];
    float *W = malloc(sizeof(float) * ROWS * COLS), *X = malloc(sizeof(float) * NTOK * COLS);
    float *Gf = malloc(sizeof(float) * COLS * COLS);
    double *G = calloc((size_t)COLS * COLS, sizeof(double));
    double amp[COLS], fac[NFAC], mix[COLS];
    if (!W || !X || !Gf || !G) return 1;
    for (int i = 0; i < ROWS * COLS; i++) W[i] = (float)(0.02 * gauss());
    static const int wout[] = {7, 130, 301, 444};
    for (int k = 0; k < 4; k++)
        for (int r = 0; r < ROWS; r++) W[r * COLS + wout[k]] *= 8.0f;
    for (int c = 0; c < COLS; c++) { amp[c] = 0.5 + 1.5 * urand(); mix[c] = 0.3 + 0.6 * urand(); }
    static const int xout[] = {3, 77, 260, 511};
    for (int k = 0; k < 4; k++) amp[xout[k]] *= 12.0;
    for (int t = 0; t < NTOK; t++) {
        for (int f = 0; f < NFAC; f++) fac[f] = gauss();
        double prev = 0;
        for (int c = 0; c < COLS; c++) {
            double z = gauss(), v = z + mix[c] * fac[c % NFAC] + 0.5 * prev; /* neighbours correlate */
            prev = z;
            X[(size_t)t * COLS + c] = c == DEAD ? 0.0f : (float)(amp[c] * v);
        }
    }
    if (bt_gram_accumulate(G, COLS, X, NTOK) != BT_OK) return 1;
    for (int i = 0; i < COLS; i++) /* the upper triangle is the result: mirror it */
        for (int j = 0; j < COLS; j++)
            Gf[i * COLS + j] = (float)((j >= i ? G[i * COLS + j] : G[j * COLS + i]) / NTOK);
    int bad = wfile(dir, "w.bin", W, sizeof(float) * ROWS * COLS) ||
              wfile(dir, "g.bin", Gf, sizeof(float) * COLS * COLS);
    char path[1024];
    snprintf(path, sizeof(path), "%s/meta.txt", dir);
    FILE *meta = fopen(path, "w");
    if (bad || !meta) return 1;
    fprintf(meta, "%d %d %d %.17g %d\n", ROWS, COLS, NTOK, DAMP, DEAD);
    bt_hessian *h[2] = {NULL, NULL};
    for (int act = 0; act < 2; act++) {
        bt_err err;
        bt_err_clear(&err);
        if (bt_hessian_prepare(Gf, COLS, DAMP, act, &h[act], &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
        char name[64];
        snprintf(name, sizeof(name), "perm_%d.bin", act);
        bad |= wfile(dir, name, h[act]->perm, sizeof(int64_t) * COLS);
        snprintf(name, sizeof(name), "u_%d.bin", act);
        bad |= wfile(dir, name, h[act]->U, sizeof(float) * COLS * COLS);
    }
    int8_t *t = malloc(ROWS * COLS);
    float *a = malloc(sizeof(float) * ROWS * COLS);
    for (size_t k = 0; k < sizeof(runs) / sizeof(runs[0]) && !bad; k++) {
        const struct run *r = &runs[k];
        struct bt_mtq_so_opts o = {.planes = 1, .block = r->block, .refit = r->refit, .passes = r->passes,
                                   .rounds = 6, .init = 0};
        bt_err err;
        bt_err_clear(&err);
        double herr = -1;
        if (bt_mtq_so_quantize(bt_host(), h[r->act], W, ROWS, COLS, &o, t, a, &herr, &err)) {
            fprintf(stderr, "%s: %s\n", r->tag, err.msg);
            return 1;
        }
        char name[64];
        snprintf(name, sizeof(name), "t_%s.bin", r->tag);
        bad |= wfile(dir, name, t, ROWS * COLS);
        snprintf(name, sizeof(name), "a_%s.bin", r->tag);
        bad |= wfile(dir, name, a, sizeof(float) * ROWS * (COLS / r->block));
        snprintf(name, sizeof(name), "e_%s.bin", r->tag);
        bad |= wfile(dir, name, &herr, sizeof(herr));
        fprintf(meta, "%s %d %d %d %d\n", r->tag, r->act, r->block, r->refit, r->passes);
    }
    bad |= fclose(meta) != 0;
    bt_hessian_free(h[0]);
    bt_hessian_free(h[1]);
    free(W); free(X); free(G); free(Gf); free(t); free(a);
    return bad;
}
