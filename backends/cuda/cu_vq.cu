/* cu_vq.cu - kernels of bt's vq format (cu_vq.h decodes): DEQUANT / GET_ROWS / weight slices for
 * cuBLAS (a thread per element, bit-identical to bt_vq_to_f32_rows), and MATMUL for small batches
 * without decoding the weights: the activations are permuted and pre-scaled once per token
 * (k_vq_prep, as cpu_vq.c), then a block per row block of v rows and token sums codebook vectors
 * times activations over the coded columns (k_vq_gemv), and a warp per outlier row block adds
 * the outlier columns and the bias term (k_vq_out). The sums run in another order than the cpu
 * backend's (within the MATMUL tolerance). */
#include "cu_kern.h"
#include "cu_vq.h"

#define GRID_MAX 65535u
#define VQ_THREADS 128 /* k_vq_gemv */
#define PREP_THREADS 256

static unsigned grid_for(int64_t n, int threads) {
    int64_t g = (n + threads - 1) / threads;
    return g > (int64_t)GRID_MAX * 16 ? GRID_MAX * 16 : (unsigned)(g < 1 ? 1 : g);
}

/* ---- decoding ---------------------------------------------------------------------------------- */
/* dst row i = row (ids ? ids[i] : r0 + i) of the tensor, i < n */
__global__ void k_vq_rows(struct bt_cu_vq q, const int32_t *ids, int64_t r0, int64_t n, float *dst) {
    const int64_t total = n * q.cols;
    for (int64_t it = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; it < total;
         it += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = it / q.cols, p = it - i * q.cols;
        const int64_t r = ids ? (int64_t)ids[i] : r0 + i;
        dst[i * q.cols + bt_cu_vq_col(&q, p)] = bt_cu_vq_elem(&q, r, p);
    }
}

extern "C" cudaError_t bt_cuk_vq_rows(cudaStream_t st, const struct bt_cu_vq *q, const int32_t *ids,
                                      int64_t r0, int64_t n, float *dst) {
    if (n <= 0) return cudaSuccess;
    k_vq_rows<<<grid_for(n * q->cols, 256), 256, 0, st>>>(*q, ids, r0, n, dst);
    return cudaGetLastError();
}

/* ---- MATMUL, small batches --------------------------------------------------------------------- */
/* block t: xs[t, p] = x[t, col(p)] (* scale[col(p)]) for every stream position p; xb[t] = sum_j
 * x[t, j] * bias[j] (when the tensor has scales and biases) */
__global__ void k_vq_prep(struct bt_cu_vq q, const float *x, float *xs, float *xb) {
    __shared__ float red[PREP_THREADS / 32];
    const int64_t t = blockIdx.x;
    const float *xr = x + t * q.cols;
    float *o = xs + t * q.cols;
    const int norm = q.col_scale != UINT64_MAX;
    float sb = 0.0f;
    for (int64_t p = threadIdx.x; p < q.cols; p += PREP_THREADS) {
        const int64_t col = bt_cu_vq_col(&q, p);
        o[p] = norm ? xr[col] * bt_cu_vq_h(q.colp, q.col_scale, (uint64_t)col) : xr[col];
        if (norm) sb = sb + xr[p] * bt_cu_vq_h(q.colp, q.col_bias, (uint64_t)p);
    }
    if (!norm) return; /* uniform over the block: no barrier is skipped by some threads only */
    for (int s = 16; s > 0; s >>= 1) sb += __shfl_xor_sync(0xffffffffu, sb, s);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = sb;
    __syncthreads();
    if (threadIdx.x == 0) {
        float tot = 0.0f;
        for (int k = 0; k < PREP_THREADS / 32; k++) tot += red[k];
        xb[t] = tot;
    }
}

/* block (rb, t): y[t, rb*v + e] for e < v = sum over coded positions p of xs[t, n_out + p] *
 * (main[code][e] + residual[code][e]) (+ xb[t] when add_xb: no outlier pass follows) */
