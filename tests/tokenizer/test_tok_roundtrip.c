/* test_tok_roundtrip.c - decode(encode(x)) == x for the eval text, random byte strings (invalid
 * UTF-8, NULs, CESU surrogates, emoji, combining marks, CJK, whitespace runs) and special
 * token strings, with and without parse_special. usage: test_tok_roundtrip SHARED_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bt_test.h"
#include "bt_tokenizer.h"

static int g_shown = 0;

/* 1 if decode(encode(s)) == s and all ids are valid */
static int roundtrip(struct bt_tokenizer *t, const char *s, size_t n, int special) {
    int32_t *ids = NULL;
    size_t ni = 0;
    if (bt_tokenizer_encode(t, s, n, special, &ids, &ni) != BT_OK) return 0;
    int ok = 1;
    for (size_t i = 0; i < ni; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= bt_tokenizer_n_vocab(t)) ok = 0;
    char *back = NULL;
    size_t bl = 0;
    if (ok && bt_tokenizer_decode(t, ids, ni, &back, &bl) != BT_OK) ok = 0;
    if (ok && (bl != n || memcmp(back, s, n) != 0)) ok = 0;
    if (!ok && g_shown++ < 5) {
        fprintf(stderr, "round trip failed (special=%d) for %zu bytes:", special, n);
        for (size_t i = 0; i < n && i < 64; i++) fprintf(stderr, " %02x", (unsigned char)s[i]);
        fprintf(stderr, "\n");
    }
    free(back);
    bt_tokenizer_free_ids(ids);
    return ok;
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) { /* xorshift64* */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (uint32_t)((g_rng * 2685821657736338717ull) >> 32);
}

static const char *const frags[] = {
    "\xed\xa0\x80\xed\xb0\x80", /* CESU-8 surrogate pair (invalid) */
    "\xed\xa0\xbd",             /* lone high surrogate */
    "\xf0\x9f\x98\x80", "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9", /* emoji, ZWJ */
    "e\xcc\x81", "a\xcc\x8a\xcc\x81",                                      /* combining marks */
    "\xe4\xb8\xad\xe6\x96\x87", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",    /* CJK */
    " ", "  ", "\t", "\n", "\r\n", "\n\n", " \n ", "\v\f", "\xc2\xa0", "\xe2\x80\xa8", "\xe3\x80\x80",
    "The", " LORD", "'s", "'LL", "123456", " 42", "!!", "...", " (", "\"", "--",
    "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xf8\x88\x80\x80\x80", "\xf4\x90\x80\x80", /* overlong/too big */
    "\x80", "\xbf", "\xff", "\xfe", "\xc3", "\xe2\x82", "\xf0\x9f\x98",      /* stray / truncated */
    "<|begin_of_text|>", "<|end_of_text|>", "<|begin_of", "<|", "|>",
    "\xce\xb1\xce\xb2\xce\xb3", "\xd0\x9f\xd1\x80\xd0\xb8", "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7",
};

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_tok_roundtrip SHARED_DIR\n");
        return 2;
    }
    char path[4096];
    bt_err err;
    snprintf(path, sizeof(path), "%s/models/bt-tiny", argv[1]);
    struct bt_tokenizer *t = NULL;
    CHECK_EQ(bt_tokenizer_from_hf_dir(path, &t, &err), BT_OK);
    if (!t) { fprintf(stderr, "%s\n", err.msg); TEST_DONE(); }

    /* eval text */
    snprintf(path, sizeof(path), "%s/data/eval_kjv.txt", argv[1]);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (f) {
        static char text[1 << 17];
        size_t n = fread(text, 1, sizeof(text), f);
        fclose(f);
        CHECK(roundtrip(t, text, n, 0));
        CHECK(roundtrip(t, text, n, 1));
    }
    CHECK(roundtrip(t, "", 0, 0));
    CHECK(roundtrip(t, "\0", 1, 0));

    /* fully random bytes */
    char buf[4096];
    int bad = 0;
    for (int it = 0; it < 2000; it++) {
        size_t n = rnd() % 200;
        for (size_t i = 0; i < n; i++) buf[i] = (char)(rnd() & 0xFF);
        bad += !roundtrip(t, buf, n, (int)(it & 1));
    }
    CHECK_EQ(bad, 0);

    /* random mixes of the fragments, NULs and random bytes */
    bad = 0;
    for (int it = 0; it < 3000; it++) {
        size_t n = 0, k = 1 + rnd() % 24;
        for (size_t j = 0; j < k; j++) {
            uint32_t r = rnd() % 20;
            if (r == 0) buf[n++] = 0;
            else if (r == 1) buf[n++] = (char)(rnd() & 0xFF);
            else {
                const char *fr = frags[rnd() % (sizeof(frags) / sizeof(frags[0]))];
                size_t fl = strlen(fr);
                memcpy(buf + n, fr, fl);
                n += fl;
            }
        }
        bad += !roundtrip(t, buf, n, (int)(it & 1));
    }
    CHECK_EQ(bad, 0);

    /* special tokens: recognized only with parse_special, text otherwise */
    const char *sp = "a<|begin_of_text|>b<|end_of_text|><|end_of_text|>";
    int32_t *ids = NULL;
    size_t n = 0, hits = 0;
    CHECK_EQ(bt_tokenizer_encode(t, sp, strlen(sp), 1, &ids, &n), BT_OK);
    for (size_t i = 0; i < n; i++) hits += ids[i] == 0 || ids[i] == 1;
    CHECK_EQ(hits, 3);
    CHECK(n >= 2 && ids[1] == 0 && ids[n - 1] == 1 && ids[n - 2] == 1);
    bt_tokenizer_free_ids(ids);
    CHECK_EQ(bt_tokenizer_encode(t, sp, strlen(sp), 0, &ids, &n), BT_OK);
    hits = 0;
    for (size_t i = 0; i < n; i++) hits += ids[i] == 0 || ids[i] == 1;
    CHECK_EQ(hits, 0);
    bt_tokenizer_free_ids(ids);
    CHECK(roundtrip(t, sp, strlen(sp), 0));
    CHECK(roundtrip(t, sp, strlen(sp), 1));

    /* long runs (1 MiB): one huge pre-token, whitespace runs, CJK; must not crash or stall */
    size_t big = 1 << 20;
    char *lg = malloc(big);
    static const char *const fills[] = {"a", " ", "\n", "\xe4\xb8\xad", " \n", "\xff"};
    for (size_t fi = 0; lg && fi < sizeof(fills) / sizeof(fills[0]); fi++) {
        size_t fl = strlen(fills[fi]), m = big / fl * fl;
        for (size_t i = 0; i < m; i += fl) memcpy(lg + i, fills[fi], fl);
        CHECK(roundtrip(t, lg, m, 0));
    }
    free(lg);

    /* decode rejects bad ids */
    int32_t badid[2] = {5, 8192};
    char *s = (char *)1;
    size_t sl = 1;
    CHECK_EQ(bt_tokenizer_decode(t, badid, 2, &s, &sl), BT_E_INVAL);
    CHECK(s == NULL && sl == 0);
    bt_tokenizer_free(t);
    TEST_DONE();
}
