/* gguf_reader.c - the "gguf" reader plugin: maps a GGUF v2/v3 file, validates it strictly
 * (every length, type, offset and count is checked against the file) and exposes its tensors
 * as views into the map (zstd-compressed ones: decompressed on first get, freed on release)
 * and its metadata as owned, NUL-terminated bt_kv entries. bt formats of I8 tensors (bt.mtq /
 * bt.fmt keys) and extra parts: gguf_reader_fmt.c. */
#define _GNU_SOURCE
#include "gguf_reader.h"
#include "bt_types.h"
#include "llama_check.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

/* A bounds-checked read cursor over the map. */
struct gr_cur {
    const uint8_t *p;    /* file bytes */
    size_t         size; /* file size */
    size_t         pos;  /* next byte to read */
};

static int rd(struct gr_cur *c, void *dst, size_t n) {
    if (n > c->size - c->pos) return -1;
    memcpy(dst, c->p + c->pos, n);
    c->pos += n;
    return 0;
}

static int rd_u32(struct gr_cur *c, uint32_t *v) {
    uint8_t b[4];
    if (rd(c, b, 4)) return -1;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 0;
}

static int rd_u64(struct gr_cur *c, uint64_t *v) {
    uint8_t b[8];
    if (rd(c, b, 8)) return -1;
    *v = 0;
    for (int i = 0; i < 8; i++) *v |= (uint64_t)b[i] << (8 * i);
    return 0;
}

/* string: *s points into the map, *n bytes; -1 if truncated or too long */
static int rd_str(struct gr_cur *c, const char **s, uint64_t *n) {
    if (rd_u64(c, n) || *n > GGUF_MAX_STRING || *n > c->size - c->pos) return -1;
    *s = (const char *)c->p + c->pos;
    c->pos += (size_t)*n;
    return 0;
}

/* ---- metadata --------------------------------------------------------------------------------- */
/* Parse one KV value of type vt at the cursor and fill kv (key already set in blk). The entry's
 * block (key + value bytes) is allocated here: key first, so kv->key frees it. */
static bt_status parse_kv(struct gr_ctx *g, struct gr_cur *c, const char *key, uint64_t klen,
                          struct bt_kv *kv, bt_err *err) {
    const struct bt_host *h = g->host;
    uint32_t vt, at = 0;
    uint64_t n = 0, extra = 0;
    size_t at_pos;
    if (rd_u32(c, &vt)) goto trunc;
    if (vt > BT_KV_F64)
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: key '%.*s': unknown value type %u",
                            g->path, (int)klen, key, vt);
    at_pos = c->pos;
    if (vt == BT_KV_STRING) {
        const char *s = NULL;
        if (rd_str(c, &s, &n)) goto trunc;
        extra = n + 1;
    } else if (vt == BT_KV_ARRAY) {
        if (rd_u32(c, &at) || rd_u64(c, &n)) goto trunc;
        if (at == BT_KV_ARRAY || at > BT_KV_F64)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: key '%.*s': bad array element type "
                                "%u", g->path, (int)klen, key, at);
        if (n > GGUF_MAX_ARRAY)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: key '%.*s': %llu array elements is "
                                "too many", g->path, (int)klen, key, (unsigned long long)n);
        if (at == BT_KV_STRING) { /* walk once to validate and size */
            if (n > (c->size - c->pos) / 8) goto trunc;
            extra = n * sizeof(char *);
            for (uint64_t i = 0; i < n; i++) {
                const char *s = NULL;
                uint64_t sl = 0;
                if (rd_str(c, &s, &sl)) goto trunc;
                extra += sl + 1;
            }
        } else {
            size_t es = gguf_kv_scalar_size(at);
            if (n > (c->size - c->pos) / es) goto trunc;
            c->pos += (size_t)(n * es);
            extra = n * es;
        }
    } else {
        size_t es = gguf_kv_scalar_size(vt);
        if (es > c->size - c->pos) goto trunc;
        c->pos += es;
    }
    /* owned block: key NUL [pad to 8] value */
    uint64_t koff = (klen + 1 + 7) & ~(uint64_t)7;
    uint8_t *blk = h->alloc((size_t)(koff + extra + 1));
    if (!blk) return h->set_error(err, BT_E_NOMEM, "gguf: %s: out of memory", g->path);
    memcpy(blk, key, (size_t)klen);
    blk[klen] = 0;
    memset(kv, 0, sizeof(*kv));
    kv->key = (const char *)blk;
    kv->type = vt;
    kv->arr_type = at;
    kv->n = n;
    uint8_t *val = blk + koff;
    struct gr_cur v = {c->p, c->size, at_pos};
    if (vt == BT_KV_STRING) {
        const char *s = NULL;
        rd_str(&v, &s, &n);
        memcpy(val, s, (size_t)n);
        val[n] = 0;
        kv->v.s = (const char *)val;
    } else if (vt == BT_KV_ARRAY && at == BT_KV_STRING) {
        v.pos += 12;
        const char **tab = (const char **)val;
        char *sp = (char *)(val + n * sizeof(char *));
        for (uint64_t i = 0; i < n; i++) {
            const char *s = NULL;
            uint64_t sl = 0;
            rd_str(&v, &s, &sl);
            memcpy(sp, s, (size_t)sl);
            sp[sl] = 0;
            tab[i] = sp;
            sp += sl + 1;
        }
        kv->v.arr = tab;
    } else if (vt == BT_KV_ARRAY) {
        memcpy(val, c->p + at_pos + 12, (size_t)extra);
        if (at == BT_KV_BOOL)
            for (uint64_t i = 0; i < n; i++) val[i] = val[i] != 0;
        kv->v.arr = val;
    } else {
        uint64_t u = 0;
        size_t es = gguf_kv_scalar_size(vt);
        for (size_t k = 0; k < es; k++) u |= (uint64_t)c->p[at_pos + k] << (8 * k);
        int sh = 64 - 8 * (int)es;
        switch (vt) {
        case BT_KV_I8: case BT_KV_I16: case BT_KV_I32: case BT_KV_I64:
            kv->v.i = (int64_t)(u << sh) >> sh; /* sign-extend */
            break;
        case BT_KV_F32: { float f; uint32_t w = (uint32_t)u; memcpy(&f, &w, 4); kv->v.f = f; break; }
        case BT_KV_F64: memcpy(&kv->v.f, &u, 8); break;
        case BT_KV_BOOL: kv->v.u = u != 0; break;
        default: kv->v.u = u;
        }
    }
    return BT_OK;
