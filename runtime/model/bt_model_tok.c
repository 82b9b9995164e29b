/* bt_model_tok.c - glue between the model and runtime/tokenizer: builds the tokenizer from the
 * reader's tokenizer.ggml.* metadata; tokenize / token-piece helpers used by eval and generate. */
#include "bt_model_int.h"

#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include("bt_tokenizer.h")
#include "bt_tokenizer.h"
#define BT_HAVE_TOKENIZER 1
#endif
#endif

bt_status bt_model_tok_init(bt_model *m, bt_err *err) {
    (void)err;
#ifdef BT_HAVE_TOKENIZER
    struct bt_reader *r = m->r;
    uint32_t n = r->i->kv_count(r->ctx), k = 0;
    struct bt_kv *kvs = calloc(n ? n : 1, sizeof *kvs);
    if (!kvs) return bt_err_set(err, BT_E_NOMEM, "model: out of memory");
    int has_tokens = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (r->i->kv_get(r->ctx, i, &kvs[k]) != BT_OK || !kvs[k].key) continue;
        if (strcmp(kvs[k].key, "tokenizer.ggml.tokens") == 0) has_tokens = 1;
        k++;
    }
    if (!has_tokens) {
        snprintf(m->tok_err, sizeof m->tok_err, "model: no tokenizer.ggml.tokens metadata");
    } else {
        struct bt_tokenizer *tok = NULL;
        bt_err terr;
        if (bt_tokenizer_from_kvs(kvs, k, &tok, &terr) == BT_OK) {
            m->tok = tok;
        } else {
            snprintf(m->tok_err, sizeof m->tok_err, "%.*s", (int)sizeof m->tok_err - 1, terr.msg);
            bt_log(BT_LOG_WARN, "%s", m->tok_err);
        }
    }
    free(kvs);
#else
    snprintf(m->tok_err, sizeof m->tok_err, "model: built without the tokenizer");
#endif
    return BT_OK;
}

void bt_model_tok_free(bt_model *m) {
#ifdef BT_HAVE_TOKENIZER
    bt_tokenizer_free(m->tok);
#endif
    m->tok = NULL;
}

int bt_model_has_tokenizer(const bt_model *m) { return m->tok != NULL; }

static bt_status tokenize(bt_model *m, const char *text, size_t len, int special, int32_t **ids,
                          int64_t *n, bt_err *err) {
    *ids = NULL;
    *n   = 0;
    if (!m->tok) return bt_err_set(err, BT_E_UNSUPPORTED, "%s", m->tok_err);
#ifdef BT_HAVE_TOKENIZER
    size_t cnt = 0;
    bt_status st = bt_tokenizer_encode(m->tok, text, len, special, ids, &cnt);
    if (st) return bt_err_set(err, st, "model: tokenizer failed on %zu bytes of text", len);
    *n = (int64_t)cnt;
    return BT_OK;
#else
    (void)text; (void)len; (void)special;
    return BT_E_UNSUPPORTED;
#endif
}

bt_status bt_model_tokenize(bt_model *m, const char *text, size_t len, int32_t **ids,
                            int64_t *n, bt_err *err) {
    return tokenize(m, text, len, 0, ids, n, err);
}

bt_status bt_model_tokenize_special(bt_model *m, const char *text, size_t len, int32_t **ids,
                                    int64_t *n, bt_err *err) {
    return tokenize(m, text, len, 1, ids, n, err);
}

const char *bt_model_token_text(bt_model *m, int32_t id) {
#ifdef BT_HAVE_TOKENIZER
    return m->tok && id >= 0 ? bt_tokenizer_token_text(m->tok, id) : NULL;
#else
    (void)m; (void)id;
    return NULL;
#endif
}

int bt_model_token_piece(bt_model *m, int32_t id, char *buf, int cap) {
#ifdef BT_HAVE_TOKENIZER
    size_t len = 0;
    const char *p = m->tok ? bt_tokenizer_token(m->tok, id, &len) : NULL;
    if (!p) return -1;
    if (len > (size_t)cap) len = (size_t)cap;
    memcpy(buf, p, len);
    return (int)len;
#else
    (void)m; (void)id; (void)buf; (void)cap;
    return -1;
#endif
}
