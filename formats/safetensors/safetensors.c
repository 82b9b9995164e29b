/* safetensors.c - reader plugin "safetensors": Hugging Face checkpoints (one model.safetensors or
 * shards listed in model.safetensors.index.json), mmapped read-only, with HF -> GGUF tensor names
 * and llama.* / tokenizer metadata from config.json and tokenizer.json. */
#include "bt/bt_plugin.h"
#include "bt_kvlist.h"
#include "bt_types.h"
#include "hf_config.h"
#include "llama_check.h"
#include "st_bitnet.h"
#include "st_header.h"
#include "st_names.h"
#ifdef BT_HAVE_HF_TOKENIZER
#include "hf_tokenizer.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_INDEX_NAME  "model.safetensors.index.json"
#define ST_SINGLE_NAME "model.safetensors"
#define ST_NO_SHARD    UINT32_MAX

/* One mapped .safetensors file. */
struct st_shard {
    char               *file; /* file name inside the model folder (owned) */
    char               *path; /* full path used in messages (owned) */
    uint8_t            *map;  /* read-only mapping of the whole file */
    uint64_t            size; /* file size in bytes (mapping length) */
    struct bt_st_header hdr;  /* parsed, validated header */
};

/* One tensor the reader lists. */
struct st_tensor {
    struct bt_tensor t;     /* the view handed out (name/src_name point at owned strings) */
    char            *name;  /* canonical GGUF name (owned) */
    uint32_t         shard; /* index into shards, ST_NO_SHARD for generated tensors */
    int              gen;   /* 1: t.data is a buffer of this reader (BitNet TQ2_0), freed at close */
};

/* Reader instance state (ctx_size bytes, zeroed by the core). */
struct st_reader {
    const struct bt_host *host;       /* host services */
    struct st_shard      *shards;     /* n_shards mapped files (owned) */
    uint32_t              n_shards;   /* number of shards */
    struct st_tensor     *t;          /* n_t tensors in listing order (owned) */
    uint32_t              n_t;        /* number of tensors */
    struct bt_kvlist      kv;         /* metadata */
    float                *rope_freqs; /* generated rope_freqs.weight data (owned) or NULL */
    int                   bitnet;     /* BitNet b1.58: 1 bf16 masters, 2 packed W = T / ws,
                                       * 3 packed W = T * ws (0: not BitNet) */
    char                 *dir;        /* model folder (owned) */
    int                   whole;      /* opened as a folder or an index: the whole model */
    size_t                page;       /* page size for release() */
};

/* ---- small helpers ------------------------------------------------------------------------ */
static char *st_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* dir + "/" + name in a new string */
static char *st_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static int st_is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int st_has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static int st_file_in_dir(const char *dir, const char *name) {
    char *p = st_join(dir, name);
    int r = p && st_is_file(p);
    free(p);
    return r;
}

/* 1 if the folder's config.json has a "quantization_config" object (a quantized checkpoint:
 * this reader lists its raw tensors, a reader for that method should win "auto") */
static int st_quantized_dir(const char *dir) {
    char *p = st_join(dir, "config.json");
    if (!p || !st_is_file(p)) { free(p); return 0; }
    struct json_object *root = json_object_from_file(p), *q = NULL;
    free(p);
    int r = root && json_object_object_get_ex(root, "quantization_config", &q) &&
            json_object_is_type(q, json_type_object);
    json_object_put(root);
    return r;
}

static int st_probe(const char *path) {
    struct stat sb;
    if (!path || stat(path, &sb) != 0) return 0;
    if (S_ISDIR(sb.st_mode)) {
        if (!st_file_in_dir(path, ST_SINGLE_NAME) && !st_file_in_dir(path, ST_INDEX_NAME)) return 0;
        return st_quantized_dir(path) ? 50 : 100;
    }
    if (!S_ISREG(sb.st_mode)) return 0;
    return st_has_suffix(path, ".safetensors") || st_has_suffix(path, ".safetensors.index.json")
               ? 100 : 0;
}

