/* test_mtq_pack.c - MTQ block pack/unpack (core/types) against the layout spec written out
 * byte by byte, round trips for every plane count, block size and layout, and bt_to_f32. */
#include "bt_types.h"
#include "bt_test.h"

#include <string.h>

static uint32_t rs = 2463534242u;
static uint32_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 17; rs ^= rs << 5; return rs; }

/* expected packed block from the header's description, computed per output byte */
static void spec_pack(uint32_t N, uint32_t B, uint32_t layout, const int8_t *t, const float *a,
                      uint8_t *out) {
    for (uint32_t p = 0; p < N; p++) {
        uint16_t h = bt_f32_to_fp16(a[p]);
        out[2 * p] = (uint8_t)h;
        out[2 * p + 1] = (uint8_t)(h >> 8);
    }
    uint8_t *q = out + 2 * N;
    if (layout == 0) {
        uint32_t C = B < 128 ? B : 128, S = C / 4, nbytes = N * B / 4;
        for (uint32_t i = 0; i < nbytes; i++) {
            uint32_t chunk = i / (N * S), p = (i % (N * S)) / S, m = i % S, v = 0;
            for (uint32_t l = 0; l < 4; l++)
                v |= (uint32_t)(t[p * B + chunk * C + l * S + m] + 1) << (2 * l);
            q[i] = (uint8_t)v;
        }
    } else {
        uint32_t G = (B + 4) / 5;
        for (uint32_t i = 0; i < G * N; i++) {
            uint32_t g = i / N, p = i % N, v = 0, pw = 1;
            for (uint32_t k = 0; k < 5; k++, pw *= 3)
                v += (5 * g + k < B ? (uint32_t)(t[p * B + 5 * g + k] + 1) : 1u) * pw;
            q[i] = (uint8_t)v;
        }
    }
}

int main(void) {
    static const uint32_t blocks[3] = {64, 128, 256};
    static int8_t t[8 * 256], t2[8 * 256];
    static uint8_t got[4096], want[4096], row[4 * 4096];
    static float x[4 * 256], a2[8];
    for (uint32_t layout = 0; layout < 2; layout++)
        for (int bi = 0; bi < 3; bi++)
            for (uint32_t N = 1; N <= 8; N++) {
                uint32_t B = blocks[bi];
                struct bt_tfmt f = {BT_TYPE_MTQ, N, B, layout};
                size_t bb = bt_mtq_block_bytes(N, B, layout);
                CHECK_EQ(bb, 2 * N + (layout ? N * ((B + 4) / 5) : N * B / 4));
                CHECK_EQ(bt_fmt_row_bytes(&f, 4 * (int64_t)B), 4 * bb);
                CHECK_EQ(bt_fmt_row_bytes(&f, (int64_t)B + 1), 0);
                for (int rep = 0; rep < 20; rep++) {
                    float a[8];
                    for (uint32_t i = 0; i < N * B; i++) {
                        int m = rep == 0 ? -1 : rep == 1 ? 1 : rep == 2 ? 0 : (int)(rnd() % 3) - 1;
                        t[i] = (int8_t)m;
                    }
                    for (uint32_t p = 0; p < N; p++) {
                        float v = (float)((int)(rnd() % 20001) - 10000) * 1e-4f;
                        if (rep == 3 && p == 0) v = 0.0f;
                        if (rep == 4 && p == 0) v = 3.0e-7f;  /* fp16 subnormal */
                        if (rep == 5 && p == 0) v = 60000.0f; /* near fp16 max */
                        a[p] = bt_fp16_to_f32(bt_f32_to_fp16(v));
                    }
                    memset(got, 0xAA, sizeof(got));
                    bt_mtq_pack_block(&f, t, a, got);
                    spec_pack(N, B, layout, t, a, want);
                    CHECK(memcmp(got, want, bb) == 0);
                    CHECK_EQ(got[bb], 0xAA); /* writes exactly block_bytes */
                    bt_mtq_unpack_block(&f, got, t2, a2);
                    CHECK(memcmp(t, t2, N * B) == 0);
                    for (uint32_t p = 0; p < N; p++) CHECK(a2[p] == a[p]);
                    /* decode of a 4-block row through bt_to_f32 */
                    for (int b = 0; b < 4; b++) memcpy(row + b * bb, got, bb);
                    CHECK_EQ(bt_to_f32(&f, row, x, 4 * (int64_t)B), BT_OK);
                    int ok = 1;
                    for (int b = 0; b < 4; b++)
                        for (uint32_t e = 0; e < B; e++) {
                            float v = 0;
                            for (uint32_t p = 0; p < N; p++) v += a[p] * (float)t[p * B + e];
                            ok &= x[b * B + e] == v;
                        }
                    CHECK(ok);
                }
            }
    /* invalid geometries */
    CHECK_EQ(bt_mtq_block_bytes(0, 256, 0), 0);
    CHECK_EQ(bt_mtq_block_bytes(9, 256, 0), 0);
    CHECK_EQ(bt_mtq_block_bytes(2, 96, 0), 0);
    CHECK_EQ(bt_mtq_block_bytes(2, 256, 2), 0);
    TEST_DONE();
}
