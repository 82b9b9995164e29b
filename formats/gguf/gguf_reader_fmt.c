/* gguf_reader_fmt.c - the gguf reader's format logic, driven by the struct bt_format descriptors
 * the host knows (built-ins and plugin formats): I8 tensors named by a bt.mtq.<name> key (MTQ,
 * the original layout) or by bt.fmt.<name> + bt.fmt_args.<name> (any format, by name) get their
 * bt format and logical shape back; the extra parts a format declares are found as 1-D I8
 * tensors "<name>.<part>", checked against part_info and attached to their tensor (they are not
 * listed themselves); read_f32 decodes through the descriptor with the parts. Layout:
 * docs/formats.md "Formats without a ggml type". */
#include "gguf_reader.h"

#include <stdio.h>
#include <string.h>

/* rows (all but the last dim) of t */
static int64_t t_rows(const struct gr_tensor *t) {
    int64_t r = 1;
    for (uint32_t d = 0; d + 1 < t->n_dims; d++) r *= t->shape[d];
    return r;
}

/* t, an I8 tensor of rows of packed bytes, gets format fmt (descriptor f) with cols logical
 * columns; key is the key that says so (for messages) */
static bt_status set_format(struct gr_ctx *g, struct gr_tensor *t, const struct bt_format *f,
                            const struct bt_tfmt *fmt, uint32_t cols, const char *key, bt_err *err) {
    const struct bt_host *h = g->host;
    char fs[64];
    gguf_fmt_str(h, fmt, fs, sizeof(fs));
    if (t->has_fmt)
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': more than one format key "
                            "(%s)", g->path, t->name, key);
    if (!(f->flags & BT_FMT_PARAMS) && (fmt->planes || fmt->block || fmt->layout))
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': format '%s' takes no "
                            "parameters, key '%s' gives %u/%u/%u", g->path, t->name, f->name, key,
                            fmt->planes, fmt->block, fmt->layout);
    uint64_t rb = gguf_row_bytes(h, fmt, cols);
    if (t->ggml != GGML_I8 || !rb || rb != (uint64_t)t->shape[t->n_dims - 1])
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': format %s (%u/%u/%u) with %u "
                            "columns does not match its i8 rows of %lld bytes (key '%s')", g->path,
                            t->name, fs, fmt->planes, fmt->block, fmt->layout, cols,
                            (long long)t->shape[t->n_dims - 1], key);
    t->fmt = *fmt;
    t->shape[t->n_dims - 1] = cols;
    t->has_fmt = 1;
    return BT_OK;
}

/* the tensor a "<prefix><name>" key names (-1 if none) */
static int64_t key_tensor(const struct gguf_nameset *names, const char *key, size_t pl) {
    return gguf_nameset_get(names, key + pl, strlen(key + pl));
}

static int is_u32x4(const struct bt_kv *kv) {
    return kv->type == BT_KV_ARRAY && kv->arr_type == BT_KV_U32 && kv->n == 4;
}

