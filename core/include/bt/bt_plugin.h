/* bt_plugin.h - the plugin ABI of bt: the only header a plugin includes.
 * Self-contained (C11 + stdint/stddef). Rules and changelog: docs/plugin-abi.md. */
#ifndef BT_PLUGIN_H
#define BT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versioning ------------------------------------------------------------------------ */
#define BT_ABI_MAJOR   2
#define BT_ABI_MINOR   3
#define BT_ABI_VERSION ((uint32_t)((BT_ABI_MAJOR << 16) | BT_ABI_MINOR))
#define BT_ABI_MAJOR_OF(v) ((uint32_t)(v) >> 16)
#define BT_ABI_MINOR_OF(v) ((uint32_t)(v)&0xffffu)

#if defined(_WIN32)
#define BT_EXPORT __declspec(dllexport)
#else
#define BT_EXPORT __attribute__((visibility("default")))
#endif

/* 1 if interface table i (with a struct_size first) has the optional entry `field` set: the
 * plugin was built with a table long enough to hold it. Every optional entry goes through this. */
#define BT_HAS(i, field)                                                                         \
    ((i)->struct_size >= (uint32_t)((char *)&(i)->field - (char *)(i)) + sizeof((i)->field) &&    \
     (i)->field != NULL)

/* ---- status codes ---------------------------------------------------------------------- */
typedef int32_t bt_status;
enum {
    BT_OK            = 0,
    BT_E_NOMEM       = -1,
    BT_E_INVAL       = -2,  /* bad argument or option value */
    BT_E_IO          = -3,  /* open/read/write/mmap failed */
    BT_E_FORMAT      = -4,  /* malformed or truncated input file */
    BT_E_UNSUPPORTED = -5,  /* valid input we do not handle */
    BT_E_ABI         = -6,  /* plugin ABI mismatch */
    BT_E_PLUGIN      = -7,  /* plugin refused or misbehaved */
    BT_E_BACKEND     = -8,  /* compute backend failure */
    BT_E_ABORTED     = -9,
    BT_E_QUALITY     = -10, /* a quality gate failed ([eval] max_ratio, ...; 2.2; exit code 4) */
};

/* ---- element / storage types ----------------------------------------------------------
 * Values are bt's own; docs/formats.md maps them to GGUF ggml_type ids. Block types pack
 * BT_TYPE_BLOCK(t) elements of a row into BT_TYPE_BYTES(t) bytes; rows are ne0-contiguous. */
enum {
    BT_TYPE_F32   = 0,
    BT_TYPE_F16   = 1,
    BT_TYPE_BF16  = 2,
    BT_TYPE_Q8_0  = 3,  /* 32 elems: f16 d, i8 qs[32]            (34 B) */
    BT_TYPE_TQ1_0 = 4,  /* 256 elems: u8 qs[48], u8 qh[4], f16 d  (54 B) */
    BT_TYPE_TQ2_0 = 5,  /* 256 elems: u8 qs[64], f16 d            (66 B) */
    BT_TYPE_I32   = 6,
    BT_TYPE_I16   = 7,
    BT_TYPE_I8    = 8,
    BT_TYPE_U8    = 9,
    BT_TYPE_F64   = 10,
    BT_TYPE_I64   = 11,
    BT_TYPE_Q4_0  = 12, /* 32 elems: f16 d, u8 qs[16]            (18 B) */
    BT_TYPE_Q8_K  = 13, /* activations only: 256 elems, f32 d, i8 qs[256], i16 bsums[16] */
    BT_TYPE_MTQ   = 14, /* bt multi-plane ternary; geometry in struct bt_tfmt (docs/formats.md) */
    BT_TYPE_VQ    = 15, /* ABI 2.1: bt vector quantization (VPTQ-style); parameters in struct
                         * bt_tfmt as below, parts: codebook, columns, outliers, tail */
    /* ABI 2.2: ggml's block types, decoded (dequantized) only; layouts in docs/formats.md */
    BT_TYPE_Q4_1   = 16, /* 32 elems: f16 d, f16 m, u8 qs[16]                 (20 B) */
    BT_TYPE_Q5_0   = 17, /* 32 elems: f16 d, u8 qh[4], u8 qs[16]              (22 B) */
    BT_TYPE_Q5_1   = 18, /* 32 elems: f16 d, f16 m, u8 qh[4], u8 qs[16]       (24 B) */
    BT_TYPE_Q2_K   = 19, /* 256 elems: u8 scales[16], qs[64], f16 d, dmin     (84 B) */
    BT_TYPE_Q3_K   = 20, /* 256 elems: u8 hmask[32], qs[64], scales[12], f16 d (110 B) */
    BT_TYPE_Q4_K   = 21, /* 256 elems: f16 d, dmin, u8 scales[12], qs[128]    (144 B) */
    BT_TYPE_Q5_K   = 22, /* 256 elems: f16 d, dmin, u8 scales[12], qh[32], qs[128] (176 B) */
    BT_TYPE_Q6_K   = 23, /* 256 elems: u8 ql[128], qh[64], i8 scales[16], f16 d (210 B) */
    BT_TYPE_IQ4_NL = 24, /* 32 elems: f16 d, u8 qs[16] (non-linear 16-value codebook) (18 B) */
    BT_TYPE_IQ4_XS = 25, /* 256 elems: f16 d, u16 scales_h, u8 scales_l[4], qs[128] (136 B) */
    BT_TYPE_GGML   = 26, /* a ggml block type bt names and sizes but cannot decode (IQ1/IQ2/IQ3
                          * grid types, ...): planes = the ggml type id; to_f32 refuses */
    BT_TYPE_COUNT = 27,
};

