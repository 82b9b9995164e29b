/* bt_formats.c - formats as data: the descriptors of the built-in storage formats (geometry,
 * decode, encode, GGUF mapping), the table plugins' formats are registered into, and the generic
 * calls (row bytes, decode, encode, names) that go through it. */
#include "bt_types.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- F16C fast paths (x86-64; same IEEE round-to-nearest-even results as the scalar code) -- */
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define BT_HAVE_F16C_PATH 1
/* AVX + F16C through CPUID.1:ECX (bits 28, 29) and the OS saving AVX state (OSXSAVE bit 27,
 * XCR0 bits 1-2): what gcc's __builtin_cpu_supports("avx") && ("f16c") test, in a form clang
 * accepts too (clang's builtin has no "f16c"). */
static int has_f16c(void) {
    static int v = -1;
    if (v < 0) {
        unsigned a, b, c, d, lo, hi;
        v = 0;
        if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27)) && (c & (1u << 28)) &&
            (c & (1u << 29))) {
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            v = (lo & 6u) == 6u;
        }
    }
    return v;
}
__attribute__((target("avx,f16c"))) static int64_t f32_to_f16_f16c(const float *src, uint8_t *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(dst + 2 * i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    return i;
}
__attribute__((target("avx,f16c"))) static int64_t f16_to_f32_f16c(const uint8_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i))));
    return i;
}
#endif

/* ---- geometry ----------------------------------------------------------------------------------- */
#define FIXED_GEOM(fn, B, BB)                                                                 \
    static int fn(const struct bt_tfmt *f, uint32_t *b, uint32_t *bb) {                        \
        if (f->planes || f->block || f->layout) return 0;                                      \
        *b = (B);                                                                              \
        *bb = (BB);                                                                            \
        return 1;                                                                              \
    }
FIXED_GEOM(g_1x4, 1, 4)
FIXED_GEOM(g_1x2, 1, 2)
FIXED_GEOM(g_1x1, 1, 1)
FIXED_GEOM(g_1x8, 1, 8)
FIXED_GEOM(g_q8_0, 32, 34)
FIXED_GEOM(g_q4_0, 32, 18)
FIXED_GEOM(g_tq1, 256, 54)
FIXED_GEOM(g_tq2, 256, 66)
FIXED_GEOM(g_q8_k, 256, 292)

static int g_vq(const struct bt_tfmt *f, uint32_t *b, uint32_t *bb) {
    if (!bt_vq_params_ok(f)) return 0;
    *b = 1; /* rows are not a whole number of blocks: row_bytes() gives their size */
    *bb = 1;
    return 1;
}

static int g_mtq(const struct bt_tfmt *f, uint32_t *b, uint32_t *bb) {
    size_t n = bt_mtq_block_bytes(f->planes, f->block, f->layout);
    if (!n) return 0;
    *b = f->block;
    *bb = (uint32_t)n;
    return 1;
}

/* ---- decoders ---------------------------------------------------------------------------------- */
#define DEC(fn) static bt_status fn(const struct bt_tfmt *fmt, const void *const *parts, const void *src, float *dst, int64_t n)

DEC(d_f32) { (void)fmt; (void)parts; memcpy(dst, src, (size_t)n * 4); return BT_OK; }

DEC(d_f16) {
    const uint8_t *s = src;
    int64_t i0 = 0;
    (void)fmt; (void)parts;
#ifdef BT_HAVE_F16C_PATH
    if (has_f16c()) i0 = f16_to_f32_f16c(s, dst, n);
#endif
    for (int64_t i = i0; i < n; i++) dst[i] = bt_fp16_to_f32((uint16_t)(s[2 * i] | (s[2 * i + 1] << 8)));
    return BT_OK;
}

DEC(d_bf16) {
    const uint8_t *s = src;
    uint32_t *d32 = (uint32_t *)dst; /* bf16 -> f32 is a 16-bit shift (little-endian data) */
    (void)fmt; (void)parts;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        d32[i] = (uint32_t)h << 16;
    }
    return BT_OK;
}

