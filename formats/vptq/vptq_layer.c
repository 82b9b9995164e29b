/* vptq_layer.c - one VPTQ-community quantized linear into bt's vq format: its quantization_config
 * entry (vptq_lcfg_find), the checks of its tensors against it, and the repacking (per-group
 * 32-bit-padded index rows -> one code stream per row block, model-dtype codebooks and column
 * scales -> f16, outlier codes and perm copied). docs/formats.md "VPTQ checkpoints as input". */
#include "vptq_layer.h"
#include "bt_types.h"

#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the config entry ---------------------------------------------------------------------- */
struct cfg_ctx {
    const struct bt_host *h;
    struct json_object   *o;     /* the entry */
    const char           *where; /* config.json path */
    const char           *P;     /* module name */
    bt_err               *err;
};

static int cfg_fail(struct cfg_ctx *c, const char *key, const char *why) {
    c->h->set_error(c->err, BT_E_FORMAT, "vptq: %s: quantization_config entry for '%s': field "
                    "'%s' %s", c->where, c->P, key, why);
    return -1;
}

static int is_int(struct json_object *v) {
    return json_object_is_type(v, json_type_int) ||
           (json_object_is_type(v, json_type_double) &&
            json_object_get_double(v) == floor(json_object_get_double(v)));
}

/* an integer field; def used when absent and !required */
static int cfg_int(struct cfg_ctx *c, const char *key, int required, int64_t def, int64_t *out) {
    struct json_object *v;
    if (!json_object_object_get_ex(c->o, key, &v) || json_object_is_type(v, json_type_null)) {
        if (required) return cfg_fail(c, key, "is missing");
        *out = def;
        return 0;
    }
    if (!is_int(v)) return cfg_fail(c, key, "must be an integer");
    *out = json_object_get_int64(v);
    return 0;
}

/* a [outlier, main] pair of integers */
static int cfg_pair(struct cfg_ctx *c, const char *key, int64_t out[2]) {
    struct json_object *v;
    if (!json_object_object_get_ex(c->o, key, &v)) return cfg_fail(c, key, "is missing");
    if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) != 2 ||
        !is_int(json_object_array_get_idx(v, 0)) || !is_int(json_object_array_get_idx(v, 1)))
        return cfg_fail(c, key, "must be a list of two integers [outlier, main]");
    for (int k = 0; k < 2; k++) out[k] = json_object_get_int64(json_object_array_get_idx(v, k));
    return 0;
}

static int cfg_bool(struct cfg_ctx *c, const char *key, int def, int *out) {
    struct json_object *v;
    if (!json_object_object_get_ex(c->o, key, &v) || json_object_is_type(v, json_type_null)) {
        *out = def;
        return 0;
    }
    if (!json_object_is_type(v, json_type_boolean)) return cfg_fail(c, key, "must be true or false");
    *out = json_object_get_boolean(v);
    return 0;
}

int vptq_lcfg_find(const struct bt_host *h, struct json_object *qc, const char *P,
                   const char *where, struct vptq_lcfg *lc, bt_err *err) {
    struct json_object *m, *e = NULL;
    if (json_object_object_get_ex(qc, "config_for_layers", &m) &&
        json_object_is_type(m, json_type_object))
        json_object_object_get_ex(m, P, &e);
    if (!e && json_object_object_get_ex(qc, "shared_layer_config", &m) &&
        json_object_is_type(m, json_type_object)) {
        const char *dot = strrchr(P, '.');
        json_object_object_get_ex(m, dot ? dot + 1 : P, &e);
    }
    if (!e) return 0;
    struct cfg_ctx c = {h, e, where, P, err};
    if (!json_object_is_type(e, json_type_object)) return cfg_fail(&c, "(entry)", "must be an object");
    memset(lc, 0, sizeof(*lc));
    int64_t p[2];
    if (cfg_pair(&c, "vector_lens", p)) return -1;
    lc->v0 = p[0], lc->v = p[1];
    if (cfg_pair(&c, "num_centroids", p)) return -1;
    lc->k0 = p[0], lc->k1 = p[1];
    if (cfg_pair(&c, "num_res_centroids", p)) return -1;
    lc->kr0 = p[0], lc->k2 = p[1];
    if (cfg_int(&c, "outlier_size", 1, 0, &lc->n_out) || cfg_int(&c, "group_num", 1, 1, &lc->G) ||
        cfg_int(&c, "group_size", 1, 0, &lc->gs) ||
        cfg_int(&c, "in_features", 0, -1, &lc->in_features) ||
        cfg_int(&c, "out_features", 0, -1, &lc->out_features) ||
        cfg_bool(&c, "enable_norm", 0, &lc->norm) || cfg_bool(&c, "enable_perm", 0, &lc->perm) ||
        cfg_bool(&c, "is_indice_packed", 1, &lc->packed) ||
        cfg_bool(&c, "indices_as_float", 0, &lc->as_float) || cfg_bool(&c, "bias", 0, &lc->bias))
        return -1;
    return 1;
}

