/* bt_formats_ggml.c - decoders of ggml's block types that llama.cpp's files use (Q4_1, Q5_0,
 * Q5_1, the K-quants Q2_K..Q6_K, IQ4_NL, IQ4_XS) and the "ggml" placeholder format for the block
 * types bt names and sizes but does not decode (the IQ1/IQ2/IQ3 grid types, ...). Written from
 * the block layouts (docs/formats.md "ggml block types"); every value is computed with the same
 * float32 operations, in the same order, as the format's reference dequantizer, so results are
 * bit-identical (tests/gguf/test_gguf_types.py checks against gguf-py's gguf.quants). This file
 * is compiled with -ffp-contract=off: a fused multiply-add would round differently. */
#include "bt_types.h"

#include <stdio.h>
#include <string.h>

static float h16(const uint8_t *p) { return bt_fp16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

/* ---- geometry ---------------------------------------------------------------------------- */
struct ggml_geom {
    uint32_t    type;  /* bt type */
    uint32_t    block; /* elements per block */
    uint32_t    bytes; /* bytes per block */
};
static const struct ggml_geom geoms[] = {
    {BT_TYPE_Q4_1, 32, 20},   {BT_TYPE_Q5_0, 32, 22},   {BT_TYPE_Q5_1, 32, 24},
    {BT_TYPE_Q2_K, 256, 84},  {BT_TYPE_Q3_K, 256, 110}, {BT_TYPE_Q4_K, 256, 144},
    {BT_TYPE_Q5_K, 256, 176}, {BT_TYPE_Q6_K, 256, 210}, {BT_TYPE_IQ4_NL, 32, 18},
    {BT_TYPE_IQ4_XS, 256, 136},
};

int bt_ggml_geometry(const struct bt_tfmt *f, uint32_t *b, uint32_t *bb) {
    if (f->planes || f->block || f->layout) return 0;
    for (size_t i = 0; i < sizeof(geoms) / sizeof(geoms[0]); i++)
        if (geoms[i].type == f->type) {
            *b = geoms[i].block;
            *bb = geoms[i].bytes;
            return 1;
        }
    return 0;
}

/* ---- 32-element types ---------------------------------------------------------------------- */
/* element j < 16 is the low nibble of qs[j], element j + 16 its high nibble */
#define NIB(qs, i) ((i) < 16 ? (qs)[i] & 15 : (qs)[(i)-16] >> 4)

static void q4_1(const uint8_t *s, float *y) {
    float d = h16(s), m = h16(s + 2);
    for (int i = 0; i < 32; i++) y[i] = d * (float)NIB(s + 4, i) + m;
}

/* q5: 4 low bits as q4, bit i of the little-endian u32 qh is bit 4 of element i */
static int q5(const uint8_t *qh, const uint8_t *qs, int i) {
    uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    return NIB(qs, i) | (int)((h >> i) & 1u) << 4;
}

static void q5_0(const uint8_t *s, float *y) {
    float d = h16(s);
    for (int i = 0; i < 32; i++) y[i] = d * (float)(q5(s + 2, s + 6, i) - 16);
}

static void q5_1(const uint8_t *s, float *y) {
    float d = h16(s), m = h16(s + 2);
    for (int i = 0; i < 32; i++) y[i] = d * (float)q5(s + 4, s + 8, i) + m;
}

/* The IQ4 codebook: the 16 int8 levels are part of the IQ4_NL / IQ4_XS format definition (a
 * file's 4-bit codes index them); docs/formats.md says where they are defined. */
static const int8_t iq4_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                      1,    13,   25,  38,  53,  69,  89,  113};

static void iq4_nl(const uint8_t *s, float *y) {
    float d = h16(s);
    for (int i = 0; i < 32; i++) y[i] = d * (float)iq4_levels[NIB(s + 2, i)];
}

/* ---- 256-element K-quants ------------------------------------------------------------------- */
/* Q2_K: element e = 128 h + 32 k + l (h < 2, k < 4, l < 32) is bits 2k..2k+1 of qs[32 h + l];
 * 16 groups of 16 with a 4-bit scale (low nibble) and a 4-bit min (high nibble) */
