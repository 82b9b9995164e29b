/* mtq_so.c - second-order multi-plane ternary quantization on the host engine (mtq_so.h). */
#include "mtq_so.h"
#include "mtq_algo.h"
#include "bt_types.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* scratch spaces handed out to concurrent callbacks (the engine does not say which thread) */
struct ws_pool {
    pthread_mutex_t      mu;
    struct bt_mtq_work  *free_ws[256];
    int                  n_free;
};

static struct bt_mtq_work *ws_get(struct ws_pool *p) {
    struct bt_mtq_work *w = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->n_free) w = p->free_ws[--p->n_free];
    pthread_mutex_unlock(&p->mu);
    return w ? w : bt_mtq_work_new();
}

static void ws_put(struct ws_pool *p, struct bt_mtq_work *w) {
    if (!w) return;
    pthread_mutex_lock(&p->mu);
    if (p->n_free < 256) { p->free_ws[p->n_free++] = w; w = NULL; }
    pthread_mutex_unlock(&p->mu);
    bt_mtq_work_free(w);
}

struct so_state {
    const struct bt_mtq_so_opts *o;
    const float                 *colw;  /* per-column weights for the scale choice, or NULL */
    int64_t                      cols, nb;
    int8_t                      *t;     /* codes (layout of mtq_so.h) */
    float                       *a;     /* scales */
    int                          fixed; /* 1: scales are given (later passes) */
    int                          oom;
    struct ws_pool               pool;
};

static void so_group_start(void *user, int64_t row0, int64_t nrows, int64_t g, const float *W) {
    struct so_state *s = user;
    if (s->fixed) return;
    int N = s->o->planes, B = s->o->block;
    struct bt_mtq_work *ws = ws_get(&s->pool);
    if (!ws) { s->oom = 1; return; }
    int8_t tmp[BT_MTQ_MAX_PLANES * BT_MTQ_MAX_BLOCK];
    const float *cw = s->colw ? s->colw + g * B : NULL;
    for (int64_t i = 0; i < nrows; i++) {
        float *a = s->a + ((row0 + i) * s->nb + g) * N;
        if (N == 1) {
            double sc = bt_mtq_ternary_step(W + i * B, cw, B, tmp, ws);
            a[0] = bt_fp16_to_f32(bt_f32_to_fp16((float)sc));
        } else {
            bt_mtq_quantize_block(W + i * B, cw, B, N, s->o->rounds, s->o->init, tmp, a, ws);
        }
    }
    ws_put(&s->pool, ws);
}

/* nearest of the 3^N levels sum_p a_p t_p: exhaustive for N <= 4, else plane by plane keeping
 * the two best partial sums of each step (beam of 2^k, capped at 64) */
static float nearest(const float *a, int N, float w, int8_t *t) {
    if (N == 1) {
        float s = a[0];
        int c = 0;
        if (s != 0.0f) {
            float x = w / s;
            c = x >= 0.5f ? 1 : x <= -0.5f ? -1 : 0;
        }
        t[0] = (int8_t)c;
        return s * (float)c;
    }
    if (N <= 4) {
        int nl = 1;
        for (int p = 0; p < N; p++) nl *= 3;
        float best = INFINITY, bv = 0;
        int bc = 0;
        for (int c = 0; c < nl; c++) {
            float v = 0;
            int r = c;
            for (int p = 0; p < N; p++, r /= 3) v += a[p] * (float)(r % 3 - 1);
            float d = fabsf(w - v);
            if (d < best) { best = d; bv = v; bc = c; }
        }
        for (int p = 0; p < N; p++, bc /= 3) t[p] = (int8_t)(bc % 3 - 1);
        return bv;
    }
    enum { BEAM = 64 };
    float val[BEAM], nval[BEAM * 3];
    int8_t code[BEAM][BT_MTQ_MAX_PLANES], ncode[BEAM * 3][BT_MTQ_MAX_PLANES];
    int nbeam = 1;
    val[0] = 0;
    for (int p = 0; p < N; p++) {
        int nn = 0;
        for (int b = 0; b < nbeam; b++)
            for (int c = -1; c <= 1; c++) {
                nval[nn] = val[b] + a[p] * (float)c;
                memcpy(ncode[nn], code[b], (size_t)p);
                ncode[nn][p] = (int8_t)c;
                nn++;
            }
        /* keep the BEAM candidates whose partial sums are nearest w (selection by distance) */
        int keep = nn < BEAM ? nn : BEAM;
        for (int k = 0; k < keep; k++) {
            int m = k;
            for (int x = k + 1; x < nn; x++)
                if (fabsf(w - nval[x]) < fabsf(w - nval[m])) m = x;
            float tv = nval[k]; nval[k] = nval[m]; nval[m] = tv;
            int8_t tc[BT_MTQ_MAX_PLANES];
            memcpy(tc, ncode[k], (size_t)N); memcpy(ncode[k], ncode[m], (size_t)N); memcpy(ncode[m], tc, (size_t)N);
            val[k] = nval[k];
            memcpy(code[k], ncode[k], (size_t)N);
        }
        nbeam = keep;
    }
    memcpy(t, code[0], (size_t)N);
    return val[0];
}

