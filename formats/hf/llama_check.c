/* llama_check.c - check a Llama model's sizes (llama.* keys) against its tensors before any work,
 * so a wrong hidden_size, num_hidden_layers, head count, vocab_size or intermediate_size is named
 * instead of converting into a file with contradictory metadata. See llama_check.h. */
#include "llama_check.h"
#include "bt/bt.h" /* bt_err_set (bt_types) */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K_EMBD, K_LAYER, K_HEAD, K_HEAD_KV, K_KEYLEN, K_VALLEN, K_FF, K_VOCAB, K_N };

/* GGUF keys after "<general.architecture>." (llama, qwen2) */
static const char *const gguf_keys[K_N] = {
    "embedding_length", "block_count", "attention.head_count",
    "attention.head_count_kv", "attention.key_length", "attention.value_length",
    "feed_forward_length", "vocab_size"};
static const char *const hf_keys[K_N] = {
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
    "head_dim", "intermediate_size", "vocab_size"};

/* the sizes a tensor dimension is made of */
enum { X_E, X_V, X_Q, X_K, X_VV, X_O, X_F };

/* expected shape of each kind of tensor (name suffix after "blk.N." for layer tensors) */
static const struct rule {
    const char *name;
    int         layer; /* a blk.N. tensor */
    uint32_t    n_dims;
    int         dim[2];
} rules[] = {
    {"token_embd.weight", 0, 2, {X_V, X_E}},   {"output.weight", 0, 2, {X_V, X_E}},
    {"output_norm.weight", 0, 1, {X_E, 0}},    {"attn_norm.weight", 1, 1, {X_E, 0}},
    {"ffn_norm.weight", 1, 1, {X_E, 0}},       {"attn_q.weight", 1, 2, {X_Q, X_E}},
    {"attn_k.weight", 1, 2, {X_K, X_E}},       {"attn_v.weight", 1, 2, {X_VV, X_E}},
    {"attn_output.weight", 1, 2, {X_E, X_O}},  {"ffn_gate.weight", 1, 2, {X_F, X_E}},
    {"ffn_up.weight", 1, 2, {X_F, X_E}},       {"ffn_down.weight", 1, 2, {X_E, X_F}},
    {"attn_q.bias", 1, 1, {X_Q, 0}},           {"attn_k.bias", 1, 1, {X_K, 0}},
    {"attn_v.bias", 1, 1, {X_VV, 0}},          {"attn_sub_norm.weight", 1, 1, {X_E, 0}},
    {"ffn_sub_norm.weight", 1, 1, {X_F, 0}},
};
#define N_RULES (sizeof rules / sizeof rules[0])

struct lc {
    uint64_t           v[K_N];   /* key values */
    int                has[K_N]; /* key given (as a scalar integer) */
    const char *const *key;      /* names used in messages */
    const char        *vocab_key; /* name of the vocabulary size in messages */
    char               msg[1024]; /* the mismatches so far, "; "-separated */
    size_t             len;
};

__attribute__((format(printf, 2, 3)))
static void add(struct lc *c, const char *fmt, ...) {
    if (c->len + 8 >= sizeof c->msg) return;
    if (c->len) c->len += (size_t)snprintf(c->msg + c->len, sizeof c->msg - c->len, "; ");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->msg + c->len, sizeof c->msg - c->len, fmt, ap);
    va_end(ap);
    c->len = n < 0 ? c->len : c->len + (size_t)n;
    if (c->len >= sizeof c->msg) c->len = sizeof c->msg - 1;
}

static const struct bt_kv *find_kv(const struct bt_kv *kv, uint32_t n, const char *key) {
    for (uint32_t i = 0; i < n; i++)
        if (kv[i].key && !strcmp(kv[i].key, key)) return &kv[i];
    return NULL;
}

/* an integer key's value (per-layer arrays and other types: not checked) */
static int get_uint(const struct bt_kv *kv, uint32_t n, const char *key, uint64_t *out) {
    const struct bt_kv *k = find_kv(kv, n, key);
    if (!k) return 0;
    switch (k->type) {
    case BT_KV_U8: case BT_KV_U16: case BT_KV_U32: case BT_KV_U64: *out = k->v.u; return 1;
    case BT_KV_I8: case BT_KV_I16: case BT_KV_I32: case BT_KV_I64:
        if (k->v.i < 0) return 0;
        *out = (uint64_t)k->v.i;
        return 1;
    default: return 0;
    }
}

/* head size for queries/keys (vals = 0) or values; 0 if unknown. Without key_length it is
 * hidden / heads */
