/* test_hf_tokenizer.c - tokenizer.json -> GGUF metadata: the bt-tiny keys checked against the
 * json (read independently with json-c), unsupported model types, malformed files, a
 * SentencePiece-style tokenizer (with merges and from scores only).
 * usage: test_hf_tokenizer SHARED_DIR TMP_DIR */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../bt_test.h"
#include "bt_tokenizer.h"
#include "hf_tokenizer.h"

static char g_tmp[4096];

static const char *write_tmp(const char *name, const char *data, size_t len) {
    static char path[4200];
    snprintf(path, sizeof(path), "%s/%s", g_tmp, name);
    FILE *f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "cannot write %s\n", path); exit(1); }
    fwrite(data, 1, len, f);
    fclose(f);
    return path;
}

/* status and message of bt_hf_tokenizer_kvs on a tokenizer.json given as text */
static bt_status kvs_of(const char *name, const char *json, bt_err *err) {
    const char *p = write_tmp(name, json, strlen(json));
    struct bt_kvlist l = {0};
    bt_status st = bt_hf_tokenizer_kvs(p, &l, err);
    bt_kvlist_free(&l);
    return st;
}

/* warnings: BT_OK with the first one in err->msg, or through the log function (plugins) */
static char g_logged[1024];
static int  g_nlogged;
static void capture_log(int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (level == BT_LOG_WARN) vsnprintf(g_logged, sizeof(g_logged), fmt, ap);
    va_end(ap);
    g_nlogged++;
}

static void test_warnings(void) {
    static const char json[] =
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[],"
        "\"byte_fallback\":true},\"pre_tokenizer\":{\"type\":\"Whitespace\"},"
        "\"decoder\":{\"type\":\"ByteLevel\"}}";
    static const char first[] = "tokenizer.json: byte_fallback is ignored for byte-level BPE";
    bt_err err;
    CHECK_EQ(kvs_of("warn.json", json, &err), BT_OK);
    CHECK_EQ(err.status, BT_OK);
    CHECK(strcmp(err.msg, first) == 0);
    const char *p = write_tmp("warn.json", json, strlen(json));
    struct bt_kvlist l = {0};
    bt_err_set(&err, BT_OK, "untouched");
    CHECK_EQ(bt_hf_tokenizer_kvs_log(p, &l, &err, capture_log), BT_OK);
    CHECK(strcmp(err.msg, "untouched") == 0); /* the warning went to the log, once */
    CHECK_EQ(g_nlogged, 1);
    CHECK(strcmp(g_logged, first) == 0);
    CHECK(bt_kvlist_find(&l, "tokenizer.ggml.tokens") != NULL);
    bt_kvlist_free(&l);
    CHECK_EQ(bt_hf_tokenizer_kvs_log("/nonexistent/tokenizer.json", &l, &err, capture_log), BT_E_IO);
    CHECK(err.status == BT_E_IO && strstr(err.msg, "/nonexistent/tokenizer.json") != NULL);
    bt_kvlist_free(&l);
}

