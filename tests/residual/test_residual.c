/* test_residual.c - the residual quantizer: exact ternary step vs brute force, monotone refit,
 * plugin (loaded with dlopen through a test host): plan rules, Gaussian quality targets,
 * identical bytes for 1 and 4 threads, TQ2_0/TQ1_0 output, bad input, decide / error_curve /
 * want.planes / col_weight. Usage: test_residual <so> */
#include "bt/bt_plugin.h"
#include "bt_test.h"
#include "bt_types.h"
#include "mtq_algo.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>

struct bt_optset { const struct bt_option *table; const char *kv[16][2]; int n; };

static int g_threads = 1;
static void h_log(int level, const char *fmt, ...) { (void)level; (void)fmt; }
static bt_status h_set_error(bt_err *e, bt_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    e->status = st;
    return st;
}
static void *h_alloc(size_t n) { return aligned_alloc(64, (n + 63) / 64 * 64); }
static void h_free(void *p) { free(p); }
struct pf { int64_t n, grain, next; bt_range_fn fn; void *arg; pthread_mutex_t mu; };
static void *pf_worker(void *x) {
    struct pf *p = x;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int64_t i0 = p->next;
        p->next += p->grain;
        pthread_mutex_unlock(&p->mu);
        if (i0 >= p->n) return NULL;
        p->fn(p->arg, i0, i0 + p->grain < p->n ? i0 + p->grain : p->n, 0);
    }
}
static void h_parallel_for(int64_t n, int64_t grain, bt_range_fn fn, void *arg) {
    struct pf p = {n, grain > 0 ? grain : 1, 0, fn, arg, PTHREAD_MUTEX_INITIALIZER};
    pthread_t th[16];
    for (int i = 0; i < g_threads; i++) pthread_create(&th[i], NULL, pf_worker, &p);
    for (int i = 0; i < g_threads; i++) pthread_join(th[i], NULL);
}
static int h_n_threads(void) { return g_threads; }
static const char *h_opt_str(const bt_optset *o, const char *name) {
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->kv[i][0], name)) return o->kv[i][1];
    for (const struct bt_option *t = o->table; t->name; t++)
        if (!strcmp(t->name, name)) return t->def;
    return NULL;
}
static int64_t h_opt_int(const bt_optset *o, const char *n) { const char *s = h_opt_str(o, n); return s ? atoll(s) : 0; }
static double h_opt_float(const bt_optset *o, const char *n) { const char *s = h_opt_str(o, n); return s ? atof(s) : 0; }
static const struct bt_host host = {
    BT_ABI_VERSION, sizeof(struct bt_host), "test", h_log, h_set_error, h_alloc, h_free,
    h_parallel_for, h_n_threads, h_opt_str, h_opt_int, h_opt_float, bt_fmt_row_bytes, bt_to_f32,
    NULL, NULL, NULL, /* no second-order engine: tests/so covers it with the core's host */
    bt_format_get, bt_format_by_name, NULL /* kmeans_assign */,
};

static uint64_t rs = 88172645463325252ull;
static double urand(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return ((rs >> 11) + 0.5) / 9007199254740992.0; }
static float gauss(void) { return (float)(sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand())); }

static const struct bt_plugin *plug;
static const struct bt_quantizer_i *qi;

/* open an instance with "k=v" options (NULL-terminated); returns ctx or NULL (err filled) */
static void *q_open(bt_optset *o, bt_err *err, const char **kv) {
    memset(o, 0, sizeof(*o));
    o->table = plug->options;
    for (; kv && *kv; kv += 2, o->n++) { o->kv[o->n][0] = kv[0]; o->kv[o->n][1] = kv[1]; }
    void *ctx = calloc(1, plug->ctx_size);
    if (qi->open(ctx, &host, o, err) != BT_OK) { free(ctx); return NULL; }
    return ctx;
}

static const float *g_colw;  /* col_weight handed to q_run's tensors (NULL = none) */
static uint32_t g_wplanes;   /* want.planes of q_run's tensors (0 = the bases option) */