/* bt.fmt_args.* (remembered per tensor), bt.mtq.*, bt.fmt.* */
static bt_status apply_keys(struct gr_ctx *g, const struct gguf_nameset *names, bt_err *err) {
    const struct bt_host *h = g->host;
    size_t pa = strlen(GGUF_FMT_ARGS_PREFIX), pm = strlen(GGUF_MTQ_PREFIX), pf = strlen(GGUF_FMT_PREFIX);
    for (uint32_t i = 0; i < g->n_kv; i++) {
        const struct bt_kv *kv = &g->kv[i];
        if (strncmp(kv->key, GGUF_FMT_ARGS_PREFIX, pa) != 0) continue;
        int64_t ti = key_tensor(names, kv->key, pa);
        if (!is_u32x4(kv) || ti < 0)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: key '%s' must be a u32[4] array "
                                "naming an existing tensor", g->path, kv->key);
        g->t[ti].args_kv = (int32_t)i;
    }
    for (uint32_t i = 0; i < g->n_kv; i++) { /* bt.mtq.<name> = [planes, block, layout, cols] */
        const struct bt_kv *kv = &g->kv[i];
        if (strncmp(kv->key, GGUF_MTQ_PREFIX, pm) != 0) continue;
        int64_t ti = key_tensor(names, kv->key, pm);
        const struct bt_format *f = gguf_fmt(h, BT_TYPE_MTQ);
        if (!is_u32x4(kv) || ti < 0 || !f)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: key '%s' must be a u32[4] array "
                                "naming an existing tensor", g->path, kv->key);
        uint32_t v[4];
        memcpy(v, kv->v.arr, sizeof(v));
        struct bt_tfmt fmt = {BT_TYPE_MTQ, v[0], v[1], v[2]};
        bt_status st = set_format(g, &g->t[ti], f, &fmt, v[3], kv->key, err);
        if (st) return st;
    }
    for (uint32_t i = 0; i < g->n_kv; i++) { /* bt.fmt.<name> = "format name" */
        const struct bt_kv *kv = &g->kv[i];
        if (strncmp(kv->key, GGUF_FMT_PREFIX, pf) != 0) continue;
        int64_t ti = key_tensor(names, kv->key, pf);
        if (kv->type != BT_KV_STRING || ti < 0)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: key '%s' must be a string naming an "
                                "existing tensor", g->path, kv->key);
        struct gr_tensor *t = &g->t[ti];
        if (t->args_kv < 0)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': key '%s' needs a key "
                                "'%s%s'", g->path, t->name, kv->key, GGUF_FMT_ARGS_PREFIX, t->name);
        const struct bt_format *f = gguf_fmt_by_name(h, kv->v.s);
        if (!f)
            return h->set_error(err, BT_E_UNSUPPORTED, "gguf: %s: tensor '%s': format '%.64s' is "
                                "not known (is its plugin loaded?)", g->path, t->name, kv->v.s);
        uint32_t v[4];
        memcpy(v, g->kv[t->args_kv].v.arr, sizeof(v));
        struct bt_tfmt fmt = {f->type, v[0], v[1], v[2]};
        bt_status st = set_format(g, t, f, &fmt, v[3], kv->key, err);
        if (st) return st;
        t->args_kv = -2; /* used */
    }
    size_t ph = strlen(GGUF_HALVES_PREFIX);
    for (uint32_t i = 0; i < g->n_kv; i++) { /* bt.rope_halves.<name> = true */
        const struct bt_kv *kv = &g->kv[i];
        if (strncmp(kv->key, GGUF_HALVES_PREFIX, ph) != 0) continue;
        int64_t ti = key_tensor(names, kv->key, ph);
        if (kv->type != BT_KV_BOOL || ti < 0)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: key '%s' must be a bool naming an "
                                "existing tensor", g->path, kv->key);
        g->t[ti].halves = kv->v.u != 0;
    }
    for (uint32_t i = 0; i < g->n_t; i++)
        if (g->t[i].args_kv >= 0)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': key '%s' without a key "
                                "'%s%s'", g->path, g->t[i].name, g->kv[g->t[i].args_kv].key,
                                GGUF_FMT_PREFIX, g->t[i].name);
    return BT_OK;
}

/* find, check and attach the extra parts of tensor i */
static bt_status attach_parts(struct gr_ctx *g, const struct gguf_nameset *names, uint32_t i,
                              bt_err *err) {
    const struct bt_host *h = g->host;
    struct gr_tensor *t = &g->t[i];
    const struct bt_format *f = gguf_fmt(h, t->fmt.type);
    uint32_t np = gguf_fmt_parts(f, &t->fmt);
    if (!np) return BT_OK;
    if (np > BT_MAX_PARTS)
        return h->set_error(err, BT_E_PLUGIN, "gguf: %s: tensor '%s': format '%s' declares %u "
                            "extra parts (at most %u)", g->path, t->name, f->name, np,
                            BT_MAX_PARTS);
    for (uint32_t k = 0; k < np; k++) {
        const char *pn = NULL;
        uint64_t want = 0;
        bt_status st = f->part_info(&t->fmt, t_rows(t), t->shape[t->n_dims - 1], k, &pn, &want);
        if (st || !pn)
            return h->set_error(err, st ? st : BT_E_PLUGIN, "gguf: %s: tensor '%s': format '%s' "
                                "gives no part %u", g->path, t->name, f->name, k);
        char pname[256];
        int n = snprintf(pname, sizeof(pname), "%s.%s", t->name, pn);
        int64_t j = n > 0 && n < (int)sizeof(pname) ? gguf_nameset_get(names, pname, (size_t)n) : -1;
        if (j < 0)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': part '%s' of format '%s' "
                                "is missing (no tensor '%s')", g->path, t->name, pn, f->name, pname);
        struct gr_tensor *p = &g->t[j];
        if (p->is_part || (uint32_t)j == i || p->ggml != GGML_I8 || p->n_dims != 1 || p->has_fmt)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': part '%s' (tensor '%s') "
                                "must be a 1-D i8 tensor of its own", g->path, t->name, pn, pname);
        if (p->nbytes != want)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': part '%s' (tensor '%s') "
                                "has %llu bytes, format '%s' needs %llu", g->path, t->name, pn,
                                pname, (unsigned long long)p->nbytes, f->name,
                                (unsigned long long)want);
        p->is_part = 1;
        t->part[k] = (uint32_t)j;
    }
    t->n_parts = np;
    return BT_OK;
}