trunc:
    return h->set_error(err, BT_E_FORMAT, "gguf: %s: key '%.*s': value is truncated or too long",
                        g->path, (int)klen, key);
}

/* bitnet.cpp's fork names its BitNet architectures bitnet-b1.58 and bitnet-25 (both with
 * squared-ReLU FFNs): their keys are read as bt's bitnet.* ones. Returns the prefix length to
 * replace by "bitnet", 0 if key has neither prefix. */
static size_t fork_prefix(const char *key, uint64_t klen) {
    static const char *const pre[] = {"bitnet-b1.58.", "bitnet-25."};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(pre[i]);
        if (klen > n && !memcmp(key, pre[i], n)) return n - 1;
    }
    return 0;
}

/* n_extra: room for the keys the reader adds (I2_S scales, the fork's activation) */
static bt_status parse_kvs(struct gr_ctx *g, struct gr_cur *c, uint64_t n_kv, uint64_t n_extra,
                           bt_err *err) {
    const struct bt_host *h = g->host;
    struct gguf_nameset keys;
    bt_status st = gguf_nameset_init(&keys, h, n_kv);
    if (st) return h->set_error(err, st, "gguf: %s: out of memory", g->path);
    g->kv = h->alloc((size_t)(n_kv + n_extra + 1) * sizeof(*g->kv));
    if (!g->kv) st = h->set_error(err, BT_E_NOMEM, "gguf: %s: out of memory", g->path);
    for (uint64_t i = 0; i < n_kv && !st; i++) {
        const char *key;
        uint64_t klen = 0;
        int dup = 0;
        if (rd_str(c, &key, &klen)) {
            st = h->set_error(err, BT_E_FORMAT, "gguf: %s: key #%llu is truncated", g->path,
                              (unsigned long long)i);
        } else if (!gguf_key_ok(key, (size_t)klen) || memchr(key, 0, (size_t)klen)) {
            st = h->set_error(err, BT_E_FORMAT, "gguf: %s: key #%llu has an invalid name (%llu "
                              "bytes)", g->path, (unsigned long long)i, (unsigned long long)klen);
        } else if (fork_prefix(key, klen) && klen < 4096) {
            char nk[4096];
            size_t fp = fork_prefix(key, klen);
            memcpy(nk, "bitnet", 6);
            memcpy(nk + 6, key + fp, (size_t)klen - fp);
            klen = 6 + klen - fp;
            if (!(st = parse_kv(g, c, nk, klen, &g->kv[i], err))) dup = -1;
        } else if (!(st = parse_kv(g, c, key, klen, &g->kv[i], err))) {
            dup = -1;
        }
        if (dup == -1) {
            dup = 0;
            g->n_kv++;
            st = gguf_nameset_add(&keys, h, g->kv[i].key, (size_t)klen, (uint32_t)i, &dup);
            if (st) st = h->set_error(err, st, "gguf: %s: out of memory", g->path);
            else if (dup)
                st = h->set_error(err, BT_E_FORMAT, "gguf: %s: duplicate key '%s'", g->path,
                                  g->kv[i].key);
        }
    }
    int64_t ai = st ? -1 : gguf_nameset_get(&keys, "general.alignment", 17);
    gguf_nameset_free(&keys, h);
    g->align = GGUF_DEFAULT_ALIGNMENT;
    if (ai >= 0) {
        const struct bt_kv *a = &g->kv[ai];
        if (a->type != BT_KV_U32 || a->v.u == 0 || (a->v.u & (a->v.u - 1)))
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: key 'general.alignment' must be a "
                                "u32 power of two", g->path);
        g->align = (uint32_t)a->v.u;
    }
    return st;
}

