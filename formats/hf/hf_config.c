/* hf_config.c - read a Hugging Face config.json with json-c and turn it into GGUF llama.* key/values
 * (types as llama.cpp requires: u32 integers, f32 eps/theta). See hf_config.h. */
#include "hf_config.h"
#include "bt/bt.h" /* struct bt_err, bt_err_set (bt_types) */

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* parse context: the document and where messages go */
struct hfc {
    const char         *path;   /* config.json path for messages */
    struct json_object *root;   /* parsed document */
    bt_err             *err;    /* where messages go (may be NULL) */
};

/* record st and "<path>: reason" in c->err */
__attribute__((format(printf, 3, 4)))
static bt_status hfc_fail(struct hfc *c, bt_status st, const char *fmt, ...) {
    if (!c->err) return st;
    char reason[sizeof(c->err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    return bt_err_set(c->err, st, "%s: %s", c->path, reason);
}

/* member of obj, NULL if absent or JSON null */
static struct json_object *hfc_get(struct json_object *obj, const char *key) {
    struct json_object *v = NULL;
    if (!obj || !json_object_object_get_ex(obj, key, &v)) return NULL;
    return v;
}

/* integer key in [lo, UINT32_MAX]; required → error if absent, else *out keeps its default */
static bt_status hfc_u32(struct hfc *c, struct json_object *obj, const char *pre, const char *key,
                         int required, uint32_t lo, uint32_t *out) {
    struct json_object *v = hfc_get(obj, key);
    if (!v) {
        if (required) return hfc_fail(c, BT_E_FORMAT, "required key '%s%s' is missing", pre, key);
        return BT_OK;
    }
    int64_t x = json_object_get_int64(v);
    if (!json_object_is_type(v, json_type_int) || x < (int64_t)lo || x > (int64_t)UINT32_MAX)
        return hfc_fail(c, BT_E_FORMAT, "key '%s%s' must be an integer in [%u, %u]", pre, key, lo,
                        UINT32_MAX);
    *out = (uint32_t)x;
    return BT_OK;
}

/* number key (int or double), finite and > 0 */
static bt_status hfc_pos(struct hfc *c, struct json_object *obj, const char *pre, const char *key,
                         int required, float *out) {
    struct json_object *v = hfc_get(obj, key);
    if (!v) {
        if (required) return hfc_fail(c, BT_E_FORMAT, "required key '%s%s' is missing", pre, key);
        return BT_OK;
    }
    double x = json_object_get_double(v);
    if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) ||
        !isfinite(x) || x <= 0 || x > 3.0e38)
        return hfc_fail(c, BT_E_FORMAT, "key '%s%s' must be a positive number", pre, key);
    *out = (float)x;
    return BT_OK;
}

static bt_status hfc_bool(struct hfc *c, const char *key, int *out) {
    struct json_object *v = hfc_get(c->root, key);
    if (!v) return BT_OK;
    if (!json_object_is_type(v, json_type_boolean))
        return hfc_fail(c, BT_E_FORMAT, "key '%s' must be true or false", key);
    *out = json_object_get_boolean(v);
    return BT_OK;
}

/* token id: integer, or a list of integers (first one is taken), or null */
static bt_status hfc_token(struct hfc *c, const char *key, int64_t *out) {
    struct json_object *v = hfc_get(c->root, key);
    *out = -1;
    if (v && json_object_is_type(v, json_type_array))
        v = json_object_array_length(v) ? json_object_array_get_idx(v, 0) : NULL;
    if (!v) return BT_OK;
    int64_t x = json_object_get_int64(v);
    if (!json_object_is_type(v, json_type_int) || x < 0 || x > (int64_t)UINT32_MAX)
        return hfc_fail(c, BT_E_FORMAT, "key '%s' must be a non-negative integer or a list of them",
                        key);
    *out = x;
    return BT_OK;
}

/* ---- architecture ------------------------------------------------------------------------ */
static const char *const hfc_archs[] = {"LlamaForCausalLM", "MistralForCausalLM",
                                        "Qwen2ForCausalLM", "BitNetForCausalLM",
                                        "BitnetForCausalLM"};

