/* instances.c - opening plugin instances: the core allocates each instance's zeroed ctx
 * (ctx_size), owns its option set, and picks "auto" readers/backends by probe/score. */
#include "bt/bt.h"
#include "bt_types.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int64_t bt_tensor_numel(const struct bt_tensor *t) {
    int64_t n = 1;
    for (uint32_t i = 0; i < t->n_dims; i++) n *= t->shape[i];
    return n;
}
int64_t bt_tensor_cols(const struct bt_tensor *t) { return t->n_dims ? t->shape[t->n_dims - 1] : 1; }
int64_t bt_tensor_rows(const struct bt_tensor *t) {
    int64_t c = bt_tensor_cols(t);
    return c ? bt_tensor_numel(t) / c : 0;
}

/* common part of every instance struct */
struct inst {
    const struct bt_plugin_entry *entry;
    const void                   *i;
    void                         *ctx;
    bt_optset                    *opts;
};

static bt_status inst_new(const struct bt_plugin_entry *e, bt_optset *opts, struct inst **out,
                          size_t size, bt_err *err) {
    struct inst *in = calloc(1, size);
    void *ctx = calloc(1, e->desc->ctx_size ? e->desc->ctx_size : 1);
    if (!opts) opts = bt_optset_new(e->desc->options);
    if (!in || !ctx || !opts) {
        free(in);
        free(ctx);
        bt_optset_free(opts);
        return bt_err_set(err, BT_E_NOMEM, "out of memory");
    }
    bt_status st = bt_optset_check_required(opts, err);
    if (st != BT_OK) {
        free(in);
        free(ctx);
        bt_optset_free(opts);
        return st;
    }
    in->entry = e;
    in->i = e->desc->iface;
    in->ctx = ctx;
    in->opts = opts;
    *out = in;
    return BT_OK;
}

static void inst_free(struct inst *in) {
    if (!in) return;
    free(in->ctx);
    bt_optset_free(in->opts);
    free(in);
}

static const struct bt_plugin_entry *need(bt_registry *reg, uint32_t kind, const char *name,
                                          bt_err *err) {
    const struct bt_plugin_entry *e = bt_registry_find(reg, kind, name);
    if (!e) {
        char list[512] = "";
        for (uint32_t i = 0; i < bt_registry_count(reg); i++) {
            const struct bt_plugin_entry *x = bt_registry_at(reg, i);
            if (x->desc->kind != kind) continue;
            if (*list) strncat(list, ", ", sizeof(list) - strlen(list) - 1);
            strncat(list, x->desc->name, sizeof(list) - strlen(list) - 1);
        }
        bt_err_set(err, BT_E_PLUGIN, "no %s plugin named '%s' (available: %s)", bt_kind_name(kind),
                   name, *list ? list : "none");
    }
    return e;
}

/* ---- readers ------------------------------------------------------------------------------- */
bt_status bt_reader_open(bt_registry *reg, const char *name, const char *path, bt_optset *opts,
                         struct bt_reader **out, bt_err *err) {
    *out = NULL;
    const struct bt_plugin_entry *e = NULL;
    struct stat sb;
    if (path && stat(path, &sb) != 0) { /* said in the user's words, before any reader guesses */
        int en = errno;
        bt_optset_free(opts);
        return bt_err_set(err, BT_E_IO, "%s: %s", path, en == ENOENT || en == ENOTDIR
                          ? "does not exist (check the path: a model folder or a .gguf file)" : strerror(en));
    }
    if (!name || !strcmp(name, "auto")) {
        if (!(e = bt_registry_probe_reader(reg, path))) {
            bt_optset_free(opts);
            return bt_err_set(err, BT_E_UNSUPPORTED, "%s: no reader recognizes this input (is it a safetensors model folder or a .gguf file?)", path);
        }
    } else if (!(e = need(reg, BT_KIND_READER, name, err))) {
        bt_optset_free(opts);
        return err->status;
    }
    struct inst *in = NULL;
    bt_status st = inst_new(e, opts, &in, sizeof(struct bt_reader), err);
    if (st) return st;
    const struct bt_reader_i *ri = in->i;
    st = ri->open(in->ctx, bt_host(), in->opts, path, err);
    if (st != BT_OK) {
        if (err->status == BT_OK) bt_err_set(err, st, "%s: reader '%s' failed: %s", path, e->desc->name, bt_status_str(st));
        inst_free(in);
        return st;
    }
    *out = (struct bt_reader *)in;
    return BT_OK;
}

