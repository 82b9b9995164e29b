/* cpu_neon_q8_dot.c - the int8 kernels of cpu_neon_q8.c built with the ARMv8.2 dot-product
 * instructions (-march=armv8.2-a+dotprod; sdot into int32 lanes). Only run after open() found
 * HWCAP_ASIMDDP. */
#define BT_NEON_DOT 1
#include "cpu_neon_q8.c"
