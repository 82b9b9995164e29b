/* bt_tokenize_test.c - prints the token ids of a file (space-separated, one line, no BOS) with
 * the tokenizer of a HF model folder; the logic the CLI's `tokenize` command reuses.
 * --dump-kvs MODEL_DIR prints the tokenizer metadata bt_hf_tokenizer_kvs makes, as JSON. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt_tokenizer.h"
#include "hf_tokenizer.h"

/* the kvs of DIR/tokenizer.json as one JSON object {key: value} */
static int dump_kvs(const char *dir) {
    char path[4096];
    bt_err err;
    snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
    struct bt_kvlist l = {0};
    if (bt_hf_tokenizer_kvs(path, &l, &err)) {
        fprintf(stderr, "bt-tokenize-test: %s\n", err.msg);
        bt_kvlist_free(&l);
        return 1;
    }
    if (err.msg[0]) fprintf(stderr, "bt-tokenize-test: warning: %s\n", err.msg);
    json_object *o = json_object_new_object();
    for (uint32_t i = 0; i < l.n; i++) {
        const struct bt_kv *kv = &l.kv[i];
        json_object *v = NULL;
        if (kv->type == BT_KV_STRING) v = json_object_new_string_len(kv->v.s, (int)kv->n);
        else if (kv->type == BT_KV_BOOL) v = json_object_new_boolean(kv->v.u != 0);
        else if (kv->type == BT_KV_U32) v = json_object_new_int64((int64_t)kv->v.u);
        else if (kv->type == BT_KV_ARRAY) {
            v = json_object_new_array();
            for (uint64_t k = 0; k < kv->n; k++) {
                json_object *e = NULL;
                if (kv->arr_type == BT_KV_STRING) e = json_object_new_string(((const char *const *)kv->v.arr)[k]);
                else if (kv->arr_type == BT_KV_I32) e = json_object_new_int(((const int32_t *)kv->v.arr)[k]);
                else if (kv->arr_type == BT_KV_F32) e = json_object_new_double(((const float *)kv->v.arr)[k]);
                json_object_array_add(v, e);
            }
        }
        json_object_object_add(o, kv->key, v);
    }
    fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), stdout);
    fputc('\n', stdout);
    json_object_put(o);
    bt_kvlist_free(&l);
    return 0;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; }
            else buf = nb;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    int special = 0, a = 1;
    if (argc == 3 && strcmp(argv[1], "--dump-kvs") == 0) return dump_kvs(argv[2]);
    if (a < argc && strcmp(argv[a], "--special") == 0) { special = 1; a++; }
    if (argc - a != 2) {
        fprintf(stderr, "usage: bt-tokenize-test [--special] MODEL_DIR FILE | --dump-kvs MODEL_DIR\n");
        return 2;
    }
    bt_err err;
    struct bt_tokenizer *tok = NULL;
    bt_status st = bt_tokenizer_from_hf_dir(argv[a], &tok, &err);
    if (st) {
        fprintf(stderr, "bt-tokenize-test: %s\n", err.msg);
        return 1;
    }
    size_t len = 0;
    char *text = read_file(argv[a + 1], &len);
    if (!text) {
        fprintf(stderr, "bt-tokenize-test: %s: cannot read\n", argv[a + 1]);
        bt_tokenizer_free(tok);
        return 1;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    st = bt_tokenizer_encode(tok, text, len, special, &ids, &n);
    if (st) {
        fprintf(stderr, "bt-tokenize-test: encode failed (%d)\n", st);
    } else {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    }
    bt_tokenizer_free_ids(ids);
    free(text);
    bt_tokenizer_free(tok);
    return st ? 1 : 0;
}
