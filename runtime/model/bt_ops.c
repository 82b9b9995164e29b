/* bt_ops.c - how the model runner talks to its backend: views of its buffers (weights, norm
 * parameters, KV cache, activation slots), the pending op list, weight upload, and the op-set
 * check done at load time so a backend that lacks an op or format fails early, by name. */
#include "bt_model_int.h"

#include "bt_types.h"

#include <stdlib.h>
#include <string.h>

static struct bt_tfmt f32_fmt(void) {
    struct bt_tfmt f = {BT_TYPE_F32, 0, 0, 0};
    return f;
}

struct bt_view bt_act_view(const bt_model *m, int slot, int64_t row0, int64_t nrows) {
    return bt_view_of(m->act, m->act_off[slot] + (uint64_t)(row0 * m->act_cols[slot]) * 4u,
                      f32_fmt(), nrows, m->act_cols[slot]);
}

struct bt_view bt_par_view(const bt_model *m, uint64_t off, int64_t n) {
    return bt_view_of(m->par, off, f32_fmt(), 1, n);
}

struct bt_view bt_kv_view(const bt_model *m, int val, int layer) {
    int64_t nkv = (int64_t)m->hp.n_head_kv * m->hp.head_dim;
    uint64_t per = (uint64_t)m->n_ctx * (uint64_t)nkv * 4u;
    return bt_view_of(m->kv, ((uint64_t)val * (uint64_t)m->hp.n_layer + (uint64_t)layer) * per,
                      f32_fmt(), m->n_ctx, nkv);
}

struct bt_view bt_lin_view(const struct bt_lin *w) {
    struct bt_view v = bt_view_of(w->buf, 0, w->fmt, w->rows, w->cols);
    for (int k = 0; k < BT_MAX_PARTS; k++) v.parts[k] = w->parts[k];
    return v;
}

bt_status bt_ops_add(bt_model *m, const struct bt_op *op, bt_err *err) {
    struct bt_oplist *l = &m->ol;
    if (l->n == l->cap) {
        uint32_t nc = l->cap ? 2 * l->cap : 64;
        struct bt_op *no = realloc(l->ops, nc * sizeof *no);
        if (!no) return bt_err_set(err, BT_E_NOMEM, "model: out of memory for the op list");
        l->ops = no;
        l->cap = nc;
    }
    l->ops[l->n++] = *op;
    return BT_OK;
}

bt_status bt_ops_flush(bt_model *m, bt_err *err) {
    uint32_t n = m->ol.n;
    m->ol.n = 0;
    return n ? bt_be_run(m->b, m->ol.ops, n, err) : BT_OK;
}

static struct bt_op matmul_op(const bt_model *m, const struct bt_lin *w, int xslot, int64_t xrow0,
                              int dslot, int64_t drow0, int ntok, int same) {
    struct bt_op op;
    memset(&op, 0, sizeof op);
    op.code = BT_OP_MATMUL;
    op.flags = same ? BT_OPF_SAME_INPUT : 0;
    op.dst = bt_act_view(m, dslot, drow0, ntok);
    op.dst.cols = w->rows;
    op.src[0] = bt_lin_view(w);
    op.src[1] = bt_act_view(m, xslot, xrow0, ntok);
    op.src[1].cols = w->cols;
    op.act = w->q8 ? BT_ACT_Q8 : BT_ACT_F32;
    return op;
}

/* the product times w's exact scale (BitNet), in place on its output */
static struct bt_op scale_op(const struct bt_op *mm, float s) {
    struct bt_op op;
    memset(&op, 0, sizeof op);
    op.code = BT_OP_SCALE;
    op.src[0] = op.dst = mm->dst;
    op.scale = s;
    return op;
}

bt_status bt_ops_matmul(bt_model *m, const struct bt_lin *w, int xslot, int64_t xrow0,
                        int dslot, int64_t drow0, int ntok, int same, bt_err *err) {
    struct bt_op op = matmul_op(m, w, xslot, xrow0, dslot, drow0, ntok, same);
    bt_status st = bt_ops_add(m, &op, err);
    if (st || w->scale == 0.0f) return st;
    struct bt_op sc = scale_op(&op, w->scale);
    return bt_ops_add(m, &sc, err);
}

