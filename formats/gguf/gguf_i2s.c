/* gguf_i2s.c - bitnet.cpp's I2_S tensors (ggml type 36 of its llama.cpp fork) decoded to TQ2_0:
 * n/4 bytes of 2-bit codes (0/1/2 = -1/0/+1) in one of three build-dependent orders, then a
 * 32-byte trailer whose first 4 bytes are the per-tensor float32 scale (docs/formats.md
 * "bitnet.cpp I2_S"). Every trit is kept; the TQ2_0 block scales are the scale rounded to fp16. */
#include "gguf_reader.h"
#include "bt_types.h" /* bt_tq2_0_pack */

#include <math.h>
#include <stdio.h>
#include <string.h>

int gr_i2s_layout_of(const char *name) {
    if (!name || !strcmp(name, "x86")) return GR_I2S_X86;
    if (!strcmp(name, "arm")) return GR_I2S_ARM;
    if (!strcmp(name, "x86-1x4")) return GR_I2S_X86_1X4;
    return -1;
}

static const char *layout_name(int layout) {
    return layout == GR_I2S_ARM ? "arm" : layout == GR_I2S_X86_1X4 ? "x86-1x4" : "x86";
}

int gr_i2s_shape_ok(int layout, int64_t rows, int64_t cols, char *why, size_t n) {
    int64_t blk = layout == GR_I2S_ARM ? 64 : 128;
    if (cols % 256) {
        snprintf(why, n, "I2_S tensor with %lld columns: bt holds I2_S as tq2_0, which needs a "
                 "multiple of 256", (long long)cols);
        return 0;
    }
    if (layout == GR_I2S_X86_1X4 ? rows % 4 != 0 : (rows * cols) % blk != 0) {
        snprintf(why, n, "%lld x %lld does not fit the i2s_layout %s (%s)", (long long)rows,
                 (long long)cols, layout_name(layout),
                 layout == GR_I2S_X86_1X4 ? "rows must be a multiple of 4" : "blocks of 128/64");
        return 0;
    }
    return 1;
}

float gr_i2s_scale(const uint8_t *src, int64_t rows, int64_t cols) {
    const uint8_t *p = src + rows * cols / 4;
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float s;
    memcpy(&s, &u, 4);
    return s;
}

/* the 2-bit code of element (r, c) */
static inline int code_at(const uint8_t *src, int layout, int64_t cols, int64_t r, int64_t c) {
    if (layout == GR_I2S_X86_1X4) /* byte (r/4, c) holds rows 4k..4k+3, the first in the top bits */
        return (src[(r / 4) * cols + c] >> (6 - 2 * (r % 4))) & 3;
    int64_t blk = layout == GR_I2S_ARM ? 64 : 128, g = blk / 4; /* g bytes per block */
    int64_t i = r * cols + c, j = i % blk;
    return (src[(i / blk) * g + j % g] >> (6 - 2 * (j / g))) & 3;
}

static bt_status i2s_decode(const uint8_t *src, int layout, int64_t rows, int64_t cols,
                            uint8_t *dst, char *why, size_t n) {
    float s = gr_i2s_scale(src, rows, cols);
    if (!isfinite(s) || s < 0.0f) {
        snprintf(why, n, "the I2_S scale in the 32-byte trailer is %g, not a finite value >= 0 "
                 "(a wrong trailer, or not an I2_S tensor)", (double)s);
        return BT_E_FORMAT;
    }
    int8_t t[256];
    int64_t nb = cols / 256;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < nb; b++) {
            for (int e = 0; e < 256; e++) {
                int q = code_at(src, layout, cols, r, b * 256 + e);
                if (q == 3) {
                    snprintf(why, n, "element (%lld, %lld) has the code 3, which no trit has "
                             "(corrupt data, or a wrong i2s_layout: this is %s)", (long long)r,
                             (long long)(b * 256 + e), layout_name(layout));
                    return BT_E_FORMAT;
                }
                t[e] = (int8_t)(q - 1);
            }
            bt_tq2_0_pack(t, s, dst + (r * nb + b) * 66);
        }
    return BT_OK;
}