/* quantize W (rows x cols) with the plugin; returns packed data (caller frees), fills fmt/stats */
static uint8_t *q_run(void *ctx, uint32_t want, int64_t rows, int64_t cols, const float *W,
                      struct bt_tfmt *fmt, struct bt_qstats *st, bt_status *rc, bt_err *err) {
    struct bt_qtensor t = {"blk.0.test.weight", rows, cols, {want, 0, 0, 0}, 0, g_colw, NULL};
    if (g_wplanes) { /* as the core's budget hands back an error_curve candidate */
        t.want = (struct bt_tfmt){want, g_wplanes, 256, 0};
        t.want_exact = 1;
    }
    *rc = qi->plan(ctx, &t, fmt, err);
    if (*rc != BT_OK) return NULL;
    size_t rb = bt_fmt_row_bytes(fmt, cols);
    uint8_t *d = calloc((size_t)rows, rb);
    memset(st, 0, sizeof(*st));
    *rc = qi->quantize(ctx, &t, fmt, W, rows, d, st, err);
    return d;
}

static double rel_rmse(const float *W, const uint8_t *d, const struct bt_tfmt *f, int64_t n) {
    float *x = malloc(sizeof(float) * (size_t)n);
    bt_to_f32(f, d, x, n);
    double e = 0, r = 0;
    for (int64_t i = 0; i < n; i++) { e += ((double)W[i] - x[i]) * ((double)W[i] - x[i]); r += (double)W[i] * W[i]; }
    free(x);
    return sqrt(e / r);
}

/* weighted squared error sum_ij w_j (W - decoded)_ij^2 of packed rows d */
static double werr(const float *W, const uint8_t *d, const struct bt_tfmt *f, int64_t rows,
                   int64_t cols, const float *w) {
    float *x = malloc(sizeof(float) * (size_t)(rows * cols));
    bt_to_f32(f, d, x, rows * cols);
    double e = 0;
    for (int64_t i = 0; i < rows * cols; i++) {
        double q = (double)W[i] - x[i];
        e += (w ? w[i % cols] : 1.0) * q * q;
    }
    free(x);
    return e;
}

/* decide, error_curve, want.planes and col_weight (the core's bases=auto / budget / calibration
 * hooks) on a Gaussian R x C matrix W */