static bt_status hfc_arch(struct hfc *c, struct bt_hf_config *cfg) {
    struct json_object *a = hfc_get(c->root, "architectures");
    const char *name = NULL;
    if (a) {
        if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) < 1 ||
            !json_object_is_type(json_object_array_get_idx(a, 0), json_type_string))
            return hfc_fail(c, BT_E_FORMAT, "key 'architectures' must be a non-empty list of strings");
        name = json_object_get_string(json_object_array_get_idx(a, 0));
    } else {
        struct json_object *mt = hfc_get(c->root, "model_type");
        if (!mt) return hfc_fail(c, BT_E_FORMAT, "required key 'architectures' is missing");
        if (!json_object_is_type(mt, json_type_string))
            return hfc_fail(c, BT_E_FORMAT, "key 'model_type' must be a string");
        const char *m = json_object_get_string(mt);
        name = strcmp(m, "llama") == 0 ? "LlamaForCausalLM"
             : strcmp(m, "mistral") == 0 ? "MistralForCausalLM"
             : strcmp(m, "qwen2") == 0 ? "Qwen2ForCausalLM"
             : strcmp(m, "bitnet") == 0 ? "BitNetForCausalLM" : m;
    }
    snprintf(cfg->arch, sizeof(cfg->arch), "%s", name);
    cfg->qwen2 = strcmp(name, "Qwen2ForCausalLM") == 0;
    cfg->bitnet = strcmp(name, "BitNetForCausalLM") == 0 || strcmp(name, "BitnetForCausalLM") == 0;
    for (size_t i = 0; i < sizeof(hfc_archs) / sizeof(hfc_archs[0]); i++)
        if (strcmp(name, hfc_archs[i]) == 0) return BT_OK;
    return hfc_fail(c, BT_E_UNSUPPORTED, "architecture %s is not supported (LlamaForCausalLM, "
                    "MistralForCausalLM, Qwen2ForCausalLM, BitNetForCausalLM)", name);
}

/* quantization_config: only BitNet's (packed ternary weights) is read; any other quantized
 * checkpoint (gptq, awq, bitsandbytes, ...) is refused by name */
static bt_status hfc_quant(struct hfc *c, struct bt_hf_config *cfg) {
    struct json_object *q = hfc_get(c->root, "quantization_config");
    if (!q) return BT_OK;
    struct json_object *m = hfc_get(q, "quant_method");
    const char *ms = m && json_object_is_type(m, json_type_string) ? json_object_get_string(m) : NULL;
    if (!ms) return hfc_fail(c, BT_E_FORMAT, "key 'quantization_config.quant_method' must be a string");
    if (strcmp(ms, "vptq") == 0) return BT_OK; /* the vptq reader's (formats/vptq), which embeds ours */
    if (strcmp(ms, "bitnet") != 0 || !cfg->bitnet)
        return hfc_fail(c, BT_E_UNSUPPORTED, "quantization_config.quant_method '%s' is not supported "
                        "('bitnet' with BitNetForCausalLM; 'vptq' through the vptq reader)", ms);
    cfg->bitnet_packed = 1;
    struct json_object *lc = hfc_get(q, "linear_class");
    const char *ls = lc && json_object_is_type(lc, json_type_string) ? json_object_get_string(lc)
                                                                     : "bitlinear";
    if (strcmp(ls, "autobitlinear") == 0) cfg->bitnet_mul = 1;
    else if (strcmp(ls, "bitlinear") != 0)
        return hfc_fail(c, BT_E_UNSUPPORTED, "quantization_config.linear_class '%s' is not "
                        "supported (bitlinear, autobitlinear)", ls);
    struct json_object *qm = hfc_get(q, "quantization_mode");
    if (qm && (!json_object_is_type(qm, json_type_string) ||
               strcmp(json_object_get_string(qm), "offline") != 0))
        return hfc_fail(c, BT_E_UNSUPPORTED, "quantization_config.quantization_mode '%s' is not "
                        "supported (offline: packed ternary weights)", json_object_get_string(qm));
    return BT_OK;
}

/* features bt cannot convert faithfully */
static bt_status hfc_refuse(struct hfc *c, struct bt_hf_config *cfg) {
    int ab = 0, mb = 0;
    bt_status st = hfc_bool(c, "attention_bias", &ab);
    if (st == BT_OK) st = hfc_bool(c, "mlp_bias", &mb);
    if (st != BT_OK) return st;
    if (ab) return hfc_fail(c, BT_E_UNSUPPORTED, "attention_bias=true is not supported");
    if (mb) return hfc_fail(c, BT_E_UNSUPPORTED, "mlp_bias=true is not supported");
    struct json_object *act = hfc_get(c->root, "hidden_act");
    const char *as = act && json_object_is_type(act, json_type_string) ? json_object_get_string(act)
                                                                       : NULL;
    cfg->relu2 = cfg->bitnet && as && strcmp(as, "relu2") == 0;
    if (act && !cfg->relu2 && (!as || strcmp(as, "silu") != 0))
        return hfc_fail(c, BT_E_UNSUPPORTED, "hidden_act '%s' is not supported (silu; relu2 for "
                        "BitNet)", json_object_get_string(act));
    return hfc_quant(c, cfg);
}

