/* bt_kvlist.h - an owning, growable list of struct bt_kv (GGUF-style metadata). Strings and
 * arrays are copied into the list; pointers stay valid until bt_kvlist_free. */
#ifndef BT_KVLIST_H
#define BT_KVLIST_H
#include "bt/bt_plugin.h"

struct bt_kvlist {
    struct bt_kv *kv;    /* n entries */
    uint32_t      n, cap;
    void        **blobs; /* owned copies (keys, strings, arrays) */
    uint32_t      nblobs, capblobs;
};

void bt_kvlist_free(struct bt_kvlist *l);
/* all adders copy their inputs and replace an existing key; return BT_OK or BT_E_NOMEM */
bt_status bt_kvlist_u32(struct bt_kvlist *l, const char *key, uint32_t v);
bt_status bt_kvlist_i32(struct bt_kvlist *l, const char *key, int32_t v);
bt_status bt_kvlist_f32(struct bt_kvlist *l, const char *key, float v);
bt_status bt_kvlist_bool(struct bt_kvlist *l, const char *key, int v);
bt_status bt_kvlist_str(struct bt_kvlist *l, const char *key, const char *s);
/* numeric array of arr_type (BT_KV_U32/I32/F32/...), n elements, packed */
bt_status bt_kvlist_arr(struct bt_kvlist *l, const char *key, uint32_t arr_type, const void *data,
                        uint64_t n);
/* string array: n NUL-terminated strings */
bt_status bt_kvlist_strarr(struct bt_kvlist *l, const char *key, const char *const *s, uint64_t n);
/* copy any kv (deep) */
bt_status bt_kvlist_add(struct bt_kvlist *l, const struct bt_kv *kv);
const struct bt_kv *bt_kvlist_find(const struct bt_kvlist *l, const char *key);
/* element size of a numeric BT_KV_* type (0 for STRING/ARRAY) */
size_t bt_kv_type_size(uint32_t type);
#endif
