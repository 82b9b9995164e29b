/* host.c - the struct bt_host service table handed to every plugin. */
#include "bt/bt.h"
#include "bt_types.h"
#include "hessian.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>


static void host_log(int level, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    bt_log(level, "%s", buf);
}

static void *host_alloc(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 1)) return NULL;
    return p;
}

static void host_free(void *p) { free(p); }

static int host_threads(void) { return bt_threads_get(); }

static size_t host_row_bytes(const struct bt_tfmt *fmt, int64_t ncols) {
    return bt_fmt_row_bytes(fmt, ncols);
}

static bt_status host_to_f32(const struct bt_tfmt *fmt, const void *src, float *dst, int64_t n) {
    return bt_to_f32(fmt, src, dst, n);
}

static const struct bt_host host = {
    .abi_version  = BT_ABI_VERSION,
    .struct_size  = sizeof(struct bt_host),
    .host_version = BT_VERSION,
    .log          = host_log,
    .set_error    = bt_err_set, /* the one error channel: same as the core's own calls */
    .alloc        = host_alloc,
    .free         = host_free,
    .parallel_for = bt_parallel_for,
    .n_threads    = host_threads,
    .opt_str      = bt_opt_str,
    .opt_int      = bt_opt_int,
    .opt_float    = bt_opt_float,
    .row_bytes    = host_row_bytes,
    .to_f32       = host_to_f32,
    .so_quantize  = bt_so_quantize,
    .hess_mul     = bt_hessian_mul,
    .spd_solve    = bt_spd_solve,
    .format       = bt_format_get,
    .format_by_name = bt_format_by_name,
    .kmeans_assign = bt_compute_kmeans,
};

const struct bt_host *bt_host(void) { return &host; }
