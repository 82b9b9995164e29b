/* test_formats_gguf.c - formats as data through the real gguf plugins: the test format plugin
 * fixture_lut4 (4-bit indices + a "codebook" part) is loaded by the core's registry and found by
 * the host lookups; a GGUF with a lut4, an MTQ and an F16 tensor is written, read back (data,
 * parts, format, shape, decode) and parsed by gguf-py; the same with compress = zstd; then the
 * errors: writer (missing / wrong-sized part, part name too long) and reader (resized,
 * truncated and missing part tensor, bad bt.fmt_args, a format whose plugin is not loaded).
 * usage: test_formats_gguf <fixture.so> <writer.so> <reader.so> <workdir> [<python> <check.py>] */
#define _GNU_SOURCE /* memmem */
#include "bt/bt.h"
#include "bt_types.h"
#include "../bt_test.h"

#include <string.h>
#include <unistd.h>

#define LROWS 4  /* lut.weight: 4 x 32 */
#define LCOLS 32
#define MROWS 2  /* mtq.weight: 2 x 128, 2 planes, block 64, layout 0 */
#define MCOLS 128

/* The three tensors written (order: f16, mtq, lut; lut's codebook is the last blob). */
struct smp {
    struct bt_tensor t[3];
    uint16_t         f16[3 * 8];
    uint8_t          mtq[MROWS * 2 * 36];
    uint8_t          lut[LROWS * LCOLS / 2];
    float            cb[16];
    float            want[LROWS * LCOLS]; /* lut.weight decoded */
    struct bt_kv     kv[2];
};

static const char *work;

static void build(struct smp *s, int flat) {
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < 24; i++) s->f16[i] = bt_f32_to_fp16((float)i * 0.5f - 3.0f);
    struct bt_tfmt mf = {BT_TYPE_MTQ, 2, 64, 0};
    for (int b = 0; b < MROWS * MCOLS / 64; b++) {
        int8_t codes[2 * 64];
        float a[2] = {0.5f + (float)b, 0.25f};
        for (int i = 0; i < 128; i++) codes[i] = (int8_t)((i * 7 + b) % 3 - 1);
        bt_mtq_pack_block(&mf, codes, a, s->mtq + b * 36);
    }
    for (int k = 0; k < 16; k++) s->cb[k] = flat ? 0.5f : ((float)k - 7.5f) * 0.25f;
    for (int i = 0; i < LROWS * LCOLS / 2; i++) s->lut[i] = flat ? 0x21 : (uint8_t)(i * 37 + 11);
    for (int i = 0; i < LROWS * LCOLS / 2; i++) {
        s->want[2 * i] = s->cb[s->lut[i] & 15];
        s->want[2 * i + 1] = s->cb[s->lut[i] >> 4];
    }
    const struct bt_format *lf = bt_format_by_name("fixture_lut4");
    struct bt_tensor *t = s->t;
    t[0] = (struct bt_tensor){.name = "f16.weight", .fmt = bt_fmt(BT_TYPE_F16), .n_dims = 2,
                              .shape = {3, 8}, .data = s->f16, .nbytes = sizeof(s->f16)};
    t[1] = (struct bt_tensor){.name = "mtq.weight", .fmt = mf, .n_dims = 2,
                              .shape = {MROWS, MCOLS}, .data = s->mtq, .nbytes = sizeof(s->mtq)};
    t[2] = (struct bt_tensor){.name = "lut.weight", .fmt = bt_fmt(lf ? lf->type : 0), .n_dims = 2,
                              .shape = {LROWS, LCOLS}, .data = s->lut, .nbytes = sizeof(s->lut),
                              .n_parts = 1, .parts = {s->cb}, .part_bytes = {sizeof(s->cb)}};
    for (int i = 0; i < 3; i++) t[i].src_name = t[i].name;
    s->kv[0] = (struct bt_kv){.key = "general.architecture", .type = BT_KV_STRING, .n = 5, .v.s = "llama"};
    s->kv[1] = (struct bt_kv){.key = "general.name", .type = BT_KV_STRING, .n = 12, .v.s = "formats test"};
}

