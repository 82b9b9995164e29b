/* bt_model.c - loading a Llama-family model from a bt_reader: hyper-parameters from llama.*
 * metadata, shape validation, weights into backend memory (wrapped in place when the backend
 * can, else uploaded once), norm parameters, KV cache and activation buffers on the backend. */
#include "bt_model_int.h"

#include "bt_types.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- metadata ------------------------------------------------------------------------------ */
static const struct bt_kv *kv_find(struct bt_reader *r, const char *key, struct bt_kv *tmp) {
    uint32_t n = r->i->kv_count(r->ctx);
    for (uint32_t i = 0; i < n; i++) {
        if (r->i->kv_get(r->ctx, i, tmp) == BT_OK && tmp->key && strcmp(tmp->key, key) == 0)
            return tmp;
    }
    return NULL;
}

/* numeric KV as double; returns 0 if absent or not a number */
static int kv_num(struct bt_reader *r, const char *key, double *out) {
    struct bt_kv tmp;
    const struct bt_kv *kv = kv_find(r, key, &tmp);
    if (!kv) return 0;
    switch (kv->type) {
    case BT_KV_U8: case BT_KV_U16: case BT_KV_U32: case BT_KV_U64: case BT_KV_BOOL:
        *out = (double)kv->v.u; return 1;
    case BT_KV_I8: case BT_KV_I16: case BT_KV_I32: case BT_KV_I64:
        *out = (double)kv->v.i; return 1;
    case BT_KV_F32: case BT_KV_F64:
        *out = kv->v.f; return 1;
    default:
        return 0;
    }
}

static bt_status hp_int(struct bt_reader *r, const char *key, int required, int32_t def,
                        int32_t *out, bt_err *err) {
    double v;
    if (!kv_num(r, key, &v)) {
        if (required) return bt_err_set(err, BT_E_FORMAT, "model: metadata key '%s' missing", key);
        *out = def;
        return BT_OK;
    }
    if (v < 0 || v > 1e9 || v != floor(v))
        return bt_err_set(err, BT_E_FORMAT, "model: metadata key '%s' has bad value %g", key, v);
    *out = (int32_t)v;
    return BT_OK;
}

