/* cu_misc.cu - kernels of the ops without weight formats: RMSNORM (a block per row, the sum of
 * squares in double as the cpu backend), ROPE (a thread per rotated pair or passed-through
 * element), SWIGLU, ADD and SCALE (a thread per element), ATTN (a block per query row and head, keys in
 * tiles of 128 positions with an online softmax), KMEANS (a thread per point, distances in
 * double, lowest index on ties), RELU2 (a thread per element), QUANT_ROW (a block per row).
 * Semantics: the scalar cpu backend (cpu_ops.c, cpu_attn.c). */
#include "cu_kern.h"

#include <math.h>

#define GRID_MAX 65535u

static unsigned grid_for(int64_t n, int threads) {
    int64_t g = (n + threads - 1) / threads;
    return g > (int64_t)GRID_MAX * 16 ? GRID_MAX * 16 : (unsigned)(g < 1 ? 1 : g);
}

/* ---- RMSNORM ---------------------------------------------------------------------------------- */
__global__ void k_rmsnorm(const float *x, const float *w, int64_t cols, float eps, float *y) {
    __shared__ double red[8];
    __shared__ float scale;
    const float *xr = x + (int64_t)blockIdx.x * cols;
    float *yr = y + (int64_t)blockIdx.x * cols;
    double ss = 0.0;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) ss += (double)xr[i] * (double)xr[i];
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (unsigned k = 0; k < blockDim.x / 32; k++) t += red[k];
        scale = (float)(1.0 / sqrt(t / (double)cols + (double)eps));
    }
    __syncthreads();
    const float sc = scale;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = __fmul_rn(w[i], __fmul_rn(xr[i], sc));
}

extern "C" cudaError_t bt_cuk_rmsnorm(cudaStream_t st, const float *x, const float *w, int64_t rows,
                                      int64_t cols, float eps, float *y) {
    for (int64_t r0 = 0; r0 < rows; r0 += GRID_MAX) {
        const int64_t nr = rows - r0 < (int64_t)GRID_MAX ? rows - r0 : (int64_t)GRID_MAX;
        k_rmsnorm<<<(unsigned)nr, 256, 0, st>>>(x + r0 * cols, w, cols, eps, y + r0 * cols);
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

/* ---- ROPE ------------------------------------------------------------------------------------- */
/* item j of a head: j < n_rot/2 rotates the pair (i, i + n_rot/2) or (2i, 2i+1), i = j; the rest
 * copy the dims n_rot.. of the head (when y is not x) */
__global__ void k_rope(const float *x, const float *inv, int64_t rows, int64_t cols, int hd,
                       int n_rot, int halves, int pos0, float *y) {
    const int half = n_rot / 2, per = hd - half;
    const int64_t heads = cols / hd, n = rows * heads * per;
    for (int64_t it = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; it < n;
         it += (int64_t)gridDim.x * blockDim.x) {
        const int j = (int)(it % per);
        const int64_t rh = it / per, r = rh / heads, h = rh - r * heads;
        const int64_t base = r * cols + h * hd;
        if (j < half) {
            const int a = halves ? j : 2 * j, b = halves ? j + half : 2 * j + 1;
            const float th = __fmul_rn((float)(pos0 + (int)r), inv[j]);
            const float c = cosf(th), s = sinf(th), x0 = x[base + a], x1 = x[base + b];
            y[base + a] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
            y[base + b] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
        } else if (y != x) {
            const int64_t e = base + n_rot + (j - half);
            y[e] = x[e];
        }
    }
}

extern "C" cudaError_t bt_cuk_rope(cudaStream_t st, const float *x, const float *inv, int64_t rows,
                                   int64_t cols, int head_dim, int n_rot, int halves, int pos0,
                                   float *y) {
    const int64_t n = rows * (cols / head_dim) * (head_dim - n_rot / 2);
    if (n <= 0) return cudaSuccess;
    k_rope<<<grid_for(n, 256), 256, 0, st>>>(x, inv, rows, cols, head_dim, n_rot, halves, pos0, y);
    return cudaGetLastError();
}

/* ---- SWIGLU, ADD ------------------------------------------------------------------------------ */
__global__ void k_swiglu(const float *a, const float *b, int64_t n, float *y) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const float g = a[i];
        y[i] = __fmul_rn(b[i], __fdiv_rn(g, __fadd_rn(1.0f, expf(-g))));
    }
}

__global__ void k_add(const float *a, const float *b, int64_t n, float *y) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = __fadd_rn(a[i], b[i]);
}

