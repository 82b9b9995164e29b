/* test_gguf.c - test driver for the gguf plugins (loaded with dlopen, no core needed):
 *   unit                       TQ1_0/TQ2_0 golden vectors (docs formats.md 2.3/2.4)
 *   gen  <writer.so> <dir>     write sample.gguf / sample_a64.gguf / sample_zstd.gguf + expected
 *                              data for python
 *   dump <reader.so> <file> <dir>  list a GGUF through the reader as JSON (+ .bin/.f32 per tensor)
 *   self <writer.so> <reader.so> <dir>  round trip, corruption, failure and fault tests
 *   zstd <writer.so> <reader.so> <dir>  the same for compress = zstd (test_gguf_zstd.c) */
#include "gguf_tests.h"
#include "../bt_test.h"

#include <dirent.h>
#include <math.h>

/* ---- shared helpers --------------------------------------------------------------------------- */
bt_status write_sample(const struct bt_plugin *w, const struct sample *s, const char *path,
                       int64_t a, struct bt_err *err) {
    struct bt_optset o = {a, NULL, 0};
    return write_opts(w, s, path, &o, err);
}

bt_status write_opts(const struct bt_plugin *w, const struct sample *s, const char *path,
                     const struct bt_optset *o, struct bt_err *err) {
    const struct bt_writer_i *i = w->iface;
    void *ctx = calloc(1, w->ctx_size);
    if (!ctx) return BT_E_NOMEM;
    bt_status st = i->open(ctx, &th_host, o, path, s->kv, s->n_kv, s->n_t, err);
    if (st) { free(ctx); return st; }
    for (uint32_t k = 0; k < s->n_t && !st; k++) st = i->add(ctx, &s->t[k], err);
    if (!st) st = i->finish(ctx, err);
    i->close(ctx);
    free(ctx);
    return st;
}

bt_status rd_open(const struct bt_plugin *d, const char *path, struct rd *r, struct bt_err *err) {
    r->d = d;
    r->i = d->iface;
    r->ctx = calloc(1, d->ctx_size);
    if (!r->ctx) return BT_E_NOMEM;
    bt_status st = r->i->open(r->ctx, &th_host, NULL, path, err);
    if (st) { free(r->ctx); r->ctx = NULL; }
    return st;
}

void rd_close(struct rd *r) {
    if (r->ctx) { r->i->close(r->ctx); free(r->ctx); }
    r->ctx = NULL;
}

