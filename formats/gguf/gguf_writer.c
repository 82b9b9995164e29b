/* gguf_writer.c - the "gguf" writer plugin: streams tensors into an anonymous spill file in the
 * target's folder, then writes a GGUF v3 file (header, KVs, tensor infos, padded blobs) to an
 * anonymous file and links it into place (gguf_tmpfile.c: nothing outlives a crash). Q/K rows
 * flagged ROPE_HALVES are permuted to GGUF order; with compress = zstd each tensor blob is one
 * zstd frame (I8 tensor + bt.zstd.<name> key). How a format is stored (descriptors, extra parts, format keys): gguf_writer_fmt.c. */
#define _GNU_SOURCE
#include "gguf_writer.h"
#include "bt_types.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

/* ---- helpers ------------------------------------------------------------------------------ */
static char *dup_str(const struct bt_host *h, const char *s) {
    size_t n = strlen(s);
    char *d = h->alloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}


/* integer value(s) of a KV (scalar int or array of ints) as u64; 0 entries if not integral */
static bt_status kv_ints(const struct bt_host *h, const struct bt_kv *kv, uint64_t **out,
                         uint64_t *n) {
    uint32_t t = kv->type == BT_KV_ARRAY ? kv->arr_type : kv->type;
    size_t es = gguf_kv_scalar_size(t);
    *n = 0;
    if (!es || t == BT_KV_F32 || t == BT_KV_F64 || t == BT_KV_BOOL) return BT_OK;
    uint64_t cnt = kv->type == BT_KV_ARRAY ? kv->n : 1;
    if (!cnt) return BT_OK;
    *out = h->alloc(cnt * sizeof(uint64_t));
    if (!*out) return BT_E_NOMEM;
    for (uint64_t i = 0; i < cnt; i++) {
        if (kv->type != BT_KV_ARRAY) {
            (*out)[i] = (t == BT_KV_I8 || t == BT_KV_I16 || t == BT_KV_I32 || t == BT_KV_I64)
                            ? (uint64_t)kv->v.i : kv->v.u;
            continue;
        }
        const uint8_t *p = (const uint8_t *)kv->v.arr + i * es;
        uint64_t v = 0;
        for (size_t k = 0; k < es; k++) v |= (uint64_t)p[k] << (8 * k);
        int neg = t != BT_KV_U8 && t != BT_KV_U16 && t != BT_KV_U32 && t != BT_KV_U64 &&
                  (p[es - 1] & 0x80);
        (*out)[i] = neg ? 0 : v; /* negative head counts are nonsense: 0 fails later */
    }
    *n = cnt;
    return BT_OK;
}

/* ---- open: validate and serialize the KVs ------------------------------------------------------ */
static bt_status check_kv(struct gw_ctx *c, const struct bt_kv *kv, bt_err *err) {
    const struct bt_host *h = c->host;
    size_t klen = kv->key ? strlen(kv->key) : 0;
    if (!gguf_key_ok(kv->key, klen))
        return h->set_error(err, BT_E_INVAL, "gguf: %s: invalid metadata key '%s'", c->path,
                            kv->key ? kv->key : "(null)");
    if (kv->type == BT_KV_STRING) {
        if (kv->n > GGUF_MAX_STRING || (kv->n && !kv->v.s))
            return h->set_error(err, BT_E_INVAL, "gguf: %s: key '%s': bad string", c->path, kv->key);
    } else if (kv->type == BT_KV_ARRAY) {
        if (kv->arr_type == BT_KV_ARRAY)
            return h->set_error(err, BT_E_UNSUPPORTED, "gguf: %s: key '%s': nested arrays are not "
                                "supported", c->path, kv->key);
        if ((kv->arr_type != BT_KV_STRING && !gguf_kv_scalar_size(kv->arr_type)) ||
            kv->n > GGUF_MAX_ARRAY || (kv->n && !kv->v.arr))
            return h->set_error(err, BT_E_INVAL, "gguf: %s: key '%s': bad array (type %u, %llu "
                                "elements)", c->path, kv->key, kv->arr_type,
                                (unsigned long long)kv->n);
        if (kv->arr_type == BT_KV_STRING)
            for (uint64_t i = 0; i < kv->n; i++)
                if (!((const char *const *)kv->v.arr)[i])
                    return h->set_error(err, BT_E_INVAL, "gguf: %s: key '%s': string %llu is NULL",
                                        c->path, kv->key, (unsigned long long)i);
    } else if (!gguf_kv_scalar_size(kv->type)) {
        return h->set_error(err, BT_E_INVAL, "gguf: %s: key '%s': unknown value type %u", c->path,
                            kv->key, kv->type);
    }
    return BT_OK;
}