extern "C" cudaError_t bt_cuk_swiglu(cudaStream_t st, const float *a, const float *b, int64_t n,
                                     float *y) {
    if (n <= 0) return cudaSuccess;
    k_swiglu<<<grid_for(n, 256), 256, 0, st>>>(a, b, n, y);
    return cudaGetLastError();
}

extern "C" cudaError_t bt_cuk_add(cudaStream_t st, const float *a, const float *b, int64_t n,
                                  float *y) {
    if (n <= 0) return cudaSuccess;
    k_add<<<grid_for(n, 256), 256, 0, st>>>(a, b, n, y);
    return cudaGetLastError();
}

/* ---- RELU2, QUANT_ROW (BitNet b1.58, ABI 2.2) ----------------------------------------------- */
__global__ void k_relu2(const float *a, const float *b, int64_t n, float *y) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = bt_cu_relu2(a[i], b[i]);
}

extern "C" cudaError_t bt_cuk_relu2(cudaStream_t st, const float *a, const float *b, int64_t n,
                                    float *y) {
    if (n <= 0) return cudaSuccess;
    k_relu2<<<grid_for(n, 256), 256, 0, st>>>(a, b, n, y);
    return cudaGetLastError();
}

#define QR_THREADS 256
/* a block per row: max |x| (NaNs skipped: the maximum does not depend on the order), then every
 * element rounded as cpu_ops.c's quant_row; in place (y == x) is safe: the max is taken before
 * any element is written */
__global__ void k_quant_row(const float *x, int64_t cols, float *y) {
    __shared__ float red[QR_THREADS / 32];
    __shared__ float scale;
    const float *xr = x + (int64_t)blockIdx.x * cols;
    float *yr = y + (int64_t)blockIdx.x * cols;
    float mx = 0.0f;
    for (int64_t i = threadIdx.x; i < cols; i += QR_THREADS) mx = bt_cu_absmax(mx, xr[i]);
    for (int o = 16; o > 0; o >>= 1) mx = bt_cu_absmax(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
    __syncthreads();
    if (threadIdx.x == 0) {
        float m = 0.0f;
        for (int k = 0; k < QR_THREADS / 32; k++) m = bt_cu_absmax(m, red[k]);
        scale = bt_cu_qrow_scale(m);
    }
    __syncthreads();
    const float s = scale;
    for (int64_t i = threadIdx.x; i < cols; i += QR_THREADS) yr[i] = bt_cu_qrow_val(xr[i], s);
}

extern "C" cudaError_t bt_cuk_quant_row(cudaStream_t st, const float *x, int64_t rows, int64_t cols,
                                        float *y) {
    for (int64_t r0 = 0; r0 < rows; r0 += GRID_MAX) {
        const int64_t nr = rows - r0 < (int64_t)GRID_MAX ? rows - r0 : (int64_t)GRID_MAX;
        k_quant_row<<<(unsigned)nr, QR_THREADS, 0, st>>>(x + r0 * cols, cols, y + r0 * cols);
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

/* ---- SCALE (2.3): one correctly rounded multiply per element ------------------------------------ */
__global__ void k_scale(const float *a, float s, int64_t n, float *y) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = __fmul_rn(a[i], s);
}

extern "C" cudaError_t bt_cuk_scale(cudaStream_t st, const float *a, float s, int64_t n, float *y) {
    if (n <= 0) return cudaSuccess;
    k_scale<<<grid_for(n, 256), 256, 0, st>>>(a, s, n, y);
    return cudaGetLastError();
}

/* ---- ATTN ------------------------------------------------------------------------------------- */
#define AW 128                   /* threads per block = positions per tile */
#define AD (BT_CU_HDMAX / AW)    /* output dims per thread */

__device__ float block_max(float v, float *red) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads(); /* red is free again */
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    float m = red[0];
    for (int k = 1; k < AW / 32; k++) m = fmaxf(m, red[k]);
    return m;
}

__device__ float block_sum(float v, float *red) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    float s = 0.0f;
    for (int k = 0; k < AW / 32; k++) s += red[k];
    return s;
}