/* A tensor storage format: a type plus the parameters some types need. */
struct bt_tfmt {
    uint32_t type;     /* BT_TYPE_* */
    uint32_t planes;   /* BT_TYPE_MTQ: number of ternary planes N (1..8); else 0 */
    uint32_t block;    /* BT_TYPE_MTQ: elements per scale block (64/128/256); else 0 */
    uint32_t layout;   /* BT_TYPE_MTQ: 0 = 2-bit interleaved, 1 = compact base-3; else 0 */
};
/* BT_TYPE_VQ parameters (docs/formats.md "vq"): planes = v | b1 << 8 | b2 << 16 (vector length
 * down a column, main and residual index bits); block = G | flags << 16 (codebooks per tensor,
 * BT_VQ_*); layout = n_out | v0 << 16 | b0 << 24 (outlier columns, their vector length and
 * index bits) */
#define BT_VQ_NORM 1u /* per-column scale and bias (part "columns") */
#define BT_VQ_PERM 2u /* column permutation (part "columns") */
#define BT_VQ_TAIL 4u /* rows % v != 0: the last, partial row block's codes are in part "tail" */
static inline struct bt_tfmt bt_vq_tfmt(uint32_t v, uint32_t b1, uint32_t b2, uint32_t G,
                                        uint32_t flags, uint32_t n_out, uint32_t v0,
                                        uint32_t b0) {
    struct bt_tfmt f = {BT_TYPE_VQ, v | b1 << 8 | b2 << 16, G | flags << 16,
                        n_out | v0 << 16 | b0 << 24};
    return f;
}

/* ---- formats as data -----------------------------------------------------------------------
 * Every storage format is described by a struct bt_format. The built-in ones (BT_TYPE_F32 ..
 * BT_TYPE_COUNT - 1) live in the core; a format plugin (kind BT_KIND_FORMAT, iface = its struct
 * bt_format) adds one, and the core gives it an id >= BT_TYPE_USER when it loads (files name a
 * plugin format, never its id). struct bt_tfmt is {type, three parameters the descriptor
 * interprets} (MTQ: planes, block, layout). A format may have per-tensor parts beside its packed
 * rows (e.g. a codebook): part_info names them and gives their sizes; tensors carry them in
 * struct bt_tensor.parts, backends in struct bt_view.parts. Kernels for a format live in the
 * backends, which say what they run through supports_op. Plugins find any format (built-in or
 * registered) through host->format / host->format_by_name. docs/plugin-abi.md: "Writing a
 * format". */
#define BT_TYPE_USER   32 /* first id given to format plugins */
#define BT_TYPE_MAX    64 /* ids are < BT_TYPE_MAX */
#define BT_MAX_PARTS   4  /* extra parts per tensor */
#define BT_GGUF_NONE   0xffffffffu
enum {
    BT_FMT_WEIGHT = 1u, /* a weight format (readers, quantizers and backends deal in it) */
    BT_FMT_INTDOT = 2u, /* products run integer dots: they take int8 activations (BT_ACT_Q8) */
    BT_FMT_PARAMS = 4u, /* the bt_tfmt parameters matter (else they must be 0) */
};
struct bt_format {
    uint32_t    struct_size;
    uint32_t    type;      /* built-ins: BT_TYPE_*; plugins: 0 (the core assigns the id) */
    const char *name;      /* "tq2_0", "mtq": [a-z0-9_]+, unique */
    uint32_t    flags;     /* BT_FMT_* */
    uint32_t    gguf_type; /* ggml type id in GGUF, or BT_GGUF_NONE: stored as I8 rows of the
                            * packed bytes with a bt.fmt.<tensor> key (docs/formats.md) */
    /* elements and bytes per block of a row for fmt's parameters; 0 if they are invalid */
    int (*geometry)(const struct bt_tfmt *fmt, uint32_t *block, uint32_t *block_bytes);
    /* decode n elements (whole blocks, any number of rows); parts: the tensor's extra parts
     * (NULL when the format has none) */
    bt_status (*to_f32)(const struct bt_tfmt *fmt, const void *const *parts, const void *src,
                        float *dst, int64_t n);
    /* (optional) round-to-nearest encode of n elements (whole blocks, no extra parts) */
    bt_status (*from_f32)(const struct bt_tfmt *fmt, const float *src, void *dst, int64_t n);
    /* (optional) the name with its parameters, e.g. "mtq3x256c" (default: name) */
    void (*describe)(const struct bt_tfmt *fmt, char *buf, size_t n);
    /* (optional, default: none) extra parts of a rows x cols tensor: how many (<= BT_MAX_PARTS),
     * and part k's name ([a-z0-9_]+, e.g. "codebook") and size in bytes */
    uint32_t (*n_parts)(const struct bt_tfmt *fmt);
    bt_status (*part_info)(const struct bt_tfmt *fmt, int64_t rows, int64_t cols, uint32_t k,
                           const char **name, uint64_t *nbytes);
    /* ---- ABI 2.1 (optional; read through BT_HAS, or bt_format_row_bytes / _rows_to_f32) ---- */
    /* bytes of one row of cols elements when they are not cols / block * block_bytes (0 if
     * cols is invalid); geometry then only says whether fmt's parameters are valid */
    size_t (*row_bytes)(const struct bt_tfmt *fmt, int64_t cols);
    /* decode rows [row0, row0 + nrows) of a rows x cols tensor whose packed rows start at data
     * (row 0, not row0): for formats whose elements depend on neighbouring rows (vectors down a
     * column). A format with it may leave to_f32 returning BT_E_UNSUPPORTED. */
    bt_status (*to_f32_rows)(const struct bt_tfmt *fmt, const void *const *parts,
                             const void *data, int64_t rows, int64_t cols, int64_t row0,
                             int64_t nrows, float *dst);
    /* BT_OK if the packed rows and parts of a rows x cols tensor hold valid values (readers call
     * it before handing the tensor out), else BT_E_FORMAT with the reason in why (n bytes) */
    bt_status (*check)(const struct bt_tfmt *fmt, const void *const *parts, const void *data,
                       int64_t rows, int64_t cols, char *why, size_t n);
};

