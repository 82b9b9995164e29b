/* rotate.h - [quantize] rotate: an orthogonal rotation of the residual stream folded into the
 * weights before quantization (QuaRot/SpinQuant style), served by a reader wrapper, and the
 * matching transform of calibration Hessians. The result is still a standard Llama model. */
#ifndef BT_ROTATE_H
#define BT_ROTATE_H
#include "bt/bt.h"

struct bt_convert_args;
struct bt_rotation;

enum {
    BT_ROTATE_NONE     = 0,
    BT_ROTATE_HADAMARD = 1, /* randomized Walsh-Hadamard for power-of-two sizes, else random
                             * orthogonal (QR of a Gaussian matrix) */
    BT_ROTATE_DENSE    = 2, /* random orthogonal (QR) for every size (tests the general path) */
};

/* Replace *r (an open reader of a Llama-shaped model) by a reader that serves the rotated model
 * with Q (n_embd x n_embd) on the residual stream and R (head_dim x head_dim) per head on v and
 * attn_output: the same tensors and metadata, rotated 2-D tensors as F32 with data = NULL
 * (read through read_f32; each is computed when first read and dropped on release), norm
 * weights as ones, and output.weight appended for tied embeddings. seed 0 is a fixed default.
 * On success the wrapper owns the old reader (bt_reader_close closes both); on failure *r is
 * unchanged. hooks (may be NULL): its calibration callbacks are routed through the rotation
 * (matrices and column weights of the rotated inputs) and restored when the wrapper closes. */
bt_status bt_rotate_wrap(struct bt_reader **r, int kind, uint64_t seed,
                         struct bt_convert_args *hooks, bt_err *err);

/* the rotation behind a reader made by bt_rotate_wrap, else NULL */
const struct bt_rotation *bt_rotate_of(const struct bt_reader *r);

/* out (n x n) = the input Hessian of tensor_name in the rotated model, from G (n x n) = E[x x^T]
 * of its input in the original model: q/k/v/gate/up/output: Q^T D^-1 G D^-1 Q (D = the norm
 * weights; 1/g = 0 where g = 0), attn_output: Rb^T G Rb, ffn_down: G. out may equal G. */
bt_status bt_rotate_hessian(const struct bt_rotation *rot, const char *tensor_name,
                            const float *G, int64_t n, float *out, bt_err *err);

/* M (n x n, row-major) = the orthogonal matrix the wrapper uses for size n: stream 1 is Q
 * (n = n_embd), stream 2 is R (n = head_dim). Rows of the rotated weights are w^T M. */
bt_status bt_rotate_matrix(int kind, uint64_t seed, int stream, int64_t n, float *M,
                           bt_err *err);

/* ---- building blocks (rotate_orth.c) ---------------------------------------------------------- */
struct bt_orth {
    int64_t n;     /* size */
    int     dense; /* 1: M holds the matrix; 0: randomized Hadamard S H / sqrt(n) */
    float  *s;     /* (n) random signs of the Hadamard form */
    float  *M;     /* (n x n) row-major, dense form only */
};
/* the matrix for size n: Hadamard for BT_ROTATE_HADAMARD and a power-of-two n, else QR */
bt_status bt_orth_init(struct bt_orth *o, int kind, uint64_t seed, int stream, int64_t n, bt_err *err);
void      bt_orth_free(struct bt_orth *o);
/* left = 0: each of the count rows at X (row stride ld, o->n values each) becomes x^T M;
 * left = 1: the o->n rows at X (stride ld) become M^T X over their first count columns */
bt_status bt_orth_apply(const struct bt_orth *o, float *X, int64_t count, int64_t ld, int left, bt_err *err);
#endif