DEC(d_f64) {
    const uint8_t *s = src;
    (void)fmt; (void)parts;
    for (int64_t i = 0; i < n; i++) { double v; memcpy(&v, s + 8 * i, 8); dst[i] = (float)v; }
    return BT_OK;
}

DEC(d_q8_0) {
    const uint8_t *s = src;
    (void)fmt; (void)parts;
    for (int64_t b = 0; b < n / 32; b++, s += 34) {
        float d = bt_fp16_to_f32((uint16_t)(s[0] | (s[1] << 8)));
        for (int i = 0; i < 32; i++) dst[b * 32 + i] = d * (float)(int8_t)s[2 + i];
    }
    return BT_OK;
}

DEC(d_q4_0) {
    const uint8_t *s = src;
    (void)fmt; (void)parts;
    for (int64_t b = 0; b < n / 32; b++, s += 18) {
        float d = bt_fp16_to_f32((uint16_t)(s[0] | (s[1] << 8)));
        for (int j = 0; j < 16; j++) {
            dst[b * 32 + j] = d * (float)((s[2 + j] & 15) - 8);
            dst[b * 32 + j + 16] = d * (float)((s[2 + j] >> 4) - 8);
        }
    }
    return BT_OK;
}

DEC(d_tq) {
    const uint8_t *s = src;
    int8_t t[256];
    float d;
    size_t bb = fmt->type == BT_TYPE_TQ2_0 ? 66 : 54;
    (void)parts;
    for (int64_t b = 0; b < n / 256; b++, s += bb) {
        if (fmt->type == BT_TYPE_TQ2_0) bt_tq2_0_unpack(s, t, &d);
        else bt_tq1_0_unpack(s, t, &d);
        for (int i = 0; i < 256; i++) dst[b * 256 + i] = d * (float)t[i];
    }
    return BT_OK;
}

DEC(d_vq) { /* needs the rows around: to_f32_rows */
    (void)fmt; (void)parts; (void)src; (void)dst; (void)n;
    return BT_E_UNSUPPORTED;
}

DEC(d_mtq) {
    const uint8_t *s = src;
    uint32_t B = fmt->block, N = fmt->planes;
    size_t bb = bt_mtq_block_bytes(N, B, fmt->layout);
    int8_t t[8 * 256];
    float a[8];
    (void)parts;
    for (int64_t b = 0; b < n / B; b++, s += bb) {
        bt_mtq_unpack_block(fmt, s, t, a);
        for (uint32_t i = 0; i < B; i++) {
            float v = 0;
            for (uint32_t p = 0; p < N; p++) v += a[p] * (float)t[p * B + i];
            dst[b * B + i] = v;
        }
    }
    return BT_OK;
}

/* ---- encoders ---------------------------------------------------------------------------------- */
#define ENC(fn) static bt_status fn(const struct bt_tfmt *fmt, const float *src, void *dst, int64_t n)

ENC(e_f32) { (void)fmt; memcpy(dst, src, (size_t)n * 4); return BT_OK; }

ENC(e_f16) {
    uint8_t *d = dst;
    int64_t i0 = 0;
    (void)fmt;
#ifdef BT_HAVE_F16C_PATH
    if (has_f16c()) i0 = f32_to_f16_f16c(src, d, n);
#endif
    for (int64_t i = i0; i < n; i++) {
        uint16_t h = bt_f32_to_fp16(src[i]);
        d[2 * i] = (uint8_t)(h & 0xff);
        d[2 * i + 1] = (uint8_t)(h >> 8);
    }
    return BT_OK;
}

ENC(e_bf16) {
    uint8_t *d = dst;
    (void)fmt;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = bt_f32_to_bf16(src[i]);
        d[2 * i] = (uint8_t)(h & 0xff);
        d[2 * i + 1] = (uint8_t)(h >> 8);
    }
    return BT_OK;
}