static void put_kv_value(struct gguf_sink *s, const struct bt_host *h, const struct bt_kv *kv) {
    gguf_put_u32(s, h, kv->type);
    if (kv->type == BT_KV_STRING) {
        gguf_put_str(s, h, kv->v.s, kv->n);
    } else if (kv->type == BT_KV_ARRAY) {
        gguf_put_u32(s, h, kv->arr_type);
        gguf_put_u64(s, h, kv->n);
        if (kv->arr_type == BT_KV_STRING) {
            const char *const *tab = kv->v.arr;
            for (uint64_t i = 0; i < kv->n; i++) gguf_put_str(s, h, tab[i], strlen(tab[i]));
        } else if (kv->arr_type == BT_KV_BOOL) {
            const uint8_t *b = kv->v.arr;
            for (uint64_t i = 0; i < kv->n; i++) gguf_put_scalar(s, h, BT_KV_BOOL, b[i], 0, 0);
        } else {
            gguf_sink_put(s, h, kv->v.arr, (size_t)(kv->n * gguf_kv_scalar_size(kv->arr_type)));
        }
    } else {
        gguf_put_scalar(s, h, kv->type, kv->v.u, kv->v.i, kv->v.f);
    }
}

static bt_status take_kvs(struct gw_ctx *c, const struct bt_kv *kvs, uint32_t n_kv, bt_err *err) {
    const struct bt_host *h = c->host;
    struct gguf_nameset keys;
    bt_status st = gguf_nameset_init(&keys, h, n_kv);
    if (st) return h->set_error(err, st, "gguf: %s: out of memory", c->path);
    const char *arch = "llama";
    for (uint32_t i = 0; i < n_kv; i++)
        if (kvs[i].key && kvs[i].type == BT_KV_STRING && kvs[i].v.s &&
            strcmp(kvs[i].key, "general.architecture") == 0) arch = kvs[i].v.s;
    char hk[256], hkv[256];
    snprintf(hk, sizeof(hk), "%s.attention.head_count", arch);
    snprintf(hkv, sizeof(hkv), "%s.attention.head_count_kv", arch);
    for (uint32_t i = 0; i < n_kv && !st; i++) {
        const struct bt_kv *kv = &kvs[i];
        int dup = 0;
        if ((st = check_kv(c, kv, err))) break;
        if ((st = gguf_nameset_add(&keys, h, kv->key, strlen(kv->key), i, &dup))) {
            st = h->set_error(err, st, "gguf: %s: out of memory", c->path);
            break;
        }
        if (dup) { st = h->set_error(err, BT_E_INVAL, "gguf: %s: duplicate key '%s'", c->path, kv->key); break; }
        /* format keys (MTQ geometry, bt.fmt*) are regenerated at finish from the tensors */
        if (strncmp(kv->key, GGUF_MTQ_PREFIX, strlen(GGUF_MTQ_PREFIX)) == 0 ||
            strncmp(kv->key, GGUF_FMT_PREFIX, strlen(GGUF_FMT_PREFIX)) == 0 ||
            strncmp(kv->key, GGUF_FMT_ARGS_PREFIX, strlen(GGUF_FMT_ARGS_PREFIX)) == 0 ||
            strncmp(kv->key, GGUF_HALVES_PREFIX, strlen(GGUF_HALVES_PREFIX)) == 0) continue;
        /* compression keys describe the blobs of the file read, not ours: regenerated too */
        if (strncmp(kv->key, GGUF_ZSTD_PREFIX, strlen(GGUF_ZSTD_PREFIX)) == 0 ||
            strcmp(kv->key, GGUF_COMPRESSION_KEY) == 0) continue;
        if (strcmp(kv->key, "general.alignment") == 0) { /* the option wins, same position */
            gguf_put_key_u32(&c->kvs, h, kv->key, c->align);
            c->has_align = 1;
            c->n_kv++;
            continue;
        }
        if (strcmp(kv->key, "general.file_type") == 0) continue; /* says what was read: regenerated */
        if (strcmp(kv->key, "general.quantization_version") == 0) c->has_qver = 1;
        if (strcmp(kv->key, hk) == 0) st = kv_ints(h, kv, &c->heads, &c->n_heads);
        if (!st && strcmp(kv->key, hkv) == 0) st = kv_ints(h, kv, &c->heads_kv, &c->n_heads_kv);
        if (st) { st = h->set_error(err, st, "gguf: %s: out of memory", c->path); break; }
        gguf_put_str(&c->kvs, h, kv->key, strlen(kv->key));
        put_kv_value(&c->kvs, h, kv);
        c->n_kv++;
    }
    if (!st && c->kvs.err) st = h->set_error(err, BT_E_NOMEM, "gguf: %s: out of memory", c->path);
    gguf_nameset_free(&keys, h);
    return st;
}