/* decode I2_S tensor t into t->zdata as TQ2_0 (lock held) */
bt_status gr_i2s_tensor_decode(struct gr_ctx *g, struct gr_tensor *t, bt_err *err) {
    const struct bt_host *h = g->host;
    uint8_t *dst = h->alloc((size_t)t->nbytes);
    if (!dst)
        return h->set_error(err, BT_E_NOMEM, "gguf: %s: tensor '%s': out of memory for %llu "
                            "decoded bytes", g->path, t->name, (unsigned long long)t->nbytes);
    char why[256];
    bt_status st = i2s_decode(g->map + g->data + t->offset, g->i2s_layout, t->shape[0],
                                 t->shape[1], dst, why, sizeof why);
    if (st) {
        h->free(dst);
        return h->set_error(err, st, "gguf: %s: tensor '%s': corrupt I2_S data: %s", g->path,
                            t->name, why);
    }
    t->zdata = dst;
    return BT_OK;
}

/* ---- bitnet.cpp I2_S files ---------------------------------------------------------------------- */
static const struct bt_kv *kv_get(const struct gr_ctx *g, const char *key) {
    for (uint32_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

/* append a key made here (F32 value, or a string when s != NULL); room was reserved */
static bt_status kv_add(struct gr_ctx *g, const char *key, float f, const char *s, bt_err *err) {
    const struct bt_host *h = g->host;
    if (kv_get(g, key))
        return h->set_error(err, BT_E_FORMAT, "gguf: %s: key '%s' is one the reader makes (I2_S)",
                            g->path, key);
    size_t kl = strlen(key), koff = (kl + 1 + 7) & ~(size_t)7, sl = s ? strlen(s) : 0;
    char *blk = h->alloc(koff + sl + 1);
    if (!blk) return h->set_error(err, BT_E_NOMEM, "gguf: %s: out of memory", g->path);
    memcpy(blk, key, kl + 1);
    struct bt_kv *kv = &g->kv[g->n_kv++];
    memset(kv, 0, sizeof *kv);
    kv->key = blk;
    if (s) {
        memcpy(blk + koff, s, sl + 1);
        kv->type = BT_KV_STRING;
        kv->n = sl;
        kv->v.s = blk + koff;
    } else {
        kv->type = BT_KV_F32;
        kv->v.f = f;
    }
    return BT_OK;
}

/* the fork's architectures as bitnet (bitnet-b1.58 / bitnet-25 run squared ReLU: bt.ffn_activation
 * = relu2 unless the file says), and for every I2_S tensor its f32 scale as bt.weight_scale.<name>
 * (the runner applies it exactly; docs/formats.md) */
bt_status gr_i2s_finish(struct gr_ctx *g, bt_err *err) {
    const struct bt_host *h = g->host;
    bt_status st = BT_OK;
    struct bt_kv *arch = (struct bt_kv *)kv_get(g, "general.architecture");
    if (arch && arch->type == BT_KV_STRING &&
        (!strcmp(arch->v.s, "bitnet-b1.58") || !strcmp(arch->v.s, "bitnet-25"))) {
        memcpy((char *)arch->v.s, "bitnet", 7); /* the value sits in our own block */
        arch->n = 6;
        if (!kv_get(g, "bt.ffn_activation")) st = kv_add(g, "bt.ffn_activation", 0, "relu2", err);
    }
    for (uint32_t i = 0; i < g->n_t && !st; i++) {
        const struct gr_tensor *t = &g->t[i];
        if (!t->i2s) continue;
        float sc = gr_i2s_scale(g->map + g->data + t->offset, t->shape[0], t->shape[1]);
        if (!isfinite(sc) || sc < 0.0f)
            return h->set_error(err, BT_E_FORMAT, "gguf: %s: tensor '%s': the I2_S scale in its "
                                "32-byte trailer is %g, not a finite value >= 0 (a wrong trailer, "
                                "or not an I2_S tensor)", g->path, t->name, (double)sc);
        char key[GGUF_MAX_NAME + 32];
        snprintf(key, sizeof key, "%s%s", GR_I2S_SCALE_PREFIX, t->name);
        st = kv_add(g, key, sc, NULL, err);
    }
    return st;
}

