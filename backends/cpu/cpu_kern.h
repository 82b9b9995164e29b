/* cpu_kern.h - internal interface between the CPU backend driver (threads, checks) and its
 * per-ISA kernel tables (scalar reference, AVX2). Not part of the plugin ABI. */
#ifndef BT_CPU_KERN_H
#define BT_CPU_KERN_H

#include "bt/bt_plugin.h"
#include "bt_types.h"

#include <stddef.h>
#include <stdint.h>

/* ---- ternary block geometry -------------------------------------------------------------- */
enum { BT_CPU_L0 = 0, BT_CPU_L1 = 1, BT_CPU_TQ1 = 2 };

/* Where the codes and scales of one ternary block live (TQ1_0, TQ2_0, MTQ). TQ2_0 is the
 * 2-bit interleaved layout of MTQ with one plane of 256 and the scale after the codes. */
struct bt_cpu_tgeom {
    uint32_t N;         /* planes (1 for TQ1_0/TQ2_0) */
    uint32_t B;         /* elements per block */
    uint32_t kind;      /* BT_CPU_L0 (2-bit interleaved), BT_CPU_L1 (base-3 groups), BT_CPU_TQ1 */
    uint32_t C;         /* L0: elements per chunk, min(B, 128) */
    size_t   bb;        /* bytes per block */
    size_t   code_off;  /* byte offset of the codes inside a block */
    size_t   scale_off; /* byte offset of the N fp16 scales inside a block */
};
/* fill g for a ternary fmt; 0 if fmt is not ternary (or its geometry is invalid) */
int bt_cpu_tgeom_of(const struct bt_tfmt *fmt, struct bt_cpu_tgeom *g);

/* fp16 scale p of block blk */
static inline float bt_cpu_tscale(const struct bt_cpu_tgeom *g, const uint8_t *blk, uint32_t p) {
    const uint8_t *s = blk + g->scale_off + 2 * p;
    return bt_fp16_to_f32((uint16_t)(s[0] | (s[1] << 8)));
}

/* L1 decode table: byte v -> its 5 base-3 digits (= codes t+1), one per byte, low byte first */
extern const uint64_t bt_cpu_b3_lut[256];

/* scalar: codes (t+1 in {0,1,2}) of one block, plane-major (N x B); codes needs N*B + 8 bytes */
void bt_cpu_ref_codes(const struct bt_cpu_tgeom *g, const uint8_t *blk, uint8_t *codes);

/* ---- int8 activations as kernels see them ------------------------------------------------- */
struct bt_cpu_act {
    const int8_t  *xq;     /* (cols) int8 activations */
    const float   *xs;     /* (cols / ablock) per-block scales */
    int64_t        ablock; /* elements per activation scale, a multiple of 32 */
    const int32_t *bsum;   /* (cols / 32) sums of xq over each run of 32 elements */
};

/* ---- kernel signatures (each works on a contiguous range of whole rows) -------------------- */
/* y[r] = sum_c W[r,c] x[c] for r < nrows; W points at the first row, rows rb bytes apart */
typedef void (*bt_cpu_gemv_f32_fn)(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb,
                                   int64_t nrows, int64_t cols, const float *x, float *y);
/* same with int8 activations */
typedef void (*bt_cpu_gemv_q8_fn)(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb,
                                  int64_t nrows, int64_t cols, const struct bt_cpu_act *a,
                                  float *y);
/* n elements (whole blocks) of packed data -> f32, bit-identical to bt_to_f32 */
typedef void (*bt_cpu_decode_fn)(const struct bt_tfmt *fmt, const uint8_t *src, int64_t n,
                                 float *dst);
/* batched int8 activations: a describes token 0, token t's data is at xq + t*cols,
 * xs + t*(cols/ablock), bsum + t*(cols/32). Y[t*ldy + r] for r < nrows, t < ntok; scratch holds
 * the bytes the picker asked for (NULL if 0). Every (row, token) value must be exactly what the
 * same kernel gives for ntok = 1 and any row split (gemv_q8 is this kernel with ntok = 1). */
