/* bt_forward.c - the Llama forward pass as backend ops: embedding rows, RMSNorm, q/k/v biases
 * (qwen2), RoPE (HF rotate-half or GGUF interleaved pairs, rope_freqs divisors), KV cache stores, causal GQA
 * attention, SwiGLU MLP, lm_head. A chunk of tokens goes to the backend as one op list unless a
 * hook needs an activation on the host in between. */
#include "bt_model_int.h"

#include <math.h>
#include <string.h>

/* ---- the ops of the forward pass, built in one place: bt_ops_check (load time) issues the same
 * ones to supports_op ------------------------------------------------------------------------ */
struct bt_op bt_op_norm(const bt_model *m, int src_slot, int64_t row0, int dst_slot, int nt,
                        uint64_t w_off) {
    struct bt_op op;
    memset(&op, 0, sizeof op);
    op.code = BT_OP_RMSNORM;
    op.src[0] = bt_act_view(m, src_slot, row0, nt);
    op.dst = bt_act_view(m, dst_slot, 0, nt);
    op.src[1] = bt_par_view(m, w_off, m->hp.n_embd);
    op.eps = m->hp.norm_eps;
    return op;
}

struct bt_op bt_op_ew(const bt_model *m, uint32_t code, int a, int b, int d, int nt) {
    struct bt_op op;
    memset(&op, 0, sizeof op);
    op.code = code;
    op.src[0] = bt_act_view(m, a, 0, nt);
    op.src[1] = bt_act_view(m, b, 0, nt);
    op.dst = bt_act_view(m, d, 0, nt);
    return op;
}

struct bt_op bt_op_rope(const bt_model *m, int slot, int nt, int pos0, int halves) {
    struct bt_op op;
    memset(&op, 0, sizeof op);
    op.code = BT_OP_ROPE;
    op.src[0] = op.dst = bt_act_view(m, slot, 0, nt);
    op.src[1] = bt_par_view(m, m->rope_inv, m->hp.n_rot / 2);
    op.head_dim = m->hp.head_dim;
    op.n_rot = m->hp.n_rot;
    op.halves = halves;
    op.pos0 = pos0;
    return op;
}

struct bt_op bt_op_store(const bt_model *m, int slot, int val, int il, int nt, int pos0) {
    struct bt_op op;
    memset(&op, 0, sizeof op);
    op.code = BT_OP_CPY;
    op.src[0] = bt_act_view(m, slot, 0, nt);
    op.dst = bt_kv_view(m, val, il);
    op.dst.off += (uint64_t)pos0 * (uint64_t)op.dst.cols * 4u;
    op.dst.rows = nt;
    return op;
}

struct bt_op bt_op_attn(const bt_model *m, int il, int nt, int pos0) {
    struct bt_op op;
    memset(&op, 0, sizeof op);
    op.code = BT_OP_ATTN;
    op.src[0] = bt_act_view(m, A_Q, 0, nt);
    op.src[1] = bt_kv_view(m, 0, il);
    op.src[2] = bt_kv_view(m, 1, il);
    op.dst = bt_act_view(m, A_ATT, 0, nt);
    op.n_head = m->hp.n_head;
    op.n_head_kv = m->hp.n_head_kv;
    op.head_dim = m->hp.head_dim;
    op.pos0 = pos0;
    op.scale = 1.0f / sqrtf((float)m->hp.head_dim);
    return op;
}

static bt_status emit(bt_model *m, struct bt_op op, bt_err *err) { return bt_ops_add(m, &op, err); }

struct bt_op bt_op_bias(const bt_model *m, int slot, int64_t row0, int nt, uint64_t off) {
    struct bt_op op;
    memset(&op, 0, sizeof op);
    op.code = BT_OP_ADD;
    op.src[0] = op.dst = bt_act_view(m, slot, row0, nt);
    op.src[1] = bt_par_view(m, off, op.dst.cols);
    op.src[1].rows = nt;
    return op;
}

struct bt_op bt_op_norm_slot(const bt_model *m, int slot, int nt, uint64_t w_off) {
    struct bt_op op;
    memset(&op, 0, sizeof op);
    op.code = BT_OP_RMSNORM;
    op.src[0] = op.dst = bt_act_view(m, slot, 0, nt);
    op.src[1] = bt_par_view(m, w_off, op.dst.cols);
    op.eps = m->hp.norm_eps;
    return op;
}

