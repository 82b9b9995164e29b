/* convert.c - the conversion stage. Per tensor: decide quantize / keep, read f32 rows in
 * chunks (parallel), quantize or convert them into the packed output, hand the packed tensor to
 * the writer, then let the reader drop the source pages. Memory stays bounded by about one
 * source tensor plus one packed output tensor. */
#include "convert.h"
#include "bt/bt_pipeline.h"
#include "bt_types.h"
#include "hessian.h"
#include "report.h"
#include "rotate.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <stddef.h>
#include <time.h>

#define CHUNK_BYTES (8u << 20) /* f32 bytes per chunk of rows */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct read_job {
    struct bt_reader *r;
    uint32_t          idx;
    int64_t           row0, cols;
    float            *dst;
    bt_status         st;
    bt_err            err;
};

static void read_rows(void *arg, int64_t i0, int64_t i1, int tid) {
    struct read_job *j = arg;
    bt_err e;
    bt_err_clear(&e);
    if (bt_reader_read_f32(j->r, j->idx, j->row0 + i0, i1 - i0, j->dst + i0 * j->cols, &e) != BT_OK
        && j->st == BT_OK) {
        j->st = e.status;
        j->err = e;
    }
}

/* error stats of converting f32 src -> fmt (for kept tensors) */
static void convert_err(const struct bt_tfmt *fmt, const void *packed, const float *src, int64_t n,
                        float *tmp, double *err2, double *ref2) {
    if (bt_to_f32(fmt, packed, tmp, n) != BT_OK) return;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)src[i] - tmp[i];
        *err2 += d * d;
        *ref2 += (double)src[i] * src[i];
    }
}

/* 1 if no inf/nan: x*0 is 0 for finite x and nan otherwise (vectorizable) */
static int all_finite(const float *x, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += x[i + k] * 0.0f;
    for (; i < n; i++) acc[0] += x[i] * 0.0f;
    float s = 0;
    for (int k = 0; k < 8; k++) s += acc[k];
    return s == 0.0f;
}


/* a tensor already in a format with parts (vq from the vptq reader, or a bt gguf): handed to
 * the writer as read, parts included */
static bt_status copy_tensor(struct bt_convert_args *a, struct bt_reader *r, struct bt_writer *w,
                             uint32_t idx, const struct bt_tensor *t, const struct tensor_plan *p,
                             struct bt_report_row *row, bt_err *err) {
    bt_status st = w->i->add(w->ctx, t, err);
    if (st && err->status == BT_OK) bt_err_set(err, st, "%s: writer failed", t->name);
    if (!st && a->done_fn && t->n_dims == 2) st = a->done_fn(a->colw_ctx, t->name, &t->fmt, t->data, t->nbytes, err);
    bt_reader_release(r, idx);
    row->bytes_out = t->nbytes; /* codebooks, scales and permutations count too */
    for (uint32_t k = 0; k < t->n_parts; k++) row->bytes_out += t->part_bytes[k];
    bt_fmt_str(&t->fmt, row->type_out, sizeof(row->type_out));
    int64_t n = bt_tensor_rows(t) * bt_tensor_cols(t);
    row->bpw = n > 0 ? (double)row->bytes_out * 8.0 / (double)n : 0.0;
    snprintf(row->note, sizeof(row->note), "%s", p->note);
    return st;
}

