/* safetensors.c - reader plugin "safetensors": Hugging Face checkpoints (one model.safetensors or
 * shards listed in model.safetensors.index.json), mmapped read-only, with HF -> GGUF tensor names
 * and llama.* / tokenizer metadata from config.json and tokenizer.json. */
#include "bt/bt_plugin.h"
#include "bt_kvlist.h"
#include "hf_config.h"
#include "llama_check.h"
#include "st_header.h"
#include "st_names.h"
#ifdef BT_HAVE_HF_TOKENIZER
#include "hf_tokenizer.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
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
    for (uint32_t i = 0; i < r->n_t; i++) free(r->t[i].name);
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
        /* Qwen2 keeps HF's rotate-half rows in GGUF too (llama.cpp runs arch qwen2 with NEOX
         * rope): its q/k rows are never permuted */
        for (uint32_t i = 0; st == BT_OK && cfg.qwen2 && i < r->n_t; i++)
            r->t[i].t.flags &= ~BT_TENSOR_ROPE_HALVES;
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
