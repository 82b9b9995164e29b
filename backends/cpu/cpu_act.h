/* cpu_act.h - int8 activation quantizer for gemv_q8 (absmax per block). A plain helper shared by
 * the CPU backends and the runtime (compile cpu_act.c in); not part of the plugin ABI. */
#ifndef BT_CPU_ACT_H
#define BT_CPU_ACT_H

#include "bt/bt_plugin.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* x[n] -> xq[n], xs[n / ablock]: per block of ablock elements, xs = amax / 127 and
 * xq = round(x / xs) (half away from zero, clamped to [-127, 127]; xq = 0 where xs = 0).
 * BT_E_INVAL unless ablock > 0 and n is a positive multiple of ablock. */
bt_status bt_cpu_act_quantize(const float *x, int64_t n, int64_t ablock, int8_t *xq, float *xs);

/* x[i] = xq[i] * xs[i / ablock]: the activations gemv_q8 actually multiplies with */
void bt_cpu_act_dequantize(const int8_t *xq, const float *xs, int64_t n, int64_t ablock, float *x);

#ifdef __cplusplus
}
#endif
#endif
