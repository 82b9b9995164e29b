/* bt_tokenizer.c - builds a BPE tokenizer from GGUF tokenizer metadata; byte-level (GPT-2 /
 * Llama-3) and SentencePiece-style construction, special tokens and decoding pieces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt_pretok.h"
#include "bt_tok_internal.h"

static const struct bt_kv *kv_find(const struct bt_kv *kvs, uint32_t n, const char *key) {
    for (uint32_t i = 0; i < n; i++)
        if (kvs[i].key && strcmp(kvs[i].key, key) == 0) return &kvs[i];
    return NULL;
}

/* integer value of a scalar kv; 1 if it is an integer/bool type */
static int kv_int(const struct bt_kv *kv, int64_t *v) {
    if (!kv) return 0;
    switch (kv->type) {
    case BT_KV_U8: case BT_KV_U16: case BT_KV_U32: case BT_KV_U64: case BT_KV_BOOL:
        *v = (int64_t)kv->v.u;
        return 1;
    case BT_KV_I8: case BT_KV_I16: case BT_KV_I32: case BT_KV_I64:
        *v = kv->v.i;
        return 1;
    default:
        return 0;
    }
}

/* element i of a numeric array kv as int64 / double */
static int64_t arr_int(const struct bt_kv *kv, uint64_t i) {
    const void *a = kv->v.arr;
    switch (kv->arr_type) {
    case BT_KV_U8: case BT_KV_BOOL: return ((const uint8_t *)a)[i];
    case BT_KV_I8: return ((const int8_t *)a)[i];
    case BT_KV_U16: return ((const uint16_t *)a)[i];
    case BT_KV_I16: return ((const int16_t *)a)[i];
    case BT_KV_U32: return ((const uint32_t *)a)[i];
    case BT_KV_I32: return ((const int32_t *)a)[i];
    case BT_KV_U64: return (int64_t)((const uint64_t *)a)[i];
    case BT_KV_I64: return ((const int64_t *)a)[i];
    default: return 0;
    }
}

static double arr_f(const struct bt_kv *kv, uint64_t i) {
    if (kv->arr_type == BT_KV_F32) return ((const float *)kv->v.arr)[i];
    if (kv->arr_type == BT_KV_F64) return ((const double *)kv->v.arr)[i];
    return (double)arr_int(kv, i);
}

static int kv_is_strarr(const struct bt_kv *kv) {
    return kv && kv->type == BT_KV_ARRAY && kv->arr_type == BT_KV_STRING && (kv->v.arr || !kv->n);
}

static int kv_is_numarr(const struct bt_kv *kv) {
    return kv && kv->type == BT_KV_ARRAY && kv->arr_type != BT_KV_STRING &&
           kv->arr_type != BT_KV_ARRAY && (kv->v.arr || !kv->n);
}

/* reverse of the GPT-2 byte map: byte for code point cp, -1 if none */
static int gpt2_cp_byte(uint32_t cp) {
    if (cp < 256) return bt_gpt2_byte_cp(cp) == cp ? (int)cp : -1;
    if (cp <= 288) return (int)(cp - 256);       /* 0..32 */
    if (cp <= 322) return (int)(cp - 289 + 127); /* 127..160 */
    return cp == 323 ? 173 : -1;
}