/* ---- tensors ------------------------------------------------------------------------------------ */
/* the info of an I2_S tensor (bitnet.cpp): 2-D, n/4 + 32 bytes in the file, read as TQ2_0 */
static bt_status i2s_info(struct gr_ctx *g, struct gr_tensor *t, uint32_t nd, const uint64_t *ne,
                          uint64_t off, uint64_t expect, bt_err *err) {
    const struct bt_host *h = g->host;
    char why[200];
    if (nd != 2 || ne[0] == 0 || ne[1] == 0 || ne[0] > ((uint64_t)1 << 32) || ne[1] > ((uint64_t)1 << 32))
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': an I2_S tensor must be 2-D "
                            "(%u dims)", g->path, t->name, nd);
    if (!gr_i2s_shape_ok(g->i2s_layout, (int64_t)ne[1], (int64_t)ne[0], why, sizeof why))
        return h->set_error(err, BT_E_UNSUPPORTED, "gguf: %s: tensor '%s': %s", g->path, t->name, why);
    if (off != expect)
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s' has offset %llu, expected "
                            "%llu", g->path, t->name, (unsigned long long)off,
                            (unsigned long long)expect);
    t->fmt = bt_fmt(BT_TYPE_TQ2_0);
    t->ggml = GGML_I2_S;
    t->n_dims = 2;
    t->shape[0] = (int64_t)ne[1];
    t->shape[1] = (int64_t)ne[0];
    t->offset = off;
    t->i2s = 1;
    t->fbytes = ne[0] * ne[1] / 4 + GR_I2S_TRAILER;
    t->nbytes = t->fbytes; /* the file's size until the bounds check, then TQ2_0's */
    return BT_OK;
}

