/* hf_config.h - Hugging Face config.json (LlamaForCausalLM and compatible) -> hyper-parameters
 * and the GGUF llama.* key/values llama.cpp expects (docs/research/formats.md 1.4, 4.3). */
#ifndef BT_HF_CONFIG_H
#define BT_HF_CONFIG_H
#include "bt_kvlist.h"

enum {
    BT_HF_ROPE_NONE   = 0, /* plain RoPE */
    BT_HF_ROPE_LINEAR = 1, /* rope_type "linear": positions divided by factor */
    BT_HF_ROPE_LLAMA3 = 2, /* rope_type "llama3": per-frequency factors (rope_freqs tensor) */
};

/* What bt reads from config.json. */
struct bt_hf_config {
    char     arch[64];       /* architectures[0], e.g. "LlamaForCausalLM" */
    uint32_t n_ctx;          /* max_position_embeddings */
    uint32_t n_embd;         /* hidden_size */
    uint32_t n_layer;        /* num_hidden_layers */
    uint32_t n_ff;           /* intermediate_size */
    uint32_t n_head;         /* num_attention_heads */
    uint32_t n_head_kv;      /* num_key_value_heads (default n_head) */
    uint32_t head_dim;       /* head_dim (default n_embd / n_head) */
    int      head_dim_given; /* 1 if config.json states head_dim */
    uint32_t n_vocab;        /* vocab_size */
    float    rms_eps;        /* rms_norm_eps */
    float    rope_theta;     /* rope_theta (default 10000) */
    uint32_t rope_type;      /* BT_HF_ROPE_* */
    float    rope_factor;    /* LINEAR / LLAMA3: factor */
    float    rope_low_freq;  /* LLAMA3: low_freq_factor (default 1) */
    float    rope_high_freq; /* LLAMA3: high_freq_factor (default 4) */
    uint32_t rope_orig_ctx;  /* LLAMA3: original_max_position_embeddings (default 8192) */
    int      tie_embeddings; /* tie_word_embeddings (default 0) */
    uint32_t sliding_window; /* sliding_window when it is shorter than n_ctx, else 0 (none) */
    int      qwen2;          /* Qwen2ForCausalLM: GGUF arch qwen2, q/k/v biases, NEOX rope */
    int      bitnet;         /* BitNetForCausalLM (BitNet b1.58): GGUF arch bitnet, sub-norms */
    int      relu2;          /* hidden_act relu2 (BitNet b1.58 2B-4T) instead of silu */
    int      bitnet_packed;  /* quantization_config.quant_method = bitnet: packed uint8 trits */
    int      bitnet_mul;     /* packed: W = T * weight_scale (linear_class autobitlinear); 0:
                              * W = T / weight_scale (bitlinear) */
    int64_t  bos_id;         /* bos_token_id, -1 if absent or null */
    int64_t  eos_id;         /* eos_token_id (first of a list), -1 if absent or null */
};

struct json_object;
/* Parse the JSON file path with json-c (caller frees with json_object_put). NULL on failure with
 * *st = BT_E_IO / BT_E_FORMAT / BT_E_NOMEM and err (may be NULL) = that status and
 * "<path>: reason (byte offset)". err is not touched on success. */
struct json_object *bt_hf_json_read(const char *path, bt_status *st, bt_err *err);

/* Read and validate path (a config.json). BT_E_IO if unreadable, BT_E_FORMAT for bad JSON,
 * missing keys or wrong types, BT_E_UNSUPPORTED for architectures/features bt does not convert.
 * err (may be NULL) is cleared, then gets the status and "<path>: reason" naming the key. */
bt_status bt_hf_config_load(const char *path, struct bt_hf_config *cfg, bt_err *err);
/* general.architecture, llama.* keys with the types llama.cpp requires, rope scaling (linear),
 * llama.attention.sliding_window (bt's runner: contexts up to the window),
 * bt.tie_word_embeddings and tokenizer.ggml.{bos,eos}_token_id. BT_OK or BT_E_NOMEM. */
bt_status bt_hf_config_to_kvs(const struct bt_hf_config *cfg, struct bt_kvlist *out);
/* the GGUF general.architecture of cfg: "llama", "qwen2" or "bitnet" (the prefix of its keys) */
const char *bt_hf_config_gguf_arch(const struct bt_hf_config *cfg);
/* load + to_kvs */
bt_status bt_hf_config_kvs(const char *config_json_path, struct bt_kvlist *out, bt_err *err);
/* Llama-3 rope frequency factors (rope_freqs.weight): dst[head_dim / 2] */
void bt_hf_rope_llama3_factors(const struct bt_hf_config *cfg, float *dst);
#endif
