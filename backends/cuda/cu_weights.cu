/* cu_weights.cu - kernels on weight formats: DEQUANT and GET_ROWS (a thread per element, the
 * decoders of cu_dec.h), the small-batch product (a warp per weight row, up to 8 tokens per
 * pass: each decoded weight serves every token; partial sums meet by warp shuffles) and the int8
 * activation quantizer of MATMUL act = Q8. Larger batches go through cuBLAS (cu_matmul.c). */
#include "cu_dec.h"

/* element c of a row of format T (a compile-time type: one kernel per format) */
template <int T>
__device__ __forceinline__ float dec_t(const struct bt_cu_wfmt &f, const uint8_t *row, int64_t c) {
    switch (T) {
    case BT_TYPE_F32: return bt_cu_dec_f32(row, c);
    case BT_TYPE_F16: return bt_cu_dec_f16(row, c);
    case BT_TYPE_BF16: return bt_cu_dec_bf16(row, c);
    case BT_TYPE_Q8_0: return bt_cu_dec_q8_0(row, c);
    case BT_TYPE_Q4_0: return bt_cu_dec_q4_0(row, c);
    case BT_TYPE_TQ2_0: return bt_cu_dec_tq2_0(row, c);
    case BT_TYPE_TQ1_0: return bt_cu_dec_tq1_0(row, c);
    case BT_TYPE_MTQ: return bt_cu_dec_mtq(&f, row, c);
    }
    return 0.0f;
}

/* run `call` with T_ the compile-time form of the runtime type ftype */
#define BT_CU_DISPATCH(ftype, call)                                                              \
    switch (ftype) {                                                                             \
    case BT_TYPE_F32: { constexpr int T_ = BT_TYPE_F32; call; break; }                           \
    case BT_TYPE_F16: { constexpr int T_ = BT_TYPE_F16; call; break; }                           \
    case BT_TYPE_BF16: { constexpr int T_ = BT_TYPE_BF16; call; break; }                         \
    case BT_TYPE_Q8_0: { constexpr int T_ = BT_TYPE_Q8_0; call; break; }                         \
    case BT_TYPE_Q4_0: { constexpr int T_ = BT_TYPE_Q4_0; call; break; }                         \
    case BT_TYPE_TQ2_0: { constexpr int T_ = BT_TYPE_TQ2_0; call; break; }                       \
    case BT_TYPE_TQ1_0: { constexpr int T_ = BT_TYPE_TQ1_0; call; break; }                       \
    case BT_TYPE_MTQ: { constexpr int T_ = BT_TYPE_MTQ; call; break; }                           \
    default: return cudaErrorInvalidValue;                                                       \
    }

#define GRID_MAX 65535u

static unsigned grid_for(int64_t n, int threads) {
    int64_t g = (n + threads - 1) / threads;
    return g > (int64_t)GRID_MAX * 16 ? GRID_MAX * 16 : (unsigned)(g < 1 ? 1 : g);
}

template <int T>
__global__ void k_dequant(struct bt_cu_wfmt f, const uint8_t *w, int64_t rows, int64_t cols,
                          float *dst) {
    const int64_t n = rows * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / cols, c = i - r * cols;
        dst[i] = dec_t<T>(f, w + (uint64_t)r * f.row_bytes, c);
    }
}

template <int T>
__global__ void k_get_rows(struct bt_cu_wfmt f, const uint8_t *w, const int32_t *ids, int64_t nr,
                           int64_t cols, float *dst) {
    const int64_t n = nr * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / cols, c = i - t * cols;
        dst[i] = dec_t<T>(f, w + (uint64_t)ids[t] * f.row_bytes, c);
    }
}

#define GEMV_WARPS 4 /* rows per block of 128 threads */
#define GEMV_TOK   8 /* tokens per pass */

