/* convert.h - the conversion stage: stream tensors from a reader through a quantizer into a
 * writer, with bounded memory, and report what it cost. */
#ifndef BT_CONVERT_H
#define BT_CONVERT_H
#include "bt/bt.h"

struct bt_convert_args {
    bt_registry *reg;
    const char  *reader, *in_path;   /* reader plugin name (or auto) and input */
    bt_optset   *reader_opts;        /* owned by bt_convert (may be NULL) */
    const char  *method, *keep;      /* quantizer name (or none) and keep patterns */
    bt_optset   *quant_opts;         /* owned */
    const char  *writer, *out_path;
    bt_optset   *writer_opts;        /* owned */
    const char  *type, *keep_type;   /* tq2_0|tq1_0|mtq ; f16|bf16|f32|q8_0 */
    const char  *fallback_type;      /* tensors the quantizer refuses: auto|f16|bf16|f32|q8_0
                                      * (NULL = auto: q8_0 if rows are a multiple of 32, else f16) */
    const char  *report;             /* JSON path or "" */
    int          quiet, progress;
    double       budget_bpw;     /* > 0: distribute planes to meet this mean bits/weight */
    int64_t      budget_bytes;   /* > 0: ... or this total output size */
    /* per-input-column error weights for a tensor (calibration), or NULL */
    const float *(*colw_fn)(void *ctx, const char *name, int64_t cols);
    void        *colw_ctx;
    /* calibration Hessians (bt_run_opts.calib_hess / calib_entry on colw_ctx), or NULL */
    bt_status  (*hess_fn)(void *ctx, const char *tensor, int64_t cols, int want, const float **H,
                          uint32_t *entry, bt_err *err);
    const char *(*entry_fn)(void *ctx, uint32_t i);
    const char  *calib_path;
    int          second_order;   /* GPTQ-style with the full Hessians */
    double       damp;           /* relative diagonal damping */
    int          act_order;      /* columns by decreasing diag(H) */
    int          budget_relative; /* second_order budget: tr(E H E^T) / tr(W H W^T) x weights */
    bt_status  (*done_fn)(void *ctx, const char *tensor, const struct bt_tfmt *fmt, const void *data,
                          uint64_t nbytes, bt_err *err); /* tensor final (sequential calibration) */
    int          sequential;     /* convert layer by layer: q k v o gate up down */
    int          rotate;         /* [quantize] rotate: BT_ROTATE_* (rotate.h), 0 = none */
    uint64_t     rotate_seed;    /* [quantize] rotate_seed (0 = the fixed default) */
    const void  *config;         /* effective configuration for the report (json-c, borrowed) */
    struct bt_hessian *hess;     /* prepared Hessian cache ... */
    int64_t      hess_entry;     /* ... and the calibration entry it was made from (-1: none) */
};

struct tensor_plan {
    struct bt_tfmt fmt;      /* output format (invalid geometry: the quantizer decides) */
    int            quantize; /* 1 if the quantizer handles it */
    int            copy;     /* 1: stored as read (input already in a format with extra parts) */
    char           note[96]; /* why it was kept */
};

bt_status bt_convert(struct bt_convert_args *a, bt_err *err);
/* the output format of t (quantize or keep); w may be NULL (no writer check) */
bt_status bt_convert_plan(struct bt_convert_args *a, struct bt_quantizer *q, struct bt_writer *w,
                          const struct bt_tensor *t, const struct bt_tfmt *chosen, struct tensor_plan *p,
                          bt_err *err);
/* the prepared Hessian of t's input (cached across tensors sharing an input), or NULL without
 * second_order; an error when second_order is on and the calibration has none for t */
bt_status bt_convert_hessian(struct bt_convert_args *a, const struct bt_tensor *t, const struct bt_hessian **h,
                             bt_err *err);
/* budget allocation: chosen[i] for every tensor whose format the quantizer leaves open (others
 * untouched) */
bt_status bt_budget_allocate(struct bt_convert_args *a, struct bt_reader *r, struct bt_quantizer *q,
                             struct bt_tfmt *chosen, bt_err *err);
#endif