bt_status gr_apply_formats(struct gr_ctx *g, const struct gguf_nameset *names, bt_err *err) {
    const struct bt_host *h = g->host;
    for (uint32_t i = 0; i < g->n_t; i++) g->t[i].args_kv = -1;
    bt_status st = apply_keys(g, names, err);
    for (uint32_t i = 0; !st && i < g->n_t; i++) st = attach_parts(g, names, i, err);
    if (st) return st;
    if (!(g->vis = h->alloc((size_t)(g->n_t ? g->n_t : 1) * sizeof(*g->vis))))
        return h->set_error(err, BT_E_NOMEM, "gguf: %s: out of memory", g->path);
    g->n_vis = 0;
    for (uint32_t i = 0; i < g->n_t; i++)
        if (!g->t[i].is_part) g->vis[g->n_vis++] = i;
    return BT_OK;
}

bt_status gr_read_f32(void *ctx, uint32_t i, int64_t row0, int64_t nrows, float *dst,
                      bt_err *err) {
    struct gr_ctx *g = ctx;
    const struct bt_host *h = g->host;
    struct bt_tensor t;
    bt_status st = gr_tensor_get(ctx, i, &t, err);
    if (st) return st;
    int64_t rows = 1, cols = t.shape[t.n_dims - 1];
    for (uint32_t d = 0; d + 1 < t.n_dims; d++) rows *= t.shape[d];
    if (row0 < 0 || nrows < 0 || row0 > rows - nrows)
        return h->set_error(err, BT_E_INVAL, "gguf: %s: tensor '%s': rows %lld..%lld out of range "
                            "(%lld rows)", g->path, t.name, (long long)row0,
                            (long long)(row0 + nrows), (long long)rows);
    const struct bt_format *f = gguf_fmt(h, t.fmt.type);
    uint64_t rb = gguf_row_bytes(h, &t.fmt, cols);
    char fs[64];
    gguf_fmt_str(h, &t.fmt, fs, sizeof(fs));
    if (t.fmt.type == BT_TYPE_GGML)
        return h->set_error(err, BT_E_UNSUPPORTED, "gguf: %s: tensor '%s' is of ggml type %s, "
                            "which bt cannot decode (the IQ1/IQ2/IQ3 types are defined by lookup "
                            "grids bt does not carry); re-quantize the model to a type bt reads "
                            "(q4_K, q5_K, q6_K, q8_0, iq4_xs, f16, ...) first", g->path, t.name, fs);
    if (!f || !f->to_f32 || !rb || !t.data)
        return h->set_error(err, BT_E_UNSUPPORTED, "gguf: %s: tensor '%s': cannot read type %s as "
                            "f32", g->path, t.name, fs);
    st = bt_format_rows_to_f32(f, &t.fmt, t.n_parts ? t.parts : NULL, t.data, rows, cols, row0,
                               nrows, dst);
    if (st)
        return h->set_error(err, st, "gguf: %s: tensor '%s': cannot convert %s to f32", g->path,
                            t.name, fs);
    return BT_OK;
}
