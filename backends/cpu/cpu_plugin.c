/* cpu_plugin.c - descriptor, open/close and score of the CPU backends. Built as "cpu"
 * (scalar) and, with BT_CPU_AVX2 defined, as "cpu-avx2" (x86-64) or, with BT_CPU_NEON, as
 * "cpu-neon" (AArch64). Compiled without ISA flags. */
#include "cpu_kern.h"

#include <string.h>
#ifdef BT_CPU_NEON
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20) /* Linux arm64 hwcap bit of the dot-product instructions */
#endif
#endif

#ifdef BT_CPU_AVX2
#define BT_CPU_NAME  "cpu-avx2"
#define BT_CPU_ISA   (&bt_cpu_isa_avx2)
#define BT_CPU_DESC  "CPU kernels, AVX2+FMA+F16C (ternary maddubs int8 path), scalar fallback"
#define BT_CPU_SCORE 10
#elif defined(BT_CPU_NEON)
#define BT_CPU_NAME  "cpu-neon"
#define BT_CPU_ISA   (&bt_cpu_isa_neon)
#define BT_CPU_DESC  "CPU kernels, AArch64 NEON (ternary int8 path with sdot where the CPU has " \
                     "dotprod), scalar fallback"
#define BT_CPU_SCORE 10
#else
#define BT_CPU_NAME  "cpu"
#define BT_CPU_ISA   (&bt_cpu_isa_ref)
#define BT_CPU_DESC  "portable scalar CPU kernels (the reference semantics)"
#define BT_CPU_SCORE 1
#endif

/* 0 when the CPU (or the OS, for AVX state) lacks a feature the kernels were compiled for */
static int cpu_score(void) {
#ifdef BT_CPU_AVX2
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("bmi2"))
        return 0;
    /* CPUID.1:ECX bit 29 (F16C; clang's __builtin_cpu_supports has no "f16c"), bit 27
     * (OSXSAVE) and XCR0 bits 1-2: the OS saves SSE and AVX state */
    unsigned a = 1, b = 0, c = 0, d = 0;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    if (!(c & (1u << 29)) || !(c & (1u << 27))) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6u) != 6u) return 0;
    return BT_CPU_SCORE;
#else
    return 0;
#endif
#elif defined(BT_CPU_NEON)
    /* NEON (ASIMD) is part of every AArch64 CPU; dotprod adds one to the score */
    return BT_CPU_SCORE + ((getauxval(AT_HWCAP) & HWCAP_ASIMDDP) ? 1 : 0);
#else
    return BT_CPU_SCORE;
#endif
}

#ifdef BT_CPU_NEON
static const struct bt_option cpu_options[] = {
    {"dotprod", BT_OPT_ENUM, "auto", 0, 0, "auto|on|off",
     "int8 kernels: auto uses the ARMv8.2 dot-product instructions where the CPU has them "
     "(HWCAP_ASIMDDP), off forces the plain NEON path, on fails without them"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

/* the kernel table the dotprod option and the CPU choose */
static bt_status neon_isa(struct bt_cpu_ctx *c, const bt_optset *opts, bt_err *err) {
    const char *v = opts ? c->host->opt_str(opts, "dotprod") : NULL;
    int have = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
    if (v && !strcmp(v, "on") && !have)
        return c->host->set_error(err, BT_E_UNSUPPORTED, "cpu-neon: dotprod = on, but this CPU "
                                  "lacks the ARMv8.2 dot-product instructions (HWCAP_ASIMDDP)");
    c->isa = have && !(v && !strcmp(v, "off")) ? &bt_cpu_isa_neon_dot : &bt_cpu_isa_neon;
    return BT_OK;
}
#else
#define cpu_options NULL
#endif

static bt_status cpu_open(void *ctx, const struct bt_host *host, const bt_optset *opts, bt_err *err) {
    struct bt_cpu_ctx *c = ctx;
    (void)opts;
    c->host = host;
    c->isa = BT_CPU_ISA;
#ifdef BT_CPU_AVX2
    c->attn = bt_cpu_attn_avx2;
#endif
    if (!cpu_score())
        return host->set_error(err, BT_E_UNSUPPORTED, "%s: this CPU lacks the required features",
                               BT_CPU_NAME);
#ifdef BT_CPU_NEON
    return neon_isa(c, opts, err);
#else
    return BT_OK;
#endif
}

static void cpu_close(void *ctx) { bt_cpu_ctx_free(ctx); }

static const struct bt_backend_i cpu_iface = {
    .struct_size = sizeof(struct bt_backend_i),
    .score       = cpu_score,
    .open        = cpu_open,
    .close       = cpu_close,
    .device_info = bt_cpu_device_info,
    .buf_alloc   = bt_cpu_buf_alloc,
    .buf_free    = bt_cpu_buf_free,
    .buf_write   = bt_cpu_buf_write,
    .buf_read    = bt_cpu_buf_read,
    .supports_op = bt_cpu_supports_op,
    .run         = bt_cpu_run,
    .buf_wrap    = bt_cpu_buf_wrap,
};

static const struct bt_plugin cpu_desc = {
    .abi_version = BT_ABI_VERSION,
    .struct_size = sizeof(struct bt_plugin),
    .name        = BT_CPU_NAME,
    .version     = "0.1.0",
    .kind        = BT_KIND_BACKEND,
    .caps        = 0,
    .description = BT_CPU_DESC,
    .options     = cpu_options,
    .iface       = &cpu_iface,
    .ctx_size    = sizeof(struct bt_cpu_ctx),
};

BT_PLUGIN_DEFINE(cpu_desc)
