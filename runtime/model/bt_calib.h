/* bt_calib.h - calibration statistics for Hessian-aware quantizers: per linear-layer input Gram
 * matrices G = sum_t x_t x_t^T (f64 accumulation) from the original model, and the BTCAL1 file.
 *
 * BTCAL1 byte layout (all little-endian, no padding):
 *   header : char magic[8] = "BTCAL1\0\0"; u32 version = 1; u32 n_entries; u64 n_tokens
 *            (activation rows seen per entry, BOS included); u32 n_windows; u32 ctx
 *   entry  : u32 name_len; char names[name_len] (comma-separated tensor names sharing this
 *            input, e.g. "blk.0.attn_q.weight,blk.0.attn_k.weight,blk.0.attn_v.weight"; no NUL);
 *            u32 n (input features); u32 storage (0 = diagonal only, 1 = full matrix);
 *            u64 count (rows accumulated); f64 diag[n] (G_ii);
 *            if storage == 1: f32 mat[n*n] (G row-major, symmetric, full)
 * G is a plain sum over rows (not a mean): divide by count for E[x x^T]. */
#ifndef BT_CALIB_H
#define BT_CALIB_H

#include "bt_eval.h"
#include "bt_model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BT_CALIB_MAGIC "BTCAL1\0\0"

struct bt_calib_opts {
    int32_t ctx;         /* window length incl. BOS (0 = 512), ctx-1 text tokens per window */
    int32_t max_windows; /* 0 = all windows of the text */
    int32_t diag_only;   /* 1: store only diag (n f64); else the full f32 matrix as well */
    int32_t tokenize;    /* BT_EVAL_TOK_PARAGRAPHS (default) or BT_EVAL_TOK_WHOLE */
};

/* Run the text through m (the original model) and write the BTCAL1 file atomically. Memory:
 * one f64 n x n accumulator per entry (4 per layer); use diag_only for large models. */
bt_status bt_calibrate(bt_model *m, const char *text_path, const struct bt_calib_opts *o,
                       const char *out_path, bt_err *err);
/* the same from text ids (no BOS; each window gets one) */
bt_status bt_calibrate_ids(bt_model *m, const int32_t *ids, int64_t n,
                           const struct bt_calib_opts *o, const char *out_path, bt_err *err);

/* ---- loading ------------------------------------------------------------------------------- */
typedef struct bt_calib bt_calib;

struct bt_calib_entry {
    char     *names;   /* comma-separated tensor names, NUL-terminated (owned by the bt_calib) */
    int32_t   n;       /* input features */
    uint64_t  count;   /* rows accumulated */
    double   *diag;    /* (n) G_ii */
    float    *mat;     /* (n x n) full G, or NULL when stored diag-only or opened lazily */
    int32_t   full;    /* 1: the file holds the full matrix */
    uint64_t  mat_off; /* file offset of the matrix */
};

/* read everything, matrices included */
bt_status bt_calib_load(const char *path, bt_calib **out, bt_err *err);
/* read the index and diagonals; matrices stay in the file (bt_calib_matrix reads one) */
bt_status bt_calib_open(const char *path, bt_calib **out, bt_err *err);
/* entry e's full G (n x n f32) into dst; BT_E_UNSUPPORTED for diag-only entries */
bt_status bt_calib_matrix(const bt_calib *c, const struct bt_calib_entry *e, float *dst, bt_err *err);
void      bt_calib_free(bt_calib *c); /* NULL is a no-op */
uint32_t  bt_calib_count(const bt_calib *c);
uint64_t  bt_calib_tokens(const bt_calib *c);
const struct bt_calib_entry *bt_calib_at(const bt_calib *c, uint32_t i);
/* the entry whose names list contains tensor_name exactly, or NULL */
const struct bt_calib_entry *bt_calib_find(const bt_calib *c, const char *tensor_name);
/* diag of tensor_name's input (n doubles) or NULL; *n set when found */
const double *bt_calib_diag(const bt_calib *c, const char *tensor_name, int32_t *n);

/* ---- sequential calibration (bt_calib_seq.c) --------------------------------------------------
 * Hessians of layer l collected with layers < l (and the finished linears of layer l) in their
 * quantized form. Requests must come layer by layer in the order q k v o gate up down; every
 * linear of a layer is reported through bt_calib_seq_done (also the ones kept unquantized). */
typedef struct bt_calib_seq bt_calib_seq;
/* m: the original model (its layer weights get replaced as tensors are done; m must outlive s) */
bt_status bt_calib_seq_new(bt_model *m, const int32_t *ids, int64_t n, const struct bt_calib_opts *o,
                           bt_calib_seq **out, bt_err *err);
void      bt_calib_seq_free(bt_calib_seq *s);
/* E[x x^T] (cols x cols, owned by s, valid until the next call) of tensor's input; *H = NULL for
 * tensors that are not decoder linears; *key identifies the input (tensors sharing it) */
bt_status bt_calib_seq_hess(bt_calib_seq *s, const char *tensor, int64_t cols, const float **H, int *key,
                            bt_err *err);
/* tensor is final in fmt (data copied) */
bt_status bt_calib_seq_done(bt_calib_seq *s, const char *tensor, const struct bt_tfmt *fmt, const void *data,
                            uint64_t nbytes, bt_err *err);

#ifdef __cplusplus
}
#endif
#endif
