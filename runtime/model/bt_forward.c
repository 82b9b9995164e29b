/* bt_forward.c - the Llama forward pass: RMSNorm, RoPE (HF rotate-half or GGUF interleaved
 * pairs, rope_freqs divisors), GQA attention with the KV cache, SwiGLU MLP, lm_head. */
#include "bt_model_int.h"

#include <math.h>
#include <string.h>

void bt_rmsnorm(const float *x, const float *w, int n, float eps, float *y) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float sc = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) y[i] = w[i] * (x[i] * sc);
}

/* rotate pairs of each head: halves -> (i, i + n_rot/2), else (2i, 2i+1); freq index i */
static void rope_heads(float *v, int n_heads, int head_dim, int n_rot, const float *cs,
                       int halves) {
    int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *p = v + (int64_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            int   a = halves ? i : 2 * i, b = halves ? i + half : 2 * i + 1;
            float c = cs[2 * i], s = cs[2 * i + 1];
            float x0 = p[a], x1 = p[b];
            p[a] = x0 * c - x1 * s;
            p[b] = x0 * s + x1 * c;
        }
    }
}

static void rope_cs(const float *inv_freq, int n_rot, int pos, float *cs) {
    for (int i = 0; i < n_rot / 2; i++) {
        float th = (float)pos * inv_freq[i];
        cs[2 * i]     = cosf(th);
        cs[2 * i + 1] = sinf(th);
    }
}

void bt_rope_apply(float *v, int n_heads, int head_dim, int n_rot, const float *inv_freq, int pos,
                   int halves) {
    float cs[1024];
    if (n_rot > 1024) return; /* rejected at load time */
    rope_cs(inv_freq, n_rot, pos, cs);
    rope_heads(v, n_heads, head_dim, n_rot, cs, halves);
}

/* ---- per-token element-wise steps, run in parallel over tokens -------------------------------- */
enum { STEP_NORM_ATTN, STEP_ROPE_STORE, STEP_ADD_O, STEP_NORM_FFN, STEP_SWIGLU, STEP_NORM_OUT };

struct step_job {
    bt_model *m;     /* model */
    int       step;  /* STEP_* */
    int       layer; /* layer index */
    int       pos0;  /* position of token 0 */
    float    *dst;   /* STEP_NORM_OUT: output rows */
};

static void step_token(struct step_job *j, int t) {
    bt_model *m = j->m;
    const struct bt_model_hparams *hp = &m->hp;
    struct bt_scratch *s = &m->s;
    const struct bt_layer *L = j->layer >= 0 ? &m->layers[j->layer] : NULL;
    int64_t ne = hp->n_embd, nq = (int64_t)hp->n_head * hp->head_dim;
    int64_t nkv = (int64_t)hp->n_head_kv * hp->head_dim, nf = hp->n_ff;
    switch (j->step) {
    case STEP_NORM_ATTN:
        bt_rmsnorm(s->x + t * ne, L->attn_norm, (int)ne, hp->norm_eps, s->xn + t * ne);
        break;
    case STEP_NORM_FFN:
        bt_rmsnorm(s->x + t * ne, L->ffn_norm, (int)ne, hp->norm_eps, s->xn + t * ne);
        break;
    case STEP_NORM_OUT:
        bt_rmsnorm(s->x + t * ne, m->out_norm, (int)ne, hp->norm_eps, j->dst + t * ne);
        break;
    case STEP_ADD_O:
        for (int64_t i = 0; i < ne; i++) s->x[t * ne + i] += s->o[t * ne + i];
        break;
    case STEP_SWIGLU:
        for (int64_t i = 0; i < nf; i++) {
            float g = s->g[t * nf + i];
            s->u[t * nf + i] *= g / (1.0f + expf(-g));
        }
        break;
    case STEP_ROPE_STORE: {
        float cs[1024];
        int   pos = j->pos0 + t;
        rope_cs(m->rope_inv, hp->n_rot, pos, cs);
        rope_heads(s->q + t * nq, hp->n_head, hp->head_dim, hp->n_rot, cs, L->q_halves);
        rope_heads(s->k + t * nkv, hp->n_head_kv, hp->head_dim, hp->n_rot, cs, L->k_halves);
        int64_t off = ((int64_t)j->layer * m->n_ctx + pos) * nkv;
        memcpy(m->kcache + off, s->k + t * nkv, (size_t)nkv * sizeof(float));
        memcpy(m->vcache + off, s->v + t * nkv, (size_t)nkv * sizeof(float));
        break;
    }
    }
}

static void step_range(void *arg, int64_t t0, int64_t t1, int tid) {
    (void)tid;
    for (int64_t t = t0; t < t1; t++) step_token(arg, (int)t);
}

static void run_step(bt_model *m, int step, int layer, int ntok, int pos0, float *dst) {
    struct step_job j = {m, step, layer, pos0, dst};
    if (ntok < 4) step_range(&j, 0, ntok, 0); /* a pool wake-up costs more than the work */
    else bt_parallel_for(ntok, 1, step_range, &j);
}

static void hook(bt_model *m, int layer, int which, const float *X, int ntok, int dim) {
    if (m->hook) m->hook(m->hook_user, layer, which, X, ntok, dim);
}

