/* test_so_actorder.c - act order in the second-order engine leaves the quantized tensor in the
 * tensor's own column order:
 *  1. diagonal Hessian (no cross-column feedback): act order on and off give the same codes and
 *     scales, equal to plain round-to-nearest ternary with the block's optimal ternary scale
 *     (computed here independently); herr = sum H_jj (w - q)^2; the refit gives the per-block
 *     H-weighted least-squares scale;
 *  2. a correlated Hessian whose diagonal increases with the index: act order processes the
 *     columns last to first, and the result equals act order off on the column-reversed problem
 *     (same bits);
 *  3. a block-preserving random permutation of the columns (blocks shuffled, columns shuffled
 *     within blocks) of W and H, act order on: the result is the same permutation of the
 *     unpermuted result (same bits). */
#include "bt/bt.h"
#include "bt_test.h"
#include "bt_types.h"
#include "hessian.h"
#include "mtq_so.h"
#include "so_util.h"

#include <string.h>

#define DAMP 0.01

struct qres {
    int8_t *t;
    float  *a;
    double  herr;
};

static int quant(const bt_hessian *h, const float *W, int64_t rows, int64_t cols, int block, int refit,
                 int passes, struct qres *q) {
    struct bt_mtq_so_opts o = {.planes = 1, .block = block, .refit = refit, .passes = passes, .rounds = 6};
    bt_err err;
    bt_err_clear(&err);
    q->t = malloc((size_t)(rows * cols));
    q->a = malloc(sizeof(float) * (size_t)(rows * (cols / block)));
    q->herr = -1;
    if (!q->t || !q->a) return 1;
    if (bt_mtq_so_quantize(bt_host(), h, W, rows, cols, &o, q->t, q->a, &q->herr, &err)) {
        fprintf(stderr, "quantize: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static void qfree(struct qres *q) { free(q->t); free(q->a); }

static bt_hessian *prep(const float *G, int64_t n, int act) {
    bt_err err;
    bt_err_clear(&err);
    bt_hessian *h = NULL;
    if (bt_hessian_prepare(G, n, DAMP, act, &h, &err)) fprintf(stderr, "prepare: %s\n", err.msg);
    return h;
}

static int cmp_desc(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? 1 : a > b ? -1 : 0;
}

static float fp16r(double x) { return bt_fp16_to_f32(bt_f32_to_fp16((float)x)); }

/* optimal single-plane ternary scale of v[0..n): top-k |v| maximising (sum)^2 / k, fp16 */
static float ternary_scale(const float *v, int n) {
    double s[256], S = 0, best = 0, sb = 0;
    for (int i = 0; i < n; i++) s[i] = fabs((double)v[i]);
    qsort(s, (size_t)n, sizeof(double), cmp_desc);
    for (int k = 0; k < n; k++) {
        S += s[k];
        if (S * S / (k + 1) > best) { best = S * S / (k + 1); sb = S / (k + 1); }
    }
    return fp16r(sb);
}

static int code_of(float w, float s) {
    if (s == 0.0f) return 0;
    float x = w / s;
    return x >= 0.5f ? 1 : x <= -0.5f ? -1 : 0;
}

/* ---- 1. diagonal Hessian ---------------------------------------------------------------- */
static void test_diagonal(void) {
    const int64_t rows = 70, n = 512, dead = 300;
    uint64_t seed = 77;
    float *W = so_weights(rows, n, 11), *G = calloc((size_t)(n * n), sizeof(float));
    float *Wz = malloc(sizeof(float) * (size_t)(rows * n));
    double *hd = malloc(sizeof(double) * (size_t)n);
    CHECK(W && G && Wz && hd);
    if (!W || !G || !Wz || !hd) return;
    for (int64_t r = 0; r < rows; r += 7) /* structured rows: large values on a period-5 pattern */
        for (int64_t c = 0; c < n; c++) W[r * n + c] += (float)(0.05 * ((c * 3) % 5 - 2));
    for (int64_t c = 0; c < n; c++) G[c * n + c] = c == dead ? 0.0f : (float)(0.2 + so_urand(&seed));
    memcpy(Wz, W, sizeof(float) * (size_t)(rows * n));
    for (int64_t r = 0; r < rows; r++) Wz[r * n + dead] = 0.0f;
    bt_hessian *h[2] = {prep(G, n, 0), prep(G, n, 1)};
    CHECK(h[0] && h[1]);
    if (!h[0] || !h[1]) return;
    int ident = 1, desc = 1, diagU = 1;
    for (int64_t a = 0; a < n; a++) {
        ident &= h[0]->perm[a] == a;
        if (a) desc &= h[1]->H[h[1]->perm[a - 1] * (n + 1)] > h[1]->H[h[1]->perm[a] * (n + 1)];
        for (int64_t b = 0; b < n; b++) diagU &= a == b || (h[0]->U[a * n + b] == 0 && h[1]->U[a * n + b] == 0);
    }
    CHECK(ident);
    CHECK(desc);
    CHECK(diagU);
    CHECK(h[1]->dead[dead] && h[1]->perm[n - 1] != n - 1);
    for (int64_t c = 0; c < n; c++) hd[c] = h[0]->H[c * (n + 1)];
    static const int blocks[2] = {64, 128};
    for (int bi = 0; bi < 2; bi++) {
        int B = blocks[bi];
        int64_t nb = n / B;
        struct qres q[2], qr[2];
        if (quant(h[0], W, rows, n, B, 0, 1, &q[0]) || quant(h[1], W, rows, n, B, 0, 1, &q[1]) ||
            quant(h[0], W, rows, n, B, 1, 1, &qr[0]) || quant(h[1], W, rows, n, B, 1, 1, &qr[1])) {
            CHECK(0);
            return;
        }
        CHECK(memcmp(q[0].t, q[1].t, (size_t)(rows * n)) == 0);
        CHECK(memcmp(q[0].a, q[1].a, sizeof(float) * (size_t)(rows * nb)) == 0);
        CHECK_NEAR(q[0].herr, q[1].herr, 1e-12 * q[0].herr);
        CHECK(memcmp(qr[0].t, qr[1].t, (size_t)(rows * n)) == 0);
        CHECK(memcmp(qr[0].a, qr[1].a, sizeof(float) * (size_t)(rows * nb)) == 0);
        /* plain round to nearest with the optimal ternary scale of the untouched block */
        int bad_s = 0, bad_t = 0, bad_r = 0, refit_rows = 0;
        double e = 0, er = 0;
        for (int64_t r = 0; r < rows; r++) {
            int changed = 0;
            for (int64_t b = 0; b < nb; b++) {
                const float *w = Wz + r * n + b * B;
                float s = ternary_scale(w, B);
                bad_s += q[1].a[r * nb + b] != s;
                double num = 0, den = 0;
                for (int k = 0; k < B; k++) {
                    int64_t c = b * B + k;
                    int code = code_of(w[k], s);
                    bad_t += q[1].t[r * n + c] != code;
                    double d = (double)w[k] - (double)s * code;
                    e += hd[c] * d * d;
                    int rc = qr[1].t[r * n + c];
                    double rq = (double)qr[1].a[r * nb + b] * rc;
                    er += hd[c] * ((double)w[k] - rq) * ((double)w[k] - rq);
                    num += hd[c] * w[k] * rc;
                    den += hd[c] * rc * rc;
                }
                double xs = den > 0 ? num / den : 0; /* H-weighted least-squares scale */
                float ar = qr[1].a[r * nb + b];
                changed |= ar != q[1].a[r * nb + b];
                bad_r += fabs(ar - xs) > 1.0001 * ldexp(fabs(xs), -11) && ar != q[1].a[r * nb + b];
            }
            refit_rows += changed;
        }
        CHECK_EQ(bad_s, 0);
        CHECK_EQ(bad_t, 0);
        CHECK_EQ(bad_r, 0); /* refit scales are the fp16 nearest the least-squares scale */
        CHECK(refit_rows > rows * 9 / 10);
        CHECK(memcmp(q[1].t, qr[1].t, (size_t)(rows * n)) == 0); /* one pass: codes unchanged */
        CHECK_NEAR(q[1].herr, e, 1e-5 * e);
        CHECK_NEAR(qr[1].herr, er, 1e-5 * er);
        CHECK(qr[1].herr < q[1].herr);
        fprintf(stderr, "diagonal H, block %d: herr %.6g (direct %.6g), refit %.6g (direct %.6g), %d/%lld rows refit\n",
                B, q[1].herr, e, qr[1].herr, er, refit_rows, (long long)rows);
        qfree(&q[0]); qfree(&q[1]); qfree(&qr[0]); qfree(&qr[1]);
    }
    bt_hessian_free(h[0]);
    bt_hessian_free(h[1]);
    free(W); free(G); free(Wz); free(hd);
}

/* ---- 2./3. W, G under a column permutation sigma (new column i = old column sigma[i]) ----- */
static void permute(const float *W, const float *G, int64_t rows, int64_t n, const int64_t *sigma, float *Wp,
                    float *Gp) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) Wp[r * n + i] = W[r * n + sigma[i]];
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) Gp[i * n + j] = G[sigma[i] * n + sigma[j]];
}