/* ---- RoPE: v4 rope_theta + rope_scaling, v5 rope_parameters ------------------------------- */
static bt_status hfc_rope(struct hfc *c, struct bt_hf_config *cfg) {
    struct json_object *rp = hfc_get(c->root, "rope_parameters");
    struct json_object *rs = hfc_get(c->root, "rope_scaling");
    const char *pre = "rope_scaling.";
    if (rp && !json_object_is_type(rp, json_type_object))
        return hfc_fail(c, BT_E_FORMAT, "key 'rope_parameters' must be an object");
    if (rs && !json_object_is_type(rs, json_type_object))
        return hfc_fail(c, BT_E_FORMAT, "key 'rope_scaling' must be an object or null");
    cfg->rope_theta = 10000.0f;
    bt_status st = hfc_pos(c, c->root, "", "rope_theta", 0, &cfg->rope_theta);
    if (st == BT_OK && rp) st = hfc_pos(c, rp, "rope_parameters.", "rope_theta", 0, &cfg->rope_theta);
    if (st != BT_OK) return st;
    if (!rs && rp) { rs = rp; pre = "rope_parameters."; }
    cfg->rope_type = BT_HF_ROPE_NONE;
    if (!rs) return BT_OK;
    struct json_object *t = hfc_get(rs, "rope_type");
    if (!t) t = hfc_get(rs, "type");
    if (!t) return BT_OK;
    if (!json_object_is_type(t, json_type_string))
        return hfc_fail(c, BT_E_FORMAT, "key '%srope_type' must be a string", pre);
    const char *ts = json_object_get_string(t);
    if (strcmp(ts, "default") == 0) return BT_OK;
    if (strcmp(ts, "linear") == 0) {
        cfg->rope_type = BT_HF_ROPE_LINEAR;
        return hfc_pos(c, rs, pre, "factor", 1, &cfg->rope_factor);
    }
    if (strcmp(ts, "llama3") != 0)
        return hfc_fail(c, BT_E_UNSUPPORTED, "%srope_type '%s' is not supported (default, linear, "
                        "llama3)", pre, ts);
    cfg->rope_type = BT_HF_ROPE_LLAMA3;
    cfg->rope_low_freq = 1.0f;
    cfg->rope_high_freq = 4.0f;
    cfg->rope_orig_ctx = 8192;
    st = hfc_pos(c, rs, pre, "factor", 1, &cfg->rope_factor);
    if (st == BT_OK) st = hfc_pos(c, rs, pre, "low_freq_factor", 0, &cfg->rope_low_freq);
    if (st == BT_OK) st = hfc_pos(c, rs, pre, "high_freq_factor", 0, &cfg->rope_high_freq);
    if (st == BT_OK)
        st = hfc_u32(c, rs, pre, "original_max_position_embeddings", 0, 1, &cfg->rope_orig_ctx);
    if (st == BT_OK && !(cfg->rope_high_freq > cfg->rope_low_freq))
        return hfc_fail(c, BT_E_FORMAT, "%shigh_freq_factor must be greater than low_freq_factor",
                        pre);
    return st;
}

