/* gguf_reader.h - state of the "gguf" reader plugin shared by its files: gguf_reader.c (map,
 * parse, validate, zstd, plugin interface) and gguf_reader_fmt.c (bt formats of I8 tensors from
 * bt.mtq / bt.fmt keys, extra parts, read_f32 through the descriptors). */
#ifndef BT_GGUF_READER_H
#define BT_GGUF_READER_H

#include "gguf_common.h"

#include <pthread.h>

/* One tensor of the file. */
struct gr_tensor {
    char          *name;     /* owned, NUL-terminated */
    struct bt_tfmt fmt;      /* bt storage format (MTQ from a bt.mtq.<name> key) */
    uint32_t       ggml;     /* ggml type id in the file */
    uint32_t       n_dims;   /* 1..4 */
    int64_t        shape[4]; /* numpy order (outermost first) */
    uint64_t       offset;   /* blob offset relative to the data section */
    uint64_t       nbytes;   /* data size (uncompressed) */
    uint64_t       zbytes;   /* size of the zstd frame stored in the file; 0 = stored raw */
    uint8_t       *zdata;    /* decompressed data (host->alloc) once got, until release */
    uint32_t       n_parts;  /* extra parts of its format (struct bt_format.part_info) */
    uint32_t       part[BT_MAX_PARTS]; /* index of part k's tensor "<name>.<part>" */
    int32_t        args_kv;  /* index of its bt.fmt_args.<name> key, or -1 */
    uint8_t        is_part;  /* a part of another tensor: not listed */
    int            checked;  /* the format's check() passed (atomic) */
    uint8_t        has_fmt;  /* a bt.mtq / bt.fmt key gave its format */
    uint8_t        halves;   /* bt.rope_halves.<name>: rows in HF rotate-half order */
    uint8_t        i2s;      /* bitnet.cpp I2_S (ggml 36): fbytes in the file, decoded to TQ2_0
                              * into zdata on first get (gguf_i2s.c) */
    uint64_t       fbytes;   /* I2_S: bytes in the file (n/4 codes + the 32-byte trailer) */
};

/* Reader instance state (ctx_size bytes, zeroed by the core). */
struct gr_ctx {
    const struct bt_host *host;   /* host services */
    char                 *path;   /* file path (owned) */
    const uint8_t        *map;    /* whole file, read-only */
    size_t                size;   /* file size in bytes */
    struct bt_kv         *kv;     /* n_kv entries; kv[i].key starts the entry's owned block */
    uint32_t              n_kv;   /* KVs parsed so far */
    struct gr_tensor     *t;      /* n_t tensors */
    uint32_t              n_t;    /* tensors parsed so far */
    uint32_t             *vis;    /* listed tensors (all but parts): index into t */
    uint32_t              n_vis;  /* entries in vis */
    uint64_t              data;   /* file offset of the data section */
    uint32_t              align;  /* general.alignment or 32 */
    pthread_mutex_t       lock;   /* guards zdata (tensor_get may run on several threads) */
    int                   locked; /* lock is initialized */
    int                   i2s_layout; /* GR_I2S_*: code order of I2_S tensors ([input] i2s_layout) */
};

/* ---- bitnet.cpp I2_S (gguf_i2s.c) ---- */
#define GGML_I2_S     36u /* ggml type id of I2_S in bitnet.cpp's llama.cpp fork */
#define GR_I2S_TRAILER 32u /* bytes after the codes; the first 4 are the f32 scale */
#define GR_I2S_SCALE_PREFIX "bt.weight_scale." /* F32 key the reader adds per I2_S tensor */
enum { GR_I2S_X86 = 0, GR_I2S_ARM = 1, GR_I2S_X86_1X4 = 2 };
/* GR_I2S_* of an i2s_layout value (NULL: the default, x86); -1 if unknown */
int gr_i2s_layout_of(const char *name);
/* 1 if a rows x cols I2_S tensor can be read in layout; else 0 with the reason in why */
int gr_i2s_shape_ok(int layout, int64_t rows, int64_t cols, char *why, size_t n);
/* the f32 scale in the trailer of a rows x cols I2_S tensor (src: its first byte) */
float gr_i2s_scale(const uint8_t *src, int64_t rows, int64_t cols);
/* decode I2_S tensor t into t->zdata as TQ2_0 (block scales = fp16(scale); lock held);
 * BT_E_FORMAT naming the tensor on a code 3 or a scale that is not finite and >= 0 */
bt_status gr_i2s_tensor_decode(struct gr_ctx *g, struct gr_tensor *t, bt_err *err);
/* after parsing: the fork's architectures bitnet-b1.58 / bitnet-25 as bitnet (+ bt.ffn_activation
 * = relu2), and a bt.weight_scale.<name> F32 key per I2_S tensor (its trailer checked) */
bt_status gr_i2s_finish(struct gr_ctx *g, bt_err *err);

/* apply bt.mtq.* / bt.fmt.* / bt.fmt_args.* keys, attach the extra parts of every tensor whose
 * format has some (names: the file's tensor names) and build the listed set g->vis */
bt_status gr_apply_formats(struct gr_ctx *g, const struct gguf_nameset *names, bt_err *err);
/* the plugin's tensor_get / read_f32 (i: listed index) */
bt_status gr_tensor_get(void *ctx, uint32_t i, struct bt_tensor *out, bt_err *err);
bt_status gr_read_f32(void *ctx, uint32_t i, int64_t row0, int64_t nrows, float *dst,
                      bt_err *err);

#endif
