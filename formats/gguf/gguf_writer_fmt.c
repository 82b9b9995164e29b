/* gguf_writer_fmt.c - the gguf writer's format logic, driven by the struct bt_format descriptors
 * the host knows (built-ins and plugin formats): which ggml type a tensor gets (its descriptor's
 * gguf_type, or I8 rows of its packed bytes plus format keys), the checks of its shape, size and
 * extra parts (stored as 1-D I8 tensors "<name>.<part>"), and the format keys written at finish:
 * bt.mtq.<name> (MTQ, kept for existing files and tools) and bt.fmt.<name> / bt.fmt_args.<name>
 * (every other format without a ggml type). Layout: docs/formats.md "Formats without a ggml
 * type". */
#include "gguf_writer.h"
#include "bt_types.h"

#include <stdio.h>
#include <string.h>

const char *gw_store_how(const struct bt_host *h, const struct bt_tfmt *fmt, uint32_t *ggml,
                         uint32_t *how) {
    const struct bt_format *f = gguf_fmt(h, fmt->type);
    uint32_t b, bb;
    if (!f) return "is not a known format (is its plugin loaded?)";
    if (!gguf_fmt_geom(f, fmt, &b, &bb)) return "has invalid parameters";
    if (f->gguf_type != BT_GGUF_NONE && !fmt->planes && !fmt->block && !fmt->layout) {
        const struct gguf_type_info *ti = gguf_type(f->gguf_type);
        if (!ti) return "maps to a ggml type id this writer does not know";
        if (ti->block && (ti->block != b || ti->bytes != bb))
            return "has a block geometry that differs from its ggml type's";
        *ggml = f->gguf_type;
        *how = GW_NATIVE;
        return NULL;
    }
    if (f->type == BT_TYPE_GGML) { /* a ggml type bt does not decode: copied as it came */
        *ggml = fmt->planes;
        *how = GW_NATIVE;
        return NULL;
    }
    if (!(f->flags & BT_FMT_WEIGHT)) return "has no ggml type and is not a weight format";
    *ggml = GGML_I8;
    *how = f->type == BT_TYPE_MTQ ? GW_MTQ : GW_GENERIC;
    return NULL;
}

static int part_name_ok(const char *s) {
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return 0;
    return 1;
}

/* t's extra parts against its format's part_info (count, names, sizes); part tensor names into
 * pnames (unique, short enough, not taken) */
static bt_status check_parts(struct gw_ctx *c, const struct bt_tensor *t, const struct bt_format *f,
                             uint64_t rows, int64_t cols, char pnames[BT_MAX_PARTS][GGUF_MAX_NAME],
                             bt_err *err) {
    const struct bt_host *h = c->host;
    uint32_t np = gguf_fmt_parts(f, &t->fmt);
    if (np > BT_MAX_PARTS)
        return h->set_error(err, BT_E_PLUGIN, "gguf: %s: tensor '%s': format '%s' declares %u "
                            "extra parts (at most %u)", c->path, t->name, f->name, np,
                            BT_MAX_PARTS);
    if (t->n_parts != np)
        return h->set_error(err, BT_E_INVAL, "gguf: %s: tensor '%s': format '%s' has %u extra "
                            "parts, the tensor carries %u", c->path, t->name, f->name, np,
                            t->n_parts);
    for (uint32_t k = 0; k < np; k++) {
        const char *pn = NULL;
        uint64_t want = 0;
        bt_status st = f->part_info(&t->fmt, (int64_t)rows, cols, k, &pn, &want);
        if (st || !part_name_ok(pn) || !want || want > ((uint64_t)1 << 40))
            return h->set_error(err, st ? st : BT_E_PLUGIN, "gguf: %s: tensor '%s': format '%s' "
                                "gives no valid part %u (name '%s', %llu bytes)", c->path, t->name,
                                f->name, k, pn ? pn : "(null)", (unsigned long long)want);
        if (!t->parts[k] || t->part_bytes[k] != want)
            return h->set_error(err, BT_E_INVAL, "gguf: %s: tensor '%s': part '%s' has %llu bytes"
                                "%s, format '%s' needs %llu", c->path, t->name, pn,
                                (unsigned long long)t->part_bytes[k], t->parts[k] ? "" : " (NULL)",
                                f->name, (unsigned long long)want);
        int n = snprintf(pnames[k], GGUF_MAX_NAME, "%s.%s", t->name, pn);
        if (n < 0 || n >= (int)GGUF_MAX_NAME)
            return h->set_error(err, BT_E_INVAL, "gguf: %s: tensor '%s': part tensor name '%s.%s' "
                                "must be shorter than %u bytes", c->path, t->name, t->name, pn,
                                GGUF_MAX_NAME);
        int taken = gguf_nameset_get(&c->names, pnames[k], (size_t)n) >= 0;
        for (uint32_t j = 0; j < k; j++) taken |= strcmp(pnames[j], pnames[k]) == 0;
        if (taken)
            return h->set_error(err, BT_E_INVAL, "gguf: %s: tensor '%s': part tensor name '%s' is "
                                "taken", c->path, t->name, pnames[k]);
    }
    return BT_OK;
}