static void q8_0_from(const float *x, uint8_t *b) {
    float amax = 0;
    for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
    float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
    uint16_t h = bt_f32_to_fp16(d);
    b[0] = (uint8_t)(h & 0xff);
    b[1] = (uint8_t)(h >> 8);
    for (int i = 0; i < 32; i++) b[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
}

static void q4_0_from(const float *x, uint8_t *b) {
    float amax = 0, mx = 0;
    for (int i = 0; i < 32; i++)
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); mx = x[i]; }
    float d = mx / -8.0f, id = d ? 1.0f / d : 0.0f;
    uint16_t h = bt_f32_to_fp16(d);
    b[0] = (uint8_t)(h & 0xff);
    b[1] = (uint8_t)(h >> 8);
    for (int j = 0; j < 16; j++) {
        int q0 = (int)(int8_t)(x[j] * id + 8.5f), q1 = (int)(int8_t)(x[j + 16] * id + 8.5f);
        q0 = q0 > 15 ? 15 : q0;
        q1 = q1 > 15 ? 15 : q1;
        b[2 + j] = (uint8_t)(q0 | (q1 << 4));
    }
}

ENC(e_q8_0) {
    (void)fmt;
    for (int64_t b = 0; b < n / 32; b++) q8_0_from(src + 32 * b, (uint8_t *)dst + 34 * b);
    return BT_OK;
}

ENC(e_q4_0) {
    (void)fmt;
    for (int64_t b = 0; b < n / 32; b++) q4_0_from(src + 32 * b, (uint8_t *)dst + 18 * b);
    return BT_OK;
}

static void mtq_describe(const struct bt_tfmt *f, char *buf, size_t n) {
    snprintf(buf, n, "mtq%ux%u%s", f->planes, f->block, f->layout ? "c" : "");
}

/* ---- the table ---------------------------------------------------------------------------------- */
#define W BT_FMT_WEIGHT
#define I BT_FMT_INTDOT
#define FMT(T, NAME, FL, GG, GEO, DE, EN) \
    [T] = {sizeof(struct bt_format), T, NAME, FL, GG, GEO, DE, EN, NULL, NULL, NULL, NULL, NULL, NULL}