static bt_status parse_tensor(struct gr_ctx *g, struct gr_cur *c, uint64_t i, uint64_t expect,
                              struct gr_tensor *t, bt_err *err) {
    const struct bt_host *h = g->host;
    const char *nm;
    uint64_t nl, ne[4] = {1, 1, 1, 1}, off;
    uint32_t nd, ty;
    if (rd_str(c, &nm, &nl))
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor #%llu: name is truncated",
                            g->path, (unsigned long long)i);
    if (nl == 0 || nl >= GGUF_MAX_NAME || memchr(nm, 0, (size_t)nl))
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor #%llu: invalid name (%llu bytes, "
                            "1..%u allowed)", g->path, (unsigned long long)i,
                            (unsigned long long)nl, GGUF_MAX_NAME - 1);
    if (!(t->name = h->alloc((size_t)nl + 1)))
        return h->set_error(err, BT_E_NOMEM, "gguf: %s: out of memory", g->path);
    memcpy(t->name, nm, (size_t)nl);
    t->name[nl] = 0;
    if (rd_u32(c, &nd)) goto trunc;
    if (nd > 4)
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': %u dims (at most 4)",
                            g->path, t->name, nd);
    for (uint32_t d = 0; d < nd; d++)
        if (rd_u64(c, &ne[d])) goto trunc;
    if (rd_u32(c, &ty) || rd_u64(c, &off)) goto trunc;
    if (ty == GGML_I2_S) return i2s_info(g, t, nd, ne, off, expect, err);
    const struct gguf_type_info *ti = gguf_type(ty);
    if (!ti)
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': unknown ggml type %u",
                            g->path, t->name, ty);
    uint32_t blk = 0, bytes = 0;
    const struct bt_format *f = gguf_fmt_of_ggml(h, ty, &blk, &bytes);
    struct bt_tfmt raw = bt_ggml_raw_tfmt(ty);
    if (!f && ti->block && gguf_fmt_geom(gguf_fmt(h, BT_TYPE_GGML), &raw, &blk, &bytes))
        f = gguf_fmt(h, BT_TYPE_GGML); /* listed by name and size; reading it says why not */
    if (!f)
        return h->set_error(err, BT_E_UNSUPPORTED, "gguf: %s: tensor '%s': ggml type %s is not "
                            "supported by bt (no format maps to it)", g->path, t->name, ti->name);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < 4; d++) {
        if (ne[d] > (uint64_t)INT64_MAX || (ne[d] && numel > (uint64_t)INT64_MAX / ne[d]))
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': dims overflow", g->path,
                                t->name);
        numel *= ne[d];
    }
    if (ne[0] % blk)
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': ne0 = %llu is not a "
                            "multiple of the %s block (%u)", g->path, t->name,
                            (unsigned long long)ne[0], ti->name, blk);
    uint64_t nb = numel / blk;
    if (nb > (uint64_t)INT64_MAX / bytes)
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': size overflows", g->path,
                            t->name);
    if (off != expect)
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s' has offset %llu, expected "
                            "%llu", g->path, t->name, (unsigned long long)off,
                            (unsigned long long)expect);
    t->fmt = f->type == BT_TYPE_GGML ? raw : bt_fmt(f->type);
    t->ggml = ty;
    t->n_dims = nd ? nd : 1; /* a 0-dim tensor is a scalar of shape (1,) */
    for (uint32_t d = 0; d < t->n_dims; d++) t->shape[d] = (int64_t)ne[t->n_dims - 1 - d];
    t->offset = off;
    t->nbytes = nb * bytes;
    return BT_OK;
trunc:
    return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': info is truncated", g->path,
                        t->name);
}

/* checks one bt.zstd.<name> key (v = its 7 values) against tensor t (the 1-D I8 blob) and the
 * frame header; on success t describes the uncompressed tensor */
static bt_status zstd_info(struct gr_ctx *g, struct gr_tensor *t, const uint64_t *v, bt_err *err) {
    const struct bt_host *h = g->host;
    uint32_t blk = 0, bytes = 0;
    const struct bt_format *f = v[0] < GGML_TYPE_COUNT ? gguf_fmt_of_ggml(h, (uint32_t)v[0], &blk, &bytes) : NULL;
    uint64_t numel = 1, nd = v[1], raw = 0;
    int bad = !f || nd < 1 || nd > 4;
    for (uint32_t d = 0; d < 4 && !bad; d++) {
        uint64_t ne = v[2 + d];
        bad = d >= nd ? ne != 1 : ne == 0 || ne > ((uint64_t)1 << 40) || numel > (UINT64_MAX >> 8) / ne;
        numel *= ne;
    }
    if (!bad && !(v[2] % blk)) raw = numel / blk * bytes;
    if (!raw || raw != v[6] || raw > (uint64_t)INT64_MAX)
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': key '%s%s' = [type %llu, "
                            "%llu dims, %llu x %llu x %llu x %llu, %llu bytes] is not a valid "
                            "tensor", g->path, t->name, GGUF_ZSTD_PREFIX, t->name,
                            (unsigned long long)v[0], (unsigned long long)v[1],
                            (unsigned long long)v[2], (unsigned long long)v[3],
                            (unsigned long long)v[4], (unsigned long long)v[5],
                            (unsigned long long)v[6]);
    if (t->ggml != GGML_I8 || t->n_dims != 1)
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': a zstd blob must be a 1-D "
                            "i8 tensor", g->path, t->name);
    /* frame header: magic, then a descriptor whose bit 2 is the content checksum flag */
    const uint8_t *src = g->map + g->data + t->offset;
    unsigned long long fcs = ZSTD_getFrameContentSize(src, (size_t)t->nbytes);
    if (t->nbytes < 6 || memcmp(src, "\x28\xb5\x2f\xfd", 4) != 0 || !(src[4] & 4))
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': not a zstd frame with a "
                            "checksum", g->path, t->name);
    if (fcs != raw || raw / GGUF_ZSTD_MAX_RATIO > t->nbytes)
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': the zstd frame (%llu bytes) "
                            "does not declare the %llu bytes of its key", g->path, t->name,
                            (unsigned long long)t->nbytes, (unsigned long long)raw);
    t->zbytes = t->nbytes;
    t->nbytes = raw;
    t->ggml = (uint32_t)v[0];
    t->fmt = bt_fmt(f->type);
    t->n_dims = (uint32_t)nd;
    for (uint32_t d = 0; d < nd; d++) t->shape[d] = (int64_t)v[2 + nd - 1 - d];
    return BT_OK;
}

