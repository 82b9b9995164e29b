/* test_backend_ops.h - shared by the backend conformance harness: test_backend_ops.c (loading,
 * running, comparing, reporting, error paths) and test_backend_ops_cases.c (the case generators
 * with their plain-C models). A case is a list of ops over host images of buffers; every backend
 * gets the same images, runs the list, and its buffers are read back and compared region by
 * region. Bytes outside the output regions must come back unchanged. */
#ifndef TEST_BACKEND_OPS_H
#define TEST_BACKEND_OPS_H

#include "bt/bt_plugin.h"
#include "bt_types.h"

#include <stddef.h>
#include <stdint.h>

#define BO_MAX_BUFS 16
#define BO_MAX_OPS  24
#define BO_MAX_REGS 16
#define BO_MAX_OWN  48

/* how an output region is compared */
enum {
    BO_TOL     = 0, /* f32: |got - want| <= rtol * mag[i] + atol */
    BO_EXACT   = 1, /* bit-identical */
    BO_KMEANS  = 2, /* i32 centroid index: equal, or a near tie (see test_backend_ops.c) */
    BO_SCRATCH = 3, /* intermediate values of an op list: may hold anything */
};

struct bo_region {
    int          buf;     /* buffer index */
    uint64_t     off;     /* bytes */
    int64_t      n;       /* 4-byte elements (f32; i32 for BO_KMEANS) */
    int64_t      cols;    /* row length, for messages */
    int          kind;    /* BO_* */
    const void  *want;    /* the plain-C model's values (n elements), NULL if not modelled */
    const float *mag;     /* BO_TOL: per-element magnitude */
    double       rtol, atol;
    int          same_as; /* >= 0: cpu backends must give the bits of that region (else -1) */
};

/* KMEANS tie rule data (host copies) */
struct bo_kmeans {
    const float *pts, *cent, *w; /* n x d, k x d, d (NULL: all 1) */
    int64_t      n, d, k;
};

struct bo_case {
    char     op[16];   /* group: op name */
    char     fmt[40];  /* group: format label */
    char     desc[200];/* the shape and parameters, for messages */
    int      nbuf;
    uint8_t *img[BO_MAX_BUFS];   /* initial contents (64-byte aligned) */
    size_t   size[BO_MAX_BUFS];
    uint32_t usage[BO_MAX_BUFS]; /* BT_BUF_* */
    int      nops;
    struct bt_op ops[BO_MAX_OPS]; /* view.buf = BO_BUF(buffer index), or NULL */
    int      nreg;
    struct bo_region reg[BO_MAX_REGS];
    struct bo_kmeans km;
    int      threads_check; /* cpu backends: bit-identical with 1 thread */
    int      wrap;          /* buffer 0 through buf_wrap where the backend offers it */
    int      optional;      /* an optional format or op: non-CPU backends may decline (supports_op
                             * 0) unless named by --require */
    int      nown;
    void    *own[BO_MAX_OWN]; /* freed with the case */
};
#define BO_BUF(i)       ((bt_buf *)(uintptr_t)((i) + 1))
#define BO_BUF_INDEX(p) ((int)(uintptr_t)(p)-1)

typedef void (*bo_emit_fn)(struct bo_case *c, void *user);

/* the ops the generator knows, in generation order ("seq" = a whole layer as one op list) */
extern const char *const bo_ops[];
/* emit every case of op (NULL: all), fixed seeds per op; emit owns nothing: the generator frees
 * each case after emit returns */
void bo_generate(const char *op, bo_emit_fn emit, void *user);
/* 1: leave out the big MATMUL shapes (for runs under emulation; main's --quick) */
extern int bo_quick;
const char *bo_op_name(uint32_t code); /* "matmul", ... or "?" */

/* vq cases (test_backend_ops_vq.c), emitted with dequant, get_rows and matmul */
void bo_gen_vq_dequant(bo_emit_fn emit, void *user);
void bo_gen_vq_get_rows(bo_emit_fn emit, void *user);
void bo_gen_vq_matmul(bo_emit_fn emit, void *user);
/* BitNet b1.58's ops of ABI 2.2 (test_backend_ops_bitnet.c): RELU2, QUANT_ROW; optional (cases
 * with optional = 1) until every backend runs them */
void bo_gen_relu2(bo_emit_fn emit, void *user);
void bo_gen_quant_row(bo_emit_fn emit, void *user);
/* the second-order engine's ops of ABI 2.3 (test_backend_ops_la.c): GEMM, CHOL_INV; optional */
void bo_gen_gemm(bo_emit_fn emit, void *user);
void bo_gen_chol_inv(bo_emit_fn emit, void *user);

/* ---- plain-C models (test_backend_ops_models.c) ---- */
/* x -> its BT_ACT_Q8 round trip (n a multiple of 256) */
void bo_q8_roundtrip(const float *x, int64_t n, float *out);
/* want[t,r] = sum_c W[r,c] x[t,c] (x: its Q8 round trip for BT_ACT_Q8), mag = sum_c |W x| */
void bo_model_matmul(const float *wf, int64_t rows, int64_t cols, const float *X, int64_t ntok,
                     int act, float *want, float *mag);
void bo_model_rmsnorm(const float *x, const float *w, int64_t ntok, int64_t n, float eps,
                      float *y, float *mag);
void bo_model_rope(const float *x, const float *freq, int64_t ntok, int64_t cols, int hd,
                   int n_rot, int halves, int pos0, float *y, float *mag);
void bo_model_attn(const float *q, const float *kc, const float *vc, int ntok, int pos0, int nh,
                   int nkv, int hd, float scale, float *out, float *mag);
void bo_model_kmeans(const float *pts, const float *cent, const float *w, int64_t n, int64_t d,
                     int64_t K, int32_t *out);

#endif
