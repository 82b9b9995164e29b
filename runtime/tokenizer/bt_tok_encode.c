/* bt_tok_encode.c - text -> token ids: verbatim special tokens, then either the PCRE2 regex
 * pre-tokenizer + byte-level BPE (gpt2) or U+2581 whitespace + BPE with byte fallback (llama).
 * Invalid UTF-8 bytes become single-byte pre-tokens, so any byte string round-trips. */
#include <stdlib.h>
#include <string.h>

#include "bt_tok_internal.h"

static int scratch_reserve(struct bt_tokenizer *t, size_t n) {
    if (n <= t->scratch_cap) return 0;
    size_t nc = t->scratch_cap ? t->scratch_cap : 256;
    while (nc < n) nc *= 2;
    char *s = realloc(t->scratch, nc);
    if (!s) return -1;
    t->scratch = s;
    t->scratch_cap = nc;
    return 0;
}

/* symbol for one byte that is not a token on its own */
static int push_byte(struct bt_tokenizer *t, unsigned char b) {
    int32_t id = t->byte_id[b] >= 0 ? t->byte_id[b] : t->unk;
    return id >= 0 ? bt_ivec_push(&t->syms, id) : 0;
}

/* one byte-level pre-token -> ids (cached) */
static int encode_word_gpt2(struct bt_tokenizer *t, const char *s, size_t n, struct bt_ivec *out) {
    uint64_t h = bt_tok_hash(s, n);
    size_t nc;
    const int32_t *c = bt_cache_get(&t->cache, s, n, h, &nc);
    if (c) return bt_ivec_append(out, c, nc);
    size_t start = out->n;
    int32_t whole = -1;
    if (t->ignore_merges) {
        if (scratch_reserve(t, 2 * n)) return -1;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) o += bt_utf8_put(bt_gpt2_byte_cp((unsigned char)s[i]), t->scratch + o);
        whole = bt_strmap_get(&t->vocab, t->scratch, o);
    }
    if (whole >= 0) {
        if (bt_ivec_push(out, whole)) return -1;
    } else {
        t->syms.n = 0;
        for (size_t i = 0; i < n; i++)
            if (push_byte(t, (unsigned char)s[i])) return -1;
        if (bt_bpe_merge(&t->work, &t->pairs, t->syms.v, (uint32_t)t->syms.n, out)) return -1;
    }
    bt_cache_put(&t->cache, s, n, h, out->v + start, out->n - start);
    return 0;
}

/* valid UTF-8 run through split stage k: the regex matches and the gaps between them are
 * pieces; each piece goes through the next stage, pieces of the last stage are pre-tokens */
static int split_run(struct bt_tokenizer *t, uint32_t k, const char *s, size_t n,
                     struct bt_ivec *out) {
    if (k >= t->n_re) return encode_word_gpt2(t, s, n, out);
    pcre2_code *re = t->re[k];
    pcre2_match_data *md = t->md[k];
    size_t pos = 0, gap = 0;
    while (pos < n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc < 0) break; /* no more matches (or a match error: the rest is one gap) */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) { /* empty match: step over one character, it stays in the gap */
            size_t l = ms < n ? bt_utf8_valid_len((const unsigned char *)s + ms, n - ms) : 1;
            pos = ms + (l ? l : 1);
            continue;
        }
        if (ms > gap && split_run(t, k + 1, s + gap, ms - gap, out)) return -1;
        if (split_run(t, k + 1, s + ms, me - ms, out)) return -1;
        pos = gap = me;
    }
    if (gap < n && split_run(t, k + 1, s + gap, n - gap, out)) return -1;
    return 0;
}

/* end of the valid UTF-8 run starting at i */
static size_t valid_run_end(const char *s, size_t i, size_t n) {
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) { i++; continue; }
        size_t l = bt_utf8_valid_len((const unsigned char *)s + i, n - i);
        if (!l) break;
        i += l;
    }
    return i;
}

