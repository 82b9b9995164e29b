/* gguf_common.c - ggml type table, bt <-> ggml type mapping and a name hash set shared by the
 * gguf reader and writer plugins (see gguf_common.h). */
#include "gguf_common.h"

#include <string.h>

/* Names of all ggml ids up to GGML_TYPE_COUNT; block/bytes only for the types bt handles. */
static const struct gguf_type_info types[GGML_TYPE_COUNT] = {
    [0] = {"f32", 1, 4, BT_TYPE_F32},          [1] = {"f16", 1, 2, BT_TYPE_F16},
    [2] = {"q4_0", 32, 18, BT_TYPE_Q4_0},      [3] = {"q4_1", 0, 0, -1},
    [6] = {"q5_0", 0, 0, -1},                  [7] = {"q5_1", 0, 0, -1},
    [8] = {"q8_0", 32, 34, BT_TYPE_Q8_0},      [9] = {"q8_1", 0, 0, -1},
    [10] = {"q2_K", 0, 0, -1},                 [11] = {"q3_K", 0, 0, -1},
    [12] = {"q4_K", 0, 0, -1},                 [13] = {"q5_K", 0, 0, -1},
    [14] = {"q6_K", 0, 0, -1},                 [15] = {"q8_K", 0, 0, -1},
    [16] = {"iq2_xxs", 0, 0, -1},              [17] = {"iq2_xs", 0, 0, -1},
    [18] = {"iq3_xxs", 0, 0, -1},              [19] = {"iq1_s", 0, 0, -1},
    [20] = {"iq4_nl", 0, 0, -1},               [21] = {"iq3_s", 0, 0, -1},
    [22] = {"iq2_s", 0, 0, -1},                [23] = {"iq4_xs", 0, 0, -1},
    [24] = {"i8", 1, 1, BT_TYPE_I8},           [25] = {"i16", 1, 2, BT_TYPE_I16},
    [26] = {"i32", 1, 4, BT_TYPE_I32},         [27] = {"i64", 1, 8, BT_TYPE_I64},
    [28] = {"f64", 1, 8, BT_TYPE_F64},         [29] = {"iq1_m", 0, 0, -1},
    [30] = {"bf16", 1, 2, BT_TYPE_BF16},       [34] = {"tq1_0", 256, 54, BT_TYPE_TQ1_0},
    [35] = {"tq2_0", 256, 66, BT_TYPE_TQ2_0},  [39] = {"mxfp4", 0, 0, -1},
    [40] = {"nvfp4", 0, 0, -1},                [41] = {"q1_0", 0, 0, -1},
    [42] = {"q2_0", 0, 0, -1},
};

const struct gguf_type_info *gguf_type(uint32_t id) {
    if (id >= GGML_TYPE_COUNT || !types[id].name) return NULL;
    return &types[id];
}

int gguf_type_from_bt(uint32_t bt_type) {
    if (bt_type == BT_TYPE_MTQ) return GGML_I8;
    for (int i = 0; i < GGML_TYPE_COUNT; i++)
        if (types[i].name && types[i].bt == (int32_t)bt_type) return i;
    return -1;
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