bt_status bt_convert_plan(struct bt_convert_args *a, struct bt_quantizer *q, struct bt_writer *w,
                          const struct bt_tensor *t, const struct bt_tfmt *chosen, struct tensor_plan *p,
                          bt_err *err) {
    memset(p, 0, sizeof(*p));
    int64_t cols = bt_tensor_cols(t);
    int is_matrix = t->n_dims == 2;
    if (!is_matrix) {
        p->fmt = bt_fmt(t->fmt.type == BT_TYPE_F64 ? BT_TYPE_F32 : t->fmt.type);
        if (p->fmt.type == BT_TYPE_F16 || p->fmt.type == BT_TYPE_BF16 || p->fmt.type == BT_TYPE_F32 || bt_type_block(t->fmt.type) > 1)
            p->fmt = bt_fmt(BT_TYPE_F32);
        snprintf(p->note, sizeof(p->note), "kept (%u-D)", t->n_dims);
        return BT_OK;
    }
    if (bt_fmt_n_parts(&t->fmt)) { /* already in a codebook format (vq): never re-encoded */
        p->fmt = t->fmt;
        p->copy = 1;
        if (w && !bt_writer_supports(w, &p->fmt)) {
            char fs[32];
            bt_fmt_str(&p->fmt, fs, sizeof(fs));
            return bt_err_set(err, BT_E_UNSUPPORTED, "%s: writer '%s' cannot store %s", t->name, w->entry->desc->name, fs);
        }
        snprintf(p->note, sizeof(p->note), "kept as read (codebook format)");
        return BT_OK;
    }
    int keep = !q || bt_keep_match(a->keep, t->name, t->src_name);
    if (!keep) {
        struct bt_qtensor qt = {.name = t->name, .rows = bt_tensor_rows(t), .cols = cols};
        int ty = bt_type_from_name(a->type);
        qt.want = bt_fmt(ty < 0 ? BT_TYPE_TQ2_0 : (uint32_t)ty);
        if (chosen) { qt.want = *chosen; qt.want_exact = 1; }
        qt.col_weight = a->colw_fn ? a->colw_fn(a->colw_ctx, t->name, cols) : NULL;
        bt_err e2;
        bt_err_clear(&e2);
        bt_status st = q->i->plan(q->ctx, &qt, &p->fmt, &e2);
        if (st == BT_OK) {
            uint32_t gb, gbb;
            if (w && bt_fmt_geometry(&p->fmt, &gb, &gbb) && !bt_writer_supports(w, &p->fmt)) {
                char fs[32];
                bt_fmt_str(&p->fmt, fs, sizeof(fs));
                return bt_err_set(err, BT_E_UNSUPPORTED, "%s: writer '%s' cannot store %s", t->name, w->entry->desc->name, fs);
            }
            p->quantize = 1;
            return BT_OK;
        }
        if (st != BT_E_UNSUPPORTED) {
            if (e2.status == BT_OK) bt_err_set(&e2, st, "quantizer refused the tensor");
            return bt_err_set(err, st, "%s: %s", t->name, e2.msg);
        }
        /* fallback: [output] fallback_type, auto = the smallest standard type the row fits */
        const char *ft = a->fallback_type && strcmp(a->fallback_type, "auto") ? a->fallback_type : NULL;
        int fty = ft ? bt_type_from_name(ft) : -1;
        p->fmt = bt_fmt(fty >= 0 ? (uint32_t)fty : cols % 32 == 0 ? BT_TYPE_Q8_0 : BT_TYPE_F16);
        if (!bt_fmt_row_bytes(&p->fmt, cols)) p->fmt = bt_fmt(BT_TYPE_F16);
        snprintf(p->note, sizeof(p->note), "fallback to %s: %s", bt_type_name(p->fmt.type),
                 e2.status ? e2.msg : "not quantizable");
        return BT_OK;
    }
    snprintf(p->note, sizeof(p->note), q ? "kept (pattern)" : "kept (method none)");
    int kt = bt_type_from_name(a->keep_type);
    p->fmt = bt_fmt(kt < 0 ? BT_TYPE_F16 : (uint32_t)kt);
    if (!bt_fmt_row_bytes(&p->fmt, cols)) p->fmt = bt_fmt(BT_TYPE_F16);
    return BT_OK;
}

/* plan() left the format open: the quantizer decides from the whole tensor (bases = auto,
 * target_rmse) */
static bt_status decide_fmt(struct bt_convert_args *a, struct bt_reader *r, struct bt_quantizer *q,
                               uint32_t idx, const struct bt_tensor *t, struct tensor_plan *p,
                               float *whole, bt_err *err) {
    int64_t rows = bt_tensor_rows(t), cols = bt_tensor_cols(t);
    const struct bt_quantizer_i *qi = q->i;
    if (!BT_HAS(qi, decide))
        return bt_err_set(err, BT_E_PLUGIN, "%s: quantizer '%s' left the format open but has no decide()",
                          t->name, q->entry->desc->name);
    struct read_job j = {r, idx, 0, cols, whole, BT_OK, {0, ""}};
    bt_parallel_for(rows, 1, read_rows, &j);
    if (j.st) return bt_err_set(err, j.st, "%s", j.err.msg);
    struct bt_qtensor qt = {.name = t->name, .rows = rows, .cols = cols, .want = p->fmt,
                            .col_weight = a->colw_fn ? a->colw_fn(a->colw_ctx, t->name, cols) : NULL};
    bt_status st = qi->decide(q->ctx, &qt, whole, &p->fmt, err);
    if (st) return err->status ? st : bt_err_set(err, st, "%s: decide failed", t->name);
    uint32_t gb, gbb;
    if (!bt_fmt_geometry(&p->fmt, &gb, &gbb))
        return bt_err_set(err, BT_E_PLUGIN, "%s: decide() left the format incomplete", t->name);
    return BT_OK;
}