static bt_status read_hparams(struct bt_reader *r, struct bt_model_hparams *hp, bt_err *err) {
    struct bt_kv tmp;
    const struct bt_kv *arch = kv_find(r, "general.architecture", &tmp);
    if (arch && arch->type == BT_KV_STRING && strcmp(arch->v.s, "llama") != 0 &&
        strcmp(arch->v.s, "qwen2") != 0 && strcmp(arch->v.s, "bitnet") != 0)
        return bt_err_set(err, BT_E_UNSUPPORTED, "model: architecture '%s' is not supported "
                          "(llama, qwen2, bitnet)", arch->v.s);
    /* keys are "<arch>.<name>"; qwen2 = llama + q/k/v biases + rotate-half (NEOX) rope;
     * bitnet = llama + sub-norms + 8-bit per-token activations + rotate-half rope */
    hp->qwen2 = arch && arch->type == BT_KV_STRING && strcmp(arch->v.s, "qwen2") == 0;
    hp->bitnet = arch && arch->type == BT_KV_STRING && strcmp(arch->v.s, "bitnet") == 0;
    const char *a = hp->qwen2 ? "qwen2" : hp->bitnet ? "bitnet" : "llama";
    const struct bt_kv *act = kv_find(r, "bt.ffn_activation", &tmp);
    if (act && (act->type != BT_KV_STRING || (strcmp(act->v.s, "silu") != 0 &&
                                              strcmp(act->v.s, "relu2") != 0)))
        return bt_err_set(err, BT_E_UNSUPPORTED, "model: bt.ffn_activation '%s' is not supported "
                          "(silu, relu2)", act->type == BT_KV_STRING ? act->v.s : "?");
    hp->relu2 = act && strcmp(act->v.s, "relu2") == 0;
    char kb[96];
#define AK(name) (snprintf(kb, sizeof kb, "%s.%s", a, name), kb)
    bt_status st;
    if ((st = hp_int(r, AK("embedding_length"), 1, 0, &hp->n_embd, err))) return st;
    if ((st = hp_int(r, AK("block_count"), 1, 0, &hp->n_layer, err))) return st;
    if ((st = hp_int(r, AK("attention.head_count"), 1, 0, &hp->n_head, err))) return st;
    if ((st = hp_int(r, AK("attention.head_count_kv"), 0, hp->n_head, &hp->n_head_kv, err)))
        return st;
    if ((st = hp_int(r, AK("feed_forward_length"), 1, 0, &hp->n_ff, err))) return st;
    if ((st = hp_int(r, AK("context_length"), 0, 0, &hp->n_ctx_train, err))) return st;
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 ||
        hp->n_ff <= 0 || hp->n_head % hp->n_head_kv != 0)
        return bt_err_set(err, BT_E_FORMAT, "model: bad hyper-parameters (embd %d, layers %d, "
                          "heads %d/%d, ff %d)", hp->n_embd, hp->n_layer, hp->n_head,
                          hp->n_head_kv, hp->n_ff);
    int32_t hd_def = hp->n_embd / hp->n_head;
    if ((st = hp_int(r, AK("attention.key_length"), 0, hd_def, &hp->head_dim, err))) return st;
    if ((st = hp_int(r, AK("rope.dimension_count"), 0, hp->head_dim, &hp->n_rot, err)))
        return st;
    if (hp->head_dim <= 0 || hp->head_dim % 2 || hp->n_rot % 2 || hp->n_rot > hp->head_dim ||
        hp->n_rot > 1024)
        return bt_err_set(err, BT_E_FORMAT, "model: bad head_dim %d / rope dims %d",
                          hp->head_dim, hp->n_rot);
    double v;
    /* sliding-window attention (Mistral): exact as long as the context fits in the window, so
     * longer contexts are refused rather than computed with full attention */
    if (kv_num(r, AK("attention.sliding_window"), &v) && v >= 1 &&
        (hp->n_ctx_train == 0 || v < hp->n_ctx_train)) {
        hp->n_ctx_train = (int32_t)v;
        hp->sliding_window = 1;
    }
    /* rope scaling: linear divides the positions (= the inverse frequencies) by the factor;
     * llama3 comes as the rope_freqs.weight divisors; other types are refused by name */
    const struct bt_kv *rs = kv_find(r, AK("rope.scaling.type"), &tmp);
    hp->rope_scale = 1.0f;
    if (rs && rs->type == BT_KV_STRING && strcmp(rs->v.s, "none") != 0) {
        if (strcmp(rs->v.s, "linear") != 0)
            return bt_err_set(err, BT_E_UNSUPPORTED, "model: %s.rope.scaling.type '%s' is not "
                              "supported (none, linear; llama3 as rope_freqs.weight)", a, rs->v.s);
        if (kv_num(r, AK("rope.scaling.factor"), &v)) {
            if (!(v > 0) || !isfinite(v))
                return bt_err_set(err, BT_E_FORMAT, "model: %s.rope.scaling.factor %g is not "
                                  "a positive number", a, v);
            hp->rope_scale = (float)v;
        }
    }
    hp->norm_eps  = kv_num(r, AK("attention.layer_norm_rms_epsilon"), &v) ? (float)v : 1e-5f;
    hp->rope_base = kv_num(r, AK("rope.freq_base"), &v) ? (float)v : 10000.0f;
    hp->bos_id    = kv_num(r, "tokenizer.ggml.bos_token_id", &v) ? (int32_t)v : -1;
    hp->eos_id    = kv_num(r, "tokenizer.ggml.eos_token_id", &v) ? (int32_t)v : -1;
#undef AK
    return BT_OK;
}

/* ---- tensors -------------------------------------------------------------------------------- */
static int64_t tensor_find(struct bt_reader *r, const char *name, struct bt_tensor *t,
                           bt_err *err) {
    uint32_t n = r->i->tensor_count(r->ctx);
    for (uint32_t i = 0; i < n; i++) {
        if (r->i->tensor_get(r->ctx, i, t, err) != BT_OK) return -2;
        if (t->name && strcmp(t->name, name) == 0) return i;
    }
    return -1;
}

static void shape_str(const struct bt_tensor *t, char *buf, size_t n) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "{");
    for (uint32_t d = 0; d < t->n_dims && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (o < n) snprintf(buf + o, n - o, "}");
}

