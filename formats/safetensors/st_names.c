/* st_names.c - Hugging Face LLaMA tensor names -> GGUF names (gguf-py "llama-hf" mapping,
 * written from the table in docs/research/formats.md 1.6) and the reader's listing order. */
#include "st_names.h"

#include "bt/bt_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* per-layer HF module -> GGUF block tensor stem */
static const struct {
    const char *hf;    /* after "model.layers.N." */
    const char *gguf;  /* after "blk.N." */
    uint32_t    flags; /* BT_TENSOR_* */
} st_layer_map[] = {
    {"input_layernorm", "attn_norm", 0},
    {"self_attn.q_proj", "attn_q", BT_TENSOR_ROPE_HALVES},
    {"self_attn.k_proj", "attn_k", BT_TENSOR_ROPE_HALVES},
    {"self_attn.v_proj", "attn_v", 0},
    {"self_attn.o_proj", "attn_output", 0},
    {"post_attention_layernorm", "ffn_norm", 0},
    {"mlp.gate_proj", "ffn_gate", 0},
    {"mlp.up_proj", "ffn_up", 0},
    {"mlp.down_proj", "ffn_down", 0},
    {"self_attn.attn_sub_norm", "attn_sub_norm", 0}, /* BitNet b1.58 */
    {"mlp.ffn_sub_norm", "ffn_sub_norm", 0},
};

/* whole-model tensors */
static const struct {
    const char *hf;   /* HF name */
    const char *gguf; /* GGUF name */
} st_global_map[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

static int st_ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && memcmp(s + n - m, suf, m) == 0;
}

static int st_copy(char *out, size_t outlen, const char *s, int ret) {
    int k = snprintf(out, outlen, "%s", s);
    return k < 0 || (size_t)k >= outlen ? BT_ST_NAME_TOOLONG : ret;
}

/* "model.layers.<N>.<module>.<weight|bias>" */
static int st_map_layer(const char *hf, char *out, size_t outlen, uint32_t *flags) {
    const char *p = hf + strlen("model.layers.");
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9')) return -1;
    char *end;
    unsigned long n = strtoul(p, &end, 10);
    if (*end != '.' || n > 999999) return -1;
    const char *mod = end + 1;
    const char *suffix = NULL;
    size_t mlen = 0;
    if (st_ends_with(mod, ".weight")) suffix = "weight";
    else if (st_ends_with(mod, ".bias")) suffix = "bias";
    else return -1;
    mlen = strlen(mod) - strlen(suffix) - 1;
    for (size_t i = 0; i < sizeof(st_layer_map) / sizeof(st_layer_map[0]); i++) {
        if (strlen(st_layer_map[i].hf) == mlen && memcmp(st_layer_map[i].hf, mod, mlen) == 0) {
            int k = snprintf(out, outlen, "blk.%lu.%s.%s", n, st_layer_map[i].gguf, suffix);
            if (k < 0 || (size_t)k >= outlen) return BT_ST_NAME_TOOLONG;
            *flags = st_layer_map[i].flags;
            return BT_ST_NAME_MAPPED;
        }
    }
    return -1;
}

int bt_st_name_map(const char *hf, char *out, size_t outlen, uint32_t *flags) {
    *flags = 0;
    if (st_ends_with(hf, ".rotary_emb.inv_freq")) return BT_ST_NAME_SKIP;
    for (size_t i = 0; i < sizeof(st_global_map) / sizeof(st_global_map[0]); i++)
        if (strcmp(hf, st_global_map[i].hf) == 0)
            return st_copy(out, outlen, st_global_map[i].gguf, BT_ST_NAME_MAPPED);
    if (strncmp(hf, "model.layers.", strlen("model.layers.")) == 0) {
        int r = st_map_layer(hf, out, outlen, flags);
        if (r >= 0) return r;
    }
    return st_copy(out, outlen, hf, BT_ST_NAME_UNKNOWN);
}

/* rank of a canonical name; *layer gets N for blk.N.* */
static int st_rank(const char *s, unsigned long *layer, const char **rest) {
    *layer = 0;
    *rest = s;
    if (strncmp(s, "rope_freqs.", 11) == 0) return 0;
    if (strncmp(s, "token_embd.", 11) == 0) return 1;
    if (strncmp(s, "blk.", 4) == 0 && s[4] >= '0' && s[4] <= '9') {
        char *end;
        *layer = strtoul(s + 4, &end, 10);
        *rest = end;
        return 2;
    }
    return 3;
}

int bt_st_name_cmp(const char *a, const char *b) {
    unsigned long la, lb;
    const char *ra, *rb;
    int ka = st_rank(a, &la, &ra), kb = st_rank(b, &lb, &rb);
    if (ka != kb) return ka < kb ? -1 : 1;
    if (la != lb) return la < lb ? -1 : 1;
    int c = strcmp(ra, rb);
    return c ? c : strcmp(a, b);
}
