/* cu_kern.h - the kernels of the CUDA backend as C-callable launchers (cu_weights.cu: weight
 * formats; cu_misc.cu: everything else). Each enqueues on stream st and returns the launch's
 * status (cudaGetLastError); nothing here synchronizes. Pointers are device pointers, already
 * offset to the view; the host side has checked shapes, bounds and alignment. */
#ifndef BT_CU_KERN_H
#define BT_CU_KERN_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "cu_dec.h"
#include "cu_vq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dst (rows x cols, f32) = decode(w rows x cols); bit-identical to bt_to_f32 */
cudaError_t bt_cuk_dequant(cudaStream_t st, struct bt_cu_wfmt f, const uint8_t *w, int64_t rows,
                           int64_t cols, float *dst);
/* dst[t,:] = decode(w[ids[t],:]) for t < n (ids in device memory, already range-checked) */
cudaError_t bt_cuk_get_rows(cudaStream_t st, struct bt_cu_wfmt f, const uint8_t *w,
                            const int32_t *ids, int64_t n, int64_t cols, float *dst);
/* y[t, r] = sum_c decode(w)[r, c] * x[t, c], t < ntok (small batches: a warp per row) */
cudaError_t bt_cuk_gemv(cudaStream_t st, struct bt_cu_wfmt f, const uint8_t *w, int64_t rows,
                        int64_t cols, const float *x, int64_t ntok, float *y);
/* TQ2_0 rows (cols % 256 == 0): y[t, r] for t < ntok (< 16) with f32 activations x, or (x NULL)
 * int8 ones: xq (ntok x cols, 4-byte aligned rows) with scales xs (ntok x cols/256) */
cudaError_t bt_cuk_gemv_tq2(cudaStream_t st, const uint8_t *w, uint64_t row_bytes, int64_t rows,
                            int64_t cols, const float *x, const int8_t *xq, const float *xs,
                            int64_t ntok, float *y);
/* x (ntok x cols, cols % 256 == 0) quantized to int8 in blocks of 256 exactly as the cpu
 * backend's quantizer (cpu_act.c): the round trip xq * xs to out, and/or the codes to xq and the
 * block scales to xs (any of the three may be NULL) */
cudaError_t bt_cuk_act_q8(cudaStream_t st, const float *x, int64_t ntok, int64_t cols, float *out,
                          int8_t *xq, float *xs);

/* vq weights (cu_vq.cu; q by pointer, its pointers device ones): dst row i = decoded row (ids ?
 * ids[i] : r0 + i), i < n, bit-identical to bt_vq_to_f32_rows */
cudaError_t bt_cuk_vq_rows(cudaStream_t st, const struct bt_cu_vq *q, const int32_t *ids,
                           int64_t r0, int64_t n, float *dst);
/* y (ntok x rows) = x (ntok x cols) W^T without decoding W; scratch: ntok * (cols + 1) floats */
cudaError_t bt_cuk_vq_gemv(cudaStream_t st, const struct bt_cu_vq *q, const float *x,
                           int64_t ntok, float *scratch, float *y);

/* element-wise and the rest (cu_misc.cu) */
cudaError_t bt_cuk_rmsnorm(cudaStream_t st, const float *x, const float *w, int64_t rows,
                           int64_t cols, float eps, float *y);
cudaError_t bt_cuk_rope(cudaStream_t st, const float *x, const float *inv, int64_t rows,
                        int64_t cols, int head_dim, int n_rot, int halves, int pos0, float *y);
cudaError_t bt_cuk_swiglu(cudaStream_t st, const float *a, const float *b, int64_t n, float *y);
cudaError_t bt_cuk_add(cudaStream_t st, const float *a, const float *b, int64_t n, float *y);
/* BitNet b1.58 (ABI 2.2): y = max(a, 0)^2 * b; each row of x (rows x cols) to its 8-bit values */
cudaError_t bt_cuk_relu2(cudaStream_t st, const float *a, const float *b, int64_t n, float *y);
cudaError_t bt_cuk_quant_row(cudaStream_t st, const float *x, int64_t rows, int64_t cols, float *y);
cudaError_t bt_cuk_scale(cudaStream_t st, const float *a, float s, int64_t n, float *y); /* y = a s */
cudaError_t bt_cuk_attn(cudaStream_t st, const float *q, const float *k, const float *v,
                        int ntok, int pos0, int n_head, int n_head_kv, int head_dim, float scale,
                        float *out);
/* X (n x n) = the identity (CHOL_INV's right-hand side) */
cudaError_t bt_cuk_eye(cudaStream_t st, float *X, int64_t n);
cudaError_t bt_cuk_kmeans(cudaStream_t st, const float *pts, int64_t n, int64_t d,
                          const float *cent, int64_t k, const float *w, int32_t *idx);

#define BT_CU_HDMAX 512 /* ATTN: largest head_dim */

#ifdef __cplusplus
}
#endif
#endif
