/* gguf_sink.h - a buffered byte sink (growable memory buffer or buffered file writer) and the
 * little-endian GGUF primitives the gguf writer serializes with. */
#ifndef BT_GGUF_SINK_H
#define BT_GGUF_SINK_H

#include "gguf_common.h"

/* A byte sink: a growable memory buffer (fd < 0) or a buffered file writer (fd >= 0). */
struct gguf_sink {
    uint8_t *p;     /* buffer (host->alloc) */
    size_t   n;     /* bytes buffered */
    size_t   cap;   /* buffer capacity */
    int      fd;    /* output file, or -1 for memory only */
    uint64_t total; /* bytes put so far (buffered + flushed) */
    int      err;   /* first errno (or ENOMEM), 0 if fine */
};

/* write out the buffer of a file sink (no-op for memory); returns the first error, 0 if fine */
int  gguf_sink_flush(struct gguf_sink *s);
/* append len bytes (memory: grows the buffer; file: buffered, large puts written through);
 * errors stick in s->err and make later puts no-ops */
void gguf_sink_put(struct gguf_sink *s, const struct bt_host *h, const void *src, size_t len);
/* little-endian u32 / u64, GGUF string (u64 length + bytes), n zero bytes */
void gguf_put_u32(struct gguf_sink *s, const struct bt_host *h, uint32_t v);
void gguf_put_u64(struct gguf_sink *s, const struct bt_host *h, uint64_t v);
void gguf_put_str(struct gguf_sink *s, const struct bt_host *h, const char *str, uint64_t n);
void gguf_put_zeros(struct gguf_sink *s, const struct bt_host *h, uint64_t n);
/* one scalar KV value of type t (BT_KV_*) taken from the matching union field u / i / f */
void gguf_put_scalar(struct gguf_sink *s, const struct bt_host *h, uint32_t t, uint64_t u,
                     int64_t i, double f);
/* a whole u32 KV: key, type, value */
void gguf_put_key_u32(struct gguf_sink *s, const struct bt_host *h, const char *key, uint32_t v);
/* free the buffer and close the file (fd = -1 afterwards) */
void gguf_sink_free(struct gguf_sink *s, const struct bt_host *h);

#endif