/* write n tensors of ts (compress: NULL or "zstd"); returns the status, err set */
static bt_status write_file(bt_registry *reg, const struct smp *s, const struct bt_tensor *ts,
                            uint32_t n, const char *path, const char *compress, bt_err *err) {
    const struct bt_plugin_entry *e = bt_registry_find(reg, BT_KIND_WRITER, "gguf");
    bt_optset *o = e ? bt_optset_new(e->desc->options) : NULL;
    bt_status st = o ? BT_OK : BT_E_NOMEM;
    if (!st && compress) st = bt_optset_set(o, "compress", compress, NULL, err);
    if (st) { bt_optset_free(o); return st; }
    struct bt_writer *w = NULL;
    st = bt_writer_open(reg, "gguf", path, o, s->kv, 2, n, &w, err);
    if (!st) {
        struct bt_tfmt bad = ts[n - 1].fmt;
        bad.planes = 1;
        CHECK_EQ(bt_writer_supports(w, &ts[n - 1].fmt), 1);
        CHECK_EQ(bt_writer_supports(w, &bad), 0);
    }
    for (uint32_t i = 0; !st && i < n; i++) st = w->i->add(w->ctx, &ts[i], err);
    if (!st) st = w->i->finish(w->ctx, err);
    bt_writer_close(w);
    return st;
}

static int same_f(const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* read path back and compare with s */
static void check_read(bt_registry *reg, const struct smp *s, const char *path, int zstd) {
    struct bt_reader *r = NULL;
    bt_err err;
    bt_err_clear(&err);
    CHECK_EQ(bt_reader_open(reg, "gguf", path, NULL, &r, &err), BT_OK);
    if (!r) { fprintf(stderr, "  open: %s\n", err.msg); return; }
    CHECK_EQ(r->i->tensor_count(r->ctx), 3); /* the codebook tensor is a part, not listed */
    CHECK_EQ(bt_reader_find(r, "lut.weight.codebook"), -1);
    for (uint32_t i = 0; i < 3; i++) {
        const struct bt_tensor *e = &s->t[i];
        struct bt_tensor t;
        int64_t j = bt_reader_find(r, e->name);
        CHECK(j >= 0 && r->i->tensor_get(r->ctx, (uint32_t)j, &t, &err) == BT_OK);
        if (j < 0 || err.status) continue;
        CHECK(memcmp(&t.fmt, &e->fmt, sizeof(t.fmt)) == 0);
        CHECK_EQ(t.n_dims, e->n_dims);
        CHECK(memcmp(t.shape, e->shape, sizeof(t.shape)) == 0);
        CHECK(t.nbytes == e->nbytes && memcmp(t.data, e->data, e->nbytes) == 0);
        CHECK_EQ(t.n_parts, e->n_parts);
        for (uint32_t k = 0; k < t.n_parts && k < e->n_parts; k++)
            CHECK(t.part_bytes[k] == e->part_bytes[k] &&
                  memcmp(t.parts[k], e->parts[k], e->part_bytes[k]) == 0);
        int64_t rows = e->shape[0], cols = e->shape[1];
        float *x = calloc((size_t)(rows * cols), sizeof(float)), *y = calloc((size_t)(rows * cols), sizeof(float));
        CHECK_EQ(bt_to_f32_parts(&t.fmt, t.n_parts ? t.parts : NULL, t.data, x, rows * cols), BT_OK);
        CHECK_EQ(bt_to_f32_parts(&e->fmt, e->n_parts ? e->parts : NULL, e->data, y, rows * cols), BT_OK);
        CHECK(same_f(x, y, rows * cols));
        if (i == 2) CHECK(same_f(x, s->want, rows * cols));
        /* the reader's read_f32 decodes with the parts too (rows 1..2) */
        CHECK_EQ(bt_reader_read_f32(r, (uint32_t)j, 1, 1, y, &err), BT_OK);
        CHECK(same_f(y, x + cols, cols));
        free(x);
        free(y);
    }
    struct bt_kv tmp;
    const struct bt_kv *kv = bt_reader_kv(r, "bt.fmt.lut.weight", &tmp);
    CHECK(kv && kv->type == BT_KV_STRING && strcmp(kv->v.s, "fixture_lut4") == 0);
    kv = bt_reader_kv(r, "bt.fmt_args.lut.weight", &tmp);
    static const uint32_t args[4] = {0, 0, 0, LCOLS}, margs[4] = {2, 64, 0, MCOLS};
    CHECK(kv && kv->type == BT_KV_ARRAY && kv->arr_type == BT_KV_U32 && kv->n == 4 &&
          memcmp(kv->v.arr, args, sizeof(args)) == 0);
    kv = bt_reader_kv(r, "bt.mtq.mtq.weight", &tmp); /* MTQ keeps its own key */
    CHECK(kv && kv->n == 4 && memcmp(kv->v.arr, margs, sizeof(margs)) == 0);
    CHECK(bt_reader_kv(r, "bt.fmt.mtq.weight", &tmp) == NULL);
    CHECK_EQ(bt_reader_kv(r, "bt.zstd.lut.weight.codebook", &tmp) != NULL, zstd);
    bt_reader_release(r, 2);
    bt_reader_close(r);
}

/* ---- files with a defect -------------------------------------------------------------------- */
static void spit(const char *path, const char *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(p, 1, n, f) == n);
    if (f) fclose(f);
}

