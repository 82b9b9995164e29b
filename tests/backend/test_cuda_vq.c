/* test_cuda_vq.c - the CUDA backend's vq decoder (backends/cuda/cu_vq.h, which its kernels run on
 * the device) checked on the host, so CI without a GPU tests it: for vq tensors of many parameter
 * sets (vector lengths 1..32, index bits 1..16, residual codebooks up to 32-bit codes, groups,
 * permutations, scales and biases, outliers, tails) with random codes, codebooks and columns,
 * every element bt_cu_vq_elem gives (at column bt_cu_vq_col) must equal the core's reference
 * decoder bt_vq_to_f32_rows bit for bit, and every column must be written once. Also the
 * element functions of RELU2 and QUANT_ROW (cu_dec.h) against their definitions. */
#include "../bt_test.h"
#include "bt_types.h"
#include "cu_vq.h"

#include <math.h>
#include <string.h>

static uint64_t rs = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (uint32_t)(rs >> 16);
}
static float frnd(void) { return ((float)(rnd() % 20001) - 10000.0f) / 7919.0f; }

static int same(float a, float b) {
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y || (a != a && b != b);
}

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

struct set { uint32_t v, b1, b2, G, flags, n_out, v0, b0; int64_t rows, cols; };

static void check_set(const struct set *s) {
    struct bt_tfmt f = bt_vq_tfmt(s->v, s->b1, s->b2, s->G, s->flags, s->n_out, s->v0, s->b0);
    struct bt_vq_layout L;
    char name[48];
    bt_fmt_str(&f, name, sizeof name);
    CHECK(bt_vq_layout(&f, s->rows, s->cols, &L));
    if (!bt_vq_layout(&f, s->rows, s->cols, &L)) { printf("bad set %s\n", name); return; }
    uint8_t *data = malloc((size_t)(s->rows * (int64_t)L.R) + 1), *part[BT_MAX_PARTS] = {0};
    for (size_t i = 0; i < (size_t)(s->rows * (int64_t)L.R); i++) data[i] = (uint8_t)rnd();
    for (uint32_t k = 0; k < L.n_parts; k++) part[k] = calloc(1, L.part_bytes[k] + 1);
    for (uint64_t i = 0; i < L.part_bytes[L.p_cb] / 2; i++) /* some raw bits (inf, NaN) too */
        put16(part[L.p_cb] + 2 * i, rnd() % 64 ? bt_f32_to_fp16(frnd()) : rnd() & 0xffff);
    if (L.p_col >= 0) {
        uint8_t *cp = part[L.p_col];
        if (L.col_perm != UINT64_MAX) {
            for (int64_t i = 0; i < s->cols; i++) put16(cp + L.col_perm + 2 * i, (uint32_t)i);
            for (int64_t i = s->cols - 1; i > 0; i--) {
                int64_t j = rnd() % (uint32_t)(i + 1);
                uint32_t a = bt_cu_u16(cp + L.col_perm + 2 * i), b = bt_cu_u16(cp + L.col_perm + 2 * j);
                put16(cp + L.col_perm + 2 * i, b);
                put16(cp + L.col_perm + 2 * j, a);
            }
        }
        if (L.col_scale != UINT64_MAX)
            for (int64_t i = 0; i < s->cols; i++) {
                put16(cp + L.col_scale + 2 * i, bt_f32_to_fp16(frnd()));
                put16(cp + L.col_bias + 2 * i, bt_f32_to_fp16(frnd() * 0.1f));
            }
    }
    if (L.p_out >= 0)
        for (uint64_t i = 0; i < L.part_bytes[L.p_out] / 2; i++) put16(part[L.p_out] + 2 * i, rnd() % (1u << L.b0));
    if (L.p_tail >= 0)
        for (uint64_t i = 0; i < L.part_bytes[L.p_tail]; i++) part[L.p_tail][i] = (uint8_t)rnd();
    const void *pp[BT_MAX_PARTS] = {part[0], part[1], part[2], part[3]};
    float *ref = malloc(sizeof(float) * (size_t)(s->rows * s->cols));
    int *hit = calloc((size_t)s->cols, sizeof(int));
    CHECK(bt_vq_to_f32_rows(&f, pp, data, s->rows, s->cols, 0, s->rows, ref) == BT_OK);
    struct bt_cu_vq q = {data, part[L.p_cb], L.p_col >= 0 ? part[L.p_col] : NULL,
                         L.p_out >= 0 ? part[L.p_out] : NULL, L.p_tail >= 0 ? part[L.p_tail] : NULL,
                         L.rows, L.cols, L.ncode, L.gs, L.R, L.cb_main, L.cb_res, L.cb_out,
                         L.col_perm, L.col_scale, L.col_bias, (int32_t)L.v, (int32_t)L.b1,
                         (int32_t)L.b2, (int32_t)L.t, (int32_t)L.n_out, (int32_t)L.v0, (int32_t)L.b0};
    int64_t bad = 0;
    for (int64_t r = 0; r < s->rows; r++)
        for (int64_t p = 0; p < s->cols; p++) {
            int64_t col = bt_cu_vq_col(&q, p);
            if (col < 0 || col >= s->cols) { bad++; continue; }
            if (r == 0) hit[col]++;
            if (!same(bt_cu_vq_elem(&q, r, p), ref[r * s->cols + col])) {
                if (!bad) printf("%s: row %lld col %lld: %.9g, reference %.9g\n", name, (long long)r,
                                 (long long)col, bt_cu_vq_elem(&q, r, p), ref[r * s->cols + col]);
                bad++;
            }
        }
    for (int64_t c = 0; c < s->cols; c++) bad += hit[c] != 1;
    printf("%-22s %5lld x %-5lld %s\n", name, (long long)s->rows, (long long)s->cols, bad ? "FAIL" : "ok");
    CHECK(bad == 0);
    free(hit);
    free(ref);
    free(data);
    for (uint32_t k = 0; k < L.n_parts; k++) free(part[k]);
}

