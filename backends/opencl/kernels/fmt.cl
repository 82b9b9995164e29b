/* fmt.cl - weight formats as the matmul / dequant kernels see them. One format per program,
 * chosen by -DBT_KIND (and its geometry defines); every format provides
 *   BE, BB          elements and bytes of one block (a row is cols / BE blocks)
 *   UNIT, UPB       elements a GEMV thread decodes per step, and such units per block
 *   dec_elem(row,c) element c of a row as f32, the same arithmetic as bt_to_f32
 *   unit_dec(blk,s,w)  unit s of block blk: w[] (0 for padding) times the returned factor
 *                      are its UNIT weights (the factor is the block scale where one applies)
 *   unit_x(xb,s,xv)    the UNIT activations they multiply (xb: the block's first column; 0 for
 *                      padding, so 0 * 0 never meets an inf/nan activation)
 * Kinds: 0 F32, 1 F16, 2 BF16 (VEC = 1 or 4 elements per unit), 3 Q8_0, 4 Q4_0, 5 TQ1_0,
 * 6 two-bit interleaved ternary planes (TQ2_0, MTQ layout 0: NP, BLK, CODE_OFF, SCALE_OFF),
 * 7 MTQ layout 1 (compact base-3: NP, BLK). Blocks are 2-byte aligned (the view offset is). */

#if BT_KIND <= 2 /* ---- F32 / F16 / BF16 ------------------------------------------------------ */
#define BE   VEC
#define UNIT VEC
#define UPB  1
#if BT_KIND == 0
#define ESZ 4
#else
#define ESZ 2
#endif
#define BB (ESZ * VEC)

inline float dec_elem(const __global uchar *row, int c) {
#if BT_KIND == 0
    return ((const __global float *)row)[c];
#elif BT_KIND == 1
    return vload_half(c, (const __global half *)row);
#else
    return as_float((uint)((const __global ushort *)row)[c] << 16);
#endif
}

inline float unit_dec(const __global uchar *blk, int s, float *w) {
#if VEC == 4
#if BT_KIND == 0
    float4 v = vload4(0, (const __global float *)blk);
#elif BT_KIND == 1
    float4 v = vload_half4(0, (const __global half *)blk);
#else
    float4 v = as_float4(convert_uint4(vload4(0, (const __global ushort *)blk)) << 16);
#endif
    w[0] = v.s0; w[1] = v.s1; w[2] = v.s2; w[3] = v.s3;
#else
    w[0] = dec_elem(blk, 0);
#endif
    return 1.0f;
}

inline void unit_x(const __global float *xb, int s, float *xv) {
#if VEC == 4
    float4 v = vload4(0, xb);
    xv[0] = v.s0; xv[1] = v.s1; xv[2] = v.s2; xv[3] = v.s3;
#else
    xv[0] = xb[0];
#endif
}

#elif BT_KIND == 3 /* ---- Q8_0: f16 d, i8 qs[32] ----------------------------------------------- */
#define BE   32
#define BB   34
#define UNIT 8
#define UPB  4

inline float dec_elem(const __global uchar *row, int c) {
    const __global uchar *b = row + (size_t)(c >> 5) * BB;
    return bt_h2f(b, 0) * (float)as_char(b[2 + (c & 31)]);
}

inline float unit_dec(const __global uchar *blk, int s, float *w) {
    uint v0 = bt_ld32(blk + 2 + 8 * s), v1 = bt_ld32(blk + 6 + 8 * s);
    for (int j = 0; j < 4; j++) {
        w[j] = BT_I8F((v0 >> (8 * j)) & 0xffu);
        w[4 + j] = BT_I8F((v1 >> (8 * j)) & 0xffu);
    }
    return bt_h2f(blk, 0);
}

inline void unit_x(const __global float *xb, int s, float *xv) {
    float4 a = vload4(0, xb + 8 * s), b = vload4(0, xb + 8 * s + 4);
    xv[0] = a.s0; xv[1] = a.s1; xv[2] = a.s2; xv[3] = a.s3;
    xv[4] = b.s0; xv[5] = b.s1; xv[6] = b.s2; xv[7] = b.s3;
}