/* ---- weights ---------------------------------------------------------------------------------- */
static bt_status upload(bt_model *m, const void *data, uint64_t n, bt_buf **out, bt_err *err) {
    bt_status st = bt_be_alloc(m->b, n, BT_BUF_WEIGHTS, out, err);
    if (!st && (st = bt_be_write(m->b, *out, 0, data, n, err))) {
        bt_be_free(m->b, *out);
        *out = NULL;
    }
    return st;
}

bt_status bt_lin_upload(bt_model *m, struct bt_lin *w, const void *data,
                        const struct bt_tensor *t, bt_err *err) {
    uint64_t n = (uint64_t)w->row_bytes * (uint64_t)w->rows;
    uint32_t np = bt_fmt_n_parts(&w->fmt);
    if (np && (!t || t->n_parts != np))
        return bt_err_set(err, BT_E_FORMAT, "model: tensor '%s' (%s) needs %u extra parts, has %u",
                          w->name, bt_type_name(w->fmt.type), np, t ? t->n_parts : 0);
    bt_buf *b = NULL;
    bt_status st = bt_be_wrap(m->b, data, n, &b, err);
    if (st == BT_E_UNSUPPORTED) {
        if ((st = bt_be_alloc(m->b, n, BT_BUF_WEIGHTS, &b, err))) return st;
        if ((st = bt_be_write(m->b, b, 0, data, n, err))) { bt_be_free(m->b, b); return st; }
    } else if (st) {
        return st;
    }
    w->buf = b;
    w->owned = 1;
    for (uint32_t k = 0; k < np; k++)
        if ((st = upload(m, t->parts[k], t->part_bytes[k], &w->parts[k], err))) return st;
    return BT_OK;
}

void bt_lin_free(bt_model *m, struct bt_lin *w) {
    if (w->owned) {
        bt_be_free(m->b, w->buf);
        for (int k = 0; k < BT_MAX_PARTS; k++) bt_be_free(m->b, w->parts[k]);
    }
    memset(w->parts, 0, sizeof w->parts);
    w->buf = NULL;
    w->owned = 0;
}

bt_status bt_lin_rows_f32(bt_model *m, const struct bt_lin *w, const int32_t *ids, int n,
                          float *dst, bt_err *err) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= w->rows)
            return bt_err_set(err, BT_E_INVAL, "model: token id %d out of range [0, %lld)", ids[i],
                              (long long)w->rows);
    for (int done = 0; done < n;) {
        int k = n - done < m->opts.n_batch ? n - done : m->opts.n_batch;
        struct bt_op op;
        memset(&op, 0, sizeof op);
        op.code = BT_OP_GET_ROWS;
        op.dst = bt_act_view(m, A_X, 0, k);
        op.src[0] = bt_lin_view(w);
        op.ids = ids + done;
        bt_status st = bt_be_run(m->b, &op, 1, err);
        if (!st) st = bt_model_x_get(m, dst + (int64_t)done * w->cols, k, err);
        if (st) return st;
        done += k;
    }
    return BT_OK;
}

bt_status bt_model_x_set(bt_model *m, const float *x, int nt, bt_err *err) {
    return bt_be_write(m->b, m->act, m->act_off[A_X], x,
                       (uint64_t)nt * (uint64_t)m->hp.n_embd * 4u, err);
}

bt_status bt_model_x_get(bt_model *m, float *x, int nt, bt_err *err) {
    return bt_be_read(m->b, m->act, m->act_off[A_X], x,
                      (uint64_t)nt * (uint64_t)m->hp.n_embd * 4u, err);
}

/* ---- load-time check ---------------------------------------------------------------------------- */
static bt_status need(bt_model *m, const struct bt_op *op, const char *tensor, bt_err *err) {
    if (bt_be_supports(m->b, op)) return BT_OK;
    char fs[32] = "f32";
    if (op->code == BT_OP_MATMUL || op->code == BT_OP_GET_ROWS) bt_fmt_str(&op->src[0].fmt, fs, sizeof fs);
    return bt_err_set(err, BT_E_UNSUPPORTED, "backend '%s' does not support %s%s on %s%s%s%s",
                      bt_backend_name(m->b), bt_op_name(op->code),
                      op->code == BT_OP_MATMUL ? (op->act == BT_ACT_Q8 ? " (int8 activations)"
                                                                      : " (f32 activations)") : "",
                      fs, tensor ? " (tensor '" : "", tensor ? tensor : "", tensor ? "')" : "");
}