void bt_reader_close(struct bt_reader *r) {
    if (!r) return;
    r->i->close(r->ctx);
    inst_free((struct inst *)r);
}

int64_t bt_reader_find(struct bt_reader *r, const char *name) {
    uint32_t n = r->i->tensor_count(r->ctx);
    for (uint32_t i = 0; i < n; i++) {
        struct bt_tensor t;
        if (r->i->tensor_get(r->ctx, i, &t, NULL) == BT_OK && t.name && !strcmp(t.name, name)) return i;
    }
    return -1;
}

const struct bt_kv *bt_reader_kv(struct bt_reader *r, const char *key, struct bt_kv *tmp) {
    uint32_t n = r->i->kv_count(r->ctx);
    for (uint32_t i = 0; i < n; i++)
        if (r->i->kv_get(r->ctx, i, tmp) == BT_OK && tmp->key && !strcmp(tmp->key, key)) return tmp;
    return NULL;
}

bt_status bt_reader_read_f32(struct bt_reader *r, uint32_t i, int64_t row0, int64_t nrows,
                             float *dst, bt_err *err) {
    if (BT_HAS(r->i, read_f32)) return r->i->read_f32(r->ctx, i, row0, nrows, dst, err);
    struct bt_tensor t;
    bt_status st = r->i->tensor_get(r->ctx, i, &t, err);
    if (st) return st;
    int64_t rows = bt_tensor_rows(&t), cols = bt_tensor_cols(&t);
    if (row0 < 0 || nrows < 0 || row0 + nrows > rows)
        return bt_err_set(err, BT_E_INVAL, "%s: rows %lld..%lld out of range", t.name, (long long)row0, (long long)(row0 + nrows));
    size_t rb = bt_fmt_row_bytes(&t.fmt, cols);
    if (!rb || !t.data)
        return bt_err_set(err, BT_E_UNSUPPORTED, "%s: cannot read as f32 (type %s)", t.name, bt_type_name(t.fmt.type));
    st = bt_fmt_rows_to_f32(&t.fmt, t.n_parts ? t.parts : NULL, t.data, rows, cols, row0, nrows, dst);
    if (st) return bt_err_set(err, st, "%s: cannot convert %s to f32", t.name, bt_type_name(t.fmt.type));
    return BT_OK;
}

/* ---- writers ------------------------------------------------------------------------------- */
bt_status bt_writer_open(bt_registry *reg, const char *name, const char *path, bt_optset *opts,
                         const struct bt_kv *kvs, uint32_t n_kv, uint32_t n_tensors,
                         struct bt_writer **out, bt_err *err) {
    *out = NULL;
    const struct bt_plugin_entry *e = need(reg, BT_KIND_WRITER, name, err);
    if (!e) { bt_optset_free(opts); return err->status; }
    struct inst *in = NULL;
    bt_status st = inst_new(e, opts, &in, sizeof(struct bt_writer), err);
    if (st) return st;
    const struct bt_writer_i *wi = in->i;
    st = wi->open(in->ctx, bt_host(), in->opts, path, kvs, n_kv, n_tensors, err);
    if (st != BT_OK) {
        if (err->status == BT_OK) bt_err_set(err, st, "%s: writer '%s' failed: %s", path, name, bt_status_str(st));
        inst_free(in);
        return st;
    }
    *out = (struct bt_writer *)in;
    return BT_OK;
}

void bt_writer_close(struct bt_writer *w) {
    if (!w) return;
    w->i->close(w->ctx);
    inst_free((struct inst *)w);
}

/* ---- quantizers ---------------------------------------------------------------------------- */
bt_status bt_quantizer_open(bt_registry *reg, const char *name, bt_optset *opts,
                            struct bt_quantizer **out, bt_err *err) {
    *out = NULL;
    const struct bt_plugin_entry *e = need(reg, BT_KIND_QUANTIZER, name, err);
    if (!e) { bt_optset_free(opts); return err->status; }
    struct inst *in = NULL;
    bt_status st = inst_new(e, opts, &in, sizeof(struct bt_quantizer), err);
    if (st) return st;
    const struct bt_quantizer_i *qi = in->i;
    st = qi->open(in->ctx, bt_host(), in->opts, err);
    if (st != BT_OK) {
        if (err->status == BT_OK) bt_err_set(err, st, "quantizer '%s' failed to open", name);
        inst_free(in);
        return st;
    }
    *out = (struct bt_quantizer *)in;
    return BT_OK;
}