/* ---- sizes ------------------------------------------------------------------------------- */
static bt_status hfc_sizes(struct hfc *c, struct bt_hf_config *cfg) {
    struct json_object *r = c->root;
    bt_status st = hfc_u32(c, r, "", "hidden_size", 1, 1, &cfg->n_embd);
    if (st == BT_OK) st = hfc_u32(c, r, "", "num_hidden_layers", 1, 1, &cfg->n_layer);
    if (st == BT_OK) st = hfc_u32(c, r, "", "intermediate_size", 1, 1, &cfg->n_ff);
    if (st == BT_OK) st = hfc_u32(c, r, "", "num_attention_heads", 1, 1, &cfg->n_head);
    if (st == BT_OK) st = hfc_u32(c, r, "", "vocab_size", 1, 1, &cfg->n_vocab);
    if (st == BT_OK) st = hfc_u32(c, r, "", "max_position_embeddings", 1, 1, &cfg->n_ctx);
    if (st == BT_OK) st = hfc_pos(c, r, "", "rms_norm_eps", 1, &cfg->rms_eps);
    if (st != BT_OK) return st;
    cfg->n_head_kv = cfg->n_head;
    st = hfc_u32(c, r, "", "num_key_value_heads", 0, 1, &cfg->n_head_kv);
    if (st != BT_OK) return st;
    if (cfg->n_head % cfg->n_head_kv != 0)
        return hfc_fail(c, BT_E_FORMAT, "num_attention_heads (%u) is not a multiple of "
                        "num_key_value_heads (%u)", cfg->n_head, cfg->n_head_kv);
    cfg->head_dim_given = hfc_get(r, "head_dim") != NULL;
    if (cfg->head_dim_given) {
        st = hfc_u32(c, r, "", "head_dim", 1, 2, &cfg->head_dim);
        if (st != BT_OK) return st;
    } else {
        if (cfg->n_embd % cfg->n_head != 0)
            return hfc_fail(c, BT_E_FORMAT, "hidden_size (%u) is not a multiple of "
                            "num_attention_heads (%u) and head_dim is not given", cfg->n_embd,
                            cfg->n_head);
        cfg->head_dim = cfg->n_embd / cfg->n_head;
    }
    if (cfg->head_dim % 2 != 0)
        return hfc_fail(c, BT_E_FORMAT, "head_dim (%u) must be even for RoPE", cfg->head_dim);
    /* Mistral's sliding window (null = none; use_sliding_window = false turns it off) */
    int use_sw = !cfg->qwen2; /* Qwen2: off unless use_sliding_window says so */
    uint32_t sw = 0;
    st = hfc_bool(c, "use_sliding_window", &use_sw);
    if (st == BT_OK) st = hfc_u32(c, r, "", "sliding_window", 0, 1, &sw);
    if (st != BT_OK) return st;
    cfg->sliding_window = use_sw && sw && sw < cfg->n_ctx ? sw : 0;
    return BT_OK;
}

struct json_object *bt_hf_json_read(const char *path, bt_status *st, bt_err *err) {
    struct hfc c = {path, NULL, err};
    FILE *f = fopen(path, "rb");
    if (!f) {
        *st = hfc_fail(&c, BT_E_IO, "cannot open: %s", strerror(errno));
        return NULL;
    }
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || n > INT32_MAX - 1 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        *st = hfc_fail(&c, BT_E_IO, "cannot read (size unknown or over 2 GiB)");
        return NULL;
    }
    char *buf = malloc((size_t)n + 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)n) {
        free(buf);
        *st = hfc_fail(&c, buf ? BT_E_IO : BT_E_NOMEM, buf ? "read failed" : "out of memory");
        return NULL;
    }
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o = tok ? json_tokener_parse_ex(tok, buf, (int)n) : NULL;
    if (!tok) {
        *st = hfc_fail(&c, BT_E_NOMEM, "out of memory");
    } else if (!o) {
        enum json_tokener_error je = json_tokener_get_error(tok);
        size_t at = json_tokener_get_parse_end(tok);
        if (je == json_tokener_continue || je == json_tokener_success)
            *st = hfc_fail(&c, BT_E_FORMAT, "invalid JSON: unexpected end of file");
        else
            *st = hfc_fail(&c, BT_E_FORMAT, "invalid JSON at byte %zu: %s", at,
                           json_tokener_error_desc(je));
    } else {
        size_t at = json_tokener_get_parse_end(tok);
        while (at < (size_t)n && (buf[at] == ' ' || buf[at] == '\n' || buf[at] == '\r' ||
                                  buf[at] == '\t'))
            at++;
        if (at != (size_t)n) {
            json_object_put(o);
            o = NULL;
            *st = hfc_fail(&c, BT_E_FORMAT, "invalid JSON: unexpected data at byte %zu", at);
        }
    }
    if (tok) json_tokener_free(tok);
    free(buf);
    if (o) *st = BT_OK;
    return o;
}

bt_status bt_hf_config_load(const char *path, struct bt_hf_config *cfg, bt_err *err) {
    struct hfc c = {path, NULL, err};
    memset(cfg, 0, sizeof(*cfg));
    if (err) bt_err_clear(err);
    bt_status st = BT_OK;
    c.root = bt_hf_json_read(path, &st, err);
    if (!c.root) return st;
    if (!json_object_is_type(c.root, json_type_object))
        st = hfc_fail(&c, BT_E_FORMAT, "not a JSON object");
    if (st == BT_OK) st = hfc_arch(&c, cfg);
    if (st == BT_OK) st = hfc_refuse(&c, cfg);
    if (st == BT_OK) st = hfc_sizes(&c, cfg);
    if (st == BT_OK) st = hfc_rope(&c, cfg);
    if (st == BT_OK) st = hfc_bool(&c, "tie_word_embeddings", &cfg->tie_embeddings);
    if (st == BT_OK) st = hfc_token(&c, "bos_token_id", &cfg->bos_id);
    if (st == BT_OK) st = hfc_token(&c, "eos_token_id", &cfg->eos_id);
    json_object_put(c.root);
    return st;
}