bt_status gw_make_record(struct gw_ctx *c, const struct bt_tensor *t, struct gw_tensor *r,
                         char pnames[BT_MAX_PARTS][GGUF_MAX_NAME], bt_err *err) {
    const struct bt_host *h = c->host;
    const char *nm = t->name;
    size_t nlen = nm ? strlen(nm) : 0;
    if (!nlen || nlen >= GGUF_MAX_NAME)
        return h->set_error(err, BT_E_INVAL, "gguf: %s: tensor name '%s' must be 1..%u bytes",
                            c->path, nm ? nm : "(null)", GGUF_MAX_NAME - 1);
    if (gguf_nameset_get(&c->names, nm, nlen) >= 0)
        return h->set_error(err, BT_E_INVAL, "gguf: %s: duplicate tensor '%s'", c->path, nm);
    uint32_t ggml = 0, how = 0;
    const char *why = gw_store_how(h, &t->fmt, &ggml, &how);
    if (why) {
        char fs[64];
        gguf_fmt_str(h, &t->fmt, fs, sizeof(fs));
        return h->set_error(err, BT_E_UNSUPPORTED, "gguf: %s: tensor '%s': type %s cannot be "
                            "stored in GGUF: it %s", c->path, nm, fs, why);
    }
    if (t->n_dims < 1 || t->n_dims > BT_MAX_DIMS)
        return h->set_error(err, BT_E_INVAL, "gguf: %s: tensor '%s': %u dims (1..4 allowed)",
                            c->path, nm, t->n_dims);
    uint64_t rows = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->shape[d] <= 0 || t->shape[d] > (int64_t)1 << 40)
            return h->set_error(err, BT_E_INVAL, "gguf: %s: tensor '%s': bad dim %lld", c->path,
                                nm, (long long)t->shape[d]);
        if (d + 1 < t->n_dims) rows *= (uint64_t)t->shape[d];
    }
    int64_t cols = t->shape[t->n_dims - 1];
    uint64_t rb = gguf_row_bytes(h, &t->fmt, cols);
    const struct bt_format *f = gguf_fmt(h, t->fmt.type);
    if (!rb || rows > UINT64_MAX / rb / 2)
        return h->set_error(err, BT_E_INVAL, "gguf: %s: tensor '%s': %lld columns is not a whole "
                            "number of %s blocks", c->path, nm, (long long)cols, f->name);
    if (how != GW_NATIVE && (uint64_t)cols > UINT32_MAX)
        return h->set_error(err, BT_E_UNSUPPORTED, "gguf: %s: tensor '%s': %lld columns do not fit "
                            "the u32 of its format key", c->path, nm, (long long)cols);
    if (t->nbytes != rows * rb || (t->nbytes && !t->data))
        return h->set_error(err, BT_E_INVAL, "gguf: %s: tensor '%s': %llu bytes given, %llu "
                            "expected", c->path, nm, (unsigned long long)t->nbytes,
                            (unsigned long long)(rows * rb));
    if (pnames) {
        bt_status st = check_parts(c, t, f, rows, cols, pnames, err);
        if (st) return st;
    } else if (t->n_parts) {
        return h->set_error(err, BT_E_INVAL, "gguf: %s: tensor '%s': a part has parts", c->path, nm);
    }
    memset(r, 0, sizeof(*r));
    r->ggml = ggml;
    r->how = how;
    r->n_dims = t->n_dims;
    for (uint32_t d = 0; d < t->n_dims; d++) r->ne[d] = (uint64_t)t->shape[t->n_dims - 1 - d];
    if (how != GW_NATIVE) r->ne[0] = rb; /* stored as I8 rows of rb bytes */
    r->nbytes = t->nbytes;
    r->fmt = t->fmt;
    r->cols = cols;
    r->halves = t->n_parts && (t->flags & BT_TENSOR_ROPE_HALVES); /* rows cannot be permuted */
    snprintf(r->fname, sizeof(r->fname), "%s", f->name);
    return BT_OK;
}

