/* misc.cl - the element-wise and small ops of the bt OpenCL backend: RMSNORM, ROPE, SWIGLU,
 * ADD, the int8 activation quantizer of MATMUL act = Q8 (writes the dequantized activations
 * xq * xs as f32) and KMEANS. No contraction into fma, and sums in double where the scalar CPU
 * backend uses double (RMSNORM, KMEANS; BT_FP64 devices), so results follow it closely. */
#pragma OPENCL FP_CONTRACT OFF

#ifdef BT_FP64
typedef double bt_acc;
#else
typedef float bt_acc;
#endif

#define BT_RED_WG 256

/* one work-group per row: y = w * (x * (1 / sqrt(mean(x^2) + eps))) */
__kernel __attribute__((reqd_work_group_size(BT_RED_WG, 1, 1)))
void bt_rmsnorm(__global const uchar *Xb, ulong xoff, __global const uchar *Wb, ulong woff,
                __global uchar *Yb, ulong yoff, int n, float eps)
{
    __local bt_acc red[BT_RED_WG];
    const int lid = get_local_id(0);
    const ulong r = get_group_id(0);
    const __global float *x = (const __global float *)(Xb + xoff) + r * n;
    const __global float *w = (const __global float *)(Wb + woff);
    __global float *y = (__global float *)(Yb + yoff) + r * n;
    bt_acc ss = 0;
    for (int i = lid; i < n; i += BT_RED_WG) {
        bt_acc v = x[i];
        ss += v * v;
    }
    red[lid] = ss;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int st = BT_RED_WG / 2; st > 0; st >>= 1) {
        if (lid < st) red[lid] += red[lid + st];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float sc = (float)((bt_acc)1 / sqrt(red[0] / (bt_acc)n + (bt_acc)eps));
    for (int i = lid; i < n; i += BT_RED_WG) y[i] = w[i] * (x[i] * sc);
}

/* item (k, head, token): k < n_rot/2 rotates pair k, else copies element n_rot + k - n_rot/2
 * (when not in place) */
__kernel void bt_rope(__global const uchar *Xb, ulong xoff, __global uchar *Yb, ulong yoff,
                      __global const uchar *Fb, ulong foff, int cols, int hd, int n_rot,
                      int halves, int pos0)
{
    const int k = get_global_id(0), h = get_global_id(1), t = get_global_id(2);
    const int nh2 = n_rot / 2;
    const ulong o = (ulong)t * cols + (ulong)h * hd;
    const __global float *x = (const __global float *)(Xb + xoff) + o;
    __global float *y = (__global float *)(Yb + yoff) + o;
    if (k < nh2) {
        const int a = halves ? k : 2 * k, b = halves ? k + nh2 : 2 * k + 1;
        const float th = (float)(pos0 + t) * ((const __global float *)(Fb + foff))[k];
        const float c = cos(th), s = sin(th), x0 = x[a], x1 = x[b];
        y[a] = x0 * c - x1 * s;
        y[b] = x0 * s + x1 * c;
    } else if (x != y) {
        const int j = n_rot + k - nh2;
        y[j] = x[j];
    }
}

/* d = b * silu(a) = b * (a / (1 + exp(-a))) */
__kernel void bt_swiglu(__global const uchar *Ab, ulong aoff, __global const uchar *Bb, ulong boff,
                        __global uchar *Db, ulong doff, ulong n)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    const float g = ((const __global float *)(Ab + aoff))[i];
    const float u = ((const __global float *)(Bb + boff))[i];
    ((__global float *)(Db + doff))[i] = u * (g / (1.0f + exp(-g)));
}

__kernel void bt_add(__global const uchar *Ab, ulong aoff, __global const uchar *Bb, ulong boff,
                     __global uchar *Db, ulong doff, ulong n)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    ((__global float *)(Db + doff))[i] =
        ((const __global float *)(Ab + aoff))[i] + ((const __global float *)(Bb + boff))[i];
}

/* d = max(a, 0)^2 * b (RELU2, ABI 2.2: BitNet b1.58's squared ReLU FFN) */
__kernel void bt_relu2(__global const uchar *Ab, ulong aoff, __global const uchar *Bb, ulong boff,
                       __global uchar *Db, ulong doff, ulong n)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    const float a = ((const __global float *)(Ab + aoff))[i];
    const float g = a > 0.0f ? a : 0.0f;
    ((__global float *)(Db + doff))[i] = ((const __global float *)(Bb + boff))[i] * (g * g);
}

/* a work-group per row (QUANT_ROW, ABI 2.2: BitNet's 8-bit per-token activations): s = 127 /
 * max(max |x|, 1e-5), y = clamp(rint(x s), -128, 127) / s (rint: half to even). NaNs are
 * skipped by the maximum as the cpu reference's `fabsf(x) > mx` skips them; in place is safe
 * (the maximum is complete before any element is written) */