/* formats with integer-dot products (BT_FMT_INTDOT) use int8 activations when act_q8 is on */
static int use_q8(const bt_model *m, const struct bt_tfmt *f, int64_t cols) {
    const struct bt_format *d = bt_format_get(f->type);
    return d && (d->flags & BT_FMT_INTDOT) && m->opts.act_q8 && cols % BT_ACT_Q8_BLOCK == 0 &&
           !m->hp.bitnet; /* bitnet: its own per-token int8 (quant_row) already */
}

/* BitNet: a TQ2_0 weight whose reader gives its exact f32 scale (bt.weight_scale.<name>, from
 * the safetensors BitNet input and bitnet.cpp's I2_S; docs/formats.md) runs with block scales 1
 * and the scale applied after the product (BT_OP_SCALE), not rounded to fp16 as the blocks hold
 * it. Every block must hold fp16(scale); the weights are uploaded as a copy with d = 1. */
static bt_status lin_exact_scale(bt_model *m, struct bt_lin *w, const struct bt_tensor *t,
                                 bt_err *err) {
    char key[160];
    struct bt_kv tmp;
    snprintf(key, sizeof key, "bt.weight_scale.%s", w->name);
    const struct bt_kv *kv = kv_find(m->r, key, &tmp);
    if (!kv) return bt_lin_upload(m, w, t->data, t, err);
    float s = kv->type == BT_KV_F32 || kv->type == BT_KV_F64 ? (float)kv->v.f : NAN;
    if (!isfinite(s) || s < 0.0f)
        return bt_err_set(err, BT_E_FORMAT, "model: key '%s' must be a finite f32 >= 0", key);
    if (s == 0.0f) return bt_lin_upload(m, w, t->data, t, err); /* all zero: nothing to scale */
    uint64_t nb = (uint64_t)w->rows * (uint64_t)(w->cols / 256), n = nb * 66;
    uint16_t h = bt_f32_to_fp16(s);
    uint8_t *cp = malloc((size_t)n);
    if (!cp) return bt_err_set(err, BT_E_NOMEM, "model: out of memory copying '%s'", w->name);
    memcpy(cp, t->data, (size_t)n);
    for (uint64_t b = 0; b < nb; b++) {
        uint8_t *d = cp + b * 66 + 64;
        if ((uint16_t)(d[0] | d[1] << 8) != h) {
            free(cp);
            return bt_err_set(err, BT_E_FORMAT, "model: tensor '%s': block %llu's scale is not %s "
                              "= %g rounded to fp16", w->name, (unsigned long long)b, key, (double)s);
        }
        d[0] = 0x00; /* fp16 1.0 = 0x3c00 */
        d[1] = 0x3c;
    }
    bt_status st = bt_be_alloc(m->b, n, BT_BUF_WEIGHTS, &w->buf, err);
    if (!st) {
        w->owned = 1;
        st = bt_be_write(m->b, w->buf, 0, cp, n, err);
    }
    free(cp);
    w->scale = s;
    return st;
}

/* look up name, check it is 2-D {rows, cols} (rows < 0: any), fill a linear view */
static bt_status lin_load(bt_model *m, const char *name, int64_t rows, int64_t cols,
                          struct bt_lin *w, struct bt_tensor *tout, bt_err *err) {
    struct bt_tensor t;
    int64_t idx = tensor_find(m->r, name, &t, err);
    if (idx == -2) return err->status ? err->status : BT_E_FORMAT;
    if (idx < 0) return bt_err_set(err, BT_E_FORMAT, "model: tensor '%s' missing", name);
    if (t.n_dims != 2 || (rows >= 0 && t.shape[0] != rows) || t.shape[1] != cols) {
        char got[96];
        shape_str(&t, got, sizeof got);
        return bt_err_set(err, BT_E_FORMAT, "model: tensor '%s' has shape %s, expected {%lld, %lld}",
                          name, got, (long long)rows, (long long)cols);
    }
    if (!t.data)
        return bt_err_set(err, BT_E_UNSUPPORTED, "model: tensor '%s' is not memory-mapped", name);
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    w->fmt       = t.fmt;
    w->rows      = t.shape[0];
    w->cols      = t.shape[1];
    w->row_bytes = bt_fmt_row_bytes(&t.fmt, w->cols);
    if (w->row_bytes == 0 || (uint64_t)w->row_bytes * (uint64_t)w->rows > t.nbytes)
        return bt_err_set(err, BT_E_FORMAT, "model: tensor '%s' (%s, %lld x %lld) has %llu bytes",
                          name, bt_type_name(t.fmt.type), (long long)w->rows, (long long)w->cols,
                          (unsigned long long)t.nbytes);
    w->q8 = use_q8(m, &t.fmt, w->cols);
    if (tout) *tout = t;
    if (m->hp.bitnet && t.fmt.type == BT_TYPE_TQ2_0) return lin_exact_scale(m, w, &t, err);
    return bt_lin_upload(m, w, t.data, &t, err);
}