bt_status bt_convert_hessian(struct bt_convert_args *a, const struct bt_tensor *t, const struct bt_hessian **h,
                             bt_err *err) {
    *h = NULL;
    if (!a->hess_fn) return BT_OK;
    int64_t cols = bt_tensor_cols(t);
    const float *G = NULL;
    uint32_t entry = 0;
    bt_status st = a->hess_fn(a->colw_ctx, t->name, cols, a->second_order, &G, &entry, err);
    if (st || !a->second_order) return st;
    if (!G)
        return bt_err_set(err, BT_E_INVAL, "%s: calibration %s has no entry for this tensor (second_order needs "
                          "one per quantized tensor; calibrated on a different model?)", t->name, a->calib_path);
    if (!a->hess || a->hess_entry != (int64_t)entry) {
        bt_hessian_free(a->hess);
        a->hess = NULL;
        a->hess_entry = -1;
        bt_err e2;
        bt_err_clear(&e2);
        if ((st = bt_hessian_prepare(G, cols, a->damp, a->act_order, &a->hess, &e2)))
            return bt_err_set(err, st, "%s: %s", t->name, e2.msg);
        a->hess_entry = entry;
    }
    *h = a->hess;
    return BT_OK;
}

/* A writer's add/finish failed (st != BT_OK) while working. Everything the user configured was
 * validated before the work started, so whatever the writer calls an invalid argument here is a
 * failure while working (exit 1), never a usage or configuration error (exit 2): BT_E_INVAL
 * becomes BT_E_IO, the writer's message is kept. */
static bt_status writer_failed(bt_status st, bt_err *err, const char *what, const char *why) {
    if (st == BT_OK) return BT_OK;
    if (err && err->status == BT_OK) bt_err_set(err, st, "%s: %s", what, why);
    if (st == BT_E_INVAL) st = BT_E_IO;
    if (err) err->status = st;
    return st;
}

/* the extra parts of a rows x cols tensor in fmt (none for most formats) */
struct tensor_parts {
    uint32_t n;
    void    *p[BT_MAX_PARTS];
    uint64_t bytes[BT_MAX_PARTS];
};

static void parts_free(struct tensor_parts *tp) {
    for (uint32_t k = 0; k < tp->n; k++) free(tp->p[k]);
    tp->n = 0;
}

static bt_status parts_alloc(const struct bt_tfmt *fmt, int64_t rows, int64_t cols, const char *name,
                             struct tensor_parts *tp, bt_err *err) {
    memset(tp, 0, sizeof *tp);
    const struct bt_format *f = bt_format_get(fmt->type);
    uint32_t n = bt_fmt_n_parts(fmt);
    if (n > BT_MAX_PARTS) return bt_err_set(err, BT_E_PLUGIN, "%s: format %s declares %u parts", name, f->name, n);
    for (uint32_t k = 0; k < n; k++) {
        const char *pn = NULL;
        uint64_t nb = 0;
        if (f->part_info(fmt, rows, cols, k, &pn, &nb) != BT_OK || !nb || nb > ((uint64_t)1 << 40)) {
            parts_free(tp);
            return bt_err_set(err, BT_E_PLUGIN, "%s: format %s gives no size for part %u", name, f->name, k);
        }
        if (!(tp->p[k] = calloc(1, (size_t)nb))) {
            parts_free(tp);
            return bt_err_set(err, BT_E_NOMEM, "%s: out of memory for part %s", name, pn ? pn : "?");
        }
        tp->bytes[k] = nb;
        tp->n = k + 1;
    }
    return BT_OK;
}