static void q2_k(const uint8_t *s, float *y) {
    const uint8_t *sc = s, *qs = s + 16;
    float d = h16(s + 80), dmin = h16(s + 82);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, k = (e / 32) % 4, l = e % 32, g = e / 16;
        float dl = d * (float)(sc[g] & 15), ml = dmin * (float)(sc[g] >> 4);
        y[e] = dl * (float)((qs[32 * h + l] >> (2 * k)) & 3) - ml;
    }
}

/* Q3_K: 2 low bits as Q2_K, the third bit is bit k of hmask[l] for e = 32 k + l (set: +0,
 * clear: -4); 16 six-bit signed scales (offset 32): low 4 bits are nibbles of bytes 0..7 (group
 * g < 8: low nibble of byte g, else high nibble of byte g - 8), high 2 bits are bits 2(g/4).. of
 * byte 8 + g % 4 */
static void q3_k(const uint8_t *s, float *y) {
    const uint8_t *hm = s, *qs = s + 32, *sc = s + 96;
    float d = h16(s + 108);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, k = (e / 32) % 4, l = e % 32, g = e / 16;
        int lo = g < 8 ? sc[g] & 15 : sc[g - 8] >> 4, hi = (sc[8 + g % 4] >> (2 * (g / 4))) & 3;
        float dl = d * (float)((lo | hi << 4) - 32);
        int q = ((qs[32 * h + l] >> (2 * k)) & 3) - (((hm[l] >> (e / 32)) & 1) ? 0 : 4);
        y[e] = dl * (float)q;
    }
}

/* the eight 6-bit (scale, min) pairs of Q4_K / Q5_K, packed in 12 bytes */
static void k_scale_min(const uint8_t *p, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = p[j] & 63;
        *mn = p[j + 4] & 63;
    } else {
        *sc = (p[j + 4] & 15) | ((p[j - 4] >> 2) & 0x30);
        *mn = (p[j + 4] >> 4) | ((p[j] >> 2) & 0x30);
    }
}

/* Q4_K: element e = 64 h + 32 k + l (h < 4, k < 2) is nibble k of qs[32 h + l]; 8 groups of 32 */
static void q4_k(const uint8_t *s, float *y) {
    float d = h16(s), dmin = h16(s + 2);
    const uint8_t *qs = s + 16;
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        k_scale_min(s + 4, j, &sc, &mn);
        float dl = d * (float)sc, ml = dmin * (float)mn;
        for (int l = 0; l < 32; l++)
            y[32 * j + l] = dl * (float)((qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 15) - ml;
    }
}

/* Q5_K: Q4_K's nibbles plus bit j of qh[l] as bit 4 of element 32 j + l */
static void q5_k(const uint8_t *s, float *y) {
    float d = h16(s), dmin = h16(s + 2);
    const uint8_t *qh = s + 16, *qs = s + 48;
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        k_scale_min(s + 4, j, &sc, &mn);
        float dl = d * (float)sc, ml = dmin * (float)mn;
        for (int l = 0; l < 32; l++) {
            int q = ((qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 15) | ((qh[l] >> j) & 1) << 4;
            y[32 * j + l] = dl * (float)q - ml;
        }
    }
}

/* Q6_K: element e = 128 h + 32 k + l: low 4 bits are nibble k / 2 of ql[64 h + 32 (k % 2) + l],
 * high 2 bits are bits 2k.. of qh[32 h + l]; value - 32 times d * scales[e / 16] */
static void q6_k(const uint8_t *s, float *y) {
    const uint8_t *ql = s, *qh = s + 128;
    const int8_t *sc = (const int8_t *)(s + 192);
    float d = h16(s + 208);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, k = (e / 32) % 4, l = e % 32;
        int lo = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 15;
        int hi = (qh[32 * h + l] >> (2 * k)) & 3;
        float dl = d * (float)sc[e / 16];
        y[e] = dl * (float)((lo | hi << 4) - 32);
    }
}

/* IQ4_XS: 8 groups of 32, each a 6-bit signed scale (offset 32: low 4 bits nibble j % 2 of
 * scales_l[j / 2], high 2 bits bits 2j.. of the u16 scales_h) and 32 codebook indices, Q4_0's
 * nibble order within qs[16 j ..] */