bt_status bt_lin_set(bt_model *m, struct bt_lin *w, const struct bt_tfmt *fmt, const void *data,
                     uint64_t nbytes, bt_err *err) {
    size_t rb = bt_fmt_row_bytes(fmt, w->cols);
    if (!rb || (uint64_t)rb * (uint64_t)w->rows > nbytes)
        return bt_err_set(err, BT_E_FORMAT, "model: new data for '%s' (%s) has %llu bytes", w->name,
                          bt_type_name(fmt->type), (unsigned long long)nbytes);
    if (bt_fmt_n_parts(fmt))
        return bt_err_set(err, BT_E_UNSUPPORTED, "model: '%s': formats with extra parts (%s) cannot "
                          "be swapped in", w->name, bt_type_name(fmt->type));
    if (w == &m->tok_embd || w == &m->output) /* tied: the two share one buffer */
        return bt_err_set(err, BT_E_UNSUPPORTED, "model: '%s': embeddings and lm_head cannot be "
                          "swapped in", w->name);
    struct bt_lin nw = *w;
    memset(nw.parts, 0, sizeof nw.parts);
    nw.fmt       = *fmt;
    nw.row_bytes = rb;
    nw.q8        = use_q8(m, fmt, w->cols);
    nw.scale     = 0; /* new data: its own block scales */
    bt_status st = bt_lin_upload(m, &nw, data, NULL, err);
    if (st) return st;
    bt_lin_free(m, w);
    *w = nw;
    return BT_OK;
}

/* 1-D f32 vector of n elements (norm weights, rope_freqs) */
static bt_status vec_load(bt_model *m, const char *name, int64_t n, int optional, float **out,
                          bt_err *err) {
    struct bt_tensor t;
    *out = NULL;
    int64_t idx = tensor_find(m->r, name, &t, err);
    if (idx == -2) return err->status ? err->status : BT_E_FORMAT;
    if (idx < 0) {
        if (optional) return BT_OK;
        return bt_err_set(err, BT_E_FORMAT, "model: tensor '%s' missing", name);
    }
    if (bt_tensor_numel(&t) != n || t.n_dims != 1) {
        char got[96];
        shape_str(&t, got, sizeof got);
        return bt_err_set(err, BT_E_FORMAT, "model: tensor '%s' has shape %s, expected {%lld}",
                          name, got, (long long)n);
    }
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return bt_err_set(err, BT_E_NOMEM, "model: out of memory for '%s'", name);
    bt_status st = bt_reader_read_f32(m->r, (uint32_t)idx, 0, 1, v, err);
    if (st) { free(v); return st; }
    *out = v;
    return BT_OK;
}

/* a required 1-D vector into the host staging copy of the parameter buffer at byte offset off */
static bt_status par_load(bt_model *m, const char *name, int64_t n, uint64_t off, float *par,
                          bt_err *err) {
    float *v = NULL;
    bt_status st = vec_load(m, name, n, 0, &v, err);
    if (st) return st;
    memcpy(par + off / 4, v, (size_t)n * sizeof(float));
    free(v);
    return BT_OK;
}

