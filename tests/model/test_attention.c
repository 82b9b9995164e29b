/* test_attention.c - BT_OP_ATTN of the CPU backends ("cpu" scalar reference, "cpu-avx2" blocked
 * kernel) against a double-precision computation on random Q/K/V: head counts, GQA ratios, head
 * sizes, lengths and positions; batch vs token-by-token and thread counts bit for bit. */
#include "../bt_test.h"
#include "bt/bt.h"

#include <math.h>
#include <stdlib.h>

#include <stdint.h>
#include <string.h>

enum { MAX_BE = 4 };

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (2.0 / 16777216.0) - 1.0);
}

/* one attention problem on the host: queries, one layer's K/V cache */
struct prob {
    int    nh, nkvh, hd, n_ctx;
    float *q, *kc, *vc; /* (n_ctx x nh*hd), (n_ctx x nkvh*hd) x 2 */
};

static int prob_new(struct prob *p, int nh, int nkvh, int hd, int n_ctx, float amp) {
    p->nh = nh; p->nkvh = nkvh; p->hd = hd; p->n_ctx = n_ctx;
    size_t nkv = (size_t)nkvh * hd, nq = (size_t)nh * hd;
    p->kc = malloc((size_t)n_ctx * nkv * sizeof(float));
    p->vc = malloc((size_t)n_ctx * nkv * sizeof(float));
    p->q = malloc((size_t)n_ctx * nq * sizeof(float));
    if (!p->kc || !p->vc || !p->q) return -1;
    for (size_t i = 0; i < (size_t)n_ctx * nkv; i++) p->kc[i] = amp * frand();
    for (size_t i = 0; i < (size_t)n_ctx * nkv; i++) p->vc[i] = frand();
    for (size_t i = 0; i < (size_t)n_ctx * nq; i++) p->q[i] = amp * frand();
    return 0;
}

static void prob_free(struct prob *p) { free(p->q); free(p->kc); free(p->vc); }

/* BT_OP_ATTN of ntok queries q (host) at pos0 on backend b; out (ntok x nq) */
static int attn_run(struct bt_backend *b, const struct prob *p, const float *q, int ntok, int pos0,
                    float *out) {
    bt_err err = {0};
    struct bt_tfmt f32 = {BT_TYPE_F32, 0, 0, 0};
    uint64_t nq = (uint64_t)p->nh * p->hd, nkv = (uint64_t)p->nkvh * p->hd;
    uint64_t kvb = (uint64_t)p->n_ctx * nkv * 4, qb = (uint64_t)ntok * nq * 4;
    bt_buf *bk = NULL, *bv = NULL, *bq = NULL, *bo = NULL;
    int rc = -1;
    if (bt_be_alloc(b, kvb, BT_BUF_KV, &bk, &err) || bt_be_alloc(b, kvb, BT_BUF_KV, &bv, &err) ||
        bt_be_alloc(b, qb, BT_BUF_ACT, &bq, &err) || bt_be_alloc(b, qb, BT_BUF_ACT, &bo, &err))
        goto done;
    if (bt_be_write(b, bk, 0, p->kc, kvb, &err) || bt_be_write(b, bv, 0, p->vc, kvb, &err) ||
        bt_be_write(b, bq, 0, q, qb, &err))
        goto done;
    struct bt_op op;
    memset(&op, 0, sizeof op);
    op.code = BT_OP_ATTN;
    op.dst = bt_view_of(bo, 0, f32, ntok, (int64_t)nq);
    op.src[0] = bt_view_of(bq, 0, f32, ntok, (int64_t)nq);
    op.src[1] = bt_view_of(bk, 0, f32, p->n_ctx, (int64_t)nkv);
    op.src[2] = bt_view_of(bv, 0, f32, p->n_ctx, (int64_t)nkv);
    op.n_head = p->nh;
    op.n_head_kv = p->nkvh;
    op.head_dim = p->hd;
    op.pos0 = pos0;
    op.scale = 1.0f / sqrtf((float)p->hd);
    if (bt_be_run(b, &op, 1, &err) || bt_be_read(b, bo, 0, out, qb, &err)) goto done;
    rc = 0;
done:
    if (rc) fprintf(stderr, "%s: %s\n", bt_backend_name(b), err.msg);
    bt_be_free(b, bk); bt_be_free(b, bv); bt_be_free(b, bq); bt_be_free(b, bo);
    return rc;
}

/* out (ntok x nq) in double precision, straight from the definition */
static void att_double(const struct prob *pr, int ntok, int pos0, double *out) {
    int hd = pr->hd, group = pr->nh / pr->nkvh, nkv = pr->nkvh * hd;
    const float *kc = pr->kc, *vc = pr->vc;
    double *w = malloc((size_t)(pos0 + ntok) * sizeof(double));
    for (int t = 0; t < ntok; t++)
        for (int h = 0; h < pr->nh; h++) {
            const float *q = pr->q + ((size_t)t * pr->nh + h) * hd;
            int np = pos0 + t + 1, g = h / group;
            double mx = -INFINITY, sum = 0;
            for (int p = 0; p < np; p++) {
                double s = 0;
                for (int d = 0; d < hd; d++) s += (double)q[d] * kc[(size_t)p * nkv + g * hd + d];
                w[p] = s / sqrt((double)hd);
                if (w[p] > mx) mx = w[p];
            }
            for (int p = 0; p < np; p++) sum += (w[p] = exp(w[p] - mx));
            double *o = out + ((size_t)t * pr->nh + h) * hd;
            for (int d = 0; d < hd; d++) {
                double a = 0;
                for (int p = 0; p < np; p++) a += w[p] * vc[(size_t)p * nkv + g * hd + d];
                o[d] = a / sum;
            }
        }
    free(w);
}