static void gw_close(void *ctx);

static bt_status gw_open(void *ctx, const struct bt_host *host, const bt_optset *opts,
                         const char *path, const struct bt_kv *kvs, uint32_t n_kv,
                         uint32_t n_tensors, bt_err *err) {
    struct gw_ctx *c = ctx;
    memset(c, 0, sizeof(*c));
    c->host = host;
    c->data.fd = c->kvs.fd = -1;
    c->expect = n_tensors;
    int64_t a = host->opt_int ? host->opt_int(opts, "alignment") : 0;
    if (a == 0) a = GGUF_DEFAULT_ALIGNMENT;
    if (a < 8 || a > 4096 || (a & (a - 1)))
        return host->set_error(err, BT_E_INVAL, "gguf: %s: alignment %lld must be a power of two "
                               "in 8..4096", path, (long long)a);
    c->align = (uint32_t)a;
    const char *comp = host->opt_str ? host->opt_str(opts, "compress") : NULL;
    int64_t lvl = host->opt_int ? host->opt_int(opts, "compress_level") : 0;
    int zstd = comp && strcmp(comp, "zstd") == 0;
    if (comp && *comp && !zstd && strcmp(comp, "none") != 0)
        return host->set_error(err, BT_E_INVAL, "gguf: %s: compress = '%s': expected none or zstd",
                               path, comp);
    if (lvl == 0) lvl = GW_ZSTD_LEVEL_DEF;
    if (lvl < 1 || lvl > ZSTD_maxCLevel())
        return host->set_error(err, BT_E_INVAL, "gguf: %s: compress_level %lld must be in 1..%d",
                               path, (long long)lvl, ZSTD_maxCLevel());
    c->zlevel = (int)lvl;
    bt_status st = BT_E_NOMEM;
    if (!(c->path = dup_str(host, path)) ||
        gguf_nameset_init(&c->names, host, n_tensors) != BT_OK) {
        host->set_error(err, st, "gguf: %s: out of memory", path);
        goto fail;
    }
    if ((st = take_kvs(c, kvs, n_kv, err))) goto fail;
    gw_sweep(path); /* leftovers of writers that died here */
    int named;
    c->data.fd = gw_anon_open(path, &named);
    if (c->data.fd < 0) {
        st = host->set_error(err, BT_E_IO, "gguf: %s: cannot write in the output folder (%s): "
                             "choose [output] path in a folder you can write to", path, strerror(errno));
        goto fail;
    }
    c->data.cap = GW_BUF_SIZE;
    if (!(c->data.p = host->alloc(c->data.cap))) {
        st = host->set_error(err, BT_E_NOMEM, "gguf: %s: out of memory", path);
        goto fail;
    }
    if (zstd) { /* one frame per tensor, with content size and checksum */
        c->zout_cap = ZSTD_CStreamOutSize();
        if (!(c->zc = ZSTD_createCCtx()) || !(c->zout = host->alloc(c->zout_cap)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel, c->zlevel)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_checksumFlag, 1)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_contentSizeFlag, 1))) {
            st = host->set_error(err, BT_E_NOMEM, "gguf: %s: cannot set up the zstd compressor", path);
            goto fail;
        }
    }
    return BT_OK;
fail:
    gw_close(c); /* a failed open leaves nothing allocated */
    return st;
}