/* ---- teardown -------------------------------------------------------------------------------- */
static void st_close(void *ctx) {
    struct st_reader *r = ctx;
    for (uint32_t i = 0; i < r->n_shards; i++) {
        struct st_shard *s = &r->shards[i];
        bt_st_header_free(&s->hdr);
        if (s->map) munmap(s->map, s->size);
        free(s->file);
        free(s->path);
    }
    free(r->shards);
    for (uint32_t i = 0; i < r->n_t; i++) {
        free(r->t[i].name);
        if (r->t[i].gen) free((void *)r->t[i].t.data);
    }
    free(r->t);
    bt_kvlist_free(&r->kv);
    free(r->rope_freqs);
    free(r->dir);
    memset(r, 0, sizeof(*r));
}

/* ---- shards ----------------------------------------------------------------------------------- */
/* add a shard by file name (dedup); *idx gets its index */
static bt_status st_shard_add(struct st_reader *r, const char *file, uint32_t *idx, bt_err *err) {
    for (uint32_t i = 0; i < r->n_shards; i++)
        if (strcmp(r->shards[i].file, file) == 0) { *idx = i; return BT_OK; }
    struct st_shard *ns = realloc(r->shards, (r->n_shards + 1) * sizeof(*ns));
    if (!ns) return r->host->set_error(err, BT_E_NOMEM, "safetensors: out of memory");
    r->shards = ns;
    struct st_shard *s = &ns[r->n_shards];
    memset(s, 0, sizeof(*s));
    s->file = st_strdup(file);
    s->path = st_join(r->dir, file);
    r->n_shards++; /* counted now so st_close frees the strings on any failure */
    if (!s->file || !s->path) return r->host->set_error(err, BT_E_NOMEM, "safetensors: out of memory");
    *idx = r->n_shards - 1;
    return BT_OK;
}

static bt_status st_shard_map(struct st_reader *r, struct st_shard *s, const char *listed_in,
                              bt_err *err) {
    const struct bt_host *h = r->host;
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (listed_in)
            return h->set_error(err, BT_E_IO, "%s: cannot open shard listed in %s: %s", s->path,
                                listed_in, strerror(errno));
        return h->set_error(err, BT_E_IO, "%s: cannot open: %s", s->path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return h->set_error(err, BT_E_IO, "%s: not a regular file", s->path);
    }
    s->size = (uint64_t)sb.st_size;
    if (s->size < 8) {
        close(fd);
        return h->set_error(err, BT_E_FORMAT, "%s: file is %llu bytes, too short for a "
                            "safetensors header", s->path, (unsigned long long)s->size);
    }
    void *m = mmap(NULL, (size_t)s->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) {
        s->size = 0;
        return h->set_error(err, BT_E_IO, "%s: mmap failed: %s", s->path, strerror(e));
    }
    s->map = m;
    /* the header parser (bt_types' bt_err_set) writes the host's err directly */
    return bt_st_header_parse(s->map, s->size, s->path, &s->hdr, err);
}

/* ---- tensor list -------------------------------------------------------------------------------- */
static bt_status st_tensor_add(struct st_reader *r, uint32_t shard, const struct bt_st_entry *e,
                               bt_err *err) {
    char name[512];
    uint32_t flags = 0;
    int m = bt_st_name_map(e->name, name, sizeof(name), &flags);
    if (m == BT_ST_NAME_SKIP) return BT_OK;
    if (m == BT_ST_NAME_TOOLONG)
        return r->host->set_error(err, BT_E_UNSUPPORTED, "%s: tensor name '%.80s...' is too long",
                                  r->shards[shard].path, e->name);
    struct st_tensor *x = &r->t[r->n_t];
    memset(x, 0, sizeof(*x));
    x->name = st_strdup(name);
    if (!x->name) return r->host->set_error(err, BT_E_NOMEM, "safetensors: out of memory");
    r->n_t++;
    const struct st_shard *s = &r->shards[shard];
    x->shard = shard;
    x->t.name = x->name;
    x->t.src_name = e->name;
    x->t.fmt.type = e->type;
    x->t.n_dims = e->n_dims;
    for (uint32_t d = 0; d < e->n_dims; d++) x->t.shape[d] = e->shape[d];
    x->t.data = s->map + s->hdr.data_off + e->begin;
    x->t.nbytes = e->end - e->begin;
    x->t.flags = flags;
    return BT_OK;
}

