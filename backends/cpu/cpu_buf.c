/* cpu_buf.c - buffers of the CPU backends (host memory: allocated 64-byte aligned, or wrapped
 * without a copy) and the device description. */
#include "cpu_kern.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

bt_status bt_cpu_device_info(void *ctx, struct bt_device_info *out) {
    struct bt_cpu_ctx *c = ctx;
    char model[96] = "CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            char *colon = strchr(line, ':');
            if (strncmp(line, "model name", 10) == 0 && colon) {
                snprintf(model, sizeof model, "%s", colon + 2);
                model[strcspn(model, "\n")] = 0;
                break;
            }
        }
        fclose(f);
    }
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s (%d threads, %s kernels)", model,
             c->host->n_threads(), c->isa->name);
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    out->mem_bytes = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
    out->host_memory = 1;
    out->n_devices = 1;
    return BT_OK;
}

static void link_buf(struct bt_cpu_ctx *c, bt_buf *b) {
    b->prev = NULL;
    b->next = c->bufs;
    if (c->bufs) c->bufs->prev = b;
    c->bufs = b;
}

bt_status bt_cpu_buf_alloc(void *ctx, uint64_t n, uint32_t usage, bt_buf **out, bt_err *err) {
    struct bt_cpu_ctx *c = ctx;
    (void)usage;
    *out = NULL;
    bt_buf *b = c->host->alloc(sizeof *b);
    uint8_t *p = b ? c->host->alloc(n ? (size_t)n : 1) : NULL;
    if (!p) {
        if (b) c->host->free(b);
        return c->host->set_error(err, BT_E_NOMEM, "cpu: out of memory for a buffer of %llu bytes",
                                  (unsigned long long)n);
    }
    b->p = p;
    b->n = n;
    b->wrapped = 0;
    b->vq = NULL;
    b->gen = 0;
    link_buf(c, b);
    *out = b;
    return BT_OK;
}

bt_status bt_cpu_buf_wrap(void *ctx, const void *host, uint64_t n, bt_buf **out, bt_err *err) {
    struct bt_cpu_ctx *c = ctx;
    *out = NULL;
    if (!host) return c->host->set_error(err, BT_E_INVAL, "cpu: buf_wrap of a NULL pointer");
    bt_buf *b = c->host->alloc(sizeof *b);
    if (!b) return c->host->set_error(err, BT_E_NOMEM, "cpu: out of memory");
    b->p = (uint8_t *)(uintptr_t)host;
    b->n = n;
    b->wrapped = 1;
    b->vq = NULL;
    b->gen = 0;
    link_buf(c, b);
    *out = b;
    return BT_OK;
}

void bt_cpu_buf_free(void *ctx, bt_buf *b) {
    struct bt_cpu_ctx *c = ctx;
    if (!b) return;
    if (b->prev) b->prev->next = b->next;
    else c->bufs = b->next;
    if (b->next) b->next->prev = b->prev;
    if (!b->wrapped) c->host->free(b->p);
    bt_cpu_vq_drop(c->host, b);
    c->host->free(b);
}

static bt_status check_range(struct bt_cpu_ctx *c, const char *fn, bt_buf *b, uint64_t off,
                             uint64_t n, const void *p, bt_err *err) {
    if (!b || (!p && n))
        return c->host->set_error(err, BT_E_INVAL, "cpu: %s: null buffer or pointer", fn);
    if (off > b->n || n > b->n - off)
        return c->host->set_error(err, BT_E_INVAL, "cpu: %s: bytes [%llu, %llu) outside a buffer "
                                  "of %llu", fn, (unsigned long long)off,
                                  (unsigned long long)(off + n), (unsigned long long)b->n);
    return BT_OK;
}

bt_status bt_cpu_buf_write(void *ctx, bt_buf *b, uint64_t off, const void *src, uint64_t n,
                           bt_err *err) {
    struct bt_cpu_ctx *c = ctx;
    bt_status st = check_range(c, "buf_write", b, off, n, src, err);
    if (st) return st;
    if (b->wrapped)
        return c->host->set_error(err, BT_E_INVAL, "cpu: buf_write into a wrapped (read-only) buffer");
    if (n) memcpy(b->p + off, src, (size_t)n);
    b->gen++; /* caches built from it (vq) are stale */
    return BT_OK;
}

bt_status bt_cpu_buf_read(void *ctx, bt_buf *b, uint64_t off, void *dst, uint64_t n, bt_err *err) {
    struct bt_cpu_ctx *c = ctx;
    bt_status st = check_range(c, "buf_read", b, off, n, dst, err);
    if (st) return st;
    if (n) memcpy(dst, b->p + off, (size_t)n);
    return BT_OK;
}
