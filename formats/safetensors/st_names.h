/* st_names.h - Hugging Face LLaMA tensor names -> canonical GGUF names, and the order in which
 * the safetensors reader lists tensors (docs/research/formats.md 1.6). */
#ifndef BT_ST_NAMES_H
#define BT_ST_NAMES_H
#include <stddef.h>
#include <stdint.h>

enum {
    BT_ST_NAME_MAPPED  = 0, /* out holds the GGUF name */
    BT_ST_NAME_UNKNOWN = 1, /* no mapping: out holds the HF name unchanged */
    BT_ST_NAME_SKIP    = 2, /* a buffer to drop (*.rotary_emb.inv_freq) */
    BT_ST_NAME_TOOLONG = 3, /* out is too small */
};

/* Map hf to its GGUF name in out[outlen]; *flags gets BT_TENSOR_ROPE_HALVES for q/k
 * projections (weights and biases), else 0. Returns BT_ST_NAME_*. */
int bt_st_name_map(const char *hf, char *out, size_t outlen, uint32_t *flags);
/* listing order of canonical names: rope_freqs, token_embd, blk.N (by N, then name), the rest
 * by name; strcmp-like */
int bt_st_name_cmp(const char *a, const char *b);
#endif