static void so_column(void *user, int64_t row0, int64_t nrows, int64_t c, const float *w, float *q) {
    struct so_state *s = user;
    int N = s->o->planes, B = s->o->block;
    int64_t g = c / B, e = c % B;
    int8_t tc[BT_MTQ_MAX_PLANES];
    for (int64_t i = 0; i < nrows; i++) {
        int64_t rb = (row0 + i) * s->nb + g;
        q[i] = nearest(s->a + rb * N, N, w[i], tc);
        int8_t *t = s->t + rb * N * B + e;
        for (int p = 0; p < N; p++) t[p * B] = tc[p];
    }
}

/* ---- joint refit: for each row, scales s_k (k = (block, plane)) minimising
 * (w - sum_k s_k b_k)^T H (w - sum_k s_k b_k), b_k the plane's codes on the block ------------ */
struct refit_job {
    const struct bt_host *host;
    const float          *W;
    const float          *V;    /* (K x nr x cols): V_k = B_k H[block k, :] for the batch */
    struct so_state      *s;
    int64_t               r0, nr, K;
    double               *delta; /* per row: E(new) - E(old) */
    int                   fail;
};

static void refit_rows(void *arg, int64_t i0, int64_t i1, int tid) {
    struct refit_job *j = arg;
    (void)tid;
    struct so_state *s = j->s;
    int N = s->o->planes, B = s->o->block;
    int64_t K = j->K, cols = s->cols;
    double *M = malloc((size_t)K * K * sizeof(double)), *rhs = malloc((size_t)K * 2 * sizeof(double));
    if (!M || !rhs) { j->fail = 1; free(M); free(rhs); return; }
    double *x = rhs + K;
    for (int64_t i = i0; i < i1; i++) {
        int64_t row = j->r0 + i;
        const float *w = j->W + row * cols;
        const int8_t *trow = s->t + row * s->nb * N * B;
        float *arow = s->a + row * s->nb * N;
        for (int64_t k = 0; k < K; k++) {
            const float *v = j->V + ((size_t)k * j->nr + i) * cols;
            double r = 0;
            for (int64_t c = 0; c < cols; c++) r += (double)v[c] * w[c];
            rhs[k] = r;
            for (int64_t k2 = 0; k2 < K; k2++) { /* b_k2 is nonzero on its block only */
                int64_t g2 = k2 / N, p2 = k2 % N;
                const int8_t *t2 = trow + (g2 * N + p2) * B;
                const float *v2 = v + g2 * B;
                double m = 0;
                for (int e = 0; e < B; e++) m += (double)v2[e] * t2[e];
                M[k * K + k2] = m;
            }
        }
        double old = 0, ridge = 0;
        for (int64_t k = 0; k < K; k++) {
            double Ms = 0;
            for (int64_t k2 = 0; k2 < K; k2++) Ms += M[k * K + k2] * arow[k2];
            old += arow[k] * (Ms - 2.0 * rhs[k]);
            ridge += M[k * K + k];
        }
        ridge = 1e-9 * ridge / (double)K + 1e-30;
        for (int64_t k = 0; k < K; k++) {
            if (M[k * K + k] <= 0) { /* empty plane of a block: scale 0 */
                for (int64_t k2 = 0; k2 < K; k2++) M[k * K + k2] = M[k2 * K + k] = 0;
                M[k * K + k] = 1;
                rhs[k] = 0;
            }
            M[k * K + k] += ridge;
            x[k] = rhs[k];
        }
        double *Mc = malloc((size_t)K * K * sizeof(double));
        if (!Mc) { j->fail = 1; break; }
        memcpy(Mc, M, (size_t)K * K * sizeof(double));
        if (j->host->spd_solve(K, Mc, x) == BT_OK) {
            float na[BT_MTQ_MAX_PLANES * 1024];
            double nw = 0;
            for (int64_t k = 0; k < K && k < (int64_t)(sizeof na / sizeof na[0]); k++)
                na[k] = bt_fp16_to_f32(bt_f32_to_fp16((float)x[k]));
            for (int64_t k = 0; k < K; k++) {
                double Ms = 0;
                for (int64_t k2 = 0; k2 < K; k2++) Ms += M[k * K + k2] * na[k2];
                nw += na[k] * (Ms - 2.0 * rhs[k]);
            }
            if (nw < old) { /* keep the refit only when it helps after fp16 rounding */
                memcpy(arow, na, (size_t)K * sizeof(float));
                j->delta[i] = nw - old;
            }
        }
        free(Mc);
    }
    free(M);
    free(rhs);
}

/* V_k = B_k H[block k, :] for bases k of a row batch: one host->hess_mul per basis, the bases
 * spread over the pool (hess_mul runs serially inside a pool job) */
struct vjob {
    const struct bt_host *host;
    const bt_hessian     *h;
    struct so_state      *s;
    int64_t               r0, n;
    float                *Bk, *V;
    int                   fail;
};