/* heads of a tensor flagged ROPE_HALVES (q: head_count, k: head_count_kv), 0 if unknown */
static int64_t rope_heads(struct bt_reader *r, const char *name) {
    struct bt_kv tmp;
    const struct bt_kv *arch = bt_reader_kv(r, "general.architecture", &tmp);
    char key[160], a0[64];
    if (!arch || arch->type != BT_KV_STRING) return 0;
    snprintf(a0, sizeof(a0), "%s", arch->v.s);
    int is_k = strstr(name, ".attn_k.") != NULL;
    snprintf(key, sizeof(key), "%s.attention.head_count%s", a0, is_k ? "_kv" : "");
    const struct bt_kv *kv = bt_reader_kv(r, key, &tmp);
    if (!kv && is_k) kv = bt_reader_kv(r, (snprintf(key, sizeof(key), "%s.attention.head_count", a0), key), &tmp);
    if (!kv) return 0;
    if (kv->type == BT_KV_U32 || kv->type == BT_KV_U64 || kv->type == BT_KV_U16) return (int64_t)kv->v.u;
    if (kv->type == BT_KV_I32 || kv->type == BT_KV_I64) return kv->v.i;
    return 0;
}

/* rows of q/k from HF's rotate-half order to GGUF's interleaved order, in f32 before quantizing
 * (formats whose rows depend on each other, like vq, cannot be permuted after) */
static bt_status unhalve_rows(struct bt_reader *r, const struct bt_tensor *t, float *W, int64_t rows,
                              int64_t cols, bt_err *err) {
    int64_t nh = rope_heads(r, t->name);
    if (nh <= 0 || rows % nh || (rows / nh) % 2)
        return bt_err_set(err, BT_E_INVAL, "%s: cannot reorder the rows of this rotary tensor for GGUF "
                          "(%lld rows, %lld heads from the metadata)", t->name, (long long)rows, (long long)nh);
    int64_t hd = rows / nh, half = hd / 2;
    float *tmp = malloc(sizeof(float) * (size_t)(hd * cols));
    if (!tmp) return bt_err_set(err, BT_E_NOMEM, "%s: out of memory", t->name);
    for (int64_t h = 0; h < nh; h++) {
        float *base = W + h * hd * cols;
        for (int64_t i = 0; i < half; i++)
            for (int64_t j = 0; j < 2; j++)
                memcpy(tmp + (2 * i + j) * cols, base + (j * half + i) * cols, sizeof(float) * (size_t)cols);
        memcpy(base, tmp, sizeof(float) * (size_t)(hd * cols));
    }
    free(tmp);
    return BT_OK;
}

