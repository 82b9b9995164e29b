/* test_attention.c - the runtime's attention kernel (AVX2 blocked path when the CPU has it)
 * against the scalar reference and a double-precision computation on random Q/K/V: head counts,
 * GQA ratios, head sizes, lengths and positions; batch vs token-by-token and thread counts. */
#include "../bt_test.h"
#include "bt_model_int.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

enum { N_LAYER = 2, LAYER = 1, MAX_THR = 8 };

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (2.0 / 16777216.0) - 1.0);
}

/* a bare model with just what bt_attention touches */
static bt_model *fake_model(int nh, int nkvh, int hd, int n_ctx, float amp) {
    bt_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->hp.n_layer = N_LAYER;
    m->hp.n_head = nh;
    m->hp.n_head_kv = nkvh;
    m->hp.head_dim = hd;
    m->n_ctx = n_ctx;
    size_t nkv = (size_t)nkvh * hd, nq = (size_t)nh * hd, kvn = (size_t)N_LAYER * n_ctx * nkv;
    m->kcache = malloc(kvn * sizeof(float));
    m->vcache = malloc(kvn * sizeof(float));
    m->s.q = malloc((size_t)n_ctx * nq * sizeof(float));
    m->s.att = malloc((size_t)n_ctx * nq * sizeof(float));
    m->s.n_thr = MAX_THR;
    m->s.scores = malloc((size_t)MAX_THR * n_ctx * sizeof(float));
    if (!m->kcache || !m->vcache || !m->s.q || !m->s.att || !m->s.scores) return NULL;
    for (size_t i = 0; i < kvn; i++) m->kcache[i] = amp * frand();
    for (size_t i = 0; i < kvn; i++) m->vcache[i] = frand();
    for (size_t i = 0; i < (size_t)n_ctx * nq; i++) m->s.q[i] = amp * frand();
    return m;
}

static void fake_free(bt_model *m) {
    if (!m) return;
    free(m->kcache); free(m->vcache); free(m->s.q); free(m->s.att); free(m->s.scores);
    free(m);
}