__kernel __attribute__((reqd_work_group_size(BT_RED_WG, 1, 1)))
void bt_quant_row(__global const uchar *Xb, ulong xoff, __global uchar *Yb, ulong yoff, int n)
{
    __local float red[BT_RED_WG];
    const int lid = get_local_id(0);
    const ulong r = get_group_id(0);
    const __global float *x = (const __global float *)(Xb + xoff) + r * n;
    __global float *y = (__global float *)(Yb + yoff) + r * n;
    float mx = 0.0f;
    for (int i = lid; i < n; i += BT_RED_WG) mx = fabs(x[i]) > mx ? fabs(x[i]) : mx;
    red[lid] = mx;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int st = BT_RED_WG / 2; st > 0; st >>= 1) {
        if (lid < st) red[lid] = red[lid + st] > red[lid] ? red[lid + st] : red[lid];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float m = red[0];
    const float s = 127.0f / (m > 1e-5f ? m : 1e-5f);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int i = lid; i < n; i += BT_RED_WG) {
        const float q = rint(x[i] * s);
        y[i] = (q > 127.0f ? 127.0f : q < -128.0f ? -128.0f : q) / s;
    }
}

/* d = a * s: one float multiply per element (SCALE, ABI 2.3) */
__kernel void bt_scale(__global const uchar *Ab, ulong aoff, __global uchar *Db, ulong doff, float s,
                       ulong n)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    ((__global float *)(Db + doff))[i] = ((const __global float *)(Ab + aoff))[i] * s;
}

/* work-group (block of 256 columns, token): q = xq * xs with xs = amax / 127 and
 * xq = round(x / xs) (half away from zero, clamped to +-127, 0 for nan / xs = 0) */
__kernel __attribute__((reqd_work_group_size(BT_RED_WG, 1, 1)))
void bt_actq(__global const uchar *Xb, ulong xoff, __global float *Q, int cols)
{
    __local float red[BT_RED_WG];
    const int lid = get_local_id(0);
    const ulong i = (ulong)get_global_id(1) * cols + get_global_id(0);
    const float x = ((const __global float *)(Xb + xoff))[i];
    red[lid] = fabs(x);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int st = BT_RED_WG / 2; st > 0; st >>= 1) {
        if (lid < st) red[lid] = fmax(red[lid], red[lid + st]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float d = red[0] / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    float v = round(x * id);
    v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
    if (isnan(v)) v = 0.0f;
    Q[i] = v * d;
}

/* one item per point: argmin_k sum_j w_j (x_j - c_kj)^2, lowest k on ties; centroids pass
 * through local memory in tiles of BT_KM_TILE floats (read from global when d is larger) */
#define BT_KM_WG   64
#define BT_KM_TILE 4096

inline bt_acc km_dist_l(const __global float *x, const __local float *c, const __global float *w,
                        int use_w, int d) {
    bt_acc s = 0;
    for (int j = 0; j < d; j++) {
        bt_acc e = (bt_acc)x[j] - (bt_acc)c[j];
        s += (use_w ? (bt_acc)w[j] : (bt_acc)1) * e * e;
    }
    return s;
}

inline bt_acc km_dist_g(const __global float *x, const __global float *c, const __global float *w,
                        int use_w, int d) {
    bt_acc s = 0;
    for (int j = 0; j < d; j++) {
        bt_acc e = (bt_acc)x[j] - (bt_acc)c[j];
        s += (use_w ? (bt_acc)w[j] : (bt_acc)1) * e * e;
    }
    return s;
}

__kernel __attribute__((reqd_work_group_size(BT_KM_WG, 1, 1)))
void bt_kmeans(__global const uchar *Xb, ulong xoff, __global const uchar *Cb, ulong coff,
               __global const uchar *Wb, ulong wtoff, int use_w, int n, int d, int K,
               __global uchar *Ob, ulong ooff)
{
    __local float ct[BT_KM_TILE];
    const int i = get_global_id(0), lid = get_local_id(0);
    const __global float *x = (const __global float *)(Xb + xoff) + (ulong)min(i, n - 1) * d;
    const __global float *C = (const __global float *)(Cb + coff);
    const __global float *w = use_w ? (const __global float *)(Wb + wtoff) : C;
    bt_acc best = INFINITY;
    int bk = 0;
    if (d > BT_KM_TILE) {
        for (int k = 0; k < K && i < n; k++) {
            bt_acc s = km_dist_g(x, C + (ulong)k * d, w, use_w, d);
            if (s < best) { best = s; bk = k; }
        }
    } else {
        const int kt = BT_KM_TILE / d;
        for (int k0 = 0; k0 < K; k0 += kt) {
            const int nk = min(kt, K - k0);
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int j = lid; j < nk * d; j += BT_KM_WG) ct[j] = C[(ulong)k0 * d + j];
            barrier(CLK_LOCAL_MEM_FENCE);
            if (i < n)
                for (int k = 0; k < nk; k++) {
                    bt_acc s = km_dist_l(x, ct + k * d, w, use_w, d);
                    if (s < best) { best = s; bk = k0 + k; }
                }
        }
    }
    if (i < n) ((__global int *)(Ob + ooff))[i] = bk;
}