/* bytes of a row of cols elements of fmt (f = its descriptor); 0 if invalid */
static inline size_t bt_format_row_bytes(const struct bt_format *f, const struct bt_tfmt *fmt,
                                         int64_t cols) {
    uint32_t b = 0, bb = 0;
    if (!f || cols <= 0 || !f->geometry || !f->geometry(fmt, &b, &bb) || !b || !bb) return 0;
    if (BT_HAS(f, row_bytes)) return f->row_bytes(fmt, cols);
    return cols % b ? 0 : (size_t)(cols / b) * bb;
}

/* decode rows [row0, row0 + nrows) of a rows x cols tensor (data = its row 0) */
static inline bt_status bt_format_rows_to_f32(const struct bt_format *f,
                                              const struct bt_tfmt *fmt,
                                              const void *const *parts, const void *data,
                                              int64_t rows, int64_t cols, int64_t row0,
                                              int64_t nrows, float *dst) {
    if (!f || row0 < 0 || nrows < 0 || row0 + nrows > rows) return BT_E_INVAL;
    if (BT_HAS(f, to_f32_rows)) return f->to_f32_rows(fmt, parts, data, rows, cols, row0, nrows, dst);
    size_t rb = bt_format_row_bytes(f, fmt, cols);
    if (!rb || !f->to_f32) return BT_E_UNSUPPORTED;
    return f->to_f32(fmt, parts, (const uint8_t *)data + (uint64_t)row0 * rb, dst, nrows * cols);
}

/* ---- metadata key/values (GGUF value-type vocabulary) --------------------------------- */
enum {
    BT_KV_U8 = 0, BT_KV_I8 = 1, BT_KV_U16 = 2, BT_KV_I16 = 3, BT_KV_U32 = 4, BT_KV_I32 = 5,
    BT_KV_F32 = 6, BT_KV_BOOL = 7, BT_KV_STRING = 8, BT_KV_ARRAY = 9, BT_KV_U64 = 10,
    BT_KV_I64 = 11, BT_KV_F64 = 12,
};

/* One metadata entry. All pointers are borrowed from the producer and live as long as it. */
struct bt_kv {
    const char *key;      /* "llama.block_count", "tokenizer.ggml.tokens", ... */
    uint32_t    type;     /* BT_KV_* */
    uint32_t    arr_type; /* element type when type == BT_KV_ARRAY (never ARRAY) */
    uint64_t    n;        /* element count for arrays; byte length for STRING */
    union {
        uint64_t    u;    /* U8..U64, BOOL */
        int64_t     i;    /* I8..I64 */
        double      f;    /* F32, F64 */
        const char *s;    /* STRING: n bytes, also NUL-terminated */
        const void *arr;  /* ARRAY: packed numbers, or (const char *const *) for strings */
    } v;
};

/* bytes of one numeric BT_KV_* value (0 for STRING and ARRAY) */
static inline size_t bt_kv_scalar_size(uint32_t type) {
    switch (type) {
    case BT_KV_U8: case BT_KV_I8: case BT_KV_BOOL: return 1;
    case BT_KV_U16: case BT_KV_I16: return 2;
    case BT_KV_U32: case BT_KV_I32: case BT_KV_F32: return 4;
    case BT_KV_U64: case BT_KV_I64: case BT_KV_F64: return 8;
    default: return 0;
    }
}

