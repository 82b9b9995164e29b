/* bt_tokenizer_hf.c - bt_tokenizer_from_hf_dir: a HF model folder's tokenizer.json (and
 * tokenizer_config.json) -> GGUF metadata (bt_hf_tokenizer_kvs) -> tokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt_tokenizer.h"
#include "hf_tokenizer.h"

bt_status bt_tokenizer_from_hf_dir(const char *dir, struct bt_tokenizer **out, char *errbuf,
                                   size_t errlen) {
    if (out) *out = NULL;
    if (!dir || !out) {
        if (errbuf && errlen) snprintf(errbuf, errlen, "tokenizer: no folder or output pointer");
        return BT_E_INVAL;
    }
    size_t dl = strlen(dir);
    char *path = malloc(dl + 32);
    if (!path) return BT_E_NOMEM;
    snprintf(path, dl + 32, "%s%stokenizer.json", dir, dl && dir[dl - 1] == '/' ? "" : "/");
    struct bt_kvlist kvs = {0};
    bt_status st = bt_hf_tokenizer_kvs(path, &kvs, errbuf, errlen);
    free(path);
    if (st == BT_OK) st = bt_tokenizer_from_kvs(kvs.kv, kvs.n, out, errbuf, errlen);
    bt_kvlist_free(&kvs);
    return st;
}