static bt_status layer_load(bt_model *m, int il, float *par, bt_err *err) {
    const struct bt_model_hparams *hp = &m->hp;
    struct bt_layer *L = &m->layers[il];
    int64_t nq = (int64_t)hp->n_head * hp->head_dim, nkv = (int64_t)hp->n_head_kv * hp->head_dim;
    char nm[96];
    struct bt_tensor tq, tk;
    bt_status st;
#define LIN(field, suffix, R, C, tptr)                                                        \
    snprintf(nm, sizeof nm, "blk.%d.%s.weight", il, suffix);                                  \
    if ((st = lin_load(m, nm, R, C, &L->field, tptr, err))) return st;
    LIN(wq, "attn_q", nq, hp->n_embd, &tq)
    LIN(wk, "attn_k", nkv, hp->n_embd, &tk)
    LIN(wv, "attn_v", nkv, hp->n_embd, NULL)
    LIN(wo, "attn_output", hp->n_embd, nq, NULL)
    LIN(wg, "ffn_gate", hp->n_ff, hp->n_embd, NULL)
    LIN(wu, "ffn_up", hp->n_ff, hp->n_embd, NULL)
    LIN(wd, "ffn_down", hp->n_embd, hp->n_ff, NULL)
#undef LIN
    L->q_halves = hp->qwen2 || hp->bitnet || (tq.flags & BT_TENSOR_ROPE_HALVES) != 0;
    L->k_halves = hp->qwen2 || hp->bitnet || (tk.flags & BT_TENSOR_ROPE_HALVES) != 0;
    if (hp->bitnet) { /* sub-norms of the attention output (nq) and of the FFN inner (n_ff) */
        L->attn_sub = m->sub_off + (uint64_t)il * (uint64_t)(nq + hp->n_ff) * 4u;
        L->ffn_sub = L->attn_sub + (uint64_t)nq * 4u;
        snprintf(nm, sizeof nm, "blk.%d.attn_sub_norm.weight", il);
        if ((st = par_load(m, nm, nq, L->attn_sub, par, err))) return st;
        snprintf(nm, sizeof nm, "blk.%d.ffn_sub_norm.weight", il);
        if ((st = par_load(m, nm, hp->n_ff, L->ffn_sub, par, err))) return st;
    }
    if (m->has_bias) { /* q/k/v biases, each replicated BT_BIAS_ROWS times */
        const char *bn[3] = {"attn_q", "attn_k", "attn_v"};
        int64_t len[3] = {nq, nkv, nkv};
        uint64_t off = m->bias_off + (uint64_t)il * BT_BIAS_ROWS * (uint64_t)(nq + 2 * nkv) * 4u;
        for (int i = 0; i < 3; i++) {
            float *v = NULL;
            snprintf(nm, sizeof nm, "blk.%d.%s.bias", il, bn[i]);
            if ((st = vec_load(m, nm, len[i], 0, &v, err))) return st;
            L->bias[i] = off;
            for (int r = 0; r < BT_BIAS_ROWS; r++)
                memcpy(par + off / 4 + (uint64_t)r * (uint64_t)len[i], v, (size_t)len[i] * 4);
            off += BT_BIAS_ROWS * (uint64_t)len[i] * 4u;
            free(v);
        }
    }
    snprintf(nm, sizeof nm, "blk.%d.attn_norm.weight", il);
    L->attn_norm = (uint64_t)(2 * il) * (uint64_t)hp->n_embd * 4u;
    if ((st = par_load(m, nm, hp->n_embd, L->attn_norm, par, err))) return st;
    snprintf(nm, sizeof nm, "blk.%d.ffn_norm.weight", il);
    L->ffn_norm = (uint64_t)(2 * il + 1) * (uint64_t)hp->n_embd * 4u;
    return par_load(m, nm, hp->n_embd, L->ffn_norm, par, err);
}

/* inverse rope frequencies: base^(-2k/n_rot) / rope_freqs[k] */
static bt_status rope_init(bt_model *m, float *par, bt_err *err) {
    int half = m->hp.n_rot / 2;
    float *freqs = NULL;
    bt_status st = vec_load(m, "rope_freqs.weight", half, 1, &freqs, err);
    if (st) return st;
    float *inv_f = par + m->rope_inv / 4;
    for (int k = 0; k < half; k++) {
        double inv = pow((double)m->hp.rope_base, -2.0 * k / m->hp.n_rot) / m->hp.rope_scale;
        if (freqs) inv /= freqs[k];
        inv_f[k] = (float)inv;
        if (m->opts.rope_bf16) inv_f[k] = bt_bf16_to_f32(bt_f32_to_bf16(inv_f[k]));
    }
    free(freqs);
    return BT_OK;
}