static uint64_t head_dim(const struct lc *c, int vals) {
    if (vals && c->has[K_VALLEN]) return c->v[K_VALLEN];
    if (c->has[K_KEYLEN]) return c->v[K_KEYLEN];
    if (c->has[K_EMBD] && c->has[K_HEAD] && c->v[K_HEAD] && c->v[K_EMBD] % c->v[K_HEAD] == 0)
        return c->v[K_EMBD] / c->v[K_HEAD];
    return 0;
}

/* the value of size x (0 = unknown) and, appended to keys, the keys it comes from */
static uint64_t size_of(const struct lc *c, int x, char *keys, size_t nk) {
    uint64_t heads = 0, hd = head_dim(c, x == X_VV || x == X_O);
    int kv = x == X_K || x == X_VV;
    size_t l = strlen(keys);
    switch (x) {
    case X_E:
        if (!c->has[K_EMBD]) return 0;
        if (!strstr(keys, c->key[K_EMBD]))
            snprintf(keys + l, nk - l, "%s%s = %llu", l ? ", " : "", c->key[K_EMBD], (unsigned long long)c->v[K_EMBD]);
        return c->v[K_EMBD];
    case X_V:
        if (!c->has[K_VOCAB]) return 0;
        snprintf(keys + l, nk - l, "%s%s = %llu", l ? ", " : "", c->vocab_key, (unsigned long long)c->v[K_VOCAB]);
        return c->v[K_VOCAB];
    case X_F:
        if (!c->has[K_FF]) return 0;
        snprintf(keys + l, nk - l, "%s%s = %llu", l ? ", " : "", c->key[K_FF], (unsigned long long)c->v[K_FF]);
        return c->v[K_FF];
    default: /* heads x head size */
        heads = kv && c->has[K_HEAD_KV] ? c->v[K_HEAD_KV] : c->has[K_HEAD] ? c->v[K_HEAD] : 0;
        if (!heads || !hd) return 0;
        int hk = kv && c->has[K_HEAD_KV] ? K_HEAD_KV : K_HEAD;
        int dk = (x == X_VV || x == X_O) && c->has[K_VALLEN] ? K_VALLEN : K_KEYLEN;
        if (c->has[dk])
            snprintf(keys + l, nk - l, "%s%s = %llu, %s = %llu", l ? ", " : "", c->key[hk],
                     (unsigned long long)heads, c->key[dk], (unsigned long long)hd);
        else /* head size = hidden / heads */
            snprintf(keys + l, nk - l, "%s%s = %llu, head size %llu (%s %llu / %s %llu)",
                     l ? ", " : "", c->key[hk], (unsigned long long)heads, (unsigned long long)hd,
                     c->key[K_EMBD], (unsigned long long)c->v[K_EMBD], c->key[K_HEAD],
                     (unsigned long long)c->v[K_HEAD]);
        return heads * hd;
    }
}

static void shape_str(char *out, size_t n, uint32_t nd, const int64_t *sh) {
    size_t l = 0;
    out[0] = 0;
    for (uint32_t d = 0; d < nd && l < n; d++)
        l += (size_t)snprintf(out + l, n - l, d ? "x%lld" : "%lld", (long long)sh[d]);
}

/* layer index of a "blk.N." name, -1 otherwise */
static long layer_of(const char *name, const char **rest) {
    if (strncmp(name, "blk.", 4)) return -1;
    char *end;
    long n = strtol(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || n < 0) return -1;
    *rest = end + 1;
    return n;
}

/* shapes: every dimension is attributed to the size it is made of (hidden, vocabulary, heads x
 * head size, feed-forward); per size, the first tensor that contradicts it and how many do */
static void check_shapes(struct lc *c, const struct bt_llama_t *t, uint32_t n_t) {
    enum { N_X = X_F + 1 };
    uint32_t bad[N_X] = {0}, first[N_X] = {0};
    const struct rule *first_rule[N_X] = {0};
    for (uint32_t i = 0; i < n_t; i++) {
        const char *rest = t[i].name;
        int layer = layer_of(t[i].name, &rest) >= 0;
        for (size_t r = 0; r < N_RULES; r++) {
            const struct rule *ru = &rules[r];
            if (layer != ru->layer || strcmp(rest, ru->name)) continue;
            char keys[256] = "";
            for (uint32_t d = 0; d < ru->n_dims; d++) {
                uint64_t want = size_of(c, ru->dim[d], keys, sizeof keys);
                int x = ru->dim[d];
                if (!want || (t[i].n_dims == ru->n_dims && (uint64_t)t[i].shape[d] == want)) continue;
                if (bad[x]++ == 0) { first[x] = i; first_rule[x] = ru; }
            }
        }
    }
    for (int x = 0; x < N_X; x++) {
        if (!bad[x]) continue;
        const struct rule *ru = first_rule[x];
        const struct bt_llama_t *ti = &t[first[x]];
        char keys[256] = "", scratch[256] = "", got[96], exp[96];
        size_of(c, x, keys, sizeof keys);
        uint64_t want[2] = {0, 0};
        for (uint32_t d = 0; d < ru->n_dims; d++) want[d] = size_of(c, ru->dim[d], scratch, sizeof scratch);
        shape_str(got, sizeof got, ti->n_dims, ti->shape);
        size_t l = 0;
        for (uint32_t d = 0; d < ru->n_dims; d++)
            l += (size_t)snprintf(exp + l, sizeof exp - l, want[d] ? "%s%llu" : "%s?", d ? "x" : "",
                                  (unsigned long long)want[d]);
        add(c, "%s: '%s' has shape %s, expected %s", keys, ti->shown, got, exp);
        if (bad[x] > 1 && c->len + 40 < sizeof c->msg)
            c->len += (size_t)snprintf(c->msg + c->len, sizeof c->msg - c->len, " (and %u more tensors)", bad[x] - 1);
    }
}

