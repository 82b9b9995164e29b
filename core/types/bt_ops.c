/* bt_ops.c - the shape and parameter rules of every backend op (plugin ABI "Writing a
 * backend"): one definition that every backend applies before its own limits, so supports_op
 * means the same thing everywhere. */
#include "bt_types.h"

static int is_f32(const struct bt_view *v) { return v->fmt.type == BT_TYPE_F32; }
static int same_shape(const struct bt_view *a, const struct bt_view *b) {
    return a->rows == b->rows && a->cols == b->cols;
}

int bt_op_n_src(uint32_t code) {
    switch (code) {
    case BT_OP_GET_ROWS: case BT_OP_CPY: case BT_OP_DEQUANT: return 1;
    case BT_OP_ATTN: return 3;
    case BT_OP_KMEANS: return 2; /* src2 (weights) is optional */
    default: return code > 0 && code < BT_OP_COUNT ? 2 : 0;
    }
}

int bt_op_has_weights(uint32_t code) {
    return code == BT_OP_GET_ROWS || code == BT_OP_MATMUL || code == BT_OP_DEQUANT;
}

const char *bt_op_check(const struct bt_op *op) {
    const struct bt_view *d = &op->dst, *s0 = &op->src[0], *s1 = &op->src[1], *s2 = &op->src[2];
    if (op->code == 0 || op->code >= BT_OP_COUNT) return "unknown op code";
    if (d->rows <= 0 || d->cols <= 0) return "empty destination";
    int nsrc = bt_op_n_src(op->code);
    if (!d->buf || !s0->buf || (nsrc > 1 && !s1->buf) || (nsrc > 2 && !s2->buf))
        return "a view has no buffer";
    if (bt_op_has_weights(op->code)) {
        const struct bt_format *f = bt_format_get(s0->fmt.type);
        if (!f || !(f->flags & BT_FMT_WEIGHT)) return "not a weight format";
        if (s0->rows <= 0 || !bt_fmt_row_bytes(&s0->fmt, s0->cols))
            return "weight columns are not a whole number of blocks";
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
    case BT_OP_CPY:
        return same_shape(d, s0) ? NULL : "shape mismatch";
    case BT_OP_SWIGLU: case BT_OP_ADD:
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
    case BT_OP_KMEANS:
        if (d->fmt.type != BT_TYPE_I32 || d->cols != 1 || !is_f32(s0) || !is_f32(s1) ||
            s0->rows != d->rows || s1->cols != s0->cols || s1->rows <= 0)
            return "shape or type mismatch";
        if (s2->buf && (!is_f32(s2) || s2->cols != s0->cols)) return "weights shape mismatch";
        return NULL;
    }
    return "unknown op code";
}