/* opening path fails with want, the message naming path and each of the texts */
static void expect_open_error(bt_registry *reg, const char *path, bt_status want, const char *a,
                              const char *b) {
    struct bt_reader *r = NULL;
    bt_err err;
    bt_err_clear(&err);
    bt_status st = bt_reader_open(reg, "gguf", path, NULL, &r, &err);
    CHECK_EQ(st, want);
    int ok = strstr(err.msg, path) && strstr(err.msg, a) && (!b || strstr(err.msg, b));
    CHECK(ok);
    if (st != want || !ok) fprintf(stderr, "  %s: got %d '%s'\n", path, st, err.msg);
    if (r) bt_reader_close(r);
}

static void check_corrupt(bt_registry *reg, const char *good) {
    size_t n = 0;
    char *p = bt_test_slurp(good, &n), bad[1024];
    CHECK(p != NULL);
    if (!p) return;
    snprintf(bad, sizeof(bad), "%s/bad.gguf", work);
    const char *cn = "lut.weight.codebook";
    char *at = memmem(p, n, cn, strlen(cn)); /* tensor info: name, u32 n_dims, u64 ne0, ... */
    CHECK(at != NULL && at[strlen(cn)] == 1);
    if (!at) { free(p); return; }
    char *ne0 = at + strlen(cn) + 4;
    uint64_t v = 60;
    memcpy(ne0, &v, 8); /* the part tensor holds 60 bytes instead of 64 */
    spit(bad, p, n);
    expect_open_error(reg, bad, BT_E_FORMAT, "tensor 'lut.weight': part 'codebook'", "needs 64");
    v = 64;
    memcpy(ne0, &v, 8);
    spit(bad, p, n - 10); /* the file ends inside the part tensor */
    expect_open_error(reg, bad, BT_E_FORMAT, "lut.weight.codebook", "past the end");
    at[strlen(cn) - 1] = 'X'; /* lut.weight.codebooX: the part is missing */
    spit(bad, p, n);
    expect_open_error(reg, bad, BT_E_FORMAT, "tensor 'lut.weight': part 'codebook'", "is missing");
    at[strlen(cn) - 1] = 'k';
    const char *an = "bt.fmt_args.lut.weight"; /* key, u32 type, u32 arr_type, u64 n, u32[4] */
    char *ak = memmem(p, n, an, strlen(an));
    CHECK(ak != NULL);
    if (ak) {
        uint32_t c = 30;
        memcpy(ak + strlen(an) + 16 + 12, &c, 4);
        spit(bad, p, n);
        expect_open_error(reg, bad, BT_E_FORMAT, "tensor 'lut.weight'", "does not match");
    }
    unlink(bad);
    free(p);
}