/* ---- checks --------------------------------------------------------------------------------- */
struct lay {
    const struct bt_host *h;
    const char           *P;
    bt_err               *err;
};

static bt_status lay_fail(struct lay *l, bt_status st, const char *tensor, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bt_status lay_fail(struct lay *l, bt_status st, const char *tensor, const char *fmt, ...) {
    char why[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return l->h->set_error(l->err, st, "vptq: tensor '%s%s': %s", l->P, tensor, why);
}

static void shape_str(const struct bt_tensor *t, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "{");
    for (uint32_t d = 0; d < t->n_dims && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (o < n) snprintf(buf + o, n - o, "}");
}

/* t exists (iff want), has one of the types in mask (1 << BT_TYPE_*) and shape dims[nd] */
static bt_status need(struct lay *l, const struct bt_tensor *t, int want, const char *suffix,
                      const char *because, uint32_t mask, uint32_t nd, const int64_t *dims) {
    if (!want) {
        if (t) return lay_fail(l, BT_E_FORMAT, suffix, "present, but quantization_config says "
                               "there is none (%s)", because);
        return BT_OK;
    }
    if (!t) return lay_fail(l, BT_E_FORMAT, suffix, "missing (quantization_config: %s)", because);
    if (t->fmt.type >= 32 || !(mask >> t->fmt.type & 1))
        return lay_fail(l, BT_E_FORMAT, suffix, "dtype %s is not one VPTQ writes here",
                        bt_type_name(t->fmt.type));
    int ok = t->n_dims == nd;
    for (uint32_t d = 0; ok && d < nd; d++) ok = t->shape[d] == dims[d];
    if (!ok) {
        char got[96], exp[96];
        struct bt_tensor e = {0};
        e.n_dims = nd;
        for (uint32_t d = 0; d < nd; d++) e.shape[d] = dims[d];
        shape_str(t, got, sizeof(got));
        shape_str(&e, exp, sizeof(exp));
        return lay_fail(l, BT_E_FORMAT, suffix, "shape %s contradicts quantization_config (%s): "
                        "expected %s", got, because, exp);
    }
    if (!t->data) return lay_fail(l, BT_E_FORMAT, suffix, "has no data");
    return BT_OK;
}

/* log2 of a power of two k in 1..2^16, else -1 */
static int bits_of(int64_t k) {
    for (int b = 0; b <= 16; b++)
        if (k == (int64_t)1 << b) return b;
    return -1;
}

/* ---- conversion ----------------------------------------------------------------------------- */
/* n values of t (F16/BF16/F32) as f16 into dst; counts conversions and inexact ones */
static bt_status to_f16(struct lay *l, const char *suffix, const struct bt_tensor *t, uint8_t *dst,
                        int64_t n, struct vptq_out *o) {
    const uint8_t *s = t->data;
    if (t->fmt.type == BT_TYPE_F16) {
        memcpy(dst, s, (size_t)n * 2);
        return BT_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        float f;
        if (t->fmt.type == BT_TYPE_BF16) f = bt_bf16_to_f32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8));
        else memcpy(&f, s + 4 * i, 4);
        uint16_t hv = bt_f32_to_fp16(f);
        float back = bt_fp16_to_f32(hv);
        if (isinf(back) && !isinf(f))
            return lay_fail(l, BT_E_UNSUPPORTED, suffix, "value %g at %lld does not fit f16 (bt's "
                            "vq codebooks and scales are f16)", (double)f, (long long)i);
        o->n_conv++;
        o->n_inexact += !(back == f);
        dst[2 * i] = (uint8_t)hv;
        dst[2 * i + 1] = (uint8_t)(hv >> 8);
    }
    return BT_OK;
}

