/* test_cuda_dec.c - the CUDA backend's element decoders and int8 activation round trip
 * (backends/cuda/cu_dec.h, which its kernels run on the device) checked on the host, so CI without
 * a GPU tests them: every element of random packed rows of F32 F16 BF16 Q8_0 Q4_0 TQ1_0 TQ2_0 and
 * MTQ (planes 1-8 x block 64/128/256 x layout 0/1) must equal bt_to_f32 bit for bit (two NaNs
 * count as equal: the host's F16 path may quiet a signalling NaN), and the round trip of random
 * activation blocks (with zeros, NaNs, infinities, huge and tiny values) must equal the cpu
 * backend's quantizer (cpu_act.c) followed by its dequantizer, the codes its codes. The TQ2_0
 * product's lane split (16 lanes per block) must add up to sum_e t_e x_e over the block: exactly
 * with int8 activations (dp4a emulated on the host), within float rounding with f32 ones. */
#include "../bt_test.h"
#include "bt_types.h"
#include "cpu_act.h"
#include "cu_dec.h"

#include <string.h>

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (uint32_t)(rs >> 16);
}

static int same(float a, float b) {
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y || (a != a && b != b);
}

/* rows x cols of fmt from random bytes: every element through bt_cu_dec vs bt_to_f32 */
static void check_fmt(struct bt_tfmt fmt, int64_t rows, int64_t cols, int nice_scales) {
    char name[40];
    bt_fmt_str(&fmt, name, sizeof name);
    size_t rb = bt_fmt_row_bytes(&fmt, cols);
    uint32_t blk = 0, bb = 0;
    CHECK(rb > 0 && bt_fmt_geometry(&fmt, &blk, &bb));
    if (!rb) return;
    uint8_t *w = malloc(rb * (size_t)rows);
    float *ref = malloc(sizeof(float) * (size_t)(rows * cols));
    if (!w || !ref) { free(w); free(ref); CHECK(0); return; }
    for (size_t i = 0; i < rb * (size_t)rows; i++) w[i] = (uint8_t)rnd();
    if (nice_scales && fmt.type != BT_TYPE_F32 && fmt.type != BT_TYPE_F16 && fmt.type != BT_TYPE_BF16) {
        /* finite fp16 scales in every block (the random pass above also covers inf/NaN ones) */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t b = 0; b < cols / blk; b++) {
                uint8_t *s = w + r * rb + b * bb;
                int ns = fmt.type == BT_TYPE_MTQ ? (int)fmt.planes : 1;
                size_t at = fmt.type == BT_TYPE_TQ2_0 ? 64 : fmt.type == BT_TYPE_TQ1_0 ? 52 : 0;
                for (int k = 0; k < ns; k++) {
                    uint16_t h = bt_f32_to_fp16(((float)(rnd() % 2001) - 1000.0f) / 997.0f);
                    s[at + 2 * k] = (uint8_t)h;
                    s[at + 2 * k + 1] = (uint8_t)(h >> 8);
                }
            }
    }
    CHECK_EQ(bt_to_f32(&fmt, w, ref, rows * cols), BT_OK);
    struct bt_cu_wfmt f = {(int32_t)fmt.type, (int32_t)fmt.planes, (int32_t)blk, (int32_t)fmt.layout,
                           (int32_t)bb, rb};
    int64_t bad = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            float got = bt_cu_dec(&f, w + r * rb, c), want = ref[r * cols + c];
            if (!same(got, want) && bad++ < 3)
                fprintf(stderr, "%s %lldx%lld: element (%lld, %lld): %.9g, bt_to_f32 %.9g\n", name,
                        (long long)rows, (long long)cols, (long long)r, (long long)c, got, want);
        }
    CHECK_EQ(bad, 0);
    free(w);
    free(ref);
}

static float special(void) {
    switch (rnd() % 16) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return NAN;
    case 3: return (rnd() & 1) ? INFINITY : -INFINITY;
    case 4: return ((float)(rnd() % 1000) - 500.0f) * 1e30f;
    case 5: return ((float)(rnd() % 1000) - 500.0f) * 1e-40f; /* subnormal */
    default: return ((float)(rnd() % 200001) - 100000.0f) / 1000.0f;
    }
}

