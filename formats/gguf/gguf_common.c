/* gguf_common.c - ggml type table, format lookups through the host (bt <-> ggml mapping from
 * the struct bt_format descriptors) and a name hash set shared by the gguf reader and writer
 * plugins (see gguf_common.h). */
#include "gguf_common.h"
#include "bt_types.h"

#include <stdio.h>
#include <string.h>

/* Names and block geometry of all ggml ids up to GGML_TYPE_COUNT (ggml.c type_traits; gguf-py
 * GGML_QUANT_SIZES). Ids without a name were removed from ggml. */
static const struct gguf_type_info types[GGML_TYPE_COUNT] = {
    [0] = {"f32", 1, 4},          [1] = {"f16", 1, 2},         [2] = {"q4_0", 32, 18},
    [3] = {"q4_1", 32, 20},       [6] = {"q5_0", 32, 22},      [7] = {"q5_1", 32, 24},
    [8] = {"q8_0", 32, 34},       [9] = {"q8_1", 32, 40},      [10] = {"q2_K", 256, 84},
    [11] = {"q3_K", 256, 110},    [12] = {"q4_K", 256, 144},   [13] = {"q5_K", 256, 176},
    [14] = {"q6_K", 256, 210},    [15] = {"q8_K", 256, 292},   [16] = {"iq2_xxs", 256, 66},
    [17] = {"iq2_xs", 256, 74},   [18] = {"iq3_xxs", 256, 98}, [19] = {"iq1_s", 256, 50},
    [20] = {"iq4_nl", 32, 18},    [21] = {"iq3_s", 256, 110},  [22] = {"iq2_s", 256, 82},
    [23] = {"iq4_xs", 256, 136},  [24] = {"i8", 1, 1},         [25] = {"i16", 1, 2},
    [26] = {"i32", 1, 4},         [27] = {"i64", 1, 8},        [28] = {"f64", 1, 8},
    [29] = {"iq1_m", 256, 56},    [30] = {"bf16", 1, 2},       [34] = {"tq1_0", 256, 54},
    [35] = {"tq2_0", 256, 66},    [39] = {"mxfp4", 32, 17},    [40] = {"nvfp4", 64, 36},
    [41] = {"q1_0", 128, 18},     [42] = {"q2_0", 0, 0},
};

const struct gguf_type_info *gguf_type(uint32_t id) {
    if (id >= GGML_TYPE_COUNT || !types[id].name) return NULL;
    return &types[id];
}

/* ---- formats ----------------------------------------------------------------------------------- */
/* an ABI 2 host always has format/format_by_name; the fallback (this plugin's own bt_types copy,
 * built-ins only) keeps hand-made test hosts working */
const struct bt_format *gguf_fmt(const struct bt_host *h, uint32_t type) {
    return h && h->format ? h->format(type) : bt_format_get(type);
}

const struct bt_format *gguf_fmt_by_name(const struct bt_host *h, const char *name) {
    return h && h->format_by_name ? h->format_by_name(name) : bt_format_by_name(name);
}

int gguf_fmt_geom(const struct bt_format *f, const struct bt_tfmt *fmt, uint32_t *block,
                  uint32_t *bytes) {
    *block = *bytes = 0;
    if (!f || !f->geometry || !f->geometry(fmt, block, bytes) || !*block || !*bytes) return 0;
    return 1;
}

uint64_t gguf_row_bytes(const struct bt_host *h, const struct bt_tfmt *fmt, int64_t cols) {
    return bt_format_row_bytes(gguf_fmt(h, fmt->type), fmt, cols);
}

uint32_t gguf_fmt_parts(const struct bt_format *f, const struct bt_tfmt *fmt) {
    return f && f->n_parts ? f->n_parts(fmt) : 0;
}

