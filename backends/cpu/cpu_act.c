/* cpu_act.c - int8 activation quantizer (absmax per block) used with gemv_q8. */
#include "cpu_act.h"

#include <math.h>

bt_status bt_cpu_act_quantize(const float *x, int64_t n, int64_t ablock, int8_t *xq, float *xs) {
    if (!x || !xq || !xs || ablock <= 0 || n <= 0 || n % ablock) return BT_E_INVAL;
    for (int64_t b = 0; b < n / ablock; b++) {
        const float *xb = x + b * ablock;
        float amax = 0.0f;
        for (int64_t i = 0; i < ablock; i++) amax = fmaxf(amax, fabsf(xb[i]));
        float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        xs[b] = d;
        for (int64_t i = 0; i < ablock; i++) {
            float v = roundf(xb[i] * id);
            v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
            if (v != v) v = 0.0f; /* NaN input */
            xq[b * ablock + i] = (int8_t)v;
        }
    }
    return BT_OK;
}

void bt_cpu_act_dequantize(const int8_t *xq, const float *xs, int64_t n, int64_t ablock, float *x) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)xq[i] * xs[i / ablock];
}
