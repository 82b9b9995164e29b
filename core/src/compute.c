/* compute.c - the quantizers' compute backend: host->kmeans_assign runs op KMEANS on the
 * pipeline's backend ([pipeline] backend), opened on first use during a conversion and closed
 * when it ends. Points go through in slices so buffers stay bounded; results are identical for
 * any slicing (each point's argmin is its own). The second-order engine's GEMM / CHOL_INV go
 * there too when [quantize] so_backend routes them (compute.h). */
#include "compute.h"
#include "bt_types.h"

#include <pthread.h>
#include <string.h>

static struct {
    pthread_mutex_t    mu;
    bt_registry       *reg;
    char               name[64];
    bt_optset         *opts; /* clone, owned */
    struct bt_backend *be;
    int                failed;
    int                so_mode;  /* BT_SO_* */
    int                so_route; /* -1: not decided yet; 0 host; 1 the backend */
} C = {PTHREAD_MUTEX_INITIALIZER, NULL, "", NULL, NULL, 0, BT_SO_AUTO, -1};

void bt_compute_begin(bt_registry *reg, const char *backend, const bt_optset *opts) {
    pthread_mutex_lock(&C.mu);
    C.reg = reg;
    snprintf(C.name, sizeof(C.name), "%s", backend && *backend ? backend : "auto");
    C.opts = opts ? bt_optset_clone(opts) : NULL;
    C.be = NULL;
    C.failed = 0;
    C.so_mode = BT_SO_AUTO;
    C.so_route = -1;
    pthread_mutex_unlock(&C.mu);
}

void bt_compute_so_mode(int mode) {
    pthread_mutex_lock(&C.mu);
    C.so_mode = mode;
    C.so_route = -1;
    pthread_mutex_unlock(&C.mu);
}

void bt_compute_end(void) {
    pthread_mutex_lock(&C.mu);
    bt_backend_close(C.be);
    bt_optset_free(C.opts);
    C.be = NULL;
    C.opts = NULL;
    C.reg = NULL;
    pthread_mutex_unlock(&C.mu);
}

#define SLICE ((int64_t)1 << 16) /* points per op */

static bt_status run_slices(struct bt_backend *be, const float *pts, int64_t n, int64_t d,
                            const float *cent, int64_t k, const float *w, int32_t *idx, bt_err *err) {
    bt_buf *bp = NULL, *bc = NULL, *bw = NULL, *bi = NULL;
    int64_t sl = n < SLICE ? n : SLICE;
    bt_status st;
    if ((st = bt_be_alloc(be, (uint64_t)sl * d * 4, BT_BUF_ACT, &bp, err)) ||
        (st = bt_be_alloc(be, (uint64_t)k * d * 4, BT_BUF_ACT, &bc, err)) ||
        (w && (st = bt_be_alloc(be, (uint64_t)d * 4, BT_BUF_ACT, &bw, err))) ||
        (st = bt_be_alloc(be, (uint64_t)sl * 4, BT_BUF_ACT, &bi, err)) ||
        (st = bt_be_write(be, bc, 0, cent, (uint64_t)k * d * 4, err)) ||
        (w && (st = bt_be_write(be, bw, 0, w, (uint64_t)d * 4, err))))
        goto done;
    for (int64_t i0 = 0; i0 < n && !st; i0 += sl) {
        int64_t m = n - i0 < sl ? n - i0 : sl;
        struct bt_op op;
        memset(&op, 0, sizeof(op));
        op.code = BT_OP_KMEANS;
        op.dst = bt_view_of(bi, 0, bt_fmt(BT_TYPE_I32), m, 1);
        op.src[0] = bt_view_of(bp, 0, bt_fmt(BT_TYPE_F32), m, d);
        op.src[1] = bt_view_of(bc, 0, bt_fmt(BT_TYPE_F32), k, d);
        if (w) op.src[2] = bt_view_of(bw, 0, bt_fmt(BT_TYPE_F32), 1, d);
        if ((st = bt_be_write(be, bp, 0, pts + i0 * d, (uint64_t)m * d * 4, err))) break;
        if (!bt_be_supports(be, &op)) {
            st = bt_err_set(err, BT_E_BACKEND, "backend '%s' does not run k-means assignment "
                            "(%lld centroids of %lld)", bt_backend_name(be), (long long)k, (long long)d);
            break;
        }
        if ((st = bt_be_run(be, &op, 1, err))) break;
        st = bt_be_read(be, bi, 0, idx + i0, (uint64_t)m * 4, err);
    }
done:
    bt_be_free(be, bp); bt_be_free(be, bc); bt_be_free(be, bw); bt_be_free(be, bi);
    return st;
}

