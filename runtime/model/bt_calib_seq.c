/* bt_calib_seq.c - sequential calibration (GPTQ order): the inputs of layer l are collected with
 * layers < l, and the already-quantized linears of layer l, in their quantized form. Keeps the
 * calibration windows' residual stream at the input of the current layer; each Hessian request
 * runs the current layer up to the hook it needs; when all seven linears of the layer are
 * quantized the stream advances one layer. Memory: the stream plus one Hessian accumulator. */
#include "bt_calib.h"
#include "bt_model_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { R_Q, R_K, R_V, R_O, R_G, R_U, R_D, R_COUNT };
static const char *const role_names[R_COUNT] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                 "ffn_gate", "ffn_up", "ffn_down"};
static const int role_hook[R_COUNT] = {BT_HOOK_ATTN_IN, BT_HOOK_ATTN_IN, BT_HOOK_ATTN_IN,
                                       BT_HOOK_ATTN_OUT, BT_HOOK_FFN_IN, BT_HOOK_FFN_IN,
                                       BT_HOOK_FFN_DOWN};
/* linears that must be final before a hook's input is collected */
static const unsigned hook_needs[BT_HOOK_COUNT] = {
    0, (1u << R_Q) | (1u << R_K) | (1u << R_V), 1u << R_O, (1u << R_G) | (1u << R_U)};

struct bt_calib_seq {
    bt_model *m;
    int32_t   ctx;       /* window length incl. BOS */
    int32_t   nwin;      /* windows */
    int32_t  *tok;       /* (nwin x ctx) ids, BOS first */
    int32_t  *len;       /* (nwin) tokens per window */
    float    *X;         /* (nwin x ctx x n_embd) residual stream at the input of layer cur */
    int       cur;       /* current layer */
    unsigned  set;       /* R_* bits of layer cur already quantized */
    void    **keep;      /* (n_layer x R_COUNT) copies of earlier layers (the model points at them) */
    int       n_keep;    /* entries of keep (the model may be freed before this) */
    double   *G;         /* (n x n) accumulator of the hook being collected */
    int       acc_n;     /* its size */
    uint64_t  count;
    float    *H;         /* last result: E[x x^T] */
    int       H_key;     /* layer*BT_HOOK_COUNT + hook of H, -1 none */
    int       failed;
};

void bt_calib_seq_free(bt_calib_seq *s) {
    if (!s) return;
    for (int k = 0; s->keep && k < s->n_keep; k++) free(s->keep[k]);
    free(s->keep); free(s->tok); free(s->len); free(s->X); free(s->G); free(s->H);
    free(s);
}

bt_status bt_calib_seq_new(bt_model *m, const int32_t *ids, int64_t n, const struct bt_calib_opts *o,
                           bt_calib_seq **out, bt_err *err) {
    *out = NULL;
    int ctx = o && o->ctx ? o->ctx : 512;
    if (ctx < 2 || ctx > m->n_ctx)
        return bt_err_set(err, BT_E_INVAL, "calibrate: ctx %d outside [2, %d] (model context)", ctx, m->n_ctx);
    if (n <= 0) return bt_err_set(err, BT_E_INVAL, "calibrate: no text tokens");
    if (m->hp.bos_id < 0) return bt_err_set(err, BT_E_INVAL, "calibrate: the model has no BOS id");
    int64_t nw = (n + ctx - 2) / (ctx - 1);
    if (o && o->max_windows > 0 && nw > o->max_windows) nw = o->max_windows;
    bt_calib_seq *s = calloc(1, sizeof(*s));
    if (!s) return bt_err_set(err, BT_E_NOMEM, "calibrate: out of memory");
    s->m = m;
    s->ctx = ctx;
    s->nwin = (int32_t)nw;
    s->H_key = -1;
    int64_t E = m->hp.n_embd;
    s->tok = malloc((size_t)nw * ctx * sizeof(int32_t));
    s->len = malloc((size_t)nw * sizeof(int32_t));
    s->X = malloc((size_t)nw * ctx * E * sizeof(float));
    s->keep = calloc((size_t)m->hp.n_layer * R_COUNT, sizeof(void *));
    s->n_keep = s->keep ? m->hp.n_layer * R_COUNT : 0;
    if (!s->tok || !s->len || !s->X || !s->keep) {
        bt_calib_seq_free(s);
        return bt_err_set(err, BT_E_NOMEM, "calibrate: out of memory for %lld windows x %d tokens x %lld",
                          (long long)nw, ctx, (long long)E);
    }
    bt_status st = BT_OK;
    for (int64_t w = 0; w < nw && !st; w++) {
        int64_t off = w * (ctx - 1);
        int wl = n - off < ctx - 1 ? (int)(n - off) : ctx - 1;
        int32_t *t = s->tok + w * ctx;
        t[0] = m->hp.bos_id;
        memcpy(t + 1, ids + off, (size_t)wl * sizeof(int32_t));
        s->len[w] = wl + 1;
        st = bt_lin_rows_f32(m, &m->tok_embd, t, wl + 1, s->X + (size_t)w * ctx * E, err);
    }
    if (st) { bt_calib_seq_free(s); return st; }
    *out = s;
    return BT_OK;
}

static void seq_hook(void *user, int layer, int which, const float *X, int ntok, int dim) {
    bt_calib_seq *s = user;
    if (layer != s->cur || which != s->m->stop_hook - 1 || dim != s->acc_n) return;
    if (bt_gram_accumulate(s->G, dim, X, ntok) != BT_OK) s->failed = 1;
    s->count += (uint64_t)ntok;
}