static bt_status st_tensors_alloc(struct st_reader *r, uint64_t n, bt_err *err) {
    r->t = calloc(n + 2, sizeof(*r->t)); /* +1 for rope_freqs */
    if (!r->t) return r->host->set_error(err, BT_E_NOMEM, "safetensors: out of memory");
    return BT_OK;
}

static const struct bt_st_entry *st_find_entry(const struct st_shard *s, const char *name) {
    for (uint32_t i = 0; i < s->hdr.n; i++)
        if (strcmp(s->hdr.t[i].name, name) == 0) return &s->hdr.t[i];
    return NULL;
}

/* single file: every entry of shard 0 */
static bt_status st_open_single(struct st_reader *r, const char *file, bt_err *err) {
    uint32_t idx;
    bt_status st = st_shard_add(r, file, &idx, err);
    if (st == BT_OK) st = st_shard_map(r, &r->shards[idx], NULL, err);
    if (st == BT_OK) st = st_tensors_alloc(r, r->shards[idx].hdr.n, err);
    for (uint32_t i = 0; st == BT_OK && i < r->shards[idx].hdr.n; i++)
        st = st_tensor_add(r, idx, &r->shards[idx].hdr.t[i], err);
    return st;
}

/* index: weight_map {tensor: shard file}; every listed tensor must be in its shard */
static bt_status st_open_index(struct st_reader *r, const char *index_path, bt_err *err) {
    const struct bt_host *h = r->host;
    bt_status st = BT_OK;
    struct json_object *root = bt_hf_json_read(index_path, &st, err), *wm = NULL;
    if (!root) return st;
    if (!json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "weight_map", &wm) ||
        !json_object_is_type(wm, json_type_object) || json_object_object_length(wm) == 0)
        st = h->set_error(err, BT_E_FORMAT, "%s: missing or empty \"weight_map\" object", index_path);
    if (st == BT_OK) st = st_tensors_alloc(r, (uint64_t)json_object_object_length(wm), err);
    /* pass 1: shards, mapped in order of first mention */
    if (st == BT_OK) {
        json_object_object_foreach(wm, k, v) {
            const char *f = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
            uint32_t idx;
            if (!*f || strchr(f, '/') || strcmp(f, "..") == 0 || strcmp(f, ".") == 0) {
                st = h->set_error(err, BT_E_FORMAT, "%s: weight_map entry for tensor '%s' must be "
                                  "a file name in the model folder", index_path, k);
                break;
            }
            st = st_shard_add(r, f, &idx, err);
            if (st == BT_OK && !r->shards[idx].map) st = st_shard_map(r, &r->shards[idx], ST_INDEX_NAME, err);
            if (st != BT_OK) break;
        }
    }
    /* pass 2: tensors */
    if (st == BT_OK) {
        json_object_object_foreach(wm, k, v) {
            uint32_t idx;
            st = st_shard_add(r, json_object_get_string(v), &idx, err);
            const struct bt_st_entry *e = st == BT_OK ? st_find_entry(&r->shards[idx], k) : NULL;
            if (st == BT_OK && !e)
                st = h->set_error(err, BT_E_FORMAT, "%s: tensor '%s' is listed in %s but missing "
                                  "from this shard", r->shards[idx].path, k, ST_INDEX_NAME);
            if (st == BT_OK) st = st_tensor_add(r, idx, e, err);
            if (st != BT_OK) break;
        }
    }
    /* tensors a shard holds but the index does not list are ignored, loudly */
    for (uint32_t i = 0; st == BT_OK && i < r->n_shards; i++)
        for (uint32_t j = 0; j < r->shards[i].hdr.n; j++) {
            struct json_object *v;
            const char *nm = r->shards[i].hdr.t[j].name;
            if (!json_object_object_get_ex(wm, nm, &v) ||
                strcmp(json_object_get_string(v), r->shards[i].file) != 0)
                h->log(BT_LOG_WARN, "%s: tensor '%s' is not listed for this shard in %s; ignored",
                       r->shards[i].path, nm, ST_INDEX_NAME);
        }
    json_object_put(root);
    return st;
}