static bt_status convert_tensor(struct bt_convert_args *a, struct bt_reader *r, struct bt_quantizer *q,
                                struct bt_writer *w, uint32_t idx, const struct bt_tensor *t,
                                const struct bt_tfmt *chosen, struct bt_report_row *row, bt_err *err) {
    struct tensor_plan p;
    bt_status st = bt_convert_plan(a, q, w, t, chosen, &p, err);
    if (st) return st;
    int64_t rows = bt_tensor_rows(t), cols = bt_tensor_cols(t);
    if (p.copy) return copy_tensor(a, r, w, idx, t, &p, row, err);
    float *whole = NULL;
    uint32_t gb, gbb;
    if (p.quantize && !bt_fmt_geometry(&p.fmt, &gb, &gbb)) {
        if (!(whole = malloc((size_t)rows * cols * sizeof(float))))
            return bt_err_set(err, BT_E_NOMEM, "%s: out of memory", t->name);
        if ((st = decide_fmt(a, r, q, idx, t, &p, whole, err))) { free(whole); return st; }
        if (!bt_writer_supports(w, &p.fmt)) {
            free(whole);
            return bt_err_set(err, BT_E_UNSUPPORTED, "%s: writer cannot store the chosen format", t->name);
        }
    }
    const struct bt_hessian *hess = NULL;
    if (p.quantize && (st = bt_convert_hessian(a, t, &hess, err))) { free(whole); return st; }
    /* formats with extra parts (codebooks) are produced whole, parts included */
    struct tensor_parts tp;
    if ((st = parts_alloc(&p.fmt, rows, cols, t->name, &tp, err))) { free(whole); return st; }
    if (tp.n && (!p.quantize || !BT_HAS(q->i, quantize_tensor))) {
        parts_free(&tp);
        free(whole);
        return bt_err_set(err, BT_E_UNSUPPORTED, "%s: format %s has a codebook: it needs a quantizer "
                          "with quantize_tensor", t->name, bt_type_name(p.fmt.type));
    }
    if ((hess || tp.n) && !whole) { /* the column loop needs every row of a column */
        if (!(whole = malloc((size_t)rows * cols * sizeof(float)))) {
            parts_free(&tp);
            return bt_err_set(err, BT_E_NOMEM, "%s: out of memory", t->name);
        }
        struct read_job j = {r, idx, 0, cols, whole, BT_OK, {0, ""}};
        bt_parallel_for(rows, 1, read_rows, &j);
        if (j.st) { parts_free(&tp); free(whole); return bt_err_set(err, j.st, "%s", j.err.msg); }
    }
    int unhalved = 0;
    if (tp.n && (t->flags & BT_TENSOR_ROPE_HALVES)) {
        if ((st = unhalve_rows(r, t, whole, rows, cols, err))) { parts_free(&tp); free(whole); return st; }
        unhalved = 1;
    }
    size_t rb = bt_fmt_row_bytes(&p.fmt, cols);
    if (!rb) { parts_free(&tp); free(whole); return bt_err_set(err, BT_E_UNSUPPORTED, "%s: cannot store %lld columns as %s", t->name, (long long)cols, bt_type_name(p.fmt.type)); }
    int64_t chunk = CHUNK_BYTES / ((size_t)cols * 4);
    if (chunk < 1) chunk = 1;
    if (chunk > rows) chunk = rows;
    uint8_t *out = malloc(rb * (size_t)rows + 1);
    float *buf = malloc((size_t)chunk * cols * sizeof(float));
    float *tmp = p.quantize ? NULL : malloc((size_t)chunk * cols * sizeof(float));
    if (!out || !buf || (!p.quantize && !tmp)) {
        free(out); free(buf); free(tmp); free(whole); parts_free(&tp);
        return bt_err_set(err, BT_E_NOMEM, "%s: out of memory (%lld x %lld)", t->name, (long long)rows, (long long)cols);
    }
    struct bt_qstats stats = {0, 0, 0};
    struct bt_qtensor qt = {.name = t->name, .rows = rows, .cols = cols, .want = p.fmt,
                            .col_weight = a->colw_fn ? a->colw_fn(a->colw_ctx, t->name, cols) : NULL, .hess = hess};
    if (hess || tp.n) {
        if (!all_finite(whole, rows * cols)) {
            int64_t i = 0;
            while (i < rows * cols && isfinite(whole[i])) i++;
            st = bt_err_set(err, BT_E_FORMAT, "%s: non-finite value (inf or nan) at row %lld", t->name, (long long)(i / cols));
        } else {
            st = q->i->quantize_tensor(q->ctx, &qt, &p.fmt, whole, out, tp.n ? tp.p : NULL, &stats, err);
            if (st && err->status == BT_OK) bt_err_set(err, st, "%s: quantizer failed", t->name);
        }
        chunk = rows; /* done: skip the row loop */
    }
    for (int64_t r0 = hess || tp.n ? rows : 0; r0 < rows && st == BT_OK; r0 += chunk) {
        int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        if (whole) {
            memcpy(buf, whole + r0 * cols, (size_t)nr * cols * sizeof(float));
        } else {
            struct read_job j = {r, idx, r0, cols, buf, BT_OK, {0, ""}};
            bt_parallel_for(nr, 1, read_rows, &j);
            if (j.st) { st = bt_err_set(err, j.st, "%s", j.err.msg); break; }
        }
        uint8_t *dst = out + (size_t)r0 * rb;
        if (p.quantize) {
            st = q->i->quantize(q->ctx, &qt, &p.fmt, buf, nr, dst, &stats, err);
            if (st && err->status == BT_OK) bt_err_set(err, st, "%s: quantizer failed", t->name);
        } else {
            st = bt_from_f32(&p.fmt, buf, dst, nr * cols);
            if (st) bt_err_set(err, st, "%s: cannot convert to %s", t->name, bt_type_name(p.fmt.type));
            else convert_err(&p.fmt, dst, buf, nr * cols, tmp, &stats.err2, &stats.ref2);
        }
        if (st == BT_OK && !all_finite(buf, nr * cols)) {
            int64_t i = 0;
            while (i < nr * cols && isfinite(buf[i])) i++;
            st = bt_err_set(err, BT_E_FORMAT, "%s: non-finite value (inf or nan) at row %lld", t->name, (long long)(r0 + i / cols));
        }
    }
    if (st == BT_OK) {
        struct bt_tensor ot = *t;
        ot.fmt = p.fmt;
        if (unhalved) ot.flags &= ~BT_TENSOR_ROPE_HALVES;
        ot.data = out;
        ot.nbytes = rb * (size_t)rows;
        ot.n_parts = tp.n;
        for (uint32_t k = 0; k < tp.n; k++) { ot.parts[k] = tp.p[k]; ot.part_bytes[k] = tp.bytes[k]; }
        st = writer_failed(w->i->add(w->ctx, &ot, err), err, t->name, "writer failed");
        row->bytes_out = ot.nbytes;
        if (!st && a->done_fn && t->n_dims == 2) st = a->done_fn(a->colw_ctx, t->name, &p.fmt, out, ot.nbytes, err);
    }
    bt_reader_release(r, idx);
    free(out); free(buf); free(tmp); free(whole);
    uint64_t pbytes = 0; /* honest sizes: codebooks, scales and permutations count too */
    for (uint32_t k = 0; k < tp.n; k++) pbytes += tp.bytes[k];
    parts_free(&tp);
    row->bytes_out += pbytes;
    bt_fmt_str(&p.fmt, row->type_out, sizeof(row->type_out));
    row->bpw = bt_fmt_bpw(&p.fmt, cols);
    if (pbytes && rows > 0) row->bpw += (double)pbytes * 8.0 / ((double)rows * (double)cols);
    row->rel_rmse = stats.ref2 > 0 ? sqrt(stats.err2 / stats.ref2) : 0;
    row->herr2 = stats.herr2;
    snprintf(row->note, sizeof(row->note), "%s", p.note);
    return st;
}