/* ---- add ------------------------------------------------------------------------------------ */
/* n_head for a ROPE_HALVES tensor name ("blk.N.attn_q.*" / "blk.N.attn_k.*"); 0 if unknown */
static uint64_t rope_heads(const struct gw_ctx *c, const char *name, const char **why) {
    unsigned long layer;
    int pos = 0;
    char kind[8] = {0};
    if (sscanf(name, "blk.%lu.attn_%1[qk].%n", &layer, kind, &pos) != 2 || pos == 0) {
        *why = "is not named blk.N.attn_q or blk.N.attn_k, so its heads are unknown";
        return 0;
    }
    const uint64_t *v = kind[0] == 'q' || !c->n_heads_kv ? c->heads : c->heads_kv;
    uint64_t n = kind[0] == 'q' || !c->n_heads_kv ? c->n_heads : c->n_heads_kv;
    *why = "cannot be reordered for llama.cpp: the model does not say how many attention heads "
           "it has (config.json num_attention_heads / num_key_value_heads, GGUF "
           "<arch>.attention.head_count / head_count_kv); add them to the input model";
    if (!n) return 0;
    if (n > 1 && layer >= n) { *why = "belongs to a layer beyond the model's per-layer head counts"; return 0; }
    return v[n > 1 ? layer : 0];
}

/* ---- zstd ----------------------------------------------------------------------------------- */
/* the bytes of the current tensor: straight into the spill sink, or through the compressor */
static void emit(struct gw_ctx *c, const void *p, size_t n) {
    if (!c->zon) { gguf_sink_put(&c->data, c->host, p, n); return; }
    ZSTD_inBuffer in = {p, n, 0};
    while (!c->zerr && !c->data.err && in.pos < in.size) {
        ZSTD_outBuffer out = {c->zout, c->zout_cap, 0};
        size_t r = ZSTD_compressStream2(c->zc, &out, &in, ZSTD_e_continue);
        if (ZSTD_isError(r)) c->zerr = r;
        else gguf_sink_put(&c->data, c->host, c->zout, out.pos);
    }
}

/* start a frame of n bytes for the next tensor */
static void zstd_begin(struct gw_ctx *c, uint64_t n) {
    c->zerr = 0;
    size_t r = ZSTD_CCtx_reset(c->zc, ZSTD_reset_session_only);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setPledgedSrcSize(c->zc, n);
    if (ZSTD_isError(r)) c->zerr = r;
    c->zon = 1;
}

/* close the frame (flush everything into the spill sink) */
static void zstd_end(struct gw_ctx *c) {
    ZSTD_inBuffer in = {NULL, 0, 0};
    size_t left = 1;
    while (left && !c->zerr && !c->data.err) {
        ZSTD_outBuffer out = {c->zout, c->zout_cap, 0};
        left = ZSTD_compressStream2(c->zc, &out, &in, ZSTD_e_end);
        if (ZSTD_isError(left)) c->zerr = left;
        else gguf_sink_put(&c->data, c->host, c->zout, out.pos);
    }
    c->zon = 0;
}

/* drop everything the spill file got after offset (a frame that did not pay off) */
static void spill_rewind(struct gw_ctx *c, uint64_t offset) {
    if (gguf_sink_flush(&c->data)) return;
    if (ftruncate(c->data.fd, (off_t)offset) != 0 || lseek(c->data.fd, (off_t)offset, SEEK_SET) < 0)
        c->data.err = errno;
    else
        c->data.total = offset;
}

/* a frame is kept if it saves at least 1/32 of the raw bytes (else the blob stays mmap-able) */
static int zstd_pays(uint64_t zbytes, uint64_t raw) { return zbytes <= raw - raw / 32; }

