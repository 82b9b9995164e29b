/* hf_tokenizer.c - parses a Hugging Face tokenizer.json (and tokenizer_config.json next to it)
 * with json-c and emits the GGUF tokenizer metadata keys (see hf_tokenizer.h). */
#include "hf_tokenizer.h"
#include "bt_pretok.h"
#include "bt_types.h"
#include "bt/bt.h" /* struct bt_err, bt_err_set (bt_types) */

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char bt_hf_regex_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char bt_hf_regex_gpt2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_BYTE = 6 };

/* parse state shared by the helpers below */
struct hf_ctx {
    const char *path;   /* tokenizer.json path, for messages */
    bt_err     *err;    /* caller's error sink (may be NULL) */
    void (*log)(int level, const char *fmt, ...); /* where warnings go; NULL: into err->msg */
    int         warned; /* a warning was given (only the first is kept) */
    char      **tok;    /* tokens by id (borrowed from the json tree) */
    int32_t    *ttype;  /* token types by id */
    float      *score;  /* scores by id (llama mode) */
    uint32_t    n;      /* number of ids (max id + 1) */
};

__attribute__((format(printf, 3, 4)))
static bt_status fail(struct hf_ctx *c, bt_status st, const char *fmt, ...) {
    if (!c->err) return st;
    char msg[sizeof(c->err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return bt_err_set(c->err, st, "%s", msg);
}

/* a warning: status stays BT_OK; only the first one is kept */
__attribute__((format(printf, 2, 3)))
static void warn(struct hf_ctx *c, const char *fmt, ...) {
    if (c->warned || (!c->log && !c->err)) return;
    c->warned = 1;
    char msg[sizeof(c->err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->log) c->log(BT_LOG_WARN, "%s", msg);
    else bt_err_set(c->err, BT_OK, "%s", msg);
}

/* reads and parses a json file; *obj NULL + BT_OK when missing and optional */
static bt_status load_json(struct hf_ctx *c, const char *path, int optional, json_object **obj) {
    *obj = NULL;
    if (optional && access(path, F_OK) != 0 && errno == ENOENT) return BT_OK;
    char *buf = NULL;
    size_t len = 0;
    bt_status st = bt_file_read_all(path, &buf, &len, c->err);
    if (st) return st;
    json_tokener *jt = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
    if (!jt) { free(buf); return fail(c, BT_E_NOMEM, "%s: out of memory", path); }
    json_object *o = len <= (size_t)INT32_MAX ? json_tokener_parse_ex(jt, buf, (int)len) : NULL;
    enum json_tokener_error je = json_tokener_get_error(jt);
    size_t end = json_tokener_get_parse_end(jt);
    json_tokener_free(jt);
    free(buf);
    if (!o || je != json_tokener_success) {
        if (o) json_object_put(o);
        return fail(c, BT_E_FORMAT, "%s: invalid json at byte %zu: %s", path, end,
                    je == json_tokener_continue ? "unexpected end of file"
                                                : json_tokener_error_desc(je));
    }
    *obj = o;
    return BT_OK;
}

static json_object *get(json_object *o, const char *key) {
    json_object *v = NULL;
    if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v))
        return v;
    return NULL;
}

static const char *get_str(json_object *o, const char *key) {
    json_object *v = get(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static const char *obj_type(json_object *o) { return get_str(o, "type"); }

/* o itself if its type matches, else the first element of a Sequence (list under seqkey) */
static json_object *find_typed(json_object *o, const char *seqkey, const char *type) {
    if (!o) return NULL;
    const char *t = obj_type(o);
    if (t && strcmp(t, type) == 0) return o;
    json_object *arr = get(o, seqkey);
    if (t && strcmp(t, "Sequence") == 0 && arr && json_object_is_type(arr, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *e = json_object_array_get_idx(arr, i);
            const char *et = obj_type(e);
            if (et && strcmp(et, type) == 0) return e;
        }
    }
    return NULL;
}

/* places token s at id, checking range and conflicts */
static bt_status put_token(struct hf_ctx *c, int64_t id, const char *s, int32_t type) {
    if (id < 0 || (uint64_t)id >= c->n)
        return fail(c, BT_E_FORMAT, "tokenizer.json: token id %lld out of range", (long long)id);
    if (c->tok[id] && strcmp(c->tok[id], s) != 0)
        return fail(c, BT_E_FORMAT, "tokenizer.json: id %lld used by both '%s' and '%s'",
                    (long long)id, c->tok[id], s);
    c->tok[id] = (char *)s;
    if (type) c->ttype[id] = type;
    return BT_OK;
}

static int64_t find_token(const struct hf_ctx *c, const char *s) {
    if (!s) return -1;
    for (uint32_t i = 0; i < c->n; i++)
        if (c->tok[i] && strcmp(c->tok[i], s) == 0) return i;
    return -1;
}

/* bos/eos/pad in tokenizer_config.json are strings or {"content": ...} objects */
static const char *config_token(json_object *cfg, const char *key) {
    json_object *v = get(cfg, key);
    if (!v) return NULL;
    if (json_object_is_type(v, json_type_string)) return json_object_get_string(v);
    return get_str(v, "content");
}

static bt_status add_special_id(struct hf_ctx *c, struct bt_kvlist *out, const char *key,
                                json_object *cfg, const char *cfgkey, const char *const *names) {
    int64_t id = -1;
    const char *s = config_token(cfg, cfgkey);
    if (s) {
        id = find_token(c, s);
        if (id < 0) warn(c, "tokenizer_config.json: %s '%s' is not in the vocabulary", cfgkey, s);
    }
    for (int i = 0; id < 0 && names && names[i]; i++) id = find_token(c, names[i]);
    if (id < 0) return BT_OK;
    return bt_kvlist_u32(out, key, (uint32_t)id);
}

/* model.merges -> "a b" strings (pair arrays are joined with a space) */
static bt_status add_merges(struct hf_ctx *c, struct bt_kvlist *out, json_object *merges) {
    if (!merges) return BT_OK;
    if (!json_object_is_type(merges, json_type_array))
        return fail(c, BT_E_FORMAT, "tokenizer.json: model.merges is not an array");
    size_t nm = json_object_array_length(merges);
    const char **ms = calloc(nm ? nm : 1, sizeof(*ms));
    char **owned = calloc(nm ? nm : 1, sizeof(*owned));
    bt_status st = BT_OK;
    if (!ms || !owned) { st = fail(c, BT_E_NOMEM, "tokenizer.json: out of memory"); goto done; }
    for (size_t i = 0; i < nm; i++) {
        json_object *m = json_object_array_get_idx(merges, i);
        if (json_object_is_type(m, json_type_string)) {
            ms[i] = json_object_get_string(m);
            const char *sp = ms[i][0] ? strchr(ms[i] + 1, ' ') : NULL;
            if (!sp) { st = fail(c, BT_E_FORMAT, "tokenizer.json: merge %zu '%s' has no space", i, ms[i]); goto done; }
        } else if (json_object_is_type(m, json_type_array) && json_object_array_length(m) == 2 &&
                   json_object_is_type(json_object_array_get_idx(m, 0), json_type_string) &&
                   json_object_is_type(json_object_array_get_idx(m, 1), json_type_string)) {
            const char *a = json_object_get_string(json_object_array_get_idx(m, 0));
            const char *b = json_object_get_string(json_object_array_get_idx(m, 1));
            size_t la = strlen(a), lb = strlen(b);
            if (!la || !lb) { st = fail(c, BT_E_FORMAT, "tokenizer.json: merge %zu has an empty member", i); goto done; }
            owned[i] = malloc(la + lb + 2);
            if (!owned[i]) { st = fail(c, BT_E_NOMEM, "tokenizer.json: out of memory"); goto done; }
            memcpy(owned[i], a, la);
            owned[i][la] = ' ';
            memcpy(owned[i] + la + 1, b, lb + 1);
            ms[i] = owned[i];
        } else {
            st = fail(c, BT_E_FORMAT, "tokenizer.json: merge %zu is neither \"a b\" nor [a, b]", i);
            goto done;
        }
    }
    st = bt_kvlist_strarr(out, "tokenizer.ggml.merges", ms, nm);
    if (st) fail(c, st, "tokenizer.json: out of memory");
done:
    if (owned) for (size_t i = 0; i < nm; i++) free(owned[i]);
    free(owned);
    free(ms);
    return st;
}

/* byte-level pre-tokenizer -> the list of split regexes it applies in turn (Split regexes,
 * Digits, Punctuation, ByteLevel's own GPT-2 regex), named by bt_pretok_match when a known
 * family's rules; the exact list always goes to bt.tokenizer.regex */
enum { MAX_STAGES = 8 };
static bt_status byte_level_pre(struct hf_ctx *c, struct bt_kvlist *out, json_object *pre) {
    const char *re[MAX_STAGES];
    char punct[2][64];
    size_t nre = 0, npunct = 0;
    json_object *list = NULL;
    const char *t = obj_type(pre);
    if (t && strcmp(t, "Sequence") == 0) list = get(pre, "pretokenizers");
    size_t n = list && json_object_is_type(list, json_type_array) ? json_object_array_length(list)
                                                                  : (pre ? 1 : 0);
    for (size_t i = 0; i < n; i++) {
        json_object *e = list ? json_object_array_get_idx(list, i) : pre;
        const char *et = obj_type(e), *r = NULL;
        if (!et) continue;
        if (strcmp(et, "Split") == 0) {
            r = get_str(get(e, "pattern"), "Regex");
            const char *beh = get_str(e, "behavior");
            json_object *inv = get(e, "invert");
            if (!r) warn(c, "tokenizer.json: Split pre-tokenizer without a regex is not supported");
            else if ((beh && strcmp(beh, "Isolated") != 0) || (inv && json_object_get_boolean(inv)))
                warn(c, "tokenizer.json: Split behavior '%s' is treated as Isolated", beh ? beh : "?");
        } else if (strcmp(et, "ByteLevel") == 0) {
            json_object *ur = get(e, "use_regex");
            if (!ur || json_object_get_boolean(ur)) r = bt_pretok_re_gpt2;
            json_object *aps = get(e, "add_prefix_space");
            if (aps && json_object_get_boolean(aps))
                warn(c, "tokenizer.json: ByteLevel add_prefix_space is not supported (ignored)");
        } else if (strcmp(et, "Digits") == 0) {
            json_object *ind = get(e, "individual_digits");
            r = ind && json_object_get_boolean(ind) ? "\\p{N}" : "\\p{N}+";
        } else if (strcmp(et, "Punctuation") == 0 && npunct < 2) {
            const char *beh = get_str(e, "behavior");
            int run = beh && strcmp(beh, "Contiguous") == 0;
            snprintf(punct[npunct], sizeof punct[0], "%s%s", bt_pretok_re_punct, run ? "+" : "");
            r = punct[npunct++];
        } else {
            warn(c, "tokenizer.json: pre-tokenizer '%s' is not supported (ignored)", et);
        }
        if (r && nre == MAX_STAGES)
            return fail(c, BT_E_UNSUPPORTED, "tokenizer.json: more than %d pre-tokenizer stages",
                        MAX_STAGES);
        if (r) re[nre++] = r;
    }
    const struct bt_pretok *pt = nre ? bt_pretok_match(re, nre) : NULL;
    const char *pname = pt ? pt->names[0] : "default";
    if (!pt)
        warn(c, "tokenizer.json: pre-tokenizer rules of no known family; tokenizer.ggml.pre = "
                "default (bt uses the exact rules from bt.tokenizer.regex)");
    bt_status st = bt_kvlist_str(out, "tokenizer.ggml.pre", pname);
    if (st || !nre) return st;
    if (nre == 1) return bt_kvlist_str(out, "bt.tokenizer.regex", re[0]);
    return bt_kvlist_strarr(out, "bt.tokenizer.regex", re, nre);
}

/* SentencePiece-style BPE: Metaspace pre-tokenizer or a normalizer that maps ' ' to U+2581 */
static int is_spm(json_object *root, int *prefix) {
    json_object *ms = find_typed(get(root, "pre_tokenizer"), "pretokenizers", "Metaspace");
    if (ms) {
        const char *scheme = get_str(ms, "prepend_scheme");
        json_object *aps = get(ms, "add_prefix_space");
        *prefix = scheme ? strcmp(scheme, "never") != 0 : (!aps || json_object_get_boolean(aps));
        return 1;
    }
    json_object *norm = get(root, "normalizer");
    json_object *rep = find_typed(norm, "normalizers", "Replace");
    if (rep && get_str(rep, "content") && strcmp(get_str(rep, "content"), "\xe2\x96\x81") == 0) {
        *prefix = find_typed(norm, "normalizers", "Prepend") != NULL;
        return 1;
    }
    return 0;
}

static int is_byte_token(const char *s) {
    static const char hx[] = "0123456789ABCDEF";
    return strlen(s) == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && strchr(hx, s[3]) &&
           strchr(hx, s[4]) && s[5] == '>';
}

bt_status bt_hf_tokenizer_kvs(const char *path, struct bt_kvlist *out, bt_err *err) {
    if (err) bt_err_clear(err);
    return bt_hf_tokenizer_kvs_log(path, out, err, NULL);
}

bt_status bt_hf_tokenizer_kvs_log(const char *path, struct bt_kvlist *out, bt_err *err,
                                  void (*log)(int level, const char *fmt, ...)) {
    struct hf_ctx c = {.path = path, .err = err, .log = log};
    json_object *root = NULL, *cfg = NULL;
    bt_status st;
    if (!path || !out) return fail(&c, BT_E_INVAL, "tokenizer.json: no path or output list");
    if ((st = load_json(&c, path, 0, &root))) return st;

    /* tokenizer_config.json beside it (optional) */
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path + 1) : 0;
    char *cpath = malloc(dl + 32);
    if (!cpath) { st = fail(&c, BT_E_NOMEM, "tokenizer.json: out of memory"); goto done; }
    memcpy(cpath, path, dl);
    strcpy(cpath + dl, "tokenizer_config.json");
    st = load_json(&c, cpath, 1, &cfg);
    free(cpath);
    if (st) goto done;

    json_object *model = get(root, "model");
    if (!model || !json_object_is_type(model, json_type_object)) {
        st = fail(&c, BT_E_FORMAT, "tokenizer.json: %s: no \"model\" object", path);
        goto done;
    }
    const char *mtype = obj_type(model);
    json_object *vocab = get(model, "vocab");
    if (!mtype && vocab && get(model, "merges")) mtype = "BPE"; /* old files omit the type */
    if (!mtype || strcmp(mtype, "BPE") != 0) {
        st = fail(&c, BT_E_UNSUPPORTED, "tokenizer.json: model type %s is not supported",
                  mtype ? mtype : "(none)");
        goto done;
    }
    if (!vocab || !json_object_is_type(vocab, json_type_object)) {
        st = fail(&c, BT_E_FORMAT, "tokenizer.json: %s: model.vocab is not an object", path);
        goto done;
    }
    int prefix = 0, spm = is_spm(root, &prefix);
    json_object *bf = get(model, "byte_fallback");
    int byte_fallback = bf && json_object_get_boolean(bf);
    int byte_level = find_typed(get(root, "pre_tokenizer"), "pretokenizers", "ByteLevel") ||
                     find_typed(get(root, "decoder"), "decoders", "ByteLevel");
    if (spm && byte_level) {
        st = fail(&c, BT_E_UNSUPPORTED, "tokenizer.json: mixed Metaspace and ByteLevel BPE is not supported");
        goto done;
    }
    if (!spm && !byte_level) {
        st = fail(&c, BT_E_UNSUPPORTED, "tokenizer.json: BPE without a ByteLevel or Metaspace "
                                        "pre-tokenizer is not supported");
        goto done;
    }
    if (!spm && get(root, "normalizer") && !json_object_is_type(get(root, "normalizer"), json_type_null))
        warn(&c, "tokenizer.json: normalizer '%s' is ignored", obj_type(get(root, "normalizer")));

    /* ids: vocab + added_tokens; n = max id + 1 */
    json_object *added = get(root, "added_tokens");
    size_t nadded = added && json_object_is_type(added, json_type_array) ? json_object_array_length(added) : 0;
    int64_t maxid = -1;
    json_object_object_foreach(vocab, k0, v0) {
        (void)k0;
        if (!json_object_is_type(v0, json_type_int)) {
            st = fail(&c, BT_E_FORMAT, "tokenizer.json: vocab entry '%s' has a non-integer id", k0);
            goto done;
        }
        int64_t id = json_object_get_int64(v0);
        if (id > maxid) maxid = id;
    }
    for (size_t i = 0; i < nadded; i++) {
        json_object *id = get(json_object_array_get_idx(added, i), "id");
        if (!id || !json_object_is_type(id, json_type_int) || !get_str(json_object_array_get_idx(added, i), "content")) {
            st = fail(&c, BT_E_FORMAT, "tokenizer.json: added_tokens[%zu] has no id or content", i);
            goto done;
        }
        if (json_object_get_int64(id) > maxid) maxid = json_object_get_int64(id);
    }
    if (maxid < 0 || maxid >= (1 << 30)) {
        /* (no maxid + 1 here: the largest id may be INT64_MAX) */
        st = maxid < 0 ? fail(&c, BT_E_FORMAT, "tokenizer.json: %s: empty vocabulary", path)
                       : fail(&c, BT_E_FORMAT, "tokenizer.json: %s: token id %lld is out of range "
                              "(ids must be below 2^30)", path, (long long)maxid);
        goto done;
    }
    c.n = (uint32_t)maxid + 1;
    c.tok = calloc(c.n, sizeof(*c.tok));
    c.ttype = calloc(c.n, sizeof(*c.ttype));
    c.score = calloc(c.n, sizeof(*c.score));
    if (!c.tok || !c.ttype || !c.score) { st = fail(&c, BT_E_NOMEM, "tokenizer.json: out of memory"); goto done; }
    {
        json_object_object_foreach(vocab, k, v) {
            if ((st = put_token(&c, json_object_get_int64(v), k, TT_NORMAL))) goto done;
        }
    }
    for (size_t i = 0; i < nadded; i++) {
        json_object *a = json_object_array_get_idx(added, i);
        json_object *sp = get(a, "special");
        int type = sp && json_object_get_boolean(sp) ? TT_CONTROL : TT_USER;
        if ((st = put_token(&c, json_object_get_int64(get(a, "id")), get_str(a, "content"), type)))
            goto done;
    }
    for (uint32_t i = 0; i < c.n; i++) {
        if (!c.tok[i]) {
            st = fail(&c, BT_E_FORMAT, "tokenizer.json: %s: no token has id %u (vocabulary has holes)",
                      path, i);
            goto done;
        }
    }
    const char *unk = get_str(model, "unk_token");
    int64_t unk_id = find_token(&c, unk);
    if (unk_id >= 0) c.ttype[unk_id] = TT_UNKNOWN;

    st = bt_kvlist_str(out, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
    if (!st) st = bt_kvlist_strarr(out, "tokenizer.ggml.tokens", (const char *const *)c.tok, c.n);
    if (st) { fail(&c, st, "tokenizer.json: out of memory"); goto done; }
    json_object *merges = get(model, "merges");
    if (!spm && !merges) {
        st = fail(&c, BT_E_FORMAT, "tokenizer.json: %s: byte-level BPE without model.merges", path);
        goto done;
    }
    if ((st = add_merges(&c, out, merges))) goto done;

    json_object *im = get(model, "ignore_merges");
    int ignore_merges = im && json_object_get_boolean(im);
    if (spm) {
        if (!byte_fallback) warn(&c, "tokenizer.json: SentencePiece BPE without byte_fallback");
        for (uint32_t i = 0; i < c.n; i++)
            if (c.ttype[i] == TT_NORMAL && is_byte_token(c.tok[i])) c.ttype[i] = TT_BYTE;
        /* score = -(rank of the merge producing the token): SentencePiece merge order */
        const struct bt_kv *mk = bt_kvlist_find(out, "tokenizer.ggml.merges");
        const char *const *ms = mk ? (const char *const *)mk->v.arr : NULL;
        uint64_t nm = mk ? mk->n : 0;
        for (uint64_t r = nm; r-- > 0;) {
            const char *sp = strchr(ms[r] + 1, ' ');
            size_t la = (size_t)(sp - ms[r]);
            json_object *idv = NULL;
            char *joined = malloc(strlen(ms[r]));
            if (!joined) { st = fail(&c, BT_E_NOMEM, "tokenizer.json: out of memory"); goto done; }
            memcpy(joined, ms[r], la);
            strcpy(joined + la, sp + 1);
            if (json_object_object_get_ex(vocab, joined, &idv)) {
                int64_t id = json_object_get_int64(idv);
                if (id >= 0 && (uint64_t)id < c.n) c.score[id] = -(float)(r + 1);
            }
            free(joined);
        }
        st = bt_kvlist_arr(out, "tokenizer.ggml.scores", BT_KV_F32, c.score, c.n);
        if (!st) st = bt_kvlist_str(out, "tokenizer.ggml.pre", "default");
        if (!st) st = bt_kvlist_bool(out, "tokenizer.ggml.add_space_prefix", prefix);
        if (st) { fail(&c, st, "tokenizer.json: out of memory"); goto done; }
    } else {
        if (byte_fallback) warn(&c, "tokenizer.json: byte_fallback is ignored for byte-level BPE");
        if ((st = byte_level_pre(&c, out, get(root, "pre_tokenizer")))) {
            if (st == BT_E_NOMEM) fail(&c, st, "tokenizer.json: out of memory");
            goto done;
        }
    }
    st = bt_kvlist_arr(out, "tokenizer.ggml.token_type", BT_KV_I32, c.ttype, c.n);
    if (!st) st = bt_kvlist_bool(out, "bt.tokenizer.ignore_merges", ignore_merges);
    if (st) { fail(&c, st, "tokenizer.json: out of memory"); goto done; }

    static const char *const bos_names[] = {"<|begin_of_text|>", "<s>", "<|startoftext|>",
                                            "<|endoftext|>", NULL};
    static const char *const eos_names[] = {"<|end_of_text|>", "</s>", "<|endoftext|>", NULL};
    st = add_special_id(&c, out, "tokenizer.ggml.bos_token_id", cfg, "bos_token", bos_names);
    if (!st) st = add_special_id(&c, out, "tokenizer.ggml.eos_token_id", cfg, "eos_token", eos_names);
    if (!st) st = add_special_id(&c, out, "tokenizer.ggml.padding_token_id", cfg, "pad_token", NULL);
    if (!st && unk_id >= 0) st = bt_kvlist_u32(out, "tokenizer.ggml.unknown_token_id", (uint32_t)unk_id);
    /* add_bos: tokenizer_config.json wins; else on for llama-bpe and SentencePiece */
    json_object *ab = get(cfg, "add_bos_token");
    const struct bt_kv *pre = bt_kvlist_find(out, "tokenizer.ggml.pre");
    int add_bos = ab ? json_object_get_boolean(ab)
                     : (spm || (pre && strcmp(pre->v.s, "llama-bpe") == 0));
    if (!st) st = bt_kvlist_bool(out, "tokenizer.ggml.add_bos_token", add_bos);
    json_object *ae = get(cfg, "add_eos_token");
    if (!st && ae) st = bt_kvlist_bool(out, "tokenizer.ggml.add_eos_token", json_object_get_boolean(ae));
    const char *tmpl = get_str(cfg, "chat_template");
    if (!st && tmpl) st = bt_kvlist_str(out, "tokenizer.chat_template", tmpl);
    if (st) fail(&c, st, "tokenizer.json: out of memory");
done:
    free(c.tok);
    free(c.ttype);
    free(c.score);
    if (cfg) json_object_put(cfg);
    if (root) json_object_put(root);
    return st;
}
