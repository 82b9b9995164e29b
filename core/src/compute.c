/* compute.c - the quantizers' compute backend: host->kmeans_assign runs op KMEANS on the
 * pipeline's backend ([pipeline] backend), opened on first use during a conversion and closed
 * when it ends. Points go through in slices so buffers stay bounded; results are identical for
 * any slicing (each point's argmin is its own). */
#include "bt/bt.h"
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
} C = {PTHREAD_MUTEX_INITIALIZER, NULL, "", NULL, NULL, 0};

void bt_compute_begin(bt_registry *reg, const char *backend, const bt_optset *opts) {
    pthread_mutex_lock(&C.mu);
    C.reg = reg;
    snprintf(C.name, sizeof(C.name), "%s", backend && *backend ? backend : "auto");
    C.opts = opts ? bt_optset_clone(opts) : NULL;
    C.be = NULL;
    C.failed = 0;
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

bt_status bt_compute_kmeans(const float *pts, int64_t n, int64_t d, const float *cent, int64_t k,
                            const float *w, int32_t *idx, bt_err *err) {
    if (!pts || !cent || !idx || n < 0 || d < 1 || d > 64 || k < 1 || k > ((int64_t)1 << 24))
        return bt_err_set(err, BT_E_INVAL, "kmeans_assign: bad arguments (n %lld, d %lld, k %lld)",
                          (long long)n, (long long)d, (long long)k);
    if (!n) return BT_OK;
    pthread_mutex_lock(&C.mu);
    bt_status st = BT_OK;
    if (!C.be && !C.failed) {
        if (!C.reg) {
            st = bt_err_set(err, BT_E_BACKEND, "kmeans_assign: no compute backend outside a conversion");
        } else {
            bt_optset *o = C.opts ? bt_optset_clone(C.opts) : NULL;
            st = bt_backend_open(C.reg, C.name, o, &C.be, err);
            if (st) C.failed = 1;
            else bt_log(BT_LOG_INFO, "quantizer compute on backend '%s'", bt_backend_name(C.be));
        }
    } else if (C.failed) {
        st = bt_err_set(err, BT_E_BACKEND, "kmeans_assign: the compute backend '%s' could not be opened", C.name);
    }
    if (!st) st = run_slices(C.be, pts, n, d, cent, k, w, idx, err);
    pthread_mutex_unlock(&C.mu);
    return st;
}
