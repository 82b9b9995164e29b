/* st_header.h - safetensors header parser and validator working on an in-memory file image
 * (used by the safetensors reader plugin, its tests and the libFuzzer target). */
#ifndef BT_ST_HEADER_H
#define BT_ST_HEADER_H
#include "bt/bt_plugin.h"

#define BT_ST_MAX_HEADER 100000000ull /* safetensors MAX_HEADER_SIZE */

/* One tensor entry of a safetensors header, validated. */
struct bt_st_entry {
    char    *name;               /* name as in the header (owned, NUL-terminated) */
    uint32_t type;               /* BT_TYPE_* */
    uint32_t n_dims;             /* 0..BT_MAX_DIMS (0 = scalar) */
    int64_t  shape[BT_MAX_DIMS]; /* numpy order */
    uint64_t begin;              /* byte offset of the data in the data buffer */
    uint64_t end;                /* exclusive end offset in the data buffer */
};

/* A parsed header: entries in header order plus where the data buffer starts. */
struct bt_st_header {
    struct bt_st_entry *t;        /* n entries (owned) */
    uint32_t            n;        /* number of tensors (__metadata__ excluded) */
    uint64_t            data_off; /* file offset of the data buffer (8 + header length) */
    uint64_t            data_len; /* bytes in the data buffer (file size - data_off) */
};

/* Parse and strictly validate the safetensors file image buf[0..len): header length, JSON
 * object, every entry (dtype, shape, data_offsets, size), no duplicates, no overlap, no holes,
 * data buffer fully covered. On failure returns BT_E_FORMAT (malformed) or BT_E_UNSUPPORTED
 * (valid dtype/rank bt does not handle), records that status and "<file>: reason" in err (may
 * be NULL; cleared first) and leaves *out empty. file is only used in messages. */
bt_status bt_st_header_parse(const uint8_t *buf, uint64_t len, const char *file,
                             struct bt_st_header *out, bt_err *err);
/* free what parse allocated; safe on a zeroed or already freed header */
void bt_st_header_free(struct bt_st_header *h);
/* bytes per element of a BT_TYPE_* the parser produces (0 for others) */
uint32_t bt_st_type_size(uint32_t type);
#endif