/* layers: none past the layer count; with the whole model, none missing */
static void check_layers(struct lc *c, const struct bt_llama_t *t, uint32_t n_t, int whole) {
    if (!c->has[K_LAYER]) return;
    uint64_t L = c->v[K_LAYER];
    uint64_t cap = L < (1u << 20) ? L : (1u << 20);
    unsigned char *seen = calloc(cap ? cap : 1, 1);
    uint32_t beyond = 0, first = 0;
    long worst = -1;
    for (uint32_t i = 0; i < n_t; i++) {
        const char *rest;
        long n = layer_of(t[i].name, &rest);
        if (n < 0) continue;
        if ((uint64_t)n >= L) {
            if (beyond++ == 0) first = i;
            if (n > worst) worst = n;
        } else if ((uint64_t)n < cap && seen) {
            seen[n] = 1;
        }
    }
    if (beyond)
        add(c, "%s = %llu: '%s' belongs to layer %ld (%u tensors in layers up to %ld)", c->key[K_LAYER],
            (unsigned long long)L, t[first].shown, layer_of(t[first].name, &(const char *){0}), beyond, worst);
    if (whole && seen) {
        char list[160] = "";
        size_t l = 0;
        uint64_t missing = L - cap;
        for (uint64_t k = 0; k < cap; k++) {
            if (seen[k]) continue;
            if (missing++ < 8) l += (size_t)snprintf(list + l, sizeof list - l, "%s%llu", l ? ", " : "", (unsigned long long)k);
        }
        if (missing)
            add(c, "%s = %llu: %llu of the layers have no tensors (layer %s%s)", c->key[K_LAYER],
                (unsigned long long)L, (unsigned long long)missing, list, missing > 8 ? ", ..." : "");
    }
    free(seen);
}

bt_status bt_llama_check(const char *where, const struct bt_kv *kv, uint32_t n_kv,
                         const struct bt_llama_t *t, uint32_t n_t, unsigned flags, bt_err *err) {
    struct lc c;
    memset(&c, 0, sizeof c);
    const struct bt_kv *arch = find_kv(kv, n_kv, "general.architecture");
    const char *a = arch && arch->type == BT_KV_STRING && arch->v.s &&
                    (!strcmp(arch->v.s, "qwen2") || !strcmp(arch->v.s, "bitnet")) ? arch->v.s : "llama";
    char names[K_N][64];
    const char *full[K_N];
    for (int k = 0; k < K_N; k++) {
        snprintf(names[k], sizeof names[k], "%s.%s", a, gguf_keys[k]);
        full[k] = names[k];
    }
    c.key = flags & BT_LLAMA_HF ? hf_keys : full;
    for (int k = 0; k < K_N; k++) c.has[k] = get_uint(kv, n_kv, full[k], &c.v[k]);
    if (!c.has[K_EMBD]) return BT_OK; /* no llama metadata */
    c.vocab_key = c.key[K_VOCAB];
    const struct bt_kv *tok = find_kv(kv, n_kv, "tokenizer.ggml.tokens");
    if (!c.has[K_VOCAB] && !(flags & BT_LLAMA_HF) && tok && tok->type == BT_KV_ARRAY) {
        c.has[K_VOCAB] = 1; /* llama.cpp's files: the vocabulary is the token list */
        c.v[K_VOCAB] = tok->n;
        c.vocab_key = "tokenizer.ggml.tokens (entries)";
    }
    check_shapes(&c, t, n_t);
    check_layers(&c, t, n_t, (flags & BT_LLAMA_WHOLE) != 0);
    if (!c.len) return BT_OK;
    return bt_err_set(err, BT_E_FORMAT, "%s does not match the tensors: %s", where, c.msg);
}