static int encode_gpt2(struct bt_tokenizer *t, const char *s, size_t n, struct bt_ivec *out) {
    size_t pos = 0;
    while (pos < n) {
        size_t e = valid_run_end(s, pos, n);
        if (e > pos && split_run(t, 0, s + pos, e - pos, out)) return -1;
        if (e < n && encode_word_gpt2(t, s + e, 1, out)) return -1; /* one invalid byte */
        pos = e < n ? e + 1 : e;
    }
    return 0;
}

/* SentencePiece style: ' ' -> U+2581 (and one in front of every segment: at the start and
 * after each verbatim token, as llama.cpp and a Prepend normalizer do), then BPE over the whole
 * segment; characters missing from the vocabulary fall back to <0xXX> byte tokens */
static int encode_spm(struct bt_tokenizer *t, const char *s, size_t n, struct bt_ivec *out) {
    if (scratch_reserve(t, 3 * n + 3)) return -1;
    size_t o = 0;
    if (t->add_space_prefix) {
        memcpy(t->scratch, "\xe2\x96\x81", 3);
        o = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') { memcpy(t->scratch + o, "\xe2\x96\x81", 3); o += 3; }
        else t->scratch[o++] = s[i];
    }
    const char *p = t->scratch;
    int32_t whole = t->ignore_merges ? bt_strmap_get(&t->vocab, p, o) : -1;
    if (whole >= 0) return bt_ivec_push(out, whole);
    t->syms.n = 0;
    for (size_t i = 0; i < o;) {
        size_t l = bt_utf8_valid_len((const unsigned char *)p + i, o - i);
        int32_t id = l ? bt_strmap_get(&t->vocab, p + i, l) : -1;
        if (id >= 0) {
            if (bt_ivec_push(&t->syms, id)) return -1;
        } else {
            for (size_t k = 0; k < (l ? l : 1); k++)
                if (push_byte(t, (unsigned char)p[i + k])) return -1;
        }
        i += l ? l : 1;
    }
    return bt_bpe_merge(&t->work, &t->pairs, t->syms.v, (uint32_t)t->syms.n, out);
}

static int encode_segment(struct bt_tokenizer *t, const char *s, size_t n, struct bt_ivec *out) {
    if (!n) return 0;
    return t->mode == BT_TOK_SPM ? encode_spm(t, s, n, out) : encode_gpt2(t, s, n, out);
}

bt_status bt_tokenizer_encode(struct bt_tokenizer *t, const char *text, size_t len,
                              int parse_special, int32_t **ids, size_t *n) {
    if (ids) *ids = NULL;
    if (n) *n = 0;
    if (!t || !ids || !n || (len && !text) || len > ((size_t)1 << 30)) return BT_E_INVAL;
    struct bt_ivec out = {0};
    size_t seg = 0, i = 0;
    while (i < len) {
        unsigned b = (unsigned char)text[i];
        uint32_t k = t->spec_first[b], k1 = t->spec_first[b + 1];
        int32_t hit = -1;
        for (; k < k1; k++) {
            const struct bt_special *sp = &t->spec[k];
            if (sp->control && !parse_special) continue;
            if (sp->len <= len - i && memcmp(text + i, t->text + sp->off, sp->len) == 0) {
                hit = (int32_t)k;
                break;
            }
        }
        if (hit < 0) { i++; continue; }
        if (encode_segment(t, text + seg, i - seg, &out) ||
            bt_ivec_push(&out, t->spec[hit].id))
            goto nomem;
        i += t->spec[hit].len;
        seg = i;
    }
    if (encode_segment(t, text + seg, len - seg, &out)) goto nomem;
    if (!out.v && !(out.v = malloc(sizeof(int32_t)))) return BT_E_NOMEM; /* never NULL on OK */
    *ids = out.v;
    *n = out.n;
    return BT_OK;
nomem:
    free(out.v);
    return BT_E_NOMEM;
}

void bt_tokenizer_free_ids(int32_t *ids) { free(ids); }
