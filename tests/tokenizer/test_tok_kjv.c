/* test_tok_kjv.c - bt-tiny tokenizer on data/eval_kjv.txt must reproduce the Hugging Face ids
 * in data/eval_kjv.tokens.json exactly (whole text and paragraph-wise); also times encoding.
 * usage: test_tok_kjv SHARED_DIR */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../bt_test.h"
#include "bt_tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* compares got[0..n) with the json int array; prints the first mismatch */
static int same_ids(const char *what, const int32_t *got, size_t n, json_object *want) {
    size_t wn = json_object_array_length(want);
    for (size_t i = 0; i < n && i < wn; i++) {
        int32_t w = json_object_get_int(json_object_array_get_idx(want, i));
        if (got[i] != w) {
            fprintf(stderr, "%s: first mismatch at index %zu: got %d, expected %d\n", what, i,
                    got[i], w);
            fprintf(stderr, "  got     :");
            for (size_t k = i >= 3 ? i - 3 : 0; k < i + 5 && k < n; k++) fprintf(stderr, " %d", got[k]);
            fprintf(stderr, "\n  expected:");
            for (size_t k = i >= 3 ? i - 3 : 0; k < i + 5 && k < wn; k++)
                fprintf(stderr, " %d", json_object_get_int(json_object_array_get_idx(want, k)));
            fprintf(stderr, "\n");
            return 0;
        }
    }
    if (n != wn) {
        fprintf(stderr, "%s: got %zu ids, expected %zu (common prefix equal)\n", what, n, wn);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_tok_kjv SHARED_DIR\n");
        return 2;
    }
    char path[4096];
    bt_err err;
    snprintf(path, sizeof(path), "%s/data/eval_kjv.tokens.json", argv[1]);
    json_object *ref = json_object_from_file(path);
    CHECK(ref != NULL);
    if (!ref) TEST_DONE();
    json_object *whole = json_object_object_get(ref, "whole_ids");
    json_object *para = json_object_object_get(ref, "paragraph_ids");
    CHECK(whole && para);
    snprintf(path, sizeof(path), "%s/data/eval_kjv.txt", argv[1]);
    size_t len = 0;
    char *text = bt_test_slurp(path, &len);
    CHECK(text != NULL);
    snprintf(path, sizeof(path), "%s/models/bt-tiny", argv[1]);
    struct bt_tokenizer *tok = NULL;
    bt_status st = bt_tokenizer_from_hf_dir(path, &tok, &err);
    CHECK_EQ(st, BT_OK);
    if (st || !text || !whole || !para) {
        fprintf(stderr, "%s\n", err.msg);
        TEST_DONE();
    }
    CHECK_EQ(bt_tokenizer_bos(tok), json_object_get_int(json_object_object_get(ref, "bos_id")));
    CHECK_EQ(bt_tokenizer_eos(tok), json_object_get_int(json_object_object_get(ref, "eos_id")));

    /* whole text */
    int32_t *ids = NULL;
    size_t n = 0;
    double t0 = now();
    CHECK_EQ(bt_tokenizer_encode(tok, text, len, 0, &ids, &n), BT_OK);
    double cold = now() - t0;
    CHECK(same_ids("whole_ids", ids, n, whole));
    char *back = NULL;
    size_t blen = 0;
    CHECK_EQ(bt_tokenizer_decode(tok, ids, n, &back, &blen), BT_OK);
    CHECK(back && blen == len && memcmp(back, text, len) == 0);
    free(back);
    bt_tokenizer_free_ids(ids);

    /* paragraphs: Python's text.split("\n\n") (the trailing empty part included), each part
     * + "\n\n" encoded on its own, ids concatenated */
    int32_t *all = malloc((len + 16) * sizeof(*all));
    size_t nall = 0, pos = 0;
    char *buf = malloc(len + 3);
    CHECK(all && buf);
    for (;;) {
        const char *e = NULL;
        for (size_t i = pos; i + 1 < len; i++)
            if (text[i] == '\n' && text[i + 1] == '\n') { e = text + i; break; }
        size_t pl = e ? (size_t)(e - text) - pos : len - pos;
        memcpy(buf, text + pos, pl);
        memcpy(buf + pl, "\n\n", 2);
        CHECK_EQ(bt_tokenizer_encode(tok, buf, pl + 2, 0, &ids, &n), BT_OK);
        if (nall + n <= len + 16) memcpy(all + nall, ids, n * sizeof(*ids));
        nall += n;
        bt_tokenizer_free_ids(ids);
        if (!e) break;
        pos = (size_t)(e - text) + 2;
    }
    CHECK(nall <= len + 16 && same_ids("paragraph_ids", all, nall, para));
    free(all);
    free(buf);
    bt_tokenizer_free(tok);

    /* speed: fresh tokenizer (cold cache) and a warm one, best of 3 */
    double best_cold = cold, best_warm = 1e9;
    for (int r = 0; r < 3; r++) {
        tok = NULL;
        if (bt_tokenizer_from_hf_dir(path, &tok, &err)) break;
        t0 = now();
        bt_tokenizer_encode(tok, text, len, 0, &ids, &n);
        double c = now() - t0;
        bt_tokenizer_free_ids(ids);
        t0 = now();
        bt_tokenizer_encode(tok, text, len, 0, &ids, &n);
        double w = now() - t0;
        bt_tokenizer_free_ids(ids);
        if (c < best_cold) best_cold = c;
        if (w < best_warm) best_warm = w;
        bt_tokenizer_free(tok);
    }
    t0 = now();
    tok = NULL;
    bt_tokenizer_from_hf_dir(path, &tok, &err);
    double load = now() - t0;
    bt_tokenizer_free(tok);
    fprintf(stderr, "encode speed on %zu bytes: %.1f MB/s cold cache, %.1f MB/s warm; load %.1f ms\n",
            len, len / best_cold / 1e6, len / best_warm / 1e6, load * 1e3);
    CHECK(len / best_cold / 1e6 >= 1.0);
    free(text);
    json_object_put(ref);
    TEST_DONE();
}
