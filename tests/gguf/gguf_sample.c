/* gguf_sample.c - builds the deterministic sample model used by the gguf writer/reader tests
 * (see gguf_sample.h): KVs of every GGUF value type, tensors of every supported type. */
#include "gguf_sample.h"
#include "bt_types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static float rndu(void) { return (float)((rnd() >> 11) * (1.0 / 9007199254740992.0)); }
static float rndn(void) {
    float u = rndu() + 1e-7f, v = rndu();
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

static void *own(struct sample *s, size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (p && s->n_own < sizeof(s->own) / sizeof(s->own[0])) s->own[s->n_own++] = p;
    return p;
}

/* ---- KVs -------------------------------------------------------------------------------------- */
static struct bt_kv *kv_add(struct sample *s, const char *key, uint32_t type) {
    struct bt_kv *kv = &s->kv[s->n_kv++];
    memset(kv, 0, sizeof(*kv));
    kv->key = key;
    kv->type = type;
    return kv;
}

static void kv_str(struct sample *s, const char *key, const char *v) {
    struct bt_kv *kv = kv_add(s, key, BT_KV_STRING);
    kv->v.s = v;
    kv->n = strlen(v);
}

static void kv_arr(struct sample *s, const char *key, uint32_t at, const void *a, uint64_t n) {
    struct bt_kv *kv = kv_add(s, key, BT_KV_ARRAY);
    kv->arr_type = at;
    kv->v.arr = a;
    kv->n = n;
}

static void build_kvs(struct sample *s) {
    static const char *strs[] = {"a", "", "hello world", "\xc3\xbc tok\xc3\xa9n"};
    static const int32_t i32s[] = {-1, 0, 7, 2147483647, -2147483647 - 1};
    static const float f32s[] = {1.5f, -0.0f, 1e-3f, 3.4e38f};
    static const uint8_t bools[] = {1, 0, 1};
    static const uint8_t u8s[] = {0, 255, 17};
    static const double f64s[] = {1.0 / 3.0, -1e300};
    static const uint64_t u64s[] = {0, 18446744073709551615ull};
    static const uint32_t none[1] = {0};
    kv_str(s, "general.architecture", "llama");
    kv_str(s, "general.name", "bt gguf test \xc3\xbc");
    kv_add(s, "llama.attention.head_count", BT_KV_U32)->v.u = 4;
    kv_add(s, "llama.attention.head_count_kv", BT_KV_U32)->v.u = 2;
    kv_add(s, "test.u8", BT_KV_U8)->v.u = 200;
    kv_add(s, "test.i8", BT_KV_I8)->v.i = -100;
    kv_add(s, "test.u16", BT_KV_U16)->v.u = 60000;
    kv_add(s, "test.i16", BT_KV_I16)->v.i = -30000;
    kv_add(s, "test.u32", BT_KV_U32)->v.u = 4000000000u;
    kv_add(s, "test.i32", BT_KV_I32)->v.i = -2000000000;
    kv_add(s, "test.f32", BT_KV_F32)->v.f = 3.25;
    kv_add(s, "test.bool_true", BT_KV_BOOL)->v.u = 1;
    kv_add(s, "test.bool_false", BT_KV_BOOL)->v.u = 0;
    kv_add(s, "test.u64", BT_KV_U64)->v.u = (1ull << 60) + 5;
    kv_add(s, "test.i64", BT_KV_I64)->v.i = -(1ll << 60);
    kv_add(s, "test.f64", BT_KV_F64)->v.f = -2.5e-300;
    kv_str(s, "test.str_empty", "");
    kv_arr(s, "test.arr_str", BT_KV_STRING, strs, 4);
    kv_arr(s, "test.arr_i32", BT_KV_I32, i32s, 5);
    kv_arr(s, "test.arr_f32", BT_KV_F32, f32s, 4);
    kv_arr(s, "test.arr_bool", BT_KV_BOOL, bools, 3);
    kv_arr(s, "test.arr_u8", BT_KV_U8, u8s, 3);
    kv_arr(s, "test.arr_f64", BT_KV_F64, f64s, 2);
    kv_arr(s, "test.arr_u64", BT_KV_U64, u64s, 2);
    kv_arr(s, "test.arr_empty", BT_KV_U32, none, 0);
}

/* ---- tensors ---------------------------------------------------------------------------------- */
static struct bt_tensor *t_add(struct sample *s, const char *name, uint32_t type, uint32_t nd,
                               int64_t d0, int64_t d1, int64_t d2) {
    struct bt_tensor *t = &s->t[s->n_t];
    memset(t, 0, sizeof(*t));
    t->name = t->src_name = name;
    t->fmt = bt_fmt(type);
    t->n_dims = nd;
    int64_t d[3] = {d0, d1, d2};
    for (uint32_t i = 0; i < nd; i++) t->shape[i] = d[i];
    s->n_t++;
    return t;
}

/* fill t from f32 values (converted with bt_from_f32) and keep the dequantized copy */
static int t_from_f32(struct sample *s, struct bt_tensor *t, const float *x) {
    int64_t rows = 1, cols = t->shape[t->n_dims - 1];
    for (uint32_t d = 0; d + 1 < t->n_dims; d++) rows *= t->shape[d];
    size_t rb = bt_fmt_row_bytes(&t->fmt, cols);
    void *dst = own(s, rb * rows);
    float *back = own(s, sizeof(float) * rows * cols);
    if (!dst || !back) return -1;
    if (t->fmt.type == BT_TYPE_TQ1_0 || t->fmt.type == BT_TYPE_TQ2_0) {
        for (int64_t b = 0; b < rows * cols / 256; b++) {
            uint8_t *blk = (uint8_t *)dst + b * bt_type_block_bytes(t->fmt.type);
            if (t->fmt.type == BT_TYPE_TQ1_0) bt_tq1_0_quantize_ref(x + 256 * b, blk);
            else bt_tq2_0_quantize_ref(x + 256 * b, blk);
        }
    } else if (bt_from_f32(&t->fmt, x, dst, rows * cols) != BT_OK) {
        return -1;
    }
    if (bt_to_f32(&t->fmt, dst, back, rows * cols) != BT_OK) return -1;
    t->data = dst;
    t->nbytes = rb * rows;
    s->f32[s->n_t - 1] = back;
    return 0;
}

static float *gauss(struct sample *s, int64_t n, float scale) {
    float *x = own(s, sizeof(float) * n);
    for (int64_t i = 0; x && i < n; i++) x[i] = rndn() * scale;
    return x;
}

/* the TQ input: 6 rows x 512 with ties, zeros, -0, huge/tiny/subnormal values, ternary rows */
static float *tq_input(struct sample *s) {
    float *x = own(s, sizeof(float) * 6 * 512);
    if (!x) return NULL;
    for (int i = 0; i < 2 * 512; i++) x[i] = rndn() * 0.02f;
    float *r = x + 2 * 512; /* row 2: all-zero block, then ties at d/2 */
    static const float ties[] = {0.5f, -0.5f, 1.0f, 0.0f, 0.49999997f, -0.50000006f, 0.1f};
    for (int i = 0; i < 256; i++) r[256 + i] = ties[i % 7]; /* d = 1: x * id is exact */
    r[256 + 255] = -1.0f;
    r = x + 3 * 512;        /* row 3: negative zeros with tiny values, then huge values */
    for (int i = 0; i < 256; i++) r[i] = (i % 3) ? -0.0f : (i % 2 ? 1e-8f : -1e-8f);
    for (int i = 0; i < 256; i++) r[256 + i] = rndn() * 3e4f;
    r[256 + 7] = 1e5f;      /* fp16(d) overflows to inf */
    r = x + 4 * 512;        /* row 4: d below fp16 range, then fp16-subnormal d */
    for (int i = 0; i < 256; i++) r[i] = rndn() * 1e-30f;
    for (int i = 0; i < 256; i++) r[256 + i] = rndn() * 2e-6f;
    r = x + 5 * 512;        /* row 5: already ternary */
    for (int i = 0; i < 512; i++) r[i] = (float)((int)(rnd() % 3) - 1) * 0.0123f;
    return x;
}

static int mtq_tensor(struct sample *s, const char *name, uint32_t planes, uint32_t block,
                      uint32_t layout, int64_t d0, int64_t d1, int64_t cols) {
    struct bt_tensor *t = t_add(s, name, BT_TYPE_MTQ, d1 ? 3 : 2, d0, d1 ? d1 : cols, cols);
    t->fmt.planes = planes;
    t->fmt.block = block;
    t->fmt.layout = layout;
    int64_t rows = d0 * (d1 ? d1 : 1), nblk = rows * cols / block;
    size_t bb = bt_mtq_block_bytes(planes, block, layout);
    uint8_t *dst = own(s, bb * nblk);
    float *back = own(s, sizeof(float) * rows * cols);
    if (!dst || !back) return -1;
    for (int64_t b = 0; b < nblk; b++) {
        int8_t codes[8 * 256];
        float a[8];
        for (uint32_t i = 0; i < planes * block; i++) codes[i] = (int8_t)((int)(rnd() % 3) - 1);
        for (uint32_t p = 0; p < planes; p++) a[p] = 0.01f + rndu() / (float)(1 << p);
        bt_mtq_pack_block(&t->fmt, codes, a, dst + b * bb);
    }
    t->data = dst;
    t->nbytes = bb * nblk;
    s->f32[s->n_t - 1] = back;
    return bt_to_f32(&t->fmt, dst, back, rows * cols) == BT_OK ? 0 : -1;
}

static int build_tensors(struct sample *s) {
    int rc = 0;
    rc |= t_from_f32(s, t_add(s, "token_embd.weight", BT_TYPE_F16, 2, 16, 32, 0), gauss(s, 512, 1));
    rc |= t_from_f32(s, t_add(s, "f32.weight", BT_TYPE_F32, 2, 3, 8, 0), gauss(s, 24, 1));
    rc |= t_from_f32(s, t_add(s, "bf16.weight", BT_TYPE_BF16, 2, 4, 4, 0), gauss(s, 16, 100));
    rc |= t_from_f32(s, t_add(s, "q8.weight", BT_TYPE_Q8_0, 2, 2, 64, 0), gauss(s, 128, 1));
    rc |= t_from_f32(s, t_add(s, "q4.weight", BT_TYPE_Q4_0, 2, 2, 64, 0), gauss(s, 128, 1));
    if (!(s->tq_in = tq_input(s))) return -1;
    rc |= t_from_f32(s, t_add(s, "tq1.weight", BT_TYPE_TQ1_0, 2, 6, 512, 0), s->tq_in);
    rc |= t_from_f32(s, t_add(s, "tq2.weight", BT_TYPE_TQ2_0, 2, 6, 512, 0), s->tq_in);
    rc |= mtq_tensor(s, "mtq.weight", 2, 64, 0, 4, 0, 256);
    rc |= mtq_tensor(s, "mtq_c.weight", 3, 128, 1, 2, 3, 256);
    struct bt_tensor *t = t_add(s, "i8.tensor", BT_TYPE_I8, 1, 16, 0, 0);
    int8_t *i8 = own(s, 16);
    for (int i = 0; i < 16 && i8; i++) i8[i] = (int8_t)(i * 17 - 128);
    t->data = i8;
    t->nbytes = 16;
    t = t_add(s, "i32.tensor", BT_TYPE_I32, 2, 2, 3, 0);
    int32_t *i32 = own(s, 24);
    for (int i = 0; i < 6 && i32; i++) i32[i] = -3 + i * 1000000;
    t->data = i32;
    t->nbytes = 24;
    /* rope_halves rows: F32 q (4 heads x hd 6), TQ2_0 k (2 kv heads), F32 q bias */
    rc |= t_from_f32(s, t = t_add(s, "blk.0.attn_q.weight", BT_TYPE_F32, 2, 24, 8, 0), gauss(s, 192, 1));
    t->flags = BT_TENSOR_ROPE_HALVES;
    rc |= t_from_f32(s, t = t_add(s, "blk.0.attn_k.weight", BT_TYPE_TQ2_0, 2, 12, 256, 0), gauss(s, 3072, 1));
    t->flags = BT_TENSOR_ROPE_HALVES;
    rc |= t_from_f32(s, t = t_add(s, "blk.0.attn_q.bias", BT_TYPE_F32, 1, 24, 0, 0), gauss(s, 24, 1));
    t->flags = BT_TENSOR_ROPE_HALVES;
    rc |= t_from_f32(s, t_add(s, "blk.0.ffn_down.weight", BT_TYPE_TQ2_0, 2, 2, 256, 0), gauss(s, 512, 1));
    rc |= t_from_f32(s, t_add(s, "output_norm.weight", BT_TYPE_F32, 1, 32, 0, 0), gauss(s, 32, 1));
    return rc || !i8 || !i32 ? -1 : 0;
}

int sample_build(struct sample *s) {
    memset(s, 0, sizeof(*s));
    rng = 0x9e3779b97f4a7c15ull;
    build_kvs(s);
    return build_tensors(s);
}

void sample_free(struct sample *s) {
    for (uint32_t i = 0; i < s->n_own; i++) free(s->own[i]);
    memset(s, 0, sizeof(*s));
}

int sample_find(const struct sample *s, const char *name) {
    for (uint32_t i = 0; i < s->n_t; i++)
        if (strcmp(s->t[i].name, name) == 0) return (int)i;
    return -1;
}

static int dump_file(const char *dir, const char *name, const char *ext, const void *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

int sample_dump(const struct sample *s, const char *dir) {
    int rc = dump_file(dir, "tq_in", "f32", s->tq_in, sizeof(float) * 6 * 512);
    for (uint32_t i = 0; i < s->n_t; i++) {
        const struct bt_tensor *t = &s->t[i];
        rc |= dump_file(dir, t->name, "bin", t->data, t->nbytes);
        if (s->f32[i]) {
            int64_t n = 1;
            for (uint32_t d = 0; d < t->n_dims; d++) n *= t->shape[d];
            rc |= dump_file(dir, t->name, "f32", s->f32[i], sizeof(float) * n);
        }
    }
    return rc;
}