/* every tensor the calibration file names must be in the model, and each quantized 2-D tensor
 * with an entry must have the entry's input size; the file must cover the model's layers (a file
 * made for another model — widths or layer count — is refused) */
static bt_status check_calibration(struct bt_convert_args *a, struct bt_reader *r, uint32_t nt, bt_err *err) {
    int cal_layers = 0, n_entries = 0;
    for (uint32_t e = 0;; e++) {
        const char *names = a->entry_fn(a->colw_ctx, e);
        if (!names) break;
        n_entries++;
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", names);
        char *save = NULL;
        for (char *nm = strtok_r(buf, ",", &save); nm; nm = strtok_r(NULL, ",", &save)) {
            int l;
            if (sscanf(nm, "blk.%d.", &l) == 1 && l + 1 > cal_layers) cal_layers = l + 1;
            int found = 0;
            for (uint32_t i = 0; i < nt && !found; i++) {
                struct bt_tensor t;
                if (r->i->tensor_get(r->ctx, i, &t, err) == BT_OK && !strcmp(t.name, nm)) {
                    found = 1;
                    bt_status st = a->hess_fn(a->colw_ctx, t.name, bt_tensor_cols(&t), 0, NULL, NULL, err);
                    if (st) return st;
                }
            }
            if (!found)
                return bt_err_set(err, BT_E_INVAL, "%s: calibration %s has an entry for it but the model %s has no such "
                                  "tensor (calibrated on a different model, e.g. another layer count?)", nm, a->calib_path,
                                  a->in_path);
        }
    }
    for (uint32_t i = 0; n_entries && i < nt; i++) { /* layers beyond the file's: it was made for a smaller model */
        struct bt_tensor t;
        int l;
        if (r->i->tensor_get(r->ctx, i, &t, err) != BT_OK) return err->status;
        if (t.n_dims == 2 && sscanf(t.name, "blk.%d.", &l) == 1 && l >= cal_layers &&
            !bt_keep_match(a->keep, t.name, t.src_name))
            return bt_err_set(err, BT_E_INVAL, "%s: calibration %s covers %d layers, the model %s has more (from a "
                              "different model? calibrate this one: bt-pipeline calibrate --model %s ...)", t.name,
                              a->calib_path, cal_layers, a->in_path, a->in_path);
    }
    return BT_OK;
}

/* a tensor already stored in the [output] type is not quantized again (it would only add error):
 * refused before any work, naming the tensor */