/* BitNet's ops (ABI 2.2) against their definitions in bt_plugin.h */
static void check_bitnet(void) {
    const float a[] = {1.5f, -2.0f, 0.0f, -0.0f, 3e-20f, NAN, INFINITY, 7.0f};
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
        float g = a[i] > 0.0f ? a[i] : 0.0f, b = 0.75f;
        CHECK(same(bt_cu_relu2(a[i], b), b * (g * g)));
    }
    float x[300], mx = 0.0f;
    for (int i = 0; i < 300; i++) x[i] = frnd() * (i == 7 ? 40.0f : 1.0f);
    x[5] = NAN;
    for (int i = 0; i < 300; i++) mx = bt_cu_absmax(mx, x[i]);
    CHECK(mx == fabsf(x[7]));
    float s = bt_cu_qrow_scale(mx);
    CHECK(s == 127.0f / fabsf(x[7]));
    CHECK(bt_cu_qrow_scale(0.0f) == 127.0f / 1e-5f);
    for (int i = 0; i < 300; i++) {
        if (i == 5) continue;
        float q = bt_cu_qrow_val(x[i], s) * s, r = nearbyintf(x[i] * s);
        CHECK(fabsf(q - r) <= 1e-3f * (1.0f + fabsf(r)) && fabsf(r) <= 127.0f);
    }
    CHECK(bt_cu_qrow_val(2.5f, 1.0f) == 2.0f && bt_cu_qrow_val(-3.5f, 1.0f) == -4.0f); /* half even */
    CHECK(bt_cu_qrow_val(-200.0f, 1.0f) == -128.0f && bt_cu_qrow_val(200.0f, 1.0f) == 127.0f);
}

int main(void) {
    static const struct set sets[] = {
        {4, 8, 0, 1, 0, 0, 0, 0, 16, 64},
        {8, 10, 6, 2, BT_VQ_NORM | BT_VQ_PERM, 0, 0, 0, 24, 96},
        {6, 5, 3, 1, BT_VQ_NORM | BT_VQ_PERM | BT_VQ_TAIL, 8, 4, 7, 34, 40},
        {16, 12, 4, 1, BT_VQ_NORM, 0, 0, 0, 48, 256},
        {12, 13, 0, 4, BT_VQ_PERM | BT_VQ_TAIL, 16, 8, 9, 100, 512},
        {2, 4, 0, 1, BT_VQ_TAIL, 0, 0, 0, 7, 33},
        {1, 1, 0, 1, 0, 0, 0, 0, 5, 9},
        {32, 16, 16, 3, BT_VQ_NORM | BT_VQ_PERM | BT_VQ_TAIL, 5, 32, 16, 70, 65},
        {3, 16, 15, 1, BT_VQ_PERM, 3, 1, 1, 9, 21},
        {5, 7, 9, 2, BT_VQ_NORM | BT_VQ_TAIL, 2, 3, 5, 13, 34},
        {8, 16, 0, 1, BT_VQ_NORM | BT_VQ_PERM, 0, 0, 0, 256, 1024},
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) check_set(&sets[i]);
    check_bitnet();
    printf("%d checks, %d failed\n", bt_test_checks, bt_test_failures);
    return bt_test_failures ? 1 : 0;
}