/* apply bt.zstd.<name> = u64[ggml, n_dims, ne0..ne3, raw bytes] keys (needs bt.compression) */
static bt_status apply_zstd(struct gr_ctx *g, const struct gguf_nameset *names, bt_err *err) {
    const struct bt_host *h = g->host;
    size_t pl = strlen(GGUF_ZSTD_PREFIX);
    const char *comp = NULL;
    for (uint32_t i = 0; i < g->n_kv; i++) {
        const struct bt_kv *kv = &g->kv[i];
        if (strcmp(kv->key, GGUF_COMPRESSION_KEY) != 0) continue;
        if (kv->type != BT_KV_STRING)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: key '%s' must be a string", g->path,
                                kv->key);
        if (strcmp(kv->v.s, "zstd") != 0)
            return h->set_error(err, BT_E_UNSUPPORTED, "gguf: %s: compression '%s' is not "
                                "supported (zstd)", g->path, kv->v.s);
        comp = kv->v.s;
    }
    for (uint32_t i = 0; i < g->n_kv; i++) {
        const struct bt_kv *kv = &g->kv[i];
        if (strncmp(kv->key, GGUF_ZSTD_PREFIX, pl) != 0) continue;
        const char *tn = kv->key + pl;
        int64_t ti = gguf_nameset_get(names, tn, strlen(tn));
        if (kv->type != BT_KV_ARRAY || kv->arr_type != BT_KV_U64 || kv->n != GGUF_ZSTD_NV || ti < 0)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: key '%s' must be a u64[%u] array "
                                "naming an existing tensor", g->path, kv->key, GGUF_ZSTD_NV);
        if (!comp)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: key '%s' needs %s = zstd", g->path,
                                kv->key, GGUF_COMPRESSION_KEY);
        uint64_t v[GGUF_ZSTD_NV];
        memcpy(v, kv->v.arr, sizeof(v));
        bt_status st = zstd_info(g, &g->t[ti], v, err);
        if (st) return st;
    }
    return BT_OK;
}

static bt_status parse_tensors(struct gr_ctx *g, struct gr_cur *c, uint64_t n_t, bt_err *err) {
    const struct bt_host *h = g->host;
    struct gguf_nameset names;
    bt_status st = gguf_nameset_init(&names, h, n_t);
    if (st) return h->set_error(err, st, "gguf: %s: out of memory", g->path);
    g->t = h->alloc((size_t)(n_t ? n_t : 1) * sizeof(*g->t));
    if (!g->t) st = h->set_error(err, BT_E_NOMEM, "gguf: %s: out of memory", g->path);
    else memset(g->t, 0, (size_t)(n_t ? n_t : 1) * sizeof(*g->t));
    uint64_t expect = 0;
    for (uint64_t i = 0; i < n_t && !st; i++) {
        struct gr_tensor *t = &g->t[i];
        int dup = 0;
        g->n_t++; /* counted before parsing so close frees a partial name */
        if ((st = parse_tensor(g, c, i, expect, t, err))) {
            if (err && i && g->t[i - 1].i2s && strstr(err->msg, "has offset")) {
                char m[sizeof err->msg];
                memcpy(m, err->msg, sizeof m);
                st = h->set_error(err, st, "%s (after the I2_S tensor '%s', which takes n/4 + %u "
                                  "bytes: its codes and the scale trailer)", m, g->t[i - 1].name,
                                  GR_I2S_TRAILER);
            }
            break;
        }
        expect = gguf_pad(t->offset + t->nbytes, g->align);
        if ((st = gguf_nameset_add(&names, h, t->name, strlen(t->name), (uint32_t)i, &dup)))
            st = h->set_error(err, st, "gguf: %s: out of memory", g->path);
        else if (dup)
            st = h->set_error(err, BT_E_FORMAT, "gguf: %s: duplicate tensor '%s'", g->path, t->name);
    }
    g->data = gguf_pad(c->pos, g->align);
    for (uint32_t i = 0; i < g->n_t && !st; i++) {
        const struct gr_tensor *t = &g->t[i];
        if (g->data > g->size || t->offset > g->size - g->data ||
            t->nbytes > g->size - g->data - t->offset)
            st = h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': data [%llu, +%llu) extends "
                              "past the end of the file (%llu bytes)", g->path, t->name,
                              (unsigned long long)(g->data + t->offset),
                              (unsigned long long)t->nbytes, (unsigned long long)g->size);
    }
    for (uint32_t i = 0; i < g->n_t && !st; i++)
        if (g->t[i].i2s) g->t[i].nbytes = (uint64_t)g->t[i].shape[0] * (uint64_t)g->t[i].shape[1] / 256 * 66;
    if (!st) st = apply_zstd(g, &names, err);
    if (!st) st = gr_apply_formats(g, &names, err);
    gguf_nameset_free(&names, h);
    return st;
}