#elif BT_KIND == 4 /* ---- Q4_0: f16 d, u8 qs[16] (low nibbles 0..15, high 16..31) ------------- */
#define BE   32
#define BB   18
#define UNIT 8
#define UPB  4

inline float dec_elem(const __global uchar *row, int c) {
    const __global uchar *b = row + (size_t)(c >> 5) * BB;
    int e = c & 31;
    uint q = b[2 + (e & 15)];
    q = e < 16 ? (q & 15u) : (q >> 4);
    return bt_h2f(b, 0) * (float)((int)q - 8);
}

inline float unit_dec(const __global uchar *blk, int s, float *w) {
    uint v = bt_ld32(blk + 2 + 4 * s);
    for (int j = 0; j < 4; j++) { /* q - 8 without an int -> float conversion */
        w[j] = as_float(0x4B000000u | ((v >> (8 * j)) & 15u)) - 8388616.0f;
        w[4 + j] = as_float(0x4B000000u | ((v >> (8 * j + 4)) & 15u)) - 8388616.0f;
    }
    return bt_h2f(blk, 0);
}

inline void unit_x(const __global float *xb, int s, float *xv) {
    float4 a = vload4(0, xb + 4 * s), b = vload4(0, xb + 16 + 4 * s);
    xv[0] = a.s0; xv[1] = a.s1; xv[2] = a.s2; xv[3] = a.s3;
    xv[4] = b.s0; xv[5] = b.s1; xv[6] = b.s2; xv[7] = b.s3;
}

#elif BT_KIND == 5 /* ---- TQ1_0: qs[48] (5 trits/byte), qh[4] (4 trits/byte), f16 d ----------- */
/* unit s = byte s of the block (s < 52); trit k of byte s is element
 * s + 32k (s < 32), 128 + s + 16k (s < 48), 192 + s + 4k (s < 52, k < 4) */
#define BE   256
#define BB   54
#define UNIT 5
#define UPB  52

/* trit k (first = most significant) of a TQ1 byte b, as code 0..2 */
inline uint tq1_code(uint b, int k) {
    uint pw = k == 0 ? 1u : k == 1 ? 3u : k == 2 ? 9u : k == 3 ? 27u : 81u;
    return (((b * pw) & 0xffu) * 3u) >> 8;
}

inline float dec_elem(const __global uchar *row, int c) {
    const __global uchar *b = row + (size_t)(c >> 8) * BB;
    int e = c & 255, s, k;
    if (e < 160) { s = e & 31; k = e >> 5; }
    else if (e < 240) { s = 32 + ((e - 160) & 15); k = (e - 160) >> 4; }
    else { s = 48 + ((e - 240) & 3); k = (e - 240) >> 2; }
    return bt_h2f(b, 26) * BT_TERN(tq1_code(b[s], k));
}

inline int tq1_col(int s, int k) {
    return s < 32 ? s + 32 * k : s < 48 ? 128 + s + 16 * k : 192 + s + 4 * k;
}

inline float unit_dec(const __global uchar *blk, int s, float *w) {
    uint b = blk[s];
    for (int k = 0; k < 5; k++) w[k] = (s < 48 || k < 4) ? BT_TERN(tq1_code(b, k)) : 0.0f;
    return bt_h2f(blk, 26);
}

inline void unit_x(const __global float *xb, int s, float *xv) {
    for (int k = 0; k < 5; k++) xv[k] = (s < 48 || k < 4) ? xb[tq1_col(s, k)] : 0.0f;
}

#elif BT_KIND == 6 /* ---- 2-bit interleaved planes: TQ2_0 and MTQ layout 0 --------------------- */
/* chunks of CH = min(BLK, 128) elements, each NP plane slices of S = CH/4 bytes; element e of a
 * chunk: byte e % S of its slice, bits 2*(e / S). Unit s = 4 bytes (16 elements) of every slice. */
#define BE   BLK
#define CH   (BLK < 128 ? BLK : 128)
#define S    (CH / 4)
#define SPC  (S / 4)
#define BB   (2 * NP + NP * BLK / 4)
#define UNIT 16
#define UPB  (BLK / 16)

