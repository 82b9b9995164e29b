/* vptq.c - reader plugin "vptq": Hugging Face folders of VPTQ-community checkpoints
 * (config.json quantization_config.quant_method = "vptq"). The safetensors reader (built in)
 * lists the files; each quantized linear P (P.indices, P.centroids.weight, ...) becomes one
 * tensor P.weight in bt's vq format under its GGUF name (vptq_layer.c), every other tensor is
 * served as the safetensors reader serves it. docs/formats.md "VPTQ checkpoints as input". */
#include "bt/bt_plugin.h"
#include "hf_config.h"
#include "st_names.h"
#include "vptq_layer.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define VPTQ_NONE UINT32_MAX

const struct bt_plugin *bt_st_embedded(void); /* formats/safetensors/safetensors.c */

/* the component tensors of a quantized linear, by the suffix after "P." (longest match first) */
enum { S_IDX, S_CENT, S_RES, S_OCENT, S_OIDX, S_PERM, S_SCALE, S_BIAS, S_COUNT };
static const char *const vq_suffix[S_COUNT] = {
    ".indices", ".centroids.weight", ".res_centroids.weight", ".outlier_centroids.weight",
    ".outlier_indices", ".perm", ".weight_scale", ".weight_bias",
};

/* One quantized linear found in the files. */
struct vq_layer {
    char    *P;             /* module name, e.g. "model.layers.0.mlp.down_proj" (owned) */
    uint32_t src[S_COUNT];  /* its tensors' indices in the safetensors reader, or VPTQ_NONE */
};

/* One tensor this reader lists. */
struct vq_tensor {
    struct bt_tensor t;     /* the view handed out */
    uint32_t         inner; /* index in the safetensors reader, VPTQ_NONE for converted ones */
    char            *name;  /* converted: canonical name (owned) */
    char            *src;   /* converted: "P.weight" (owned) */
    struct vptq_out  o;     /* converted: the vq buffers (owned) */
};

/* Reader instance state (ctx_size bytes, zeroed by the core). */
struct vq_reader {
    const struct bt_host     *host;
    const struct bt_reader_i *si;     /* the safetensors reader ... */
    void                     *sctx;   /* ... and its instance state (owned) */
    struct vq_tensor         *t;      /* n_t tensors in listing order (owned) */
    uint32_t                  n_t;
    struct vq_layer          *lay;    /* n_lay quantized linears (owned) */
    uint32_t                  n_lay;
};

/* ---- helpers -------------------------------------------------------------------------------- */
static char *vq_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* config.json beside path (a folder, or a file in one); caller frees */
static char *vq_config_path(const char *path) {
    struct stat sb;
    int dir = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
    const char *slash = strrchr(path, '/');
    size_t n = dir ? strlen(path) : slash ? (size_t)(slash - path) : 1;
    char *p = malloc(n + 16);
    if (!p) return NULL;
    if (dir || slash) memcpy(p, path, n);
    else p[0] = '.';
    snprintf(p + n, 16, "/config.json");
    return p;
}

/* the "quantization_config" object of root if its quant_method is "vptq" */
static struct json_object *vq_qconfig(struct json_object *root) {
    struct json_object *qc, *m;
    if (!root || !json_object_object_get_ex(root, "quantization_config", &qc) ||
        !json_object_is_type(qc, json_type_object) ||
        !json_object_object_get_ex(qc, "quant_method", &m) ||
        !json_object_is_type(m, json_type_string) || strcmp(json_object_get_string(m), "vptq"))
        return NULL;
    return qc;
}

static int vq_probe(const char *path) {
    const struct bt_plugin *sp = bt_st_embedded();
    const struct bt_reader_i *si = sp->iface;
    if (!path || !si->probe(path)) return 0;
    char *cp = vq_config_path(path);
    struct json_object *root = cp ? json_object_from_file(cp) : NULL;
    int r = vq_qconfig(root) ? 100 : 0;
    json_object_put(root);
    free(cp);
    return r;
}

/* ---- teardown ------------------------------------------------------------------------------- */
static void vq_close(void *ctx) {
    struct vq_reader *r = ctx;
    for (uint32_t i = 0; i < r->n_t; i++) {
        free(r->t[i].name);
        free(r->t[i].src);
        vptq_out_free(&r->t[i].o);
    }
    free(r->t);
    for (uint32_t i = 0; i < r->n_lay; i++) free(r->lay[i].P);
    free(r->lay);
    if (r->sctx) r->si->close(r->sctx);
    free(r->sctx);
    memset(r, 0, sizeof(*r));
}