/* decoded bytes of token i written to dst (capacity >= text length); returns the count */
static size_t make_piece(const struct bt_tokenizer *t, uint32_t i, char *dst) {
    const unsigned char *s = (const unsigned char *)t->text + t->text_off[i];
    size_t n = t->text_len[i], o = 0;
    int32_t ty = t->ttype[i];
    if (ty == BT_TT_CONTROL || ty == BT_TT_USER || ty == BT_TT_UNKNOWN) {
        memcpy(dst, s, n);
        return n;
    }
    if (t->mode == BT_TOK_SPM) {
        static const char hx[] = "0123456789ABCDEF";
        if (ty == BT_TT_BYTE && n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x') {
            const char *h1 = strchr(hx, s[3]), *h2 = strchr(hx, s[4]);
            if (h1 && h2 && s[3] && s[4]) {
                dst[0] = (char)((h1 - hx) * 16 + (h2 - hx));
                return 1;
            }
        }
        for (size_t k = 0; k < n;) {
            if (k + 3 <= n && s[k] == 0xE2 && s[k + 1] == 0x96 && s[k + 2] == 0x81) {
                dst[o++] = ' ';
                k += 3;
            } else {
                dst[o++] = (char)s[k++];
            }
        }
        return o;
    }
    for (size_t k = 0; k < n;) {
        size_t l = bt_utf8_valid_len(s + k, n - k);
        if (l == 0) { dst[o++] = (char)s[k++]; continue; }
        uint32_t cp = l == 1 ? s[k] : l == 2 ? ((s[k] & 0x1Fu) << 6 | (s[k + 1] & 0x3Fu)) : 0xFFFFFFFF;
        int b = gpt2_cp_byte(cp);
        if (b >= 0) dst[o++] = (char)b;
        else { memcpy(dst + o, s + k, l); o += l; }
        k += l;
    }
    return o;
}

static int cmp_special(const void *a, const void *b, void *arena) {
    const struct bt_special *x = a, *y = b;
    unsigned char fx = ((unsigned char *)arena)[x->off], fy = ((unsigned char *)arena)[y->off];
    if (fx != fy) return fx < fy ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* insertion sort with a context (few specials; qsort_r is not portable) */
static void sort_specials(struct bt_special *s, uint32_t n, const char *arena) {
    for (uint32_t i = 1; i < n; i++) {
        struct bt_special x = s[i];
        uint32_t j = i;
        while (j > 0 && cmp_special(&s[j - 1], &x, (void *)arena) > 0) { s[j] = s[j - 1]; j--; }
        s[j] = x;
    }
}

/* merges "a b" -> pair map; missing pieces are skipped */
static bt_status build_merges(struct bt_tokenizer *t, const struct bt_kv *mk, bt_err *err) {
    const char *const *ms = (const char *const *)mk->v.arr;
    if (bt_pairmap_init(&t->pairs, (uint32_t)mk->n)) return bt_err_set(err, BT_E_NOMEM, "tokenizer: out of memory");
    char *buf = NULL;
    size_t cap = 0;
    for (uint64_t r = 0; r < mk->n; r++) {
        const char *m = ms[r];
        if (!m || !m[0]) continue;
        const char *sp = strchr(m + 1, ' ');
        if (!sp) {
            free(buf);
            return bt_err_set(err, BT_E_FORMAT, "tokenizer: merge %llu '%s' has no space",
                              (unsigned long long)r, m);
        }
        size_t la = (size_t)(sp - m), lb = strlen(sp + 1);
        if (la + lb + 1 > cap) {
            cap = 2 * (la + lb + 1);
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); return bt_err_set(err, BT_E_NOMEM, "tokenizer: out of memory"); }
            buf = nb;
        }
        memcpy(buf, m, la);
        memcpy(buf + la, sp + 1, lb);
        int32_t a = bt_strmap_get(&t->vocab, m, la), b = bt_strmap_get(&t->vocab, sp + 1, lb);
        int32_t o = bt_strmap_get(&t->vocab, buf, la + lb);
        if (a < 0 || b < 0 || o < 0) continue;
        if (bt_pairmap_put(&t->pairs, a, b, (int32_t)r, o)) {
            free(buf);
            return bt_err_set(err, BT_E_NOMEM, "tokenizer: out of memory");
        }
    }
    free(buf);
    return BT_OK;
}

/* SentencePiece without merges: every split of a scored token into two vocab tokens is a
 * merge, ranked by descending score */