uint64_t gw_fmt_key_count(const struct gw_ctx *c) {
    uint64_t n = 0;
    for (uint32_t i = 0; i < c->nt; i++)
        n += (c->t[i].how == GW_MTQ ? 1 : c->t[i].how == GW_GENERIC ? 2 : 0) + c->t[i].halves;
    return n;
}

static void put_u32x4(struct gguf_sink *out, const struct bt_host *h, const char *prefix,
                      const char *name, const uint32_t v[4]) {
    char key[128];
    snprintf(key, sizeof(key), "%s%s", prefix, name);
    gguf_put_str(out, h, key, strlen(key));
    gguf_put_u32(out, h, BT_KV_ARRAY);
    gguf_put_u32(out, h, BT_KV_U32);
    gguf_put_u64(out, h, 4);
    for (int k = 0; k < 4; k++) gguf_put_u32(out, h, v[k]);
}

/* bt.mtq.* first (as before), then bt.fmt.* / bt.fmt_args.* pairs, then bt.rope_halves.*, all
 * in tensor order */
void gw_put_fmt_keys(struct gw_ctx *c, struct gguf_sink *out) {
    const struct bt_host *h = c->host;
    for (int pass = 0; pass < 3; pass++)
        for (uint32_t i = 0; i < c->nt; i++) {
            const struct gw_tensor *t = &c->t[i];
            uint32_t v[4] = {t->fmt.planes, t->fmt.block, t->fmt.layout, (uint32_t)t->cols};
            if (pass == 2 && t->halves) {
                char key[128];
                snprintf(key, sizeof(key), "%s%s", GGUF_HALVES_PREFIX, t->name);
                gguf_put_str(out, h, key, strlen(key));
                gguf_put_u32(out, h, BT_KV_BOOL);
                uint8_t one = 1;
                gguf_sink_put(out, h, &one, 1);
            }
            if (pass == 2) continue;
            if (pass == 0 && t->how == GW_MTQ) put_u32x4(out, h, GGUF_MTQ_PREFIX, t->name, v);
            if (pass == 0 || t->how != GW_GENERIC) continue;
            char key[128];
            snprintf(key, sizeof(key), "%s%s", GGUF_FMT_PREFIX, t->name);
            gguf_put_str(out, h, key, strlen(key));
            gguf_put_u32(out, h, BT_KV_STRING);
            gguf_put_str(out, h, t->fname, strlen(t->fname));
            put_u32x4(out, h, GGUF_FMT_ARGS_PREFIX, t->name, v);
        }
}