/* ---- finding the quantized linears ---------------------------------------------------------- */
/* suffix slot of an HF name and the length of its module prefix, or -1 */
static int vq_slot(const char *name, size_t *plen) {
    size_t n = strlen(name);
    int best = -1;
    size_t bl = 0;
    for (int k = 0; k < S_COUNT; k++) {
        size_t m = strlen(vq_suffix[k]);
        if (n > m && !strcmp(name + n - m, vq_suffix[k]) && m > bl) best = k, bl = m;
    }
    if (best >= 0) *plen = n - bl;
    return best;
}

static struct vq_layer *vq_layer_get(struct vq_reader *r, const char *P, size_t plen) {
    for (uint32_t i = 0; i < r->n_lay; i++)
        if (strlen(r->lay[i].P) == plen && !strncmp(r->lay[i].P, P, plen)) return &r->lay[i];
    struct vq_layer *nl = realloc(r->lay, (r->n_lay + 1) * sizeof(*nl));
    if (!nl) return NULL;
    r->lay = nl;
    struct vq_layer *l = &nl[r->n_lay];
    if (!(l->P = strndup(P, plen))) return NULL;
    for (int k = 0; k < S_COUNT; k++) l->src[k] = VPTQ_NONE;
    r->n_lay++;
    return l;
}

/* sort the inner tensors into layers (is_comp[i] = 1 for their components) and pass-through
 * tensors */
static bt_status vq_scan(struct vq_reader *r, uint8_t *is_comp, uint32_t n, bt_err *err) {
    const struct bt_host *h = r->host;
    for (uint32_t i = 0; i < n; i++) {
        struct bt_tensor t;
        bt_status st = r->si->tensor_get(r->sctx, i, &t, err);
        if (st) return st;
        size_t plen = 0;
        int k = t.src_name ? vq_slot(t.src_name, &plen) : -1;
        if (k < 0) continue;
        struct vq_layer *l = vq_layer_get(r, t.src_name, plen);
        if (!l) return h->set_error(err, BT_E_NOMEM, "vptq: out of memory");
        l->src[k] = i;
        is_comp[i] = 1;
    }
    for (uint32_t i = 0; i < r->n_lay; i++)
        if (r->lay[i].src[S_IDX] == VPTQ_NONE)
            for (int k = 0; k < S_COUNT; k++)
                if (r->lay[i].src[k] != VPTQ_NONE)
                    return h->set_error(err, BT_E_FORMAT, "vptq: tensor '%s%s' has no '%s%s' "
                                        "beside it", r->lay[i].P, vq_suffix[k], r->lay[i].P,
                                        vq_suffix[S_IDX]);
    return BT_OK;
}

/* out_features x in_features of module P from the model's shape (-1 if its role is unknown) */
static void vq_model_shape(const struct bt_hf_config *m, const char *P, int64_t *M, int64_t *N) {
    const char *dot = strrchr(P, '.'), *role = dot ? dot + 1 : P;
    int64_t e = m->n_embd, q = (int64_t)m->n_head * m->head_dim, kv = (int64_t)m->n_head_kv * m->head_dim;
    *M = *N = -1;
    if (!strcmp(role, "q_proj")) *M = q, *N = e;
    else if (!strcmp(role, "k_proj") || !strcmp(role, "v_proj")) *M = kv, *N = e;
    else if (!strcmp(role, "o_proj")) *M = e, *N = q;
    else if (!strcmp(role, "gate_proj") || !strcmp(role, "up_proj")) *M = m->n_ff, *N = e;
    else if (!strcmp(role, "down_proj")) *M = e, *N = m->n_ff;
}