typedef void (*bt_cpu_gemm_q8_fn)(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb,
                                  int64_t nrows, int64_t cols, const struct bt_cpu_act *a,
                                  int64_t ntok, float *Y, int64_t ldy, uint8_t *scratch);
/* Y[t*ldy + r] = dot(Wf[r*cols ..], X[t*cols ..]) for r < nr, t < ntok (f32 rows) */
typedef void (*bt_cpu_tile_fn)(const float *Wf, int64_t nr, int64_t cols, const float *X,
                               int64_t ntok, float *Y, int64_t ldy);

/* ---- vq (cpu_vq.c): the per-weight cache kept with the codebook buffer -------------------- */
struct bt_buf;
struct bt_cpu_vq {
    struct bt_tfmt      fmt;    /* what it was built for */
    struct bt_vq_layout L;
    const struct bt_buf *colbuf; /* the columns part it read */
    uint32_t gen_cb, gen_col;    /* their write generations then */
    float   *cb;                /* the codebook part as f32 (same element offsets / 2) */
    int32_t *perm;              /* stream position -> column (identity without BT_VQ_PERM) */
    float   *scale, *bias;      /* per column, or NULL without BT_VQ_NORM */
};
/* y[rb*v + e] for row blocks [rb0, rb1) = sum_p xp[p] * (C + R)[code of p] */
typedef void (*bt_cpu_vq_gemv_fn)(const struct bt_cpu_vq *q, const uint8_t *data,
                                  const uint8_t *tail, int64_t rb0, int64_t rb1, const float *xp,
                                  float *y);
extern bt_cpu_vq_gemv_fn bt_cpu_vq_gemv_ref;
void bt_cpu_vq_gemv_avx2(const struct bt_cpu_vq *q, const uint8_t *data, const uint8_t *tail,
                         int64_t rb0, int64_t rb1, const float *xp, float *y); /* cpu_vq_avx2.c */
/* k-means assignment of points [i0, i1) (cpu_vq_avx2.c); centroids component-major in blocks of 8 */
typedef void (*bt_cpu_kmeans_fn)(const float *P, int64_t d, const float *cs, int64_t K,
                                 const float *w, int64_t i0, int64_t i1, int32_t *idx);
void bt_cpu_kmeans_avx2(const float *P, int64_t d, const float *cs, int64_t K, const float *w,
                        int64_t i0, int64_t i1, int32_t *idx);

/* A kernel table. Pickers return NULL for formats the ISA leaves to the scalar table. */
struct bt_cpu_isa {
    const char *name;                                        /* "scalar", "avx2", "neon" */
    bt_cpu_gemv_f32_fn (*gemv_f32)(const struct bt_tfmt *fmt); /* picker */
    bt_cpu_gemv_q8_fn (*gemv_q8)(const struct bt_tfmt *fmt);   /* picker (ternary, Q8_0, Q4_0) */
    bt_cpu_decode_fn (*decode)(const struct bt_tfmt *fmt);     /* picker */
    bt_cpu_tile_fn tile;                                     /* f32 gemm micro-kernel */
    /* picker of the batched int8 kernel (NULL: none, the driver loops gemv_q8 kernels over
     * tokens); *scratch = scratch bytes per call of the kernel for cols, ablock and ntok */
    bt_cpu_gemm_q8_fn (*gemm_q8)(const struct bt_tfmt *fmt, int64_t cols, int64_t ablock,
                                 int64_t ntok, size_t *scratch);
    bt_cpu_vq_gemv_fn vq_gemv; /* vq accumulation kernel (NULL: scalar) */
    bt_cpu_kmeans_fn  kmeans;  /* KMEANS assignment (NULL: the scalar double-precision loop) */
};

