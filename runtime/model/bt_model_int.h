/* bt_model_int.h - internal structures of the model runner shared by bt_model.c, bt_forward.c,
 * bt_ops.c and the tokenizer glue. Not installed. The runner owns no kernels: every number is
 * computed by the backend through ops on its buffers. */
#ifndef BT_MODEL_INT_H
#define BT_MODEL_INT_H

#include "bt_model.h"

#include <stddef.h>
#include <stdint.h>

/* A linear weight (rows x cols, packed rows in fmt) in backend memory. */
struct bt_lin {
    char           name[96];  /* canonical tensor name, for errors */
    struct bt_tfmt fmt;       /* storage format */
    int64_t        rows;      /* output features */
    int64_t        cols;      /* input features */
    size_t         row_bytes; /* bytes per packed row */
    bt_buf        *buf;       /* the weights: the reader's mapping wrapped, or uploaded */
    bt_buf        *parts[BT_MAX_PARTS]; /* the format's extra parts (codebooks), uploaded */
    int            owned;     /* 1 if the buffers are freed with this weight (0: an alias) */
    int            q8;        /* 1: products use int8 activations (integer-dot formats, act_q8) */
    float          scale;     /* BitNet: the exact per-tensor f32 scale, applied after the product
                               * (BT_OP_SCALE; the TQ2_0 block scales are then 1); 0 = none */
};

/* One decoder block. */
struct bt_layer {
    struct bt_lin wq, wk, wv, wo; /* attention projections */
    struct bt_lin wg, wu, wd;     /* SwiGLU MLP: gate, up, down */
    uint64_t      attn_norm;      /* byte offset of the (n_embd) RMSNorm weight in m->par */
    uint64_t      ffn_norm;       /* same for the MLP norm */
    int           q_halves;       /* 1: q rows in HF rotate-half order, 0: GGUF interleaved */
    int           k_halves;       /* same for k */
    uint64_t      attn_sub;       /* bitnet: offset of attn_sub_norm (n_head*head_dim) in par */
    uint64_t      ffn_sub;        /* bitnet: offset of ffn_sub_norm (n_ff) in par */
    uint64_t      bias[3];        /* with m->has_bias: offsets in m->par of the q, k, v biases,
                                   * each (BT_BIAS_ROWS x rows of the projection) */
};

/* biases are stored replicated this many rows, so one ADD op covers up to as many tokens */
#define BT_BIAS_ROWS 16

/* Activation slots in the backend buffer m->act, each sized for n_batch tokens. */
enum { A_X, A_XN, A_Q, A_K, A_V, A_ATT, A_O, A_G, A_U, A_LOGITS, A_COUNT };
#define BT_LOGIT_ROWS 64 /* logits are computed (and downloaded) this many tokens at a time */

/* The ops of one forward chunk, submitted to the backend in one run where possible. */
struct bt_oplist {
    struct bt_op *ops;
    uint32_t      n, cap;
};

struct bt_model {
    struct bt_model_hparams hp;      /* hyper-parameters */
    struct bt_model_opts    opts;    /* effective load options */
    struct bt_reader       *r;       /* borrowed */
    struct bt_backend      *b;       /* borrowed */
    struct bt_lin           tok_embd;   /* (n_vocab x n_embd) */
    struct bt_lin           output;     /* lm_head (alias of tok_embd when tied) */
    uint64_t                out_norm;   /* offset of the final RMSNorm weight in par */
    uint64_t                rope_inv;   /* offset of the (n_rot/2) inverse frequencies in par */
    int                     has_bias;   /* 1: q/k/v biases (qwen2), at bias_off in par */
    uint64_t                bias_off;   /* offset of layer 0's biases in par */
    uint64_t                sub_off;    /* bitnet: offset of layer 0's sub-norms in par */
    struct bt_layer        *layers;     /* (n_layer), owned */
    int32_t                 n_ctx;      /* KV capacity */
    int32_t                 n_past;     /* tokens in the KV cache */
    bt_buf                 *par;        /* norm weights and rope frequencies (F32) */
    bt_buf                 *kv;         /* K then V cache: 2 x n_layer x n_ctx x n_kv*head_dim */
    bt_buf                 *act;        /* activation slots A_* */
    uint64_t                act_off[A_COUNT]; /* byte offsets of the slots */
    int64_t                 act_cols[A_COUNT]; /* floats per token of each slot */
    struct bt_oplist        ol;         /* ops pending submission */
    float                  *hook_buf;   /* host copy of an activation for the hook */
    bt_model_hook_fn        hook;       /* optional input hook */
    int                     stop_hook;  /* bt_layer_forward returns after hook which+1 (0 = never) */
    void                   *hook_user;  /* its argument */
    void                   *tok;        /* struct bt_tokenizer *, owned; NULL if unavailable */
    char                    tok_err[1024]; /* why tok is NULL (a bt_err message) */
};

