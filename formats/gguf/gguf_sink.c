/* gguf_sink.c - a buffered byte sink (memory buffer or file) with little-endian GGUF
 * primitives, used by the gguf writer (see gguf_sink.h). */
#include "gguf_sink.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int gguf_sink_flush(struct gguf_sink *s) {
    size_t off = 0;
    while (s->fd >= 0 && !s->err && off < s->n) {
        ssize_t w = write(s->fd, s->p + off, s->n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) s->err = w < 0 ? errno : EIO;
        else off += (size_t)w;
    }
    s->n = 0;
    return s->err;
}

void gguf_sink_put(struct gguf_sink *s, const struct bt_host *h, const void *src, size_t len) {
    if (s->err || !len) return;
    s->total += len;
    if (s->n + len > s->cap) {
        if (s->fd >= 0) {
            if (gguf_sink_flush(s)) return;
        } else {
            size_t nc = s->cap ? s->cap : 4096;
            while (nc < s->n + len) nc *= 2;
            uint8_t *np = h->alloc(nc);
            if (!np) { s->err = ENOMEM; return; }
            if (s->n) memcpy(np, s->p, s->n);
            h->free(s->p);
            s->p = np;
            s->cap = nc;
        }
    }
    if (s->n + len > s->cap) { /* file sink, larger than the buffer: write through */
        struct gguf_sink direct = {(uint8_t *)src, len, len, s->fd, 0, 0};
        s->err = gguf_sink_flush(&direct);
        return;
    }
    memcpy(s->p + s->n, src, len);
    s->n += len;
}

void gguf_put_u32(struct gguf_sink *s, const struct bt_host *h, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    gguf_sink_put(s, h, b, 4);
}

void gguf_put_u64(struct gguf_sink *s, const struct bt_host *h, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    gguf_sink_put(s, h, b, 8);
}

void gguf_put_str(struct gguf_sink *s, const struct bt_host *h, const char *str, uint64_t n) {
    gguf_put_u64(s, h, n);
    gguf_sink_put(s, h, str, (size_t)n);
}

void gguf_put_zeros(struct gguf_sink *s, const struct bt_host *h, uint64_t n) {
    static const uint8_t z[64];
    while (n) {
        size_t k = n < sizeof(z) ? (size_t)n : sizeof(z);
        gguf_sink_put(s, h, z, k);
        n -= k;
    }
}

/* one scalar KV value of type t (BT_KV_*) from the union fields */
void gguf_put_scalar(struct gguf_sink *s, const struct bt_host *h, uint32_t t, uint64_t u,
                     int64_t i, double f) {
    uint8_t b[8];
    uint64_t bits = u;
    if (t == BT_KV_I8 || t == BT_KV_I16 || t == BT_KV_I32 || t == BT_KV_I64) bits = (uint64_t)i;
    if (t == BT_KV_BOOL) bits = u != 0;
    if (t == BT_KV_F32) { float v = (float)f; uint32_t w; memcpy(&w, &v, 4); bits = w; }
    if (t == BT_KV_F64) memcpy(&bits, &f, 8);
    size_t n = gguf_kv_scalar_size(t);
    for (size_t k = 0; k < n; k++) b[k] = (uint8_t)(bits >> (8 * k));
    gguf_sink_put(s, h, b, n);
}

void gguf_put_key_u32(struct gguf_sink *s, const struct bt_host *h, const char *key, uint32_t v) {
    gguf_put_str(s, h, key, strlen(key));
    gguf_put_u32(s, h, BT_KV_U32);
    gguf_put_u32(s, h, v);
}

void gguf_sink_free(struct gguf_sink *s, const struct bt_host *h) {
    h->free(s->p);
    if (s->fd >= 0) close(s->fd);
    memset(s, 0, sizeof(*s));
    s->fd = -1;
}