extern const struct bt_cpu_isa bt_cpu_isa_ref;
extern const struct bt_cpu_isa bt_cpu_isa_avx2;
extern const struct bt_cpu_isa bt_cpu_isa_neon;     /* cpu_neon.c: plain ARMv8-A NEON */
extern const struct bt_cpu_isa bt_cpu_isa_neon_dot; /* the same with sdot int8 kernels */

/* NEON (cpu_neon.c, cpu_neon_q8.c built plain and as cpu_neon_q8_dot.c with dotprod) */
void bt_cpu_neon_codes(const struct bt_cpu_tgeom *g, const uint8_t *blk, uint8_t *codes);
bt_cpu_gemv_q8_fn bt_cpu_neon_pick_gemv_q8(const struct bt_tfmt *fmt);
bt_cpu_gemv_q8_fn bt_cpu_neon_dot_pick_gemv_q8(const struct bt_tfmt *fmt);
bt_cpu_gemm_q8_fn bt_cpu_neon_pick_gemm_q8(const struct bt_tfmt *fmt, int64_t cols, int64_t ablock,
                                           int64_t ntok, size_t *scratch);
bt_cpu_gemm_q8_fn bt_cpu_neon_dot_pick_gemm_q8(const struct bt_tfmt *fmt, int64_t cols,
                                               int64_t ablock, int64_t ntok, size_t *scratch);

/* ---- attention (cpu_attn.c; blocked AVX2 kernel in cpu_attn_avx2.c) ------------------------ */
struct bt_cpu_attn {
    const float *q;      /* (ntok x n_head*hd) queries */
    const float *kc;     /* (n_ctx x n_kv*hd) key cache, position-major */
    const float *vc;     /* value cache, same shape */
    float       *out;    /* (ntok x n_head*hd) */
    int          ntok, pos0, n_head, n_kv, hd;
    float        scale;
};
/* runs the whole attention (threads inside); 0 on success, -1 out of memory */
typedef int (*bt_cpu_attn_fn)(const struct bt_host *host, const struct bt_cpu_attn *a);
int bt_cpu_attn_ref(const struct bt_host *host, const struct bt_cpu_attn *a);
/* one (token, head) of the reference: sc has pos0 + t + 1 floats of scratch */
void bt_cpu_attn_one(const struct bt_cpu_attn *a, int t, int h, float *sc);
/* 1 if the blocked kernel runs this shape */
int bt_cpu_attn_avx2_ok(const struct bt_cpu_attn *a);
int bt_cpu_attn_avx2(const struct bt_host *host, const struct bt_cpu_attn *a);

/* ---- plugin instance ---------------------------------------------------------------------- */
struct bt_buf {
    uint8_t       *p;          /* host memory */
    uint64_t       n;          /* bytes */
    int            wrapped;    /* 1: borrowed (buf_wrap), not freed */
    struct bt_cpu_vq *vq;      /* vq cache when this is a codebook part (cpu_vq.c) */
    uint32_t       gen;        /* bumped by every buf_write */
    struct bt_buf *prev, *next; /* the instance's live buffers (close frees what is left) */
};

struct bt_cpu_ctx {
    const struct bt_host    *host;   /* borrowed from open */
    const struct bt_cpu_isa *isa;    /* kernel table of this variant */
    struct bt_buf           *bufs;   /* live buffers */
    bt_cpu_attn_fn           attn;   /* attention kernel (NULL: reference) */
    /* int8 activations of the last Q8 MATMUL (reused with BT_OPF_SAME_INPUT) */
    int8_t  *xq;
    float   *xs;
    int32_t *bsum;
    size_t   q8_cap;   /* elements xq can hold */
    const float *q8_src; /* the activations they came from */
    int64_t  q8_ntok, q8_cols;
};