static void test_core_hooks(const float *W, int64_t R, int64_t C) {
    bt_optset o;
    bt_err err = {0, ""};
    struct bt_tfmt f;
    struct bt_qstats st;
    bt_status rc;
    CHECK(qi->decide && qi->error_curve);
    /* bases=auto without target: plan leaves the count to the core; decide refuses */
    void *qa = q_open(&o, &err, (const char *[]){"bases", "auto", NULL});
    CHECK(qa != NULL);
    struct bt_qtensor t = {"blk.1.ffn_up.weight", R, C, {BT_TYPE_MTQ, 0, 0, 0}, 0, NULL, NULL};
    CHECK(qi->plan(qa, &t, &f, &err) == BT_OK && f.planes == 0 && f.block == 256);
    CHECK(qi->decide(qa, &t, W, &f, &err) == BT_E_INVAL && strstr(err.msg, "blk.1.ffn_up"));
    t.want = (struct bt_tfmt){BT_TYPE_MTQ, 3, 256, 0}; /* the core's budget choice wins over bases */
    t.want_exact = 1;
    CHECK(qi->plan(qa, &t, &f, &err) == BT_OK && f.planes == 3);
    t.want.planes = 9;
    CHECK_EQ(qi->plan(qa, &t, &f, &err), BT_E_INVAL);
    free(qa);
    void *q2 = q_open(&o, &err, (const char *[]){"bases", "2", NULL});
    t.want.planes = 1;
    CHECK(qi->plan(q2, &t, &f, &err) == BT_OK && f.planes == 1);
    t.want = bt_fmt(BT_TYPE_TQ2_0);
    CHECK(qi->plan(q2, &t, &f, &err) == BT_OK && f.type == BT_TYPE_TQ2_0);
    t.want = bt_fmt(BT_TYPE_MTQ);
    t.want_exact = 0;

    /* error_curve: non-increasing, equal to quantize()'s error on the same rows */
    void *q4 = q_open(&o, &err, (const char *[]){"bases", "auto", "max_bases", "4", NULL});
    double curve[8] = {0};
    struct bt_tfmt cand[8];
    int64_t sr = 16;
    CHECK_EQ(qi->error_curve(q4, &t, W, sr, cand, curve, &err), 4);
    for (int k = 1; k < 4; k++) CHECK(curve[k] <= curve[k - 1]);
    for (int k = 0; k < 4; k++) /* the candidates: MTQ with k+1 planes in the plugin's geometry */
        CHECK(cand[k].type == BT_TYPE_MTQ && cand[k].planes == (uint32_t)k + 1 && cand[k].block == 256);
    for (int N = 1; N <= 4; N++) {
        g_wplanes = (uint32_t)N;
        uint8_t *d = q_run(q2, BT_TYPE_MTQ, sr, C, W, &f, &st, &rc, &err);
        CHECK(rc == BT_OK && f.planes == (uint32_t)N);
        CHECK_NEAR(st.err2, curve[N - 1], 1e-9 * curve[N - 1]);
        CHECK_NEAR(werr(W, d, &f, sr, C, NULL), curve[N - 1], 1e-6 * curve[N - 1]);
        free(d);
    }
    g_wplanes = 0;

    /* decide: the smallest N whose whole-tensor relative RMSE meets the target */
    double full[8], ref = 0;
    for (int64_t i = 0; i < R * C; i++) ref += (double)W[i] * W[i];
    CHECK_EQ(qi->error_curve(q4, &t, W, R, cand, full, &err), 4);
    static const char *targets[4] = {"0.5", "0.2", "0.1", "0.01"};
    for (int k = 0; k < 4; k++) {
        void *qt = q_open(&o, &err, (const char *[]){"bases", "auto", "target_rmse", targets[k],
                                                     "max_bases", "4", NULL});
        CHECK(qi->plan(qt, &t, &f, &err) == BT_OK && f.planes == 0);
        CHECK_EQ(qi->decide(qt, &t, W, &f, &err), BT_OK);
        int want = 4;
        for (int N = 4; N >= 1; N--)
            if (sqrt(full[N - 1] / ref) <= atof(targets[k])) want = N;
        fprintf(stderr, "decide target %s: %u planes (expected %d)\n", targets[k], f.planes, want);
        CHECK_EQ((int)f.planes, want);
        free(qt);
    }
    CHECK(sqrt(full[1] / ref) <= 0.2 && sqrt(full[1] / ref) > 0.1); /* so targets pick 1,2,3,4 */

    /* col_weight: changes the codes, lowers the weighted error vs unweighted quantization, and
     * error_curve / decide use the weighted error */
    float *cw = malloc(sizeof(float) * (size_t)C);
    double mean = 0;
    for (int64_t c = 0; c < C; c++) { cw[c] = (float)(c % 7 == 0 ? 8.0 : 0.2 + urand()); mean += cw[c]; }
    for (int64_t c = 0; c < C; c++) cw[c] = (float)(cw[c] * C / mean);
    for (int N = 1; N <= 3; N++) {
        g_wplanes = (uint32_t)N;
        struct bt_qstats su, sw;
        g_colw = NULL;
        uint8_t *du = q_run(q2, BT_TYPE_MTQ, sr, C, W, &f, &su, &rc, &err);
        g_colw = cw;
        uint8_t *dw = q_run(q2, BT_TYPE_MTQ, sr, C, W, &f, &sw, &rc, &err);
        CHECK_EQ(rc, BT_OK);
        size_t nb = (size_t)sr * bt_fmt_row_bytes(&f, C);
        CHECK(memcmp(du, dw, nb) != 0);
        double eu = werr(W, du, &f, sr, C, cw), ew = werr(W, dw, &f, sr, C, cw);
        fprintf(stderr, "col_weight N=%d: weighted error %.4f (unweighted quantization %.4f)\n",
                N, ew, eu);
        CHECK(ew < eu);
        /* stats stay unweighted */
        CHECK_NEAR(sw.err2, werr(W, dw, &f, sr, C, NULL), 1e-6 * sw.err2);
        t.col_weight = cw;
        CHECK_EQ(qi->error_curve(q4, &t, W, sr, cand, curve, &err), 4);
        CHECK_NEAR(curve[N - 1], ew, 1e-6 * ew);
        t.col_weight = NULL;
        /* thread-count independence with weights */
        g_threads = 1;
        uint8_t *d1 = q_run(q2, BT_TYPE_MTQ, sr, C, W, &f, &st, &rc, &err);
        g_threads = 2;
        CHECK(memcmp(d1, dw, nb) == 0);
        free(du); free(dw); free(d1);
    }
    g_colw = NULL;
    g_wplanes = 0;
    free(cw); free(q2); free(q4);
}

