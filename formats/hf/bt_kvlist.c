/* bt_kvlist.c - owning list of GGUF-style metadata key/values (see bt_kvlist.h). */
#include "bt_kvlist.h"

#include <stdlib.h>
#include <string.h>

size_t bt_kv_type_size(uint32_t t) { return bt_kv_scalar_size(t); }

static void *keep(struct bt_kvlist *l, void *p) {
    if (!p) return NULL;
    if (l->nblobs == l->capblobs) {
        uint32_t nc = l->capblobs ? 2 * l->capblobs : 64;
        void **nb = realloc(l->blobs, nc * sizeof(*nb));
        if (!nb) { free(p); return NULL; }
        l->blobs = nb;
        l->capblobs = nc;
    }
    l->blobs[l->nblobs++] = p;
    return p;
}

static char *dupstr(struct bt_kvlist *l, const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return keep(l, d);
}

void bt_kvlist_free(struct bt_kvlist *l) {
    if (!l) return;
    for (uint32_t i = 0; i < l->nblobs; i++) free(l->blobs[i]);
    free(l->blobs);
    free(l->kv);
    memset(l, 0, sizeof(*l));
}

const struct bt_kv *bt_kvlist_find(const struct bt_kvlist *l, const char *key) {
    for (uint32_t i = 0; i < l->n; i++)
        if (strcmp(l->kv[i].key, key) == 0) return &l->kv[i];
    return NULL;
}

/* slot for key: existing entry or a new one with a copied key */
static struct bt_kv *slot(struct bt_kvlist *l, const char *key) {
    for (uint32_t i = 0; i < l->n; i++)
        if (strcmp(l->kv[i].key, key) == 0) return &l->kv[i];
    if (l->n == l->cap) {
        uint32_t nc = l->cap ? 2 * l->cap : 32;
        struct bt_kv *nk = realloc(l->kv, nc * sizeof(*nk));
        if (!nk) return NULL;
        l->kv = nk;
        l->cap = nc;
    }
    const char *k = dupstr(l, key);
    if (!k) return NULL;
    struct bt_kv *kv = &l->kv[l->n++];
    memset(kv, 0, sizeof(*kv));
    kv->key = k;
    return kv;
}

static bt_status scalar(struct bt_kvlist *l, const char *key, uint32_t type, uint64_t u, int64_t i,
                        double f) {
    struct bt_kv *kv = slot(l, key);
    if (!kv) return BT_E_NOMEM;
    kv->type = type;
    kv->n = 0;
    if (type == BT_KV_F32 || type == BT_KV_F64) kv->v.f = f;
    else if (type == BT_KV_I8 || type == BT_KV_I16 || type == BT_KV_I32 || type == BT_KV_I64) kv->v.i = i;
    else kv->v.u = u;
    return BT_OK;
}

bt_status bt_kvlist_u32(struct bt_kvlist *l, const char *k, uint32_t v) { return scalar(l, k, BT_KV_U32, v, 0, 0); }
bt_status bt_kvlist_i32(struct bt_kvlist *l, const char *k, int32_t v) { return scalar(l, k, BT_KV_I32, 0, v, 0); }
bt_status bt_kvlist_f32(struct bt_kvlist *l, const char *k, float v) { return scalar(l, k, BT_KV_F32, 0, 0, v); }
bt_status bt_kvlist_bool(struct bt_kvlist *l, const char *k, int v) { return scalar(l, k, BT_KV_BOOL, v != 0, 0, 0); }

bt_status bt_kvlist_str(struct bt_kvlist *l, const char *key, const char *s) {
    char *d = dupstr(l, s);
    struct bt_kv *kv = d ? slot(l, key) : NULL;
    if (!kv) return BT_E_NOMEM;
    kv->type = BT_KV_STRING;
    kv->n = strlen(s);
    kv->v.s = d;
    return BT_OK;
}

bt_status bt_kvlist_arr(struct bt_kvlist *l, const char *key, uint32_t arr_type, const void *data,
                        uint64_t n) {
    size_t es = bt_kv_type_size(arr_type);
    if (!es) return BT_E_INVAL;
    void *d = keep(l, malloc(n * es + 1));
    struct bt_kv *kv = d ? slot(l, key) : NULL;
    if (!kv) return BT_E_NOMEM;
    if (n) memcpy(d, data, n * es);
    kv->type = BT_KV_ARRAY;
    kv->arr_type = arr_type;
    kv->n = n;
    kv->v.arr = d;
    return BT_OK;
}

bt_status bt_kvlist_strarr(struct bt_kvlist *l, const char *key, const char *const *s, uint64_t n) {
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) total += strlen(s[i]) + 1;
    /* one blob: pointer table followed by the string bytes */
    char **tab = keep(l, malloc(n * sizeof(char *) + total + 1));
    struct bt_kv *kv = tab ? slot(l, key) : NULL;
    if (!kv) return BT_E_NOMEM;
    char *p = (char *)(tab + n);
    for (uint64_t i = 0; i < n; i++) {
        size_t len = strlen(s[i]) + 1;
        memcpy(p, s[i], len);
        tab[i] = p;
        p += len;
    }
    kv->type = BT_KV_ARRAY;
    kv->arr_type = BT_KV_STRING;
    kv->n = n;
    kv->v.arr = tab;
    return BT_OK;
}

bt_status bt_kvlist_add(struct bt_kvlist *l, const struct bt_kv *kv) {
    if (kv->type == BT_KV_STRING) return bt_kvlist_str(l, kv->key, kv->v.s);
    if (kv->type == BT_KV_ARRAY) {
        if (kv->arr_type == BT_KV_STRING)
            return bt_kvlist_strarr(l, kv->key, (const char *const *)kv->v.arr, kv->n);
        return bt_kvlist_arr(l, kv->key, kv->arr_type, kv->v.arr, kv->n);
    }
    struct bt_kv *s = slot(l, kv->key);
    if (!s) return BT_E_NOMEM;
    const char *k = s->key;
    *s = *kv;
    s->key = k;
    return BT_OK;
}