static void iq4_xs(const uint8_t *s, float *y) {
    float d = h16(s);
    uint32_t sh = (uint32_t)s[2] | (uint32_t)s[3] << 8;
    const uint8_t *sl = s + 4, *qs = s + 8;
    for (int j = 0; j < 8; j++) {
        int sc = (((sl[j / 2] >> (4 * (j % 2))) & 15) | (int)((sh >> (2 * j)) & 3) << 4) - 32;
        float dl = d * (float)sc;
        for (int i = 0; i < 32; i++) y[32 * j + i] = dl * (float)iq4_levels[NIB(qs + 16 * j, i)];
    }
}

bt_status bt_ggml_to_f32(const struct bt_tfmt *fmt, const void *const *parts, const void *src,
                         float *dst, int64_t n) {
    void (*dec)(const uint8_t *, float *) = NULL;
    uint32_t b = 0, bb = 0;
    (void)parts;
    switch (fmt->type) {
    case BT_TYPE_Q4_1: dec = q4_1; break;
    case BT_TYPE_Q5_0: dec = q5_0; break;
    case BT_TYPE_Q5_1: dec = q5_1; break;
    case BT_TYPE_Q2_K: dec = q2_k; break;
    case BT_TYPE_Q3_K: dec = q3_k; break;
    case BT_TYPE_Q4_K: dec = q4_k; break;
    case BT_TYPE_Q5_K: dec = q5_k; break;
    case BT_TYPE_Q6_K: dec = q6_k; break;
    case BT_TYPE_IQ4_NL: dec = iq4_nl; break;
    case BT_TYPE_IQ4_XS: dec = iq4_xs; break;
    default: return BT_E_UNSUPPORTED;
    }
    if (!bt_ggml_geometry(fmt, &b, &bb) || n % b) return BT_E_INVAL;
    const uint8_t *s = src;
    for (int64_t k = 0; k < n / b; k++) dec(s + (size_t)k * bb, dst + k * b);
    return BT_OK;
}

/* ---- "ggml": block types bt sizes but does not decode ------------------------------------------ */
/* ggml type ids, names and block geometry (format facts from ggml's type list) of the types a
 * GGUF may hold that no bt format decodes */
static const struct {
    uint32_t    id;
    const char *name;
    uint32_t    block, bytes;
} raw_types[] = {
    {9, "q8_1", 32, 40},       {15, "q8_K", 256, 292},    {16, "iq2_xxs", 256, 66},
    {17, "iq2_xs", 256, 74},   {18, "iq3_xxs", 256, 98},  {19, "iq1_s", 256, 50},
    {21, "iq3_s", 256, 110},   {22, "iq2_s", 256, 82},    {29, "iq1_m", 256, 56},
    {39, "mxfp4", 32, 17},     {40, "nvfp4", 64, 36},     {41, "q1_0", 128, 18},
};
#define N_RAW (sizeof(raw_types) / sizeof(raw_types[0]))

static int raw_find(const struct bt_tfmt *f) {
    if (f->block || f->layout) return -1;
    for (size_t i = 0; i < N_RAW; i++)
        if (raw_types[i].id == f->planes) return (int)i;
    return -1;
}

int bt_ggml_raw_geometry(const struct bt_tfmt *f, uint32_t *b, uint32_t *bb) {
    int i = raw_find(f);
    if (i < 0) return 0;
    *b = raw_types[i].block;
    *bb = raw_types[i].bytes;
    return 1;
}

bt_status bt_ggml_raw_to_f32(const struct bt_tfmt *fmt, const void *const *parts,
                             const void *src, float *dst, int64_t n) {
    (void)fmt; (void)parts; (void)src; (void)dst; (void)n;
    return BT_E_UNSUPPORTED;
}

void bt_ggml_raw_describe(const struct bt_tfmt *f, char *buf, size_t n) {
    int i = raw_find(f);
    if (i < 0) snprintf(buf, n, "ggml type %u", f->planes);
    else snprintf(buf, n, "%s", raw_types[i].name);
}

struct bt_tfmt bt_ggml_raw_tfmt(uint32_t ggml_id) {
    struct bt_tfmt f = {BT_TYPE_GGML, ggml_id, 0, 0};
    return f;
}
