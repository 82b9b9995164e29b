/* budget.c - global format allocation: for every tensor whose format the quantizer leaves open,
 * its candidate formats (error_curve: e.g. MTQ with 1..N planes) and their errors on a fixed
 * row sample; then step tensors up to larger candidates where that removes the most error per
 * byte until the budget (bits/weight or total bytes) is used. The error is the squared
 * error (column-weighted with a calibration file), or with second_order the Hessian-weighted
 * error tr(E H E^T) of the second-order result, which is the tensor's output error on the
 * calibration activations: by default relative to the tensor's output energy tr(W H W^T) and
 * weighted by its size (budget_metric = relative), or as is (absolute). */
#include "bt_types.h"
#include "convert.h"
#include "hessian.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLE_ROWS 128

struct cand {
    uint32_t       idx;                     /* tensor index */
    int            n_max;                   /* candidates */
    int            n;                       /* current choice + 1 */
    struct bt_tfmt fmt[BT_MAX_CANDIDATES];  /* the quantizer's candidates, smallest first */
    double         err2[BT_MAX_CANDIDATES]; /* estimated full-tensor squared error of each */
    double         bytes[BT_MAX_CANDIDATES]; /* output bytes of each */
    int64_t        weights;                 /* rows * cols */
};

/* error curve of one tensor on SAMPLE_ROWS evenly spaced rows, scaled to the whole tensor */
static bt_status curve(struct bt_convert_args *a, struct bt_reader *r, struct bt_quantizer *q,
                       uint32_t idx, const struct bt_tensor *t, const struct tensor_plan *p,
                       struct cand *c, bt_err *err) {
    int64_t rows = bt_tensor_rows(t), cols = bt_tensor_cols(t);
    int64_t ns = rows < SAMPLE_ROWS ? rows : SAMPLE_ROWS;
    float *buf = malloc((size_t)ns * cols * sizeof(float));
    if (!buf) return bt_err_set(err, BT_E_NOMEM, "%s: out of memory", t->name);
    bt_status st = BT_OK;
    for (int64_t k = 0; k < ns && st == BT_OK; k++) {
        int64_t row = k * rows / ns; /* deterministic, evenly spaced */
        st = bt_reader_read_f32(r, idx, row, 1, buf + k * cols, err);
    }
    if (st == BT_OK) {
        const struct bt_hessian *h = NULL;
        st = bt_convert_hessian(a, t, &h, err);
        struct bt_qtensor qt = {.name = t->name, .rows = rows, .cols = cols, .want = p->fmt,
                                .col_weight = a->colw_fn ? a->colw_fn(a->colw_ctx, t->name, cols) : NULL, .hess = h};
        int n = st ? 0 : q->i->error_curve(q->ctx, &qt, buf, ns, c->fmt, c->err2, err);
        if (n < 1 || n > BT_MAX_CANDIDATES)
            st = err->status ? err->status : bt_err_set(err, BT_E_PLUGIN, "%s: error_curve failed", t->name);
        c->n_max = n;
        double scale = (double)rows / (double)ns;
        if (h && n >= 1 && a->budget_relative) { /* fraction of the output energy lost x weights */
            float *Y = malloc((size_t)ns * cols * sizeof(float));
            double ref = 0;
            if (Y && bt_hessian_mul(h, 0, cols, buf, ns, Y, err) == BT_OK)
                for (int64_t i = 0; i < ns * cols; i++) ref += (double)Y[i] * buf[i];
            free(Y);
            if (ref > 0) scale = (double)rows * (double)cols / ref;
        }
        for (int k = 0; k < n && !st; k++) {
            c->err2[k] *= scale;
            c->bytes[k] = (double)bt_fmt_row_bytes(&c->fmt[k], cols) * (double)rows;
            if (!(c->bytes[k] > 0) || (k && c->bytes[k] < c->bytes[k - 1])) {
                char fs[32];
                bt_fmt_str(&c->fmt[k], fs, sizeof fs);
                st = bt_err_set(err, BT_E_PLUGIN, "%s: error_curve candidate %d (%s) cannot hold %lld "
                                "columns or is smaller than the one before", t->name, k, fs, (long long)cols);
            }
        }
        c->weights = rows * cols;
    }
    free(buf);
    bt_reader_release(r, idx);
    return st;
}

