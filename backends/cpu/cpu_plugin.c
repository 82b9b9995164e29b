/* cpu_plugin.c - descriptor, open/close and score of the CPU backends. Built twice: as "cpu"
 * (scalar) and, with BT_CPU_AVX2 defined, as "cpu-avx2". Compiled without -mavx2. */
#include "cpu_kern.h"

#ifdef BT_CPU_AVX2
#define BT_CPU_NAME  "cpu-avx2"
#define BT_CPU_ISA   (&bt_cpu_isa_avx2)
#define BT_CPU_DESC  "CPU kernels, AVX2+FMA+F16C (ternary maddubs int8 path), scalar fallback"
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
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
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
#else
    return BT_CPU_SCORE;
#endif
}

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
    return BT_OK;
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
    .options     = NULL,
    .iface       = &cpu_iface,
    .ctx_size    = sizeof(struct bt_cpu_ctx),
};

BT_PLUGIN_DEFINE(cpu_desc)
