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
};

/* apply bt.mtq.* / bt.fmt.* / bt.fmt_args.* keys, attach the extra parts of every tensor whose
 * format has some (names: the file's tensor names) and build the listed set g->vis */
bt_status gr_apply_formats(struct gr_ctx *g, const struct gguf_nameset *names, bt_err *err);
/* the plugin's tensor_get / read_f32 (i: listed index) */
bt_status gr_tensor_get(void *ctx, uint32_t i, struct bt_tensor *out, bt_err *err);
bt_status gr_read_f32(void *ctx, uint32_t i, int64_t row0, int64_t nrows, float *dst,
                      bt_err *err);

#endif