static const struct bt_format builtin[BT_TYPE_COUNT] = {
    FMT(BT_TYPE_F32, "f32", W, 0, g_1x4, d_f32, e_f32),
    FMT(BT_TYPE_F16, "f16", W, 1, g_1x2, d_f16, e_f16),
    FMT(BT_TYPE_BF16, "bf16", W, 30, g_1x2, d_bf16, e_bf16),
    FMT(BT_TYPE_Q8_0, "q8_0", W | I, 8, g_q8_0, d_q8_0, e_q8_0),
    FMT(BT_TYPE_TQ1_0, "tq1_0", W | I, 34, g_tq1, d_tq, NULL),
    FMT(BT_TYPE_TQ2_0, "tq2_0", W | I, 35, g_tq2, d_tq, NULL),
    FMT(BT_TYPE_I32, "i32", 0, 26, g_1x4, NULL, NULL),
    FMT(BT_TYPE_I16, "i16", 0, 25, g_1x2, NULL, NULL),
    FMT(BT_TYPE_I8, "i8", 0, 24, g_1x1, NULL, NULL),
    FMT(BT_TYPE_U8, "u8", 0, BT_GGUF_NONE, g_1x1, NULL, NULL),
    FMT(BT_TYPE_F64, "f64", 0, 28, g_1x8, d_f64, NULL),
    FMT(BT_TYPE_I64, "i64", 0, 27, g_1x8, NULL, NULL),
    FMT(BT_TYPE_Q4_0, "q4_0", W | I, 2, g_q4_0, d_q4_0, e_q4_0),
    FMT(BT_TYPE_Q8_K, "q8_k", 0, 15, g_q8_k, NULL, NULL),
    FMT(BT_TYPE_Q4_1, "q4_1", W, 3, bt_ggml_geometry, bt_ggml_to_f32, NULL),
    FMT(BT_TYPE_Q5_0, "q5_0", W, 6, bt_ggml_geometry, bt_ggml_to_f32, NULL),
    FMT(BT_TYPE_Q5_1, "q5_1", W, 7, bt_ggml_geometry, bt_ggml_to_f32, NULL),
    FMT(BT_TYPE_Q2_K, "q2_k", W, 10, bt_ggml_geometry, bt_ggml_to_f32, NULL),
    FMT(BT_TYPE_Q3_K, "q3_k", W, 11, bt_ggml_geometry, bt_ggml_to_f32, NULL),
    FMT(BT_TYPE_Q4_K, "q4_k", W, 12, bt_ggml_geometry, bt_ggml_to_f32, NULL),
    FMT(BT_TYPE_Q5_K, "q5_k", W, 13, bt_ggml_geometry, bt_ggml_to_f32, NULL),
    FMT(BT_TYPE_Q6_K, "q6_k", W, 14, bt_ggml_geometry, bt_ggml_to_f32, NULL),
    FMT(BT_TYPE_IQ4_NL, "iq4_nl", W, 20, bt_ggml_geometry, bt_ggml_to_f32, NULL),
    FMT(BT_TYPE_IQ4_XS, "iq4_xs", W, 23, bt_ggml_geometry, bt_ggml_to_f32, NULL),
    /* ggml block types bt cannot decode: sized and named (inspect lists them), never read */
    [BT_TYPE_GGML] = {sizeof(struct bt_format), BT_TYPE_GGML, "ggml", BT_FMT_PARAMS, BT_GGUF_NONE,
                      bt_ggml_raw_geometry, bt_ggml_raw_to_f32, NULL, bt_ggml_raw_describe, NULL,
                      NULL, NULL, NULL, NULL},
    [BT_TYPE_MTQ] = {sizeof(struct bt_format), BT_TYPE_MTQ, "mtq", W | I | BT_FMT_PARAMS,
                     BT_GGUF_NONE, g_mtq, d_mtq, NULL, mtq_describe, NULL, NULL, NULL, NULL, NULL},
    [BT_TYPE_VQ] = {sizeof(struct bt_format), BT_TYPE_VQ, "vq", W | BT_FMT_PARAMS, BT_GGUF_NONE,
                    g_vq, d_vq, NULL, bt_vq_describe, bt_vq_n_parts, bt_vq_part_info,
                    bt_vq_row_bytes, bt_vq_to_f32_rows, bt_vq_check},
};
#undef W
#undef I

/* registered formats (this copy of the library: the core's is the one plugins reach through
 * host->format) */
static const struct bt_format *extra[BT_TYPE_MAX];

const struct bt_format *bt_format_get(uint32_t type) {
    if (type < BT_TYPE_COUNT) return &builtin[type];
    return type < BT_TYPE_MAX ? extra[type] : NULL;
}

const struct bt_format *bt_format_by_name(const char *name) {
    for (uint32_t t = 0; name && t < BT_TYPE_MAX; t++) {
        const struct bt_format *f = bt_format_get(t);
        if (f && strcasecmp(f->name, name) == 0) return f;
    }
    return NULL;
}

static int valid_fmt_name(const char *s) {
    if (!s || !*s || strlen(s) > 32) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return 0;
    return 1;
}

const char *bt_format_check(const struct bt_format *f) {
    if (!f || f->struct_size < offsetof(struct bt_format, part_info) + sizeof(f->part_info))
        return "format descriptor is truncated";
    if (!valid_fmt_name(f->name)) return "format name must be [a-z0-9_]+ (at most 32)";
    if (!f->geometry || !f->to_f32) return "format lacks geometry or to_f32";
    if ((f->n_parts != NULL) != (f->part_info != NULL)) return "format has n_parts without part_info (or the reverse)";
    if (bt_format_by_name(f->name)) return "a format of this name exists";
    return NULL;
}

bt_status bt_format_register(struct bt_format *f, uint32_t *type) {
    if (bt_format_check(f)) return BT_E_INVAL;
    for (uint32_t t = BT_TYPE_USER; t < BT_TYPE_MAX; t++)
        if (!extra[t]) {
            f->type = t;
            extra[t] = f;
            if (type) *type = t;
            return BT_OK;
        }
    return BT_E_NOMEM;
}

