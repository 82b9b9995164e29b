/* vq_quant.c - one tensor through the VPTQ-style pipeline: column order by diag H (act order; the
 * first columns are the outliers), per-column normalisation to [0, 1] (fp16 scale and bias),
 * Hessian-weighted k-means of each group's codebook on vectors of v rows down a column, then the
 * column loop (host->so_quantize with the Hessian, or a plain pass without) choosing the nearest
 * centroid of each vector; with a residual codebook, k-means on the first pass's errors and a
 * second pass from the original weights with both. Codes are packed into bt's vq format. */
#include "vq_algo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK BT_SO_CHUNK_ROWS /* the engine's row chunk */

static int64_t gcd64(int64_t a, int64_t b) { return b ? gcd64(b, a % b) : a; }

static int64_t n_outliers(const struct vq_opts *o, int64_t cols) {
    if (o->outlier_pct <= 0) return 0;
    int64_t n = (int64_t)ceil(o->outlier_pct / 100.0 * (double)cols);
    while (n < cols && (cols - n) % o->G) n++; /* the rest divides into the groups */
    return n < cols ? n : -1;
}

int vq_plan_fmt(const struct vq_opts *o, int64_t rows, int64_t cols, int has_cw, struct bt_tfmt *out) {
    int64_t no = n_outliers(o, cols);
    if (no < 0 || no > 65535 || rows % o->v || (no && rows % o->v0)) return 0;
    int64_t l = no ? o->v / gcd64(o->v, o->v0) * o->v0 : o->v;
    if (l > CHUNK) return 0;
    /* the column order only matters for who shares a codebook: stored with groups or outliers */
    uint32_t fl = (o->norm ? BT_VQ_NORM : 0) | (no || o->G > 1 ? BT_VQ_PERM : 0);
    (void)has_cw;
    *out = bt_vq_tfmt(o->v, o->b1, o->b2, o->G, fl, (uint32_t)no, no ? o->v0 : 0, no ? o->b0 : 0);
    struct bt_vq_layout L;
    return bt_vq_layout(out, rows, cols, &L);
}

/* ---- state of one tensor ------------------------------------------------------------------- */
struct vq_state {
    const struct vq_opts *o;
    struct bt_vq_layout   L;
    int64_t   rows, cols, used;  /* used: real rows per engine chunk (whole vectors) */
    int64_t  *pos;               /* column -> stream position */
    float    *scale, *bias;      /* per column (fp16 values; 1 / 0 without norm) */
    float    *C, *R, *O;         /* codebooks (G x K1 x v, G x K2 x v, K0 x v0), fp16 values */
    float    *Cs, *Rs, *Os;      /* the same, component-major per group (v x K) for the search */
    uint32_t *codes;             /* (rows/v) x ncode */
    uint16_t *ocodes;            /* (rows/v0) x n_out */
    float    *res;               /* first pass: residual vector of each (block, position) */
    int       pass_res;          /* this pass uses the residual codebook */
};

/* nearest of K centroids (component-major cs: cs[e*K + k]) to x (d values); lowest on ties */
static uint32_t nearest(const float *cs, int64_t K, int64_t d, const float *x) {
    float best = INFINITY;
    uint32_t bi = 0;
    float dist[256];
    for (int64_t k0 = 0; k0 < K; k0 += 256) {
        int64_t nk = K - k0 < 256 ? K - k0 : 256;
        for (int64_t k = 0; k < nk; k++) dist[k] = 0.0f;
        for (int64_t e = 0; e < d; e++) {
            const float *c = cs + e * K + k0;
            float xe = x[e];
            for (int64_t k = 0; k < nk; k++) { float df = xe - c[k]; dist[k] += df * df; }
        }
        for (int64_t k = 0; k < nk; k++)
            if (dist[k] < best) { best = dist[k]; bi = (uint32_t)(k0 + k); }
    }
    return bi;
}

static void soa(const float *C, int64_t K, int64_t d, float *Cs) {
    for (int64_t k = 0; k < K; k++)
        for (int64_t e = 0; e < d; e++) Cs[e * K + k] = C[k * d + e];
}

