/* gemv.cl - batch-1..8 matrix-vector product Y[t, r] = sum_c W[r, c] X[t, c] over a weight
 * format of fmt.cl. A template: the program includes this text once per token count with
 * BT_NT (1, 2, 4, 8) and BT_GEMV_NAME defined. One work-group of BT_TPR threads computes RPT
 * rows (BT_RPT_SMALL for 1-2 tokens, BT_RPT for more: each activation load serves RPT rows) for
 * BT_NT tokens. Thread i walks units i, i + BT_TPR, ... of the rows (adjacent threads read
 * adjacent bytes), decodes each unit once per row, scales the unit's dot product by the block
 * factor unit_dec returns, and the partial sums meet in a local-memory tree. */
#if BT_NT <= 2
#define RPT BT_RPT_SMALL
#else
#define RPT BT_RPT
#endif

__kernel __attribute__((reqd_work_group_size(BT_TPR, 1, 1)))
void BT_GEMV_NAME(__global const uchar *W, ulong woff, ulong rb, int rows, int cols,
                  __global const uchar *Xb, ulong xoff, __global uchar *Yb, ulong yoff)
{
    __local float red[RPT * BT_NT * BT_TPR];
    const int lid = get_local_id(0);
    const int r0 = get_group_id(0) * RPT;
    const int nunits = (cols / BE) * UPB;
    const __global float *X = (const __global float *)(Xb + xoff);
    __global float *Y = (__global float *)(Yb + yoff);
    const __global uchar *wr[RPT];
    float acc[RPT][BT_NT];
    for (int r = 0; r < RPT; r++) {
        wr[r] = W + woff + (ulong)min(r0 + r, rows - 1) * rb;
        for (int t = 0; t < BT_NT; t++) acc[r][t] = 0.0f;
    }
    for (int u = lid; u < nunits; u += BT_TPR) {
        const int b = u / UPB, s = u - b * UPB;
#if BT_NT == 1
        float xv[UNIT];
        unit_x(X + (ulong)b * BE, s, xv);
        for (int r = 0; r < RPT; r++) {
            float w[UNIT];
            const float f = unit_dec(wr[r] + (ulong)b * BB, s, w);
            float a = 0.0f;
            for (int k = 0; k < UNIT; k++) a = fma(w[k], xv[k], a);
            acc[r][0] = fma(f, a, acc[r][0]);
        }
#else
        float w[RPT][UNIT], f[RPT];
        for (int r = 0; r < RPT; r++) f[r] = unit_dec(wr[r] + (ulong)b * BB, s, w[r]);
        for (int t = 0; t < BT_NT; t++) {
            float xv[UNIT];
            unit_x(X + (ulong)t * cols + (ulong)b * BE, s, xv);
            for (int r = 0; r < RPT; r++) {
                float a = 0.0f;
                for (int k = 0; k < UNIT; k++) a = fma(w[r][k], xv[k], a);
                acc[r][t] = fma(f[r], a, acc[r][t]);
            }
        }
#endif
    }
    for (int r = 0; r < RPT; r++)
        for (int t = 0; t < BT_NT; t++) red[(r * BT_NT + t) * BT_TPR + lid] = acc[r][t];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int st = BT_TPR / 2; st > 0; st >>= 1) {
        if (lid < st)
            for (int o = 0; o < RPT * BT_NT; o++) red[o * BT_TPR + lid] += red[o * BT_TPR + lid + st];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid < RPT * BT_NT) {
        const int r = lid / BT_NT, t = lid - r * BT_NT;
        if (r0 + r < rows) Y[(ulong)t * rows + r0 + r] = red[lid * BT_TPR];
    }
}
#undef RPT