/* run layer cur over every window: stop after hook `stop` (>= 0, collecting it) or run the
 * whole layer and store the stream back (stop < 0) */
static bt_status run_layer(bt_calib_seq *s, int stop, bt_err *err) {
    bt_model *m = s->m;
    int64_t E = m->hp.n_embd;
    int nb = m->opts.n_batch;
    bt_model_hook_fn old = m->hook;
    void *old_user = m->hook_user;
    bt_model_set_hook(m, stop >= 0 ? seq_hook : NULL, s);
    m->stop_hook = stop >= 0 ? stop + 1 : 0;
    bt_status st = BT_OK;
    for (int w = 0; w < s->nwin && !st; w++) {
        bt_model_reset(m);
        for (int c0 = 0; c0 < s->len[w] && !st; c0 += nb) {
            int nt = s->len[w] - c0 < nb ? s->len[w] - c0 : nb;
            float *x = s->X + ((size_t)w * s->ctx + c0) * E;
            st = bt_model_x_set(m, x, nt, err);
            if (!st) st = bt_layer_forward(m, s->cur, nt, c0, err);
            if (!st && stop < 0) st = bt_model_x_get(m, x, nt, err);
        }
    }
    m->stop_hook = 0;
    bt_model_set_hook(m, old, old_user);
    return st;
}

/* "blk.L.role.weight" -> layer and R_*, or -1 */
static int parse(const char *name, int *layer) {
    int l, n = 0;
    char role[32];
    if (sscanf(name, "blk.%d.%31[a-z_]%n", &l, role, &n) != 2 || strcmp(name + n, ".weight") != 0) return -1;
    for (int r = 0; r < R_COUNT; r++)
        if (!strcmp(role, role_names[r])) { *layer = l; return r; }
    return -1;
}

static bt_status order_error(bt_calib_seq *s, const char *tensor, bt_err *err) {
    return bt_err_set(err, BT_E_INVAL, "%s: sequential calibration is at layer %d (tensors must come "
                      "layer by layer, q k v o gate up down)", tensor, s->cur);
}

bt_status bt_calib_seq_hess(bt_calib_seq *s, const char *tensor, int64_t cols, const float **H, int *key,
                            bt_err *err) {
    *H = NULL;
    int l = 0, r = parse(tensor, &l);
    if (r < 0) return BT_OK; /* not a calibrated linear */
    const struct bt_model_hparams *hp = &s->m->hp;
    int hk = role_hook[r];
    int64_t n = hk == BT_HOOK_ATTN_OUT ? (int64_t)hp->n_head * hp->head_dim : hk == BT_HOOK_FFN_DOWN ? hp->n_ff : hp->n_embd;
    if (l >= hp->n_layer || n != cols)
        return bt_err_set(err, BT_E_INVAL, "%s: the calibration model has %d layers and %lld inputs for it, the "
                          "tensor has %lld (calibrating a different model?)", tensor, hp->n_layer, (long long)n,
                          (long long)cols);
    if (l != s->cur || (s->set & hook_needs[hk]) != hook_needs[hk]) return order_error(s, tensor, err);
    if (key) *key = l * BT_HOOK_COUNT + hk;
    if (s->H_key == l * BT_HOOK_COUNT + hk) { *H = s->H; return BT_OK; }
    size_t nn = (size_t)n * (size_t)n;
    free(s->G); free(s->H);
    s->H = NULL;
    s->H_key = -1;
    s->G = calloc(nn, sizeof(double));
    s->H = malloc(nn * sizeof(float));
    if (!s->G || !s->H) return bt_err_set(err, BT_E_NOMEM, "calibrate: out of memory for %lld x %lld", (long long)n, (long long)n);
    s->acc_n = (int)n;
    s->count = 0;
    s->failed = 0;
    bt_status st = run_layer(s, hk, err);
    if (!st && (s->failed || !s->count)) st = bt_err_set(err, BT_E_NOMEM, "calibrate: out of memory");
    if (st) return st;
    double inv = 1.0 / (double)s->count;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i; j < n; j++) s->H[i * n + j] = s->H[j * n + i] = (float)(s->G[i * n + j] * inv);
    free(s->G);
    s->G = NULL;
    s->H_key = l * BT_HOOK_COUNT + hk;
    *H = s->H;
    return BT_OK;
}

bt_status bt_calib_seq_done(bt_calib_seq *s, const char *tensor, const struct bt_tfmt *fmt, const void *data,
                            uint64_t nbytes, bt_err *err) {
    int l = 0, r = parse(tensor, &l);
    if (r < 0) return BT_OK;
    if (l != s->cur || (s->set & (1u << r))) return order_error(s, tensor, err);
    struct bt_layer *L = &s->m->layers[l];
    struct bt_lin *w[R_COUNT] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
    void *copy = malloc(nbytes ? nbytes : 1);
    if (!copy) return bt_err_set(err, BT_E_NOMEM, "calibrate: out of memory");
    memcpy(copy, data, nbytes);
    bt_status st = bt_lin_set(s->m, w[r], fmt, copy, nbytes, err);
    if (st) { free(copy); return st; }
    s->keep[l * R_COUNT + r] = copy;
    s->set |= 1u << r;
    if (s->set == (1u << R_COUNT) - 1) { /* the layer is final: advance the stream */
        if (s->cur + 1 < s->m->hp.n_layer && (st = run_layer(s, -1, err))) return st;
        s->cur++;
        s->set = 0;
    }
    return BT_OK;
}
