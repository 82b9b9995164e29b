/* gguf_common.h - GGUF v3 constants and helpers shared by the gguf reader and writer plugins:
 * ggml type table, format lookups through the host (bt <-> ggml via struct bt_format), KV value
 * sizes and a small name hash set. */
#ifndef BT_GGUF_COMMON_H
#define BT_GGUF_COMMON_H

#include "bt/bt_plugin.h"

#include <stddef.h>
#include <stdint.h>

#define GGUF_MAGIC             "GGUF"
#define GGUF_VERSION           3u
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_NAME          64u              /* tensor names must be shorter (gguf.cpp) */
#define GGUF_MAX_STRING        (1ull << 30)     /* gguf.cpp caps strings at 1 GiB */
#define GGUF_MAX_ARRAY         (1ull << 30)     /* ... and arrays at 2^30 elements */
#define GGUF_MTQ_PREFIX        "bt.mtq."        /* KV carrying the MTQ geometry of an I8 tensor */
#define GGUF_FMT_PREFIX        "bt.fmt."        /* KV naming the bt format of an I8 tensor */
#define GGUF_FMT_ARGS_PREFIX   "bt.fmt_args."   /* KV u32[4]: its parameters and logical cols */
#define GGUF_HALVES_PREFIX     "bt.rope_halves." /* BOOL: rows kept in HF rotate-half order */
#define GGUF_ZSTD_PREFIX       "bt.zstd."       /* KV restoring the info of a zstd-compressed tensor */
#define GGUF_ZSTD_NV           7u               /* u64[7]: ggml type, n_dims, ne0..ne3, raw bytes */
#define GGUF_COMPRESSION_KEY   "bt.compression" /* "zstd" when some tensors are compressed */
#define GGUF_ZSTD_MAX_RATIO    65536u           /* zstd cannot expand a frame by more than 2^15 */

/* ggml type ids used by bt */
enum {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q8_0 = 8, GGML_I8 = 24, GGML_I16 = 25,
    GGML_I32 = 26, GGML_I64 = 27, GGML_F64 = 28, GGML_BF16 = 30, GGML_TQ1_0 = 34,
    GGML_TQ2_0 = 35, GGML_TYPE_COUNT = 43,
};

/* One ggml type as ggml defines it (which bt format reads it is the formats' business). */
struct gguf_type_info {
    const char *name;   /* "q4_K", ...; NULL for unknown/removed ids */
    uint32_t    block;  /* elements per block; 0 = geometry not known here */
    uint32_t    bytes;  /* bytes per block */
};

/* type info for a ggml id; NULL if the id is unknown or removed */
const struct gguf_type_info *gguf_type(uint32_t ggml_id);

/* ---- formats through the host (the core's table: built-ins and plugin formats) ------------ */
/* descriptor of a bt type id / format name; NULL if unknown */
const struct bt_format *gguf_fmt(const struct bt_host *h, uint32_t type);
const struct bt_format *gguf_fmt_by_name(const struct bt_host *h, const char *name);
/* block geometry of fmt (its descriptor f); 0 if f is NULL or the parameters are invalid */
int gguf_fmt_geom(const struct bt_format *f, const struct bt_tfmt *fmt, uint32_t *block,
                  uint32_t *bytes);
/* bytes of a row of cols elements of fmt; 0 if invalid (unknown, bad parameters, part blocks) */
uint64_t gguf_row_bytes(const struct bt_host *h, const struct bt_tfmt *fmt, int64_t cols);
/* extra parts of fmt (descriptor f) */
uint32_t gguf_fmt_parts(const struct bt_format *f, const struct bt_tfmt *fmt);
/* the bt format that reads ggml type id: the lowest type id whose descriptor has gguf_type ==
 * id and whose (parameter-free) geometry matches ggml's; NULL if none. *block / *bytes get it. */
const struct bt_format *gguf_fmt_of_ggml(const struct bt_host *h, uint32_t id, uint32_t *block,
                                         uint32_t *bytes);
/* format description ("tq2_0", "mtq2x64", "type 40" for unknown ids) */
void gguf_fmt_str(const struct bt_host *h, const struct bt_tfmt *fmt, char *buf, size_t n);
/* size of a scalar GGUF value type (BT_KV_*); 0 for STRING/ARRAY/unknown */
size_t gguf_kv_scalar_size(uint32_t kv_type);
/* 1 if the key is a valid GGUF key for us: non-empty, < 65536 bytes */
int gguf_key_ok(const char *key, size_t len);

/* Open-addressing set of borrowed strings, for duplicate detection. */
struct gguf_nameset {
    const char **slot;  /* cap entries, NULL = empty (borrowed strings) */
    uint32_t    *len;   /* byte length of each slot's string */
    uint32_t    *val;   /* value stored with each string (e.g. a tensor index) */
    size_t       cap;   /* power of two, >= 2 * count */
    size_t       count; /* strings stored */
};
/* init/add return BT_OK or BT_E_NOMEM; add sets *dup = 1 (and stores nothing) if the string
 * is already there. The set grows as needed; expect is only a sizing hint. */
bt_status gguf_nameset_init(struct gguf_nameset *s, const struct bt_host *h, size_t expect);
bt_status gguf_nameset_add(struct gguf_nameset *s, const struct bt_host *h, const char *str,
                           size_t len, uint32_t val, int *dup);
/* value stored for str, or -1 if absent */
int64_t gguf_nameset_get(const struct gguf_nameset *s, const char *str, size_t len);
void gguf_nameset_free(struct gguf_nameset *s, const struct bt_host *h);

static inline uint64_t gguf_pad(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

#endif
