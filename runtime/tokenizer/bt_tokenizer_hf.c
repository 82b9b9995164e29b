/* bt_tokenizer_hf.c - bt_tokenizer_from_hf_dir: a HF model folder's tokenizer.json (and
 * tokenizer_config.json) -> GGUF metadata (bt_hf_tokenizer_kvs) -> tokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt_tokenizer.h"
#include "hf_tokenizer.h"

bt_status bt_tokenizer_from_hf_dir(const char *dir, struct bt_tokenizer **out, bt_err *err) {
    if (err) bt_err_clear(err);
    if (out) *out = NULL;
    if (!dir || !out) return bt_err_set(err, BT_E_INVAL, "tokenizer: no folder or output pointer");
    size_t dl = strlen(dir);
    char *path = malloc(dl + 32);
    if (!path) return bt_err_set(err, BT_E_NOMEM, "tokenizer: out of memory");
    snprintf(path, dl + 32, "%s%stokenizer.json", dir, dl && dir[dl - 1] == '/' ? "" : "/");
    struct bt_kvlist kvs = {0};
    bt_status st = bt_hf_tokenizer_kvs(path, &kvs, err);
    free(path);
    if (st == BT_OK) st = bt_tokenizer_from_kvs(kvs.kv, kvs.n, out, err); /* clears a warning left in msg */
    bt_kvlist_free(&kvs);
    return st;
}