static bt_status check_requantize(struct bt_convert_args *a, struct bt_reader *r, uint32_t nt, bt_err *err) {
    int ty = bt_type_from_name(a->type);
    struct bt_kv tmp;
    const struct bt_kv *arch = bt_reader_kv(r, "general.architecture", &tmp);
    if (arch && arch->type == BT_KV_STRING && arch->n == 6 && !memcmp(arch->v.s, "bitnet", 6))
        return BT_OK; /* a native ternary checkpoint: its trits are the model, converted trit for trit */
    for (uint32_t i = 0; ty >= 0 && i < nt; i++) {
        struct bt_tensor t;
        bt_status st = r->i->tensor_get(r->ctx, i, &t, err);
        if (st) return st;
        if (t.n_dims != 2 || t.fmt.type != (uint32_t)ty || bt_fmt_n_parts(&t.fmt) ||
            bt_keep_match(a->keep, t.name, t.src_name))
            continue;
        return bt_err_set(err, BT_E_INVAL, "%s: tensor %s is already %s, the [output] type: quantizing it "
                          "again only adds error; convert the original (unquantized) model instead",
                          a->in_path, t.name, a->type);
    }
    return BT_OK;
}

/* processing rank for sequential calibration: non-layer tensors first, then layer by layer in
 * the order the forward pass reads the linears */
static int64_t seq_rank(const char *name) {
    static const char *const roles[] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                        "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};
    int l, n = 0;
    char role[32];
    if (sscanf(name, "blk.%d.%31[a-z_]%n", &l, role, &n) != 2) return -1;
    for (int r = 0; r < 9; r++)
        if (!strcmp(role, roles[r])) return (int64_t)l * 16 + r;
    return (int64_t)l * 16 + 15;
}

static bt_status make_order(struct bt_reader *r, uint32_t nt, int sequential, uint32_t *order, bt_err *err) {
    int64_t *rank = calloc(nt + 1, sizeof(int64_t));
    if (!rank) return bt_err_set(err, BT_E_NOMEM, "out of memory");
    for (uint32_t i = 0; i < nt; i++) {
        order[i] = i;
        struct bt_tensor t;
        if (sequential && r->i->tensor_get(r->ctx, i, &t, err) == BT_OK) rank[i] = seq_rank(t.name);
    }
    for (uint32_t i = 1; i < nt; i++) { /* stable insertion sort by rank */
        uint32_t v = order[i];
        uint32_t k = i;
        while (k > 0 && rank[order[k - 1]] > rank[v]) { order[k] = order[k - 1]; k--; }
        order[k] = v;
    }
    free(rank);
    return BT_OK;
}