template <int T>
__global__ void k_gemv(struct bt_cu_wfmt f, const uint8_t *w, int64_t rows, int64_t cols,
                       const float *x, int64_t ntok, float *y) {
    const int lane = threadIdx.x & 31;
    const int64_t r = (int64_t)blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    const int64_t t0 = (int64_t)blockIdx.y * GEMV_TOK;
    if (r >= rows) return; /* the whole warp leaves together */
    const int nt = ntok - t0 < GEMV_TOK ? (int)(ntok - t0) : GEMV_TOK;
    const uint8_t *row = w + (uint64_t)r * f.row_bytes;
    const float *xt = x + t0 * cols;
    float acc[GEMV_TOK];
#pragma unroll
    for (int j = 0; j < GEMV_TOK; j++) acc[j] = 0.0f;
    for (int64_t c = lane; c < cols; c += 32) {
        const float v = dec_t<T>(f, row, c);
#pragma unroll
        for (int j = 0; j < GEMV_TOK; j++)
            if (j < nt) acc[j] = fmaf(v, xt[j * cols + c], acc[j]);
    }
#pragma unroll
    for (int j = 0; j < GEMV_TOK; j++) {
        float s = acc[j];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0 && j < nt) y[(t0 + j) * rows + r] = s;
    }
}

/* TQ2_0, small batches: a warp per row, 16 lanes per block (cu_dec.h), two blocks per step;
 * f32 activations, or int8 ones (xq, scales xs per 256) multiplied by __dp4a */
__global__ void k_gemv_tq2(const uint8_t *w, uint64_t rb, int64_t rows, int64_t cols,
                           const float *x, const int8_t *xq, const float *xs, int64_t ntok, float *y) {
    const int lane = threadIdx.x & 31, j = lane & 15;
    const int64_t r = (int64_t)blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    const int64_t t0 = (int64_t)blockIdx.y * GEMV_TOK, nb = cols / 256;
    if (r >= rows) return;
    const int nt = ntok - t0 < GEMV_TOK ? (int)(ntok - t0) : GEMV_TOK;
    const uint8_t *row = w + (uint64_t)r * rb;
    float acc[GEMV_TOK];
#pragma unroll
    for (int k = 0; k < GEMV_TOK; k++) acc[k] = 0.0f;
    for (int64_t b = lane >> 4; b < nb; b += 2) {
        const uint8_t *blk = row + b * 66;
        const float d = bt_cu_h2f(bt_cu_u16(blk + 64));
#pragma unroll
        for (int k = 0; k < GEMV_TOK; k++) {
            if (k >= nt) break;
            const int64_t t = t0 + k;
            if (xq) {
                const int s = bt_cu_tq2_lane_idot(blk, xq + t * cols + b * 256, j);
                acc[k] = fmaf(d * xs[t * nb + b], (float)s, acc[k]);
            } else {
                acc[k] = fmaf(d, bt_cu_tq2_lane_dot(blk, x + t * cols + b * 256, j), acc[k]);
            }
        }
    }
#pragma unroll
    for (int k = 0; k < GEMV_TOK; k++) {
        float s = acc[k];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0 && k < nt) y[(t0 + k) * rows + r] = s;
    }
}

/* one block of 256 threads per (256-block, token): as cpu_act.c block_ref. Writes the round
 * trip q * d to out, and/or the codes to xq and the scale to xs[block] (each may be NULL) */
__global__ void k_act_q8(const float *x, int64_t cols, float *out, int8_t *xq, float *xs) {
    __shared__ float red[8];
    const int64_t i = (int64_t)blockIdx.y * cols + (int64_t)blockIdx.x * 256 + threadIdx.x;
    const float v = x[i];
    float m = fmaxf(0.0f, fabsf(v)); /* NaN lanes count as 0, as fmaxf(amax, NaN) = amax */
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = m;
    __syncthreads();
    float amax = red[0];
    for (int k = 1; k < 8; k++) amax = fmaxf(amax, red[k]);
    const float d = bt_cu_q8_scale(amax);
    const int q = bt_cu_q8_code(v, d);
    if (out) out[i] = (float)(int8_t)q * d;
    if (xq) xq[i] = (int8_t)q;
    if (xs && threadIdx.x == 0) xs[i / 256] = d;
}

