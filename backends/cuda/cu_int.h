/* cu_int.h - internal interface of the CUDA backend's host side: instance state, buffers and the
 * helpers shared by its C files (cu_plugin.c: device, buffers, memory limit; cu_ops.c: checks,
 * run, non-weight ops; cu_matmul.c: weight ops; cu_vq.c: the vq format; cu_la.c: GEMM and
 * CHOL_INV). Kernels are in cu_kern.h. Not part of the ABI. */
#ifndef BT_CU_INT_H
#define BT_CU_INT_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include "bt/bt_plugin.h"
#include "bt_types.h"
#include "cu_kern.h"

#include <stddef.h>
#include <stdint.h>

/* a device buffer */
struct bt_buf {
    uint8_t       *p;     /* device pointer */
    uint64_t       n;     /* bytes */
    uint32_t       usage; /* BT_BUF_* */
    struct bt_buf *prev, *next; /* the instance's list of live buffers (freed at close) */
    uint64_t       gen;       /* buf_write count (the vq permutation check is per write) */
    uint64_t       perm_ok;   /* gen + 1 when it holds a vq column permutation checked (cu_vq.c) */
    int64_t        perm_cols; /* ... of that many columns */
};

/* a scratch device allocation, grown on demand */
struct bt_cu_scratch {
    void  *p;
    size_t cap;
};

struct bt_cu_ctx {
    const struct bt_host *host;
    int                   dev;        /* CUDA device ordinal */
    int                   n_devices;
    char                  name[128];
    uint64_t              mem_total;  /* cudaMemGetInfo total */
    uint64_t              max_memory; /* the `max_memory` option (0: the device's memory) */
    uint64_t              used[3];    /* bytes in live buffers per BT_BUF_* usage */
    int                   sms;        /* multiprocessors */
    cudaStream_t          st;
    cublasHandle_t        blas;
    struct bt_buf        *bufs;       /* live buffers */
    struct bt_cu_scratch  act;        /* MATMUL act = Q8: dequantized int8 activations (f32) */
    struct bt_cu_scratch  ids;        /* GET_ROWS row indices */
    struct bt_cu_scratch  wdq;        /* MATMUL through cuBLAS: a slice of decoded weights */
    struct bt_cu_scratch  vqx;        /* MATMUL of vq weights: permuted, pre-scaled activations */
    cusolverDnHandle_t    solver;     /* CHOL_INV (cu_la.c): made on first use */
    struct bt_cu_scratch  la;         /* CHOL_INV: the potrf workspace */
    /* CUDA graphs (cu_graph.c, option `graphs`): a run list without cuBLAS products is captured
     * and replayed; the executable graph is updated in place from token to token */
    int                   graphs;     /* option on, and no capture failure so far */
    cudaGraphExec_t       gexec;
    int                   capturing;  /* GET_ROWS then stages its ids in pin (pinned host memory) */
    int32_t              *pin;        /* cudaMallocHost, pin_cap ids */
    size_t                pin_cap, pin_used;
};

/* ---- cu_plugin.c ---- */
/* make c's device the calling thread's current CUDA device (entry points call it first) */
void bt_cu_bind(struct bt_cu_ctx *c);
/* BT_E_BACKEND (BT_E_NOMEM for allocation failures) with "cuda: <what>: <call> failed (<text>)" */
bt_status bt_cu_fail(struct bt_cu_ctx *c, bt_err *err, const char *what, const char *call,
                     cudaError_t e);
/* grow a scratch allocation to at least n bytes (counted against max_memory) */
bt_status bt_cu_scratch(struct bt_cu_ctx *c, struct bt_cu_scratch *s, size_t n, const char *what,
                        bt_err *err);
void bt_cu_scratch_free(struct bt_cu_ctx *c, struct bt_cu_scratch *s);

/* ---- cu_ops.c ---- */
int bt_cu_supports_op(void *ctx, const struct bt_op *op);
bt_status bt_cu_run(void *ctx, const struct bt_op *ops, uint32_t n, bt_err *err);
/* checks (as supports_op, then view bounds) and enqueues one op */
bt_status bt_cu_run_one(struct bt_cu_ctx *c, const struct bt_op *op, bt_err *err);
/* the checks alone: BT_OK or the error run_one would give */
bt_status bt_cu_check_one(struct bt_cu_ctx *c, const struct bt_op *op, bt_err *err);

/* ---- cu_graph.c ---- */
/* run ops through a captured graph. BT_OK or an op's error as bt_cu_run gives it; *ran = 0 (and
 * nothing enqueued) when the list is not for a graph or capturing failed: run it directly */
bt_status bt_cu_run_graph(struct bt_cu_ctx *c, const struct bt_op *ops, uint32_t n, int *ran,
                          bt_err *err);
void bt_cu_graph_free(struct bt_cu_ctx *c);
/* the kernels' description of weight format fmt for rows of cols; 0 if it has no kernels */
int bt_cu_wfmt(const struct bt_cu_ctx *c, const struct bt_tfmt *fmt, int64_t cols,
               struct bt_cu_wfmt *out);

/* ---- cu_matmul.c ---- */
bt_status bt_cu_matmul(struct bt_cu_ctx *c, const struct bt_op *op, bt_err *err);
bt_status bt_cu_dequant(struct bt_cu_ctx *c, const struct bt_op *op, bt_err *err);
bt_status bt_cu_get_rows(struct bt_cu_ctx *c, const struct bt_op *op, bt_err *err);

/* ---- cu_la.c (ABI 2.3: the second-order engine's GEMM and CHOL_INV) ---- */
bt_status bt_cu_gemm(struct bt_cu_ctx *c, const struct bt_op *op, bt_err *err);
bt_status bt_cu_chol_inv(struct bt_cu_ctx *c, const struct bt_op *op, bt_err *err);

/* ---- cu_vq.c (vq weights) ---- */
/* NULL if vq weight view w is runnable (parameters fit its shape, parts present and large
 * enough), else why not */
const char *bt_cu_vq_why(const struct bt_view *w);
/* the kernels' description of w (device pointers) */
void bt_cu_vq_of(const struct bt_view *w, struct bt_cu_vq *q);
/* BT_E_FORMAT unless w's column permutation (if any) is one; reads it back (synchronizing) only
 * after a write to its buffer */
bt_status bt_cu_vq_perm(struct bt_cu_ctx *c, const struct bt_view *w, bt_err *err);
/* y (ntok x rows) = x W^T for small batches (the scratch vqx) */
bt_status bt_cu_vq_gemv(struct bt_cu_ctx *c, const struct bt_view *w, const float *x, int64_t ntok,
                        float *y, bt_err *err);
/* bytes of scratch bt_cu_vq_gemv takes */
static inline size_t bt_cu_vq_scratch(int64_t cols, int64_t ntok) {
    return (size_t)(ntok * (cols + 1)) * sizeof(float);
}

/* MATMUL goes through cuBLAS (weights decoded slice by slice) from this many tokens on */
#define BT_CU_GEMM_MIN 16
/* bytes of decoded weights per cuBLAS slice */
#define BT_CU_WDQ_BYTES ((size_t)32 << 20)

#endif