/* ---- order, duplicates, generated tensors ------------------------------------------------------- */
static int st_cmp_tensor(const void *a, const void *b) {
    return bt_st_name_cmp(((const struct st_tensor *)a)->name, ((const struct st_tensor *)b)->name);
}

static bt_status st_sort_check(struct st_reader *r, bt_err *err) {
    qsort(r->t, r->n_t, sizeof(*r->t), st_cmp_tensor);
    for (uint32_t i = 1; i < r->n_t; i++)
        if (strcmp(r->t[i - 1].name, r->t[i].name) == 0)
            return r->host->set_error(err, BT_E_FORMAT, "%s: tensors '%s' and '%s' both map to '%s'",
                                      r->dir, r->t[i - 1].t.src_name, r->t[i].t.src_name,
                                      r->t[i].name);
    return BT_OK;
}

static bt_status st_add_rope_freqs(struct st_reader *r, const struct bt_hf_config *cfg, bt_err *err) {
    uint32_t n = cfg->head_dim / 2;
    r->rope_freqs = malloc((n ? n : 1) * sizeof(float));
    struct st_tensor *x = &r->t[r->n_t];
    memset(x, 0, sizeof(*x));
    x->name = st_strdup("rope_freqs.weight");
    if (!r->rope_freqs || !x->name) {
        free(x->name);
        x->name = NULL;
        return r->host->set_error(err, BT_E_NOMEM, "safetensors: out of memory");
    }
    r->n_t++;
    bt_hf_rope_llama3_factors(cfg, r->rope_freqs);
    x->shard = ST_NO_SHARD;
    x->t.name = x->name;
    x->t.src_name = "(generated)";
    x->t.fmt.type = BT_TYPE_F32;
    x->t.n_dims = 1;
    x->t.shape[0] = n;
    x->t.data = r->rope_freqs;
    x->t.nbytes = (uint64_t)n * sizeof(float);
    return BT_OK;
}

/* ---- metadata ------------------------------------------------------------------------------------ */
static bt_status st_metadata(struct st_reader *r, bt_err *err) {
    const struct bt_host *h = r->host;
    char *real = realpath(r->dir, NULL);
    const char *base = real ? real : r->dir;
    const char *slash = strrchr(base, '/');
    const char *name = slash && slash[1] ? slash + 1 : base;
    bt_status st = bt_kvlist_str(&r->kv, "general.name", name);
    free(real);
    if (st == BT_OK) st = bt_kvlist_str(&r->kv, "general.source.format", "safetensors");
    if (st == BT_OK) st = bt_kvlist_str(&r->kv, "general.architecture", "llama");
    if (st != BT_OK) return h->set_error(err, st, "safetensors: out of memory");
    char *cfg_path = st_join(r->dir, "config.json");
    char *tok_path = st_join(r->dir, "tokenizer.json");
    if (!cfg_path || !tok_path) st = h->set_error(err, BT_E_NOMEM, "safetensors: out of memory");
    if (st == BT_OK && st_is_file(cfg_path)) {
        struct bt_hf_config cfg;
        st = bt_hf_config_load(cfg_path, &cfg, err);
        if (st == BT_OK && bt_hf_config_to_kvs(&cfg, &r->kv) != BT_OK)
            st = h->set_error(err, BT_E_NOMEM, "safetensors: out of memory");
        if (st == BT_OK && cfg.rope_type == BT_HF_ROPE_LLAMA3) st = st_add_rope_freqs(r, &cfg, err);
        /* Qwen2 and BitNet keep HF's rotate-half rows in GGUF too (llama.cpp runs both with
         * NEOX rope): their q/k rows are never permuted */
        for (uint32_t i = 0; st == BT_OK && (cfg.qwen2 || cfg.bitnet) && i < r->n_t; i++)
            r->t[i].t.flags &= ~BT_TENSOR_ROPE_HALVES;
        if (cfg.bitnet) r->bitnet = cfg.bitnet_packed ? 2 + cfg.bitnet_mul : 1;
    } else if (st == BT_OK) {
        h->log(BT_LOG_WARN, "%s: not found; no llama.* metadata", cfg_path);
    }
    if (st == BT_OK && st_is_file(tok_path)) {
#ifdef BT_HAVE_HF_TOKENIZER
        /* errors into err (always with a message), the first warning to the host's log */
        st = bt_hf_tokenizer_kvs_log(tok_path, &r->kv, err, h->log);
#else
        h->log(BT_LOG_WARN, "%s: tokenizer support not built in; no tokenizer metadata", tok_path);
#endif
    }
    free(cfg_path);
    free(tok_path);
    return st;
}