bt_status bt_convert(struct bt_convert_args *a, bt_err *err) {
    struct bt_reader *r = NULL;
    struct bt_quantizer *q = NULL;
    struct bt_writer *w = NULL;
    struct bt_kv *kvs = NULL;
    struct bt_tfmt *chosen = NULL;
    uint32_t *order = NULL;
    struct bt_report rep;
    memset(&rep, 0, sizeof(rep));
    double t0 = now();
    bt_status st = bt_reader_open(a->reg, a->reader, a->in_path, a->reader_opts, &r, err);
    a->reader_opts = NULL;
    if (st) goto done;
    /* [quantize] rotate (rotate.c): serve the rotated model, calibration hooks rotated too */
    if (a->rotate && (st = bt_rotate_wrap(&r, a->rotate, a->rotate_seed, a, err))) goto done;
    if (a->method && strcmp(a->method, "none") != 0) {
        st = bt_quantizer_open(a->reg, a->method, a->quant_opts, &q, err);
        a->quant_opts = NULL;
        if (st) goto done;
    }
    uint32_t n_kv = r->i->kv_count(r->ctx), nt = r->i->tensor_count(r->ctx);
    a->hess_entry = -1;
    if (q && a->second_order &&
        !BT_HAS(q->i, quantize_tensor)) {
        st = bt_err_set(err, BT_E_UNSUPPORTED, "[quantize] second_order: quantizer '%s' has no whole-tensor entry "
                        "(quantize_tensor, ABI 1.1)", q->entry->desc->name);
        goto done;
    }
    if (q && a->entry_fn && (st = check_calibration(a, r, nt, err))) goto done;
    if (q && (st = check_requantize(a, r, nt, err))) goto done;
    if (q && (a->budget_bpw > 0 || a->budget_bytes > 0)) {
        if (!(chosen = calloc(nt + 1, sizeof(*chosen)))) { st = bt_err_set(err, BT_E_NOMEM, "out of memory"); goto done; }
        for (uint32_t i = 0; i < nt; i++) chosen[i].type = UINT32_MAX; /* none */
        if ((st = bt_budget_allocate(a, r, q, chosen, err))) goto done;
    }
    kvs = calloc(n_kv + 2, sizeof(*kvs));
    if (!kvs) { st = bt_err_set(err, BT_E_NOMEM, "out of memory"); goto done; }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n_kv; i++)
        if (r->i->kv_get(r->ctx, i, &kvs[k]) == BT_OK && strncmp(kvs[k].key, "general.quantized_by", 20) &&
            strncmp(kvs[k].key, "bt.weight_scale.", 16)) /* a BitNet input's exact scales: the
                                                           * output's blocks hold its own */
            k++;
    kvs[k++] = (struct bt_kv){.key = "general.quantized_by", .type = BT_KV_STRING, .n = strlen("bt " BT_VERSION), .v.s = "bt " BT_VERSION};
    if ((st = bt_file_make_parents(a->out_path, err))) goto done; /* mkdir -p of its folder */
    st = bt_writer_open(a->reg, a->writer, a->out_path, a->writer_opts, kvs, k, nt, &w, err);
    a->writer_opts = NULL;
    if (st) goto done;
    snprintf(rep.input, sizeof(rep.input), "%s", a->in_path);
    snprintf(rep.output, sizeof(rep.output), "%s", a->out_path);
    snprintf(rep.method, sizeof(rep.method), "%s", a->method ? a->method : "none");
    rep.config = a->config;
    if (a->calib_path && *a->calib_path) {
        snprintf(rep.calib, sizeof(rep.calib), "%s", a->calib_path);
        struct stat cs;
        if (stat(a->calib_path, &cs) == 0 && (st = bt_file_sha256(a->calib_path, rep.calib_sha, err))) goto done;
    }
    if (!(order = calloc(nt + 1, sizeof(*order)))) { st = bt_err_set(err, BT_E_NOMEM, "out of memory"); goto done; }
    if ((st = make_order(r, nt, a->sequential, order, err))) goto done;
    double total_in = 0, done_in = 0; /* progress: bytes read of all */
    for (uint32_t i = 0; i < nt; i++) {
        struct bt_tensor t;
        if (r->i->tensor_get(r->ctx, i, &t, err) == BT_OK) total_in += (double)t.nbytes;
        bt_err_clear(err);
    }
    struct bt_progress pg;
    bt_progress_start(&pg, a->quiet ? NULL : "convert");
    for (uint32_t k = 0; k < nt && st == BT_OK; k++) {
        uint32_t i = order[k];
        struct bt_tensor t;
        if ((st = r->i->tensor_get(r->ctx, i, &t, err))) break;
        struct bt_report_row row;
        memset(&row, 0, sizeof(row));
        snprintf(row.name, sizeof(row.name), "%s", t.name);
        row.n_dims = (int)t.n_dims;
        memcpy(row.shape, t.shape, sizeof(row.shape));
        bt_fmt_str(&t.fmt, row.type_in, sizeof(row.type_in));
        row.bytes_in = t.nbytes;
        double ts = now();
        st = convert_tensor(a, r, q, w, i, &t, chosen && chosen[i].type != UINT32_MAX ? &chosen[i] : NULL, &row, err);
        row.seconds = now() - ts;
        if (st == BT_OK) st = bt_report_add(&rep, &row) ? bt_err_set(err, BT_E_NOMEM, "out of memory") : BT_OK;
        done_in += (double)row.bytes_in;
        double el = now() - t0;
        if (st == BT_OK)
            bt_progress_step(&pg, done_in, total_in, "[%u/%u] %.1f MB/s  %s -> %s", k + 1, nt,
                             el > 0 ? done_in / 1e6 / el : 0.0, t.name, row.type_out);
    }
    bt_progress_end(&pg);
    if (st == BT_OK) {
        st = writer_failed(w->i->finish(w->ctx, err), err, a->out_path, "writer could not finish");
    }
    rep.wall = now() - t0;
    struct stat os;
    if (st == BT_OK && stat(a->out_path, &os) == 0) rep.file_bytes = (uint64_t)os.st_size;
    if (st == BT_OK && !a->quiet) bt_report_print(&rep, stdout);
    if (st == BT_OK && a->report && *a->report) st = bt_report_write_json(&rep, a->report, err);
done:
    bt_hessian_free(a->hess);
    a->hess = NULL;
    bt_writer_close(w); /* removes temp files unless finished */
    bt_quantizer_close(q);
    bt_reader_close(r);
    bt_optset_free(a->reader_opts);
    bt_optset_free(a->quant_opts);
    bt_optset_free(a->writer_opts);
    free(kvs);
    free(chosen);
    free(order);
    bt_report_free(&rep);
    return st;
}