/* cpu_matmul.c: products and decoding on host pointers (rows x cols weights W in fmt) */
int bt_cpu_fmt_ok(const struct bt_tfmt *fmt);
/* 1 if fmt has no kernel of its own but a plain block decoder (a weight format without
 * parameters or parts whose block divides 256: ggml's Q4_1 .. IQ4_XS): the gemv decodes
 * BT_CPU_GEN_COLS columns of a row at a time to f32 and dots them (gemm: tiles of rows); the
 * weights stay packed as stored */
int bt_cpu_fmt_generic(const struct bt_tfmt *fmt);
#define BT_CPU_GEN_COLS 2048 /* columns of a row decoded at once by the generic gemv */
/* cpu_ref.c: that gemv, with the variant's f32 dot (each ISA passes its own) */
typedef float (*bt_cpu_dot_fn)(const float *a, const float *b, int64_t n);
void bt_cpu_gemv_generic(const struct bt_tfmt *fmt, const uint8_t *W, size_t rb, int64_t nrows,
                         int64_t cols, const float *x, float *y, bt_cpu_dot_fn dot);
bt_status bt_cpu_mm_f32(struct bt_cpu_ctx *c, const struct bt_tfmt *fmt, const void *W,
                        int64_t rows, int64_t cols, const float *X, int64_t ntok, float *Y,
                        bt_err *err);
bt_status bt_cpu_mm_q8(struct bt_cpu_ctx *c, const struct bt_tfmt *fmt, const void *W,
                       int64_t rows, int64_t cols, const int8_t *Xq, const float *Xs,
                       const int32_t *bsum, int64_t ablock, int64_t ntok, float *Y, bt_err *err);
/* GEMM and CHOL_INV (cpu_la.c) on the resolved views: d = dst, a = src0, b = src1 */
bt_status bt_cpu_la(struct bt_cpu_ctx *c, const struct bt_op *op, void *d, void *a, void *b,
                    bt_err *err);
bt_status bt_cpu_dequant(struct bt_cpu_ctx *c, const struct bt_tfmt *fmt, const void *src,
                         int64_t n, float *dst, bt_err *err);
/* decode row `row` of W (cols) into dst */
bt_status bt_cpu_get_row(struct bt_cpu_ctx *c, const struct bt_tfmt *fmt, const void *W,
                         int64_t row, int64_t cols, float *dst);

/* cpu_vq.c: the vq format. MATMUL with f32 activations X (ntok x cols) into Y, or with X NULL
 * DEQUANT into Y; GET_ROWS. w is the op's weight view (its parts), W its host pointer. */
bt_status bt_cpu_vq_op(struct bt_cpu_ctx *c, const struct bt_view *w, const void *W,
                       const float *X, int64_t ntok, float *Y, bt_err *err);
bt_status bt_cpu_vq_rows(struct bt_cpu_ctx *c, const struct bt_view *w, const void *W,
                         const int32_t *ids, int64_t n, float *dst, bt_err *err);
void      bt_cpu_vq_drop(const struct bt_host *h, struct bt_buf *b); /* free b's cache */

/* cpu_buf.c: buffers and device info */
bt_status bt_cpu_device_info(void *ctx, struct bt_device_info *out);
bt_status bt_cpu_buf_alloc(void *ctx, uint64_t n, uint32_t usage, bt_buf **out, bt_err *err);
void      bt_cpu_buf_free(void *ctx, bt_buf *b);
bt_status bt_cpu_buf_write(void *ctx, bt_buf *b, uint64_t off, const void *src, uint64_t n,
                           bt_err *err);
bt_status bt_cpu_buf_read(void *ctx, bt_buf *b, uint64_t off, void *dst, uint64_t n, bt_err *err);
bt_status bt_cpu_buf_wrap(void *ctx, const void *host, uint64_t n, bt_buf **out, bt_err *err);

/* cpu_ops.c: supports_op and run */
int       bt_cpu_supports_op(void *ctx, const struct bt_op *op);
bt_status bt_cpu_run(void *ctx, const struct bt_op *ops, uint32_t n, bt_err *err);
void      bt_cpu_ctx_free(struct bt_cpu_ctx *c);

#endif