/* ---- plugin interface ------------------------------------------------------------------------- */
static void gr_close(void *ctx) {
    struct gr_ctx *g = ctx;
    const struct bt_host *h = g->host;
    if (!h) return;
    for (uint32_t i = 0; i < g->n_kv; i++) h->free((void *)g->kv[i].key);
    for (uint32_t i = 0; i < g->n_t; i++) {
        h->free(g->t[i].name);
        h->free(g->t[i].zdata);
    }
    if (g->locked) pthread_mutex_destroy(&g->lock);
    h->free(g->vis);
    h->free(g->kv);
    h->free(g->t);
    if (g->map) munmap((void *)g->map, g->size);
    h->free(g->path);
    memset(g, 0, sizeof(*g));
}

static int gr_probe(const char *path) {
    char m[4];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, m, 4);
    close(fd);
    return n == 4 && memcmp(m, GGUF_MAGIC, 4) == 0 ? 100 : 0;
}

static bt_status map_file(struct gr_ctx *g, const char *path, bt_err *err) {
    const struct bt_host *h = g->host;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return h->set_error(err, BT_E_IO, "gguf: %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return h->set_error(err, BT_E_IO, "gguf: %s: not a regular file", path);
    }
    if (sb.st_size < 24) {
        close(fd);
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: file too small (%lld bytes) for a GGUF "
                            "header", path, (long long)sb.st_size);
    }
    void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) return h->set_error(err, BT_E_IO, "gguf: %s: mmap: %s", path, strerror(e));
    g->map = m;
    g->size = (size_t)sb.st_size;
    return BT_OK;
}

/* llama.* metadata against the listed tensors (llama_check.c); the layer count unless the file
 * is one part of a split model (split.count > 1) */
static bt_status check_llama(struct gr_ctx *g, bt_err *err) {
    const struct bt_host *h = g->host;
    unsigned flags = BT_LLAMA_WHOLE;
    for (uint32_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, "split.count") && g->kv[i].type != BT_KV_STRING &&
            g->kv[i].type != BT_KV_ARRAY && g->kv[i].v.u > 1)
            flags = 0;
    struct bt_llama_t *v = h->alloc((g->n_vis ? g->n_vis : 1) * sizeof *v);
    char *where = h->alloc(strlen(g->path) + 32);
    bt_status st;
    if (!v || !where) {
        st = h->set_error(err, BT_E_NOMEM, "gguf: %s: out of memory", g->path);
    } else {
        for (uint32_t i = 0; i < g->n_vis; i++) {
            const struct gr_tensor *t = &g->t[g->vis[i]];
            v[i] = (struct bt_llama_t){t->name, t->name, t->n_dims, t->shape};
        }
        sprintf(where, "gguf: %s: llama.* metadata", g->path);
        st = bt_llama_check(where, g->kv, g->n_kv, v, g->n_vis, flags, err);
    }
    h->free(v);
    h->free(where);
    return st;
}