/* exact ternary step vs all 3^n code vectors (optimal scale per vector), with and without weights */
static void test_ternary_brute(struct bt_mtq_work *ws) {
    enum { n = 8 };
    float r[n], d[n];
    int8_t t[n];
    for (int rep = 0; rep < 60; rep++) {
        for (int i = 0; i < n; i++) { r[i] = gauss(); d[i] = (float)(0.2 + urand()); }
        if (rep % 5 == 0) r[3] = r[1]; /* ties */
        for (int wt = 0; wt < 2; wt++) {
            const float *dw = wt ? d : NULL;
            double a = bt_mtq_ternary_step(r, dw, n, t, ws), e = 0, best = INFINITY;
            for (int i = 0; i < n; i++) { double q = r[i] - a * t[i]; e += (wt ? d[i] : 1) * q * q; }
            for (int code = 0; code < 6561; code++) {
                double tr = 0, tt = 0, rr = 0;
                for (int i = 0, c = code; i < n; i++, c /= 3) {
                    int ti = c % 3 - 1;
                    double di = wt ? d[i] : 1;
                    tr += di * ti * r[i]; tt += di * ti * ti; rr += di * r[i] * r[i];
                }
                double ec = tt > 0 ? rr - tr * tr / tt : rr;
                if (ec < best) best = ec;
            }
            CHECK(a >= 0);
            CHECK_NEAR(e, best, 1e-9 * (1 + best));
        }
    }
}

