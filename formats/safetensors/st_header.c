/* st_header.c - parse and strictly validate a safetensors header (u64 length + JSON object)
 * from a memory image of the file, with json-c. Rules: docs/research/formats.md section 4.1. */
#include "st_header.h"
#include "bt/bt.h" /* struct bt_err, bt_err_set (bt_types) */

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtypes ------------------------------------------------------------------------------ */
struct st_dtype {
    const char *name;  /* safetensors dtype string */
    int         type;  /* BT_TYPE_*, or -1 = a valid safetensors dtype bt does not handle */
    uint32_t    size;  /* bytes per element (0 for unsupported) */
};

static const struct st_dtype st_dtypes[] = {
    {"F32", BT_TYPE_F32, 4},   {"F16", BT_TYPE_F16, 2},  {"BF16", BT_TYPE_BF16, 2},
    {"F64", BT_TYPE_F64, 8},   {"I64", BT_TYPE_I64, 8},  {"I32", BT_TYPE_I32, 4},
    {"I16", BT_TYPE_I16, 2},   {"I8", BT_TYPE_I8, 1},    {"U8", BT_TYPE_U8, 1},
    {"BOOL", -1, 0},           {"U16", -1, 0},           {"U32", -1, 0},
    {"U64", -1, 0},            {"C64", -1, 0},           {"F8_E5M2", -1, 0},
    {"F8_E4M3", -1, 0},        {"F8_E8M0", -1, 0},       {"F8_E4M3FNUZ", -1, 0},
    {"F8_E5M2FNUZ", -1, 0},    {"F4", -1, 0},            {"F6_E2M3", -1, 0},
    {"F6_E3M2", -1, 0},
};

uint32_t bt_st_type_size(uint32_t type) {
    for (size_t i = 0; i < sizeof(st_dtypes) / sizeof(st_dtypes[0]); i++)
        if (st_dtypes[i].type == (int)type) return st_dtypes[i].size;
    return 0;
}

static const struct st_dtype *st_dtype_find(const char *s) {
    for (size_t i = 0; i < sizeof(st_dtypes) / sizeof(st_dtypes[0]); i++)
        if (strcmp(st_dtypes[i].name, s) == 0) return &st_dtypes[i];
    return NULL;
}

/* ---- helpers ----------------------------------------------------------------------------- */
/* parser state shared by the validation steps */
struct st_parse {
    const char *file; /* file name for messages */
    bt_err     *err;  /* where the message goes (may be NULL) */
};

/* record st and "<file>: reason" in p->err */
__attribute__((format(printf, 3, 4)))
static bt_status st_fail(struct st_parse *p, bt_status st, const char *fmt, ...) {
    if (!p->err) return st;
    char reason[sizeof(p->err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    return bt_err_set(p->err, st, "%s: %s", p->file, reason);
}

static int st_is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* a JSON integer >= 0 (json-c keeps integers past INT64_MAX as uint64) */
static int st_get_u64(struct json_object *o, uint64_t *v) {
    if (!json_object_is_type(o, json_type_int)) return 0;
    if (json_object_get_int64(o) < 0) return 0;
    *v = json_object_get_uint64(o);
    return 1;
}

void bt_st_header_free(struct bt_st_header *h) {
    if (!h) return;
    for (uint32_t i = 0; i < h->n; i++) free(h->t[i].name);
    free(h->t);
    memset(h, 0, sizeof(*h));
}

/* ---- duplicate keys ----------------------------------------------------------------------
 * json-c keeps only the last of duplicate object keys, so the top-level keys are also found in
 * the raw (already validated) text: a string at depth 1 right after '{' or ',' is a key. Each
 * key literal is decoded with json-c, which also catches names with NUL characters. */

/* decoded copy of the JSON string literal s[0..n) (caller frees), NULL on failure;
 * *has_nul is set when the string holds a NUL character */
static char *st_decode_key(const char *s, size_t n, int *has_nul) {
    struct json_tokener *tok = json_tokener_new_ex(2);
    if (!tok) return NULL;
    struct json_object *d = json_tokener_parse_ex(tok, s, (int)n);
    char *r = NULL;
    if (d && json_object_is_type(d, json_type_string)) {
        const char *v = json_object_get_string(d);
        *has_nul = (size_t)json_object_get_string_len(d) != strlen(v);
        r = strdup(v);
    }
    json_object_put(d);
    json_tokener_free(tok);
    return r;
}

static int st_cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* count the top-level keys of s[0..n); names[] gets decoded copies (at most cap) */
static size_t st_scan_keys(const char *s, size_t n, char **names, size_t cap, int *bad) {
    size_t cnt = 0, depth = 0, kstart = 0;
    int in_str = 0, esc = 0, expect_key = 0, is_key = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (esc) esc = 0;
            else if (c == '\\') esc = 1;
            else if (c == '"') {
                in_str = 0;
                if (is_key && cnt < cap) {
                    int nul = 0;
                    names[cnt] = st_decode_key(s + kstart, i + 1 - kstart, &nul);
                    if (!names[cnt] || nul) *bad = names[cnt] ? 2 : 1;
                    cnt++;
                } else if (is_key) {
                    cnt++;
                }
            }
            continue;
        }
        if (c == '"') {
            in_str = 1;
            is_key = depth == 1 && expect_key;
            expect_key = 0;
            kstart = i;
        } else if (c == '{' || c == '[') {
            depth++;
            expect_key = c == '{' && depth == 1;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ',' && depth == 1) {
            expect_key = 1;
        }
    }
    return cnt;
}