static bt_status gr_open(void *ctx, const struct bt_host *host, const bt_optset *opts,
                         const char *path, bt_err *err) {
    struct gr_ctx *g = ctx;
    memset(g, 0, sizeof(*g));
    g->host = host;
    size_t pl = strlen(path);
    if (!(g->path = host->alloc(pl + 1)))
        return host->set_error(err, BT_E_NOMEM, "gguf: %s: out of memory", path);
    memcpy(g->path, path, pl + 1);
    g->locked = pthread_mutex_init(&g->lock, NULL) == 0;
    const char *lay = host->opt_str && opts ? host->opt_str(opts, "i2s_layout") : NULL;
    g->i2s_layout = gr_i2s_layout_of(lay);
    if (g->i2s_layout < 0) { /* the option table makes this unreachable from an INI */
        gr_close(g);
        return host->set_error(err, BT_E_INVAL, "gguf: %s: i2s_layout = %s: not one of x86, arm, "
                               "x86-1x4", path, lay);
    }
    bt_status st = g->locked ? map_file(g, path, err)
                             : host->set_error(err, BT_E_NOMEM, "gguf: %s: cannot create a lock", path);
    struct gr_cur c = {g->map, g->size, 0};
    uint32_t ver = 0;
    uint64_t n_t = 0, n_kv = 0;
    if (!st && memcmp(g->map, GGUF_MAGIC, 4) != 0)
        st = host->set_error(err, BT_E_FORMAT, "gguf: %s: bad magic (not a GGUF file)", path);
    if (!st) {
        c.pos = 4;
        rd_u32(&c, &ver);
        rd_u64(&c, &n_t);
        rd_u64(&c, &n_kv);
        if ((ver & 0xffff) == 0)
            st = host->set_error(err, BT_E_UNSUPPORTED, "gguf: %s: big-endian GGUF is not supported", path);
        else if (ver != 2 && ver != 3)
            st = host->set_error(err, BT_E_UNSUPPORTED, "gguf: %s: GGUF version %u is not supported "
                                 "(2 or 3)", path, ver);
        else if (n_kv > (g->size - 24) / 13 || n_t > (g->size - 24) / 24)
            st = host->set_error(err, BT_E_FORMAT, "gguf: %s: %llu tensors / %llu keys cannot fit in "
                                 "%zu bytes", path, (unsigned long long)n_t,
                                 (unsigned long long)n_kv, g->size);
    }
    if (!st) st = parse_kvs(g, &c, n_kv, n_t + 1, err);
    if (!st) st = parse_tensors(g, &c, n_t, err);
    if (!st) st = gr_i2s_finish(g, err);
    if (!st) st = check_llama(g, err);
    if (st) {
        gr_close(g);
        return st;
    }
    host->log(BT_LOG_DEBUG, "gguf: %s: v%u, %u keys, %u tensors, data at %llu", path, ver, g->n_kv,
              g->n_t, (unsigned long long)g->data);
    return BT_OK;
}

static uint32_t gr_tensor_count(void *ctx) { return ((struct gr_ctx *)ctx)->n_vis; }
static uint32_t gr_kv_count(void *ctx) { return ((struct gr_ctx *)ctx)->n_kv; }

/* decompress tensor t into t->zdata (lock held) */
static bt_status inflate(struct gr_ctx *g, struct gr_tensor *t, bt_err *err) {
    const struct bt_host *h = g->host;
    uint8_t *dst = h->alloc((size_t)t->nbytes);
    if (!dst)
        return h->set_error(err, BT_E_NOMEM, "gguf: %s: tensor '%s': out of memory for %llu "
                            "decompressed bytes", g->path, t->name, (unsigned long long)t->nbytes);
    size_t r = ZSTD_decompress(dst, (size_t)t->nbytes, g->map + g->data + t->offset,
                               (size_t)t->zbytes);
    if (ZSTD_isError(r) || r != t->nbytes) {
        h->free(dst);
        int oom = ZSTD_isError(r) && ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation;
        return h->set_error(err, oom ? BT_E_NOMEM : BT_E_FORMAT, "gguf: %s: tensor '%s': corrupt "
                            "zstd data (%s)", g->path, t->name,
                            ZSTD_isError(r) ? ZSTD_getErrorName(r) : "wrong size");
    }
    t->zdata = dst;
    return BT_OK;
}

/* the bytes of tensor t: the map, or its decompressed copy (made once, whichever thread asks
 * first) */
static bt_status tensor_bytes(struct gr_ctx *g, struct gr_tensor *t, const uint8_t **data,
                              bt_err *err) {
    *data = g->map + g->data + t->offset;
    if (!t->zbytes && !t->i2s) return BT_OK;
    pthread_mutex_lock(&g->lock);
    bt_status st = t->zdata ? BT_OK : t->i2s ? gr_i2s_tensor_decode(g, t, err) : inflate(g, t, err);
    *data = t->zdata;
    pthread_mutex_unlock(&g->lock);
    return st;
}