/* the permuted run (p) equals the base run (b) moved by sigma / its block map beta; exact:
 * bitwise, else codes equal and scales within one fp16 step, herr 1e-6 relative */
static void check_permuted(const struct qres *b, const struct qres *p, int64_t rows, int64_t n, int B,
                           const int64_t *sigma, int exact, const char *what) {
    int64_t nb = n / B, bad_t = 0, bad_a = 0;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < n; i++) bad_t += p->t[r * n + i] != b->t[r * n + sigma[i]];
        for (int64_t g = 0; g < nb; g++) {
            float x = p->a[r * nb + g], y = b->a[r * nb + sigma[g * B] / B];
            bad_a += exact ? x != y : fabsf(x - y) > ldexpf(fabsf(y), -10);
        }
    }
    fprintf(stderr, "%s: %lld codes, %lld scales differ; herr %.9g vs %.9g\n", what, (long long)bad_t,
            (long long)bad_a, p->herr, b->herr);
    CHECK_EQ(bad_t, 0);
    CHECK_EQ(bad_a, 0);
    if (exact)
        CHECK(p->herr == b->herr);
    else
        CHECK_NEAR(p->herr, b->herr, 1e-6 * b->herr);
}

static void test_reversed(void) {
    const int64_t rows = 70, n = 384;
    float *W = so_weights(rows, n, 5), *G = so_gram(n, 1024, -1, 6);
    float *Wr = malloc(sizeof(float) * (size_t)(rows * n)), *Gr = malloc(sizeof(float) * (size_t)(n * n));
    double *D = malloc(sizeof(double) * (size_t)n);
    int64_t *rev = malloc(sizeof(int64_t) * (size_t)n);
    CHECK(W && G && Wr && Gr && D && rev);
    if (!W || !G || !Wr || !Gr || !D || !rev) return;
    /* rescale so that diag H = 1 + c/100: increasing, so act order runs last to first */
    for (int64_t c = 0; c < n; c++) { D[c] = sqrt((1.0 + 0.01 * c) / G[c * n + c]); rev[c] = n - 1 - c; }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) G[i * n + j] = (float)(G[i * n + j] * (D[i] * D[j]));
    permute(W, G, rows, n, rev, Wr, Gr);
    bt_hessian *h1 = prep(G, n, 1), *h0 = prep(Gr, n, 0);
    CHECK(h1 && h0);
    if (!h1 || !h0) return;
    int reversed = 1;
    for (int64_t a = 0; a < n; a++) reversed &= h1->perm[a] == n - 1 - a;
    CHECK(reversed);
    CHECK(memcmp(h1->U, h0->U, sizeof(float) * (size_t)(n * n)) == 0);
    static const int blocks[2] = {64, 128};
    for (int bi = 0; bi < 2; bi++)
        for (int refit = 0; refit < 2; refit++) {
            struct qres q1, q0;
            if (quant(h1, W, rows, n, blocks[bi], refit, 1, &q1) || quant(h0, Wr, rows, n, blocks[bi], refit, 1, &q0)) {
                CHECK(0);
                return;
            }
            char what[96];
            snprintf(what, sizeof(what), "reversed diag, block %d, refit %d: act order vs reversed problem",
                     blocks[bi], refit);
            /* the refit solves the same system with its unknowns in reverse order: not bitwise */
            check_permuted(&q0, &q1, rows, n, blocks[bi], rev, !refit, what);
            qfree(&q1); qfree(&q0);
        }
    bt_hessian_free(h1);
    bt_hessian_free(h0);
    free(W); free(G); free(Wr); free(Gr); free(D); free(rev);
}