/* append t's bytes to the spill file (through emit), permuting rows if flagged */
static bt_status spill_data(struct gw_ctx *c, const struct bt_tensor *t, bt_err *err) {
    const struct bt_host *h = c->host;
    const uint8_t *src = t->data;
    if (!(t->flags & BT_TENSOR_ROPE_HALVES) || t->n_parts) { /* parts: kept, bt.rope_halves key */
        emit(c, src, (size_t)t->nbytes);
        return BT_OK;
    }
    const char *why = NULL;
    uint64_t nh = rope_heads(c, t->name, &why);
    uint64_t rows = 1;
    for (uint32_t d = 0; d + 1 < t->n_dims; d++) rows *= (uint64_t)t->shape[d];
    if (t->n_dims == 1) { /* a bias: permute single elements */
        rows = (uint64_t)t->shape[0];
        uint32_t b = 0, bb = 0;
        gguf_fmt_geom(gguf_fmt(h, t->fmt.type), &t->fmt, &b, &bb);
        if (b != 1) { nh = 0; why = "is a block-quantized bias, whose rows cannot be reordered"; }
    }
    uint64_t rsz = t->nbytes / rows;
    if (!nh)
        return h->set_error(err, BT_E_INVAL, "gguf: %s: rotary tensor '%s' %s",
                            c->path, t->name, why);
    if (rows % nh || (rows / nh) % 2)
        return h->set_error(err, BT_E_INVAL, "gguf: %s: tensor '%s': %llu rows do not split into "
                            "%llu heads of even size", c->path, t->name, (unsigned long long)rows,
                            (unsigned long long)nh);
    uint64_t hd = rows / nh, half = hd / 2;
    for (uint64_t hh = 0; hh < nh; hh++)
        for (uint64_t i = 0; i < half; i++)
            for (uint64_t j = 0; j < 2; j++)
                emit(c, src + (hh * hd + j * half + i) * rsz, (size_t)rsz);
    return BT_OK;
}

/* append the record r (checked, without offset) and t's bytes (zstd frame if it pays off) */
static bt_status store(struct gw_ctx *c, struct gw_tensor r, const struct bt_tensor *t,
                       bt_err *err) {
    const struct bt_host *h = c->host;
    bt_status st;
    if (c->nt == c->cap) {
        uint32_t nc = c->cap ? 2 * c->cap : 64;
        struct gw_tensor *nt = h->alloc(nc * sizeof(*nt));
        if (!nt) return h->set_error(err, BT_E_NOMEM, "gguf: %s: out of memory", c->path);
        if (c->nt) memcpy(nt, c->t, c->nt * sizeof(*nt));
        h->free(c->t);
        c->t = nt;
        c->cap = nc;
    }
    int dup = 0;
    if (!(r.name = dup_str(h, t->name)) ||
        gguf_nameset_add(&c->names, h, r.name, strlen(r.name), c->nt, &dup) != BT_OK) {
        h->free(r.name);
        return h->set_error(err, BT_E_NOMEM, "gguf: %s: out of memory", c->path);
    }
    r.offset = c->data.total;
    c->t[c->nt++] = r;
    if (c->zc && t->nbytes) {
        zstd_begin(c, t->nbytes);
        if ((st = spill_data(c, t, err))) return st;
        zstd_end(c);
        if (c->zerr)
            return h->set_error(err, ZSTD_getErrorCode(c->zerr) == ZSTD_error_memory_allocation
                                ? BT_E_NOMEM : BT_E_IO, "gguf: %s: tensor '%s': zstd: %s", c->path,
                                t->name, ZSTD_getErrorName(c->zerr));
        uint64_t zb = c->data.total - r.offset;
        if (!c->data.err && zstd_pays(zb, t->nbytes)) {
            c->t[c->nt - 1].nbytes = zb;
            c->t[c->nt - 1].raw = t->nbytes;
        } else {
            spill_rewind(c, r.offset);
            if (!c->data.err && (st = spill_data(c, t, err))) return st;
        }
    } else if ((st = spill_data(c, t, err))) {
        return st;
    }
    gguf_put_zeros(&c->data, h, gguf_pad(c->data.total, c->align) - c->data.total);
    if (c->data.err)
        return h->set_error(err, BT_E_IO, "gguf: %s: tensor '%s': writing the temporary data file "
                            "in the output folder: %s", c->path, t->name, strerror(c->data.err));
    return BT_OK;
}

