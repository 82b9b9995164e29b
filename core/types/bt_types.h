/* bt_types.h - element types: sizes, fp16/bf16 conversion, block pack/unpack for
 * Q8_0/Q4_0/TQ1_0/TQ2_0 and bt's multi-plane ternary (MTQ). A tiny static library linked into
 * the core and into plugins that need it (plugins never link the core itself). */
#ifndef BT_TYPES_H
#define BT_TYPES_H

#include "bt/bt_plugin.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BT_QK_K 256

/* ---- scalar conversions (round to nearest even) ------------------------------------------ */
float    bt_fp16_to_f32(uint16_t h);
uint16_t bt_f32_to_fp16(float f);
static inline float bt_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
uint16_t bt_f32_to_bf16(float f);

/* ---- formats (bt_formats.c: descriptors of the built-in formats and registered ones) ------- */
const struct bt_format *bt_format_get(uint32_t type);        /* NULL if unknown */
const struct bt_format *bt_format_by_name(const char *name); /* case-insensitive; NULL if none */
/* NULL if f is a valid new format, else why not */
const char *bt_format_check(const struct bt_format *f);
/* add f to this library's table: f->type gets an id >= BT_TYPE_USER */
bt_status bt_format_register(struct bt_format *f, uint32_t *type);
void      bt_format_unregister(uint32_t type);
/* elements and bytes per block of fmt; 0 if fmt is unknown or its parameters invalid */
int       bt_fmt_geometry(const struct bt_tfmt *fmt, uint32_t *block, uint32_t *block_bytes);
uint32_t  bt_fmt_n_parts(const struct bt_tfmt *fmt); /* extra per-tensor parts */
/* decode with the tensor's extra parts (NULL for formats without) */
bt_status bt_to_f32_parts(const struct bt_tfmt *fmt, const void *const *parts, const void *src,
                          float *dst, int64_t n);
/* decode rows [row0, row0 + nrows) of a rows x cols tensor whose packed rows start at data */
bt_status bt_fmt_rows_to_f32(const struct bt_tfmt *fmt, const void *const *parts, const void *data,
                             int64_t rows, int64_t cols, int64_t row0, int64_t nrows, float *dst);

/* ---- ggml block types (bt_formats_ggml.c): Q4_1 .. IQ4_XS decoders, the "ggml" placeholder - */
int       bt_ggml_geometry(const struct bt_tfmt *f, uint32_t *block, uint32_t *block_bytes);
bt_status bt_ggml_to_f32(const struct bt_tfmt *fmt, const void *const *parts, const void *src,
                         float *dst, int64_t n);
/* BT_TYPE_GGML: planes = a ggml type id bt sizes but does not decode (iq2_xxs, ...) */
int       bt_ggml_raw_geometry(const struct bt_tfmt *f, uint32_t *block, uint32_t *block_bytes);
bt_status bt_ggml_raw_to_f32(const struct bt_tfmt *fmt, const void *const *parts,
                             const void *src, float *dst, int64_t n); /* BT_E_UNSUPPORTED */
void      bt_ggml_raw_describe(const struct bt_tfmt *f, char *buf, size_t n); /* "iq2_xxs" */
struct bt_tfmt bt_ggml_raw_tfmt(uint32_t ggml_id);

