/* llama_check.h - a Llama model's metadata (llama.* keys, as the readers serve them) against its
 * tensors' shapes: hidden size, layer count, attention heads and head size, vocabulary and
 * feed-forward size. Shared by the safetensors reader (config.json) and the gguf reader. */
#ifndef BT_LLAMA_CHECK_H
#define BT_LLAMA_CHECK_H

#include "bt/bt_plugin.h"

/* one tensor as the check sees it */
struct bt_llama_t {
    const char    *name;   /* canonical GGUF name ("blk.0.attn_q.weight") */
    const char    *shown;  /* name used in messages (the source file's name) */
    uint32_t       n_dims;
    const int64_t *shape;  /* numpy order (rows first) */
};

enum {
    BT_LLAMA_HF = 1,    /* name config.json's keys in messages (hidden_size, ...), else llama.* */
    BT_LLAMA_WHOLE = 2, /* the tensors are the whole model: every layer must be present */
};

/* BT_OK, or BT_E_FORMAT with "<where>: <what> does not match the tensors: ..." naming every
 * mismatch (key, its value, the tensor and its shape). Keys that are absent are not checked;
 * with no llama.embedding_length nothing is. */
bt_status bt_llama_check(const char *where, const struct bt_kv *kv, uint32_t n_kv,
                         const struct bt_llama_t *t, uint32_t n_t, unsigned flags, bt_err *err);

#endif