/* bt_ops.c: views, the op list and the calls the forward pass makes */
struct bt_view bt_act_view(const bt_model *m, int slot, int64_t row0, int64_t nrows);
struct bt_view bt_par_view(const bt_model *m, uint64_t off, int64_t n);
struct bt_view bt_kv_view(const bt_model *m, int v, int layer);
struct bt_view bt_lin_view(const struct bt_lin *w);
bt_status bt_ops_add(bt_model *m, const struct bt_op *op, bt_err *err);
bt_status bt_ops_flush(bt_model *m, bt_err *err); /* run and clear the pending ops */
/* dst slot rows = X slot rows W^T (int8 activations if w->q8); same: X unchanged since the
 * previous product with the same X slot */
bt_status bt_ops_matmul(bt_model *m, const struct bt_lin *w, int xslot, int64_t xrow0,
                        int dslot, int64_t drow0, int ntok, int same, bt_err *err);
/* weights into backend memory (rows wrapped if the backend can, else uploaded; extra parts of
 * t, if any, uploaded); t may be NULL for formats without parts */
bt_status bt_lin_upload(bt_model *m, struct bt_lin *w, const void *data,
                        const struct bt_tensor *t, bt_err *err);
void      bt_lin_free(bt_model *m, struct bt_lin *w);
/* rows ids[0..n) of w decoded to f32 into dst (n x cols; n <= n_batch), via the backend */
bt_status bt_lin_rows_f32(bt_model *m, const struct bt_lin *w, const int32_t *ids, int n,
                          float *dst, bt_err *err);
/* the residual stream (slot A_X) of nt tokens from / to host memory */
bt_status bt_model_x_set(bt_model *m, const float *x, int nt, bt_err *err);
bt_status bt_model_x_get(bt_model *m, float *x, int nt, bt_err *err);
/* the op set a model needs, checked once at load: an error names the op, format and tensor */
bt_status bt_ops_check(bt_model *m, bt_err *err);

/* bt_forward.c: the forward pass's ops (views of m's buffers), shared with bt_ops_check */
struct bt_op bt_op_norm(const bt_model *m, int src_slot, int64_t row0, int dst_slot, int nt,
                        uint64_t w_off);
struct bt_op bt_op_ew(const bt_model *m, uint32_t code, int a, int b, int d, int nt);
struct bt_op bt_op_rope(const bt_model *m, int slot, int nt, int pos0, int halves);
struct bt_op bt_op_store(const bt_model *m, int slot, int val, int il, int nt, int pos0);
struct bt_op bt_op_attn(const bt_model *m, int il, int nt, int pos0);
/* in place on the nt rows of slot: RMSNorm with the slot-wide weight at par offset w_off */
struct bt_op bt_op_norm_slot(const bt_model *m, int slot, int nt, uint64_t w_off);
/* in place on the nt rows of slot: BitNet's 8-bit per-token activations (quant_row) */
struct bt_op bt_op_quant_row(const bt_model *m, int slot, int nt);
/* slot rows row0..row0+nt (nt <= BT_BIAS_ROWS) += the replicated bias at par offset off */
struct bt_op bt_op_bias(const bt_model *m, int slot, int64_t row0, int nt, uint64_t off);
/* bt_forward.c: decoder layer il on the nt rows of the A_X slot at positions pos0.. (in place) */
bt_status bt_layer_forward(bt_model *m, int il, int nt, int pos0, bt_err *err);
/* bt_model.c: point w at packed rows in fmt (the caller keeps data alive while the model uses
 * it), e.g. a freshly quantized tensor */
bt_status bt_lin_set(bt_model *m, struct bt_lin *w, const struct bt_tfmt *fmt, const void *data,
                     uint64_t nbytes, bt_err *err);

/* bt_model_tok.c */
bt_status bt_model_tok_init(bt_model *m, bt_err *err);
void      bt_model_tok_free(bt_model *m);

#endif