static void test_bt_tiny(const char *shared) {
    char path[4200];
    bt_err err, terr;
    snprintf(path, sizeof(path), "%s/models/bt-tiny/tokenizer.json", shared);
    struct bt_kvlist l = {0};
    bt_status st = bt_hf_tokenizer_kvs(path, &l, &err);
    CHECK_EQ(st, BT_OK);
    if (st) { fprintf(stderr, "%s\n", err.msg); return; }
    CHECK_EQ(err.status, BT_OK);
    CHECK_EQ(err.msg[0], 0); /* no warning for a known pre-tokenizer */
    json_object *root = json_object_from_file(path);
    CHECK(root != NULL);
    json_object *model = json_object_object_get(root, "model");
    json_object *vocab = json_object_object_get(model, "vocab");
    json_object *merges = json_object_object_get(model, "merges");
    json_object *pre = json_object_object_get(root, "pre_tokenizer");
    json_object *split = json_object_array_get_idx(json_object_object_get(pre, "pretokenizers"), 0);
    const char *regex = json_object_get_string(json_object_object_get(json_object_object_get(split, "pattern"), "Regex"));

    const struct bt_kv *kv = bt_kvlist_find(&l, "tokenizer.ggml.model");
    CHECK(kv && strcmp(kv->v.s, "gpt2") == 0);
    kv = bt_kvlist_find(&l, "tokenizer.ggml.pre");
    CHECK(kv && strcmp(kv->v.s, "llama-bpe") == 0);
    kv = bt_kvlist_find(&l, "bt.tokenizer.regex");
    CHECK(kv && strcmp(kv->v.s, regex) == 0 && strcmp(kv->v.s, bt_hf_regex_llama3) == 0);
    const struct bt_kv *tk = bt_kvlist_find(&l, "tokenizer.ggml.tokens");
    CHECK(tk && tk->type == BT_KV_ARRAY && tk->arr_type == BT_KV_STRING);
    CHECK_EQ(tk->n, json_object_object_length(vocab));
    const char *const *toks = tk->v.arr;
    size_t bad = 0;
    json_object_object_foreach(vocab, k, v) {
        int64_t id = json_object_get_int64(v);
        if (id < 0 || (uint64_t)id >= tk->n || strcmp(toks[id], k) != 0) bad++;
    }
    CHECK_EQ(bad, 0);
    const struct bt_kv *tt = bt_kvlist_find(&l, "tokenizer.ggml.token_type");
    CHECK(tt && tt->arr_type == BT_KV_I32 && tt->n == tk->n);
    const int32_t *types = tt->v.arr;
    CHECK_EQ(types[0], 3);
    CHECK_EQ(types[1], 3);
    CHECK_EQ(types[2], 1);
    const struct bt_kv *mk = bt_kvlist_find(&l, "tokenizer.ggml.merges");
    CHECK(mk && mk->n == json_object_array_length(merges));
    bad = 0;
    for (size_t i = 0; mk && i < mk->n; i++) {
        json_object *m = json_object_array_get_idx(merges, i);
        char want[512];
        snprintf(want, sizeof(want), "%s %s", json_object_get_string(json_object_array_get_idx(m, 0)),
                 json_object_get_string(json_object_array_get_idx(m, 1)));
        if (strcmp(((const char *const *)mk->v.arr)[i], want) != 0) bad++;
    }
    CHECK_EQ(bad, 0);
    kv = bt_kvlist_find(&l, "tokenizer.ggml.bos_token_id");
    CHECK(kv && kv->type == BT_KV_U32 && kv->v.u == 0);
    kv = bt_kvlist_find(&l, "tokenizer.ggml.eos_token_id");
    CHECK(kv && kv->type == BT_KV_U32 && kv->v.u == 1);
    kv = bt_kvlist_find(&l, "tokenizer.ggml.add_bos_token");
    CHECK(kv && kv->type == BT_KV_BOOL && kv->v.u == 1);

    /* the same kvs build the tokenizer; the folder helper gives the same result */
    struct bt_tokenizer *a = NULL, *b = NULL;
    CHECK_EQ(bt_tokenizer_from_kvs(l.kv, l.n, &a, &terr), BT_OK);
    snprintf(path, sizeof(path), "%s/models/bt-tiny", shared);
    CHECK_EQ(bt_tokenizer_from_hf_dir(path, &b, &terr), BT_OK);
    if (a && b) {
        CHECK_EQ(bt_tokenizer_n_vocab(a), 8192);
        CHECK_EQ(bt_tokenizer_bos(a), 0);
        CHECK_EQ(bt_tokenizer_eos(a), 1);
        CHECK_EQ(bt_tokenizer_add_bos(a), 1);
        CHECK_EQ(bt_tokenizer_find(a, "\xc4\xa0the", 5), bt_tokenizer_find(b, "\xc4\xa0the", 5));
        size_t pl = 0;
        const char *p = bt_tokenizer_token(a, bt_tokenizer_find(a, "\xc4\xa0the", 5), &pl);
        CHECK(p && pl == 4 && memcmp(p, " the", 4) == 0);
        CHECK(bt_tokenizer_token(a, 8192, &pl) == NULL);
        CHECK_EQ(bt_tokenizer_token_type(a, 0), 3);
    }
    bt_tokenizer_free(a);
    bt_tokenizer_free(b);
    json_object_put(root);
    bt_kvlist_free(&l);
}

