/* common.cl - helpers shared by every OpenCL program of the bt backend: fast small-int -> float
 * (no int->float conversion instruction), fp16/bf16 loads, unaligned-safe 32-bit code loads.
 * Build options: -DBT_FP64 when the device has cl_khr_fp64. */
#ifdef BT_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

/* float of an unsigned integer u < 2^23: OR into the mantissa of 2^23, subtract 2^23 (exact) */
#define BT_U2F(u)  (as_float(0x4B000000u | (uint)(u)) - 8388608.0f)
/* ternary code c in {0, 1, 2} -> t = c - 1 as float (exact) */
#define BT_TERN(c) (as_float(0x4B000000u | (uint)(c)) - 8388609.0f)
/* signed byte stored as unsigned b (0..255) -> (float)(int8_t)b (exact) */
#define BT_I8F(b)  (as_float(0x4B000000u | ((uint)(b) ^ 0x80u)) - 8388736.0f)

/* fp16 element i of p (p 2-byte aligned) */
inline float bt_h2f(const __global uchar *p, int i) {
    return vload_half(i, (const __global half *)p);
}

/* 4 bytes at p (p 2-byte aligned) as a little-endian uint */
inline uint bt_ld32(const __global uchar *p) {
    ushort2 h = vload2(0, (const __global ushort *)p);
    return (uint)h.x | ((uint)h.y << 16);
}