static bt_status st_check_keys(struct st_parse *p, const char *s, size_t n, size_t n_keys) {
    size_t cap = n_keys + 1;
    char **names = calloc(cap, sizeof(*names));
    if (!names) return st_fail(p, BT_E_NOMEM, "out of memory");
    int bad = 0;
    size_t cnt = st_scan_keys(s, n, names, cap, &bad);
    size_t have = cnt < cap ? cnt : cap;
    bt_status st = BT_OK;
    if (bad == 1) {
        st = st_fail(p, BT_E_NOMEM, "out of memory decoding header keys");
    } else if (bad == 2) {
        st = st_fail(p, BT_E_FORMAT, "a tensor name in the header contains a NUL character");
    } else if (cnt != n_keys) {
        qsort(names, have, sizeof(*names), st_cmp_str);
        const char *dup = NULL;
        for (size_t i = 1; i < have && !dup; i++)
            if (strcmp(names[i - 1], names[i]) == 0) dup = names[i];
        if (dup) st = st_fail(p, BT_E_FORMAT, "duplicate tensor name '%s' in header", dup);
        else st = st_fail(p, BT_E_FORMAT, "duplicate tensor names in header");
    }
    for (size_t i = 0; i < have; i++) free(names[i]);
    free(names);
    return st;
}

