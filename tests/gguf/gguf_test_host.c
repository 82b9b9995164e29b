/* gguf_test_host.c - the minimal struct bt_host of the gguf tests (see gguf_test_host.h). */
#include "gguf_test_host.h"

#include <dlfcn.h>
#include <stdarg.h>

long th_live;
long th_calls;
long th_fail_at = -1;
int  th_verbose;

static void th_log(int level, const char *fmt, ...) {
    if (level > BT_LOG_WARN && !th_verbose) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[plugin:%d] ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static bt_status th_set_error(bt_err *err, bt_status st, const char *fmt, ...) {
    if (!err) return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->status = st;
    return st;
}

static void *th_alloc(size_t n) {
    if (th_calls++ == th_fail_at) return NULL;
    void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    if (p) th_live++;
    return p;
}

static void th_free(void *p) {
    if (!p) return;
    th_live--;
    free(p);
}

static void th_parallel_for(int64_t n, int64_t grain, bt_range_fn fn, void *arg) {
    (void)grain;
    if (n > 0) fn(arg, 0, n, 0);
}
static int th_n_threads(void) { return 1; }
static const char *th_opt_str(const bt_optset *o, const char *name) {
    if (strcmp(name, "compress") == 0) return o && o->compress ? o->compress : "none";
    return "";
}
static int64_t th_opt_int(const bt_optset *o, const char *name) {
    if (strcmp(name, "alignment") == 0) return o ? o->alignment : 32;
    if (strcmp(name, "compress_level") == 0) return o ? o->compress_level : 0;
    return 0;
}
static double th_opt_float(const bt_optset *o, const char *name) { (void)o; (void)name; return 0; }

const struct bt_host th_host = {
    .abi_version = BT_ABI_VERSION,
    .struct_size = sizeof(struct bt_host),
    .host_version = "test",
    .log = th_log,
    .set_error = th_set_error,
    .alloc = th_alloc,
    .free = th_free,
    .parallel_for = th_parallel_for,
    .n_threads = th_n_threads,
    .opt_str = th_opt_str,
    .opt_int = th_opt_int,
    .opt_float = th_opt_float,
    .row_bytes = bt_fmt_row_bytes,
    .to_f32 = bt_to_f32,
    .format = bt_format_get,
    .format_by_name = bt_format_by_name,
};

const struct bt_plugin *th_load(const char *path, uint32_t kind) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "dlopen %s: %s\n", path, dlerror()); return NULL; }
    bt_plugin_init_fn init = (bt_plugin_init_fn)dlsym(h, BT_PLUGIN_INIT_SYMBOL);
    const struct bt_plugin *d = NULL;
    if (!init || init(&th_host, &d) != BT_OK || !d || d->kind != kind ||
        d->abi_version != BT_ABI_VERSION) {
        fprintf(stderr, "%s: bad plugin\n", path);
        return NULL;
    }
    return d;
}