static void test_errors(const char *shared) {
    bt_err err, terr;
    CHECK_EQ(kvs_of("t1.json", "{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]]}}", &err),
             BT_E_UNSUPPORTED);
    CHECK(strcmp(err.msg, "tokenizer.json: model type Unigram is not supported") == 0);
    CHECK_EQ(err.status, BT_E_UNSUPPORTED);
    CHECK_EQ(kvs_of("t2.json", "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}}", &err),
             BT_E_UNSUPPORTED);
    CHECK(strcmp(err.msg, "tokenizer.json: model type WordPiece is not supported") == 0);
    /* malformed: each must fail cleanly with a message */
    static const char *const bad[] = {
        "", "{", "[]", "{\"model\": 5}", "{\"model\":{\"type\":\"BPE\"}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":2},\"merges\":[]},"
        "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",                        /* hole at 1 */
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":\"x\"},\"merges\":[]},"
        "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",                        /* id not int */
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"ab\"]},"
        "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",                        /* merge no space */
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[[1,2]]},"
        "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",                        /* merge not str */
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1}},"
        "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",                        /* no merges */
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[]},"
        "\"added_tokens\":[{\"id\":1,\"content\":\"c\"}],"
        "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",                        /* id conflict */
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-3},\"merges\":[]},"
        "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",                        /* negative id */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bt_status st = kvs_of("bad.json", bad[i], &err);
        CHECK(st == BT_E_FORMAT || st == BT_E_UNSUPPORTED);
        CHECK_EQ(err.status, st);
        CHECK(strncmp(err.msg, "tokenizer.json", 14) == 0 || strstr(err.msg, "bad.json") != NULL);
        if (st == BT_OK) fprintf(stderr, "bad[%zu] accepted\n", i);
    }
    struct bt_kvlist l = {0};
    CHECK_EQ(bt_hf_tokenizer_kvs("/nonexistent/tokenizer.json", &l, &err), BT_E_IO);
    CHECK(err.status == BT_E_IO && strstr(err.msg, "/nonexistent/tokenizer.json") != NULL);
    CHECK_EQ(bt_hf_tokenizer_kvs("/nonexistent/tokenizer.json", &l, NULL), BT_E_IO); /* err may be NULL */
    /* the folder helper passes that message and status through bt_err */
    struct bt_tokenizer *nt = NULL;
    CHECK_EQ(bt_tokenizer_from_hf_dir("/nonexistent", &nt, &terr), BT_E_IO);
    CHECK(nt == NULL && terr.status == BT_E_IO);
    CHECK(strstr(terr.msg, "/nonexistent/tokenizer.json") != NULL);
    bt_kvlist_free(&l);

    /* the real file truncated at many points: clean errors, never a crash */
    char path[4200];
    snprintf(path, sizeof(path), "%s/models/bt-tiny/tokenizer.json", shared);
    size_t len = 0;
    char *full = bt_test_slurp(path, &len);
    CHECK(full != NULL);
    int fails = 0;
    for (size_t cut = 1; full && cut < len; cut += len / 37 + 1) {
        const char *p = write_tmp("cut.json", full, cut);
        struct bt_kvlist c = {0};
        if (bt_hf_tokenizer_kvs(p, &c, &err) != BT_E_FORMAT) fails++;
        bt_kvlist_free(&c);
    }
    CHECK_EQ(fails, 0);
    free(full);

    /* from_kvs on bad metadata */
    struct bt_tokenizer *t = NULL;
    struct bt_kvlist k = {0};
    CHECK_EQ(bt_tokenizer_from_kvs(k.kv, k.n, &t, &terr), BT_E_FORMAT);
    bt_kvlist_str(&k, "tokenizer.ggml.model", "bert");
    CHECK_EQ(bt_tokenizer_from_kvs(k.kv, k.n, &t, &terr), BT_E_UNSUPPORTED);
    CHECK(strstr(terr.msg, "bert") != NULL);
    CHECK_EQ(terr.status, BT_E_UNSUPPORTED);
    bt_kvlist_str(&k, "tokenizer.ggml.model", "gpt2");
    bt_kvlist_u32(&k, "tokenizer.ggml.tokens", 3);
    CHECK_EQ(bt_tokenizer_from_kvs(k.kv, k.n, &t, &terr), BT_E_FORMAT);
    const char *toks[] = {"a", "b", "ab"};
    bt_kvlist_strarr(&k, "tokenizer.ggml.tokens", toks, 3);
    CHECK_EQ(bt_tokenizer_from_kvs(k.kv, k.n, &t, &terr), BT_E_FORMAT); /* no merges */
    const char *merges[] = {"a b"};
    bt_kvlist_strarr(&k, "tokenizer.ggml.merges", merges, 1);
    bt_kvlist_str(&k, "tokenizer.ggml.pre", "no-such-pre");
    CHECK_EQ(bt_tokenizer_from_kvs(k.kv, k.n, &t, &terr), BT_E_UNSUPPORTED);
    CHECK(strstr(terr.msg, "'no-such-pre'") != NULL); /* names it and lists the known ones */
    CHECK(strstr(terr.msg, "llama-bpe") != NULL && strstr(terr.msg, "tekken") != NULL);
    bt_kvlist_str(&k, "tokenizer.ggml.pre", "qwen2"); /* a known name builds */
    CHECK_EQ(bt_tokenizer_from_kvs(k.kv, k.n, &t, &terr), BT_OK);
    CHECK(bt_tokenizer_add_bos(t) == 0 && bt_tokenizer_add_eos(t) == 0); /* qwen2's defaults */
    bt_tokenizer_free(t);
    bt_kvlist_str(&k, "tokenizer.ggml.pre", "llama-bpe"); /* BOS by default */
    CHECK_EQ(bt_tokenizer_from_kvs(k.kv, k.n, &t, &terr), BT_OK);
    CHECK(bt_tokenizer_add_bos(t) == 1 && bt_tokenizer_add_eos(t) == 0);
    bt_tokenizer_free(t);
    bt_kvlist_bool(&k, "tokenizer.ggml.add_bos_token", 0); /* the keys win */
    bt_kvlist_bool(&k, "tokenizer.ggml.add_eos_token", 1);
    CHECK_EQ(bt_tokenizer_from_kvs(k.kv, k.n, &t, &terr), BT_OK);
    CHECK(bt_tokenizer_add_bos(t) == 0 && bt_tokenizer_add_eos(t) == 1);
    bt_tokenizer_free(t);
    const char *stages[] = {"(?:ab)+", "b"}; /* bt.tokenizer.regex as a list of stages */
    bt_kvlist_strarr(&k, "bt.tokenizer.regex", stages, 2);
    CHECK_EQ(bt_tokenizer_from_kvs(k.kv, k.n, &t, &terr), BT_OK);
    int32_t *sid = NULL;
    size_t sn = 0;
    CHECK_EQ(bt_tokenizer_encode(t, "abab", 4, 0, &sid, &sn), BT_OK); /* abab -> a|b|a|b */
    CHECK(sn == 4 && sid[0] == 0 && sid[1] == 1 && sid[2] == 0 && sid[3] == 1);
    bt_tokenizer_free_ids(sid);
    bt_tokenizer_free(t);
    bt_kvlist_str(&k, "bt.tokenizer.regex", "(?:ab)+"); /* one stage: "ab" is merged */
    CHECK_EQ(bt_tokenizer_from_kvs(k.kv, k.n, &t, &terr), BT_OK);
    CHECK_EQ(bt_tokenizer_encode(t, "abab", 4, 0, &sid, &sn), BT_OK);
    CHECK(sn == 2 && sid[0] == 2 && sid[1] == 2);
    bt_tokenizer_free_ids(sid);
    bt_tokenizer_free(t);
    t = NULL;
    bt_kvlist_str(&k, "bt.tokenizer.regex", "(unclosed");
    CHECK_EQ(bt_tokenizer_from_kvs(k.kv, k.n, &t, &terr), BT_E_FORMAT);
    CHECK(strstr(terr.msg, "regex") != NULL);
    CHECK(strncmp(terr.msg, "tokenizer: ", 11) == 0);
    CHECK_EQ(bt_tokenizer_from_kvs(k.kv, k.n, &t, NULL), BT_E_FORMAT); /* err may be NULL */
    CHECK(t == NULL);
    bt_kvlist_free(&k);
}