int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* ---- unit: golden vectors ------------------------------------------------------------------- */
static void hex(const char *h, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static int run_unit(void) {
    float tern[256], ramp[256], back[256];
    for (int i = 0; i < 256; i++) {
        tern[i] = (float)((7 * i) % 3 - 1) * 0.25f;
        ramp[i] = ((float)i - 127.5f) / 128.0f;
    }
    uint8_t blk[66], want[66];
    /* TQ2_0 ternary: "186186..18" x64, d = 00 34 */
    char h2[133] = {0};
    for (int i = 0; i < 64; i++) memcpy(h2 + 2 * i, &"186186"[2 * (i % 3)], 2);
    memcpy(h2 + 128, "0034", 4);
    hex(h2, want, 66);
    bt_tq2_0_quantize_ref(tern, blk);
    CHECK(memcmp(blk, want, 66) == 0);
    struct bt_tfmt f2 = bt_fmt(BT_TYPE_TQ2_0), f1 = bt_fmt(BT_TYPE_TQ1_0);
    CHECK_EQ(bt_to_f32(&f2, blk, back, 256), BT_OK);
    CHECK(memcmp(back, tern, sizeof(back)) == 0);
    /* TQ2_0 ramp: 0x50 x32, 0xa5 x32, d = f8 3b */
    bt_tq2_0_quantize_ref(ramp, blk);
    int ok = 1;
    for (int i = 0; i < 64; i++) ok &= blk[i] == (i < 32 ? 0x50 : 0xa5);
    CHECK(ok && blk[64] == 0xf8 && blk[65] == 0x3b);
    /* TQ1_0 ternary: full hex from formats.md 2.4 */
    hex("456ccf456ccf456ccf456ccf456ccf456ccf456ccf456ccf456ccf456ccf456c94bb3194bb3194bb31"
        "94bb3194bb31943092bb300034", want, 54);
    bt_tq1_0_quantize_ref(tern, blk);
    CHECK(memcmp(blk, want, 54) == 0);
    CHECK_EQ(bt_to_f32(&f1, blk, back, 256), BT_OK);
    CHECK(memcmp(back, tern, sizeof(back)) == 0);
    /* TQ1_0 ramp: 0e x32, 8e x16, qh fd x4, d f8 3b */
    bt_tq1_0_quantize_ref(ramp, blk);
    ok = 1;
    for (int i = 0; i < 52; i++) ok &= blk[i] == (i < 32 ? 0x0e : i < 48 ? 0x8e : 0xfd);
    CHECK(ok && blk[52] == 0xf8 && blk[53] == 0x3b);
    TEST_DONE();
}

/* ---- gen ---------------------------------------------------------------------------------------- */
static int run_gen(const struct bt_plugin *w, const char *dir) {
    struct sample s;
    struct bt_err err = {0, ""};
    char path[1024];
    CHECK_EQ(sample_build(&s), 0);
    snprintf(path, sizeof(path), "%s/sample.gguf", dir);
    CHECK_EQ(write_sample(w, &s, path, 32, &err), BT_OK);
    snprintf(path, sizeof(path), "%s/sample_a64.gguf", dir);
    CHECK_EQ(write_sample(w, &s, path, 64, &err), BT_OK);
    struct bt_optset oz = {32, "zstd", 3};
    snprintf(path, sizeof(path), "%s/sample_zstd.gguf", dir);
    CHECK_EQ(write_opts(w, &s, path, &oz, &err), BT_OK);
    if (err.status) fprintf(stderr, "error: %s\n", err.msg);
    CHECK_EQ(sample_dump(&s, dir), 0);
    sample_free(&s);
    TEST_DONE();
}

/* ---- dump --------------------------------------------------------------------------------------- */
static void json_str(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, uint32_t t, const void *p) {
    const uint8_t *b = p;
    uint64_t u = 0;
    size_t es = t == BT_KV_U8 || t == BT_KV_I8 || t == BT_KV_BOOL ? 1
              : t == BT_KV_U16 || t == BT_KV_I16 ? 2
              : t == BT_KV_U32 || t == BT_KV_I32 || t == BT_KV_F32 ? 4 : 8;
    for (size_t k = 0; k < es; k++) u |= (uint64_t)b[k] << (8 * k);
    int sh = 64 - 8 * (int)es;
    double d = 0;
    if (t == BT_KV_F32) { float v; uint32_t w = (uint32_t)u; memcpy(&v, &w, 4); d = v; }
    if (t == BT_KV_F64) memcpy(&d, &u, 8);
    if (t == BT_KV_F32 || t == BT_KV_F64) {
        if (isfinite(d)) fprintf(f, "%.17g", d);
        else fprintf(f, "\"%s\"", isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
    } else if (t == BT_KV_I8 || t == BT_KV_I16 || t == BT_KV_I32 || t == BT_KV_I64) {
        fprintf(f, "%lld", (long long)((int64_t)(u << sh) >> sh));
    } else {
        fprintf(f, "%llu", (unsigned long long)u);
    }
}

static void json_kv(FILE *f, const struct bt_kv *kv) {
    fprintf(f, "{\"key\": ");
    json_str(f, kv->key, strlen(kv->key));
    fprintf(f, ", \"type\": %u, \"arr_type\": %u, \"value\": ", kv->type, kv->arr_type);
    if (kv->type == BT_KV_STRING) {
        json_str(f, kv->v.s, kv->n);
    } else if (kv->type == BT_KV_ARRAY) {
        fputc('[', f);
        for (uint64_t i = 0; i < kv->n; i++) {
            if (i) fputs(", ", f);
            if (kv->arr_type == BT_KV_STRING) {
                const char *s = ((const char *const *)kv->v.arr)[i];
                json_str(f, s, strlen(s));
            } else {
                size_t es = kv->arr_type == BT_KV_U8 || kv->arr_type == BT_KV_I8 ||
                            kv->arr_type == BT_KV_BOOL ? 1 : kv->arr_type <= BT_KV_I16 ? 2
                            : kv->arr_type <= BT_KV_F32 ? 4 : 8;
                json_num(f, kv->arr_type, (const uint8_t *)kv->v.arr + i * es);
            }
        }
        fputc(']', f);
    } else {
        uint8_t b[8];
        uint64_t u = kv->v.u;
        if (kv->type == BT_KV_F32) { float v = (float)kv->v.f; uint32_t w; memcpy(&w, &v, 4); u = w; }
        if (kv->type == BT_KV_F64) memcpy(&u, &kv->v.f, 8);
        for (int k = 0; k < 8; k++) b[k] = (uint8_t)(u >> (8 * k));
        json_num(f, kv->type, b);
    }
    fputc('}', f);
}

static int run_dump(const struct bt_plugin *d, const char *file, const char *dir) {
    struct rd r;
    struct bt_err err = {0, ""};
    bt_status st = rd_open(d, file, &r, &err);
    if (st) {
        printf("{\"error\": %d, \"msg\": ", st);
        json_str(stdout, err.msg, strlen(err.msg));
        printf("}\n");
        return 0;
    }
    printf("{\"kvs\": [\n");
    for (uint32_t i = 0; i < r.i->kv_count(r.ctx); i++) {
        struct bt_kv kv;
        r.i->kv_get(r.ctx, i, &kv);
        if (i) printf(",\n");
        json_kv(stdout, &kv);
    }
    printf("],\n\"tensors\": [\n");
    int rc = 0;
    for (uint32_t i = 0; i < r.i->tensor_count(r.ctx); i++) {
        struct bt_tensor t;
        char fs[64], path[1024];
        r.i->tensor_get(r.ctx, i, &t, &err);
        bt_fmt_str(&t.fmt, fs, sizeof(fs));
        printf("%s{\"name\": \"%s\", \"fmt\": \"%s\", \"nbytes\": %llu, \"shape\": [", i ? ",\n" : "",
               t.name, fs, (unsigned long long)t.nbytes);
        int64_t n = 1;
        for (uint32_t k = 0; k < t.n_dims; k++) { printf("%s%lld", k ? ", " : "", (long long)t.shape[k]); n *= t.shape[k]; }
        printf("]}");
        snprintf(path, sizeof(path), "%s/%s.bin", dir, t.name);
        FILE *f = fopen(path, "wb");
        rc |= !f || (t.nbytes && fwrite(t.data, 1, t.nbytes, f) != t.nbytes);
        if (f) fclose(f);
        float *x = malloc(sizeof(float) * (n ? n : 1));
        if (x && bt_to_f32(&t.fmt, t.data, x, n) == BT_OK) {
            snprintf(path, sizeof(path), "%s/%s.f32", dir, t.name);
            f = fopen(path, "wb");
            rc |= !f || (n && fwrite(x, sizeof(float), n, f) != (size_t)n);
            if (f) fclose(f);
        }
        free(x);
    }
    printf("]}\n");
    rd_close(&r);
    return rc;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "unit") == 0) return run_unit();
    if (argc == 4 && strcmp(argv[1], "gen") == 0) {
        const struct bt_plugin *w = th_load(argv[2], BT_KIND_WRITER);
        return w ? run_gen(w, argv[3]) : 1;
    }
    if (argc == 5 && strcmp(argv[1], "dump") == 0) {
        const struct bt_plugin *r = th_load(argv[2], BT_KIND_READER);
        return r ? run_dump(r, argv[3], argv[4]) : 1;
    }
    if (argc == 5 && strcmp(argv[1], "self") == 0) {
        const struct bt_plugin *w = th_load(argv[2], BT_KIND_WRITER);
        const struct bt_plugin *r = th_load(argv[3], BT_KIND_READER);
        return w && r ? run_self(w, r, argv[4]) : 1;
    }
    if (argc == 5 && strcmp(argv[1], "zstd") == 0) {
        const struct bt_plugin *w = th_load(argv[2], BT_KIND_WRITER);
        const struct bt_plugin *r = th_load(argv[3], BT_KIND_READER);
        return w && r ? run_zstd(w, r, argv[4]) : 1;
    }
    fprintf(stderr, "usage: test_gguf unit | gen W DIR | dump R FILE DIR | self W R DIR | zstd W R DIR\n");
    return 2;
}