static void check_act(void) {
    enum { NB = 400, B = BT_ACT_Q8_BLOCK };
    static float x[NB * B], cpu[NB * B], xs[NB];
    static int8_t xq[NB * B];
    for (int b = 0; b < NB; b++)
        for (int i = 0; i < B; i++) {
            int mode = b % 4; /* plain, with specials, all zero, one block of specials only */
            x[b * B + i] = mode == 2 ? 0.0f : mode == 3 ? special()
                         : mode == 1 && rnd() % 8 == 0 ? special()
                         : ((float)(rnd() % 20001) - 10000.0f) / (float)(1 + rnd() % 5000);
        }
    CHECK_EQ(bt_cpu_act_quantize(x, NB * B, B, xq, xs), BT_OK);
    bt_cpu_act_dequantize(xq, xs, NB * B, B, cpu);
    int bad = 0;
    for (int b = 0; b < NB; b++) {
        float amax = 0.0f; /* as the kernel: NaN lanes count as 0, then the largest */
        for (int i = 0; i < B; i++) amax = fmaxf(amax, fmaxf(0.0f, fabsf(x[b * B + i])));
        for (int i = 0; i < B; i++) {
            float got = bt_cu_q8_round_trip(x[b * B + i], amax), want = cpu[b * B + i];
            if (bt_cu_q8_code(x[b * B + i], bt_cu_q8_scale(amax)) != xq[b * B + i] && bad++ < 3)
                fprintf(stderr, "act block %d element %d: code differs\n", b, i);
            if (!same(got, want) && bad++ < 3)
                fprintf(stderr, "act block %d element %d: x %.9g -> %.9g, cpu %.9g\n", b, i,
                        x[b * B + i], got, want);
        }
    }
    CHECK_EQ(bad, 0);
}

static void check_tq2_lanes(void) {
    int bad = 0;
    for (int it = 0; it < 2000; it++) {
        uint8_t blk[66];
        int8_t t[256], q[256];
        float x[256], d;
        for (int i = 0; i < 256; i++) t[i] = (int8_t)(rnd() % 3) - 1;
        bt_tq2_0_pack(t, 1.0f, blk);
        bt_tq2_0_unpack(blk, t, &d);
        double want = 0.0, mag = 0.0;
        int iwant = 0, igot = 0;
        for (int i = 0; i < 256; i++) {
            x[i] = ((float)(rnd() % 20001) - 10000.0f) / 777.0f;
            q[i] = (int8_t)((int)(rnd() % 255) - 127);
            want += (double)t[i] * x[i];
            mag += fabs((double)x[i]);
            iwant += t[i] * q[i];
        }
        float got = 0.0f;
        for (int j = 0; j < 16; j++) {
            got += bt_cu_tq2_lane_dot(blk, x, j);
            igot += bt_cu_tq2_lane_idot(blk, q, j);
        }
        if ((fabs(got - want) > 1e-5 * mag || igot != iwant) && bad++ < 3)
            fprintf(stderr, "tq2_0 lanes, block %d: f32 %.7g vs %.7g, int8 %d vs %d\n", it, got,
                    want, igot, iwant);
    }
    CHECK_EQ(bad, 0);
}

int main(void) {
    static const uint32_t plain[] = {BT_TYPE_F32, BT_TYPE_F16, BT_TYPE_BF16, BT_TYPE_Q8_0,
                                     BT_TYPE_Q4_0, BT_TYPE_TQ1_0, BT_TYPE_TQ2_0};
    for (int nice = 0; nice < 2; nice++) {
        for (size_t k = 0; k < sizeof plain / sizeof plain[0]; k++) {
            struct bt_tfmt f = bt_fmt(plain[k]);
            int64_t blk = bt_type_block(plain[k]);
            check_fmt(f, 3, blk > 1 ? 3 * blk : 37, nice);
            check_fmt(f, 1, blk > 1 ? blk : 1, nice);
        }
        for (uint32_t N = 1; N <= 8; N++)
            for (uint32_t B = 64; B <= 256; B *= 2)
                for (uint32_t L = 0; L < 2; L++) {
                    struct bt_tfmt f = {BT_TYPE_MTQ, N, B, L};
                    check_fmt(f, 3, 2 * (int64_t)B, nice);
                }
    }
    check_act();
    check_tq2_lanes();
    printf("%d checks, %d failures\n", bt_test_checks, bt_test_failures);
    return bt_test_failures ? 1 : 0;
}