/* engine callbacks: rows [row0, row0 + nrows) of the padded matrix, column c */
static void cb_group(void *user, int64_t row0, int64_t nrows, int64_t g, const float *W) {
    (void)user; (void)row0; (void)nrows; (void)g; (void)W;
}

static void cb_column(void *user, int64_t row0, int64_t nrows, int64_t c, const float *w, float *q) {
    struct vq_state *s = user;
    const struct bt_vq_layout *L = &s->L;
    int64_t r0 = row0 / CHUNK * s->used, nr = s->rows - r0 < s->used ? s->rows - r0 : s->used;
    for (int64_t i = 0; i < nrows; i++) q[i] = w[i]; /* padding rows: no error */
    if (nr <= 0) return;
    int64_t p = s->pos[c];
    float sc = s->scale[c], bi = s->bias[c], u[BT_VQ_MAX_V], val[BT_VQ_MAX_V];
    if (p < (int64_t)L->n_out) {
        uint32_t v0 = L->v0;
        for (int64_t i = 0; i + v0 <= nr; i += v0) {
            for (uint32_t e = 0; e < v0; e++) u[e] = (w[i + e] - bi) / sc;
            uint32_t k = nearest(s->Os, (int64_t)1 << L->b0, v0, u);
            s->ocodes[((r0 + i) / v0) * L->n_out + p] = (uint16_t)k;
            for (uint32_t e = 0; e < v0; e++) q[i + e] = s->O[k * v0 + e] * sc + bi;
        }
        return;
    }
    int64_t pp = p - L->n_out, g = pp / L->gs, K1 = (int64_t)1 << L->b1, K2 = L->b2 ? (int64_t)1 << L->b2 : 0;
    uint32_t v = L->v;
    const float *Cg = s->C + g * K1 * v, *Csg = s->Cs + g * K1 * v;
    for (int64_t i = 0; i + v <= nr; i += v) {
        for (uint32_t e = 0; e < v; e++) u[e] = (w[i + e] - bi) / sc;
        uint32_t m = nearest(Csg, K1, v, u), r = 0;
        const float *cm = Cg + m * v;
        if (s->pass_res) {
            float d[BT_VQ_MAX_V];
            for (uint32_t e = 0; e < v; e++) d[e] = u[e] - cm[e];
            r = nearest(s->Rs + g * K2 * v, K2, v, d);
            const float *cr = s->R + (g * K2 + r) * v;
            for (uint32_t e = 0; e < v; e++) val[e] = cm[e] + cr[e];
        } else {
            for (uint32_t e = 0; e < v; e++) val[e] = cm[e];
        }
        int64_t rb = (r0 + i) / v;
        s->codes[rb * L->ncode + pp] = m | r << L->b1;
        if (s->res)
            for (uint32_t e = 0; e < v; e++) s->res[(rb * L->ncode + pp) * v + e] = u[e] - val[e];
        for (uint32_t e = 0; e < v; e++) q[i + e] = val[e] * sc + bi;
    }
}

struct plain_job { struct vq_state *s; const float *Wp; int64_t cols, prow; };

static void plain_chunk(void *arg, int64_t c0, int64_t c1, int tid) {
    struct plain_job *j = arg;
    float w[CHUNK], q[CHUNK];
    (void)tid;
    for (int64_t ch = c0; ch < c1; ch++)
        for (int64_t c = 0; c < j->cols; c++) {
            for (int64_t i = 0; i < CHUNK; i++)
                w[i] = ch * CHUNK + i < j->prow ? j->Wp[(ch * CHUNK + i) * j->cols + c] : 0.0f;
            cb_column(j->s, ch * CHUNK, CHUNK, c, w, q);
        }
}

/* one pass over every column: with the Hessian through the engine, else vector by vector */
static bt_status run_pass(const struct bt_host *h, struct vq_state *s, const float *Wp, int64_t prow,
                          const bt_hessian *hess, double *herr, bt_err *err) {
    if (hess) {
        struct bt_so_cb cb = {s, s->cols, cb_group, cb_column};
        return h->so_quantize(hess, Wp, prow, s->cols, &cb, herr, err);
    }
    struct plain_job j = {s, Wp, s->cols, prow};
    h->parallel_for((prow + CHUNK - 1) / CHUNK, 1, plain_chunk, &j);
    return BT_OK;
}