/* out (ntok x nq) in double precision, straight from the definition */
static void att_double(const bt_model *m, int ntok, int pos0, double *out) {
    const struct bt_model_hparams *hp = &m->hp;
    int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv, nkv = hp->n_head_kv * hd;
    const float *kc = m->kcache + (size_t)LAYER * m->n_ctx * nkv;
    const float *vc = m->vcache + (size_t)LAYER * m->n_ctx * nkv;
    double *w = malloc((size_t)(pos0 + ntok) * sizeof(double));
    for (int t = 0; t < ntok; t++)
        for (int h = 0; h < hp->n_head; h++) {
            const float *q = m->s.q + ((size_t)t * hp->n_head + h) * hd;
            int np = pos0 + t + 1, g = h / group;
            double mx = -INFINITY, sum = 0;
            for (int p = 0; p < np; p++) {
                double s = 0;
                for (int d = 0; d < hd; d++) s += (double)q[d] * kc[(size_t)p * nkv + g * hd + d];
                w[p] = s / sqrt((double)hd);
                if (w[p] > mx) mx = w[p];
            }
            for (int p = 0; p < np; p++) sum += (w[p] = exp(w[p] - mx));
            double *o = out + ((size_t)t * hp->n_head + h) * hd;
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

/* one shape: fast vs reference vs double; batch (in uneven chunks) vs token by token; threads */
static void check_case(int nh, int nkvh, int hd, int ntok, int pos0, float amp) {
    int n_ctx = pos0 + ntok + 3;
    bt_model *m = fake_model(nh, nkvh, hd, n_ctx, amp);
    CHECK(m != NULL);
    if (!m) { fake_free(m); return; }
    size_t nq = (size_t)nh * hd, n = (size_t)ntok * nq;
    float *fast = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
    float *q = malloc(n * sizeof(float));
    double *dbl = malloc(n * sizeof(double));
    memcpy(q, m->s.q, n * sizeof(float));

    bt_threads_set(2);
    bt_attention(m, LAYER, ntok, pos0);
    memcpy(fast, m->s.att, n * sizeof(float));
    bt_attention_ref(m, LAYER, ntok, pos0);
    memcpy(ref, m->s.att, n * sizeof(float));
    att_double(m, ntok, pos0, dbl);
    /* float rounding of the scores grows with their size (~amp^2 sqrt(hd)) */
    double tol = 2e-6 * fmax(1.0, amp * amp / 4.0) * sqrt(hd / 64.0 > 1 ? hd / 64.0 : 1.0);
    double d_ref = max_diff_f(fast, ref, n), d_dbl = 0, d_rd = 0;
    for (size_t i = 0; i < n; i++) {
        d_dbl = fmax(d_dbl, fabs(fast[i] - dbl[i]));
        d_rd = fmax(d_rd, fabs(ref[i] - dbl[i]));
    }
    if (!(d_ref <= tol && d_dbl <= tol))
        fprintf(stderr, "case nh=%d nkv=%d hd=%d ntok=%d pos0=%d amp=%g: |fast-ref| %g "
                "|fast-f64| %g |ref-f64| %g\n", nh, nkvh, hd, ntok, pos0, amp, d_ref, d_dbl, d_rd);
    CHECK(d_ref <= tol);
    CHECK(d_dbl <= tol);

    /* one thread: bit-identical */
    bt_threads_set(1);
    bt_attention(m, LAYER, ntok, pos0);
    CHECK(memcmp(fast, m->s.att, n * sizeof(float)) == 0);
    bt_threads_set(2);

    /* token by token (what generation does): bit-identical to the batch */
    int same = 1;
    for (int t = 0; t < ntok; t++) {
        memcpy(m->s.q, q + t * nq, nq * sizeof(float));
        bt_attention(m, LAYER, 1, pos0 + t);
        same &= memcmp(fast + t * nq, m->s.att, nq * sizeof(float)) == 0;
    }
    CHECK(same);
    /* three uneven chunks */
    same = 1;
    for (int c0 = 0, len = ntok / 3 + 1; c0 < ntok; c0 += len, len = len * 2 - 1) {
        int c1 = c0 + len < ntok ? c0 + len : ntok;
        memcpy(m->s.q, q + c0 * nq, (size_t)(c1 - c0) * nq * sizeof(float));
        bt_attention(m, LAYER, c1 - c0, pos0 + c0);
        same &= memcmp(fast + c0 * nq, m->s.att, (size_t)(c1 - c0) * nq * sizeof(float)) == 0;
    }
    CHECK(same);
    free(fast); free(ref); free(q); free(dbl);
    fake_free(m);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* --bench: one layer of bt-small's attention (8 heads, 4 KV heads, 64): a 512-token prompt, and
 * 128 decode steps after a prefix of pos0 tokens; best of reps, ms per layer */
static void bench(int threads) {
    bt_threads_set(threads);
    bt_model *m = fake_model(8, 4, 64, 1200, 1.0f);
    if (!m) return;
    for (int f = 0; f < 2; f++) {
        void (*fn)(bt_model *, int, int, int) = f ? bt_attention : bt_attention_ref;
        double best_pp = 1e9, best_tg[2] = {1e9, 1e9};
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now_s();
            fn(m, LAYER, 512, 0);
            best_pp = fmin(best_pp, now_s() - t0);
            for (int c = 0; c < 2; c++) {
                t0 = now_s();
                for (int p = c * 1000; p < c * 1000 + 128; p++) fn(m, LAYER, 1, p);
                best_tg[c] = fmin(best_tg[c], (now_s() - t0) / 128);
            }
        }
        printf("%s threads=%d: pp512 %.3f ms/layer, tg (pos 0..127) %.2f us/layer/token, "
               "tg (pos 1000..1127) %.2f us/layer/token\n", f ? "fast" : "ref ", threads,
               best_pp * 1e3, best_tg[0] * 1e6, best_tg[1] * 1e6);
    }
    fake_free(m);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        bench(1);
        bench(2);
        return 0;
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
    TEST_DONE();
}
