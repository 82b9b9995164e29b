/* bt_ops.c - the shape, size, parameter and aliasing rules of every backend op (plugin ABI
 * "Writing a backend"): one definition that every backend applies before its own limits, so
 * supports_op means the same thing everywhere. */
#include "bt_types.h"

#include <math.h>

static int is_f32(const struct bt_view *v) { return v->fmt.type == BT_TYPE_F32; }
static int same_shape(const struct bt_view *a, const struct bt_view *b) {
    return a->rows == b->rows && a->cols == b->cols;
}

static const char *const op_names[BT_OP_COUNT] = {
    "?", "get_rows", "rmsnorm", "rope", "cpy", "attn", "swiglu", "add", "matmul", "dequant",
    "kmeans", "relu2", "quant_row", "scale", "gemm", "chol_inv"};

const char *bt_op_name(uint32_t code) {
    return code > 0 && code < BT_OP_COUNT && op_names[code][0] != '?' ? op_names[code] : "unknown";
}

int bt_op_n_src(uint32_t code) {
    switch (code) {
    case BT_OP_GET_ROWS: case BT_OP_CPY: case BT_OP_DEQUANT: case BT_OP_QUANT_ROW: case BT_OP_SCALE:
        return 1;
    case BT_OP_ATTN: return 3;
    case BT_OP_KMEANS: return 2; /* src2 (weights) is optional */
    default: return code > 0 && code < BT_OP_COUNT ? 2 : 0;
    }
}

int bt_op_has_weights(uint32_t code) {
    return code == BT_OP_GET_ROWS || code == BT_OP_MATMUL || code == BT_OP_DEQUANT;
}

/* the descriptor of a format: the host's table (plugin formats too) when given */
static const struct bt_format *fmt_of(const struct bt_host *host, uint32_t type) {
    if (host && BT_HAS(host, format)) return host->format(type);
    return bt_format_get(type);
}

#define BT_OP_MAX_DIM (1ll << 31)
#define BT_OP_MAX_ELEMS (1ll << 40)

static int dims_ok(const struct bt_view *v) {
    return v->rows > 0 && v->cols > 0 && v->rows < BT_OP_MAX_DIM && v->cols < BT_OP_MAX_DIM &&
           v->rows * v->cols < BT_OP_MAX_ELEMS;
}

/* bytes a view spans (0 if its shape does not fit its format); no overflow within the limits */
static uint64_t span(const struct bt_host *host, const struct bt_view *v);
uint64_t bt_view_bytes(const struct bt_view *v, const struct bt_host *host) { return span(host, v); }

static uint64_t span(const struct bt_host *host, const struct bt_view *v) {
    if (!dims_ok(v)) return 0;
    if (v->fmt.type == BT_TYPE_F32 || v->fmt.type == BT_TYPE_I32)
        return (uint64_t)v->rows * (uint64_t)v->cols * 4u;
    size_t rb = bt_format_row_bytes(fmt_of(host, v->fmt.type), &v->fmt, v->cols);
    return rb ? (uint64_t)v->rows * rb : 0;
}

/* 1 if two views share a byte */
static int overlap(const struct bt_host *host, const struct bt_view *a, const struct bt_view *b) {
    if (a->buf != b->buf) return 0;
    uint64_t na = span(host, a), nb = span(host, b);
    return a->off < b->off + nb && b->off < a->off + na;
}

/* in place (the very same view) or apart */
static int same_or_apart(const struct bt_host *host, const struct bt_view *d, const struct bt_view *s) {
    if (d->buf == s->buf && d->off == s->off && d->rows == s->rows && d->cols == s->cols) return 1;
    return !overlap(host, d, s);
}

/* the aliasing rules: in-place ops may write over a source exactly, every other overlap is an
 * error (the result would depend on the order of the work) */
static const char *alias_check(const struct bt_host *host, const struct bt_op *op) {
    const struct bt_view *d = &op->dst, *s = op->src;
    int nsrc = bt_op_n_src(op->code) + (op->code == BT_OP_KMEANS && s[2].buf);
    switch (op->code) {
    case BT_OP_RMSNORM: case BT_OP_ROPE:
        return same_or_apart(host, d, &s[0]) && !overlap(host, d, &s[1]) ? NULL
               : "destination partly overlaps a source";
    case BT_OP_CPY: case BT_OP_QUANT_ROW: case BT_OP_SCALE:
        return same_or_apart(host, d, &s[0]) ? NULL : "destination partly overlaps the source";
    case BT_OP_SWIGLU: case BT_OP_ADD: case BT_OP_RELU2:
        return same_or_apart(host, d, &s[0]) && same_or_apart(host, d, &s[1]) ? NULL
               : "destination partly overlaps a source";
    default:
        for (int k = 0; k < nsrc; k++)
            if (overlap(host, d, &s[k])) return "destination overlaps a source";
        return NULL;
    }
}

static const char *shape_check(const struct bt_host *host, const struct bt_op *op);

const char *bt_op_check(const struct bt_op *op, const struct bt_host *host) {
    const char *why = shape_check(host, op);
    return why ? why : alias_check(host, op);
}