static bt_status need_lin(bt_model *m, const struct bt_lin *w, int xslot, int dslot, bt_err *err) {
    int nb = m->opts.n_batch;
    for (int k = 0; k < 2; k++) { /* one token and a full batch */
        int nt = k ? (nb < BT_LOGIT_ROWS || dslot != A_LOGITS ? nb : BT_LOGIT_ROWS) : 1;
        struct bt_op op = matmul_op(m, w, xslot, 0, dslot, 0, nt, 0);
        bt_status st = need(m, &op, w->name, err);
        if (st) return st;
        struct bt_op sc = scale_op(&op, w->scale);
        if (w->scale != 0.0f && (st = need(m, &sc, w->name, err))) return st;
    }
    return BT_OK;
}

bt_status bt_ops_check(bt_model *m, bt_err *err) {
    const struct bt_model_hparams *hp = &m->hp;
    int nb = m->opts.n_batch;
    struct bt_op op;
    memset(&op, 0, sizeof op);
    op.code = BT_OP_GET_ROWS;
    op.dst = bt_act_view(m, A_X, 0, nb);
    op.src[0] = bt_lin_view(&m->tok_embd);
    op.ids = &hp->n_vocab; /* any pointer: supports_op does not read ids */
    bt_status st = need(m, &op, m->tok_embd.name, err);
    if (st) return st;
    /* the element-wise ops exactly as the forward pass builds them (bt_forward.c), at the last
     * position a full chunk can start at: norms out of place and of the last row alone, RoPE in
     * both pair orders, K/V stores and attention at the end of the cache */
    int pl = m->n_ctx - nb, L = hp->n_layer - 1;
    struct bt_op v[] = {
        bt_op_norm(m, A_X, 0, A_XN, nb, m->out_norm), bt_op_norm(m, A_X, nb - 1, A_XN, 1, m->out_norm),
        bt_op_rope(m, A_Q, nb, pl, 1), bt_op_rope(m, A_K, nb, pl, 0),
        bt_op_store(m, A_K, 0, L, nb, pl), bt_op_store(m, A_V, 1, L, nb, pl),
        bt_op_attn(m, L, nb, pl), bt_op_ew(m, BT_OP_SWIGLU, A_G, A_U, A_U, nb),
        bt_op_ew(m, BT_OP_ADD, A_X, A_O, A_X, nb),
    };
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
        if ((st = need(m, &v[k], NULL, err))) return st;
    if (hp->bitnet) {
        const struct bt_layer *Ll = &m->layers[L];
        struct bt_op b[] = {bt_op_quant_row(m, A_XN, nb), bt_op_quant_row(m, A_ATT, nb),
                            bt_op_quant_row(m, A_U, nb), bt_op_norm_slot(m, A_ATT, nb, Ll->attn_sub),
                            bt_op_norm_slot(m, A_U, nb, Ll->ffn_sub)};
        for (size_t k = 0; k < sizeof b / sizeof b[0]; k++)
            if ((st = need(m, &b[k], NULL, err))) return st;
    }
    if (hp->relu2) {
        struct bt_op r2 = bt_op_ew(m, BT_OP_RELU2, A_G, A_U, A_U, nb);
        if ((st = need(m, &r2, NULL, err))) return st;
    }
    if (m->has_bias) {
        int br = nb < BT_BIAS_ROWS ? nb : BT_BIAS_ROWS;
        const struct bt_layer *Ll = &m->layers[L];
        struct bt_op b[] = {bt_op_bias(m, A_Q, nb - br, br, Ll->bias[0]),
                            bt_op_bias(m, A_K, nb - br, br, Ll->bias[1]),
                            bt_op_bias(m, A_V, nb - br, br, Ll->bias[2])};
        for (size_t k = 0; k < sizeof b / sizeof b[0]; k++)
            if ((st = need(m, &b[k], NULL, err))) return st;
    }
    for (int il = 0; il < hp->n_layer; il++) {
        const struct bt_layer *L = &m->layers[il];
        const struct bt_lin *in_e[5] = {&L->wq, &L->wk, &L->wv, &L->wg, &L->wu};
        for (int i = 0; i < 5; i++)
            if ((st = need_lin(m, in_e[i], A_XN, i < 3 ? (i == 0 ? A_Q : i == 1 ? A_K : A_V)
                                                        : (i == 3 ? A_G : A_U), err)))
                return st;
        if ((st = need_lin(m, &L->wo, A_ATT, A_O, err))) return st;
        if ((st = need_lin(m, &L->wd, A_U, A_O, err))) return st;
    }
    return need_lin(m, &m->output, A_XN, A_LOGITS, err);
}
