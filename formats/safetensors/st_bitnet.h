/* st_bitnet.h - BitNet b1.58 checkpoints (BitNetForCausalLM) as TQ2_0 tensors: HF's packed uint8
 * ternary weights with their weight_scale, or bf16 master weights ternarized per tensor the BitNet
 * way. docs/formats.md "BitNet b1.58 checkpoints". */
#ifndef BT_ST_BITNET_H
#define BT_ST_BITNET_H
#include <stdint.h>

/* HF packed weight (rows/4 x cols bytes: bits 2p..2p+1 of packed row r = trit + 1 of row
 * p*rows/4 + r) -> rows x cols TQ2_0 (cols % 256 == 0) with every block scale = scale.
 * Returns -1 (dst partly written) if a code is 3, which no trit packs to. */
int bt_st_bitnet_unpack(const uint8_t *packed, int64_t rows, int64_t cols, float scale, uint8_t *dst);

/* master weights w (rows x cols f32) -> BitNet's per-tensor ternary: s = max(mean|w|, 1e-5) (the
 * mean in double), T = clip(round(w / s), -1, 1) (w / s in float, round half to even), stored as
 * TQ2_0 with every block scale = s (rounded to fp16); returns s */
float bt_st_bitnet_ternarize(const float *w, int64_t rows, int64_t cols, uint8_t *dst);
#endif
