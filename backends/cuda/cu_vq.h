/* cu_vq.h - the CUDA backend's decoder of bt's vq format (core/types/bt_vq.c, docs/formats.md
 * "vq"): a tensor's layout as the kernels take it (struct bt_cu_vq, by value) and the value of
 * one element, with the arithmetic of bt_vq_to_f32_rows (codebook vector, + residual vector,
 * then * scale + bias of its column), so decoded values are bit-identical. Plain C11 that nvcc
 * also compiles for the device (cu_vq.cu); tests/backend/test_cuda_vq.c checks it on the host. */
#ifndef BT_CU_VQ_H
#define BT_CU_VQ_H

#include "cu_dec.h"

#define BT_CU_VQ_MAX_V 32 /* longest vector (BT_VQ_MAX_V of core/types/bt_types.h; cu_vq.c checks) */

/* a vq weight: bt_vq_layout's numbers plus the pointers of its packed rows and parts (device
 * memory in the backend; NULL for a part the format does not have) */
struct bt_cu_vq {
    const uint8_t *data;  /* packed rows, row 0 (rows x R bytes; row blocks of v rows) */
    const uint8_t *cb;    /* part "codebook" (f16) */
    const uint8_t *colp;  /* part "columns": permutation (u16), scales, biases (f16) */
    const uint8_t *oc;    /* part "outliers": u16 codes, nrb0 x n_out */
    const uint8_t *tail;  /* part "tail": the last, partial row block's code stream */
    int64_t  rows, cols, ncode, gs; /* ncode = cols - n_out; gs = columns per codebook group */
    uint64_t R;                     /* packed bytes per row */
    uint64_t cb_main, cb_res, cb_out;        /* byte offsets in the codebook part */
    uint64_t col_perm, col_scale, col_bias;  /* byte offsets in the columns part, or UINT64_MAX */
    int32_t  v, b1, b2, t;                   /* vector length, index bits, code bits b1 + b2 */
    int32_t  n_out, v0, b0;                  /* outlier columns, their vector length, bits */
};

/* the t-bit code at bit `bit` of a code stream, LSB first (bt_vq_get_code) */
BT_CU_FN uint32_t bt_cu_vq_code(const uint8_t *s, uint64_t bit, int32_t t) {
    const uint8_t *p = s + bit / 8;
    const uint32_t sh = (uint32_t)(bit % 8), need = (sh + (uint32_t)t + 7) / 8;
    uint64_t acc = 0;
    for (uint32_t i = 0; i < need; i++) acc |= (uint64_t)p[i] << (8 * i);
    return (uint32_t)(acc >> sh) & (uint32_t)((1ull << t) - 1);
}

/* the code stream of row block rb: in the packed rows, or (the partial last block) the tail */
BT_CU_FN const uint8_t *bt_cu_vq_stream(const struct bt_cu_vq *q, int64_t rb) {
    return (rb + 1) * q->v > q->rows ? q->tail : q->data + (uint64_t)rb * (uint64_t)q->v * q->R;
}

/* the column of stream position p (0..cols: the n_out outliers first, then the coded columns) */
BT_CU_FN int64_t bt_cu_vq_col(const struct bt_cu_vq *q, int64_t p) {
    return q->col_perm == UINT64_MAX ? p : (int64_t)bt_cu_u16(q->colp + q->col_perm + 2 * p);
}

/* f16 number i of a part */
BT_CU_FN float bt_cu_vq_h(const uint8_t *part, uint64_t off, uint64_t i) {
    return bt_cu_h2f(bt_cu_u16(part + off + 2 * i));
}

/* element e of the main (and residual) codebook vectors of code at position p (group p / gs) */
BT_CU_FN float bt_cu_vq_main(const struct bt_cu_vq *q, uint32_t code, int64_t p, int32_t e) {
    const uint64_t g = (uint64_t)(p / q->gs), m1 = (1u << q->b1) - 1;
    return bt_cu_vq_h(q->cb, q->cb_main, ((g << q->b1) + (code & m1)) * (uint64_t)q->v + (uint64_t)e);
}
BT_CU_FN float bt_cu_vq_res(const struct bt_cu_vq *q, uint32_t code, int64_t p, int32_t e) {
    const uint64_t g = (uint64_t)(p / q->gs);
    return bt_cu_vq_h(q->cb, q->cb_res, ((g << q->b2) + (code >> q->b1)) * (uint64_t)q->v + (uint64_t)e);
}

/* the outlier code of row block rb0 (of v0 rows) and outlier position p; masked to b0 bits
 * (valid tensors have no other bits: bt_vq_check), so a bad code cannot read out of bounds */
BT_CU_FN uint32_t bt_cu_vq_ocode(const struct bt_cu_vq *q, int64_t rb0, int64_t p) {
    return bt_cu_u16(q->oc + ((uint64_t)rb0 * (uint64_t)q->n_out + (uint64_t)p) * 2) &
           ((1u << q->b0) - 1);
}

/* the decoded value of row r at stream position p (it lands in column bt_cu_vq_col(q, p)) */
BT_CU_FN float bt_cu_vq_elem(const struct bt_cu_vq *q, int64_t r, int64_t p) {
    float w;
    if (p < q->n_out) {
        const uint32_t code = bt_cu_vq_ocode(q, r / q->v0, p);
        w = bt_cu_vq_h(q->cb, q->cb_out, (uint64_t)code * (uint64_t)q->v0 + (uint64_t)(r % q->v0));
    } else {
        const int64_t pc = p - q->n_out;
        const int32_t e = (int32_t)(r % q->v);
        const uint8_t *s = bt_cu_vq_stream(q, r / q->v);
        const uint32_t code = bt_cu_vq_code(s, (uint64_t)pc * (uint64_t)q->t, q->t);
        w = bt_cu_vq_main(q, code, pc, e);
        if (q->b2) w = w + bt_cu_vq_res(q, code, pc, e);
    }
    if (q->col_scale != UINT64_MAX) {
        const int64_t col = bt_cu_vq_col(q, p);
        const float sc = bt_cu_vq_h(q->colp, q->col_scale, (uint64_t)col);
        w = w * sc + bt_cu_vq_h(q->colp, q->col_bias, (uint64_t)col);
    }
    return w;
}

#endif