static int cmp_score_desc(const void *a, const void *b) {
    const double *x = a, *y = b; /* {score, id} pairs */
    if (x[0] != y[0]) return x[0] > y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

static bt_status build_from_scores(struct bt_tokenizer *t, const struct bt_kv *sk, bt_err *err) {
    uint32_t n = t->n_vocab;
    double *ord = malloc((size_t)n * 2 * sizeof(*ord));
    if (!ord || bt_pairmap_init(&t->pairs, n)) {
        free(ord);
        return bt_err_set(err, BT_E_NOMEM, "tokenizer: out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        ord[2 * i] = sk ? arr_f(sk, i) : 0.0;
        ord[2 * i + 1] = i;
    }
    qsort(ord, n, 2 * sizeof(*ord), cmp_score_desc);
    for (uint32_t r = 0; r < n; r++) {
        uint32_t id = (uint32_t)ord[2 * r + 1];
        if (t->ttype[id] != BT_TT_NORMAL && t->ttype[id] != BT_TT_USER) continue;
        const char *s = t->text + t->text_off[id];
        uint32_t len = t->text_len[id];
        for (uint32_t k = 1; k < len; k++) {
            if (((unsigned char)s[k] & 0xC0) == 0x80) continue; /* split on characters */
            int32_t a = bt_strmap_get(&t->vocab, s, k), b = bt_strmap_get(&t->vocab, s + k, len - k);
            if (a < 0 || b < 0) continue;
            if (bt_pairmap_put(&t->pairs, a, b, (int32_t)r, (int32_t)id)) {
                free(ord);
                return bt_err_set(err, BT_E_NOMEM, "tokenizer: out of memory");
            }
        }
    }
    free(ord);
    return BT_OK;
}

/* compiles split stage t->n_re from pattern */
static bt_status build_regex(struct bt_tokenizer *t, const char *pattern, bt_err *err) {
    int ec;
    PCRE2_SIZE eo;
    uint32_t k = t->n_re;
    if (k >= BT_TOK_MAX_RE)
        return bt_err_set(err, BT_E_UNSUPPORTED, "tokenizer: more than %d pre-tokenizer regexes",
                          BT_TOK_MAX_RE);
    t->re[k] = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                             &ec, &eo, NULL);
    if (!t->re[k]) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        return bt_err_set(err, BT_E_FORMAT, "tokenizer: pre-tokenizer regex %u error at %zu: %s",
                          k + 1, (size_t)eo, (const char *)msg);
    }
    t->n_re++;
    (void)pcre2_jit_compile(t->re[k], PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    t->md[k] = pcre2_match_data_create_from_pattern(t->re[k], NULL);
    if (!t->md[k]) return bt_err_set(err, BT_E_NOMEM, "tokenizer: out of memory");
    return BT_OK;
}

/* the split stages: bt.tokenizer.regex (a string or a string array: the exact rules of a
 * tokenizer.json) wins, else the list tokenizer.ggml.pre names (bt_pretok.c) */
static bt_status build_pretok(struct bt_tokenizer *t, const struct bt_kv *rk,
                              const struct bt_pretok *pt, const char *pname, bt_err *err) {
    bt_status st = BT_OK;
    if (rk && rk->type == BT_KV_STRING && rk->v.s) return build_regex(t, rk->v.s, err);
    if (kv_is_strarr(rk) && rk->n > 0) {
        for (uint64_t i = 0; i < rk->n && !st; i++) {
            const char *re = ((const char *const *)rk->v.arr)[i];
            st = re ? build_regex(t, re, err)
                    : bt_err_set(err, BT_E_FORMAT, "tokenizer: bt.tokenizer.regex[%llu] is empty",
                                 (unsigned long long)i);
        }
        return st;
    }
    if (!pt) {
        char names[1024];
        return bt_err_set(err, BT_E_UNSUPPORTED,
                          "tokenizer: pre-tokenizer '%s' (tokenizer.ggml.pre) is not known; "
                          "known: %s", pname, bt_pretok_names(names, sizeof names));
    }
    for (int i = 0; pt->re[i] && !st; i++) st = build_regex(t, pt->re[i], err);
    return st;
}

bt_status bt_tokenizer_from_kvs(const struct bt_kv *kvs, uint32_t nkv, struct bt_tokenizer **out,
                                bt_err *err) {
    if (err) bt_err_clear(err);
    if (!out) return bt_err_set(err, BT_E_INVAL, "tokenizer: no output pointer");
    *out = NULL;
    const struct bt_kv *mk = kv_find(kvs, nkv, "tokenizer.ggml.model");
    if (!mk || mk->type != BT_KV_STRING || !mk->v.s)
        return bt_err_set(err, BT_E_FORMAT, "tokenizer: tokenizer.ggml.model is missing");
    uint32_t mode = strcmp(mk->v.s, "gpt2") == 0 ? BT_TOK_GPT2
                    : strcmp(mk->v.s, "llama") == 0 ? BT_TOK_SPM : 0;
    if (!mode)
        return bt_err_set(err, BT_E_UNSUPPORTED, "tokenizer: tokenizer model '%s' is not supported",
                          mk->v.s);
    const struct bt_kv *tk = kv_find(kvs, nkv, "tokenizer.ggml.tokens");
    if (!kv_is_strarr(tk) || tk->n == 0 || tk->n >= (1u << 30))
        return bt_err_set(err, BT_E_FORMAT, "tokenizer: tokenizer.ggml.tokens is missing or not a string array");
    const struct bt_kv *tt = kv_find(kvs, nkv, "tokenizer.ggml.token_type");
    const struct bt_kv *merges = kv_find(kvs, nkv, "tokenizer.ggml.merges");
    const struct bt_kv *scores = kv_find(kvs, nkv, "tokenizer.ggml.scores");
    if (tt && (!kv_is_numarr(tt) || tt->n != tk->n))
        return bt_err_set(err, BT_E_FORMAT, "tokenizer: tokenizer.ggml.token_type has %llu entries, expected %llu",
                          (unsigned long long)(tt->type == BT_KV_ARRAY ? tt->n : 0), (unsigned long long)tk->n);
    if (scores && (!kv_is_numarr(scores) || scores->n != tk->n))
        return bt_err_set(err, BT_E_FORMAT, "tokenizer: tokenizer.ggml.scores does not match the vocabulary");
    if (merges && !kv_is_strarr(merges))
        return bt_err_set(err, BT_E_FORMAT, "tokenizer: tokenizer.ggml.merges is not a string array");
    if (mode == BT_TOK_GPT2 && !merges)
        return bt_err_set(err, BT_E_FORMAT, "tokenizer: gpt2 tokenizer without tokenizer.ggml.merges");

    struct bt_tokenizer *t = calloc(1, sizeof(*t));
    if (!t) return bt_err_set(err, BT_E_NOMEM, "tokenizer: out of memory");
    bt_status st = BT_E_NOMEM;
    uint32_t n = (uint32_t)tk->n;
    const char *const *toks = (const char *const *)tk->v.arr;
    t->mode = mode;
    t->n_vocab = n;
    t->bos = t->eos = t->unk = -1;
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) total += (toks[i] ? strlen(toks[i]) : 0) + 1;
    if (total >= UINT32_MAX) { st = bt_err_set(err, BT_E_FORMAT, "tokenizer: vocabulary too large"); goto fail; }
    t->text = malloc(total);
    t->piece = malloc(total);
    t->text_off = malloc(n * sizeof(uint32_t));
    t->text_len = malloc(n * sizeof(uint32_t));
    t->piece_off = malloc(n * sizeof(uint32_t));
    t->piece_len = malloc(n * sizeof(uint32_t));
    t->ttype = malloc(n * sizeof(int32_t));
    if (!t->text || !t->piece || !t->text_off || !t->text_len || !t->piece_off || !t->piece_len ||
        !t->ttype)
        goto nomem;
    size_t o = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t l = toks[i] ? strlen(toks[i]) : 0;
        if (l) memcpy(t->text + o, toks[i], l);
        t->text[o + l] = 0;
        t->text_off[i] = (uint32_t)o;
        t->text_len[i] = (uint32_t)l;
        o += l + 1;
        int64_t ty = tt ? arr_int(tt, i) : BT_TT_NORMAL;
        t->ttype[i] = ty >= 1 && ty <= 6 ? (int32_t)ty : BT_TT_NORMAL;
    }
    if (bt_strmap_init(&t->vocab, t->text, t->text_off, t->text_len, n)) goto nomem;
    o = 0;
    for (uint32_t i = 0; i < n; i++) {
        t->piece_off[i] = (uint32_t)o;
        t->piece_len[i] = (uint32_t)make_piece(t, i, t->piece + o);
        o += t->piece_len[i];
    }

    /* byte symbols */
    for (unsigned b = 0; b < 256; b++) {
        char buf[8];
        size_t l;
        if (mode == BT_TOK_GPT2) l = bt_utf8_put(bt_gpt2_byte_cp(b), buf);
        else l = (size_t)snprintf(buf, sizeof(buf), "<0x%02X>", b);
        t->byte_id[b] = bt_strmap_get(&t->vocab, buf, l);
    }

    /* merges */
    if (merges) st = build_merges(t, merges, err);
    else st = build_from_scores(t, scores, err);
    if (st) goto fail;

    /* specials: control and user-defined tokens, matched verbatim */
    uint32_t ns = 0;
    for (uint32_t i = 0; i < n; i++)
        if ((t->ttype[i] == BT_TT_CONTROL || t->ttype[i] == BT_TT_USER) && t->text_len[i]) ns++;
    t->spec = calloc(ns ? ns : 1, sizeof(*t->spec));
    if (!t->spec) goto nomem;
    for (uint32_t i = 0; i < n; i++) {
        if ((t->ttype[i] != BT_TT_CONTROL && t->ttype[i] != BT_TT_USER) || !t->text_len[i]) continue;
        t->spec[t->n_spec++] = (struct bt_special){t->text_off[i], t->text_len[i], (int32_t)i,
                                                   t->ttype[i] == BT_TT_CONTROL};
    }
    sort_specials(t->spec, t->n_spec, t->text);
    for (uint32_t b = 0, k = 0; b <= 256; b++) {
        while (k < t->n_spec && (unsigned char)t->text[t->spec[k].off] < b) k++;
        t->spec_first[b] = k;
    }

    /* options */
    const struct bt_kv *pre = kv_find(kvs, nkv, "tokenizer.ggml.pre");
    const char *pname = pre && pre->type == BT_KV_STRING && pre->v.s ? pre->v.s : "default";
    const struct bt_pretok *pt = mode == BT_TOK_GPT2 ? bt_pretok_find(pname) : NULL;
    int64_t v;
    t->add_bos = kv_int(kv_find(kvs, nkv, "tokenizer.ggml.add_bos_token"), &v)
                     ? v != 0 : (mode == BT_TOK_SPM || (pt && pt->add_bos));
    t->add_eos = kv_int(kv_find(kvs, nkv, "tokenizer.ggml.add_eos_token"), &v) ? v != 0 : 0;
    t->ignore_merges = kv_int(kv_find(kvs, nkv, "bt.tokenizer.ignore_merges"), &v)
                           ? v != 0 : (pt && pt->ignore_merges);
    t->add_space_prefix = mode == BT_TOK_SPM &&
        (kv_int(kv_find(kvs, nkv, "tokenizer.ggml.add_space_prefix"), &v) ? v != 0 : 1);
    if (kv_int(kv_find(kvs, nkv, "tokenizer.ggml.bos_token_id"), &v) && v >= 0 && v < n) t->bos = (int32_t)v;
    else if (mode == BT_TOK_SPM && n > 2) t->bos = 1;
    if (kv_int(kv_find(kvs, nkv, "tokenizer.ggml.eos_token_id"), &v) && v >= 0 && v < n) t->eos = (int32_t)v;
    else if (mode == BT_TOK_SPM && n > 2) t->eos = 2;
    if (kv_int(kv_find(kvs, nkv, "tokenizer.ggml.unknown_token_id"), &v) && v >= 0 && v < n) t->unk = (int32_t)v;
    else if (mode == BT_TOK_SPM) t->unk = 0;

    if (mode == BT_TOK_GPT2 &&
        (st = build_pretok(t, kv_find(kvs, nkv, "bt.tokenizer.regex"), pt, pname, err)))
        goto fail;
    *out = t;
    return BT_OK;