/* ---- vq (bt_vq.c): bt's vector-quantized format, BT_TYPE_VQ ---------------------------------- */
#define BT_VQ_MAX_V 32
/* where everything of a rows x cols vq tensor is (docs/formats.md "vq") */
struct bt_vq_layout {
    uint32_t v, b1, b2, t;    /* vector length, main / residual index bits, code bits b1 + b2 */
    uint32_t G, flags;        /* codebooks per tensor (groups), BT_VQ_* */
    uint32_t n_out, v0, b0;   /* outlier columns, their vector length and index bits */
    int64_t  rows, cols;
    int64_t  ncode, gs;       /* codes per row block (cols - n_out), columns per group */
    int64_t  nrb, nrb0;       /* row blocks of v rows (ceil), of v0 rows for outliers */
    uint64_t S, R;            /* code-stream bytes per row block, packed bytes per row */
    uint32_t n_parts;
    int      p_cb, p_col, p_out, p_tail;      /* part index of each, or -1 */
    uint64_t cb_main, cb_res, cb_out;         /* byte offsets in the codebook part (f16) */
    uint64_t col_perm, col_scale, col_bias;   /* byte offsets in the columns part, or UINT64_MAX */
    uint64_t part_bytes[BT_MAX_PARTS];
};
int       bt_vq_params_ok(const struct bt_tfmt *f);
/* 1 and *L filled if fmt fits a rows x cols tensor (rows 0: row geometry only), else 0 */
int       bt_vq_layout(const struct bt_tfmt *f, int64_t rows, int64_t cols, struct bt_vq_layout *L);
uint32_t  bt_vq_n_parts(const struct bt_tfmt *f);
bt_status bt_vq_part_info(const struct bt_tfmt *f, int64_t rows, int64_t cols, uint32_t k,
                          const char **name, uint64_t *nbytes);
size_t    bt_vq_row_bytes(const struct bt_tfmt *f, int64_t cols);
void      bt_vq_describe(const struct bt_tfmt *f, char *buf, size_t n);
/* code at stream bit `bit` (t <= 32 bits, LSB first); write one (the stream is little-endian) */
uint32_t  bt_vq_get_code(const uint8_t *s, uint64_t bit, uint32_t t);
void      bt_vq_put_code(uint8_t *s, uint64_t bit, uint32_t t, uint32_t code);
/* the code stream of row block rb (rows rb*v ..): in the packed rows, or the tail part */
const uint8_t *bt_vq_stream(const struct bt_vq_layout *L, const void *data,
                            const void *const *parts, int64_t rb);
/* BT_OK if every part is present and the permutation is one (BT_E_FORMAT otherwise) */
bt_status bt_vq_check_parts(const struct bt_vq_layout *L, const void *const *parts);
bt_status bt_vq_check(const struct bt_tfmt *f, const void *const *parts, const void *data, int64_t rows,
                      int64_t cols, char *why, size_t n);
bt_status bt_vq_to_f32_rows(const struct bt_tfmt *f, const void *const *parts, const void *data,
                            int64_t rows, int64_t cols, int64_t row0, int64_t nrows, float *dst);

/* ---- op rules (bt_ops.c): shapes and parameters every backend checks first ------------------ */
/* NULL if op obeys the ABI's rules for its code (views present, formats, shapes and sizes below
 * 2^31 rows/cols and 2^40 elements, parameters, aliasing), else why not; a backend then adds its
 * own limits (kernels per format, alignment). host: its format table (plugin formats), or NULL
 * for the built-in formats only. */
const char *bt_op_check(const struct bt_op *op, const struct bt_host *host);
int         bt_op_n_src(uint32_t code);
const char *bt_op_name(uint32_t code);        /* "matmul", ... ("unknown" out of range) */
/* bytes a view spans in its buffer (0 if its shape does not fit its format or the limits) */
uint64_t    bt_view_bytes(const struct bt_view *v, const struct bt_host *host);       /* source views the op reads (KMEANS: 2, + optional) */
int         bt_op_has_weights(uint32_t code); /* src0 is a weight view in any format */