/* ---- converting ---------------------------------------------------------------------------- */
static bt_status vq_convert(struct vq_reader *r, struct vq_layer *l, struct json_object *qc,
                            const struct bt_hf_config *m, const char *cfg_path,
                            struct vq_tensor *x, bt_err *err) {
    const struct bt_host *h = r->host;
    struct vptq_lcfg c;
    int f = vptq_lcfg_find(h, qc, l->P, cfg_path, &c, err);
    if (f < 0) return err->status;
    if (f == 0)
        return h->set_error(err, BT_E_FORMAT, "vptq: tensor '%s.indices': %s has no entry for "
                            "'%s' in quantization_config (config_for_layers or "
                            "shared_layer_config)", l->P, cfg_path, l->P);
    int64_t M, N;
    vq_model_shape(m, l->P, &M, &N);
    if (M < 0) M = c.out_features, N = c.in_features;
    if (M <= 0 || N <= 0)
        return h->set_error(err, BT_E_FORMAT, "vptq: tensor '%s.indices': no out_features / "
                            "in_features for it in quantization_config", l->P);
    struct bt_tensor tt[S_COUNT];
    const struct bt_tensor *p[S_COUNT];
    for (int k = 0; k < S_COUNT; k++) {
        p[k] = NULL;
        if (l->src[k] == VPTQ_NONE) continue;
        bt_status st = r->si->tensor_get(r->sctx, l->src[k], &tt[k], err);
        if (st) return st;
        p[k] = &tt[k];
    }
    struct vptq_src s = {p[S_IDX], p[S_CENT], p[S_RES], p[S_OCENT], p[S_OIDX], p[S_PERM],
                         p[S_SCALE], p[S_BIAS]};
    bt_status st = vptq_layer_convert(h, l->P, &c, M, N, &s, &x->o, err);
    if (st) return st;
    char name[512];
    uint32_t flags = 0;
    size_t n = strlen(l->P) + 8;
    if (!(x->src = malloc(n))) return h->set_error(err, BT_E_NOMEM, "vptq: out of memory");
    snprintf(x->src, n, "%s.weight", l->P);
    if (bt_st_name_map(x->src, name, sizeof(name), &flags) == BT_ST_NAME_TOOLONG)
        return h->set_error(err, BT_E_UNSUPPORTED, "vptq: tensor name '%.80s...' is too long", x->src);
    if (!(x->name = vq_strdup(name))) return h->set_error(err, BT_E_NOMEM, "vptq: out of memory");
    x->inner = VPTQ_NONE;
    x->t.name = x->name;
    x->t.src_name = x->src;
    x->t.fmt = x->o.fmt;
    x->t.n_dims = 2;
    x->t.shape[0] = M;
    x->t.shape[1] = N;
    x->t.data = x->o.data;
    x->t.nbytes = x->o.nbytes;
    x->t.flags = flags;
    x->t.n_parts = x->o.n_parts;
    for (uint32_t k = 0; k < x->o.n_parts; k++) {
        x->t.parts[k] = x->o.parts[k];
        x->t.part_bytes[k] = x->o.part_bytes[k];
    }
    return BT_OK;
}

static int vq_cmp(const void *a, const void *b) {
    return bt_st_name_cmp(((const struct vq_tensor *)a)->t.name, ((const struct vq_tensor *)b)->t.name);
}

/* the listing: pass-through tensors and one converted tensor per layer, in canonical order */
static bt_status vq_build(struct vq_reader *r, struct json_object *qc, const char *cfg_path,
                          bt_err *err) {
    const struct bt_host *h = r->host;
    struct bt_hf_config m;
    bt_status st = bt_hf_config_load(cfg_path, &m, err);
    if (st) return st;
    uint32_t n = r->si->tensor_count(r->sctx);
    uint8_t *is_comp = calloc(n + 1, 1);
    r->t = calloc(n + 1, sizeof(*r->t));
    if (!is_comp || !r->t) st = h->set_error(err, BT_E_NOMEM, "vptq: out of memory");
    if (!st) st = vq_scan(r, is_comp, n, err);
    for (uint32_t i = 0; !st && i < n; i++) {
        if (is_comp[i]) continue;
        struct vq_tensor *x = &r->t[r->n_t];
        if ((st = r->si->tensor_get(r->sctx, i, &x->t, err))) break;
        x->inner = i;
        r->n_t++;
    }
    uint64_t conv = 0, inexact = 0;
    for (uint32_t i = 0; !st && i < r->n_lay; i++) {
        struct vq_tensor *x = &r->t[r->n_t++];
        st = vq_convert(r, &r->lay[i], qc, &m, cfg_path, x, err);
        conv += x->o.n_conv;
        inexact += x->o.n_inexact;
        if (!st && x->o.n_inexact)
            h->log(BT_LOG_DEBUG, "vptq: %s: %llu of %llu codebook/scale values are not exact in "
                   "f16", x->t.name, (unsigned long long)x->o.n_inexact,
                   (unsigned long long)x->o.n_conv);
    }
    free(is_comp);
    if (st) return st;
    qsort(r->t, r->n_t, sizeof(*r->t), vq_cmp);
    for (uint32_t i = 1; i < r->n_t; i++)
        if (!strcmp(r->t[i - 1].t.name, r->t[i].t.name))
            return h->set_error(err, BT_E_FORMAT, "vptq: tensors '%s' and '%s' both map to '%s' "
                                "(a quantized linear and its plain weight?)", r->t[i - 1].t.src_name,
                                r->t[i].t.src_name, r->t[i].t.name);
    if (conv)
        h->log(BT_LOG_INFO, "vptq: %llu of %llu bf16/f32 codebook and scale values do not "
               "convert exactly to f16 (bt's vq stores f16; the nearest f16 is used)",
               (unsigned long long)inexact, (unsigned long long)conv);
    return BT_OK;
}