void bt_format_unregister(uint32_t type) {
    if (type >= BT_TYPE_USER && type < BT_TYPE_MAX) extra[type] = NULL;
}

/* ---- generic calls ------------------------------------------------------------------------------ */
const char *bt_type_name(uint32_t type) {
    const struct bt_format *f = bt_format_get(type);
    return f ? f->name : "?";
}

int bt_type_from_name(const char *name) {
    const struct bt_format *f = bt_format_by_name(name);
    return f ? (int)f->type : -1;
}

uint32_t bt_type_block(uint32_t type) {
    const struct bt_format *f = bt_format_get(type);
    struct bt_tfmt t = {type, 0, 0, 0};
    uint32_t b = 0, bb = 0;
    return f && f->geometry(&t, &b, &bb) ? b : 0;
}

uint32_t bt_type_block_bytes(uint32_t type) {
    const struct bt_format *f = bt_format_get(type);
    struct bt_tfmt t = {type, 0, 0, 0};
    uint32_t b = 0, bb = 0;
    return f && f->geometry(&t, &b, &bb) ? bb : 0;
}

int bt_fmt_geometry(const struct bt_tfmt *fmt, uint32_t *block, uint32_t *block_bytes) {
    const struct bt_format *f = fmt ? bt_format_get(fmt->type) : NULL;
    return f && f->geometry(fmt, block, block_bytes) && *block > 0 && *block_bytes > 0;
}

size_t bt_fmt_row_bytes(const struct bt_tfmt *fmt, int64_t ncols) {
    return bt_format_row_bytes(bt_format_get(fmt->type), fmt, ncols);
}

double bt_fmt_bpw(const struct bt_tfmt *fmt, int64_t ncols) {
    size_t rb = bt_fmt_row_bytes(fmt, ncols);
    return rb ? (double)rb * 8.0 / (double)ncols : 0.0;
}

void bt_fmt_str(const struct bt_tfmt *fmt, char *buf, size_t n) {
    const struct bt_format *f = bt_format_get(fmt->type);
    if (f && f->describe) f->describe(fmt, buf, n);
    else snprintf(buf, n, "%s", f ? f->name : "?");
}

uint32_t bt_fmt_n_parts(const struct bt_tfmt *fmt) {
    const struct bt_format *f = bt_format_get(fmt->type);
    return f && f->n_parts ? f->n_parts(fmt) : 0;
}

bt_status bt_to_f32_parts(const struct bt_tfmt *fmt, const void *const *parts, const void *src,
                          float *dst, int64_t n) {
    uint32_t b, bb;
    const struct bt_format *f = bt_format_get(fmt->type);
    if (!f || !f->to_f32) return BT_E_UNSUPPORTED;
    if (!bt_fmt_geometry(fmt, &b, &bb) || n % b) return BT_E_INVAL;
    if (f->n_parts && f->n_parts(fmt) && !parts) return BT_E_INVAL;
    return f->to_f32(fmt, parts, src, dst, n);
}

bt_status bt_fmt_rows_to_f32(const struct bt_tfmt *fmt, const void *const *parts, const void *data,
                             int64_t rows, int64_t cols, int64_t row0, int64_t nrows, float *dst) {
    const struct bt_format *f = bt_format_get(fmt->type);
    if (f && f->n_parts && f->n_parts(fmt) && !parts) return BT_E_INVAL;
    return bt_format_rows_to_f32(f, fmt, parts, data, rows, cols, row0, nrows, dst);
}

bt_status bt_to_f32(const struct bt_tfmt *fmt, const void *src, float *dst, int64_t n) {
    return bt_to_f32_parts(fmt, NULL, src, dst, n);
}

bt_status bt_from_f32(const struct bt_tfmt *fmt, const float *src, void *dst, int64_t n) {
    uint32_t b, bb;
    const struct bt_format *f = bt_format_get(fmt->type);
    if (!f || !f->from_f32) return BT_E_UNSUPPORTED;
    if (!bt_fmt_geometry(fmt, &b, &bb) || n % b) return BT_E_INVAL;
    return f->from_f32(fmt, src, dst, n);
}