/* ---- BitNet b1.58: ternary linears as TQ2_0 (st_bitnet.c) ------------------------------------- */
static int st_is_bitnet_linear(const char *name) {
    static const char *const lin[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate",
                                      "ffn_up", "ffn_down"};
    const char *p = strncmp(name, "blk.", 4) == 0 ? strchr(name + 4, '.') : NULL;
    if (!p) return 0;
    for (size_t k = 0; k < sizeof lin / sizeof lin[0]; k++) {
        size_t n = strlen(lin[k]);
        if (strncmp(p + 1, lin[k], n) == 0 && strcmp(p + 1 + n, ".weight") == 0) return 1;
    }
    return 0;
}

/* the scale of packed weight x: the one value of the tensor named "<x's HF name>_scale" */
static bt_status st_bitnet_scale(struct st_reader *r, const struct st_tensor *x, float *out, bt_err *err) {
    char want[600];
    snprintf(want, sizeof want, "%s_scale", x->t.src_name);
    for (uint32_t i = 0; i < r->n_t; i++) {
        const struct bt_tensor *t = &r->t[i].t;
        if (strcmp(t->src_name, want) != 0) continue;
        if (t->n_dims > 1 || (t->n_dims == 1 && t->shape[0] != 1) || (t->fmt.type != BT_TYPE_BF16 && t->fmt.type != BT_TYPE_F16 &&
                                        t->fmt.type != BT_TYPE_F32) ||
            bt_to_f32(&t->fmt, t->data, out, 1) != BT_OK || !(*out > 0) || !isfinite(*out))
            return r->host->set_error(err, BT_E_FORMAT, "%s: BitNet scale '%s' must be one positive "
                                      "F32/F16/BF16 value", r->dir, want);
        return BT_OK;
    }
    return r->host->set_error(err, BT_E_FORMAT, "%s: packed BitNet weight '%s' has no '%s'", r->dir,
                              x->t.src_name, want);
}

static bt_status st_bitnet_one(struct st_reader *r, struct st_tensor *x, bt_err *err) {
    const struct bt_host *h = r->host;
    int packed = r->bitnet >= 2;
    int64_t rows = x->t.shape[0] * (packed ? 4 : 1), cols = x->t.shape[1];
    if (x->t.n_dims != 2 || cols % 256 || rows <= 0)
        return h->set_error(err, BT_E_UNSUPPORTED, "%s: BitNet weight '%s': %u-D, %lld columns (TQ2_0 "
                            "needs 2-D rows of a multiple of 256)", r->dir, x->t.src_name,
                            x->t.n_dims, (long long)cols);
    if (packed && x->t.fmt.type != BT_TYPE_U8)
        return h->set_error(err, BT_E_FORMAT, "%s: BitNet weight '%s' is %s, packed checkpoints "
                            "(quantization_config) hold U8", r->dir, x->t.src_name,
                            bt_type_name(x->t.fmt.type));
    float scale = 0;
    bt_status st = packed ? st_bitnet_scale(r, x, &scale, err) : BT_OK;
    if (st) return st;
    uint64_t nbytes = (uint64_t)rows * (uint64_t)(cols / 256) * 66u;
    uint8_t *dst = malloc(nbytes);
    float *w = packed ? NULL : malloc((size_t)(rows * cols) * sizeof(float));
    if (!dst || (!packed && !w)) {
        free(dst);
        free(w);
        return h->set_error(err, BT_E_NOMEM, "%s: out of memory for '%s'", r->dir, x->t.src_name);
    }
    if (packed) {
        if (r->bitnet == 2) scale = 1.0f / scale; /* bitlinear: y = T x / weight_scale */
        if (bt_st_bitnet_unpack(x->t.data, rows, cols, scale, dst) != 0)
            st = h->set_error(err, BT_E_FORMAT, "%s: packed BitNet weight '%s' holds the code 3, "
                              "which is no trit", r->dir, x->t.src_name);
    } else if ((st = bt_to_f32(&x->t.fmt, x->t.data, w, rows * cols)) != BT_OK) {
        st = h->set_error(err, BT_E_FORMAT, "%s: BitNet weight '%s' (%s) cannot be read as floats",
                          r->dir, x->t.src_name, bt_type_name(x->t.fmt.type));
    } else {
        scale = bt_st_bitnet_ternarize(w, rows, cols, dst);
    }
    free(w);
    if (!st) { /* the exact f32 scale for the runner (the blocks hold it rounded to fp16) */
        char key[300];
        snprintf(key, sizeof key, "bt.weight_scale.%s", x->name);
        if (bt_kvlist_f32(&r->kv, key, scale) != BT_OK)
            st = h->set_error(err, BT_E_NOMEM, "%s: out of memory", r->dir);
    }
    if (st) { free(dst); return st; }
    x->t.fmt = bt_fmt(BT_TYPE_TQ2_0);
    x->t.shape[0] = rows;
    x->t.data = dst;
    x->t.nbytes = nbytes;
    x->shard = ST_NO_SHARD;
    x->gen = 1;
    return BT_OK;
}