/* ---- one chunk of at most n_batch tokens ------------------------------------------------------ */
#define STOP_AT(which) do { if (m->stop_hook == (which) + 1) return BT_OK; } while (0)

bt_status bt_layer_forward(bt_model *m, int il, int nt, int pos0, bt_err *err) {
    const struct bt_model_hparams *hp = &m->hp;
    struct bt_layer *L = &m->layers[il];
    struct bt_scratch *s = &m->s;
    bt_status st;
    run_step(m, STEP_NORM_ATTN, il, nt, pos0, NULL);
    hook(m, il, BT_HOOK_ATTN_IN, s->xn, nt, hp->n_embd);
    STOP_AT(BT_HOOK_ATTN_IN);
    const struct bt_lin *qkv[3] = {&L->wq, &L->wk, &L->wv};
    float *qkv_out[3] = {s->q, s->k, s->v};
    if ((st = bt_lin_apply_n(m, qkv, 3, s->xn, nt, qkv_out, err))) return st;
    run_step(m, STEP_ROPE_STORE, il, nt, pos0, NULL);
    bt_attention(m, il, nt, pos0);
    hook(m, il, BT_HOOK_ATTN_OUT, s->att, nt, hp->n_head * hp->head_dim);
    STOP_AT(BT_HOOK_ATTN_OUT);
    if ((st = bt_lin_apply(m, &L->wo, s->att, nt, s->o, err))) return st;
    run_step(m, STEP_ADD_O, il, nt, pos0, NULL);
    run_step(m, STEP_NORM_FFN, il, nt, pos0, NULL);
    hook(m, il, BT_HOOK_FFN_IN, s->xn, nt, hp->n_embd);
    STOP_AT(BT_HOOK_FFN_IN);
    const struct bt_lin *gu[2] = {&L->wg, &L->wu};
    float *gu_out[2] = {s->g, s->u};
    if ((st = bt_lin_apply_n(m, gu, 2, s->xn, nt, gu_out, err))) return st;
    run_step(m, STEP_SWIGLU, il, nt, pos0, NULL);
    hook(m, il, BT_HOOK_FFN_DOWN, s->u, nt, hp->n_ff);
    STOP_AT(BT_HOOK_FFN_DOWN);
    if ((st = bt_lin_apply(m, &L->wd, s->u, nt, s->o, err))) return st;
    run_step(m, STEP_ADD_O, il, nt, pos0, NULL);
    return BT_OK;
}

static bt_status chunk_forward(bt_model *m, const int32_t *tokens, int nt, int pos0,
                               float *logits, int all_logits, bt_err *err) {
    const struct bt_model_hparams *hp = &m->hp;
    struct bt_scratch *s = &m->s;
    bt_status st;
    for (int t = 0; t < nt; t++)
        if ((st = bt_lin_row_f32(&m->tok_embd, tokens[t], s->x + (int64_t)t * hp->n_embd, err)))
            return st;
    for (int il = 0; il < hp->n_layer; il++)
        if ((st = bt_layer_forward(m, il, nt, pos0, err))) return st;
    if (!logits) return BT_OK;
    if (all_logits) {
        run_step(m, STEP_NORM_OUT, -1, nt, pos0, s->xn);
        return bt_lin_apply(m, &m->output, s->xn, nt, logits, err);
    }
    /* last token only: normalize its row in place of row 0 of xn */
    bt_rmsnorm(s->x + (int64_t)(nt - 1) * hp->n_embd, m->out_norm, hp->n_embd, hp->norm_eps,
               s->xn);
    return bt_lin_apply(m, &m->output, s->xn, 1, logits, err);
}

bt_status bt_model_forward(bt_model *m, const int32_t *tokens, int n, int pos0, float *logits,
                           int all_logits, bt_err *err) {
    if (n <= 0) return bt_err_set(err, BT_E_INVAL, "model: forward with %d tokens", n);
    if (pos0 < 0 || pos0 > m->n_past)
        return bt_err_set(err, BT_E_INVAL, "model: forward at position %d but the cache holds %d "
                          "tokens", pos0, m->n_past);
    if ((int64_t)pos0 + n > m->n_ctx)
        return bt_err_set(err, BT_E_INVAL, "model: %d tokens at position %d exceed the context "
                          "of %d", n, pos0, m->n_ctx);
    for (int t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= m->hp.n_vocab)
            return bt_err_set(err, BT_E_INVAL, "model: token id %d out of range [0, %d)",
                              tokens[t], m->hp.n_vocab);
    m->n_past = pos0;
    for (int done = 0; done < n;) {
        int nt = n - done < m->opts.n_batch ? n - done : m->opts.n_batch;
        int last = done + nt == n;
        float *lg = NULL;
        if (logits && all_logits) lg = logits + (int64_t)done * m->hp.n_vocab;
        else if (logits && last) lg = logits;
        bt_status st = chunk_forward(m, tokens + done, nt, pos0 + done, lg, all_logits, err);
        if (st) return st;
        done += nt;
        m->n_past = pos0 + done;
    }
    return BT_OK;
}