/* ---- tensors ---------------------------------------------------------------------------- */
#define BT_MAX_DIMS 4

/* A tensor as a reader exposes it. shape[] is outermost-first (numpy order): a linear weight
 * is {out_features, in_features}; rows are shape[0..n_dims-2] flattened, cols = shape[last]. */
struct bt_tensor {
    const char    *name;      /* canonical (GGUF) name, e.g. "blk.0.attn_q.weight" */
    const char    *src_name;  /* name in the source file, e.g. "model.layers.0.self_attn.q_proj.weight" */
    struct bt_tfmt fmt;       /* storage format of data */
    uint32_t       n_dims;
    int64_t        shape[BT_MAX_DIMS];
    const void    *data;      /* raw bytes (mmap); NULL if the reader cannot map it */
    uint64_t       nbytes;
    uint32_t       flags;     /* BT_TENSOR_* */
    /* the format's extra parts (struct bt_format.part_info), e.g. a codebook; n_parts = 0 for
     * formats without */
    uint32_t       n_parts;
    const void    *parts[BT_MAX_PARTS];
    uint64_t       part_bytes[BT_MAX_PARTS];
};
#define BT_TENSOR_ROPE_HALVES 1u /* q/k rows in HF rotate-half order (needs permuting for GGUF) */

/* ---- host services (core -> plugin) ---------------------------------------------------- */
/* The one error channel: every fallible call takes a bt_err and records a status and a message
 * in it (host->set_error, or bt_err_set from bt_types for code that links it). Its layout is part
 * of the ABI; err may be NULL where a caller does not want the message. */
typedef struct bt_err bt_err;
struct bt_err {
    bt_status status;    /* BT_OK until an error is recorded */
    char      msg[1024]; /* "file: reason", no trailing newline */
};
typedef struct bt_optset bt_optset; /* opaque validated option values */

enum { BT_LOG_ERROR = 0, BT_LOG_WARN = 1, BT_LOG_INFO = 2, BT_LOG_DEBUG = 3 };

/* Work item for parallel_for: process [i0, i1) on thread tid. */
typedef void (*bt_range_fn)(void *arg, int64_t i0, int64_t i1, int tid);

/* ---- second-order engine (ABI 1.1) --------------------------------------------------------
 * A bt_hessian is a tensor's input Hessian H = E[x x^T] from calibration, prepared by the core
 * (dead columns, damping, act order, Cholesky of H^-1). The quantizer drives the GPTQ-style
 * column loop through host->so_quantize and supplies the per-column rounding here. Rows are
 * processed in fixed chunks of at most BT_SO_CHUNK_ROWS; callbacks for different row ranges
 * run concurrently on the host pool (each row range is touched by one thread at a time). */
typedef struct bt_hessian bt_hessian;
#define BT_SO_CHUNK_ROWS 64
struct bt_so_cb {
    void   *user;
    int64_t group; /* columns per parameter group (scale block); divides cols. Group g is the
                    * columns [g*group, (g+1)*group) in the tensor's own order. */
    /* the loop reached the first column of group g (in processing order) for rows
     * [row0, row0+nrows): W (nrows x group, row-major) holds the current, error-compensated
     * weights of the whole group. Choose the group's parameters (scales) here. */
    void (*group_start)(void *user, int64_t row0, int64_t nrows, int64_t g, const float *W);
    /* round column c (tensor order) of rows [row0, row0+nrows): w[i] is the current value of
     * row row0+i; write the value the stored tensor will hold to q[i]. */
    void (*column)(void *user, int64_t row0, int64_t nrows, int64_t c, const float *w, float *q);
};