struct bt_op bt_op_quant_row(const bt_model *m, int slot, int nt) {
    struct bt_op op;
    memset(&op, 0, sizeof op);
    op.code = BT_OP_QUANT_ROW;
    op.src[0] = op.dst = bt_act_view(m, slot, 0, nt);
    return op;
}

/* slot rows 0..nt += the bias at off (replicated BT_BIAS_ROWS times: one ADD per that many rows) */
static bt_status bias_add(bt_model *m, int slot, uint64_t off, int nt, bt_err *err) {
    bt_status st = BT_OK;
    for (int r0 = 0; r0 < nt && !st; r0 += BT_BIAS_ROWS)
        st = emit(m, bt_op_bias(m, slot, r0, nt - r0 < BT_BIAS_ROWS ? nt - r0 : BT_BIAS_ROWS, off), err);
    return st;
}

/* a hook point: with a hook set, run what is pending and hand the slot's rows to the hook */
static bt_status hook(bt_model *m, int layer, int which, int slot, int nt, bt_err *err) {
    if (!m->hook) return BT_OK;
    bt_status st = bt_ops_flush(m, err);
    if (!st) st = bt_be_read(m->b, m->act, m->act_off[slot], m->hook_buf,
                             (uint64_t)nt * (uint64_t)m->act_cols[slot] * 4u, err);
    if (!st) m->hook(m->hook_user, layer, which, m->hook_buf, nt, (int)m->act_cols[slot]);
    return st;
}

/* ---- one layer ---------------------------------------------------------------------------------- */
#define TRY(x) do { if ((st = (x))) return st; } while (0)
#define STOP_AT(which) do { if (m->stop_hook == (which) + 1) return bt_ops_flush(m, err); } while (0)

/* ops of layer il; with stop_hook set, flushes and returns after that hook */
static bt_status layer_ops(bt_model *m, int il, int nt, int pos0, bt_err *err) {
    struct bt_layer *L = &m->layers[il];
    bt_status st;
    int bn = m->hp.bitnet;
    TRY(emit(m, bt_op_norm(m, A_X, 0, A_XN, nt, L->attn_norm), err));
    if (bn) TRY(emit(m, bt_op_quant_row(m, A_XN, nt), err));
    TRY(hook(m, il, BT_HOOK_ATTN_IN, A_XN, nt, err));
    STOP_AT(BT_HOOK_ATTN_IN);
    TRY(bt_ops_matmul(m, &L->wq, A_XN, 0, A_Q, 0, nt, 0, err));
    TRY(bt_ops_matmul(m, &L->wk, A_XN, 0, A_K, 0, nt, 1, err));
    TRY(bt_ops_matmul(m, &L->wv, A_XN, 0, A_V, 0, nt, 1, err));
    if (m->has_bias) {
        TRY(bias_add(m, A_Q, L->bias[0], nt, err));
        TRY(bias_add(m, A_K, L->bias[1], nt, err));
        TRY(bias_add(m, A_V, L->bias[2], nt, err));
    }
    TRY(emit(m, bt_op_rope(m, A_Q, nt, pos0, L->q_halves), err));
    TRY(emit(m, bt_op_rope(m, A_K, nt, pos0, L->k_halves), err));
    TRY(emit(m, bt_op_store(m, A_K, 0, il, nt, pos0), err));
    TRY(emit(m, bt_op_store(m, A_V, 1, il, nt, pos0), err));
    TRY(emit(m, bt_op_attn(m, il, nt, pos0), err));
    if (bn) {
        TRY(emit(m, bt_op_norm_slot(m, A_ATT, nt, L->attn_sub), err));
        TRY(emit(m, bt_op_quant_row(m, A_ATT, nt), err));
    }
    TRY(hook(m, il, BT_HOOK_ATTN_OUT, A_ATT, nt, err));
    STOP_AT(BT_HOOK_ATTN_OUT);
    TRY(bt_ops_matmul(m, &L->wo, A_ATT, 0, A_O, 0, nt, 0, err));
    TRY(emit(m, bt_op_ew(m, BT_OP_ADD, A_X, A_O, A_X, nt), err));
    TRY(emit(m, bt_op_norm(m, A_X, 0, A_XN, nt, L->ffn_norm), err));
    if (bn) TRY(emit(m, bt_op_quant_row(m, A_XN, nt), err));
    TRY(hook(m, il, BT_HOOK_FFN_IN, A_XN, nt, err));
    STOP_AT(BT_HOOK_FFN_IN);
    TRY(bt_ops_matmul(m, &L->wg, A_XN, 0, A_G, 0, nt, 0, err));
    TRY(bt_ops_matmul(m, &L->wu, A_XN, 0, A_U, 0, nt, 1, err));
    TRY(emit(m, bt_op_ew(m, m->hp.relu2 ? BT_OP_RELU2 : BT_OP_SWIGLU, A_G, A_U, A_U, nt), err));
    if (bn) {
        TRY(emit(m, bt_op_norm_slot(m, A_U, nt, L->ffn_sub), err));
        TRY(emit(m, bt_op_quant_row(m, A_U, nt), err));
    }
    TRY(hook(m, il, BT_HOOK_FFN_DOWN, A_U, nt, err));
    STOP_AT(BT_HOOK_FFN_DOWN);
    TRY(bt_ops_matmul(m, &L->wd, A_U, 0, A_O, 0, nt, 0, err));
    TRY(emit(m, bt_op_ew(m, BT_OP_ADD, A_X, A_O, A_X, nt), err));
    return BT_OK;
}