/* block (t, h): query row t, head h; positions 0 .. pos0 + t */
__global__ void k_attn(const float *q, const float *kc, const float *vc, int pos0, int n_head,
                       int n_kv, int hd, float scale, float *out) {
    __shared__ float qs[BT_CU_HDMAX];
    __shared__ float ps[AW];
    __shared__ float red[AW / 32];
    const int t = blockIdx.y, h = blockIdx.x, tid = threadIdx.x;
    const int64_t kvs = (int64_t)n_kv * hd; /* floats per cache row */
    const int64_t koff = (int64_t)(h / (n_head / n_kv)) * hd;
    const float *qr = q + ((int64_t)t * n_head + h) * hd;
    for (int d = tid; d < hd; d += AW) qs[d] = qr[d];
    __syncthreads();
    const int npos = pos0 + t + 1;
    float m = -INFINITY, l = 0.0f, acc[AD];
#pragma unroll
    for (int j = 0; j < AD; j++) acc[j] = 0.0f;
    for (int p0 = 0; p0 < npos; p0 += AW) {
        const int p = p0 + tid;
        float s = -INFINITY;
        if (p < npos) {
            const float *kr = kc + (int64_t)p * kvs + koff;
            float dot = 0.0f;
            for (int d = 0; d < hd; d++) dot = fmaf(qs[d], kr[d], dot);
            s = dot * scale;
        }
        const float mn = fmaxf(m, block_max(s, red)); /* finite: p0 < npos */
        const float alpha = expf(m - mn);               /* 0 on the first tile */
        const float e = p < npos ? expf(s - mn) : 0.0f;
        ps[tid] = e;
        l = l * alpha + block_sum(e, red); /* block_sum's barriers publish ps */
        m = mn;
        const int np = npos - p0 < AW ? npos - p0 : AW;
#pragma unroll
        for (int j = 0; j < AD; j++) {
            const int d = tid + j * AW;
            if (d < hd) {
                const float *vr = vc + (int64_t)p0 * kvs + koff + d;
                float a = acc[j] * alpha;
                for (int i = 0; i < np; i++) a = fmaf(ps[i], vr[(int64_t)i * kvs], a);
                acc[j] = a;
            }
        }
        __syncthreads(); /* ps is rewritten by the next tile */
    }
    float *o = out + ((int64_t)t * n_head + h) * hd;
    const float il = 1.0f / l;
#pragma unroll
    for (int j = 0; j < AD; j++) {
        const int d = tid + j * AW;
        if (d < hd) o[d] = acc[j] * il;
    }
}

extern "C" cudaError_t bt_cuk_attn(cudaStream_t st, const float *q, const float *k, const float *v,
                                   int ntok, int pos0, int n_head, int n_head_kv, int head_dim,
                                   float scale, float *out) {
    if (ntok <= 0) return cudaSuccess;
    if (head_dim > BT_CU_HDMAX || head_dim <= 0 || n_head_kv <= 0 || n_head % n_head_kv ||
        ntok > (int)GRID_MAX)
        return cudaErrorInvalidValue;
    k_attn<<<dim3((unsigned)n_head, (unsigned)ntok), AW, 0, st>>>(q, k, v, pos0, n_head, n_head_kv,
                                                                 head_dim, scale, out);
    return cudaGetLastError();
}

/* ---- KMEANS ----------------------------------------------------------------------------------- */
__global__ void k_kmeans(const float *pts, int64_t n, int64_t d, const float *cent, int64_t k,
                         const float *w, int32_t *idx) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const float *x = pts + i * d;
        double best = INFINITY;
        int32_t bk = 0;
        for (int64_t c = 0; c < k; c++) {
            const float *ce = cent + c * d;
            double s = 0.0;
            for (int64_t j = 0; j < d; j++) {
                const double e = (double)x[j] - (double)ce[j];
                s += (w ? (double)w[j] : 1.0) * e * e;
            }
            if (s < best) { best = s; bk = (int32_t)c; }
        }
        idx[i] = bk;
    }
}

extern "C" cudaError_t bt_cuk_kmeans(cudaStream_t st, const float *pts, int64_t n, int64_t d,
                                     const float *cent, int64_t k, const float *w, int32_t *idx) {
    if (n <= 0) return cudaSuccess;
    k_kmeans<<<grid_for(n, 128), 128, 0, st>>>(pts, n, d, cent, k, w, idx);
    return cudaGetLastError();
}

/* ---- the identity (CHOL_INV) -------------------------------------------------------------------- */
__global__ void k_eye(float *X, int64_t n) {
    const int64_t nn = n * n;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < nn;
         i += (int64_t)gridDim.x * blockDim.x)
        X[i] = i / n == i % n ? 1.0f : 0.0f;
}

extern "C" cudaError_t bt_cuk_eye(cudaStream_t st, float *X, int64_t n) {
    if (n <= 0) return cudaSuccess;
    k_eye<<<grid_for(n * n, 256), 256, 0, st>>>(X, n);
    return cudaGetLastError();
}