struct bt_host {
    uint32_t    abi_version;  /* BT_ABI_VERSION of the host */
    uint32_t    struct_size;  /* sizeof(struct bt_host) as compiled by the host */
    const char *host_version; /* "0.1.0" */
    void (*log)(int level, const char *fmt, ...);
    /* record an error (status + message) in err; returns status for `return host->set_error(..)` */
    bt_status (*set_error)(bt_err *err, bt_status status, const char *fmt, ...);
    void *(*alloc)(size_t n);           /* aligned to 64 bytes; NULL on failure */
    void (*free)(void *p);
    /* run fn over [0, n) split into chunks on the host thread pool; fn may be called on the
     * calling thread. Chunks are contiguous and deterministic for a given n and grain. */
    void (*parallel_for)(int64_t n, int64_t grain, bt_range_fn fn, void *arg);
    int (*n_threads)(void);
    /* options: typed access to validated values (NULL/0 defaults never happen: the core fills
     * declared defaults). Unknown names return the zero value. */
    const char *(*opt_str)(const bt_optset *o, const char *name);
    int64_t (*opt_int)(const bt_optset *o, const char *name);
    double (*opt_float)(const bt_optset *o, const char *name);
    /* type services */
    size_t (*row_bytes)(const struct bt_tfmt *fmt, int64_t ncols); /* 0 if ncols invalid */
    bt_status (*to_f32)(const struct bt_tfmt *fmt, const void *src, float *dst, int64_t n);
    /* ---- ABI 1.1 (check abi_version / struct_size before use) ---- */
    /* GPTQ column loop over W (rows x cols, tensor order) with h: columns in h's processing
     * order, each rounded by cb->column, its error fed to the columns not yet rounded through
     * the Cholesky factor of H^-1 (lazy batches of 128 columns). *herr (may be NULL) gets the
     * Hessian-weighted error sum_rows (w - q)^T H (w - q) of the rounding. Deterministic for any
     * thread count. */
    bt_status (*so_quantize)(const bt_hessian *h, const float *W, int64_t rows, int64_t cols,
                             const struct bt_so_cb *cb, double *herr, bt_err *err);
    /* Y (nrows x cols) = X (nrows x (c1-c0)) * H[c0:c1, :], row-major, H in tensor order
     * (damped). For scale refits: (w - q)^T H (w - q) and its gradients. */
    bt_status (*hess_mul)(const bt_hessian *h, int64_t c0, int64_t c1, const float *X,
                          int64_t nrows, float *Y, bt_err *err);
    /* solve A x = b for a symmetric positive definite A (n x n, row-major f64, destroyed);
     * b is replaced by x. BT_E_INVAL if A is not positive definite. */
    bt_status (*spd_solve)(int64_t n, double *A, double *b);
    /* formats: the descriptor of a type id, or by name (NULL if unknown) */
    const struct bt_format *(*format)(uint32_t type);
    const struct bt_format *(*format_by_name)(const char *name);
    /* ---- ABI 2.1 ---- */
    /* k-means assignment on the pipeline's compute backend (op KMEANS): idx[i] = the nearest of
     * the k centroids (k x d) to point i of pts (n x d), by sum_j w_j (p_j - c_j)^2 (w: 1 x d,
     * NULL for 1), lowest index on ties. Deterministic; any n, k <= 2^24, d <= 64. */
    bt_status (*kmeans_assign)(const float *pts, int64_t n, int64_t d, const float *cent,
                               int64_t k, const float *w, int32_t *idx, bt_err *err);
};

/* ---- options a plugin declares (drive INI validation and `bt-pipeline plugins`) --------- */
enum { BT_OPT_BOOL = 0, BT_OPT_INT = 1, BT_OPT_FLOAT = 2, BT_OPT_STRING = 3, BT_OPT_ENUM = 4,
       BT_OPT_PATH = 5 /* string, resolved against the INI file's folder */ };

struct bt_option {
    const char *name;    /* INI key, [a-z0-9_]+ */
    uint32_t    type;    /* BT_OPT_* */
    const char *def;     /* default as text; NULL = required */
    double      min;     /* INT/FLOAT range (ignored if min > max) */
    double      max;
    const char *choices; /* ENUM: "a|b|c" */
    const char *help;    /* one line */
};

/* ---- plugin kinds -------------------------------------------------------------------------*/
enum { BT_KIND_READER = 1, BT_KIND_WRITER = 2, BT_KIND_QUANTIZER = 3, BT_KIND_BACKEND = 4,
       BT_KIND_FORMAT = 5 /* iface = struct bt_format */ };

/* Reader: opens a model, lists tensors and metadata. Instance state is ctx (ctx_size bytes,
 * zeroed, owned by the core). A failed open leaves nothing allocated; close is then not called. */
struct bt_reader_i {
    uint32_t struct_size;
    /* (optional, default: 0) how well this reader handles path: 0 = not at all, 100 = sure */
    int (*probe)(const char *path);
    bt_status (*open)(void *ctx, const struct bt_host *host, const bt_optset *opts,
                      const char *path, bt_err *err);
    void (*close)(void *ctx);
    uint32_t (*tensor_count)(void *ctx);
    bt_status (*tensor_get)(void *ctx, uint32_t i, struct bt_tensor *out, bt_err *err);
    uint32_t (*kv_count)(void *ctx);
    bt_status (*kv_get)(void *ctx, uint32_t i, struct bt_kv *out);
    /* (optional, default: host->to_f32 on tensor data) rows [row0, row0+nrows) as f32 */
    bt_status (*read_f32)(void *ctx, uint32_t i, int64_t row0, int64_t nrows, float *dst,
                          bt_err *err);
    /* (optional) tell the reader tensor i is done, so it may drop its pages */
    void (*release)(void *ctx, uint32_t i);
};

/* Writer: streams tensors into one output file, atomically (temp file + rename at finish). */
struct bt_writer_i {
    uint32_t struct_size;
    bt_status (*open)(void *ctx, const struct bt_host *host, const bt_optset *opts,
                      const char *path, const struct bt_kv *kvs, uint32_t n_kv,
                      uint32_t n_tensors, bt_err *err);
    /* t->data holds t->nbytes bytes in t->fmt; shape is numpy order as in struct bt_tensor */
    bt_status (*add)(void *ctx, const struct bt_tensor *t, bt_err *err);
    bt_status (*finish)(void *ctx, bt_err *err); /* complete and rename into place */
    void (*close)(void *ctx);                    /* frees; removes temp files if not finished */
    /* (optional, default: F32/F16/BF16 only) 1 if the writer can store fmt */
    int (*supports)(void *ctx, const struct bt_tfmt *fmt);
};