extern "C" cudaError_t bt_cuk_dequant(cudaStream_t st, struct bt_cu_wfmt f, const uint8_t *w,
                                      int64_t rows, int64_t cols, float *dst) {
    if (rows <= 0 || cols <= 0) return cudaSuccess;
    const unsigned g = grid_for(rows * cols, 256);
    BT_CU_DISPATCH(f.type, (k_dequant<T_><<<g, 256, 0, st>>>(f, w, rows, cols, dst)));
    return cudaGetLastError();
}

extern "C" cudaError_t bt_cuk_get_rows(cudaStream_t st, struct bt_cu_wfmt f, const uint8_t *w,
                                       const int32_t *ids, int64_t n, int64_t cols, float *dst) {
    if (n <= 0 || cols <= 0) return cudaSuccess;
    const unsigned g = grid_for(n * cols, 256);
    BT_CU_DISPATCH(f.type, (k_get_rows<T_><<<g, 256, 0, st>>>(f, w, ids, n, cols, dst)));
    return cudaGetLastError();
}

extern "C" cudaError_t bt_cuk_gemv(cudaStream_t st, struct bt_cu_wfmt f, const uint8_t *w,
                                   int64_t rows, int64_t cols, const float *x, int64_t ntok,
                                   float *y) {
    if (rows <= 0 || ntok <= 0) return cudaSuccess;
    const int64_t gx = (rows + GEMV_WARPS - 1) / GEMV_WARPS, gy = (ntok + GEMV_TOK - 1) / GEMV_TOK;
    if (gx > 0x7fffffffll || gy > (int64_t)GRID_MAX) return cudaErrorInvalidConfiguration;
    const dim3 grid((unsigned)gx, (unsigned)gy);
    BT_CU_DISPATCH(f.type, (k_gemv<T_><<<grid, 32 * GEMV_WARPS, 0, st>>>(f, w, rows, cols, x, ntok, y)));
    return cudaGetLastError();
}

extern "C" cudaError_t bt_cuk_gemv_tq2(cudaStream_t st, const uint8_t *w, uint64_t row_bytes,
                                       int64_t rows, int64_t cols, const float *x, const int8_t *xq,
                                       const float *xs, int64_t ntok, float *y) {
    if (rows <= 0 || ntok <= 0) return cudaSuccess;
    if (cols % 256 || (!x && (!xq || !xs))) return cudaErrorInvalidValue;
    const int64_t gx = (rows + GEMV_WARPS - 1) / GEMV_WARPS, gy = (ntok + GEMV_TOK - 1) / GEMV_TOK;
    if (gx > 0x7fffffffll || gy > (int64_t)GRID_MAX) return cudaErrorInvalidConfiguration;
    k_gemv_tq2<<<dim3((unsigned)gx, (unsigned)gy), 32 * GEMV_WARPS, 0, st>>>(w, row_bytes, rows, cols,
                                                                           xq ? NULL : x, xq, xs, ntok, y);
    return cudaGetLastError();
}

extern "C" cudaError_t bt_cuk_act_q8(cudaStream_t st, const float *x, int64_t ntok, int64_t cols,
                                     float *out, int8_t *xq, float *xs) {
    if (ntok <= 0 || cols <= 0) return cudaSuccess;
    if (cols % 256 || cols / 256 > 0x7fffffffll) return cudaErrorInvalidConfiguration;
    for (int64_t t0 = 0; t0 < ntok; t0 += GRID_MAX) { /* grid.y is at most 65535 */
        const int64_t nt = ntok - t0 < (int64_t)GRID_MAX ? ntok - t0 : (int64_t)GRID_MAX;
        const int64_t o = t0 * cols;
        k_act_q8<<<dim3((unsigned)(cols / 256), (unsigned)nt), 256, 0, st>>>(
            x + o, cols, out ? out + o : NULL, xq ? xq + o : NULL, xs ? xs + o / 256 : NULL);
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}
