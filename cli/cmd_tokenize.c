/* cmd_tokenize.c - `bt-pipeline tokenize --model M FILE`: the ids of FILE (- = stdin), space
 * separated, on one line, without BOS. M is a HF folder (tokenizer.json) or any model a reader opens. */
#include "bt_tokenizer.h"
#include "bt_types.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef BT_HAVE_TOKENIZER
/* tokenizer for a model path: HF folder directly, otherwise from a reader's metadata */
static bt_status load_tokenizer(const char *model, const struct bt_cli_opts *o, struct bt_tokenizer **tok,
                                bt_err *err) {
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/tokenizer.json", model);
    if (stat(path, &sb) == 0) {
        return bt_tokenizer_from_hf_dir(model, tok, err);
    }
    bt_registry *reg;
    bt_status rst = bt_cli_registry(o, &reg, err);
    if (rst) return rst;
    struct bt_reader *r;
    bt_status st = bt_reader_open(reg, "auto", model, NULL, &r, err);
    if (st == BT_OK) {
        uint32_t n = r->i->kv_count(r->ctx);
        struct bt_kv *kvs = calloc(n + 1, sizeof(*kvs));
        uint32_t k = 0;
        for (uint32_t i = 0; kvs && i < n; i++)
            if (r->i->kv_get(r->ctx, i, &kvs[k]) == BT_OK) k++;
        bt_err terr;
        bt_err_clear(&terr);
        st = kvs ? bt_tokenizer_from_kvs(kvs, k, tok, &terr) : BT_E_NOMEM;
        if (st) bt_err_set(err, st, "%s: %s", model, terr.msg);
        free(kvs);
        bt_reader_close(r);
    }
    bt_registry_free(reg);
    return st;
}

int bt_cli_tokenize(const struct bt_cli_opts *o, const struct bt_cli_args *a) {
    const char *model = bt_cli_str(a, "model"), *file = a->pos[0];
    int special = bt_cli_count(a, "special") > 0;
    bt_err err;
    bt_err_clear(&err);
    struct bt_tokenizer *tok = NULL;
    size_t len = 0, n = 0;
    int32_t *ids = NULL;
    char *text = NULL;
    bt_status st = load_tokenizer(model, o, &tok, &err);
    if (st == BT_OK) st = bt_cli_read_input(file, &text, &len, &err);
    if (st == BT_OK) {
        st = bt_tokenizer_encode(tok, text, len, special, &ids, &n);
        if (st) bt_err_set(&err, st, "%s: cannot tokenize", file);
    }
    if (st == BT_OK) {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    } else {
        fprintf(stderr, "bt-pipeline: error: %s\n", err.msg);
    }
    bt_tokenizer_free_ids(ids);
    bt_tokenizer_free(tok);
    free(text);
    return bt_cli_exit_code(st);
}
#endif