/* the config's numbers -> bt's parameters, refusing what bt cannot hold */
static bt_status check_cfg(struct lay *l, const struct vptq_lcfg *c, int64_t M, int64_t N,
                           int *b1, int *b2, int *b0) {
    if (!c->packed) return lay_fail(l, BT_E_UNSUPPORTED, ".indices", "is_indice_packed = false "
                                    "(unpacked legacy indices) is not supported; repack them");
    if (c->as_float) return lay_fail(l, BT_E_UNSUPPORTED, ".indices", "indices_as_float = true "
                                     "is not supported");
    if (c->bias) return lay_fail(l, BT_E_UNSUPPORTED, ".bias", "bias = true: bt's Llama has no "
                                 "linear biases");
    if (c->in_features >= 0 && c->in_features != N)
        return lay_fail(l, BT_E_FORMAT, ".weight", "in_features = %lld contradicts the model's "
                        "%lld", (long long)c->in_features, (long long)N);
    if (c->out_features >= 0 && c->out_features != M)
        return lay_fail(l, BT_E_FORMAT, ".weight", "out_features = %lld contradicts the model's "
                        "%lld", (long long)c->out_features, (long long)M);
    if (N > 65536) return lay_fail(l, BT_E_UNSUPPORTED, ".weight", "%lld input columns (bt's vq: "
                                   "at most 65536)", (long long)N);
    if (c->v < 1 || c->v > BT_VQ_MAX_V)
        return lay_fail(l, BT_E_UNSUPPORTED, ".indices", "vector_lens[1] = %lld (bt: 1..%d)",
                        (long long)c->v, BT_VQ_MAX_V);
    if ((*b1 = bits_of(c->k1)) < 1)
        return lay_fail(l, BT_E_UNSUPPORTED, ".centroids.weight", "num_centroids[1] = %lld (bt: a "
                        "power of two 2..65536, index bits 1..16)", (long long)c->k1);
    *b2 = c->k2 <= 0 ? 0 : bits_of(c->k2);
    if (*b2 < 0 || (c->k2 > 0 && *b2 < 1))
        return lay_fail(l, BT_E_UNSUPPORTED, ".res_centroids.weight", "num_res_centroids[1] = %lld "
                        "(bt: -1 or a power of two 2..65536)", (long long)c->k2);
    if (c->kr0 > 0)
        return lay_fail(l, BT_E_UNSUPPORTED, ".outlier_centroids.weight", "num_res_centroids[0] = "
                        "%lld: a residual codebook on outliers is not supported", (long long)c->kr0);
    *b0 = 0;
    if (c->n_out < 0 || c->n_out >= N)
        return lay_fail(l, BT_E_FORMAT, ".outlier_indices", "outlier_size = %lld (0..%lld)",
                        (long long)c->n_out, (long long)N - 1);
    if (c->n_out > 0) {
        if (c->v0 < 1 || c->v0 > BT_VQ_MAX_V)
            return lay_fail(l, BT_E_UNSUPPORTED, ".outlier_indices", "vector_lens[0] = %lld with "
                            "outlier_size %lld (bt: 1..%d)", (long long)c->v0, (long long)c->n_out,
                            BT_VQ_MAX_V);
        if ((*b0 = bits_of(c->k0)) < 1)
            return lay_fail(l, BT_E_UNSUPPORTED, ".outlier_centroids.weight", "num_centroids[0] = "
                            "%lld with outlier_size %lld (bt: a power of two 2..65536)",
                            (long long)c->k0, (long long)c->n_out);
    }
    if (c->G < 1 || c->G > 65535 || c->gs < 1 || c->G * c->gs + c->n_out != N)
        return lay_fail(l, BT_E_FORMAT, ".indices", "group_num %lld x group_size %lld + "
                        "outlier_size %lld != in_features %lld", (long long)c->G, (long long)c->gs,
                        (long long)c->n_out, (long long)N);
    return BT_OK;
}

