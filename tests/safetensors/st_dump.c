/* st_dump.c - test driver: dlopen the safetensors reader plugin with a minimal host, open a model
 * and print tensors (with a byte checksum) and metadata as lines the python tests compare with
 * an independent numpy/json reading. Usage: st_dump <plugin.so> <model path> [--release] */
#include "bt/bt.h"
#include "bt_types.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- minimal host ------------------------------------------------------------------------- */
static void h_log(int level, const char *fmt, ...) {
    if (level > BT_LOG_WARN) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "log[%d]: ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static bt_status h_set_error(bt_err *err, bt_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err->status = st;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return st;
}

static void *h_alloc(size_t n) {
    void *p = NULL;
    return posix_memalign(&p, 64, n ? n : 1) == 0 ? p : NULL;
}

static void h_parallel_for(int64_t n, int64_t grain, bt_range_fn fn, void *arg) {
    if (n > 0) fn(arg, 0, n, 0);
}

static int         h_n_threads(void) { return 1; }
static const char *h_opt_str(const bt_optset *o, const char *n) { return NULL; }
static int64_t     h_opt_int(const bt_optset *o, const char *n) { return 0; }
static double      h_opt_float(const bt_optset *o, const char *n) { return 0; }

static const struct bt_host test_host = {
    .abi_version = BT_ABI_VERSION,
    .struct_size = sizeof(struct bt_host),
    .host_version = "test",
    .log = h_log,
    .set_error = h_set_error,
    .alloc = h_alloc,
    .free = free,
    .parallel_for = h_parallel_for,
    .n_threads = h_n_threads,
    .opt_str = h_opt_str,
    .opt_int = h_opt_int,
    .opt_float = h_opt_float,
    .row_bytes = bt_fmt_row_bytes,
    .to_f32 = bt_to_f32,
    .format = bt_format_get,
    .format_by_name = bt_format_by_name,
};

/* ---- printing ------------------------------------------------------------------------------- */
/* sum of byte[i] * (i + 1) mod 2^64: position-sensitive, easy to reproduce with numpy */
static uint64_t checksum(const uint8_t *p, uint64_t n) {
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++) s += (uint64_t)p[i] * (i + 1);
    return s;
}

static void print_str(const char *s, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c == '\\' || c >= 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
}

static void print_kv(const struct bt_kv *kv) {
    printf("K %s %u ", kv->key, kv->type);
    switch (kv->type) {
    case BT_KV_U8: case BT_KV_U16: case BT_KV_U32: case BT_KV_U64: case BT_KV_BOOL:
        printf("%llu", (unsigned long long)kv->v.u); break;
    case BT_KV_I8: case BT_KV_I16: case BT_KV_I32: case BT_KV_I64:
        printf("%lld", (long long)kv->v.i); break;
    case BT_KV_F32: case BT_KV_F64: printf("%.9g", kv->v.f); break;
    case BT_KV_STRING: print_str(kv->v.s, kv->n); break;
    case BT_KV_ARRAY: printf("arr %u %llu", kv->arr_type, (unsigned long long)kv->n); break;
    default: printf("?");
    }
    putchar('\n');
}

/* peak resident set of this process image (VmHWM; getrusage's maxrss inherits the parent's) */
static long maxrss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: st_dump <plugin.so> <model> [--release] [--quiet]\n");
        return 2;
    }
    int release = 0, quiet = 0;
    for (int a = 3; a < argc; a++) {
        if (strcmp(argv[a], "--release") == 0) release = 1;
        if (strcmp(argv[a], "--quiet") == 0) quiet = 1;
    }
    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!so) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
    bt_plugin_init_fn init = (bt_plugin_init_fn)dlsym(so, BT_PLUGIN_INIT_SYMBOL);
    const struct bt_plugin *p = NULL;
    if (!init || init(&test_host, &p) != BT_OK || !p || p->kind != BT_KIND_READER) {
        fprintf(stderr, "bad plugin\n");
        return 2;
    }
    const struct bt_reader_i *ri = p->iface;
    printf("P %s %d\n", p->name, ri->probe ? ri->probe(argv[2]) : -1);
    void *ctx = calloc(1, p->ctx_size);
    struct bt_err err = {0, {0}};
    long rss0 = maxrss_kb();
    bt_status st = ri->open(ctx, &test_host, NULL, argv[2], &err);
    if (st != BT_OK) {
        fprintf(stderr, "ERROR %d: %s\n", st, err.msg);
        printf("E %d %s\n", st, err.msg);
        free(ctx);
        dlclose(so);
        return 1;
    }
    uint32_t n = ri->tensor_count(ctx);
    int rc = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct bt_tensor t;
        if (ri->tensor_get(ctx, i, &t, &err) != BT_OK) { rc = 1; break; }
        uint64_t cs = checksum(t.data, t.nbytes);
        if (release && ri->release) {
            ri->release(ctx, i);
            if (i % 7 == 0 && checksum(t.data, t.nbytes) != cs) {
                fprintf(stderr, "data of %s changed after release\n", t.name);
                rc = 1;
            }
            if (i % 7 == 0) ri->release(ctx, i);
        }
        if (quiet) continue;
        printf("T %s %s %u %u ", t.name, t.src_name, t.fmt.type, t.n_dims);
        for (uint32_t d = 0; d < t.n_dims; d++) printf("%s%lld", d ? "," : "", (long long)t.shape[d]);
        if (!t.n_dims) printf("-");
        printf(" %llu %u %llu\n", (unsigned long long)t.nbytes, t.flags, (unsigned long long)cs);
    }
    if (ri->tensor_get(ctx, n, &(struct bt_tensor){0}, &err) == BT_OK) rc = 1; /* out of range */
    uint32_t nk = ri->kv_count(ctx);
    for (uint32_t i = 0; i < nk && !quiet; i++) {
        struct bt_kv kv;
        if (ri->kv_get(ctx, i, &kv) != BT_OK) { rc = 1; break; }
        print_kv(&kv);
    }
    printf("R %ld %ld\n", rss0, maxrss_kb());
    ri->close(ctx);
    free(ctx);
    dlclose(so);
    return rc;
}
