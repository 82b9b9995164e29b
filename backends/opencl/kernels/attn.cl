/* attn.cl - causal grouped-query attention over an f32 KV cache (BT_OP_ATTN).
 * bt_attn: one work-group of BT_AW threads per (segment of positions, query head, token). The
 * query sits in local memory; positions go in chunks of BT_AW, one per thread for the score
 * q.k * scale, with an online softmax (running max m, running sum l, output rescaled by
 * exp(m_old - m_new)). For the weighted sum of values the threads are ng groups of dl lanes
 * (dl = power of two >= head_dim, at most BT_AW): lane d owns dims d, d + dl, ... (coalesced
 * reads of a value row) and group g takes chunk positions g, g + ng, ...; groups are summed at
 * the end. With one segment the kernel writes the output; with several (long contexts and few
 * queries, to fill the device) it writes (m, l, o[head_dim]) per segment and bt_attn_combine
 * merges them. head_dim <= BT_AW * BT_DPT. */
#define BT_AW  128
#define BT_DPT 4
#define BT_HDMAX (BT_AW * BT_DPT)

__kernel __attribute__((reqd_work_group_size(BT_AW, 1, 1)))
void bt_attn(__global const uchar *Qb, ulong qoff, __global const uchar *Kb, ulong koff,
             __global const uchar *Vb, ulong voff, __global uchar *Ob, ulong ooff,
             __global float *part, int hd, int nh, int nkv, int pos0, float scale, int seg_len,
             int nseg, int dl)
{
    __local float qs[BT_HDMAX];
    __local float sc[BT_AW];
    __local float redm[BT_AW];
    __local float reds[BT_AW];
    __local float ob[BT_AW * BT_DPT];
    const int lid = get_local_id(0);
    const int seg = get_group_id(0), h = get_group_id(1), t = get_group_id(2);
    const int kvh = h / (nh / nkv);
    const int ldq = nh * hd, ldk = nkv * hd;
    const __global float *Q = (const __global float *)(Qb + qoff) + (ulong)t * ldq + (ulong)h * hd;
    const __global float *K = (const __global float *)(Kb + koff) + (ulong)kvh * hd;
    const __global float *V = (const __global float *)(Vb + voff) + (ulong)kvh * hd;
    const int npos = pos0 + t + 1;
    const int p_begin = seg * seg_len, p_end = min(npos, p_begin + seg_len);
    const int ng = BT_AW / dl, g = lid / dl, dlane = lid - g * dl;

    for (int d = lid; d < hd; d += BT_AW) qs[d] = Q[d];
    barrier(CLK_LOCAL_MEM_FENCE);

    float o[BT_DPT];
    for (int i = 0; i < BT_DPT; i++) o[i] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int c0 = p_begin; c0 < p_end; c0 += BT_AW) {
        const int p = c0 + lid;
        float s = -INFINITY;
        if (p < p_end) {
            const __global float *kr = K + (ulong)p * ldk;
            float4 a4 = (float4)(0.0f);
            int d = 0;
            for (; d + 4 <= hd; d += 4) a4 = fma(vload4(0, kr + d), vload4(0, qs + d), a4);
            float dot = (a4.s0 + a4.s2) + (a4.s1 + a4.s3);
            for (; d < hd; d++) dot = fma(qs[d], kr[d], dot);
            s = dot * scale;
        }
        redm[lid] = s;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int st = BT_AW / 2; st > 0; st >>= 1) {
            if (lid < st) redm[lid] = fmax(redm[lid], redm[lid + st]);
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        const float mn = fmax(m, redm[0]);
        const float alpha = exp(m - mn);
        const float e = p < p_end ? exp(s - mn) : 0.0f;
        sc[lid] = e;
        reds[lid] = e;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int st = BT_AW / 2; st > 0; st >>= 1) {
            if (lid < st) reds[lid] += reds[lid + st];
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        l = l * alpha + reds[0];
        m = mn;
        const int nc = min(BT_AW, p_end - c0);
        for (int i = 0; i < BT_DPT; i++) o[i] *= alpha;
        for (int j = g; j < nc; j += ng) {
            const float wj = sc[j];
            const __global float *vr = V + (ulong)(c0 + j) * ldk;
            for (int i = 0; i < BT_DPT; i++) {
                const int d = dlane + i * dl;
                if (d < hd) o[i] = fma(wj, vr[d], o[i]);
            }
        }
    }

    /* sum the ng groups' partial outputs */
    for (int i = 0; i < BT_DPT; i++) ob[i * BT_AW + lid] = o[i];
    barrier(CLK_LOCAL_MEM_FENCE);
    if (g == 0) {
        for (int i = 0; i < BT_DPT; i++) {
            const int d = dlane + i * dl;
            if (d >= hd) break;
            float v = 0.0f;
            for (int gg = 0; gg < ng; gg++) v += ob[i * BT_AW + gg * dl + dlane];
            if (nseg == 1) {
                __global float *O = (__global float *)(Ob + ooff) + (ulong)t * ldq + (ulong)h * hd;
                O[d] = v / l;
            } else {
                __global float *P = part + (((ulong)t * nh + h) * nseg + seg) * (hd + 2);
                if (d == 0) { P[0] = m; P[1] = l; }
                P[2 + d] = v;
            }
        }
    }
}

/* item (dim, head, token): merge the segments' (m, l, o) */
__kernel void bt_attn_combine(__global const float *part, __global uchar *Ob, ulong ooff, int hd,
                              int nh, int nseg)
{
    const int d = get_global_id(0), h = get_global_id(1), t = get_global_id(2);
    if (d >= hd) return;
    const __global float *P = part + ((ulong)t * nh + h) * nseg * (hd + 2);
    float M = -INFINITY;
    for (int s = 0; s < nseg; s++) M = fmax(M, P[s * (hd + 2)]);
    float num = 0.0f, den = 0.0f;
    for (int s = 0; s < nseg; s++) {
        const float ms = P[s * (hd + 2)];
        if (ms == -INFINITY) continue;
        const float w = exp(ms - M);
        num = fma(w, P[s * (hd + 2) + 2 + d], num);
        den = fma(w, P[s * (hd + 2) + 1], den);
    }
    __global float *O = (__global float *)(Ob + ooff) + (ulong)t * nh * hd + (ulong)h * hd;
    O[d] = num / den;
}