/* the tensors' presence, dtypes and shapes */
static bt_status check_tensors(struct lay *l, const struct vptq_lcfg *c, const struct vptq_src *s,
                               int64_t M, int64_t N, uint32_t t) {
    const uint32_t FP = 1u << BT_TYPE_F16 | 1u << BT_TYPE_BF16 | 1u << BT_TYPE_F32;
    const uint32_t I16 = 1u << BT_TYPE_I16, PERM = I16 | 1u << BT_TYPE_I32 | 1u << BT_TYPE_I64;
    int64_t nrb = (M + c->v - 1) / c->v;
    int64_t d_idx[3] = {c->G, nrb, (c->gs * t + 31) / 32};
    int64_t d_c[2] = {c->G, c->k1 * c->v}, d_r[2] = {c->G, c->k2 * c->v};
    int64_t d_oc[2] = {1, c->k0 * c->v0}, d_oi[3] = {1, c->n_out ? (M + c->v0 - 1) / c->v0 : 0, c->n_out};
    int64_t d_n[1] = {N};
    bt_status st;
    if ((st = need(l, s->idx, 1, ".indices", "group_num, ceil(out_features / vector_lens[1]), "
                   "ceil(group_size * index bits / 32) int32 words", 1u << BT_TYPE_I32, 3, d_idx)) ||
        (st = need(l, s->cent, 1, ".centroids.weight", "group_num, num_centroids[1] x "
                   "vector_lens[1]", FP, 2, d_c)) ||
        (st = need(l, s->res, c->k2 > 0, ".res_centroids.weight", "group_num, "
                   "num_res_centroids[1] x vector_lens[1]", FP, 2, d_r)) ||
        (st = need(l, s->ocent, c->n_out > 0, ".outlier_centroids.weight", "outlier_size, "
                   "num_centroids[0] x vector_lens[0]", FP, 2, d_oc)) ||
        (st = need(l, s->oidx, c->n_out > 0, ".outlier_indices", "1, ceil(out_features / "
                   "vector_lens[0]), outlier_size", I16, 3, d_oi)) ||
        (st = need(l, s->perm, c->perm, ".perm", "enable_perm, in_features", PERM, 1, d_n)) ||
        (st = need(l, s->scale, c->norm, ".weight_scale", "enable_norm, in_features", FP, 1, d_n)) ||
        (st = need(l, s->bias, c->norm, ".weight_bias", "enable_norm, in_features", FP, 1, d_n)))
        return st;
    return BT_OK;
}

/* the per-group index rows of row block rb -> bt's code stream s (ncode codes of t bits) */
static void repack_block(const struct bt_vq_layout *L, const uint8_t *idx, int64_t nrb,
                         int64_t words, int64_t rb, uint8_t *s) {
    for (int64_t g = 0; g < (int64_t)L->G; g++) {
        const uint8_t *src = idx + ((uint64_t)g * nrb + rb) * words * 4;
        uint64_t bit0 = (uint64_t)g * L->gs * L->t, nbits = (uint64_t)L->gs * L->t;
        if (bit0 % 8 == 0 && nbits % 8 == 0) {
            memcpy(s + bit0 / 8, src, nbits / 8);
            continue;
        }
        for (int64_t c = 0; c < L->gs; c++)
            bt_vq_put_code(s, bit0 + (uint64_t)c * L->t, L->t, bt_vq_get_code(src, (uint64_t)c * L->t, L->t));
    }
}

void vptq_out_free(struct vptq_out *o) {
    free(o->data);
    for (uint32_t k = 0; k < BT_MAX_PARTS; k++) free(o->parts[k]);
    memset(o, 0, sizeof(*o));
}