bt_status gr_tensor_get(void *ctx, uint32_t i, struct bt_tensor *out, bt_err *err) {
    struct gr_ctx *g = ctx;
    if (i >= g->n_vis)
        return g->host->set_error(err, BT_E_INVAL, "gguf: %s: tensor index %u out of range", g->path, i);
    struct gr_tensor *t = &g->t[g->vis[i]];
    const uint8_t *data, *pdata[BT_MAX_PARTS];
    bt_status st = tensor_bytes(g, t, &data, err);
    for (uint32_t k = 0; !st && k < t->n_parts; k++) st = tensor_bytes(g, &g->t[t->part[k]], &pdata[k], err);
    if (st) return st;
    memset(out, 0, sizeof(*out));
    out->name = out->src_name = t->name;
    out->fmt = t->fmt;
    out->n_dims = t->n_dims;
    memcpy(out->shape, t->shape, sizeof(out->shape));
    out->data = data;
    out->nbytes = t->nbytes;
    out->flags = t->halves ? BT_TENSOR_ROPE_HALVES : 0;
    out->n_parts = t->n_parts;
    for (uint32_t k = 0; k < t->n_parts; k++) {
        out->parts[k] = pdata[k];
        out->part_bytes[k] = g->t[t->part[k]].nbytes;
    }
    const struct bt_format *f = gguf_fmt(g->host, t->fmt.type);
    if (f && BT_HAS(f, check) && !__atomic_load_n(&t->checked, __ATOMIC_ACQUIRE)) {
        char why[200] = "";
        int64_t rows = 1;
        for (uint32_t d = 0; d + 1 < t->n_dims; d++) rows *= t->shape[d];
        st = f->check(&t->fmt, t->n_parts ? out->parts : NULL, data, rows, t->shape[t->n_dims - 1], why, sizeof(why));
        if (st)
            return g->host->set_error(err, st, "gguf: %s: tensor '%s': corrupt %s data: %s", g->path, t->name,
                                      f->name, why);
        __atomic_store_n(&t->checked, 1, __ATOMIC_RELEASE);
    }
    return BT_OK;
}

static bt_status gr_kv_get(void *ctx, uint32_t i, struct bt_kv *out) {
    struct gr_ctx *g = ctx;
    if (i >= g->n_kv) return BT_E_INVAL;
    *out = g->kv[i];
    return BT_OK;
}

static void release_one(struct gr_ctx *g, struct gr_tensor *t) {
    if (!t->nbytes) return;
    if (t->zbytes || t->i2s) { /* drop the decoded copy; a later get decodes again */
        pthread_mutex_lock(&g->lock);
        g->host->free(t->zdata);
        t->zdata = NULL;
        pthread_mutex_unlock(&g->lock);
        return;
    }
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)(g->map + g->data + t->offset);
    uintptr_t b = a + t->nbytes;
    a &= ~(pg - 1);
    b = (b + pg - 1) & ~(pg - 1);
    madvise((void *)a, (size_t)(b - a), MADV_DONTNEED); /* read-only file pages: refault on use */
}

/* tensor i and its parts are done */
static void gr_release(void *ctx, uint32_t i) {
    struct gr_ctx *g = ctx;
    if (i >= g->n_vis) return;
    struct gr_tensor *t = &g->t[g->vis[i]];
    release_one(g, t);
    for (uint32_t k = 0; k < t->n_parts; k++) release_one(g, &g->t[t->part[k]]);
}

static const struct bt_reader_i gr_iface = {
    .struct_size = sizeof(struct bt_reader_i),
    .probe = gr_probe,
    .open = gr_open,
    .close = gr_close,
    .tensor_count = gr_tensor_count,
    .tensor_get = gr_tensor_get,
    .kv_count = gr_kv_count,
    .kv_get = gr_kv_get,
    .read_f32 = gr_read_f32, /* decodes through the descriptor, with the tensor's parts */
    .release = gr_release,
};

static const struct bt_option gr_options[] = {
    {"i2s_layout", BT_OPT_ENUM, "x86", 0, -1, "x86|arm|x86-1x4",
     "code order of bitnet.cpp I2_S tensors (the build that wrote the file: x86 AVX2 = x86, ARM "
     "NEON = arm, x86 without ACT_PARALLEL = x86-1x4)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const struct bt_plugin gr_desc = {
    .abi_version = BT_ABI_VERSION,
    .struct_size = sizeof(struct bt_plugin),
    .name = "gguf",
    .version = "0.1.0",
    .kind = BT_KIND_READER,
    .caps = 0,
    .description = "GGUF v2/v3 reader (strict), incl. TQ1_0/TQ2_0, bt MTQ and plugin formats",
    .options = gr_options,
    .iface = &gr_iface,
    .ctx_size = sizeof(struct gr_ctx),
};

BT_PLUGIN_DEFINE(gr_desc)