static const char *shape_check(const struct bt_host *host, const struct bt_op *op) {
    const struct bt_view *d = &op->dst, *s0 = &op->src[0], *s1 = &op->src[1], *s2 = &op->src[2];
    if (op->code == 0 || op->code >= BT_OP_COUNT || !bt_op_n_src(op->code)) return "unknown op code";
    if (!dims_ok(d)) return "empty or oversized destination";
    int nsrc = bt_op_n_src(op->code);
    if (!d->buf || !s0->buf || (nsrc > 1 && !s1->buf) || (nsrc > 2 && !s2->buf))
        return "a view has no buffer";
    for (int k = 0; k < nsrc; k++)
        if (!dims_ok(&op->src[k])) return "empty or oversized source";
    if (op->code == BT_OP_KMEANS && s2->buf && (!dims_ok(s2) || s2->rows != 1))
        return "weights must be one row";
    if (bt_op_has_weights(op->code)) {
        const struct bt_format *f = fmt_of(host, s0->fmt.type);
        if (!f || !(f->flags & BT_FMT_WEIGHT)) return "not a weight format";
        if (!span(host, s0)) return "weight columns are not a whole number of blocks";
        uint32_t np = f->n_parts ? f->n_parts(&s0->fmt) : 0;
        for (uint32_t k = 0; k < np && k < BT_MAX_PARTS; k++)
            if (!s0->parts[k]) return "the weights' extra parts (codebook) are missing";
    } else if (op->code != BT_OP_KMEANS && !is_f32(s0)) {
        return "source is not F32";
    }
    if (op->code != BT_OP_KMEANS && !is_f32(d)) return "destination is not F32";
    switch (op->code) {
    case BT_OP_GET_ROWS:
        return d->cols != s0->cols || !op->ids ? "shape mismatch or no ids" : NULL;
    case BT_OP_RMSNORM:
        return !same_shape(d, s0) || !is_f32(s1) || s1->cols != d->cols || s1->rows < 1
                   ? "shape mismatch" : NULL;
    case BT_OP_ROPE:
        if (!same_shape(d, s0) || !is_f32(s1) || op->head_dim <= 0 || d->cols % op->head_dim ||
            op->n_rot <= 0 || op->n_rot % 2 || op->n_rot > op->head_dim || op->n_rot > 2048 ||
            s1->cols * 2 < op->n_rot || op->pos0 < 0 || s1->rows < 1)
            return "shape or rotary parameters invalid";
        return NULL;
    case BT_OP_CPY: case BT_OP_QUANT_ROW:
        return same_shape(d, s0) ? NULL : "shape mismatch";
    case BT_OP_SCALE:
        return !same_shape(d, s0) ? "shape mismatch" : !isfinite(op->scale) ? "scale is not finite" : NULL;
    case BT_OP_SWIGLU: case BT_OP_ADD: case BT_OP_RELU2:
        return same_shape(d, s0) && same_shape(d, s1) && is_f32(s1) ? NULL : "shape mismatch";
    case BT_OP_ATTN:
        if (op->n_head <= 0 || op->n_head_kv <= 0 || op->head_dim <= 0 ||
            op->n_head % op->n_head_kv || op->pos0 < 0)
            return "head parameters invalid";
        if (!same_shape(d, s0) || d->cols != (int64_t)op->n_head * op->head_dim ||
            !is_f32(s1) || !is_f32(s2) || !same_shape(s1, s2) ||
            s1->cols != (int64_t)op->n_head_kv * op->head_dim || s1->rows < op->pos0 + d->rows)
            return "shape mismatch (queries, cache or positions beyond the cache)";
        return NULL;
    case BT_OP_MATMUL:
        if (d->cols != s0->rows || !is_f32(s1) || s1->cols != s0->cols || s1->rows != d->rows)
            return "shape mismatch";
        if (op->act != BT_ACT_F32 && op->act != BT_ACT_Q8) return "unknown activation type";
        if (op->act == BT_ACT_Q8 && s0->cols % BT_ACT_Q8_BLOCK)
            return "int8 activations need columns in multiples of 256";
        return NULL;
    case BT_OP_DEQUANT:
        return same_shape(d, s0) ? NULL : "shape mismatch";
    case BT_OP_GEMM: {
        if (!is_f32(s1)) return "source is not F32";
        if (op->flags & ~(uint32_t)(BT_OPF_TRANS_A | BT_OPF_TRANS_B)) return "unknown flags";
        int64_t m = op->flags & BT_OPF_TRANS_A ? s0->cols : s0->rows;
        int64_t k = op->flags & BT_OPF_TRANS_A ? s0->rows : s0->cols;
        int64_t k1 = op->flags & BT_OPF_TRANS_B ? s1->cols : s1->rows;
        int64_t n = op->flags & BT_OPF_TRANS_B ? s1->rows : s1->cols;
        return m != d->rows || n != d->cols || k != k1 ? "shape mismatch" : NULL;
    }
    case BT_OP_CHOL_INV:
        if (s1->fmt.type != BT_TYPE_I32 || s1->rows != 1 || s1->cols != 1) return "info must be 1 x 1 I32";
        if (!same_shape(d, s0) || d->rows != d->cols) return "shape mismatch (n x n)";
        return overlap(host, s0, s1) ? "info overlaps the matrix" : NULL;
    case BT_OP_KMEANS:
        if (d->fmt.type != BT_TYPE_I32 || d->cols != 1 || !is_f32(s0) || !is_f32(s1) ||
            s0->rows != d->rows || s1->cols != s0->cols || s1->rows <= 0)
            return "shape or type mismatch";
        if (s2->buf && (!is_f32(s2) || s2->cols != s0->cols)) return "weights shape mismatch";
        return NULL;
    }
    return "unknown op code";
}
