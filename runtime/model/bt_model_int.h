/* bt_model_int.h - internal structures of the model runner shared by bt_model.c, bt_forward.c,
 * bt_attention.c, bt_linear.c and the tokenizer glue. Not installed. */
#ifndef BT_MODEL_INT_H
#define BT_MODEL_INT_H

#include "bt_model.h"

#include <stddef.h>
#include <stdint.h>

/* A linear weight (rows x cols, packed rows in fmt) viewed in the reader's mapping. */
struct bt_lin {
    char           name[96];  /* canonical tensor name, for errors */
    struct bt_tfmt fmt;       /* storage format */
    const void    *data;      /* packed rows (borrowed from the reader's mmap) */
    int64_t        rows;      /* output features */
    int64_t        cols;      /* input features */
    size_t         row_bytes; /* bytes per packed row */
    int            backend;   /* 1 if the backend supports fmt */
    int            ternary;   /* 1 for TQ1_0/TQ2_0/MTQ and Q8_0/Q4_0 (integer-dot formats) */
};

/* One decoder block. */
struct bt_layer {
    struct bt_lin wq, wk, wv, wo; /* attention projections */
    struct bt_lin wg, wu, wd;     /* SwiGLU MLP: gate, up, down */
    float        *attn_norm;      /* (n_embd) RMSNorm weight, owned */
    float        *ffn_norm;       /* (n_embd) RMSNorm weight, owned */
    int           q_halves;       /* 1: q rows in HF rotate-half order, 0: GGUF interleaved */
    int           k_halves;       /* same for k */
};

/* Per-forward scratch buffers, sized for n_batch tokens. */
struct bt_scratch {
    float  *x;      /* (nb x n_embd) residual stream */
    float  *xn;     /* (nb x n_embd) normed input */
    float  *q;      /* (nb x n_head*head_dim) */
    float  *k;      /* (nb x n_head_kv*head_dim) */
    float  *v;      /* (nb x n_head_kv*head_dim) */
    float  *att;    /* (nb x n_head*head_dim) attention output */
    float  *o;      /* (nb x n_embd) projection output */
    float  *g;      /* (nb x n_ff) gate */
    float  *u;      /* (nb x n_ff) up, then silu(gate)*up */
    float  *scores; /* (n_threads x n_ctx) attention score rows */
    int8_t *xq;     /* (n_batch x max(n_embd, n_ff, n_q)) int8 activations (gemv_q8 / gemm_q8) */
    float  *xs;     /* (n_batch x max dim / 256) activation block scales */
    float  *wrow;   /* (n_threads x max cols) decoded weight rows for the built-in kernel */
    int     n_thr;  /* threads the per-thread buffers were sized for */
};

struct bt_model {
    struct bt_model_hparams hp;      /* hyper-parameters */
    struct bt_model_opts    opts;    /* effective load options */
    struct bt_reader       *r;       /* borrowed */
    struct bt_backend      *b;       /* borrowed, may be NULL */
    struct bt_lin           tok_embd;   /* (n_vocab x n_embd) */
    struct bt_lin           output;     /* lm_head (== tok_embd view when tied) */
    float                  *out_norm;   /* (n_embd) final RMSNorm weight, owned */
    float                  *rope_inv;   /* (n_rot/2) inverse frequencies incl. rope_freqs, owned */
    struct bt_layer        *layers;     /* (n_layer), owned */
    int32_t                 n_ctx;      /* KV capacity */
    int32_t                 n_past;     /* tokens in the KV cache */
    float                  *kcache;     /* (n_layer x n_ctx x n_head_kv*head_dim), owned */
    float                  *vcache;     /* same shape as kcache, owned */
    struct bt_scratch       s;          /* scratch, owned */
    bt_model_hook_fn        hook;       /* optional input hook */
    int                     stop_hook;  /* bt_layer_forward returns after hook which+1 (0 = never) */
    void                   *hook_user;  /* its argument */
    void                   *tok;        /* struct bt_tokenizer *, owned; NULL if unavailable */
    char                    tok_err[256]; /* why tok is NULL */
};

/* bt_linear.c: Y (ntok x w->rows) = X (ntok x w->cols) W^T with the backend or built-in code */
bt_status bt_lin_apply(bt_model *m, const struct bt_lin *w, const float *X, int ntok, float *Y,
                       bt_err *err);
/* the same X through n weights of equal cols (Y[i] = X W[i]^T): int8 activations are
 * quantized once for all of them */
bt_status bt_lin_apply_n(bt_model *m, const struct bt_lin *const *w, int n, const float *X,
                         int ntok, float *const *Y, bt_err *err);
/* one embedding row (token id) as f32 */
bt_status bt_lin_row_f32(const struct bt_lin *w, int64_t row, float *dst, bt_err *err);
/* int8 activation quantizer: blocks of 256, xs[b] = amax/127, xq = round(x/xs) */
void bt_act_quant_q8(const float *x, int64_t n, int8_t *xq, float *xs);

/* bt_forward.c: decoder layer il on the nt rows of s.x at positions pos0.. (in place) */
bt_status bt_layer_forward(bt_model *m, int il, int nt, int pos0, bt_err *err);
/* bt_model.c: point w at packed rows (borrowed) in fmt, e.g. a freshly quantized tensor */
bt_status bt_lin_set(bt_model *m, struct bt_lin *w, const struct bt_tfmt *fmt, const void *data,
                     uint64_t nbytes, bt_err *err);

/* bt_attention.c: causal GQA attention of ntok new queries at pos0.. over the layer's cache */
void bt_attention(bt_model *m, int layer, int ntok, int pos0);
/* the scalar one query x one key version: the fallback, and the reference for tests */
void bt_attention_ref(bt_model *m, int layer, int ntok, int pos0);
/* bt_forward.c helpers, exposed for unit tests */
void bt_rmsnorm(const float *x, const float *w, int n, float eps, float *y);
void bt_rope_apply(float *v, int n_heads, int head_dim, int n_rot, const float *inv_freq, int pos,
                   int halves);

/* bt_model_tok.c */
bt_status bt_model_tok_init(bt_model *m, bt_err *err);
void      bt_model_tok_free(bt_model *m);

#endif