/* every ternary linear becomes a TQ2_0 tensor; the weight_scale tensors are dropped */
static bt_status st_bitnet_weights(struct st_reader *r, bt_err *err) {
    if (!r->bitnet) return BT_OK;
    bt_status st = BT_OK;
    for (uint32_t i = 0; i < r->n_t && !st; i++)
        if (st_is_bitnet_linear(r->t[i].name)) st = st_bitnet_one(r, &r->t[i], err);
    uint32_t k = 0;
    for (uint32_t i = 0; i < r->n_t; i++) {
        size_t n = strlen(r->t[i].t.src_name);
        if (st == BT_OK && n > 13 && strcmp(r->t[i].t.src_name + n - 13, ".weight_scale") == 0) {
            free(r->t[i].name);
            continue;
        }
        r->t[k++] = r->t[i];
    }
    r->n_t = k;
    return st;
}

/* config.json against the tensors (llama_check.c); the layer count only when the whole model
 * was opened (a folder or an index), not a single shard of it */
static bt_status st_check_config(struct st_reader *r, bt_err *err) {
    struct bt_llama_t *v = malloc((r->n_t ? r->n_t : 1) * sizeof *v);
    char *cfg = st_join(r->dir, "config.json");
    bt_status st = BT_OK;
    if (!v || !cfg) {
        st = r->host->set_error(err, BT_E_NOMEM, "safetensors: out of memory");
    } else {
        for (uint32_t i = 0; i < r->n_t; i++)
            v[i] = (struct bt_llama_t){r->t[i].name, r->t[i].t.src_name, r->t[i].t.n_dims, r->t[i].t.shape};
        st = bt_llama_check(cfg, r->kv.kv, r->kv.n, v, r->n_t,
                            BT_LLAMA_HF | (r->whole ? BT_LLAMA_WHOLE : 0), err);
    }
    free(v);
    free(cfg);
    return st;
}

/* ---- open ---------------------------------------------------------------------------------------- */
static bt_status st_open_path(struct st_reader *r, const char *path, bt_err *err) {
    const struct bt_host *h = r->host;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return h->set_error(err, BT_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        r->dir = st_strdup(path);
        r->whole = 1;
        if (!r->dir) return h->set_error(err, BT_E_NOMEM, "safetensors: out of memory");
        if (st_file_in_dir(path, ST_INDEX_NAME)) {
            char *ip = st_join(path, ST_INDEX_NAME);
            bt_status st = ip ? st_open_index(r, ip, err)
                              : h->set_error(err, BT_E_NOMEM, "safetensors: out of memory");
            free(ip);
            return st;
        }
        if (st_file_in_dir(path, ST_SINGLE_NAME)) return st_open_single(r, ST_SINGLE_NAME, err);
        return h->set_error(err, BT_E_IO, "%s: no %s or %s in this folder", path, ST_SINGLE_NAME,
                            ST_INDEX_NAME);
    }
    const char *slash = strrchr(path, '/');
    r->dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : st_strdup(".");
    if (!r->dir) return h->set_error(err, BT_E_NOMEM, "safetensors: out of memory");
    if (st_has_suffix(path, ".index.json")) {
        r->whole = 1;
        return st_open_index(r, path, err);
    }
    return st_open_single(r, slash ? slash + 1 : path, err);
}

