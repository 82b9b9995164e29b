/* gguf_writer.h - state of the "gguf" writer plugin shared by its files: gguf_writer.c (open,
 * add, spill, finish) and gguf_writer_fmt.c (how a format is stored, its parts and keys). */
#ifndef BT_GGUF_WRITER_H
#define BT_GGUF_WRITER_H

#include "gguf_common.h"
#include "gguf_sink.h"

#include <zstd.h>

#define GW_BUF_SIZE       ((size_t)4 << 20) /* write buffer of the spill / output sinks */
#define GW_ZSTD_LEVEL_DEF 3                 /* default compress_level (see README) */

/* gguf_tmpfile.c: temporaries that cannot outlive a crash */
/* an anonymous read-write file in path's folder (*named = 1: a created-then-unlinked file where
 * O_TMPFILE is missing); -1 with errno on failure */
int  gw_anon_open(const char *path, int *named);
/* give the finished anonymous file fd the name path (link under a pid-tagged temporary name,
 * rename over path); 0 or an errno */
int  gw_commit(int fd, const char *path);
/* remove ".NAME.data.PID.*" / ".NAME.tmp.PID.*" leftovers of dead writers next to path */
void gw_sweep(const char *path);

/* One tensor added so far. */
struct gw_tensor {
    char          *name;     /* owned copy (host->alloc) */
    uint32_t       ggml;     /* ggml type id written to the file */
    uint32_t       n_dims;   /* 1..4 */
    uint64_t       ne[4];    /* GGUF dims, ne[0] innermost */
    uint64_t       nbytes;   /* blob size (the zstd frame's size if raw != 0) */
    uint64_t       raw;      /* uncompressed size if the blob is a zstd frame, else 0 */
    uint64_t       offset;   /* offset of the blob in the data section */
    struct bt_tfmt fmt;      /* bt format (type MTQ carries the geometry) */
    int64_t        cols;     /* logical columns (numpy shape[last]) */
    uint32_t       how;      /* GW_NATIVE / GW_MTQ / GW_GENERIC */
    uint32_t       part;     /* 1 for a part tensor "<name>.<part>" of the tensor before it */
    uint32_t       halves;   /* 1: flagged rope_halves but with parts: rows kept in HF order,
                              * key bt.rope_halves.<name> */
    char           fname[33];/* GW_GENERIC: the format's name (bt.fmt.<name>) */
};

/* how a tensor is stored */
enum {
    GW_NATIVE  = 0, /* as its descriptor's ggml type (gguf_type) */
    GW_MTQ     = 1, /* I8 rows + bt.mtq.<name> = u32[planes, block, layout, cols] (legacy) */
    GW_GENERIC = 2, /* I8 rows + bt.fmt.<name> = name, bt.fmt_args.<name> = u32[p0, p1, p2, cols] */
};

/* Writer instance state (ctx_size bytes, zeroed by the core). */
struct gw_ctx {
    const struct bt_host *host;      /* host services */
    char                 *path;      /* final output path (owned) */
    char                 *spill;     /* spill file path (owned); NULL once removed */
    struct gguf_sink      data;      /* spill sink (fd >= 0 while open) */
    struct gguf_sink      kvs;       /* serialized input KVs (memory) */
    uint32_t              n_kv;      /* KVs in kvs */
    int                   has_align; /* general.alignment was given (rewritten in place) */
    int                   has_qver;  /* general.quantization_version was given */
    uint64_t             *heads;     /* <arch>.attention.head_count (per layer or 1 value) */
    uint64_t              n_heads;   /* entries in heads (0 = key absent) */
    uint64_t             *heads_kv;  /* <arch>.attention.head_count_kv */
    uint64_t              n_heads_kv;/* entries in heads_kv */
    struct gw_tensor     *t;         /* tensors added */
    uint32_t              nt, cap;   /* count / capacity of t */
    struct gguf_nameset   names;     /* tensor names (borrowed from t[].name) */
    uint32_t              align;     /* data alignment */
    uint32_t              expect;    /* n_tensors announced at open (0 = unknown) */
    uint32_t              n_main;    /* tensors added (t[] also holds their part tensors) */
    int                   failed;    /* an add failed: finish refuses */
    int                   finished;  /* output renamed into place */
    ZSTD_CCtx            *zc;        /* compressor (compress = zstd), else NULL */
    uint8_t              *zout;      /* compressor output chunk (host->alloc) */
    size_t                zout_cap;  /* bytes of zout */
    int                   zlevel;    /* zstd level 1..22 */
    int                   zon;       /* the current tensor's bytes go through zc */
    size_t                zerr;      /* first zstd error code of the current tensor, 0 if none */
};

/* how fmt would be stored: NULL (and *ggml, *how set) if it can be, else why not */
const char *gw_store_how(const struct bt_host *h, const struct bt_tfmt *fmt, uint32_t *ggml,
                         uint32_t *how);
/* check t (name, format, shape, size, extra parts) and fill the record r (without offset);
 * pnames gets the names of t's part tensors. Returns status with err set. */
bt_status gw_make_record(struct gw_ctx *c, const struct bt_tensor *t, struct gw_tensor *r,
                         char pnames[BT_MAX_PARTS][GGUF_MAX_NAME], bt_err *err);
/* the format keys (bt.mtq.*, bt.fmt.*, bt.fmt_args.*): how many, and write them */
uint64_t gw_fmt_key_count(const struct gw_ctx *c);
void gw_put_fmt_keys(struct gw_ctx *c, struct gguf_sink *out);

#endif
