#include "bt_types.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <math.h>
/* test_types.c - fp16 conversion: the vector (F16C) path of bt_from_f32/bt_to_f32 equals the
 * scalar round-to-nearest-even code on 4M values (normals, subnormals, overflow), and the scalar
 * code gives the IEEE results on known values. */
int main(void) {
    int64_t n = 1 << 22; int bad = 0;
    float *x = malloc(n * 4), *y = malloc(n * 4); uint8_t *h = malloc(n * 2);
    srand(1);
    for (int64_t i = 0; i < n; i++) { uint32_t u = ((uint32_t)rand() << 16) ^ (uint32_t)rand(); memcpy(&x[i], &u, 4); if (!isfinite(x[i])) x[i] = 0; if (i % 3 == 0) x[i] = ldexpf(x[i] - floorf(x[i]), (int)(i % 40) - 30); }
    struct bt_tfmt f = bt_fmt(BT_TYPE_F16);
    bt_from_f32(&f, x, h, n);
    for (int64_t i = 0; i < n; i++) { uint16_t a = (uint16_t)(h[2*i] | (h[2*i+1] << 8)); if (a != bt_f32_to_fp16(x[i])) { if (bad++ < 5) printf("to16 %lld: %g -> %04x vs %04x\n", (long long)i, x[i], a, bt_f32_to_fp16(x[i])); } }
    bt_to_f32(&f, h, y, n);
    for (int64_t i = 0; i < n; i++) { uint16_t a = (uint16_t)(h[2*i] | (h[2*i+1] << 8)); float r = bt_fp16_to_f32(a); if (memcmp(&r, &y[i], 4)) { if (bad++ < 10) printf("to32 %lld\n", (long long)i); } }
    /* known IEEE binary16 encodings (round to nearest even) */
    const struct { float f; uint16_t h; } known[] = {
        {1.0f, 0x3c00}, {-2.0f, 0xc000}, {65504.0f, 0x7bff}, {65520.0f, 0x7c00}, {5.960464477539063e-8f, 0x0001},
        {2.98e-8f, 0x0000}, {1.0009765625f, 0x3c01}, {1.00048828125f, 0x3c00}, {1.00146484375f, 0x3c02}, {0.1f, 0x2e66}};
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
        if (bt_f32_to_fp16(known[k].f) != known[k].h) { bad++; printf("known %g -> %04x, want %04x\n", known[k].f, bt_f32_to_fp16(known[k].f), known[k].h); }
    printf("%d mismatches of %lld\n", bad, (long long)n);
    free(x);
    free(y);
    free(h);
    return bad != 0;
}