/* the backend, opened on first use (C.mu held); what names the caller in messages */
static bt_status ensure_open(const char *what, bt_err *err) {
    if (C.be) return BT_OK;
    if (C.failed)
        return bt_err_set(err, BT_E_BACKEND, "%s: the compute backend '%s' could not be opened", what, C.name);
    if (!C.reg) return bt_err_set(err, BT_E_BACKEND, "%s: no compute backend outside a conversion", what);
    bt_optset *o = C.opts ? bt_optset_clone(C.opts) : NULL;
    bt_status st = bt_backend_open(C.reg, C.name, o, &C.be, err);
    if (st) C.failed = 1;
    else bt_log(BT_LOG_INFO, "quantizer compute on backend '%s'", bt_backend_name(C.be));
    return st;
}

bt_status bt_compute_kmeans(const float *pts, int64_t n, int64_t d, const float *cent, int64_t k,
                            const float *w, int32_t *idx, bt_err *err) {
    if (!pts || !cent || !idx || n < 0 || d < 1 || d > 64 || k < 1 || k > ((int64_t)1 << 24))
        return bt_err_set(err, BT_E_INVAL, "kmeans_assign: bad arguments (n %lld, d %lld, k %lld)",
                          (long long)n, (long long)d, (long long)k);
    if (!n) return BT_OK;
    pthread_mutex_lock(&C.mu);
    bt_status st = ensure_open("kmeans_assign", err);
    if (!st) st = run_slices(C.be, pts, n, d, cent, k, w, idx, err);
    pthread_mutex_unlock(&C.mu);
    return st;
}

/* ---- the second-order engine's algebra ------------------------------------------------------ */
/* 1 if the open backend runs GEMM and CHOL_INV (probed on 2 x 2 views of scratch buffers) */
static int so_ops_supported(void) {
    bt_buf *b = NULL, *bi = NULL;
    int ok = 0;
    if (!bt_be_alloc(C.be, 64, BT_BUF_ACT, &b, NULL) && !bt_be_alloc(C.be, 64, BT_BUF_ACT, &bi, NULL)) {
        struct bt_tfmt f32 = bt_fmt(BT_TYPE_F32);
        struct bt_op g, ch;
        memset(&g, 0, sizeof(g));
        g.code = BT_OP_GEMM;
        g.flags = BT_OPF_TRANS_A;
        g.scale = -1.0f;
        g.eps = 1.0f;
        g.dst = bt_view_of(b, 0, f32, 2, 2);
        g.src[0] = bt_view_of(b, 16, f32, 2, 2);
        g.src[1] = bt_view_of(b, 32, f32, 2, 2);
        ch = g;
        ch.code = BT_OP_CHOL_INV;
        ch.flags = 0;
        ch.src[1] = bt_view_of(bi, 0, bt_fmt(BT_TYPE_I32), 1, 1);
        ok = bt_be_supports(C.be, &g) && bt_be_supports(C.be, &ch);
    }
    bt_be_free(C.be, b);
    bt_be_free(C.be, bi);
    return ok;
}