/* SentencePiece-style BPE (TinyLlama-like layout) */
static const char spm_json_head[] =
    "{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xe2\x96\x81\"},"
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xe2\x96\x81\"}]},"
    "\"pre_tokenizer\":null,"
    "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true},{\"id\":1,\"content\":\"<s>\",\"special\":true},"
    "{\"id\":2,\"content\":\"</s>\",\"special\":true}],"
    "\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"unk_token\":\"<unk>\",\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2,";
static const char spm_json_tail[] =
    "\"\xe2\x96\x81\":259,\"h\":260,\"e\":261,\"l\":262,\"o\":263,\"\xe2\x96\x81h\":264,\"ll\":265,"
    "\"\xe2\x96\x81he\":266,\"llo\":267,\"\xe2\x96\x81hello\":268,\"w\":269,\"r\":270,\"d\":271},"
    "\"merges\":[\"\xe2\x96\x81 h\",\"l l\",\"\xe2\x96\x81h e\",\"ll o\",\"\xe2\x96\x81he llo\"]}}";

static void check_spm(struct bt_tokenizer *t, const char *what) {
    static const int32_t want1[] = {268, 259, 269, 263, 270, 262, 271};
    /* a segment after a verbatim token gets its own U+2581 prefix, as HF's Prepend normalizer
     * and llama.cpp do; decoding drops only the first one */
    static const int32_t want2[] = {264, 3 + 'i', 3 + '\n', 1, 259, 3 + 'x'};
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_EQ(bt_tokenizer_encode(t, "hello world", 11, 0, &ids, &n), BT_OK);
    CHECK(n == 7 && memcmp(ids, want1, sizeof(want1)) == 0);
    if (n != 7 || memcmp(ids, want1, sizeof(want1)) != 0) fprintf(stderr, "spm (%s): hello world wrong\n", what);
    char *s = NULL;
    size_t sl = 0;
    CHECK_EQ(bt_tokenizer_decode(t, ids, n, &s, &sl), BT_OK);
    CHECK(s && sl == 11 && strcmp(s, "hello world") == 0);
    free(s);
    bt_tokenizer_free_ids(ids);
    CHECK_EQ(bt_tokenizer_encode(t, "hi\n<s>x", 7, 1, &ids, &n), BT_OK);
    CHECK(n == 6 && memcmp(ids, want2, sizeof(want2)) == 0);
    CHECK_EQ(bt_tokenizer_decode(t, ids, n, &s, &sl), BT_OK);
    CHECK(s && strcmp(s, "hi\n<s> x") == 0);
    free(s);
    bt_tokenizer_free_ids(ids);
    static const char odd[] = "  a\xff\x00 \xe4\xb8\xad  ";
    CHECK_EQ(bt_tokenizer_encode(t, odd, sizeof(odd) - 1, 0, &ids, &n), BT_OK);
    CHECK_EQ(bt_tokenizer_decode(t, ids, n, &s, &sl), BT_OK);
    CHECK(s && sl == sizeof(odd) - 1 && memcmp(s, odd, sl) == 0);
    free(s);
    bt_tokenizer_free_ids(ids);
}