bt_status bt_layer_forward(bt_model *m, int il, int nt, int pos0, bt_err *err) {
    m->ol.n = 0;
    bt_status st = layer_ops(m, il, nt, pos0, err);
    if (!st) st = bt_ops_flush(m, err);
    m->ol.n = 0;
    return st;
}

/* ---- one chunk of at most n_batch tokens ------------------------------------------------------ */
static bt_status chunk_ops(bt_model *m, const int32_t *tokens, int nt, int pos0, float *logits,
                           int all_logits, bt_err *err) {
    const struct bt_model_hparams *hp = &m->hp;
    bt_status st;
    struct bt_op op;
    memset(&op, 0, sizeof op);
    op.code = BT_OP_GET_ROWS;
    op.dst = bt_act_view(m, A_X, 0, nt);
    op.src[0] = bt_lin_view(&m->tok_embd);
    op.ids = tokens;
    TRY(emit(m, op, err));
    for (int il = 0; il < hp->n_layer; il++) TRY(layer_ops(m, il, nt, pos0, err));
    if (!logits) return bt_ops_flush(m, err);
    int64_t V = hp->n_vocab;
    if (!all_logits) { /* last token only: its normed row goes to row 0 of xn */
        TRY(emit(m, bt_op_norm(m, A_X, nt - 1, A_XN, 1, m->out_norm), err));
        TRY(bt_ops_matmul(m, &m->output, A_XN, 0, A_LOGITS, 0, 1, 0, err));
        TRY(bt_ops_flush(m, err));
        return bt_be_read(m->b, m->act, m->act_off[A_LOGITS], logits, (uint64_t)V * 4u, err);
    }
    TRY(emit(m, bt_op_norm(m, A_X, 0, A_XN, nt, m->out_norm), err));
    for (int r0 = 0; r0 < nt; r0 += BT_LOGIT_ROWS) {
        int k = nt - r0 < BT_LOGIT_ROWS ? nt - r0 : BT_LOGIT_ROWS;
        TRY(bt_ops_matmul(m, &m->output, A_XN, r0, A_LOGITS, 0, k, 0, err));
        TRY(bt_ops_flush(m, err));
        TRY(bt_be_read(m->b, m->act, m->act_off[A_LOGITS], logits + (int64_t)r0 * V,
                       (uint64_t)k * (uint64_t)V * 4u, err));
    }
    return BT_OK;
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
        m->ol.n = 0;
        bt_status st = chunk_ops(m, tokens + done, nt, pos0 + done, lg, all_logits, err);
        m->ol.n = 0;
        if (st) return st;
        done += nt;
        m->n_past = pos0 + done;
    }
    return BT_OK;
}