/* ---- KV cache and activations ------------------------------------------------------------------ */
static bt_status buffers_init(bt_model *m, bt_err *err) {
    const struct bt_model_hparams *hp = &m->hp;
    int64_t nb = m->opts.n_batch, nq = (int64_t)hp->n_head * hp->head_dim;
    int64_t nkv = (int64_t)hp->n_head_kv * hp->head_dim;
    int64_t cols[A_COUNT] = {hp->n_embd, hp->n_embd, nq, nkv, nkv, nq, hp->n_embd, hp->n_ff,
                             hp->n_ff, hp->n_vocab};
    uint64_t off = 0, maxc = 0;
    for (int s = 0; s < A_COUNT; s++) {
        int64_t rows = s == A_LOGITS ? (nb < BT_LOGIT_ROWS ? nb : BT_LOGIT_ROWS) : nb;
        m->act_off[s] = off;
        m->act_cols[s] = cols[s];
        off += ((uint64_t)(rows * cols[s]) * 4u + 255u) & ~(uint64_t)255u;
        if (s != A_LOGITS && (uint64_t)cols[s] > maxc) maxc = (uint64_t)cols[s];
    }
    uint64_t kvn = 2u * (uint64_t)hp->n_layer * (uint64_t)m->n_ctx * (uint64_t)nkv * 4u;
    bt_status st = bt_be_alloc(m->b, kvn, BT_BUF_KV, &m->kv, err);
    if (st) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return bt_err_set(err, st, "model: no memory on backend '%s' for the KV cache (%d tokens, "
                          "%.1f MB): %s", bt_backend_name(m->b), m->n_ctx, (double)kvn / 1e6, why);
    }
    if ((st = bt_be_alloc(m->b, off, BT_BUF_ACT, &m->act, err))) return st;
    m->hook_buf = malloc((size_t)nb * maxc * sizeof(float));
    if (!m->hook_buf) return bt_err_set(err, BT_E_NOMEM, "model: out of memory");
    return BT_OK;
}

/* norm weights and rope frequencies: staged on the host, uploaded once */
static bt_status params_load(bt_model *m, bt_err *err) {
    const struct bt_model_hparams *hp = &m->hp;
    uint64_t E4 = (uint64_t)hp->n_embd * 4u;
    m->out_norm = 2u * (uint64_t)hp->n_layer * E4;
    m->rope_inv = m->out_norm + E4;
    uint64_t n = m->rope_inv + (uint64_t)(hp->n_rot / 2) * 4u;
    /* q/k/v biases (qwen2; optional for llama): the first layer decides for all */
    struct bt_tensor t;
    int64_t bi = tensor_find(m->r, "blk.0.attn_q.bias", &t, err);
    if (bi == -2) return err->status ? err->status : BT_E_FORMAT;
    if (bi < 0 && hp->qwen2)
        return bt_err_set(err, BT_E_FORMAT, "model: tensor 'blk.0.attn_q.bias' missing (qwen2 "
                          "has q/k/v biases)");
    m->has_bias = bi >= 0;
    if (m->has_bias) {
        int64_t nq = (int64_t)hp->n_head * hp->head_dim, nkv = (int64_t)hp->n_head_kv * hp->head_dim;
        m->bias_off = (n + 255u) & ~(uint64_t)255u;
        n = m->bias_off + (uint64_t)hp->n_layer * BT_BIAS_ROWS * (uint64_t)(nq + 2 * nkv) * 4u;
    }
    if (hp->bitnet) {
        m->sub_off = (n + 255u) & ~(uint64_t)255u;
        n = m->sub_off + (uint64_t)hp->n_layer * (uint64_t)((int64_t)hp->n_head * hp->head_dim +
                                                            hp->n_ff) * 4u;
    }
    float *par = calloc(n / 4 + 1, sizeof(float));
    if (!par) return bt_err_set(err, BT_E_NOMEM, "model: out of memory");
    bt_status st = par_load(m, "output_norm.weight", hp->n_embd, m->out_norm, par, err);
    if (!st) st = rope_init(m, par, err);
    for (int il = 0; il < hp->n_layer && !st; il++) st = layer_load(m, il, par, err);
    if (!st) st = bt_be_alloc(m->b, n, BT_BUF_WEIGHTS, &m->par, err);
    if (!st) st = bt_be_write(m->b, m->par, 0, par, n, err);
    free(par);
    return st;
}