/* Quantizer: turns f32 rows into a packed format, chunk by chunk (or a whole tensor). */
#define BT_MAX_CANDIDATES 8
struct bt_qtensor {
    const char *name;       /* canonical name */
    int64_t     rows, cols; /* the tensor as a (rows x cols) matrix, cols contiguous */
    struct bt_tfmt want;    /* format requested by [output] type (plan refines it) */
    uint32_t    want_exact; /* 1: the core chose `want` itself, one of this quantizer's
                             * error_curve candidates (budget allocation): plan returns it */
    const float *col_weight; /* (cols) per-input-column error weights from calibration, E[x_j^2]
                              * = diag(X^T X) / rows, or NULL: minimize sum_j w_j (W-What)_ij^2 */
    /* the input Hessian when [quantize] second_order is on and the calibration file has the
     * full matrix for this tensor, else NULL. A plugin that sees it should quantize with
     * host->so_quantize (via quantize_tensor) and report errors weighted by it. */
    const bt_hessian *hess;
};
struct bt_qstats {
    double err2;  /* sum of squared error over the rows quantized */
    double ref2;  /* sum of squared source values */
    double herr2; /* ABI 1.1: sum_rows (w - q)^T H (w - q) when t->hess is set, else 0 */
};
struct bt_quantizer_i {
    uint32_t struct_size;
    bt_status (*open)(void *ctx, const struct bt_host *host, const bt_optset *opts, bt_err *err);
    void (*close)(void *ctx);
    /* choose the output format for t; return BT_E_UNSUPPORTED (no error set) to keep it */
    bt_status (*plan)(void *ctx, const struct bt_qtensor *t, struct bt_tfmt *out, bt_err *err);
    /* rows of f32 (nrows x t->cols) -> nrows packed rows of fmt; adds into stats */
    bt_status (*quantize)(void *ctx, const struct bt_qtensor *t, const struct bt_tfmt *fmt,
                          const float *src, int64_t nrows, void *dst, struct bt_qstats *stats,
                          bt_err *err);
    /* (optional) when plan() returned a format that is not complete yet (its geometry is
     * invalid, e.g. MTQ with planes = 0: "decide from the data"): called once with the whole
     * tensor (t->rows x t->cols f32); completes *out. The core then calls quantize with *out. */
    bt_status (*decide)(void *ctx, const struct bt_qtensor *t, const float *src,
                        struct bt_tfmt *out, bt_err *err);
    /* (optional) the formats this quantizer could give t, smallest first, and the squared
     * error of nrows sample rows for each: fills cand[k] and err2[k] and returns how many
     * (1..BT_MAX_CANDIDATES), or < 0 on error. Called for tensors whose plan() is not complete;
     * the core's budget allocation (budget_bpw / budget_bytes) picks one per tensor and hands
     * it back as t->want with want_exact = 1. */
    int (*error_curve)(void *ctx, const struct bt_qtensor *t, const float *src, int64_t nrows,
                       struct bt_tfmt cand[BT_MAX_CANDIDATES], double err2[BT_MAX_CANDIDATES],
                       bt_err *err);
    /* (optional) the whole tensor at once: src is t->rows x t->cols f32, dst gets t->rows
     * packed rows of fmt, parts[k] the format's extra part k (struct bt_format.part_info sizes;
     * NULL when it has none): required for formats with parts (codebooks). Required for second_order (t->hess set): the column loop
     * needs every row of a column. With t->hess set, error_curve should return the
     * Hessian-weighted error tr(E H E^T) of the second-order result. */
    bt_status (*quantize_tensor)(void *ctx, const struct bt_qtensor *t, const struct bt_tfmt *fmt,
                                 const float *src, void *dst, void *const *parts,
                                 struct bt_qstats *stats, bt_err *err);
};

/* ---- backends (ABI 2) ---------------------------------------------------------------------
 * A backend owns device memory (buffers, not necessarily host-addressable) and runs ops on views
 * of it. The runtime uploads weights once, keeps the KV cache and every activation in backend
 * buffers and submits the forward pass as lists of ops; it never touches the numbers itself.
 * Semantics of every op are defined by the scalar CPU backend ("cpu"); tests/backend/
 * test_backend_ops.c checks every loaded backend against it. docs/plugin-abi.md: "Writing a
 * backend". */
typedef struct bt_buf bt_buf; /* opaque buffer owned by the backend */

enum { BT_BUF_WEIGHTS = 0, BT_BUF_ACT = 1, BT_BUF_KV = 2 }; /* usage hint of buf_alloc */