static bt_status st_open(void *ctx, const struct bt_host *host, const bt_optset *opts,
                         const char *path, bt_err *err) {
    struct st_reader *r = ctx;
    memset(r, 0, sizeof(*r));
    r->host = host;
    long pg = sysconf(_SC_PAGESIZE);
    r->page = pg > 0 ? (size_t)pg : 4096;
    bt_status st = st_open_path(r, path, err);
    if (st == BT_OK) st = st_metadata(r, err);
    if (st == BT_OK) st = st_bitnet_weights(r, err);
    if (st == BT_OK) st = st_sort_check(r, err);
    if (st == BT_OK) st = st_check_config(r, err);
    if (st != BT_OK) {
        st_close(r);
        return st;
    }
    host->log(BT_LOG_INFO, "safetensors: %s: %u tensors in %u file(s), %u metadata keys", path,
              r->n_t, r->n_shards, r->kv.n);
    return BT_OK;
}

/* ---- accessors ------------------------------------------------------------------------------------ */
static uint32_t st_tensor_count(void *ctx) { return ((struct st_reader *)ctx)->n_t; }

static bt_status st_tensor_get(void *ctx, uint32_t i, struct bt_tensor *out, bt_err *err) {
    struct st_reader *r = ctx;
    if (i >= r->n_t)
        return r->host->set_error(err, BT_E_INVAL, "safetensors: tensor index %u out of range (%u)",
                                  i, r->n_t);
    *out = r->t[i].t;
    return BT_OK;
}

static uint32_t st_kv_count(void *ctx) { return ((struct st_reader *)ctx)->kv.n; }

static bt_status st_kv_get(void *ctx, uint32_t i, struct bt_kv *out) {
    struct st_reader *r = ctx;
    if (i >= r->kv.n) return BT_E_INVAL;
    *out = r->kv.kv[i];
    return BT_OK;
}

/* drop the pages of tensor i (they are re-read from the file if touched again) */
static void st_release(void *ctx, uint32_t i) {
    struct st_reader *r = ctx;
    if (i >= r->n_t || r->t[i].shard == ST_NO_SHARD || r->t[i].t.nbytes == 0) return;
    const struct st_shard *s = &r->shards[r->t[i].shard];
    uintptr_t base = (uintptr_t)s->map;
    uintptr_t b = (uintptr_t)r->t[i].t.data, e = b + r->t[i].t.nbytes;
    b = base + ((b - base) / r->page) * r->page;
    e = base + (e - base + r->page - 1) / r->page * r->page;
    if (e > base + s->size) e = base + s->size; /* the last page of the mapping is partial */
    madvise((void *)b, e - b, MADV_DONTNEED);
}

static const struct bt_reader_i st_iface = {
    .struct_size  = sizeof(struct bt_reader_i),
    .probe        = st_probe,
    .open         = st_open,
    .close        = st_close,
    .tensor_count = st_tensor_count,
    .tensor_get   = st_tensor_get,
    .kv_count     = st_kv_count,
    .kv_get       = st_kv_get,
    .read_f32     = NULL,
    .release      = st_release,
};

static const struct bt_plugin st_plugin = {
    .abi_version = BT_ABI_VERSION,
    .struct_size = sizeof(struct bt_plugin),
    .name        = "safetensors",
    .version     = "1.0.0",
    .kind        = BT_KIND_READER,
    .caps        = 0,
    .description = "Hugging Face safetensors (single file or sharded index), F32/F16/BF16, mmap",
    .options     = NULL,
    .iface       = &st_iface,
    .ctx_size    = sizeof(struct st_reader),
};

#ifdef BT_ST_EMBED
/* built into another reader (formats/vptq): its descriptor, by a hidden symbol */
const struct bt_plugin *bt_st_embedded(void) { return &st_plugin; }
#else
BT_PLUGIN_DEFINE(st_plugin)
#endif