static void test_block_permutation(void) {
    const int64_t rows = 100, n = 512, dead = 333;
    const int B = 64;
    const int64_t nb = n / B;
    uint64_t seed = 99;
    float *W = so_weights(rows, n, 21), *G = so_gram(n, 1024, dead, 22);
    float *Wp = malloc(sizeof(float) * (size_t)(rows * n)), *Gp = malloc(sizeof(float) * (size_t)(n * n));
    int64_t *sigma = malloc(sizeof(int64_t) * (size_t)n), beta[64], inner[64];
    CHECK(W && G && Wp && Gp && sigma);
    if (!W || !G || !Wp || !Gp || !sigma) return;
    for (int64_t g = 0; g < nb; g++) beta[g] = g;
    for (int64_t g = nb - 1; g > 0; g--) { int64_t k = (int64_t)(so_urand(&seed) * (g + 1)); int64_t x = beta[g]; beta[g] = beta[k]; beta[k] = x; }
    for (int64_t g = 0; g < nb; g++) {
        for (int k = 0; k < B; k++) inner[k] = k;
        for (int k = B - 1; k > 0; k--) { int64_t m = (int64_t)(so_urand(&seed) * (k + 1)); int64_t x = inner[k]; inner[k] = inner[m]; inner[m] = x; }
        for (int k = 0; k < B; k++) sigma[g * B + k] = beta[g] * B + inner[k];
    }
    permute(W, G, rows, n, sigma, Wp, Gp);
    bt_hessian *h = prep(G, n, 1), *hp = prep(Gp, n, 1);
    CHECK(h && hp);
    if (!h || !hp) return;
    int same_order = 1, distinct = 1;
    for (int64_t a = 0; a < n; a++) {
        same_order &= sigma[hp->perm[a]] == h->perm[a];
        if (a) distinct &= h->H[h->perm[a - 1] * (n + 1)] != h->H[h->perm[a] * (n + 1)];
    }
    CHECK(distinct); /* no act-order ties, so both orders are the same sequence of columns */
    CHECK(same_order);
    CHECK(memcmp(h->U, hp->U, sizeof(float) * (size_t)(n * n)) == 0);
    for (int refit = 0; refit < 2; refit++) {
        struct qres q, qp;
        if (quant(h, W, rows, n, B, refit, 1, &q) || quant(hp, Wp, rows, n, B, refit, 1, &qp)) {
            CHECK(0);
            return;
        }
        char what[96];
        snprintf(what, sizeof(what), "block-preserving permutation, refit %d", refit);
        check_permuted(&q, &qp, rows, n, B, sigma, !refit, what);
        qfree(&q); qfree(&qp);
    }
    bt_hessian_free(h);
    bt_hessian_free(hp);
    free(W); free(G); free(Wp); free(Gp); free(sigma);
}

int main(void) {
    bt_threads_set(2);
    test_diagonal();
    test_reversed();
    test_block_permutation();
    TEST_DONE();
}