/* A 2-D view of backend memory: rows x cols elements of fmt starting off bytes into buf.
 * Rows are contiguous (row r starts at off + r * row_bytes(fmt, cols)). Activations are F32. */
struct bt_view {
    bt_buf        *buf;
    uint64_t       off;
    struct bt_tfmt fmt;
    int64_t        rows, cols;
    bt_buf        *parts[BT_MAX_PARTS]; /* a weight's extra parts (whole buffers), in the order of
                                         * its format's part_info; NULL for formats without */
};

/* a view without extra parts */
static inline struct bt_view bt_view_of(bt_buf *buf, uint64_t off, struct bt_tfmt fmt, int64_t rows,
                                        int64_t cols) {
    struct bt_view v = {buf, off, fmt, rows, cols, {NULL, NULL, NULL, NULL}};
    return v;
}

/* Ops. W = a weight view in any supported format; every other view is F32 unless noted.
 * "ntok" = dst.rows. Aliasing: dst may be the same view as src[0] where marked (in place). */
enum {
    BT_OP_GET_ROWS = 1, /* dst[t,:] = decode(src0[ids[t],:])  (src0 W, ids: ntok host ints) */
    BT_OP_RMSNORM  = 2, /* dst[t,:] = src0[t,:] / sqrt(mean(src0[t,:]^2) + eps) * src1[0,:]
                         * (in place) */
    BT_OP_ROPE     = 3, /* dst = src0 with rotary embedding: row t at position pos0 + t, heads of
                         * head_dim, the first n_rot dims of each rotated in pairs (i, i + n_rot/2)
                         * if halves else (2i, 2i+1) by angle pos * src1[0,i] (inv. frequencies,
                         * 1 x n_rot/2) (in place) */
    BT_OP_CPY      = 4, /* dst = src0 (same shape; e.g. new keys into the KV cache) */
    BT_OP_ATTN     = 5, /* causal GQA: query row t (n_head heads of head_dim, src0) at position
                         * pos0 + t attends keys/values 0..pos0+t of src1/src2 (the cache:
                         * rows = positions, n_head_kv heads); softmax(q.k * scale); query head h
                         * uses kv head h / (n_head / n_head_kv) */
    BT_OP_SWIGLU   = 6, /* dst = silu(src0) * src1 (in place on src0 or src1) */
    BT_OP_ADD      = 7, /* dst = src0 + src1 (in place) */
    BT_OP_MATMUL   = 8, /* dst[t,r] = sum_c src0[r,c] * src1[t,c]  (src0 W rows x cols; dst
                         * ntok x rows). act = BT_ACT_Q8: src1 rows are first quantized to int8
                         * in blocks of 256 (scale amax/127, round half away from zero) */
    BT_OP_DEQUANT  = 9, /* dst (rows x cols) = decode(src0 W) */
    BT_OP_KMEANS   = 10, /* dst (n x 1, I32) = argmin_k sum_j w_j (src0[i,j] - src1[k,j])^2,
                          * lowest k on ties; src0 points n x d, src1 centroids K x d, src2 the
                          * weights (1 x d) or buf NULL for w = 1 */
    BT_OP_RELU2    = 11, /* dst = max(src0, 0)^2 * src1 (in place on src0 or src1) (2.2) */
    BT_OP_QUANT_ROW = 12, /* dst[t,:] = q / s, q = clamp(round_half_even(src0[t,:] * s), -128,
                           * 127), s = 127 / max(max|src0[t,:]|, 1e-5): 8-bit per-token
                           * activations as BitNet b1.58 computes them (in place) (2.2) */
    BT_OP_SCALE    = 13, /* dst = src0 * scale (one float32 multiply per element; in place): a
                          * weight's exact per-tensor f32 scale after its MATMUL (2.3) */
    /* 2.3: the dense linear algebra of the second-order engine (core/src/hessian.c,
     * so_engine.c) on the quantizer's compute backend ([quantize] so_backend) */
    BT_OP_GEMM     = 14, /* dst (M x N) = alpha * op(src0) * op(src1) + beta * dst, op(X) = X or
                          * X^T (flags BT_OPF_TRANS_A / _B); alpha = scale, beta = eps; op(src0)
                          * M x K, op(src1) K x N; dst apart from both sources (2.3) */
    BT_OP_CHOL_INV = 15, /* dst (n x n) = L^-1, L the lower Cholesky factor of src0 (n x n,
                          * symmetric positive definite, lower triangle read; overwritten: it is
                          * the workspace); dst's strict upper triangle 0. src1 (1 x 1, I32) is
                          * written: 0, or the 1-based column where src0 is not positive definite
                          * (dst then unspecified). All three apart (2.3) */
    BT_OP_COUNT    = 16,
};
enum { BT_ACT_F32 = 0, BT_ACT_Q8 = 1 };
#define BT_ACT_Q8_BLOCK 256
/* op flags */
#define BT_OPF_SAME_INPUT 1u /* MATMUL: src1 holds the same values as in an earlier MATMUL of
                              * the same run() list with the same src1 view (a backend may reuse
                              * its int8 quantization) */