/* ---- one entry -------------------------------------------------------------------------- */
static bt_status st_entry(struct st_parse *p, const char *name, struct json_object *v,
                          uint64_t data_len, struct bt_st_entry *e) {
    struct json_object *jd, *js, *jo;
    if (!json_object_is_type(v, json_type_object))
        return st_fail(p, BT_E_FORMAT, "tensor '%s': entry is not a JSON object", name);
    if (!json_object_object_get_ex(v, "dtype", &jd) || !json_object_is_type(jd, json_type_string))
        return st_fail(p, BT_E_FORMAT, "tensor '%s': missing or non-string \"dtype\"", name);
    if (!json_object_object_get_ex(v, "shape", &js) || !json_object_is_type(js, json_type_array))
        return st_fail(p, BT_E_FORMAT, "tensor '%s': missing or non-array \"shape\"", name);
    if (!json_object_object_get_ex(v, "data_offsets", &jo) ||
        !json_object_is_type(jo, json_type_array) || json_object_array_length(jo) != 2)
        return st_fail(p, BT_E_FORMAT, "tensor '%s': \"data_offsets\" must be an array of 2 integers",
                       name);
    const char *ds = json_object_get_string(jd);
    const struct st_dtype *dt = st_dtype_find(ds);
    if (!dt) return st_fail(p, BT_E_FORMAT, "tensor '%s': unknown dtype '%s'", name, ds);
    if (dt->type < 0)
        return st_fail(p, BT_E_UNSUPPORTED, "tensor '%s': dtype %s is not supported", name, ds);
    size_t nd = json_object_array_length(js);
    if (nd > BT_MAX_DIMS)
        return st_fail(p, BT_E_UNSUPPORTED, "tensor '%s': %zu dimensions (at most %d supported)",
                       name, nd, BT_MAX_DIMS);
    uint64_t numel = 1;
    int ovf = 0;
    for (size_t d = 0; d < nd; d++) {
        uint64_t dim;
        if (!st_get_u64(json_object_array_get_idx(js, d), &dim))
            return st_fail(p, BT_E_FORMAT, "tensor '%s': shape[%zu] is not a non-negative integer",
                           name, d);
        if (dim > (uint64_t)INT64_MAX || __builtin_mul_overflow(numel, dim, &numel)) ovf = 1;
        e->shape[d] = (int64_t)(dim > (uint64_t)INT64_MAX ? INT64_MAX : dim);
    }
    uint64_t need = 0;
    if (ovf || __builtin_mul_overflow(numel, (uint64_t)dt->size, &need) || need > (uint64_t)INT64_MAX)
        return st_fail(p, BT_E_FORMAT, "tensor '%s': shape is too large (size overflows)", name);
    uint64_t b, en;
    if (!st_get_u64(json_object_array_get_idx(jo, 0), &b) ||
        !st_get_u64(json_object_array_get_idx(jo, 1), &en))
        return st_fail(p, BT_E_FORMAT, "tensor '%s': data_offsets must be non-negative integers",
                       name);
    if (en < b)
        return st_fail(p, BT_E_FORMAT, "tensor '%s': data_offsets [%llu, %llu] end before they begin",
                       name, (unsigned long long)b, (unsigned long long)en);
    if (en - b != need)
        return st_fail(p, BT_E_FORMAT,
                       "tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but dtype %s with "
                       "%llu elements needs %llu", name, (unsigned long long)b,
                       (unsigned long long)en, (unsigned long long)(en - b), ds,
                       (unsigned long long)numel, (unsigned long long)need);
    if (en > data_len)
        return st_fail(p, BT_E_FORMAT,
                       "tensor '%s': data_offsets [%llu, %llu] extend past the end of the data "
                       "buffer (%llu bytes; file truncated?)", name, (unsigned long long)b,
                       (unsigned long long)en, (unsigned long long)data_len);
    e->name = strdup(name);
    if (!e->name) return st_fail(p, BT_E_NOMEM, "out of memory");
    e->type = (uint32_t)dt->type;
    e->n_dims = (uint32_t)nd;
    e->begin = b;
    e->end = en;
    return BT_OK;
}

static bt_status st_metadata(struct st_parse *p, struct json_object *v) {
    if (!json_object_is_type(v, json_type_object))
        return st_fail(p, BT_E_FORMAT, "\"__metadata__\" is not a JSON object");
    json_object_object_foreach(v, k, mv) {
        if (!json_object_is_type(mv, json_type_string))
            return st_fail(p, BT_E_FORMAT, "\"__metadata__\" value of '%s' is not a string", k);
    }
    return BT_OK;
}

/* ---- coverage: sorted by offset the tensors must tile [0, data_len) exactly -------------- */
struct st_range {
    uint64_t begin, end; /* byte range in the data buffer */
    uint32_t idx;        /* entry index */
};