/* writer refusals: nothing written, the message names file and tensor */
static void check_writer_errors(bt_registry *reg, const struct smp *s) {
    char out[1024];
    snprintf(out, sizeof(out), "%s/werr.gguf", work);
    struct bt_tensor t[3];
    const char *texts[3] = {"carries 0", "has 60 bytes", "shorter than"};
    for (int k = 0; k < 3; k++) {
        memcpy(t, s->t, sizeof(t));
        if (k == 0) t[2].n_parts = 0;
        if (k == 1) t[2].part_bytes[0] = 60;
        if (k == 2) t[2].name = "lut.weight_with_a_long_name_that_leaves_no_room_for_parts_x";
        bt_err err;
        bt_err_clear(&err);
        CHECK(write_file(reg, s, t, 3, out, NULL, &err) != BT_OK);
        CHECK(strstr(err.msg, out) && strstr(err.msg, "lut.weight") && strstr(err.msg, texts[k]));
        if (!strstr(err.msg, texts[k])) fprintf(stderr, "  writer case %d: '%s'\n", k, err.msg);
        CHECK(access(out, F_OK) != 0);
    }
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 7) return 2;
    work = argv[4];
    bt_registry *reg = NULL;
    bt_err err;
    bt_err_clear(&err);
    CHECK_EQ(bt_registry_new(&reg), BT_OK);
    for (int i = 1; i <= 3; i++) CHECK_EQ(bt_registry_load_file(reg, argv[i], &err), BT_OK);
    if (err.status) { fprintf(stderr, "%s\n", err.msg); return 1; }
    /* the format is in the core's table: found by name and id, through the host too */
    CHECK(bt_registry_find(reg, BT_KIND_FORMAT, "fixture-lut4") != NULL);
    const struct bt_format *f = bt_format_by_name("fixture_lut4");
    CHECK(f && f->type >= BT_TYPE_USER && f->type < BT_TYPE_MAX);
    if (!f) return 1;
    CHECK(bt_host()->format_by_name("fixture_lut4") == f && bt_host()->format(f->type) == f);
    struct bt_tfmt lf = bt_fmt(f->type);
    CHECK_EQ(bt_fmt_n_parts(&lf), 1);
    CHECK_EQ(bt_fmt_row_bytes(&lf, LCOLS), LCOLS / 2);

    struct smp s;
    char path[1024];
    snprintf(path, sizeof(path), "%s/lut4.gguf", work);
    for (int zstd = 1; zstd >= 0; zstd--) { /* zstd (flat, compressible data) first, then plain */
        build(&s, zstd);
        CHECK_EQ(write_file(reg, &s, s.t, 3, path, zstd ? "zstd" : NULL, &err), BT_OK);
        if (err.status) fprintf(stderr, "  write: %s\n", err.msg);
        check_read(reg, &s, path, zstd);
    }
    if (argc == 7 && argv[5][0]) { /* gguf-py parses the plain file */
        char cmd[4096];
        snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s'", argv[5], argv[6], path);
        CHECK_EQ(system(cmd), 0);
    } else {
        fprintf(stderr, "note: no python: gguf-py check skipped\n");
    }
    check_corrupt(reg, path);
    check_writer_errors(reg, &s);
    bt_registry_free(reg);

    /* without the plugin the format is unknown: the reader says so */
    CHECK(bt_format_by_name("fixture_lut4") == NULL);
    CHECK_EQ(bt_registry_new(&reg), BT_OK);
    CHECK_EQ(bt_registry_load_file(reg, argv[3], &err), BT_OK);
    expect_open_error(reg, path, BT_E_UNSUPPORTED, "tensor 'lut.weight': format 'fixture_lut4' is "
                      "not known (is its plugin loaded?)", NULL);
    bt_registry_free(reg);
    unlink(path);
    TEST_DONE();
}
