/* test_vq_pack.c - the vq code stream for every index width: codes of t = b1 + b2 bits (b1
 * 1..16, b2 0..16) written with bt_vq_put_code and read back with bt_vq_get_code, compared bit by
 * bit with the documented order (bit i of the stream = bit i%8 of byte i/8, code q at bits
 * [q*t, q*t+t), least significant first), over zero and over garbage; row sizes from
 * bt_vq_row_bytes / bt_vq_layout against the formula of docs/formats.md. */
#include "bt_types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }

int main(void) {
    int fails = 0;
    uint8_t s[512];
    uint32_t codes[97];
    for (uint32_t b1 = 1; b1 <= 16; b1++)
        for (uint32_t b2 = 0; b2 <= 16; b2++) {
            uint32_t t = b1 + b2;
            for (int garbage = 0; garbage < 2; garbage++) {
                for (size_t i = 0; i < sizeof s; i++) s[i] = garbage ? (uint8_t)rnd() : 0;
                for (int q = 0; q < 97; q++) {
                    codes[q] = (uint32_t)(rnd() & ((1ull << t) - 1));
                    bt_vq_put_code(s, (uint64_t)q * t, t, codes[q]);
                }
                for (int q = 0; q < 97; q++) {
                    uint32_t ref = 0;
                    for (uint32_t i = 0; i < t; i++) {
                        uint64_t bit = (uint64_t)q * t + i;
                        ref |= (uint32_t)((s[bit / 8] >> (bit % 8)) & 1) << i;
                    }
                    uint32_t got = bt_vq_get_code(s, (uint64_t)q * t, t);
                    if (got != codes[q] || ref != codes[q]) {
                        if (fails++ < 10) printf("FAIL b1 %u b2 %u code %d: wrote %u, read %u, bits say %u\n", b1, b2, q, codes[q], got, ref);
                    }
                }
            }
            /* geometry: v 1..16, n_out 0/5, G 1 */
            for (uint32_t v = 1; v <= 16; v++) {
                struct bt_tfmt f = bt_vq_tfmt(v, b1, b2, 1, BT_VQ_NORM, 0, 0, 0);
                int64_t cols = 97;
                uint64_t S = ((uint64_t)cols * t + 7) / 8, R = (S + v - 1) / v;
                struct bt_vq_layout L;
                if (bt_vq_row_bytes(&f, cols) != R || !bt_vq_layout(&f, 8 * v, cols, &L) || L.S != S ||
                    L.part_bytes[0] != 2ull * ((1ull << b1) + (b2 ? 1ull << b2 : 0)) * v || L.part_bytes[1] != 4ull * cols) {
                    if (fails++ < 10) printf("FAIL geometry v %u b1 %u b2 %u\n", v, b1, b2);
                }
                /* rows % v != 0 needs BT_VQ_TAIL, and the reverse */
                if (v > 1 && (bt_vq_layout(&f, 8 * v + 1, cols, &L) ||
                              !bt_vq_layout(&(struct bt_tfmt){BT_TYPE_VQ, f.planes, f.block | BT_VQ_TAIL << 16, 0}, 8 * v + 1, cols, &L) ||
                              L.part_bytes[L.p_tail] != S)) {
                    if (fails++ < 10) printf("FAIL tail rule v %u b1 %u b2 %u\n", v, b1, b2);
                }
            }
        }
    /* invalid parameters */
    struct bt_tfmt bad[] = {bt_vq_tfmt(0, 8, 0, 1, 0, 0, 0, 0), bt_vq_tfmt(4, 0, 0, 1, 0, 0, 0, 0),
                            bt_vq_tfmt(4, 17, 0, 1, 0, 0, 0, 0), bt_vq_tfmt(4, 8, 17, 1, 0, 0, 0, 0),
                            bt_vq_tfmt(4, 8, 0, 0, 0, 0, 0, 0), bt_vq_tfmt(4, 8, 0, 1, 8, 0, 0, 0),
                            bt_vq_tfmt(4, 8, 0, 1, 0, 4, 0, 8), bt_vq_tfmt(4, 8, 0, 1, 0, 0, 4, 8)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (bt_vq_params_ok(&bad[i])) { fails++; printf("FAIL invalid parameters %zu accepted\n", i); }
    struct bt_vq_layout L;
    struct bt_tfmt g3 = bt_vq_tfmt(4, 8, 0, 3, 0, 0, 0, 0);
    if (bt_vq_layout(&g3, 8, 64, &L)) { fails++; printf("FAIL groups not dividing accepted\n"); }
    printf("%s (%d failures)\n", fails ? "FAILED" : "all passed", fails);
    return fails ? 1 : 0;
}