#define BT_OPF_TRANS_A 2u    /* GEMM: op(src0) = src0^T (2.3) */
#define BT_OPF_TRANS_B 4u    /* GEMM: op(src1) = src1^T (2.3) */

struct bt_op {
    uint32_t       code;   /* BT_OP_* */
    uint32_t       flags;  /* BT_OPF_* */
    struct bt_view dst;
    struct bt_view src[3];
    const int32_t *ids;    /* GET_ROWS: dst.rows row indices (host memory, read during run) */
    float          eps;    /* RMSNORM */
    float          scale;  /* ATTN, SCALE */
    int32_t        n_head, n_head_kv, head_dim; /* ATTN (n_head_kv), ROPE (head_dim) */
    int32_t        n_rot, halves;               /* ROPE */
    int32_t        pos0;                        /* ROPE, ATTN: position of row 0 */
    int32_t        act;                         /* MATMUL: BT_ACT_* */
};

/* What a backend instance runs on. */
struct bt_device_info {
    char     name[128];   /* "AMD EPYC 7B13 (16 threads)", "NVIDIA H200 (OpenCL 3.0 CUDA)" */
    uint64_t mem_bytes;   /* memory the device can allocate (0 = unknown) */
    uint32_t host_memory; /* 1 if buffers live in host RAM (buf_wrap is zero-copy) */
    uint32_t n_devices;   /* devices this backend could open (the `device` option's range) */
};

struct bt_backend_i {
    uint32_t struct_size;
    /* (optional, default: 1) 0 if this backend cannot run on this machine; higher wins "auto" */
    int (*score)(void);
    /* opts: the backend's own options from the INI / command line (e.g. device) */
    bt_status (*open)(void *ctx, const struct bt_host *host, const bt_optset *opts, bt_err *err);
    void (*close)(void *ctx); /* frees every buffer still allocated */
    bt_status (*device_info)(void *ctx, struct bt_device_info *out);
    bt_status (*buf_alloc)(void *ctx, uint64_t nbytes, uint32_t usage, bt_buf **out, bt_err *err);
    void (*buf_free)(void *ctx, bt_buf *b); /* NULL is a no-op */
    bt_status (*buf_write)(void *ctx, bt_buf *b, uint64_t off, const void *src, uint64_t n,
                           bt_err *err);
    bt_status (*buf_read)(void *ctx, bt_buf *b, uint64_t off, void *dst, uint64_t n, bt_err *err);
    /* 1 if the backend runs op (its code, formats, shapes and parameters); 0 otherwise */
    int (*supports_op)(void *ctx, const struct bt_op *op);
    /* run n ops in order (a whole token step may come as one list: a backend may fuse or
     * capture it). Results are visible to buf_read after it returns. An op the backend does not
     * support is an error naming the op and format, never a fallback. */
    bt_status (*run)(void *ctx, const struct bt_op *ops, uint32_t n, bt_err *err);
    /* (optional) a buffer over host memory the caller keeps valid until buf_free, without a
     * copy (CPU backends: weights stay in the reader's mmap). BT_E_UNSUPPORTED if it cannot. */
    bt_status (*buf_wrap)(void *ctx, const void *host, uint64_t nbytes, bt_buf **out,
                          bt_err *err);
};

/* ---- the descriptor ------------------------------------------------------------------------*/
/* caps bits (2.2) */
enum {
    /* quantizer: reads bt_qtensor.col_weight (a calibration file's column weights) without
     * second_order; the core refuses [quantize] calibration for a quantizer without it unless
     * second_order = on */
    BT_CAP_COL_WEIGHT = 1u,
};


struct bt_plugin {
    uint32_t                abi_version; /* BT_ABI_VERSION the plugin was built against */
    uint32_t                struct_size; /* sizeof(struct bt_plugin) as compiled by the plugin */
    const char             *name;        /* [a-z0-9-]+, unique per kind */
    const char             *version;     /* plugin version text */
    uint32_t                kind;        /* BT_KIND_* */
    uint32_t                caps;        /* BT_CAP_* bits (0 for none; 2.2) */
    const char             *description; /* one line */
    const struct bt_option *options;     /* terminated by an entry with name == NULL; may be NULL */
    const void             *iface;       /* struct bt_<kind>_i matching kind */
    uint32_t                ctx_size;    /* bytes of zeroed instance state the core allocates */
};

/* The one exported symbol of every plugin .so. Cheap and side-effect free. */
#define BT_PLUGIN_INIT_SYMBOL "bt_plugin_init"
typedef bt_status (*bt_plugin_init_fn)(const struct bt_host *host, const struct bt_plugin **out);

#define BT_PLUGIN_DEFINE(desc)                                                              \
    BT_EXPORT bt_status bt_plugin_init(const struct bt_host *host,                          \
                                       const struct bt_plugin **out) {                      \
        (void)host;                                                                         \
        *out = &(desc);                                                                     \
        return BT_OK;                                                                       \
    }

#ifdef __cplusplus
}
#endif
#endif /* BT_PLUGIN_H */
