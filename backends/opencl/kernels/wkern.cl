/* wkern.cl - the other weight kernels of a format program (fmt.cl):
 *   bt_dequant  Y[r, :] = decode(W[ids ? ids[r] : r, :])          (DEQUANT, GET_ROWS)
 *   bt_gemm     Y[t, r] = sum_c W[r, c] X[t, c] for many tokens: a work-group computes a
 *               BT_TM rows x BT_TN tokens tile; per step of BT_KC columns it decodes the weight
 *               tile once into local memory (shared by all BT_TN tokens) next to the activation
 *               tile, then each thread accumulates a 4 x 4 block of outputs. */
#define BT_TM 64
#define BT_TN 64
#define BT_KC 32
#define BT_LDW (BT_TM + 4)
#define BT_LDX (BT_TN + 4)

__kernel void bt_dequant(__global const uchar *W, ulong woff, ulong rb, int cols,
                         __global const int *ids, int use_ids, __global uchar *Yb, ulong yoff)
{
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= cols) return;
    const int src = use_ids ? ids[r] : r;
    __global float *Y = (__global float *)(Yb + yoff);
    Y[(ulong)r * cols + c] = dec_elem(W + woff + (ulong)src * rb, c);
}

__kernel __attribute__((reqd_work_group_size(16, 16, 1)))
void bt_gemm(__global const uchar *W, ulong woff, ulong rb, int rows, int cols,
             __global const uchar *Xb, ulong xoff, int ntok, __global uchar *Yb, ulong yoff)
{
    __local float Ws[BT_KC * BT_LDW];
    __local float Xs[BT_KC * BT_LDX];
    const int tx = get_local_id(0), ty = get_local_id(1), lid = ty * 16 + tx;
    const int row0 = get_group_id(0) * BT_TM, tok0 = get_group_id(1) * BT_TN;
    const __global float *X = (const __global float *)(Xb + xoff);
    __global float *Y = (__global float *)(Yb + yoff);
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    for (int k0 = 0; k0 < cols; k0 += BT_KC) {
        for (int i = 0; i < BT_TM * BT_KC / 256; i++) {
            int idx = lid + 256 * i, r = idx / BT_KC, c = idx - r * BT_KC;
            int rr = row0 + r, cc = k0 + c;
            float v = 0.0f;
            if (rr < rows && cc < cols) v = dec_elem(W + woff + (ulong)rr * rb, cc);
            Ws[c * BT_LDW + r] = v;
        }
        for (int i = 0; i < BT_TN * BT_KC / 256; i++) {
            int idx = lid + 256 * i, t = idx / BT_KC, c = idx - t * BT_KC;
            int tt = tok0 + t, cc = k0 + c;
            Xs[c * BT_LDX + t] = (tt < ntok && cc < cols) ? X[(ulong)tt * cols + cc] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < BT_KC; k++) {
            float4 a = vload4(0, Ws + k * BT_LDW + 4 * tx);
            float4 b = vload4(0, Xs + k * BT_LDX + 4 * ty);
            float av[4] = {a.s0, a.s1, a.s2, a.s3}, bv[4] = {b.s0, b.s1, b.s2, b.s3};
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int j = 0; j < 4; j++) {
        int t = tok0 + 4 * ty + j;
        if (t >= ntok) break;
        for (int i = 0; i < 4; i++) {
            int r = row0 + 4 * tx + i;
            if (r < rows) Y[(ulong)t * rows + r] = acc[i][j];
        }
    }
}