/* a tensor, then each of its extra parts as a 1-D I8 tensor "<name>.<part>" right after it */
static bt_status gw_add(void *ctx, const struct bt_tensor *t, bt_err *err) {
    struct gw_ctx *c = ctx;
    const struct bt_host *h = c->host;
    struct gw_tensor r;
    char pnames[BT_MAX_PARTS][GGUF_MAX_NAME];
    bt_status st = BT_E_INVAL;
    if (c->finished || c->data.fd < 0)
        return h->set_error(err, BT_E_INVAL, "gguf: %s: add after finish", c->path);
    if (!t) { st = h->set_error(err, st, "gguf: %s: NULL tensor", c->path); goto fail; }
    if ((st = gw_make_record(c, t, &r, pnames, err))) goto fail;
    if ((st = store(c, r, t, err))) goto fail;
    c->n_main++;
    for (uint32_t k = 0; k < t->n_parts; k++) {
        struct bt_tensor pt;
        memset(&pt, 0, sizeof(pt));
        pt.name = pt.src_name = pnames[k];
        pt.fmt = bt_fmt(BT_TYPE_I8);
        pt.n_dims = 1;
        pt.shape[0] = (int64_t)t->part_bytes[k];
        pt.data = t->parts[k];
        pt.nbytes = t->part_bytes[k];
        if ((st = gw_make_record(c, &pt, &r, NULL, err))) goto fail;
        r.part = 1;
        if ((st = store(c, r, &pt, err))) goto fail;
    }
    return BT_OK;
fail:
    c->zon = 0;
    c->failed = 1;
    return st;
}

/* ---- finish ------------------------------------------------------------------------------------ */
/* a quantized weight format: a weight format other than F32/F16/BF16 */
static int is_quant(const struct bt_host *h, uint32_t bt_type) {
    const struct bt_format *f = gguf_fmt(h, bt_type);
    return f && (f->flags & BT_FMT_WEIGHT) && bt_type != BT_TYPE_F32 && bt_type != BT_TYPE_F16 &&
           bt_type != BT_TYPE_BF16;
}

/* general.file_type (llama.cpp's LLAMA_FTYPE_MOSTLY_*) from the tensors written, never copied
 * from the input: the format of most quantized >= 2-D tensors, or of most >= 2-D tensors when
 * none is quantized. -1 (the key is left out; GGUF makes it optional) when that format has no
 * llama.cpp file type (MTQ, vq and other bt formats): no value would be true. */
static int guess_ftype(const struct gw_ctx *c) {
    static const struct { uint32_t bt; int ftype; } map[] = {
        {BT_TYPE_F32, 0}, {BT_TYPE_F16, 1}, {BT_TYPE_Q4_0, 2}, {BT_TYPE_Q8_0, 7},
        {BT_TYPE_BF16, 32}, {BT_TYPE_TQ1_0, 36}, {BT_TYPE_TQ2_0, 37},
    };
    const struct bt_host *h = c->host;
    int any_quant = 0;
    for (uint32_t i = 0; i < c->nt; i++) any_quant |= c->t[i].n_dims >= 2 && is_quant(h, c->t[i].fmt.type);
    uint32_t best = 0, best_type = UINT32_MAX;
    for (uint32_t i = 0; i < c->nt; i++) { /* majority by count (types are few: O(n^2) is fine) */
        uint32_t ty = c->t[i].fmt.type, n = 0;
        if (c->t[i].n_dims < 2 || (any_quant && !is_quant(h, ty))) continue;
        for (uint32_t j = 0; j < c->nt; j++) n += c->t[j].n_dims >= 2 && c->t[j].fmt.type == ty;
        if (n > best) { best = n; best_type = ty; }
    }
    for (size_t k = 0; k < sizeof(map) / sizeof(map[0]); k++)
        if (map[k].bt == best_type) return map[k].ftype;
    return -1;
}