const char *bt_hf_config_gguf_arch(const struct bt_hf_config *cfg) {
    return cfg->qwen2 ? "qwen2" : cfg->bitnet ? "bitnet" : "llama";
}

bt_status bt_hf_config_to_kvs(const struct bt_hf_config *cfg, struct bt_kvlist *out) {
    const char *a = bt_hf_config_gguf_arch(cfg);
    struct { const char *key; uint32_t v; } u[] = {
        {"context_length", cfg->n_ctx},
        {"embedding_length", cfg->n_embd},
        {"block_count", cfg->n_layer},
        {"feed_forward_length", cfg->n_ff},
        {"attention.head_count", cfg->n_head},
        {"attention.head_count_kv", cfg->n_head_kv},
        {"rope.dimension_count", cfg->head_dim},
        {"vocab_size", cfg->n_vocab},
    };
    char k[96];
#define AK(name) (snprintf(k, sizeof k, "%s.%s", a, name), k)
    bt_status st = bt_kvlist_str(out, "general.architecture", a);
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]) && st == BT_OK; i++)
        st = bt_kvlist_u32(out, AK(u[i].key), u[i].v);
    if (st == BT_OK) st = bt_kvlist_f32(out, AK("attention.layer_norm_rms_epsilon"), cfg->rms_eps);
    if (st == BT_OK) st = bt_kvlist_f32(out, AK("rope.freq_base"), cfg->rope_theta);
    if (st == BT_OK && cfg->head_dim_given) {
        st = bt_kvlist_u32(out, AK("attention.key_length"), cfg->head_dim);
        if (st == BT_OK) st = bt_kvlist_u32(out, AK("attention.value_length"), cfg->head_dim);
    }
    if (st == BT_OK && cfg->rope_type == BT_HF_ROPE_LINEAR) {
        st = bt_kvlist_str(out, AK("rope.scaling.type"), "linear");
        if (st == BT_OK) st = bt_kvlist_f32(out, AK("rope.scaling.factor"), cfg->rope_factor);
    }
    if (st == BT_OK && cfg->sliding_window)
        st = bt_kvlist_u32(out, AK("attention.sliding_window"), cfg->sliding_window);
#undef AK
    if (st == BT_OK && cfg->relu2) st = bt_kvlist_str(out, "bt.ffn_activation", "relu2");
    if (st == BT_OK) st = bt_kvlist_bool(out, "bt.tie_word_embeddings", cfg->tie_embeddings);
    if (st == BT_OK && cfg->bos_id >= 0)
        st = bt_kvlist_u32(out, "tokenizer.ggml.bos_token_id", (uint32_t)cfg->bos_id);
    if (st == BT_OK && cfg->eos_id >= 0)
        st = bt_kvlist_u32(out, "tokenizer.ggml.eos_token_id", (uint32_t)cfg->eos_id);
    return st;
}

bt_status bt_hf_config_kvs(const char *config_json_path, struct bt_kvlist *out, bt_err *err) {
    struct bt_hf_config cfg;
    bt_status st = bt_hf_config_load(config_json_path, &cfg, err);
    if (st != BT_OK) return st;
    st = bt_hf_config_to_kvs(&cfg, out);
    if (st != BT_OK) bt_err_set(err, st, "%s: out of memory", config_json_path);
    return st;
}

void bt_hf_rope_llama3_factors(const struct bt_hf_config *cfg, float *dst) {
    const double pi = 3.14159265358979323846;
    double base = cfg->rope_theta, dim = cfg->head_dim, factor = cfg->rope_factor;
    double low = cfg->rope_low_freq, high = cfg->rope_high_freq, old = cfg->rope_orig_ctx;
    double low_wavelen = old / low, high_wavelen = old / high;
    for (uint32_t k = 0; k < cfg->head_dim / 2; k++) {
        double freq = pow(base, -2.0 * k / dim);
        double wavelen = 2.0 * pi / freq;
        double f;
        if (wavelen < high_wavelen) {
            f = 1.0;
        } else if (wavelen > low_wavelen) {
            f = factor;
        } else {
            double s = (old / wavelen - low) / (high - low);
            f = 1.0 / ((1.0 - s) / factor + s);
        }
        dst[k] = (float)f;
    }
}
