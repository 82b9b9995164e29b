/* fuzz_util.c - helpers of the fuzz targets (see fuzz_util.h). */
#define _GNU_SOURCE
#include "fuzz_util.h"

#include "bt_types.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long fz_live;

static void fz_log(int level, const char *fmt, ...) { (void)level; (void)fmt; }

static bt_status fz_set_error(bt_err *err, bt_status st, const char *fmt, ...) {
    if (!err) return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->status = st;
    return st;
}

static void *fz_alloc(size_t n) {
    if (n > ((size_t)1 << 32)) return NULL; /* like a host out of memory */
    void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    if (p) fz_live++;
    return p;
}

static void fz_free(void *p) {
    if (!p) return;
    fz_live--;
    free(p);
}

static void fz_parallel_for(int64_t n, int64_t grain, bt_range_fn fn, void *arg) {
    (void)grain;
    if (n > 0) fn(arg, 0, n, 0);
}
static int fz_n_threads(void) { return 1; }
static const char *fz_opt_str(const bt_optset *o, const char *name) { return ""; }
static int64_t fz_opt_int(const bt_optset *o, const char *name) { return 0; }
static double fz_opt_float(const bt_optset *o, const char *name) { return 0; }

const struct bt_host fz_host = {
    .abi_version = BT_ABI_VERSION,
    .struct_size = sizeof(struct bt_host),
    .host_version = "fuzz",
    .log = fz_log,
    .set_error = fz_set_error,
    .alloc = fz_alloc,
    .free = fz_free,
    .parallel_for = fz_parallel_for,
    .n_threads = fz_n_threads,
    .opt_str = fz_opt_str,
    .opt_int = fz_opt_int,
    .opt_float = fz_opt_float,
    .row_bytes = bt_fmt_row_bytes,
    .to_f32 = bt_to_f32,
    .format = bt_format_get,
    .format_by_name = bt_format_by_name,
};

/* ---- scratch folder ------------------------------------------------------------------------ */
static char fz_tmp[256];

static void fz_cleanup(void) {
    if (!fz_tmp[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fz_tmp);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fz_tmp);
}

const char *fz_dir(void) {
    if (!fz_tmp[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fz_tmp, sizeof(fz_tmp), "%s/btfuzz.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fz_tmp)) { perror("fuzz: mkdtemp"); abort(); }
        atexit(fz_cleanup);
    }
    return fz_tmp;
}

const char *fz_write(const char *name, const uint8_t *data, size_t size) {
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", fz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

void fz_unlink(const char *name) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", fz_dir(), name);
    unlink(path);
}

void fz_note(const char *what, bt_status st, const char *msg) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("BT_FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "  %s: %s\n", what, st == BT_OK ? "ok" : msg);
}

size_t fz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, size_t max) {
    size_t n = 0, sl = strlen(FZ_SEP);
    const uint8_t *p = data, *end = data + size;
    while (n + 1 < max) {
        const uint8_t *s = memmem(p, (size_t)(end - p), FZ_SEP, sl);
        if (!s) break;
        part[n] = p;
        len[n++] = (size_t)(s - p);
        p = s + sl;
    }
    part[n] = p;
    len[n++] = (size_t)(end - p);
    return n;
}

/* ---- reader driver ------------------------------------------------------------------------- */
static void fz_read_tensor(const struct bt_reader_i *r, void *ctx, uint32_t i) {
    struct bt_tensor t;
    bt_err err = {0};
    if (r->tensor_get(ctx, i, &t, &err) != BT_OK) {
        fz_note("tensor_get", err.status, err.msg);
        if (!err.msg[0]) abort(); /* a failure says why */
        return;
    }
    if (!t.name || t.n_dims > BT_MAX_DIMS) abort();
    int64_t numel = 1;
    for (uint32_t d = 0; d < t.n_dims; d++) {
        if (t.shape[d] <= 0 || numel > INT64_MAX / t.shape[d]) abort();
        numel *= t.shape[d];
    }
    int64_t cols = t.n_dims ? t.shape[t.n_dims - 1] : 1, rows = numel / cols;
    /* a row of the stored size: rows * row_bytes = nbytes (decoders read exactly that) */
    size_t rb = bt_fmt_row_bytes(&t.fmt, cols);
    if (rb && (uint64_t)rows * rb != t.nbytes) abort();
    if (!r->read_f32 || cols > (1 << 24)) return;
    int64_t chunk = (1 << 20) / cols > 0 ? (1 << 20) / cols : 1;
    float *buf = malloc((size_t)(chunk * cols) * sizeof(float));
    if (!buf) abort();
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        if (r->read_f32(ctx, i, r0, nr, buf, &err) != BT_OK) {
            fz_note("read_f32", err.status, err.msg);
            if (!err.msg[0]) abort();
            break;
        }
    }
    free(buf);
}

void fz_drive_reader(const struct bt_plugin *d, const char *path) {
    const struct bt_reader_i *r = d->iface;
    void *ctx = calloc(1, d->ctx_size);
    bt_err err = {0};
    long live0 = fz_live;
    if (!ctx) abort();
    bt_status st = r->open(ctx, &fz_host, NULL, path, &err);
    fz_note("open", st, err.msg);
    if (st != BT_OK) {
        if (!err.msg[0] || fz_live != live0) abort(); /* says why, leaves nothing allocated */
        free(ctx);
        return;
    }
    uint32_t nk = r->kv_count(ctx), nt = r->tensor_count(ctx);
    for (uint32_t k = 0; k < nk; k++) {
        struct bt_kv kv;
        if (r->kv_get(ctx, k, &kv) != BT_OK || !kv.key) abort();
    }
    for (uint32_t i = 0; i < nt; i++) {
        fz_read_tensor(r, ctx, i);
        if (r->release) r->release(ctx, i);
    }
    r->close(ctx);
    if (fz_live != live0) abort(); /* close frees everything */
    free(ctx);
}