static int st_cmp_range(const void *a, const void *b) {
    const struct st_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

static bt_status st_check_tiling(struct st_parse *p, const struct bt_st_header *h) {
    struct st_range *r = malloc((h->n + 1) * sizeof(*r));
    if (!r) return st_fail(p, BT_E_NOMEM, "out of memory");
    for (uint32_t i = 0; i < h->n; i++) r[i] = (struct st_range){h->t[i].begin, h->t[i].end, i};
    qsort(r, h->n, sizeof(*r), st_cmp_range);
    bt_status st = BT_OK;
    uint64_t pos = 0;
    for (uint32_t i = 0; i < h->n && st == BT_OK; i++) {
        const struct bt_st_entry *e = &h->t[r[i].idx];
        if (e->begin < pos)
            st = st_fail(p, BT_E_FORMAT, "tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s'",
                         e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                         h->t[r[i - 1].idx].name);
        else if (e->begin > pos)
            st = st_fail(p, BT_E_FORMAT, "hole in the data buffer: bytes [%llu, %llu) before "
                         "tensor '%s' belong to no tensor", (unsigned long long)pos,
                         (unsigned long long)e->begin, e->name);
        pos = e->end;
    }
    if (st == BT_OK && pos != h->data_len)
        st = st_fail(p, BT_E_FORMAT, "data buffer has %llu bytes but the tensors cover only %llu "
                     "(trailing bytes after the last tensor)", (unsigned long long)h->data_len,
                     (unsigned long long)pos);
    free(r);
    return st;
}

/* ---- entry point ------------------------------------------------------------------------- */
static bt_status st_entries(struct st_parse *p, struct json_object *root, struct bt_st_header *h) {
    size_t nk = (size_t)json_object_object_length(root);
    h->t = calloc(nk + 1, sizeof(*h->t));
    if (!h->t) return st_fail(p, BT_E_NOMEM, "out of memory");
    json_object_object_foreach(root, k, v) {
        bt_status st;
        if (strcmp(k, "__metadata__") == 0) st = st_metadata(p, v);
        else st = st_entry(p, k, v, h->data_len, &h->t[h->n]);
        if (st != BT_OK) return st;
        if (strcmp(k, "__metadata__") != 0) h->n++;
    }
    return BT_OK;
}

bt_status bt_st_header_parse(const uint8_t *buf, uint64_t len, const char *file,
                             struct bt_st_header *out, bt_err *err) {
    struct st_parse p = {file ? file : "safetensors", err};
    memset(out, 0, sizeof(*out));
    if (err) bt_err_clear(err);
    if (len < 8)
        return st_fail(&p, BT_E_FORMAT, "file is %llu bytes, too short for a safetensors header",
                       (unsigned long long)len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    if (n > BT_ST_MAX_HEADER)
        return st_fail(&p, BT_E_FORMAT, "header length %llu exceeds the limit of %llu bytes "
                       "(not a safetensors file?)", (unsigned long long)n, BT_ST_MAX_HEADER);
    if (n > len - 8)
        return st_fail(&p, BT_E_FORMAT, "header length %llu extends past the end of the file "
                       "(%llu bytes; truncated?)", (unsigned long long)n, (unsigned long long)len);
    const char *s = (const char *)buf + 8;
    size_t first = 0;
    while (first < n && st_is_ws(s[first])) first++;
    if (first == n || s[first] != '{')
        return st_fail(&p, BT_E_FORMAT, "header is not a JSON object (does not start with '{')");
    struct json_tokener *tok = json_tokener_new_ex(8);
    if (!tok) return st_fail(&p, BT_E_NOMEM, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                    JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *root = json_tokener_parse_ex(tok, s + first, (int)(n - first));
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = first + json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    bt_status st = BT_OK;
    if (!root) {
        if (jerr == json_tokener_continue || jerr == json_tokener_success)
            st = st_fail(&p, BT_E_FORMAT, "header JSON is truncated (%llu bytes)",
                         (unsigned long long)n);
        else
            st = st_fail(&p, BT_E_FORMAT, "invalid header JSON near byte %zu: %s", end,
                         json_tokener_error_desc(jerr));
        return st;
    }
    while (end < n && st_is_ws(s[end])) end++;
    if (end != n)
        st = st_fail(&p, BT_E_FORMAT, "unexpected bytes after the header JSON object at byte %zu",
                     end);
    else if (!json_object_is_type(root, json_type_object))
        st = st_fail(&p, BT_E_FORMAT, "header is not a JSON object");
    if (st == BT_OK) {
        out->data_off = 8 + n;
        out->data_len = len - 8 - n;
        st = st_check_keys(&p, s, n, (size_t)json_object_object_length(root));
    }
    if (st == BT_OK) st = st_entries(&p, root, out);
    if (st == BT_OK) st = st_check_tiling(&p, out);
    json_object_put(root);
    if (st != BT_OK) bt_st_header_free(out);
    return st;
}