bt_status bt_compute_so_route(int *routed, bt_err *err) {
    *routed = 0;
    pthread_mutex_lock(&C.mu);
    bt_status st = BT_OK;
    if (C.so_route < 0) {
        C.so_route = 0;
        /* auto: only a backend the INI names ([pipeline] backend = cuda), never one "auto" picked */
        if (C.reg && (C.so_mode == BT_SO_BACKEND || (C.so_mode == BT_SO_AUTO && strcmp(C.name, "auto")))) {
            bt_err e2 = {0, ""};
            st = ensure_open("second order", C.so_mode == BT_SO_BACKEND ? err : &e2);
            struct bt_device_info di;
            memset(&di, 0, sizeof(di));
            int ok = !st && so_ops_supported() && !bt_be_info(C.be, &di);
            if (C.so_mode == BT_SO_BACKEND && !st && !ok)
                st = bt_err_set(err, BT_E_UNSUPPORTED, "[quantize] so_backend = backend: backend '%s' does "
                                "not run the second-order ops (gemm, chol_inv)", bt_backend_name(C.be));
            if (C.so_mode == BT_SO_AUTO) st = BT_OK; /* no backend for it: the host */
            C.so_route = ok && (C.so_mode == BT_SO_BACKEND || !di.host_memory);
            if (C.so_route) bt_log(BT_LOG_INFO, "second-order algebra on backend '%s'", bt_backend_name(C.be));
        }
        if (st) C.so_route = -1; /* reported once per call until it works: every tensor fails */
    }
    if (!st) *routed = C.so_route > 0;
    pthread_mutex_unlock(&C.mu);
    return st;
}

bt_status bt_compute_alloc(uint64_t n, bt_buf **out, bt_err *err) {
    pthread_mutex_lock(&C.mu);
    bt_status st = C.be ? bt_be_alloc(C.be, n, BT_BUF_ACT, out, err)
                        : bt_err_set(err, BT_E_BACKEND, "second order: no compute backend");
    pthread_mutex_unlock(&C.mu);
    return st;
}

void bt_compute_free(bt_buf *b) {
    if (!b) return;
    pthread_mutex_lock(&C.mu);
    if (C.be) bt_be_free(C.be, b);
    pthread_mutex_unlock(&C.mu);
}

bt_status bt_compute_write(bt_buf *b, uint64_t off, const void *src, uint64_t n, bt_err *err) {
    pthread_mutex_lock(&C.mu);
    bt_status st = bt_be_write(C.be, b, off, src, n, err);
    pthread_mutex_unlock(&C.mu);
    return st;
}

bt_status bt_compute_read(bt_buf *b, uint64_t off, void *dst, uint64_t n, bt_err *err) {
    pthread_mutex_lock(&C.mu);
    bt_status st = bt_be_read(C.be, b, off, dst, n, err);
    pthread_mutex_unlock(&C.mu);
    return st;
}

bt_status bt_compute_run(const struct bt_op *op, bt_err *err) {
    pthread_mutex_lock(&C.mu);
    bt_status st = bt_be_supports(C.be, op) ? bt_be_run(C.be, op, 1, err)
                   : bt_err_set(err, BT_E_BACKEND, "backend '%s' does not run op %s (%lld x %lld)",
                                bt_backend_name(C.be), bt_op_name(op->code), (long long)op->dst.rows,
                                (long long)op->dst.cols);
    pthread_mutex_unlock(&C.mu);
    return st;
}

bt_status bt_compute_chol_inv(float *A, float *X, int64_t n, int64_t *bad, bt_err *err) {
    uint64_t nb = (uint64_t)n * (uint64_t)n * 4;
    bt_buf *ba = NULL, *bx = NULL, *bi = NULL;
    int32_t info = 0;
    *bad = 0;
    bt_status st;
    if (!(st = bt_compute_alloc(nb, &ba, err)) && !(st = bt_compute_alloc(nb, &bx, err)) &&
        !(st = bt_compute_alloc(4, &bi, err)) && !(st = bt_compute_write(ba, 0, A, nb, err))) {
        struct bt_op op;
        memset(&op, 0, sizeof(op));
        op.code = BT_OP_CHOL_INV;
        op.dst = bt_view_of(bx, 0, bt_fmt(BT_TYPE_F32), n, n);
        op.src[0] = bt_view_of(ba, 0, bt_fmt(BT_TYPE_F32), n, n);
        op.src[1] = bt_view_of(bi, 0, bt_fmt(BT_TYPE_I32), 1, 1);
        if (!(st = bt_compute_run(&op, err)) && !(st = bt_compute_read(bi, 0, &info, 4, err)) && !info)
            st = bt_compute_read(bx, 0, X, nb, err);
        *bad = info;
    }
    bt_compute_free(ba);
    bt_compute_free(bx);
    bt_compute_free(bi);
    return st;
}
