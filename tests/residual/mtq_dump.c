/* mtq_dump.c - runs the C block quantizer on a small seeded matrix for several configurations
 * and writes inputs and outputs as raw files for ref_mtq.py (the numpy reference) to compare.
 * Usage: bt-test-mtq-dump <outdir> */
#include "mtq_algo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 8
#define COLS 512

static uint64_t st = 12345;
static double urand(void) {
    st ^= st >> 12; st ^= st << 25; st ^= st >> 27;
    return ((double)((st * 0x2545f4914f6cdd1dull) >> 11) + 0.5) / 9007199254740992.0;
}

static int wfile(const char *dir, const char *name, const void *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) { fprintf(stderr, "cannot write %s\n", path); if (f) fclose(f); return 1; }
    return fclose(f) != 0;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s outdir\n", argv[0]); return 2; }
    static float W[ROWS * COLS], D[COLS];
    for (int i = 0; i < ROWS * COLS; i++) { /* Student-t-ish: gaussian / sqrt(chi2/5) */
        double g = sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand()), c = 0;
        for (int k = 0; k < 5; k++) {
            double z = sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand());
            c += z * z;
        }
        W[i] = (float)(0.02 * g / sqrt(c / 5));
    }
    /* special rows: exact ties / repeated values, a zero block, already-ternary values */
    for (int c = 0; c < COLS; c++) W[1 * COLS + c] = (float)((c * 7) % 5 - 2) * 0.01f;
    for (int c = 0; c < 64; c++) W[2 * COLS + c] = 0.0f;
    for (int c = 0; c < COLS; c++) W[3 * COLS + c] = (float)((c * 13) % 3 - 1) * 0.03f;
    for (int c = 0; c < COLS; c++) D[c] = (float)(0.1 + 2.0 * urand());
    if (wfile(argv[1], "w.bin", W, sizeof(W)) || wfile(argv[1], "d.bin", D, sizeof(D))) return 1;
    struct bt_mtq_work *ws = bt_mtq_work_new();
    int8_t *t = malloc(8 * COLS);
    float *a = malloc(sizeof(float) * 8 * COLS);
    double *e = malloc(sizeof(double) * ROWS * COLS);
    static const int blocks[2] = {64, 256};
    for (int bi = 0; bi < 2; bi++)
        for (int N = 1; N <= 3; N++)
            for (int init = 0; init < 3; init++)
                for (int wt = 0; wt < 2; wt++) {
                    int B = blocks[bi], nb = COLS / B, ne = 0;
                    size_t nt = 0, na = 0;
                    int8_t *T = malloc((size_t)ROWS * COLS * N);
                    float *A = malloc(sizeof(float) * ROWS * nb * N);
                    for (int r = 0; r < ROWS; r++)
                        for (int b = 0; b < nb; b++) {
                            e[ne++] = bt_mtq_quantize_block(W + r * COLS + b * B, wt ? D + b * B : NULL,
                                                            B, N, 6, init, t, a, ws);
                            memcpy(T + nt, t, (size_t)N * B); nt += (size_t)N * B;
                            memcpy(A + na, a, sizeof(float) * N); na += N;
                        }
                    char name[64];
                    snprintf(name, sizeof(name), "t_%d_%d_%d_%d.bin", B, N, init, wt);
                    int bad = wfile(argv[1], name, T, nt);
                    snprintf(name, sizeof(name), "a_%d_%d_%d_%d.bin", B, N, init, wt);
                    bad |= wfile(argv[1], name, A, na * sizeof(float));
                    snprintf(name, sizeof(name), "e_%d_%d_%d_%d.bin", B, N, init, wt);
                    bad |= wfile(argv[1], name, e, (size_t)ne * sizeof(double));
                    free(T); free(A);
                    if (bad) return 1;
                }
    free(t); free(a); free(e);
    bt_mtq_work_free(ws);
    return 0;
}
