/* test_formats_model.c - a format no backend has kernels for is an error at model load that
 * names the op, the format and the tensor (no fallback): bt-tiny is copied to a GGUF with
 * blk.0.ffn_down.weight in the test format fixture_lut4 (4-bit indices + codebook part) through
 * the real reader and writer plugins; the file reads back (rows decode through the codebook);
 * loading it on each CPU backend fails with the op / format / tensor in the message.
 * usage: test_formats_model <fixture.so> <bt-tiny dir> <workdir> */
#include "bt/bt.h"
#include "bt_model.h"
#include "bt_types.h"
#include "../bt_test.h"

#include <string.h>

#define TARGET "blk.0.ffn_down.weight"

/* rows x cols f32 -> 4-bit indices into 16 levels spread over [min, max], codebook in cb */
static void lut4_pack(const float *w, int64_t n, uint8_t *q, float *cb) {
    float lo = w[0], hi = w[0];
    for (int64_t i = 1; i < n; i++) { lo = w[i] < lo ? w[i] : lo; hi = w[i] > hi ? w[i] : hi; }
    for (int k = 0; k < 16; k++) cb[k] = lo + (hi - lo) * (float)k / 15.0f;
    for (int64_t i = 0; i < n; i++) {
        int k = hi > lo ? (int)((w[i] - lo) / (hi - lo) * 15.0f + 0.5f) : 0;
        k = k < 0 ? 0 : (k > 15 ? 15 : k);
        if (i & 1) q[i / 2] |= (uint8_t)(k << 4);
        else q[i / 2] = (uint8_t)k;
    }
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s FIXTURE.so MODEL_DIR WORKDIR\n", argv[0]); return 2; }
    bt_registry *reg = NULL;
    bt_err err = {0};
    CHECK_EQ(bt_registry_new(&reg), BT_OK);
    bt_registry_scan_default(reg, NULL, NULL);
    CHECK_EQ(bt_registry_load_file(reg, argv[1], &err), BT_OK);
    const struct bt_format *lf = bt_format_by_name("fixture_lut4");
    CHECK(lf != NULL);
    if (!lf) return 1;
    char out[4096];
    snprintf(out, sizeof out, "%s/tiny-lut4.gguf", argv[3]);
    /* copy bt-tiny, one weight in lut4 */
    struct bt_reader *r = NULL;
    struct bt_writer *w = NULL;
    CHECK_EQ(bt_reader_open(reg, "auto", argv[2], NULL, &r, &err), BT_OK);
    if (!r) { fprintf(stderr, "%s\n", err.msg); return 1; }
    uint32_t nkv = r->i->kv_count(r->ctx), nt = r->i->tensor_count(r->ctx);
    struct bt_kv *kv = calloc(nkv + 1, sizeof *kv);
    for (uint32_t i = 0; i < nkv; i++) CHECK_EQ(r->i->kv_get(r->ctx, i, &kv[i]), BT_OK);
    CHECK_EQ(bt_writer_open(reg, "gguf", out, NULL, kv, nkv, nt, &w, &err), BT_OK);
    float cb[16], *f32 = NULL;
    uint8_t *q = NULL;
    int converted = 0;
    for (uint32_t i = 0; w && i < nt; i++) {
        struct bt_tensor t;
        CHECK_EQ(r->i->tensor_get(r->ctx, i, &t, &err), BT_OK);
        if (!strcmp(t.name, TARGET)) {
            int64_t n = bt_tensor_numel(&t);
            f32 = malloc((size_t)n * sizeof(float));
            q = calloc((size_t)n / 2, 1);
            CHECK_EQ(bt_reader_read_f32(r, i, 0, bt_tensor_rows(&t), f32, &err), BT_OK);
            lut4_pack(f32, n, q, cb);
            t.fmt = bt_fmt(lf->type);
            t.data = q;
            t.nbytes = (uint64_t)n / 2;
            t.n_parts = 1;
            t.parts[0] = cb;
            t.part_bytes[0] = sizeof cb;
            converted = 1;
        }
        bt_status st = w->i->add(w->ctx, &t, &err);
        if (st) fprintf(stderr, "add %s: %s\n", t.name, err.msg);
        CHECK_EQ(st, BT_OK);
    }
    CHECK(converted);
    if (w) CHECK_EQ(w->i->finish(w->ctx, &err), BT_OK);
    bt_writer_close(w);
    bt_reader_close(r);
    free(kv);
    /* the file reads back: the tensor is lut4 with its codebook, rows decode through it */
    r = NULL;
    CHECK_EQ(bt_reader_open(reg, "gguf", out, NULL, &r, &err), BT_OK);
    int64_t ti = r ? bt_reader_find(r, TARGET) : -1;
    CHECK(ti >= 0);
    if (ti >= 0 && f32) {
        struct bt_tensor t;
        CHECK_EQ(r->i->tensor_get(r->ctx, (uint32_t)ti, &t, &err), BT_OK);
        CHECK(t.fmt.type == lf->type && t.n_parts == 1 && t.part_bytes[0] == sizeof cb);
        float row[2048];
        int64_t cols = bt_tensor_cols(&t);
        CHECK(cols <= 2048);
        CHECK_EQ(bt_reader_read_f32(r, (uint32_t)ti, 1, 1, row, &err), BT_OK);
        double md = 0, step = (cb[15] - cb[0]) / 15.0;
        for (int64_t c = 0; c < cols && c < 2048; c++) md = fmax(md, fabs(row[c] - f32[cols + c]));
        printf("lut4 round trip: max |w - decode| = %.3g (half a step %.3g)\n", md, step / 2);
        CHECK(md <= step / 2 * 1.0001);
    }
    /* loading it for inference: every CPU backend refuses by name, before any work */
    static const char *names[] = {"cpu", "cpu-avx2"};
    for (int k = 0; r && k < 2; k++) {
        struct bt_backend *b = NULL;
        bt_err_clear(&err);
        if (bt_backend_open(reg, names[k], NULL, &b, &err)) { printf("%s: not here\n", names[k]); continue; }
        bt_model *m = NULL;
        struct bt_model_opts mo = {.n_ctx = 64};
        bt_err_clear(&err);
        bt_status st = bt_model_load(r, b, &mo, &m, &err);
        printf("%s: %s\n", names[k], err.msg);
        CHECK_EQ(st, BT_E_UNSUPPORTED);
        CHECK(m == NULL);
        CHECK(strstr(err.msg, "matmul") && strstr(err.msg, "fixture_lut4") && strstr(err.msg, TARGET) &&
              strstr(err.msg, names[k]));
        bt_backend_close(b);
    }
    bt_reader_close(r);
    free(f32);
    free(q);
    bt_registry_free(reg);
    TEST_DONE();
}
