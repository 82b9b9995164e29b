/* backend.c - the core's calls into backend plugins: one wrapper per interface entry, optional
 * entries gated by struct_size (BT_HAS), and errors that name the backend when the plugin
 * returned a failure without a message. */
#include "bt/bt.h"
#include "bt_types.h"

#include <string.h>

const char *bt_backend_name(const struct bt_backend *b) { return b->entry->desc->name; }

/* a failed call whose plugin left no message gets one */
static bt_status named(struct bt_backend *b, bt_status st, const char *what, bt_err *err) {
    if (st != BT_OK && err && err->status == BT_OK)
        bt_err_set(err, st, "backend '%s': %s failed (status %d)", bt_backend_name(b), what, st);
    return st;
}

bt_status bt_be_info(struct bt_backend *b, struct bt_device_info *out) {
    memset(out, 0, sizeof *out);
    return b->i->device_info(b->ctx, out);
}

bt_status bt_be_alloc(struct bt_backend *b, uint64_t n, uint32_t usage, bt_buf **out, bt_err *err) {
    *out = NULL;
    bt_status st = named(b, b->i->buf_alloc(b->ctx, n, usage, out, err), "buffer allocation", err);
    if (!st && !*out) st = bt_err_set(err, BT_E_BACKEND, "backend '%s': allocation returned no "
                                      "buffer", bt_backend_name(b));
    return st;
}

void bt_be_free(struct bt_backend *b, bt_buf *buf) {
    if (buf) b->i->buf_free(b->ctx, buf);
}

bt_status bt_be_write(struct bt_backend *b, bt_buf *buf, uint64_t off, const void *src, uint64_t n,
                      bt_err *err) {
    return named(b, b->i->buf_write(b->ctx, buf, off, src, n, err), "upload", err);
}

bt_status bt_be_read(struct bt_backend *b, bt_buf *buf, uint64_t off, void *dst, uint64_t n,
                     bt_err *err) {
    return named(b, b->i->buf_read(b->ctx, buf, off, dst, n, err), "download", err);
}

bt_status bt_be_wrap(struct bt_backend *b, const void *p, uint64_t n, bt_buf **out, bt_err *err) {
    *out = NULL;
    if (!BT_HAS(b->i, buf_wrap)) return BT_E_UNSUPPORTED;
    bt_err e2;
    bt_err_clear(&e2);
    bt_status st = b->i->buf_wrap(b->ctx, p, n, out, &e2);
    if (st == BT_E_UNSUPPORTED) return st;
    if (st != BT_OK && err) *err = e2;
    return named(b, st, "buf_wrap", err);
}

int bt_be_supports(struct bt_backend *b, const struct bt_op *op) {
    return b->i->supports_op(b->ctx, op) != 0;
}

bt_status bt_be_run(struct bt_backend *b, const struct bt_op *ops, uint32_t n, bt_err *err) {
    return named(b, b->i->run(b->ctx, ops, n, err), n == 1 ? bt_op_name(ops[0].code) : "run", err);
}