inline float dec_elem(const __global uchar *row, int c) {
    const __global uchar *b = row + (size_t)(c / BLK) * BB;
    int e = c % BLK, ch = e / CH, ee = e - ch * CH, l = ee / S, j = ee - l * S;
    const __global uchar *q = b + CODE_OFF + ch * NP * S + j;
#if SCALE_OFF != 0 /* TQ2_0: d * t like bt_to_f32 (MTQ sums from +0: the sign of a 0 differs) */
    return bt_h2f(b + SCALE_OFF, 0) * BT_TERN((q[0] >> (2 * l)) & 3u);
#else
    float v = 0.0f;
    for (int p = 0; p < NP; p++) v += bt_h2f(b + SCALE_OFF, p) * BT_TERN((q[p * S] >> (2 * l)) & 3u);
    return v;
#endif
}

inline float unit_dec(const __global uchar *blk, int s, float *w) {
    int ch = s / SPC, m0 = 4 * (s - ch * SPC);
    const __global uchar *q = blk + CODE_OFF + ch * NP * S + m0;
#if NP == 1
    uint v = bt_ld32(q);
    for (int l = 0; l < 4; l++)
        for (int j = 0; j < 4; j++) w[4 * l + j] = BT_TERN((v >> (8 * j + 2 * l)) & 3u);
    return bt_h2f(blk + SCALE_OFF, 0);
#else
    for (int k = 0; k < 16; k++) w[k] = 0.0f;
    for (int p = 0; p < NP; p++) {
        float a = bt_h2f(blk + SCALE_OFF, p);
        uint v = bt_ld32(q + p * S);
        for (int l = 0; l < 4; l++)
            for (int j = 0; j < 4; j++) w[4 * l + j] += a * BT_TERN((v >> (8 * j + 2 * l)) & 3u);
    }
    return 1.0f;
#endif
}

inline void unit_x(const __global float *xb, int s, float *xv) {
    int ch = s / SPC, m0 = 4 * (s - ch * SPC);
    const __global float *x = xb + ch * CH + m0;
    for (int l = 0; l < 4; l++) {
        float4 v = vload4(0, x + l * S);
        xv[4 * l] = v.s0; xv[4 * l + 1] = v.s1; xv[4 * l + 2] = v.s2; xv[4 * l + 3] = v.s3;
    }
}

#elif BT_KIND == 7 /* ---- MTQ layout 1: G = ceil(BLK/5) groups of NP bytes, 5 base-3 digits ------ */
#define BE   BLK
#define G    ((BLK + 4) / 5)
#define BB   (2 * NP + NP * G)
#define UNIT 5
#define UPB  G

inline float dec_elem(const __global uchar *row, int c) {
    const __global uchar *b = row + (size_t)(c / BLK) * BB;
    int e = c % BLK, g = e / 5, k = e - 5 * g;
    uint pw = k == 0 ? 1u : k == 1 ? 3u : k == 2 ? 9u : k == 3 ? 27u : 81u;
    const __global uchar *q = b + 2 * NP + g * NP;
    float v = 0.0f;
    for (int p = 0; p < NP; p++) v += bt_h2f(b, p) * BT_TERN((q[p] / pw) % 3u);
    return v;
}

inline float unit_dec(const __global uchar *blk, int s, float *w) {
    const __global uchar *q = blk + 2 * NP + s * NP;
    for (int k = 0; k < 5; k++) w[k] = 0.0f;
    for (int p = 0; p < NP; p++) {
        float a = bt_h2f(blk, p);
        uint v = q[p];
        for (int k = 0; k < 5; k++) {
            uint v3 = v / 3u;
            w[k] += a * BT_TERN(v - 3u * v3);
            v = v3;
        }
    }
    for (int k = 0; k < 5; k++)
        if (5 * s + k >= BLK) w[k] = 0.0f;
    return 1.0f;
}

inline void unit_x(const __global float *xb, int s, float *xv) {
    for (int k = 0; k < 5; k++) xv[k] = 5 * s + k < BLK ? xb[5 * s + k] : 0.0f;
}

#else
#error "unknown BT_KIND"
#endif