static void v_bases(void *arg, int64_t k0, int64_t k1, int tid) {
    struct vjob *j = arg;
    (void)tid;
    struct so_state *s = j->s;
    int N = s->o->planes, B = s->o->block;
    for (int64_t k = k0; k < k1; k++) {
        int64_t g = k / N, p = k % N;
        float *Bk = j->Bk + (size_t)k * j->n * B;
        for (int64_t i = 0; i < j->n; i++) {
            const int8_t *t = s->t + ((j->r0 + i) * s->nb + g) * N * B + p * B;
            for (int e = 0; e < B; e++) Bk[i * B + e] = (float)t[e];
        }
        /* err NULL: the host's set_error ignores it; the caller reports the failure */
        if (j->host->hess_mul(j->h, g * B, (g + 1) * B, Bk, j->n, j->V + (size_t)k * j->n * s->cols, NULL))
            j->fail = 1;
    }
}

static bt_status refit(const struct bt_host *host, const bt_hessian *h, const float *W, int64_t rows,
                       struct so_state *s, double *delta_sum, bt_err *err) {
    int N = s->o->planes, B = s->o->block;
    int64_t cols = s->cols, K = s->nb * N;
    if (K > BT_MTQ_MAX_PLANES * 1024) {
        host->log(BT_LOG_WARN, "second order: %lld scales per row are too many for the joint refit; skipped",
                  (long long)K);
        return BT_OK;
    }
    /* rows per batch: V holds K x nr x cols floats; keep it near 256 MB */
    int64_t nr = (int64_t)(256.0 * 1024 * 1024 / 4 / ((double)K * cols));
    if (nr > 256) nr = 256;
    if (nr < 1) nr = 1;
    float *V = host->alloc((size_t)K * nr * cols * sizeof(float));
    float *Bk = host->alloc((size_t)K * nr * B * sizeof(float));
    double *delta = host->alloc((size_t)nr * sizeof(double));
    bt_status st = BT_OK;
    if (!V || !Bk || !delta) st = host->set_error(err, BT_E_NOMEM, "second order: out of memory for the scale refit");
    double tot = 0;
    for (int64_t r0 = 0; r0 < rows && !st; r0 += nr) {
        int64_t n = rows - r0 < nr ? rows - r0 : nr;
        struct vjob vj = {host, h, s, r0, n, Bk, V, 0};
        host->parallel_for(K, 1, v_bases, &vj);
        if (vj.fail) { st = host->set_error(err, BT_E_INVAL, "second order: hess_mul failed"); break; }
        memset(delta, 0, (size_t)n * sizeof(double));
        struct refit_job j = {host, W, V, s, r0, n, K, delta, 0};
        host->parallel_for(n, 1, refit_rows, &j);
        if (j.fail) st = host->set_error(err, BT_E_NOMEM, "second order: out of memory for the scale refit");
        for (int64_t i = 0; i < n; i++) tot += delta[i];
    }
    host->free(V);
    host->free(Bk);
    host->free(delta);
    *delta_sum = tot;
    return st;
}

int bt_mtq_so_available(const struct bt_host *host) {
    return host && host->struct_size >= offsetof(struct bt_host, spd_solve) + sizeof(host->spd_solve) &&
           host->so_quantize && host->hess_mul && host->spd_solve;
}

bt_status bt_mtq_so_quantize(const struct bt_host *host, const bt_hessian *h, const float *W,
                             int64_t rows, int64_t cols, const struct bt_mtq_so_opts *o,
                             int8_t *t, float *a, double *herr, bt_err *err) {
    if (!bt_mtq_so_available(host))
        return host->set_error(err, BT_E_UNSUPPORTED, "second order: the host has no second-order engine (so_quantize, hess_mul, spd_solve)");
    if (o->planes < 1 || o->planes > BT_MTQ_MAX_PLANES || o->block < 1 || o->block > BT_MTQ_MAX_BLOCK ||
        cols % o->block)
        return host->set_error(err, BT_E_INVAL, "second order: bad planes %d / block %d for %lld columns",
                               o->planes, o->block, (long long)cols);
    struct so_state s = {.o = o, .colw = NULL, .cols = cols, .nb = cols / o->block, .t = t, .a = a};
    pthread_mutex_init(&s.pool.mu, NULL);
    struct bt_so_cb cb = {&s, o->block, so_group_start, so_column};
    bt_status st = BT_OK;
    double e = 0;
    int passes = o->passes < 1 ? 1 : o->passes;
    for (int pass = 0; pass < passes && !st; pass++) {
        s.fixed = pass > 0;
        st = host->so_quantize(h, W, rows, cols, &cb, &e, err);
        if (!st && s.oom) st = host->set_error(err, BT_E_NOMEM, "second order: out of memory");
        double d = 0;
        if (!st && o->refit) st = refit(host, h, W, rows, &s, &d, err);
        e += d;
    }
    while (s.pool.n_free) bt_mtq_work_free(s.pool.free_ws[--s.pool.n_free]);
    pthread_mutex_destroy(&s.pool.mu);
    if (herr) *herr = e;
    return st;
}