/* ---- open ---------------------------------------------------------------------------------- */
static bt_status vq_open(void *ctx, const struct bt_host *host, const bt_optset *opts,
                         const char *path, bt_err *err) {
    struct vq_reader *r = ctx;
    memset(r, 0, sizeof(*r));
    r->host = host;
    const struct bt_plugin *sp = bt_st_embedded();
    r->si = sp->iface;
    if (!(r->sctx = calloc(1, sp->ctx_size)))
        return host->set_error(err, BT_E_NOMEM, "vptq: out of memory");
    bt_status st = r->si->open(r->sctx, host, NULL, path, err);
    if (st) {
        free(r->sctx);
        r->sctx = NULL;
        return st;
    }
    char *cfg_path = vq_config_path(path);
    struct json_object *root = cfg_path ? bt_hf_json_read(cfg_path, &st, err) : NULL;
    struct json_object *qc = vq_qconfig(root);
    if (!cfg_path) st = host->set_error(err, BT_E_NOMEM, "vptq: out of memory");
    else if (root && !qc)
        st = host->set_error(err, BT_E_FORMAT, "vptq: %s: not a VPTQ checkpoint (no "
                             "quantization_config with quant_method \"vptq\")", cfg_path);
    if (qc) st = vq_build(r, qc, cfg_path, err);
    json_object_put(root);
    free(cfg_path);
    if (st) {
        vq_close(r);
        return st;
    }
    host->log(BT_LOG_INFO, "vptq: %s: %u quantized linears read as vq, %u tensors in all", path,
              r->n_lay, r->n_t);
    return BT_OK;
}

/* ---- accessors ------------------------------------------------------------------------------ */
static uint32_t vq_tensor_count(void *ctx) { return ((struct vq_reader *)ctx)->n_t; }

static bt_status vq_tensor_get(void *ctx, uint32_t i, struct bt_tensor *out, bt_err *err) {
    struct vq_reader *r = ctx;
    if (i >= r->n_t)
        return r->host->set_error(err, BT_E_INVAL, "vptq: tensor index %u out of range (%u)", i,
                                  r->n_t);
    *out = r->t[i].t;
    return BT_OK;
}

static uint32_t vq_kv_count(void *ctx) {
    struct vq_reader *r = ctx;
    return r->si->kv_count(r->sctx);
}

static bt_status vq_kv_get(void *ctx, uint32_t i, struct bt_kv *out) {
    struct vq_reader *r = ctx;
    bt_status st = r->si->kv_get(r->sctx, i, out);
    if (!st && !strcmp(out->key, "general.source.format") && out->type == BT_KV_STRING) {
        out->v.s = "vptq";
        out->n = 4;
    }
    return st;
}

static void vq_release(void *ctx, uint32_t i) {
    struct vq_reader *r = ctx;
    if (i < r->n_t && r->t[i].inner != VPTQ_NONE && BT_HAS(r->si, release))
        r->si->release(r->sctx, r->t[i].inner);
}

static const struct bt_reader_i vq_iface = {
    .struct_size  = sizeof(struct bt_reader_i),
    .probe        = vq_probe,
    .open         = vq_open,
    .close        = vq_close,
    .tensor_count = vq_tensor_count,
    .tensor_get   = vq_tensor_get,
    .kv_count     = vq_kv_count,
    .kv_get       = vq_kv_get,
    .read_f32     = NULL,
    .release      = vq_release,
};

static const struct bt_plugin vq_plugin = {
    .abi_version = BT_ABI_VERSION,
    .struct_size = sizeof(struct bt_plugin),
    .name        = "vptq",
    .version     = "1.0.0",
    .kind        = BT_KIND_READER,
    .caps        = 0,
    .description = "VPTQ-community checkpoints (HF safetensors + quantization_config vptq) as bt vq",
    .options     = NULL,
    .iface       = &vq_iface,
    .ctx_size    = sizeof(struct vq_reader),
};

BT_PLUGIN_DEFINE(vq_plugin)