/* header, KVs, tensor infos and padding into out */
static void write_header(struct gw_ctx *c, struct gguf_sink *out) {
    const struct bt_host *h = c->host;
    int quant = 0, ft = guess_ftype(c);
    uint32_t n_zstd = 0;
    for (uint32_t i = 0; i < c->nt; i++) {
        quant |= is_quant(h, c->t[i].fmt.type);
        n_zstd += c->t[i].raw != 0;
    }
    uint64_t n_kv = c->n_kv + !c->has_align + (quant && !c->has_qver) + (ft >= 0) +
                    gw_fmt_key_count(c) + (n_zstd ? 1 + n_zstd : 0);
    gguf_sink_put(out, h, GGUF_MAGIC, 4);
    gguf_put_u32(out, h, GGUF_VERSION);
    gguf_put_u64(out, h, c->nt);
    gguf_put_u64(out, h, n_kv);
    gguf_sink_put(out, h, c->kvs.p, c->kvs.n);
    if (!c->has_align) gguf_put_key_u32(out, h, "general.alignment", c->align);
    if (quant && !c->has_qver) gguf_put_key_u32(out, h, "general.quantization_version", 2);
    if (ft >= 0) gguf_put_key_u32(out, h, "general.file_type", (uint32_t)ft);
    gw_put_fmt_keys(c, out);
    if (n_zstd) {
        gguf_put_str(out, h, GGUF_COMPRESSION_KEY, strlen(GGUF_COMPRESSION_KEY));
        gguf_put_u32(out, h, BT_KV_STRING);
        gguf_put_str(out, h, "zstd", 4);
    }
    for (uint32_t i = 0; i < c->nt; i++) { /* bt.zstd.<name> = u64[ggml, n_dims, ne0..3, raw] */
        const struct gw_tensor *t = &c->t[i];
        if (!t->raw) continue;
        char key[128];
        snprintf(key, sizeof(key), "%s%s", GGUF_ZSTD_PREFIX, t->name);
        gguf_put_str(out, h, key, strlen(key));
        gguf_put_u32(out, h, BT_KV_ARRAY);
        gguf_put_u32(out, h, BT_KV_U64);
        gguf_put_u64(out, h, GGUF_ZSTD_NV);
        gguf_put_u64(out, h, t->ggml);
        gguf_put_u64(out, h, t->n_dims);
        for (uint32_t d = 0; d < 4; d++) gguf_put_u64(out, h, d < t->n_dims ? t->ne[d] : 1);
        gguf_put_u64(out, h, t->raw);
    }
    for (uint32_t i = 0; i < c->nt; i++) { /* a zstd blob is a 1-D I8 tensor of its bytes */
        const struct gw_tensor *t = &c->t[i];
        gguf_put_str(out, h, t->name, strlen(t->name));
        gguf_put_u32(out, h, t->raw ? 1 : t->n_dims);
        if (t->raw) gguf_put_u64(out, h, t->nbytes);
        for (uint32_t d = 0; !t->raw && d < t->n_dims; d++) gguf_put_u64(out, h, t->ne[d]);
        gguf_put_u32(out, h, t->raw ? (uint32_t)GGML_I8 : t->ggml);
        gguf_put_u64(out, h, t->offset);
    }
    gguf_put_zeros(out, h, gguf_pad(out->total, c->align) - out->total);
}

/* copy the spill file (all of it, from offset 0 of its descriptor) to the end of out's file */
static int copy_spill(struct gw_ctx *c, int out_fd) {
    int in = c->data.fd;
    uint64_t left = c->data.total;
    loff_t pos = 0;
    int e = 0;
    while (left && !e) {
        ssize_t k = copy_file_range(in, &pos, out_fd, NULL, left > ((size_t)1 << 30) ? (size_t)1 << 30 : (size_t)left, 0);
        if (k > 0) { left -= (uint64_t)k; continue; }
        if (k < 0 && errno == EINTR) continue;
        if (k == 0) { e = EIO; break; }
        if (errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL) { e = errno; break; }
        /* fall back to read/write through the spill buffer */
        ssize_t r = pread(in, c->data.p, left < c->data.cap ? (size_t)left : c->data.cap, (off_t)pos);
        if (r <= 0) { e = r < 0 ? errno : EIO; break; }
        pos += r;
        struct gguf_sink s = {c->data.p, (size_t)r, (size_t)r, out_fd, 0, 0};
        if ((e = gguf_sink_flush(&s))) break;
        left -= (uint64_t)r;
    }
    return e;
}

