/* test_gguf_core.c - the gguf plugins through libbt_core: loader checks, option validation,
 * writer via bt_writer_open, reader via bt_reader_open("auto") + bt_reader_read_f32.
 * usage: test_gguf_core <writer.so> <reader.so> <dir> */
#include "bt/bt.h"
#include "bt_types.h"
#include "gguf_sample.h"
#include "../bt_test.h"

#include <string.h>
#include <unistd.h>

static bt_status write_with(bt_registry *reg, const struct sample *s, const char *path,
                            const char *align, const char *compress, bt_err *err) {
    const struct bt_plugin_entry *e = bt_registry_find(reg, BT_KIND_WRITER, "gguf");
    bt_optset *o = bt_optset_new(e->desc->options);
    bt_status st = bt_optset_set(o, "alignment", align, NULL, err);
    if (!st && compress) st = bt_optset_set(o, "compress", compress, NULL, err);
    if (st) { bt_optset_free(o); return st; }
    struct bt_writer *w = NULL;
    st = bt_writer_open(reg, "gguf", path, o, s->kv, s->n_kv, s->n_t, &w, err);
    for (uint32_t i = 0; !st && i < s->n_t; i++) st = w->i->add(w->ctx, &s->t[i], err);
    if (!st) st = w->i->finish(w->ctx, err);
    bt_writer_close(w);
    return st;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    bt_registry *reg = NULL;
    bt_err err;
    bt_err_clear(&err);
    CHECK_EQ(bt_registry_new(&reg), BT_OK);
    CHECK_EQ(bt_registry_load_file(reg, argv[1], &err), BT_OK);
    CHECK_EQ(bt_registry_load_file(reg, argv[2], &err), BT_OK);
    if (err.status) { fprintf(stderr, "%s\n", err.msg); return 1; }
    struct sample s;
    CHECK_EQ(sample_build(&s), 0);
    char path[1024];
    snprintf(path, sizeof(path), "%s/core.gguf", argv[3]);
    /* option validation: range by the core, power of two by the plugin */
    CHECK(write_with(reg, &s, path, "5000", NULL, &err) != BT_OK);
    bt_err_clear(&err);
    CHECK_EQ(write_with(reg, &s, path, "48", NULL, &err), BT_E_INVAL);
    CHECK(strstr(err.msg, "alignment") != NULL);
    bt_err_clear(&err);
    CHECK(write_with(reg, &s, path, "64", "lz4", &err) != BT_OK); /* ENUM checked by the core */
    bt_err_clear(&err);
    for (int pass = 0; pass < 2; pass++) { /* plain, then compress = zstd */
        CHECK_EQ(write_with(reg, &s, path, "64", pass ? "zstd" : NULL, &err), BT_OK);
        if (err.status) fprintf(stderr, "%s\n", err.msg);

        struct bt_reader *r = NULL;
        CHECK_EQ(bt_reader_open(reg, "auto", path, NULL, &r, &err), BT_OK);
        if (!r) { fprintf(stderr, "%s\n", err.msg); return 1; }
        CHECK(strcmp(r->entry->desc->name, "gguf") == 0);
        struct bt_kv tmp;
        const struct bt_kv *kv = bt_reader_kv(r, "general.alignment", &tmp);
        CHECK(kv && kv->type == BT_KV_U32 && kv->v.u == 64);
        kv = bt_reader_kv(r, "test.arr_str", &tmp);
        CHECK(kv && kv->n == 4 && strcmp(((const char *const *)kv->v.arr)[2], "hello world") == 0);
        int compared = 0;
        for (uint32_t i = 0; i < s.n_t; i++) {
            const struct bt_tensor *t = &s.t[i];
            if (!s.f32[i] || (t->flags & BT_TENSOR_ROPE_HALVES)) continue;
            int64_t idx = bt_reader_find(r, t->name);
            CHECK_EQ(idx, i);
            int64_t rows = t->n_dims > 1 ? t->shape[0] * (t->n_dims > 2 ? t->shape[1] : 1) : 1;
            int64_t cols = t->shape[t->n_dims - 1];
            float *x = malloc(sizeof(float) * rows * cols);
            CHECK_EQ(bt_reader_read_f32(r, (uint32_t)idx, 0, rows, x, &err), BT_OK);
            int same = 1;
            for (int64_t k = 0; k < rows * cols; k++)
                same &= x[k] == s.f32[i][k] || (x[k] != x[k] && s.f32[i][k] != s.f32[i][k]);
            CHECK(same);
            compared += same;
            free(x);
        }
        CHECK(compared >= 10);
        CHECK_EQ(bt_reader_kv(r, "bt.compression", &tmp) != NULL, pass);
        bt_reader_close(r);
        unlink(path);
    }
    sample_free(&s);
    bt_registry_free(reg);
    TEST_DONE();
}