static bt_status fill(struct lay *l, const struct vptq_lcfg *c, const struct vptq_src *s,
                      const struct bt_vq_layout *L, struct vptq_out *o) {
    bt_status st;
    int64_t nrb = L->nrb, words = (c->gs * L->t + 31) / 32;
    for (int64_t rb = 0; rb < nrb; rb++) {
        uint8_t *dst = (rb + 1) * (int64_t)L->v > L->rows ? o->parts[L->p_tail]
                                                          : o->data + (uint64_t)rb * L->v * L->R;
        repack_block(L, s->idx->data, nrb, words, rb, dst);
    }
    uint8_t *cb = o->parts[L->p_cb];
    if ((st = to_f16(l, ".centroids.weight", s->cent, cb + L->cb_main, c->G * c->k1 * c->v, o)))
        return st;
    if (c->k2 > 0 &&
        (st = to_f16(l, ".res_centroids.weight", s->res, cb + L->cb_res, c->G * c->k2 * c->v, o)))
        return st;
    if (c->n_out > 0) {
        if ((st = to_f16(l, ".outlier_centroids.weight", s->ocent, cb + L->cb_out, c->k0 * c->v0, o)))
            return st;
        const uint8_t *oi = s->oidx->data;
        uint64_t n = (uint64_t)L->nrb0 * L->n_out;
        for (uint64_t i = 0; i < n; i++) {
            uint32_t code = (uint32_t)(oi[2 * i] | oi[2 * i + 1] << 8);
            if (code >> L->b0)
                return lay_fail(l, BT_E_FORMAT, ".outlier_indices", "code %u at row block %llu, "
                                "column %llu is out of range (num_centroids[0] = %lld)", code,
                                (unsigned long long)(i / L->n_out),
                                (unsigned long long)(i % L->n_out), (long long)c->k0);
        }
        memcpy(o->parts[L->p_out], oi, n * 2);
    }
    uint8_t *cp = L->p_col >= 0 ? o->parts[L->p_col] : NULL;
    if (c->perm) {
        const uint8_t *pp = s->perm->data;
        uint32_t es = (uint32_t)bt_type_block_bytes(s->perm->fmt.type);
        for (int64_t i = 0; i < L->cols; i++) {
            int64_t v = 0;
            memcpy(&v, pp + i * es, es); /* little-endian, sign bits of I16 dropped below */
            if (es == 2) v &= 0xffff;
            if (v < 0 || v >= L->cols)
                return lay_fail(l, BT_E_FORMAT, ".perm", "entry %lld = %lld is not a column "
                                "0..%lld (perm is not a permutation)", (long long)i, (long long)v,
                                (long long)L->cols - 1);
            cp[L->col_perm + 2 * i] = (uint8_t)v;
            cp[L->col_perm + 2 * i + 1] = (uint8_t)(v >> 8);
        }
    }
    if (c->norm && ((st = to_f16(l, ".weight_scale", s->scale, cp + L->col_scale, L->cols, o)) ||
                    (st = to_f16(l, ".weight_bias", s->bias, cp + L->col_bias, L->cols, o))))
        return st;
    const void *parts[BT_MAX_PARTS] = {o->parts[0], o->parts[1], o->parts[2], o->parts[3]};
    if ((st = bt_vq_check_parts(L, parts)))
        return st == BT_E_FORMAT ? lay_fail(l, st, ".perm", "is not a permutation of 0..%lld "
                                            "(a column appears twice)", (long long)L->cols - 1)
                                 : lay_fail(l, st, "", "out of memory");
    return BT_OK;
}

bt_status vptq_layer_convert(const struct bt_host *h, const char *P, const struct vptq_lcfg *c,
                             int64_t M, int64_t N, const struct vptq_src *s, struct vptq_out *o,
                             bt_err *err) {
    struct lay l = {h, P, err};
    memset(o, 0, sizeof(*o));
    int b1 = 0, b2 = 0, b0 = 0;
    bt_status st = check_cfg(&l, c, M, N, &b1, &b2, &b0);
    if (!st) st = check_tensors(&l, c, s, M, N, (uint32_t)(b1 + b2));
    if (st) return st;
    uint32_t flags = (c->norm ? BT_VQ_NORM : 0) | (c->perm ? BT_VQ_PERM : 0) | (M % c->v ? BT_VQ_TAIL : 0);
    o->fmt = bt_vq_tfmt((uint32_t)c->v, (uint32_t)b1, (uint32_t)b2, (uint32_t)c->G, flags,
                        (uint32_t)c->n_out, c->n_out ? (uint32_t)c->v0 : 0, (uint32_t)b0);
    struct bt_vq_layout L;
    if (!bt_vq_layout(&o->fmt, M, N, &L))
        return lay_fail(&l, BT_E_UNSUPPORTED, ".weight", "the parameters do not fit bt's vq format");
    o->nbytes = (uint64_t)M * L.R;
    o->n_parts = L.n_parts;
    o->data = calloc(1, (size_t)o->nbytes + 1);
    int oom = !o->data;
    for (uint32_t k = 0; k < L.n_parts; k++) {
        o->part_bytes[k] = L.part_bytes[k];
        oom |= !(o->parts[k] = calloc(1, (size_t)L.part_bytes[k]));
    }
    st = oom ? lay_fail(&l, BT_E_NOMEM, "", "out of memory") : fill(&l, c, s, &L, o);
    if (st) vptq_out_free(o);
    return st;
}