/* k-means of the vectors of the columns at stream positions [p0, p1) (d rows each) */
static bt_status fit(const struct bt_host *h, const struct vq_state *s, const float *Wn, const float *res,
                     int64_t p0, int64_t p1, int64_t d, int64_t K, const double *colw, float *C,
                     uint64_t seed, bt_err *err) {
    int64_t nb = s->rows / d, np = p1 - p0, n = nb * np;
    float *P = malloc(sizeof(float) * (size_t)(n * d));
    double *wt = malloc(sizeof(double) * (size_t)n);
    if (!P || !wt) { free(P); free(wt); return h->set_error(err, BT_E_NOMEM, "vptq: out of memory"); }
    const struct bt_vq_layout *L = &s->L;
    for (int64_t a = 0; a < np; a++) {
        int64_t p = p0 + a;
        for (int64_t b = 0; b < nb; b++) {
            float *dst = P + (a * nb + b) * d;
            if (res) memcpy(dst, res + ((b * L->ncode) + (p - L->n_out)) * d, sizeof(float) * (size_t)d);
            else
                for (int64_t e = 0; e < d; e++) dst[e] = Wn[(b * d + e) * s->cols + p];
            wt[a * nb + b] = colw[p];
        }
    }
    bt_status st = vq_kmeans(h, P, wt, n, d, K, s->o->iters, s->o->sample, seed, C, err);
    free(P);
    free(wt);
    if (!st) vq_round_f16(C, K * d);
    return st;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static void state_free(struct vq_state *s) {
    free(s->pos); free(s->scale); free(s->bias); free(s->C); free(s->R); free(s->O);
    free(s->Cs); free(s->Rs); free(s->Os); free(s->codes); free(s->ocodes); free(s->res);
}

/* column order: by decreasing weight (ties: lower column first); the key travels with the
 * index, so no shared state */
struct col_key { float key; int64_t col; };
static int by_key(const void *a, const void *b) {
    const struct col_key *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return x->col < y->col ? -1 : x->col > y->col;
}

bt_status vq_quantize(const struct bt_host *h, const struct vq_opts *o, const struct bt_tfmt *fmt,
                      const char *name, const float *W, int64_t rows, int64_t cols, const float *cw,
                      const bt_hessian *hess, uint8_t *dst, void *const *parts, double *err2,
                      double *herr2, bt_err *err) {
    struct vq_state s;
    memset(&s, 0, sizeof(s));
    s.o = o;
    s.rows = rows;
    s.cols = cols;
    if (!bt_vq_layout(fmt, rows, cols, &s.L) || rows % s.L.v || (s.L.n_out && rows % s.L.v0))
        return h->set_error(err, BT_E_INVAL, "vptq: %s: format does not fit %lld x %lld", name,
                            (long long)rows, (long long)cols);
    const struct bt_vq_layout *L = &s.L;
    int64_t K1 = (int64_t)1 << L->b1, K2 = L->b2 ? (int64_t)1 << L->b2 : 0, K0 = L->n_out ? (int64_t)1 << L->b0 : 0;
    int64_t l = L->n_out ? L->v / gcd64(L->v, L->v0) * L->v0 : L->v;
    s.used = CHUNK / l * l;
    int64_t nch = (rows + s.used - 1) / s.used, prow = s.used == CHUNK ? rows : nch * CHUNK;
    float *key = malloc(sizeof(float) * (size_t)cols), *Wn = malloc(sizeof(float) * (size_t)(rows * cols));
    double *colw = malloc(sizeof(double) * (size_t)cols);
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)cols);
    float *Wp = s.used == CHUNK ? NULL : calloc((size_t)(prow * cols), sizeof(float));
    float *dec = malloc(sizeof(float) * (size_t)cols * CHUNK);
    s.pos = malloc(sizeof(int64_t) * (size_t)cols);
    s.scale = malloc(sizeof(float) * (size_t)cols);
    s.bias = malloc(sizeof(float) * (size_t)cols);
    s.C = malloc(sizeof(float) * (size_t)(L->G * K1 * L->v));
    s.Cs = malloc(sizeof(float) * (size_t)(L->G * K1 * L->v));
    if (K2) {
        s.R = malloc(sizeof(float) * (size_t)(L->G * K2 * L->v));
        s.Rs = malloc(sizeof(float) * (size_t)(L->G * K2 * L->v));
        s.res = malloc(sizeof(float) * (size_t)(rows * L->ncode));
    }
    if (K0) {
        s.O = malloc(sizeof(float) * (size_t)(K0 * L->v0));
        s.Os = malloc(sizeof(float) * (size_t)(K0 * L->v0));
        s.ocodes = calloc((size_t)(rows / L->v0 * L->n_out), sizeof(uint16_t));
    }
    s.codes = calloc((size_t)(rows / L->v * L->ncode), sizeof(uint32_t));
    bt_status st = BT_OK;
    if (!key || !Wn || !colw || !perm || (s.used != CHUNK && !Wp) || !dec || !s.pos || !s.scale || !s.bias ||
        !s.C || !s.Cs || !s.codes || (K2 && (!s.R || !s.Rs || !s.res)) || (K0 && (!s.O || !s.Os || !s.ocodes))) {
        st = h->set_error(err, BT_E_NOMEM, "vptq: %s: out of memory", name);
        goto done;
    }
    /* column order and importance: diag H from calibration, else the column's energy */
    for (int64_t j = 0; j < cols; j++) {
        double e = 0;
        if (!cw)
            for (int64_t r = 0; r < rows; r++) e += (double)W[r * cols + j] * W[r * cols + j];
        key[j] = cw ? cw[j] : (float)e;
        perm[j] = j;
    }
    if (L->flags & BT_VQ_PERM) {
        struct col_key *ck = malloc(sizeof(*ck) * (size_t)cols);
        if (!ck) { st = h->set_error(err, BT_E_NOMEM, "vptq: %s: out of memory", name); goto done; }
        for (int64_t j = 0; j < cols; j++) ck[j] = (struct col_key){key[j], j};
        qsort(ck, (size_t)cols, sizeof(*ck), by_key);
        for (int64_t j = 0; j < cols; j++) perm[j] = ck[j].col;
        free(ck);
    }
    for (int64_t p = 0; p < cols; p++) s.pos[perm[p]] = p;
    for (int64_t j = 0; j < cols; j++) {
        float mn = INFINITY, mx = -INFINITY;
        for (int64_t r = 0; r < rows; r++) {
            mn = fminf(mn, W[r * cols + j]);
            mx = fmaxf(mx, W[r * cols + j]);
        }
        float b = 0.0f, sc = 1.0f;
        if (L->flags & BT_VQ_NORM) {
            b = bt_fp16_to_f32(bt_f32_to_fp16(mn));
            sc = bt_fp16_to_f32(bt_f32_to_fp16(mx - b));
            if (!(sc > 0) || !isfinite(sc)) sc = 1.0f;
        }
        s.scale[j] = sc;
        s.bias[j] = b;
        double hj = cw ? (cw[j] > 0 ? cw[j] : 1e-12) : 1.0;
        colw[s.pos[j]] = hj * (double)sc * sc;
        for (int64_t r = 0; r < rows; r++) Wn[r * cols + s.pos[j]] = (W[r * cols + j] - b) / sc;
    }
    /* codebooks */
    for (uint32_t g = 0; g < L->G && !st; g++) {
        int64_t p0 = L->n_out + (int64_t)g * L->gs;
        st = fit(h, &s, Wn, NULL, p0, p0 + L->gs, L->v, K1, colw, s.C + g * K1 * L->v, o->seed + g, err);
        if (!st) soa(s.C + g * K1 * L->v, K1, L->v, s.Cs + g * K1 * L->v);
    }
    if (!st && K0) {
        st = fit(h, &s, Wn, NULL, 0, L->n_out, L->v0, K0, colw, s.O, o->seed + 1000, err);
        if (!st) soa(s.O, K0, L->v0, s.Os);
    }
    if (st) goto done;
    if (Wp) /* whole vectors per engine chunk: `used` real rows, then zero rows */
        for (int64_t r = 0; r < rows; r++)
            memcpy(Wp + ((r / s.used) * CHUNK + r % s.used) * cols, W + r * cols, sizeof(float) * (size_t)cols);
    double herr = 0;
    if ((st = run_pass(h, &s, Wp ? Wp : W, prow, hess, &herr, err))) goto done;
    if (K2) { /* residual codebooks on the first pass's errors, then again from the start */
        for (uint32_t g = 0; g < L->G && !st; g++) {
            int64_t p0 = L->n_out + (int64_t)g * L->gs;
            st = fit(h, &s, NULL, s.res, p0, p0 + L->gs, L->v, K2, colw, s.R + g * K2 * L->v, o->seed + 500 + g, err);
            if (!st) soa(s.R + g * K2 * L->v, K2, L->v, s.Rs + g * K2 * L->v);
        }
        free(s.res);
        s.res = NULL;
        s.pass_res = 1;
        if (st || (st = run_pass(h, &s, Wp ? Wp : W, prow, hess, &herr, err))) goto done;
    }
    /* pack */
    memset(dst, 0, (size_t)(rows * L->R));
    for (int64_t rb = 0; rb < rows / L->v; rb++)
        for (int64_t p = 0; p < L->ncode; p++)
            bt_vq_put_code(dst + (uint64_t)rb * L->v * L->R, (uint64_t)p * L->t, L->t, s.codes[rb * L->ncode + p]);
    uint8_t *cb = parts[L->p_cb];
    for (int64_t i = 0; i < L->G * K1 * L->v; i++) put16(cb + L->cb_main + 2 * i, bt_f32_to_fp16(s.C[i]));
    for (int64_t i = 0; i < L->G * K2 * L->v; i++) put16(cb + L->cb_res + 2 * i, bt_f32_to_fp16(s.R[i]));
    for (int64_t i = 0; i < K0 * L->v0; i++) put16(cb + L->cb_out + 2 * i, bt_f32_to_fp16(s.O[i]));
    if (L->p_col >= 0) {
        uint8_t *cp = parts[L->p_col];
        for (int64_t p = 0; L->col_perm != UINT64_MAX && p < cols; p++) put16(cp + L->col_perm + 2 * p, (uint16_t)perm[p]);
        for (int64_t j = 0; L->col_scale != UINT64_MAX && j < cols; j++) {
            put16(cp + L->col_scale + 2 * j, bt_f32_to_fp16(s.scale[j]));
            put16(cp + L->col_bias + 2 * j, bt_f32_to_fp16(s.bias[j]));
        }
    }
    if (L->p_out >= 0)
        for (int64_t i = 0; i < rows / L->v0 * L->n_out; i++) put16((uint8_t *)parts[L->p_out] + 2 * i, s.ocodes[i]);
    /* the error of what the file holds (decoded by the core's reference) */
    double e2 = 0;
    const void *pp[BT_MAX_PARTS] = {parts[0], L->n_parts > 1 ? parts[1] : NULL, L->n_parts > 2 ? parts[2] : NULL,
                                    L->n_parts > 3 ? parts[3] : NULL};
    for (int64_t r0 = 0; r0 < rows && !st; r0 += CHUNK) {
        int64_t nr = rows - r0 < CHUNK ? rows - r0 : CHUNK;
        if (bt_vq_to_f32_rows(fmt, pp, dst, rows, cols, r0, nr, dec)) {
            st = h->set_error(err, BT_E_PLUGIN, "vptq: %s: the packed tensor does not decode", name);
            break;
        }
        for (int64_t i = 0; i < nr * cols; i++) {
            double d = (double)W[r0 * cols + i] - dec[i];
            e2 += d * d;
        }
    }
    *err2 = e2;
    *herr2 = hess ? herr : 0.0;
done:
    free(key); free(Wn); free(colw); free(perm); free(Wp); free(dec);
    state_free(&s);
    return st;
}