/* ---- public ---------------------------------------------------------------------------------- */
static bt_status model_init(bt_model *m, bt_err *err) {
    struct bt_model_hparams *hp = &m->hp;
    bt_status st = read_hparams(m->r, hp, err);
    if (st) return st;
    int32_t want = m->opts.n_ctx;
    if (want < 0) return bt_err_set(err, BT_E_INVAL, "model: ctx %d is negative", want);
    if (hp->n_ctx_train > 0 && want > hp->n_ctx_train)
        return bt_err_set(err, BT_E_INVAL, hp->sliding_window
                          ? "model: ctx %d exceeds the model's attention sliding window %d (bt runs "
                            "sliding-window models only within one window)"
                          : "model: ctx %d exceeds the model's context_length %d", want,
                          hp->n_ctx_train);
    if (want == 0) want = hp->n_ctx_train > 0 && hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    m->n_ctx = want;
    if (m->opts.n_batch <= 0) m->opts.n_batch = 512;
    if (m->opts.n_batch > m->n_ctx) m->opts.n_batch = m->n_ctx;
    /* embeddings first: n_vocab comes from its rows */
    if ((st = lin_load(m, "token_embd.weight", -1, hp->n_embd, &m->tok_embd, NULL, err)))
        return st;
    hp->n_vocab = (int32_t)m->tok_embd.rows;
    double v;
    const char *vk = hp->qwen2    ? "qwen2.vocab_size"
                     : hp->bitnet ? "bitnet.vocab_size"
                                  : "llama.vocab_size";
    if (kv_num(m->r, vk, &v) && (int64_t)v != hp->n_vocab)
        return bt_err_set(err, BT_E_FORMAT, "model: %s %lld != token_embd.weight rows %d", vk,
                          (long long)v, hp->n_vocab);
    struct bt_tensor t;
    int64_t oi = tensor_find(m->r, "output.weight", &t, err);
    if (oi == -2) return err->status ? err->status : BT_E_FORMAT;
    hp->tied = oi < 0;
    if (hp->tied) { m->output = m->tok_embd; m->output.owned = 0; }
    else if ((st = lin_load(m, "output.weight", hp->n_vocab, hp->n_embd, &m->output, NULL, err)))
        return st;
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return bt_err_set(err, BT_E_NOMEM, "model: out of memory");
    if ((st = params_load(m, err))) return st;
    if ((st = buffers_init(m, err))) return st;
    if ((st = bt_ops_check(m, err))) return st;
    return bt_model_tok_init(m, err);
}

bt_status bt_model_load(struct bt_reader *r, struct bt_backend *b,
                        const struct bt_model_opts *opts, bt_model **out, bt_err *err) {
    *out = NULL;
    if (!r) return bt_err_set(err, BT_E_INVAL, "model: no reader");
    if (!b) return bt_err_set(err, BT_E_INVAL, "model: no compute backend");
    bt_model *m = calloc(1, sizeof *m);
    if (!m) return bt_err_set(err, BT_E_NOMEM, "model: out of memory");
    m->r = r;
    m->b = b;
    if (opts) m->opts = *opts;
    bt_status st = model_init(m, err);
    if (st) {
        bt_model_free(m);
        return st;
    }
    *out = m;
    return BT_OK;
}

void bt_model_free(bt_model *m) {
    if (!m) return;
    bt_model_tok_free(m);
    if (m->layers) {
        for (int il = 0; il < m->hp.n_layer; il++) {
            struct bt_layer *L = &m->layers[il];
            struct bt_lin *w[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
            for (int i = 0; i < 7; i++) bt_lin_free(m, w[i]);
        }
    }
    bt_lin_free(m, &m->output);
    bt_lin_free(m, &m->tok_embd);
    free(m->layers);
    bt_be_free(m->b, m->par);
    bt_be_free(m->b, m->kv);
    bt_be_free(m->b, m->act);
    free(m->ol.ops);
    free(m->hook_buf);
    free(m);
}

const struct bt_model_hparams *bt_model_hparams(const bt_model *m) { return &m->hp; }
int32_t bt_model_n_ctx(const bt_model *m) { return m->n_ctx; }
void    bt_model_reset(bt_model *m) { m->n_past = 0; }
void    bt_model_set_hook(bt_model *m, bt_model_hook_fn fn, void *user) {
    m->hook      = fn;
    m->hook_user = user;
}