__global__ void k_vq_gemv(struct bt_cu_vq q, const float *xs, const float *xb, int add_xb, float *y) {
    __shared__ float red[VQ_THREADS / 32][BT_CU_VQ_MAX_V];
    const int64_t rb = blockIdx.x, t = blockIdx.y;
    const float *xp = xs + t * q.cols + q.n_out;
    const uint8_t *s = bt_cu_vq_stream(&q, rb);
    float acc[BT_CU_VQ_MAX_V];
#pragma unroll
    for (int e = 0; e < BT_CU_VQ_MAX_V; e++) acc[e] = 0.0f;
    for (int64_t p = threadIdx.x; p < q.ncode; p += VQ_THREADS) {
        const uint32_t code = bt_cu_vq_code(s, (uint64_t)p * (uint64_t)q.t, q.t);
        const float xv = xp[p];
#pragma unroll
        for (int e = 0; e < BT_CU_VQ_MAX_V; e++)
            if (e < q.v) acc[e] += xv * bt_cu_vq_main(&q, code, p, e);
        if (q.b2) {
#pragma unroll
            for (int e = 0; e < BT_CU_VQ_MAX_V; e++)
                if (e < q.v) acc[e] += xv * bt_cu_vq_res(&q, code, p, e);
        }
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int e = 0; e < BT_CU_VQ_MAX_V; e++) {
        if (e < q.v) { /* q.v is the same for every thread: the shuffles are uniform */
            float a = acc[e];
            for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
            if (lane == 0) red[warp][e] = a;
        }
    }
    __syncthreads();
    const int e = threadIdx.x;
    const int64_t r = rb * q.v + e;
    if (e < q.v && r < q.rows) {
        float sum = 0.0f;
        for (int w = 0; w < VQ_THREADS / 32; w++) sum += red[w][e];
        y[t * q.rows + r] = add_xb ? sum + xb[t] : sum;
    }
}

/* block (rb0, t), one warp: y[t, rb0*v0 + e] += sum over outlier positions p of xs[t, p] *
 * outlier[code][e], then + xb[t] (when xb) - the order of cpu_vq.c */
__global__ void k_vq_out(struct bt_cu_vq q, const float *xs, const float *xb, float *y) {
    const int64_t rb0 = blockIdx.x, t = blockIdx.y;
    const float *xo = xs + t * q.cols;
    const int lane = threadIdx.x;
    float acc[BT_CU_VQ_MAX_V];
#pragma unroll
    for (int e = 0; e < BT_CU_VQ_MAX_V; e++) acc[e] = 0.0f;
    for (int64_t p = lane; p < q.n_out; p += 32) {
        const uint64_t base = (uint64_t)bt_cu_vq_ocode(&q, rb0, p) * (uint64_t)q.v0;
        const float xv = xo[p];
#pragma unroll
        for (int e = 0; e < BT_CU_VQ_MAX_V; e++)
            if (e < q.v0) acc[e] += xv * bt_cu_vq_h(q.cb, q.cb_out, base + (uint64_t)e);
    }
    float mine = 0.0f;
#pragma unroll
    for (int e = 0; e < BT_CU_VQ_MAX_V; e++) {
        if (e < q.v0) {
            float a = acc[e];
            for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
            if (lane == e) mine = a;
        }
    }
    const int64_t r = rb0 * q.v0 + lane;
    if (lane < q.v0 && r < q.rows) {
        float v = y[t * q.rows + r] + mine;
        if (xb) v = v + xb[t];
        y[t * q.rows + r] = v;
    }
}

extern "C" cudaError_t bt_cuk_vq_gemv(cudaStream_t st, const struct bt_cu_vq *q, const float *x,
                                      int64_t ntok, float *scratch, float *y) {
    if (ntok <= 0 || q->rows <= 0) return cudaSuccess;
    if (ntok > (int64_t)GRID_MAX) return cudaErrorInvalidValue;
    const int norm = q->col_scale != UINT64_MAX;
    float *xs = scratch, *xb = norm ? scratch + ntok * q->cols : NULL;
    k_vq_prep<<<(unsigned)ntok, PREP_THREADS, 0, st>>>(*q, x, xs, xb);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    const int64_t nrb = (q->rows + q->v - 1) / q->v;
    k_vq_gemv<<<dim3((unsigned)nrb, (unsigned)ntok), VQ_THREADS, 0, st>>>(*q, xs, xb, norm && !q->n_out, y);
    if ((e = cudaGetLastError()) != cudaSuccess || !q->n_out) return e;
    const int64_t nrb0 = (q->rows + q->v0 - 1) / q->v0;
    k_vq_out<<<dim3((unsigned)nrb0, (unsigned)ntok), 32, 0, st>>>(*q, xs, xb, y);
    return cudaGetLastError();
}