static bt_status gw_finish(void *ctx, bt_err *err) {
    struct gw_ctx *c = ctx;
    const struct bt_host *h = c->host;
    if (c->finished) return BT_OK;
    if (c->failed || c->data.fd < 0)
        return h->set_error(err, BT_E_INVAL, "gguf: %s: not written, an earlier tensor failed", c->path);
    if (c->expect && c->n_main != c->expect)
        h->log(BT_LOG_WARN, "gguf: %s: %u tensors announced, %u written", c->path, c->expect,
               c->n_main);
    if (gguf_sink_flush(&c->data))
        return h->set_error(err, BT_E_IO, "gguf: %s: writing the temporary data file in the output "
                            "folder: %s", c->path, strerror(c->data.err));
    struct gguf_sink out = {NULL, 0, 0, -1, 0, 0};
    int e = 0, named = 0;
    out.fd = gw_anon_open(c->path, &named); /* anonymous until it is complete */
    if (out.fd < 0) e = errno;
    if (!e) {
        out.cap = c->data.cap; /* reuse the (flushed) spill buffer */
        out.p = c->data.p;
        write_header(c, &out);
        e = gguf_sink_flush(&out);
    }
    if (!e) e = copy_spill(c, out.fd);
    if (!e && fsync(out.fd) != 0) e = errno;
    if (!e) e = gw_commit(out.fd, c->path);
    if (out.fd >= 0 && close(out.fd) != 0 && !e) e = errno;
    if (e)
        return h->set_error(err, e == ENOMEM ? BT_E_NOMEM : BT_E_IO, "gguf: %s: writing output: %s",
                            c->path, strerror(e));
    close(c->data.fd);
    c->data.fd = -1;
    c->finished = 1;
    uint64_t raw = 0, stored = 0;
    uint32_t nz = 0;
    for (uint32_t i = 0; i < c->nt; i++) {
        raw += c->t[i].raw ? c->t[i].raw : c->t[i].nbytes;
        stored += c->t[i].nbytes;
        nz += c->t[i].raw != 0;
    }
    h->log(BT_LOG_INFO, "gguf: wrote %s (%u tensors)", c->path, c->nt);
    if (c->zc)
        h->log(BT_LOG_INFO, "gguf: %s: zstd level %d: %u of %u tensors compressed, %llu -> %llu "
               "bytes (%.3fx)", c->path, c->zlevel, nz, c->nt, (unsigned long long)raw,
               (unsigned long long)stored, stored ? (double)raw / (double)stored : 0.0);
    return BT_OK;
}

/* ---- close / supports ---------------------------------------------------------------------------- */
static void gw_close(void *ctx) {
    struct gw_ctx *c = ctx;
    const struct bt_host *h = c->host;
    if (!h) return;
    if (c->spill) h->free(c->spill); /* the files themselves are anonymous */
    gguf_sink_free(&c->data, h);      /* closes the spill descriptor */
    gguf_sink_free(&c->kvs, h);
    for (uint32_t i = 0; i < c->nt; i++) h->free(c->t[i].name);
    h->free(c->t);
    gguf_nameset_free(&c->names, h);
    h->free(c->heads);
    h->free(c->heads_kv);
    ZSTD_freeCCtx(c->zc);
    h->free(c->zout);
    h->free(c->path);
    memset(c, 0, sizeof(*c));
}

/* any format whose descriptor has a valid geometry for fmt and either a ggml type or the weight
 * flag (stored as I8 rows + bt.fmt keys). A NULL / unopened ctx answers for the built-ins. */
static int gw_supports(void *ctx, const struct bt_tfmt *fmt) {
    const struct bt_host *h = ctx ? ((struct gw_ctx *)ctx)->host : NULL;
    uint32_t ggml, how;
    return fmt && !gw_store_how(h, fmt, &ggml, &how);
}

static const struct bt_option gw_options[] = {
    {"alignment", BT_OPT_INT, "32", 8, 4096, NULL, "data alignment in bytes (a power of two)"},
    {"compress", BT_OPT_ENUM, "none", 0, -1, "none|zstd",
     "zstd: store each tensor as one zstd frame (smaller, not mmap-able; needs bt's reader)"},
    {"compress_level", BT_OPT_INT, "3", 1, 22, NULL, "zstd level (1 fast .. 19 small, 20-22 ultra)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const struct bt_writer_i gw_iface = {
    .struct_size = sizeof(struct bt_writer_i),
    .open = gw_open,
    .add = gw_add,
    .finish = gw_finish,
    .close = gw_close,
    .supports = gw_supports,
};

static const struct bt_plugin gw_desc = {
    .abi_version = BT_ABI_VERSION,
    .struct_size = sizeof(struct bt_plugin),
    .name = "gguf",
    .version = "0.1.0",
    .kind = BT_KIND_WRITER,
    .caps = 0,
    .description = "GGUF v3 writer (llama.cpp), incl. TQ1_0/TQ2_0; bt MTQ and plugin formats as I8 + "
                   "bt.mtq.* / bt.fmt.* keys",
    .options = gw_options,
    .iface = &gw_iface,
    .ctx_size = sizeof(struct gw_ctx),
};

BT_PLUGIN_DEFINE(gw_desc)