nomem:
    st = bt_err_set(err, BT_E_NOMEM, "tokenizer: out of memory");
fail:
    bt_tokenizer_free(t);
    return st;
}

void bt_tokenizer_free(struct bt_tokenizer *t) {
    if (!t) return;
    for (uint32_t k = 0; k < BT_TOK_MAX_RE; k++) {
        if (t->md[k]) pcre2_match_data_free(t->md[k]);
        if (t->re[k]) pcre2_code_free(t->re[k]);
    }
    bt_cache_free(&t->cache);
    bt_bpe_work_free(&t->work);
    bt_strmap_free(&t->vocab);
    bt_pairmap_free(&t->pairs);
    free(t->syms.v);
    free(t->scratch);
    free(t->spec);
    free(t->text);
    free(t->piece);
    free(t->text_off);
    free(t->text_len);
    free(t->piece_off);
    free(t->piece_len);
    free(t->ttype);
    free(t);
}

const char *bt_tokenizer_token(const struct bt_tokenizer *t, int32_t id, size_t *len) {
    if (!t || id < 0 || (uint32_t)id >= t->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->piece_len[id];
    return t->piece + t->piece_off[id];
}

const char *bt_tokenizer_token_text(const struct bt_tokenizer *t, int32_t id) {
    if (!t || id < 0 || (uint32_t)id >= t->n_vocab) return NULL;
    return t->text + t->text_off[id];
}

int32_t bt_tokenizer_token_type(const struct bt_tokenizer *t, int32_t id) {
    if (!t || id < 0 || (uint32_t)id >= t->n_vocab) return 0;
    return t->ttype[id];
}

int32_t bt_tokenizer_find(const struct bt_tokenizer *t, const char *s, size_t len) {
    return t ? bt_strmap_get(&t->vocab, s, len) : -1;
}

uint32_t bt_tokenizer_n_vocab(const struct bt_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t bt_tokenizer_bos(const struct bt_tokenizer *t) { return t ? t->bos : -1; }
int32_t bt_tokenizer_eos(const struct bt_tokenizer *t) { return t ? t->eos : -1; }
int bt_tokenizer_add_bos(const struct bt_tokenizer *t) { return t ? t->add_bos : 0; }
int bt_tokenizer_add_eos(const struct bt_tokenizer *t) { return t ? t->add_eos : 0; }

bt_status bt_tokenizer_decode(const struct bt_tokenizer *t, const int32_t *ids, size_t n,
                              char **text, size_t *len) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!t || !text || (n && !ids)) return BT_E_INVAL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= t->n_vocab) return BT_E_INVAL;
        total += t->piece_len[ids[i]];
    }
    char *s = malloc(total + 1);
    if (!s) return BT_E_NOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = t->piece + t->piece_off[ids[i]];
        size_t l = t->piece_len[ids[i]];
        if (i == 0 && t->add_space_prefix && l && p[0] == ' ' && t->ttype[ids[i]] != BT_TT_CONTROL &&
            t->ttype[ids[i]] != BT_TT_USER) {
            p++;
            l--;
        }
        memcpy(s + o, p, l);
        o += l;
    }
    s[o] = 0;
    *text = s;
    if (len) *len = o;
    return BT_OK;
}