/* ---- type traits (through the descriptors) ---------------------------------------------- */
const char *bt_type_name(uint32_t type);            /* "f32", "tq2_0", ... or "?" */
int         bt_type_from_name(const char *name);    /* BT_TYPE_* or -1 (case-insensitive) */
uint32_t    bt_type_block(uint32_t type);           /* elements per block (1 for scalars) */
uint32_t    bt_type_block_bytes(uint32_t type);     /* bytes per block; 0 for MTQ/unknown */
/* bytes of one row of ncols elements; 0 if ncols is not a whole number of blocks */
size_t bt_fmt_row_bytes(const struct bt_tfmt *fmt, int64_t ncols);
/* bits per weight of fmt for rows of ncols (row_bytes*8/ncols) */
double bt_fmt_bpw(const struct bt_tfmt *fmt, int64_t ncols);
/* fill a scalar/standard format */
static inline struct bt_tfmt bt_fmt(uint32_t type) {
    struct bt_tfmt f = {type, 0, 0, 0};
    return f;
}
/* format description, e.g. "tq2_0" or "mtq3x256" (writes at most n bytes) */
void bt_fmt_str(const struct bt_tfmt *fmt, char *buf, size_t n);

/* ---- whole-row conversion ------------------------------------------------------------------ */
/* n elements (whole rows / blocks) of fmt -> f32. BT_E_UNSUPPORTED for types without decode. */
bt_status bt_to_f32(const struct bt_tfmt *fmt, const void *src, float *dst, int64_t n);
/* f32 -> F32/F16/BF16/Q8_0/Q4_0 (n multiple of the block). BT_E_UNSUPPORTED otherwise. */
bt_status bt_from_f32(const struct bt_tfmt *fmt, const float *src, void *dst, int64_t n);

/* ---- ternary block packing ------------------------------------------------------------------
 * codes are t in {-1,0,1}; d is the block scale (stored as fp16). n = 256 per block. */
void bt_tq2_0_pack(const int8_t *t, float d, uint8_t *blk /*66 B*/);
void bt_tq1_0_pack(const int8_t *t, float d, uint8_t *blk /*54 B*/);
void bt_tq2_0_unpack(const uint8_t *blk, int8_t *t, float *d);
void bt_tq1_0_unpack(const uint8_t *blk, int8_t *t, float *d);
/* reference quantizers with llama.cpp's absmax rule (used as an oracle check) */
void bt_tq2_0_quantize_ref(const float *x, uint8_t *blk);
void bt_tq1_0_quantize_ref(const float *x, uint8_t *blk);

/* ---- MTQ: N ternary planes per weight (docs/formats.md "MTQ") ---------------------------------
 * One row = ncols/block blocks. Block: N fp16 scales (plane-major), then the codes.
 * layout 0: for each chunk of C = min(block,128) elements, N plane slices of C/4 bytes; element
 *           e of the chunk sits in byte e % (C/4) at bits 2*(e / (C/4)), code = t + 1.
 * layout 1: ceil(block/5) groups; group g holds N bytes (plane 0..N-1), byte = sum_k c_k 3^k
 *           over elements 5g+k (k < 5, c = t + 1; missing elements count as c = 1). */
size_t bt_mtq_block_bytes(uint32_t planes, uint32_t block, uint32_t layout);
/* t: planes x block codes (plane-major), a: planes scales */
void bt_mtq_pack_block(const struct bt_tfmt *fmt, const int8_t *t, const float *a, uint8_t *dst);
void bt_mtq_unpack_block(const struct bt_tfmt *fmt, const uint8_t *src, int8_t *t, float *a);

/* ---- files ------------------------------------------------------------------------------------ */
/* read a whole file; *out is NUL-terminated, caller frees with free(). On failure returns
 * BT_E_IO / BT_E_NOMEM and err (may be NULL) gets that status and "path: reason". */
bt_status bt_file_read_all(const char *path, char **out, size_t *len, bt_err *err);
/* mkdir -p of path's folder; BT_OK, or BT_E_IO with a message naming path in err (may be NULL) */
bt_status bt_file_make_parents(const char *path, bt_err *err);
/* 1 if writing out would touch input in: out is in (same path after realpath, or the same file
 * through a hard link), or in is a folder and out lies inside it or is a hard link to a file in
 * it. 0 otherwise (also when in does not exist). */
int bt_path_touches(const char *in, const char *out);
/* 1 if a and b (either may not exist yet) would be the same file */
int bt_path_same_target(const char *a, const char *b);

#ifdef __cplusplus
}
#endif
#endif