/* final error with more rounds never exceeds greedy (rounds 0); best <= min(greedy, balanced) */
static void test_monotone(struct bt_mtq_work *ws) {
    int8_t t[8 * 256];
    float w[256], a[8];
    int bad_greedy = 0, bad_best = 0, bad_rounds = 0;
    for (int rep = 0; rep < 60; rep++) {
        for (int i = 0; i < 256; i++) w[i] = gauss() * (rep % 2 ? 1.0f : (float)(0.01 + urand()));
        for (int N = 1; N <= 4; N++) {
            double e0 = bt_mtq_quantize_block(w, NULL, 256, N, 0, BT_MTQ_INIT_GREEDY, t, a, ws);
            double prev = e0;
            for (int r = 1; r <= 8; r++) {
                double eg = bt_mtq_quantize_block(w, NULL, 256, N, r, BT_MTQ_INIT_GREEDY, t, a, ws);
                bad_greedy += eg > e0;
                bad_rounds += eg > prev * (1 + 1e-3); /* fp16 rounding of scales: tiny slack */
                prev = eg;
            }
            double eg = bt_mtq_quantize_block(w, NULL, 256, N, 6, BT_MTQ_INIT_GREEDY, t, a, ws);
            double eb = bt_mtq_quantize_block(w, NULL, 256, N, 6, BT_MTQ_INIT_BALANCED, t, a, ws);
            double ex = bt_mtq_quantize_block(w, NULL, 256, N, 6, BT_MTQ_INIT_BEST, t, a, ws);
            bad_best += ex > eg || (N > 1 && ex > eb);
        }
    }
    CHECK_EQ(bad_greedy, 0);
    CHECK_EQ(bad_rounds, 0);
    CHECK_EQ(bad_best, 0);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s libbt-quantizer-residual.so\n", argv[0]); return 2; }
    struct bt_mtq_work *ws = bt_mtq_work_new();
    test_ternary_brute(ws);
    test_monotone(ws);
    bt_mtq_work_free(ws);

    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!so) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
    bt_plugin_init_fn init = (bt_plugin_init_fn)dlsym(so, BT_PLUGIN_INIT_SYMBOL);
    CHECK(init && init(&host, &plug) == BT_OK && plug);
    if (!plug) TEST_DONE();
    CHECK(!strcmp(plug->name, "residual"));
    CHECK_EQ(plug->kind, BT_KIND_QUANTIZER);
    qi = plug->iface;
    bt_optset o;
    bt_err err = {0, ""};
    struct bt_tfmt f;
    struct bt_qstats st;
    bt_status rc;

    /* option validation and plan rules */
    CHECK(q_open(&o, &err, (const char *[]){"bases", "9", NULL}) == NULL && err.status == BT_E_INVAL);
    void *q2 = q_open(&o, &err, NULL);
    CHECK(q2 != NULL);
    struct bt_qtensor tt = {"x", 4, 512, {BT_TYPE_MTQ, 0, 0, 0}, 0, NULL, NULL};
    CHECK(qi->plan(q2, &tt, &f, &err) == BT_OK && f.type == BT_TYPE_MTQ && f.planes == 2 &&
          f.block == 256 && f.layout == 0);
    tt.cols = 300;
    CHECK_EQ(qi->plan(q2, &tt, &f, &err), BT_E_UNSUPPORTED);
    tt.cols = 512;
    tt.want.type = BT_TYPE_TQ2_0;
    CHECK_EQ(qi->plan(q2, &tt, &f, &err), BT_E_INVAL);
    tt.want.type = BT_TYPE_F16;
    CHECK_EQ(qi->plan(q2, &tt, &f, &err), BT_E_UNSUPPORTED);

    /* Gaussian quality targets, 512 x 4096, blocks of 256; stats match the decoded error */
    int64_t R = 512, C = 4096;
    float *W = malloc(sizeof(float) * (size_t)(R * C));
    for (int64_t i = 0; i < R * C; i++) W[i] = gauss();
    static const double target[4] = {0, 0.437, 0.18, 0.075};
    g_threads = 2;
    for (int N = 1; N <= 3; N++) {
        char nb[4];
        snprintf(nb, sizeof(nb), "%d", N);
        void *q = q_open(&o, &err, (const char *[]){"bases", nb, NULL});
        uint8_t *d = q_run(q, BT_TYPE_MTQ, R, C, W, &f, &st, &rc, &err);
        CHECK_EQ(rc, BT_OK);
        double rel = rel_rmse(W, d, &f, R * C);
        fprintf(stderr, "gaussian 512x4096 N=%d: rel RMSE %.5f (target %.3f)\n", N, rel, target[N]);
        CHECK(rel <= target[N]);
        CHECK_NEAR(sqrt(st.err2 / st.ref2), rel, 1e-6);
        free(d);
        free(q);
    }

    test_core_hooks(W, 64, C);

    /* identical bytes for 1 and 4 threads (both layouts, N = 3, block 64 and 256) */
    static const char *lays[2] = {"interleaved", "compact"};
    for (int l = 0; l < 2; l++)
        for (int bs = 64; bs <= 256; bs *= 4) {
            char bsz[8];
            snprintf(bsz, sizeof(bsz), "%d", bs);
            void *q = q_open(&o, &err, (const char *[]){"bases", "3", "layout", lays[l], "block_size", bsz, NULL});
            struct bt_qstats s1, s4;
            g_threads = 1;
            uint8_t *d1 = q_run(q, BT_TYPE_MTQ, 61, C, W, &f, &s1, &rc, &err);
            g_threads = 4;
            uint8_t *d4 = q_run(q, BT_TYPE_MTQ, 61, C, W, &f, &s4, &rc, &err);
            CHECK(f.layout == (uint32_t)l && f.block == (uint32_t)bs);
            CHECK(memcmp(d1, d4, 61 * bt_fmt_row_bytes(&f, C)) == 0);
            CHECK(s1.err2 == s4.err2 && s1.ref2 == s4.ref2);
            free(d1); free(d4); free(q);
        }

    /* TQ2_0 / TQ1_0 output equals the one-plane MTQ result */
    void *q1 = q_open(&o, &err, (const char *[]){"bases", "1", NULL});
    struct bt_tfmt fm;
    uint8_t *dm = q_run(q1, BT_TYPE_MTQ, 16, C, W, &fm, &st, &rc, &err);
    float *xm = malloc(sizeof(float) * 16 * (size_t)C), *xt = malloc(sizeof(float) * 16 * (size_t)C);
    bt_to_f32(&fm, dm, xm, 16 * C);
    for (uint32_t ty = BT_TYPE_TQ1_0; ty <= BT_TYPE_TQ2_0; ty++) {
        uint8_t *dt = q_run(q1, ty, 16, C, W, &f, &st, &rc, &err);
        CHECK(rc == BT_OK && f.type == ty);
        bt_to_f32(&f, dt, xt, 16 * C);
        CHECK(memcmp(xm, xt, sizeof(float) * 16 * (size_t)C) == 0);
        free(dt);
    }
    free(dm); free(xm); free(xt);

    /* non-finite input: error naming the tensor and the row */
    W[5 * C + 17] = NAN;
    uint8_t *dn = q_run(q1, BT_TYPE_MTQ, 8, C, W, &f, &st, &rc, &err);
    CHECK_EQ(rc, BT_E_INVAL);
    CHECK(strstr(err.msg, "blk.0.test.weight") && strstr(err.msg, "row 5"));
    free(dn); free(q1); free(q2); free(W);
    TEST_DONE();
}