static void test_spm(void) {
    char *j = malloc(16384);
    bt_err err, terr;
    size_t o = (size_t)snprintf(j, 16384, "%s", spm_json_head);
    for (int b = 0; b < 256; b++) o += (size_t)snprintf(j + o, 16384 - o, "\"<0x%02X>\":%d,", b, 3 + b);
    snprintf(j + o, 16384 - o, "%s", spm_json_tail);
    const char *p = write_tmp("tokenizer.json", j, strlen(j));
    free(j);
    struct bt_kvlist l = {0};
    CHECK_EQ(bt_hf_tokenizer_kvs(p, &l, &err), BT_OK);
    const struct bt_kv *kv = bt_kvlist_find(&l, "tokenizer.ggml.model");
    CHECK(kv && strcmp(kv->v.s, "llama") == 0);
    kv = bt_kvlist_find(&l, "tokenizer.ggml.token_type");
    CHECK(kv && ((const int32_t *)kv->v.arr)[0] == 2 && ((const int32_t *)kv->v.arr)[1] == 3 && ((const int32_t *)kv->v.arr)[3] == 6 &&
          ((const int32_t *)kv->v.arr)[260] == 1);
    kv = bt_kvlist_find(&l, "tokenizer.ggml.scores");
    CHECK(kv && kv->n == 272 && ((const float *)kv->v.arr)[268] == -5.0f);
    struct bt_tokenizer *t = NULL;
    CHECK_EQ(bt_tokenizer_from_kvs(l.kv, l.n, &t, &terr), BT_OK);
    if (t) check_spm(t, "merges");
    bt_tokenizer_free(t);
    /* as a llama.cpp GGUF would carry it: scores, no merges */
    struct bt_kvlist g = {0};
    for (uint32_t i = 0; i < l.n; i++)
        if (strcmp(l.kv[i].key, "tokenizer.ggml.merges") != 0) bt_kvlist_add(&g, &l.kv[i]);
    t = NULL;
    CHECK_EQ(bt_tokenizer_from_kvs(g.kv, g.n, &t, &terr), BT_OK);
    if (t) check_spm(t, "scores");
    bt_tokenizer_free(t);
    bt_kvlist_free(&g);
    bt_kvlist_free(&l);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_hf_tokenizer SHARED_DIR TMP_DIR\n");
        return 2;
    }
    snprintf(g_tmp, sizeof(g_tmp), "%s", argv[2]);
    if (mkdir(g_tmp, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s\n", g_tmp);
        return 1;
    }
    test_bt_tiny(argv[1]);
    test_errors(argv[1]);
    test_warnings();
    test_spm();
    TEST_DONE();
}