static double max_diff_f(const float *a, const float *b, size_t n) {
    double md = 0;
    for (size_t i = 0; i < n; i++) md = fmax(md, fabs((double)a[i] - b[i]));
    return isnan(md) ? INFINITY : md;
}

static struct bt_backend *g_be[MAX_BE]; /* g_be[0] = "cpu", the reference */
static int g_nbe;

/* one shape on every backend: vs the reference backend and a double computation; batch (in
 * uneven chunks) vs token by token and 1 vs 2 threads bit-identical on the CPU backends */
static void check_case(int nh, int nkvh, int hd, int ntok, int pos0, float amp) {
    struct prob p;
    int ok = prob_new(&p, nh, nkvh, hd, pos0 + ntok + 3, amp) == 0;
    CHECK(ok);
    if (!ok) { prob_free(&p); return; }
    size_t nq = (size_t)nh * hd, n = (size_t)ntok * nq;
    float *out = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
    float *part = malloc(n * sizeof(float));
    double *dbl = malloc(n * sizeof(double));
    att_double(&p, ntok, pos0, dbl);
    /* float rounding of the scores grows with their size (~amp^2 sqrt(hd)) */
    double tol = 2e-6 * fmax(1.0, amp * amp / 4.0) * sqrt(hd / 64.0 > 1 ? hd / 64.0 : 1.0);
    for (int bi = 0; bi < g_nbe; bi++) {
        struct bt_backend *b = g_be[bi];
        bt_threads_set(2);
        CHECK_EQ(attn_run(b, &p, p.q, ntok, pos0, out), 0);
        if (bi == 0) memcpy(ref, out, n * sizeof(float));
        double d_ref = max_diff_f(out, ref, n), d_dbl = 0;
        for (size_t i = 0; i < n; i++) d_dbl = fmax(d_dbl, fabs(out[i] - dbl[i]));
        if (!(d_ref <= tol && d_dbl <= tol))
            fprintf(stderr, "%s: nh=%d nkv=%d hd=%d ntok=%d pos0=%d amp=%g: |b-ref| %g |b-f64| %g\n",
                    bt_backend_name(b), nh, nkvh, hd, ntok, pos0, amp, d_ref, d_dbl);
        CHECK(d_ref <= tol);
        CHECK(d_dbl <= tol);
        /* one thread: bit-identical */
        bt_threads_set(1);
        CHECK_EQ(attn_run(b, &p, p.q, ntok, pos0, part), 0);
        CHECK(memcmp(out, part, n * sizeof(float)) == 0);
        bt_threads_set(2);
        /* token by token (what generation does): bit-identical to the batch */
        int same = 1;
        for (int t = 0; t < ntok; t++) {
            CHECK_EQ(attn_run(b, &p, p.q + t * nq, 1, pos0 + t, part), 0);
            same &= memcmp(out + t * nq, part, nq * sizeof(float)) == 0;
        }
        CHECK(same);
        /* three uneven chunks */
        same = 1;
        for (int c0 = 0, len = ntok / 3 + 1; c0 < ntok; c0 += len, len = len * 2 - 1) {
            int c1 = c0 + len < ntok ? c0 + len : ntok;
            CHECK_EQ(attn_run(b, &p, p.q + c0 * nq, c1 - c0, pos0 + c0, part), 0);
            same &= memcmp(out + c0 * nq, part, (size_t)(c1 - c0) * nq * sizeof(float)) == 0;
        }
        CHECK(same);
    }
    free(out); free(ref); free(part); free(dbl);
    prob_free(&p);
}

int main(int argc, char **argv) {
    (void)argc; (void)argv;
    bt_registry *reg = NULL;
    bt_err err = {0};
    CHECK_EQ(bt_registry_new(&reg), BT_OK);
    bt_registry_scan_default(reg, NULL, NULL);
    static const char *names[] = {"cpu", "cpu-avx2"};
    for (int i = 0; i < 2; i++) {
        struct bt_backend *b = NULL;
        bt_err_clear(&err);
        if (bt_backend_open(reg, names[i], NULL, &b, &err) == BT_OK) g_be[g_nbe++] = b;
        else if (i == 0) { fprintf(stderr, "cpu backend: %s\n", err.msg); return 1; }
        else printf("%s: skipped (%s)\n", names[i], err.msg);
    }
    /* heads, kv heads, head size: GQA 2/4/8, MHA, MQA; head sizes with a 16- and 8-wide tail,
     * and one that is not a multiple of 8 (scalar path) */
    static const int shapes[][3] = {{8, 4, 64}, {4, 4, 64}, {8, 1, 64}, {8, 2, 128},
                                    {6, 3, 72}, {16, 2, 32}, {2, 1, 8}, {4, 2, 12}};
    /* (ntok, pos0): decode at block edges, short and long prompts, prompts after a prefix */
    static const int lens[][2] = {{1, 0}, {1, 63}, {1, 64}, {1, 200}, {5, 0}, {37, 13},
                                  {130, 0}, {70, 64}, {97, 100}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
            check_case(shapes[s][0], shapes[s][1], shapes[s][2], lens[l][0], lens[l][1], 2.0f);
    /* peaked softmax: scores spread over hundreds (exp far below its range) */
    check_case(8, 4, 64, 150, 20, 8.0f);
    check_case(8, 2, 128, 66, 0, 12.0f);
    /* tiny scores: nearly uniform weights over a long context */
    check_case(8, 4, 64, 300, 211, 0.01f);
    for (int i = 0; i < g_nbe; i++) bt_backend_close(g_be[i]);
    bt_registry_free(reg);
    TEST_DONE();
}
