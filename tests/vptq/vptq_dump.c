/* vptq_dump.c - test driver: open a model through libbt_core (plugins from a folder, reader
 * "auto" by probe), print every tensor (name, format, shape, source name, flags, parts) and
 * write each as f32 rows (bt_reader_read_f32: vq tensors through the format's reference decoder)
 * to OUT/<name>.f32, for tests/vptq/test_vptq.py to compare with numpy. Errors: the reader's
 * message on stderr, exit 1. Usage: vptq_dump <plugin dir> <model> [OUT] */
#include "bt/bt.h"
#include "bt_types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dump(struct bt_reader *r, const char *out) {
    bt_err err;
    bt_err_clear(&err);
    uint32_t n = r->i->tensor_count(r->ctx);
    printf("reader %s tensors %u\n", r->entry->desc->name, n);
    for (uint32_t i = 0; i < n; i++) {
        struct bt_tensor t;
        if (r->i->tensor_get(r->ctx, i, &t, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
        char fs[64];
        bt_fmt_str(&t.fmt, fs, sizeof(fs));
        int64_t rows = bt_tensor_rows(&t), cols = bt_tensor_cols(&t);
        printf("%s %s %lldx%lld %s flags=%u parts=%u\n", t.name, fs, (long long)rows,
               (long long)cols, t.src_name ? t.src_name : "-", t.flags, t.n_parts);
        if (!out) continue;
        float *buf = malloc((size_t)(rows * cols) * sizeof(float) + 1);
        if (!buf) return 1;
        if (bt_reader_read_f32(r, i, 0, rows, buf, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            free(buf);
            return 1;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s.f32", out, t.name);
        FILE *f = fopen(path, "wb");
        int ok = f && fwrite(buf, sizeof(float), (size_t)(rows * cols), f) == (size_t)(rows * cols);
        if (f) fclose(f);
        free(buf);
        if (!ok) { fprintf(stderr, "%s: cannot write\n", path); return 1; }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: vptq_dump <plugin dir> <model> [OUT]\n");
        return 2;
    }
    bt_log_set_level(BT_LOG_INFO);
    bt_registry *reg = NULL;
    if (bt_registry_new(&reg)) return 1;
    bt_err err;
    bt_err_clear(&err);
    /* the readers only: no backend (the OpenCL ICD loader keeps memory valgrind calls lost) */
    static const char *const need[] = {"reader-vptq", "reader-safetensors", "reader-gguf"};
    for (int i = 0; i < 3; i++) {
        char path[2048];
        snprintf(path, sizeof(path), "%s/libbt-%s.so", argv[1], need[i]);
        if (bt_registry_load_file(reg, path, &err)) {
            fprintf(stderr, "error: %s\n", err.msg);
            bt_registry_free(reg);
            return 1;
        }
    }
    struct bt_reader *r = NULL;
    if (bt_reader_open(reg, "auto", argv[2], NULL, &r, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        bt_registry_free(reg);
        return 1;
    }
    int rc = dump(r, argc > 3 ? argv[3] : NULL);
    bt_reader_close(r);
    bt_registry_free(reg);
    return rc;
}