const struct bt_format *gguf_fmt_of_ggml(const struct bt_host *h, uint32_t id, uint32_t *block,
                                         uint32_t *bytes) {
    const struct gguf_type_info *ti = gguf_type(id);
    for (uint32_t t = 0; t < BT_TYPE_MAX; t++) {
        const struct bt_format *f = gguf_fmt(h, t);
        struct bt_tfmt fmt = {t, 0, 0, 0};
        if (!f || f->gguf_type != id || !gguf_fmt_geom(f, &fmt, block, bytes)) continue;
        if (ti && ti->block && (ti->block != *block || ti->bytes != *bytes)) continue;
        return f;
    }
    *block = *bytes = 0;
    return NULL;
}

void gguf_fmt_str(const struct bt_host *h, const struct bt_tfmt *fmt, char *buf, size_t n) {
    const struct bt_format *f = gguf_fmt(h, fmt->type);
    if (!f) snprintf(buf, n, "type %u", fmt->type);
    else if (f->describe) f->describe(fmt, buf, n);
    else snprintf(buf, n, "%s", f->name);
}

size_t gguf_kv_scalar_size(uint32_t t) { return bt_kv_scalar_size(t); }

int gguf_key_ok(const char *key, size_t len) { return key && len > 0 && len < 65536; }

/* ---- name set ------------------------------------------------------------------------------ */
static uint64_t hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static size_t find_slot(const struct gguf_nameset *s, const char *str, size_t len) {
    size_t m = s->cap - 1, i = (size_t)hash(str, len) & m;
    while (s->slot[i] && !(s->len[i] == len && memcmp(s->slot[i], str, len) == 0)) i = (i + 1) & m;
    return i;
}

static bt_status alloc_tables(struct gguf_nameset *s, const struct bt_host *h, size_t cap) {
    s->slot = h->alloc(cap * sizeof(*s->slot));
    s->len = h->alloc(cap * sizeof(*s->len));
    s->val = h->alloc(cap * sizeof(*s->val));
    if (!s->slot || !s->len || !s->val) {
        h->free(s->slot); h->free(s->len); h->free(s->val);
        s->slot = NULL; s->len = NULL; s->val = NULL;
        return BT_E_NOMEM;
    }
    memset(s->slot, 0, cap * sizeof(*s->slot));
    s->cap = cap;
    return BT_OK;
}

bt_status gguf_nameset_init(struct gguf_nameset *s, const struct bt_host *h, size_t expect) {
    memset(s, 0, sizeof(*s));
    size_t cap = 16;
    while (cap < 2 * expect && cap < ((size_t)1 << 40)) cap *= 2;
    return alloc_tables(s, h, cap);
}

static bt_status grow(struct gguf_nameset *s, const struct bt_host *h) {
    struct gguf_nameset old = *s;
    if (alloc_tables(s, h, old.cap * 2) != BT_OK) { *s = old; return BT_E_NOMEM; }
    s->count = old.count;
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.slot[i]) continue;
        size_t j = find_slot(s, old.slot[i], old.len[i]);
        s->slot[j] = old.slot[i];
        s->len[j] = old.len[i];
        s->val[j] = old.val[i];
    }
    gguf_nameset_free(&old, h);
    return BT_OK;
}

bt_status gguf_nameset_add(struct gguf_nameset *s, const struct bt_host *h, const char *str,
                           size_t len, uint32_t val, int *dup) {
    *dup = 0;
    if (2 * (s->count + 1) > s->cap && grow(s, h) != BT_OK) return BT_E_NOMEM;
    size_t i = find_slot(s, str, len);
    if (s->slot[i]) { *dup = 1; return BT_OK; }
    s->slot[i] = str;
    s->len[i] = (uint32_t)len;
    s->val[i] = val;
    s->count++;
    return BT_OK;
}

int64_t gguf_nameset_get(const struct gguf_nameset *s, const char *str, size_t len) {
    if (!s->cap) return -1;
    size_t i = find_slot(s, str, len);
    return s->slot[i] ? (int64_t)s->val[i] : -1;
}

void gguf_nameset_free(struct gguf_nameset *s, const struct bt_host *h) {
    if (!s || !h) return;
    h->free(s->slot);
    h->free(s->len);
    h->free(s->val);
    memset(s, 0, sizeof(*s));
}