void bt_quantizer_close(struct bt_quantizer *q) {
    if (!q) return;
    q->i->close(q->ctx);
    inst_free((struct inst *)q);
}

/* ---- backends ------------------------------------------------------------------------------- */
static bt_status backend_try(const struct bt_plugin_entry *e, bt_optset *opts,
                             struct bt_backend **out, bt_err *err) {
    struct inst *in = NULL;
    bt_status st = inst_new(e, opts, &in, sizeof(struct bt_backend), err);
    if (st) return st;
    const struct bt_backend_i *bi = in->i;
    st = bi->open(in->ctx, bt_host(), in->opts, err);
    if (st != BT_OK) {
        if (err->status == BT_OK) bt_err_set(err, st, "backend '%s' failed to open", e->desc->name);
        inst_free(in);
        return st;
    }
    *out = (struct bt_backend *)in;
    return BT_OK;
}

bt_status bt_backend_open(bt_registry *reg, const char *name, bt_optset *opts,
                          struct bt_backend **out, bt_err *err) {
    return bt_backend_open_skip(reg, name, opts, NULL, 0, out, err);
}

bt_status bt_backend_open_skip(bt_registry *reg, const char *name, bt_optset *opts,
                               const char *const *skip, int n_skip, struct bt_backend **out,
                               bt_err *err) {
    *out = NULL;
    if (name && strcmp(name, "auto") != 0) {
        const struct bt_plugin_entry *e = need(reg, BT_KIND_BACKEND, name, err);
        if (!e) { bt_optset_free(opts); return err->status; }
        return backend_try(e, opts, out, err);
    }
    bt_optset_free(opts); /* auto: every candidate gets its own defaults */
    /* candidates by descending score; the first that opens wins */
    uint32_t n = bt_registry_count(reg);
    int *tried = calloc(n + 1, sizeof(int));
    if (!tried) return bt_err_set(err, BT_E_NOMEM, "out of memory");
    for (;;) {
        const struct bt_plugin_entry *best = NULL;
        int best_score = 0;
        uint32_t best_i = 0;
        for (uint32_t i = 0; i < n; i++) {
            const struct bt_plugin_entry *x = bt_registry_at(reg, i);
            if (x->desc->kind != BT_KIND_BACKEND || tried[i]) continue;
            int skipped = 0;
            for (int k = 0; k < n_skip && !skipped; k++) skipped = !strcmp(skip[k], x->desc->name);
            if (skipped) continue;
            const struct bt_backend_i *bi = x->desc->iface;
            int s = BT_HAS(bi, score) ? bi->score() : 1;
            if (s > best_score) { best_score = s; best = x; best_i = i; }
        }
        if (!best) break;
        tried[best_i] = 1;
        bt_err e2;
        bt_err_clear(&e2);
        if (backend_try(best, NULL, out, &e2) == BT_OK) {
            bt_log(BT_LOG_INFO, "backend auto: using '%s'", best->desc->name);
            free(tried);
            return BT_OK;
        }
        bt_log(BT_LOG_INFO, "backend auto: '%s' unavailable: %s", best->desc->name, e2.msg);
    }
    free(tried);
    return bt_err_set(err, BT_E_BACKEND, "no compute backend could be opened (is the plugin folder present?)");
}

void bt_backend_close(struct bt_backend *b) {
    if (!b) return;
    b->i->close(b->ctx);
    inst_free((struct inst *)b);
}

void bt_reader_release(struct bt_reader *r, uint32_t i) {
    if (BT_HAS(r->i, release)) r->i->release(r->ctx, i);
}

int bt_writer_supports(struct bt_writer *w, const struct bt_tfmt *fmt) {
    if (BT_HAS(w->i, supports)) return w->i->supports(w->ctx, fmt);
    return fmt->type == BT_TYPE_F32 || fmt->type == BT_TYPE_F16 || fmt->type == BT_TYPE_BF16;
}