bt_status bt_budget_allocate(struct bt_convert_args *a, struct bt_reader *r, struct bt_quantizer *q,
                             struct bt_tfmt *chosen, bt_err *err) {
    const struct bt_quantizer_i *qi = q->i;
    if (!BT_HAS(qi, error_curve))
        return bt_err_set(err, BT_E_INVAL, "[quantize] budget_bpw/budget_bytes need a quantizer that offers candidate formats (error_curve; '%s' has none)",
                          q->entry->desc->name);
    uint32_t nt = r->i->tensor_count(r->ctx);
    struct cand *c = calloc(nt + 1, sizeof(*c));
    if (!c) return bt_err_set(err, BT_E_NOMEM, "out of memory");
    int nc = 0;
    double fixed_bytes = 0, q_weights = 0;
    bt_status st = BT_OK;
    struct bt_progress pg;
    bt_progress_start(&pg, a->quiet ? NULL : "budget");
    for (uint32_t i = 0; i < nt && st == BT_OK; i++) {
        struct bt_tensor t;
        struct tensor_plan p;
        if ((st = r->i->tensor_get(r->ctx, i, &t, err))) break;
        bt_progress_step(&pg, i + 1, nt, "[%u/%u] error curve of %s", i + 1, nt, t.name);
        if ((st = bt_convert_plan(a, q, NULL, &t, NULL, &p, err))) break;
        uint32_t gb, gbb;
        if (p.quantize && !bt_fmt_geometry(&p.fmt, &gb, &gbb)) { /* left open by the quantizer */
            c[nc].idx = i;
            c[nc].n = 1;
            st = curve(a, r, q, i, &t, &p, &c[nc], err);
            q_weights += (double)c[nc].weights;
            nc++;
        } else {
            fixed_bytes += (double)bt_fmt_row_bytes(&p.fmt, bt_tensor_cols(&t)) * (double)bt_tensor_rows(&t);
        }
    }
    bt_progress_end(&pg);
    if (st == BT_OK && nc == 0)
        st = bt_err_set(err, BT_E_INVAL, "[quantize] budget given but the quantizer leaves no tensor's format open (residual: use bases = auto)");
    double budget = 0, used = 0;
    if (st == BT_OK) {
        budget = a->budget_bpw > 0 ? a->budget_bpw * q_weights / 8.0 : (double)a->budget_bytes - fixed_bytes;
        for (int k = 0; k < nc; k++) used += c[k].bytes[0];
        if (used > budget)
            st = bt_err_set(err, BT_E_INVAL, "[quantize] budget too small: the smallest format of every tensor already needs %.4f bits/weight (%.0f bytes; budget %.0f)",
                            8.0 * used / q_weights, used + (a->budget_bpw > 0 ? 0 : fixed_bytes),
                            a->budget_bpw > 0 ? budget : (double)a->budget_bytes);
    }
    /* greedy: the step with the largest error drop per extra byte that still fits */
    while (st == BT_OK) {
        int best = -1;
        double best_gain = 0;
        for (int k = 0; k < nc; k++) {
            if (c[k].n >= c[k].n_max) continue;
            double db = c[k].bytes[c[k].n] - c[k].bytes[c[k].n - 1];
            double de = c[k].err2[c[k].n - 1] - c[k].err2[c[k].n];
            if (used + db > budget || db <= 0) continue;
            double g = de / db;
            if (best < 0 || g > best_gain) { best = k; best_gain = g; }
        }
        if (best < 0) break;
        used += c[best].bytes[c[best].n] - c[best].bytes[c[best].n - 1];
        c[best].n++;
    }
    if (st == BT_OK) {
        for (int k = 0; k < nc; k++) chosen[c[k].idx] = c[k].fmt[c[k].n - 1];
        bt_log(BT_LOG_INFO, "budget: %d tensors, %.4f bits/weight used of %.4f", nc, 8.0 * used / q_weights,
               8.0 * budget / q_weights);
    }
    free(c);
    return st;
}
