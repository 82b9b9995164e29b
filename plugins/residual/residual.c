/* residual.c - quantizer plugin "residual": multi-base ternary W ~ sum_i a_i T_i per block
 * (mtq_algo.c), packed as BT_TYPE_MTQ, or as TQ2_0/TQ1_0 for one plane when those are asked for.
 * Rows run in parallel on the host pool; output and stats do not depend on the thread count. */
#include "bt/bt_plugin.h"
#include "bt_types.h"
#include "mtq_algo.h"
#include "mtq_so.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* instance state (ctx_size bytes, zeroed by the core) */
struct residual {
    const struct bt_host *host;  /* borrowed host services */
    int    bases;                /* planes N (1..8); 0 = auto */
    int    block;                /* weights per scale block: 64, 128 or 256 */
    int    rounds;               /* joint assignment + LS refit rounds per start */
    int    init;                 /* BT_MTQ_INIT_* */
    int    layout;               /* MTQ layout: 0 interleaved, 1 compact */
    double target;               /* bases=auto: target relative RMSE (0 = off) */
    int    max_bases;            /* bases=auto: largest N tried */
    int    so_passes;            /* second order: column-loop passes */
};

static const struct bt_option residual_options[] = {
    {"bases", BT_OPT_STRING, "2", 0, 0, NULL, "ternary planes per weight: 1..8, or auto"},
    {"block_size", BT_OPT_INT, "256", 64, 256, NULL, "weights per fp16 scale: 64, 128 or 256"},
    {"refit_rounds", BT_OPT_INT, "6", 0, 100, NULL, "joint code assignment + LS refit rounds"},
    {"init", BT_OPT_ENUM, "balanced", 0, 0, "greedy|balanced|best",
     "start: greedy residual, balanced-ternary scales, or both keeping the better (slower)"},
    {"layout", BT_OPT_ENUM, "interleaved", 0, 0, "interleaved|compact",
     "MTQ code layout: 2-bit interleaved or base-3 compact (5 trits per byte)"},
    {"target_rmse", BT_OPT_FLOAT, "0", 0, 1, NULL,
     "bases=auto: smallest N whose tensor relative RMSE is <= this (0 = the core's budget)"},
    {"max_bases", BT_OPT_INT, "4", 1, 8, NULL, "bases=auto: largest number of planes"},
    {"so_passes", BT_OPT_INT, "2", 1, 8, NULL,
     "second_order: column-loop passes; each later pass keeps the previous pass's refit scales and re-chooses the codes"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static bt_status residual_open(void *ctx, const struct bt_host *host, const bt_optset *opts,
                               bt_err *err) {
    struct residual *q = ctx;
    q->host = host;
    const char *b = host->opt_str(opts, "bases");
    if (b && strcmp(b, "auto") == 0) {
        q->bases = 0;
    } else {
        char *end = NULL;
        long v = b ? strtol(b, &end, 10) : 0;
        if (!b || end == b || *end || v < 1 || v > BT_MTQ_MAX_PLANES)
            return host->set_error(err, BT_E_INVAL, "residual: bases '%s' is not 1..8 or auto",
                                   b ? b : "");
        q->bases = (int)v;
    }
    q->block = (int)host->opt_int(opts, "block_size");
    if (q->block != 64 && q->block != 128 && q->block != 256)
        return host->set_error(err, BT_E_INVAL, "residual: block_size %d is not 64, 128 or 256",
                               q->block);
    q->rounds = (int)host->opt_int(opts, "refit_rounds");
    if (q->rounds < 0 || q->rounds > 100)
        return host->set_error(err, BT_E_INVAL, "residual: refit_rounds %d is not 0..100",
                               q->rounds);
    const char *in = host->opt_str(opts, "init");
    q->init = in && !strcmp(in, "greedy") ? BT_MTQ_INIT_GREEDY
            : in && !strcmp(in, "balanced") ? BT_MTQ_INIT_BALANCED : BT_MTQ_INIT_BEST;
    const char *lay = host->opt_str(opts, "layout");
    q->layout = lay && !strcmp(lay, "compact") ? 1 : 0;
    q->target = host->opt_float(opts, "target_rmse");
    q->max_bases = (int)host->opt_int(opts, "max_bases");
    q->so_passes = (int)host->opt_int(opts, "so_passes");
    if (q->so_passes < 1) q->so_passes = 1;
    if (q->max_bases < 1 || q->max_bases > BT_MTQ_MAX_PLANES)
        return host->set_error(err, BT_E_INVAL, "residual: max_bases %d is not 1..8",
                               q->max_bases);
    return BT_OK;
}

static void residual_close(void *ctx) { (void)ctx; }

/* Output format for N planes: t->want picks the family (MTQ, or TQ2_0/TQ1_0 for one plane);
 * N = 0 (bases=auto) gives MTQ with planes = 0, which is not complete: decide() or the core's
 * budget (error_curve candidates) follows. */
static bt_status fmt_for(struct residual *q, const struct bt_qtensor *t, int N, struct bt_tfmt *out,
                         bt_err *err) {
    const struct bt_host *h = q->host;
    uint32_t wt = t->want.type;
    if (N < 0 || N > BT_MTQ_MAX_PLANES)
        return h->set_error(err, BT_E_INVAL, "residual: tensor '%s': %d planes asked, "
                            "the most is %d", t->name, N, BT_MTQ_MAX_PLANES);
    if (wt == BT_TYPE_TQ2_0 || wt == BT_TYPE_TQ1_0) {
        if (N != 1)
            return h->set_error(err, BT_E_INVAL, "residual: tensor '%s': %s holds one plane, "
                                "set bases=1 (or ask for mtq)", t->name, bt_type_name(wt));
        if (t->cols % BT_QK_K) {
            h->set_error(err, BT_E_UNSUPPORTED, "row length %lld is not a multiple of 256",
                         (long long)t->cols);
            return BT_E_UNSUPPORTED;
        }
        *out = bt_fmt(wt);
        return BT_OK;
    }
    if (wt != BT_TYPE_MTQ) return BT_E_UNSUPPORTED;
    if (t->cols % q->block) {
        h->set_error(err, BT_E_UNSUPPORTED, "row length %lld is not a multiple of %d",
                     (long long)t->cols, q->block);
        return BT_E_UNSUPPORTED;
    }
    out->type = BT_TYPE_MTQ;
    out->planes = (uint32_t)N;
    out->block = (uint32_t)q->block;
    out->layout = (uint32_t)q->layout;
    return BT_OK;
}

static bt_status residual_plan(void *ctx, const struct bt_qtensor *t, struct bt_tfmt *out,
                               bt_err *err) {
    struct residual *q = ctx;
    if (t->want_exact) { /* one of our error_curve candidates, chosen by the core */
        if (t->want.type != BT_TYPE_MTQ && t->want.type != BT_TYPE_TQ2_0 && t->want.type != BT_TYPE_TQ1_0)
            return q->host->set_error(err, BT_E_INVAL, "residual: tensor '%s': cannot produce the "
                                      "chosen format", t->name);
        if (!q->host->row_bytes(&t->want, t->cols) ||
            (t->want.type == BT_TYPE_MTQ && t->want.planes > BT_MTQ_MAX_PLANES))
            return q->host->set_error(err, BT_E_INVAL, "residual: tensor '%s': the chosen format "
                                      "(%u planes) is not valid for %lld columns", t->name,
                                      t->want.planes, (long long)t->cols);
        *out = t->want;
        return BT_OK;
    }
    return fmt_for(q, t, q->bases, out, err);
}

/* ---- parallel row work ---------------------------------------------------------------------- */
struct qjob {
    const struct bt_tfmt *fmt;  /* output format (NULL: error only, nothing packed) */
    const struct residual *q;   /* options */
    const float *src;           /* nrows x cols input */
    const float *colw;          /* cols column weights, or NULL */
    uint8_t     *dst;           /* nrows packed rows (NULL when fmt is NULL) */
    int64_t      cols;          /* row length */
    size_t       row_bytes;     /* packed row stride */
    int          N, block;      /* planes and block of the algorithm */
    double      *werr;          /* per row: weighted squared error sum_j w_j e_j^2 (or NULL) */
    double      *wref;          /* per row: weighted sum_j w_j x_j^2 (or NULL) */
    double      *err2, *ref2;   /* per row: unweighted squared error and sum x^2 (or NULL) */
    int8_t      *bad;           /* per row: 1 non-finite input, 2 out of memory */
};

static void pack_row(const struct qjob *j, const int8_t *t, const float *a, uint8_t *out) {
    int64_t nb = j->cols / j->block;
    int N = j->N, B = j->block;
    if (j->fmt->type == BT_TYPE_TQ2_0 || j->fmt->type == BT_TYPE_TQ1_0) {
        size_t bb = bt_type_block_bytes(j->fmt->type);
        for (int64_t b = 0; b < nb; b++) {
            if (j->fmt->type == BT_TYPE_TQ2_0) bt_tq2_0_pack(t + b * B, a[b], out + b * bb);
            else bt_tq1_0_pack(t + b * B, a[b], out + b * bb);
        }
        return;
    }
    size_t bb = bt_mtq_block_bytes((uint32_t)N, (uint32_t)B, j->fmt->layout);
    for (int64_t b = 0; b < nb; b++)
        bt_mtq_pack_block(j->fmt, t + b * N * B, a + b * N, out + b * bb);
}

/* unweighted squared error of one quantized row, reconstructed in float as the decoder does */
static void row_plain_err(const struct qjob *j, const float *w, const int8_t *t, const float *a,
                          double *e2, double *r2) {
    int N = j->N, B = j->block;
    double E = 0, R = 0;
    for (int64_t c0 = 0, b = 0; c0 < j->cols; c0 += B, b++) {
        const int8_t *tb = t + b * N * B;
        const float *ab = a + b * N;
        for (int i = 0; i < B; i++) {
            float v = 0;
            for (int p = 0; p < N; p++) v += ab[p] * (float)tb[p * B + i];
            double x = (double)w[c0 + i], e = x - (double)v;
            E += e * e;
            R += x * x;
        }
    }
    *e2 = E;
    *r2 = R;
}

static void qjob_rows(void *arg, int64_t i0, int64_t i1, int tid) {
    const struct qjob *j = arg;
    const struct bt_host *h = j->q->host;
    (void)tid;
    struct bt_mtq_work *ws = h->alloc(sizeof(struct bt_mtq_work));
    int8_t *t = h->alloc((size_t)j->N * (size_t)j->cols);
    float *a = h->alloc(sizeof(float) * (size_t)j->N * (size_t)(j->cols / j->block));
    if (!ws || !t || !a) {
        for (int64_t r = i0; r < i1; r++) j->bad[r] = 2;
        goto done;
    }
    bt_mtq_work_init(ws);
    for (int64_t r = i0; r < i1; r++) {
        const float *w = j->src + r * j->cols;
        int ok = 1;
        for (int64_t c = 0; c < j->cols; c++) ok &= isfinite(w[c]) != 0;
        if (!ok) { j->bad[r] = 1; continue; }
        double wref = 0;
        double werr = bt_mtq_quantize_row(w, j->colw, j->cols, j->block, j->N, j->q->rounds,
                                          j->q->init, t, a, &wref, ws);
        if (j->werr) j->werr[r] = werr;
        if (j->wref) j->wref[r] = wref;
        if (j->err2) {
            if (j->colw) row_plain_err(j, w, t, a, &j->err2[r], &j->ref2[r]);
            else { j->err2[r] = werr; j->ref2[r] = wref; }
        }
        if (j->dst) pack_row(j, t, a, j->dst + (size_t)r * j->row_bytes);
    }
done:
    h->free(ws);
    h->free(t);
    h->free(a);
}

/* Run j over nrows rows (j->N, j->block set; per-row arrays are allocated here) and add the
 * sums in row order (thread-count independent): we/wr weighted error/reference, e2/r2
 * unweighted. Any of the outputs may be NULL. */
static bt_status run_rows(struct qjob *j, const struct bt_qtensor *t, int64_t nrows, double *we,
                          double *wr, double *e2, double *r2, bt_err *err) {
    const struct bt_host *h = j->q->host;
    if (nrows <= 0) return BT_OK;
    size_t nb = sizeof(double) * (size_t)nrows;
    j->werr = h->alloc(nb);
    j->wref = h->alloc(nb);
    j->err2 = h->alloc(nb);
    j->ref2 = h->alloc(nb);
    j->bad = h->alloc((size_t)nrows);
    bt_status st = BT_OK;
    if (!j->werr || !j->wref || !j->err2 || !j->ref2 || !j->bad) {
        st = h->set_error(err, BT_E_NOMEM, "residual: tensor '%s': out of memory", t->name);
        goto done;
    }
    memset(j->bad, 0, (size_t)nrows);
    h->parallel_for(nrows, 4, qjob_rows, j);
    for (int64_t r = 0; r < nrows; r++) {
        if (j->bad[r]) {
            st = j->bad[r] == 1
                   ? h->set_error(err, BT_E_INVAL, "residual: tensor '%s': row %lld has a "
                                  "non-finite value", t->name, (long long)r)
                   : h->set_error(err, BT_E_NOMEM, "residual: tensor '%s': out of memory",
                                  t->name);
            break;
        }
        if (we) *we += j->werr[r];
        if (wr) *wr += j->wref[r];
        if (e2) *e2 += j->err2[r];
        if (r2) *r2 += j->ref2[r];
    }
done:
    h->free(j->werr); h->free(j->wref); h->free(j->err2); h->free(j->ref2); h->free(j->bad);
    return st;
}

/* stats are unweighted (sum (W - What)^2 and sum W^2) even when t->col_weight is set */
static bt_status residual_quantize(void *ctx, const struct bt_qtensor *t,
                                   const struct bt_tfmt *fmt, const float *src, int64_t nrows,
                                   void *dst, struct bt_qstats *stats, bt_err *err) {
    struct residual *q = ctx;
    const struct bt_host *h = q->host;
    struct qjob j = {fmt, q, src, t->col_weight, dst, t->cols, 0, 0, 0,
                     NULL, NULL, NULL, NULL, NULL};
    if (fmt->type == BT_TYPE_TQ2_0 || fmt->type == BT_TYPE_TQ1_0) {
        j.N = 1;
        j.block = BT_QK_K;
    } else if (fmt->type == BT_TYPE_MTQ && fmt->planes == 0) {
        return h->set_error(err, BT_E_UNSUPPORTED, "residual: tensor '%s': bases=auto needs "
                            "the core to fix the plane count before quantize", t->name);
    } else if (fmt->type == BT_TYPE_MTQ) {
        j.N = (int)fmt->planes;
        j.block = (int)fmt->block;
    } else {
        return h->set_error(err, BT_E_INVAL, "residual: tensor '%s': cannot write type %s",
                            t->name, bt_type_name(fmt->type));
    }
    j.row_bytes = h->row_bytes(fmt, t->cols);
    if (!j.row_bytes || j.N < 1 || j.N > BT_MTQ_MAX_PLANES || j.block > BT_MTQ_MAX_BLOCK ||
        t->cols % j.block)
        return h->set_error(err, BT_E_INVAL, "residual: tensor '%s': %lld columns do not fit "
                            "the format", t->name, (long long)t->cols);
    double e2 = 0, r2 = 0;
    bt_status st = run_rows(&j, t, nrows, NULL, NULL, &e2, &r2, err);
    if (st == BT_OK && stats) {
        stats->err2 += e2;
        stats->ref2 += r2;
    }
    return st;
}

/* Weighted squared error (sum_j w_j e_ij^2, w = t->col_weight or 1) of nrows rows for N planes
 * with the block/rounds/init options; *ref gets sum_j w_j x_ij^2. */
static bt_status planes_error(struct residual *q, const struct bt_qtensor *t, const float *src,
                              int64_t nrows, int N, double *e, double *ref, bt_err *err) {
    const struct bt_host *h = q->host;
    if (t->cols <= 0 || t->cols % q->block)
        return h->set_error(err, BT_E_INVAL, "residual: tensor '%s': %lld columns are not a "
                            "multiple of block_size %d", t->name, (long long)t->cols, q->block);
    struct qjob j = {NULL, q, src, t->col_weight, NULL, t->cols, 0, N, q->block,
                     NULL, NULL, NULL, NULL, NULL};
    *e = 0;
    *ref = 0;
    return run_rows(&j, t, nrows, e, ref, NULL, NULL, err);
}

/* bases=auto with target_rmse: smallest N (1..max_bases) whose relative RMSE over the whole
 * tensor, sqrt(sum w e^2 / sum w x^2) (w = col_weight, else 1), is <= target_rmse; max_bases
 * if none is. */
static bt_status residual_decide(void *ctx, const struct bt_qtensor *t, const float *src,
                                 struct bt_tfmt *out, bt_err *err) {
    struct residual *q = ctx;
    const struct bt_host *h = q->host;
    if (!(q->target > 0))
        return h->set_error(err, BT_E_INVAL, "residual: tensor '%s': bases = auto needs a rule "
                            "for the number of planes: set target_rmse (e.g. 0.1) or [quantize] "
                            "budget_bpw / budget_bytes, or give bases = 1..8",
                            t->name);
    if (out->type != BT_TYPE_MTQ)
        return h->set_error(err, BT_E_INVAL, "residual: tensor '%s': decide needs an mtq "
                            "format", t->name);
    double rel = 0;
    int N = 1;
    for (; N <= q->max_bases; N++) {
        double e, r;
        bt_status st = planes_error(q, t, src, t->rows, N, &e, &r, err);
        if (st != BT_OK) return st;
        rel = r > 0 ? sqrt(e / r) : 0.0;
        if (rel <= q->target || N == q->max_bases) break;
    }
    h->log(BT_LOG_DEBUG, "residual: '%s': %d planes (relative RMSE %.5f, target %.5f)", t->name,
           N, rel, q->target);
    out->planes = (uint32_t)N;
    out->block = (uint32_t)q->block;
    out->layout = (uint32_t)q->layout;
    return BT_OK;
}

/* err2[k] = weighted squared error (as decide) of the nrows rows with k + 1 planes, for
 * k + 1 = 1..max_bases; returns max_bases. */
static int residual_error_curve(void *ctx, const struct bt_qtensor *t, const float *src,
                                int64_t nrows, double err2[BT_MAX_CANDIDATES], bt_err *err) {
    struct residual *q = ctx;
    int n = q->max_bases < BT_MAX_CANDIDATES ? q->max_bases : BT_MAX_CANDIDATES;
    for (int N = 1; N <= n; N++) {
        double r;
        if (planes_error(q, t, src, nrows, N, &err2[N - 1], &r, err) != BT_OK) return -1;
    }
    return n;
}

/* ---- second order (t->hess set) ---------------------------------------------------------------- */
/* rows x cols of src through the host's column loop with N planes; t/a as bt_mtq_quantize_row
 * lays them out row after row. */
static bt_status so_run(struct residual *q, const struct bt_qtensor *t, const float *src, int64_t rows,
                        int N, int block, int8_t **t_out, float **a_out, double *herr, bt_err *err) {
    const struct bt_host *h = q->host;
    int8_t *codes = h->alloc((size_t)rows * N * t->cols);
    float *sc = h->alloc((size_t)rows * N * (t->cols / block) * sizeof(float));
    bt_status st = BT_OK;
    if (!codes || !sc) st = h->set_error(err, BT_E_NOMEM, "residual: tensor '%s': out of memory", t->name);
    struct bt_mtq_so_opts o = {N, block, 1, q->so_passes, q->rounds, q->init};
    if (!st) st = bt_mtq_so_quantize(h, t->hess, src, rows, t->cols, &o, codes, sc, herr, err);
    if (st) { h->free(codes); h->free(sc); codes = NULL; sc = NULL; }
    *t_out = codes;
    *a_out = sc;
    return st;
}

static bt_status residual_quantize_tensor(void *ctx, const struct bt_qtensor *t, const struct bt_tfmt *fmt,
                                          const float *src, void *dst, void *const *parts, struct bt_qstats *stats, bt_err *err) {
    (void)parts; /* MTQ has no extra parts */
    struct residual *q = ctx;
    if (!t->hess) return residual_quantize(ctx, t, fmt, src, t->rows, dst, stats, err);
    const struct bt_host *h = q->host;
    struct qjob j = {fmt, q, src, NULL, dst, t->cols, h->row_bytes(fmt, t->cols), 1, BT_QK_K,
                     NULL, NULL, NULL, NULL, NULL};
    if (fmt->type == BT_TYPE_MTQ) { j.N = (int)fmt->planes; j.block = (int)fmt->block; }
    else if (fmt->type != BT_TYPE_TQ2_0 && fmt->type != BT_TYPE_TQ1_0)
        return h->set_error(err, BT_E_INVAL, "residual: tensor '%s': cannot write type %s", t->name,
                            bt_type_name(fmt->type));
    if (!j.row_bytes || j.N < 1 || t->cols % j.block)
        return h->set_error(err, BT_E_INVAL, "residual: tensor '%s': %lld columns do not fit the format",
                            t->name, (long long)t->cols);
    int8_t *codes;
    float *sc;
    double herr = 0;
    bt_status st = so_run(q, t, src, t->rows, j.N, j.block, &codes, &sc, &herr, err);
    if (st) return st;
    int64_t nb = t->cols / j.block;
    for (int64_t r = 0; r < t->rows; r++) {
        const int8_t *tr = codes + r * j.N * t->cols;
        const float *ar = sc + r * j.N * nb;
        pack_row(&j, tr, ar, (uint8_t *)dst + (size_t)r * j.row_bytes);
        double e2, r2;
        row_plain_err(&j, src + r * t->cols, tr, ar, &e2, &r2);
        stats->err2 += e2;
        stats->ref2 += r2;
    }
    stats->herr2 += herr;
    h->free(codes);
    h->free(sc);
    return BT_OK;
}

/* with t->hess: err2[k] = tr(E H E^T) of the second-order result with k + 1 planes */
static int residual_error_curve_so(struct residual *q, const struct bt_qtensor *t, const float *src,
                                   int64_t nrows, double err2[BT_MAX_CANDIDATES], bt_err *err) {
    int n = q->max_bases < BT_MAX_CANDIDATES ? q->max_bases : BT_MAX_CANDIDATES;
    for (int N = 1; N <= n; N++) {
        int8_t *codes;
        float *sc;
        if (so_run(q, t, src, nrows, N, q->block, &codes, &sc, &err2[N - 1], err) != BT_OK) return -1;
        q->host->free(codes);
        q->host->free(sc);
    }
    return n;
}

/* candidates: MTQ with 1..max_bases planes (the format plan gives for each count) */
static int residual_error_curve_any(void *ctx, const struct bt_qtensor *t, const float *src,
                                    int64_t nrows, struct bt_tfmt cand[BT_MAX_CANDIDATES],
                                    double err2[BT_MAX_CANDIDATES], bt_err *err) {
    struct residual *q = ctx;
    struct bt_qtensor tm = *t;
    tm.want = bt_fmt(BT_TYPE_MTQ); /* several planes: the MTQ family */
    int n = t->hess ? residual_error_curve_so(ctx, t, src, nrows, err2, err)
                    : residual_error_curve(ctx, t, src, nrows, err2, err);
    for (int k = 0; k < n; k++)
        if (fmt_for(q, &tm, k + 1, &cand[k], err) != BT_OK) return -1;
    return n;
}

static const struct bt_quantizer_i residual_iface = {
    .struct_size = sizeof(struct bt_quantizer_i),
    .open = residual_open,
    .close = residual_close,
    .plan = residual_plan,
    .quantize = residual_quantize,
    .decide = residual_decide,
    .error_curve = residual_error_curve_any,
    .quantize_tensor = residual_quantize_tensor,
};

static const struct bt_plugin residual_desc = {
    BT_ABI_VERSION, sizeof(struct bt_plugin), "residual", "0.1.0", BT_KIND_QUANTIZER, BT_CAP_COL_WEIGHT,
    "multi-base ternary W ~ sum a_i T_i (exact steps, balanced start, joint LS refit) -> "
    "mtq / tq2_0 / tq1_0",
    residual_options, &residual_iface, sizeof(struct residual),
};

BT_PLUGIN_DEFINE(residual_desc)
