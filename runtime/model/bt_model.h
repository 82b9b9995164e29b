/* bt_model.h - Llama-family model runner (libbt_runtime): load from a bt_reader, run the forward
 * pass on a bt_backend (weights, f32 KV cache and activations in the backend's buffers; CPU
 * backends keep the weights in the reader's mapping).
 * Evaluation, generation and calibration live in bt_eval.h and bt_calib.h. */
#ifndef BT_MODEL_H
#define BT_MODEL_H

#include "bt/bt.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bt_model bt_model;

/* Hyper-parameters read from the llama.* metadata (checked against the tensor shapes). */
struct bt_model_hparams {
    int32_t n_embd;      /* hidden size */
    int32_t n_layer;     /* decoder blocks */
    int32_t n_head;      /* query heads */
    int32_t n_head_kv;   /* key/value heads (GQA); n_head % n_head_kv == 0 */
    int32_t head_dim;    /* per-head size (llama.attention.key_length or n_embd / n_head) */
    int32_t n_rot;       /* rotary dims per head (llama.rope.dimension_count, default head_dim) */
    int32_t n_ff;        /* MLP intermediate size */
    int32_t n_vocab;     /* rows of token_embd.weight */
    int32_t n_ctx_train; /* llama.context_length (0 if absent: no limit enforced) */
    float   norm_eps;    /* RMSNorm epsilon */
    float   rope_base;   /* rope theta */
    int32_t bos_id;      /* tokenizer.ggml.bos_token_id, -1 if absent */
    int32_t eos_id;      /* tokenizer.ggml.eos_token_id, -1 if absent */
    int32_t tied;        /* 1 if the lm_head is token_embd.weight (no output.weight) */
    float   rope_scale;  /* linear rope scaling factor (positions / factor); 1 = none */
    int32_t qwen2;       /* 1: general.architecture qwen2 (q/k/v biases, rotate-half rope) */
    int32_t bitnet;      /* 1: general.architecture bitnet (BitNet b1.58: sub-norms, 8-bit
                          * per-token activations before every ternary linear) */
    int32_t relu2;       /* 1: FFN gate relu(g)^2 (bt.ffn_activation = relu2) instead of silu */
    int32_t sliding_window; /* 1: n_ctx_train is llama.attention.sliding_window (contexts beyond
                             * one window are refused) */
};

/* Load options. A zeroed struct (or NULL) gives the defaults. */
struct bt_model_opts {
    int32_t n_ctx;   /* KV cache capacity in tokens; 0 = min(context_length, 4096) */
    int32_t n_batch; /* max tokens per internal forward chunk; 0 = 512 */
    int32_t act_q8;  /* non-zero: integer-dot weights (TQ1_0/TQ2_0/MTQ/Q8_0/Q4_0) multiply int8
                      * activations in blocks of 256 (absmax/127; BT_ACT_Q8); 0: f32 */
    int32_t rope_bf16; /* 1: round the rope inverse frequencies to bf16, as HF transformers does
                        * when it runs a bf16 checkpoint (its inv_freq buffer is cast with the
                        * model); reproduces HF reference logits to ~1e-5 instead of ~3e-2 */
};

/* Inputs of the linear layers, as seen by a debug/calibration hook. */
enum {
    BT_HOOK_ATTN_IN  = 0, /* attn_norm output: input of attn_q/k/v      (ntok x n_embd) */
    BT_HOOK_ATTN_OUT = 1, /* attention output: input of attn_output     (ntok x n_head*head_dim) */
    BT_HOOK_FFN_IN   = 2, /* ffn_norm output: input of ffn_gate/ffn_up   (ntok x n_embd) */
    BT_HOOK_FFN_DOWN = 3, /* silu(gate)*up: input of ffn_down            (ntok x n_ff) */
    BT_HOOK_COUNT    = 4,
};
/* Called from the forward pass (on the calling thread) with X row-major (ntok x dim). */
typedef void (*bt_model_hook_fn)(void *user, int layer, int which, const float *X, int ntok,
                                 int dim);

/* Load the model behind r (tensors with GGUF names, llama.* metadata) onto backend b. r and b
 * must outlive the model. Errors name the tensor and both shapes on mismatch, and the op and
 * format a backend lacks; n_ctx > context_length is refused. */
bt_status bt_model_load(struct bt_reader *r, struct bt_backend *b,
                        const struct bt_model_opts *opts, bt_model **out, bt_err *err);
void      bt_model_free(bt_model *m); /* NULL is a no-op */

const struct bt_model_hparams *bt_model_hparams(const bt_model *m);
int32_t   bt_model_n_ctx(const bt_model *m);  /* KV cache capacity */
/* drop the KV cache contents (the next forward must start at pos0 = 0) */
void      bt_model_reset(bt_model *m);

/* Run n tokens at positions pos0..pos0+n-1 (the cache must hold exactly pos0 tokens before).
 * logits: if all_logits, n x n_vocab rows; else n_vocab floats of the last token; may be NULL. */
bt_status bt_model_forward(bt_model *m, const int32_t *tokens, int n, int pos0, float *logits,
                           int all_logits, bt_err *err);

/* debug/calibration hook (NULL to remove) */
void      bt_model_set_hook(bt_model *m, bt_model_hook_fn fn, void *user);

/* ---- tokenizer (built from the reader's tokenizer.ggml.* keys; needs bt_tokenizer) ---------- */
int       bt_model_has_tokenizer(const bt_model *m);
/* text -> ids (no BOS added; special tokens not parsed). *ids: caller frees with free(). */
bt_status bt_model_tokenize(bt_model *m, const char *text, size_t len, int32_t **ids,
                            int64_t *n, bt_err *err);
/* the same with special tokens written as their text (<|eot_id|>) parsed as those tokens */
bt_status bt_model_tokenize_special(bt_model *m, const char *text, size_t len, int32_t **ids,
                                    int64_t *n, bt_err *err);
/* the vocabulary's text of token id (as written in tokenizer.json / the GGUF), NULL if none */
const char *bt_model_token_text(bt_model *m, int32_t id);
/* bytes of token id (byte-level pieces decoded); returns the length written (<= cap), or -1 */
int       bt_model_token_piece(bt_model *m, int32_t id, char *buf, int cap);

#ifdef __cplusplus
}
#endif
#endif
