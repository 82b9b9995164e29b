/* bt_tok_internal.h - private structures of the tokenizer: hash maps (string -> id, token pair
 * -> merge), the pre-token cache, UTF-8 helpers and the BPE merge loop. */
#ifndef BT_TOK_INTERNAL_H
#define BT_TOK_INTERNAL_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "bt_tokenizer.h"

enum { BT_TOK_GPT2 = 1, BT_TOK_SPM = 2 };
enum { BT_TOK_MAX_RE = 8 }; /* pre-tokenizer split stages at most */
enum { BT_TT_NORMAL = 1, BT_TT_UNKNOWN = 2, BT_TT_CONTROL = 3, BT_TT_USER = 4, BT_TT_BYTE = 6 };

/* growable int32 vector */
struct bt_ivec {
    int32_t *v;      /* elements */
    size_t   n, cap; /* used / allocated */
};
int bt_ivec_push(struct bt_ivec *a, int32_t x); /* 0 ok, -1 nomem */
int bt_ivec_append(struct bt_ivec *a, const int32_t *x, size_t n);

/* open-addressing map from byte strings (borrowed from an arena) to int32 ids */
struct bt_strmap {
    uint32_t   *slot;  /* cap entries: index+1 into keys, 0 = empty */
    uint64_t   *hash;  /* cap entries: hash of the key in that slot */
    uint32_t    cap;   /* power of two */
    uint32_t    n;     /* entries */
    const char *arena; /* key bytes */
    const uint32_t *off, *len; /* key i = arena[off[i] .. off[i]+len[i]) */
};
int     bt_strmap_init(struct bt_strmap *m, const char *arena, const uint32_t *off,
                       const uint32_t *len, uint32_t nkeys); /* keeps the first of duplicates */
int32_t bt_strmap_get(const struct bt_strmap *m, const char *s, size_t n);
void    bt_strmap_free(struct bt_strmap *m);
uint64_t bt_tok_hash(const char *s, size_t n);

/* open-addressing map (left id, right id) -> (rank, merged id) */
struct bt_pair {
    uint64_t key;  /* (uint64)left << 32 | right; UINT64_MAX = empty */
    int32_t  rank; /* lower merges first */
    int32_t  out;  /* id of the merged token */
};
struct bt_pairmap {
    struct bt_pair *e;   /* cap entries */
    uint32_t        cap; /* power of two */
    uint32_t        n;   /* entries */
};
int  bt_pairmap_init(struct bt_pairmap *m, uint32_t expect);
int  bt_pairmap_put(struct bt_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t out);
const struct bt_pair *bt_pairmap_get(const struct bt_pairmap *m, int32_t a, int32_t b);
void bt_pairmap_free(struct bt_pairmap *m);

/* pre-token -> ids cache (cleared when full) */
struct bt_cache_ent {
    uint64_t hash;            /* 0 = empty */
    uint32_t key_off, key_len; /* into keys */
    uint32_t ids_off, ids_n;   /* into ids */
};
struct bt_cache {
    struct bt_cache_ent *e;   /* cap entries */
    uint32_t             cap, n;
    char                *keys;              /* key bytes */
    size_t               keys_n, keys_cap;
    struct bt_ivec       ids;               /* concatenated id lists */
};
const int32_t *bt_cache_get(const struct bt_cache *c, const char *s, size_t n, uint64_t h,
                            size_t *nids);
void bt_cache_put(struct bt_cache *c, const char *s, size_t n, uint64_t h, const int32_t *ids,
                  size_t nids); /* best effort: silently skips on OOM */
void bt_cache_free(struct bt_cache *c);

/* scratch state for one BPE word */
struct bt_bpe_work {
    int32_t  *id, *prev, *next; /* symbol list */
    uint32_t  cap;              /* symbols allocated */
    uint64_t *heap;             /* (rank << 32 | pos) min-heap */
    uint32_t  heap_n, heap_cap;
};
/* merges syms[0..n) in place by rank; appends the result to out. 0 ok, -1 nomem */
int  bt_bpe_merge(struct bt_bpe_work *w, const struct bt_pairmap *pm, const int32_t *syms,
                  uint32_t n, struct bt_ivec *out);
void bt_bpe_work_free(struct bt_bpe_work *w);

/* UTF-8: length of the valid sequence at s (1..4), 0 if invalid (strict: no overlongs,
 * surrogates or > U+10FFFF) */
size_t bt_utf8_valid_len(const unsigned char *s, size_t n);
/* GPT-2 byte <-> unicode map: code point of byte b */
uint32_t bt_gpt2_byte_cp(unsigned b);
size_t   bt_utf8_put(uint32_t cp, char *dst); /* writes 1..4 bytes */

/* a token matched verbatim in the input */
struct bt_special {
    uint32_t off, len; /* text in the token arena */
    int32_t  id;
    int32_t  control;  /* 1: only with parse_special */
};

struct bt_tokenizer {
    uint32_t mode;            /* BT_TOK_GPT2 / BT_TOK_SPM */
    uint32_t n_vocab;         /* tokens */
    char    *text;            /* token strings, NUL-separated */
    uint32_t *text_off, *text_len;
    char    *piece;           /* decoded bytes of each token */
    uint32_t *piece_off, *piece_len;
    int32_t *ttype;           /* GGUF token types */
    struct bt_strmap vocab;   /* token string -> id */
    struct bt_pairmap pairs;  /* merges */
    int32_t  byte_id[256];    /* id of the single-byte symbol, -1 if absent */
    struct bt_special *spec;  /* sorted by first byte, then longest first */
    uint32_t n_spec;
    uint32_t spec_first[257]; /* specials starting with byte b: spec[spec_first[b]..[b+1]) */
    pcre2_code       *re[BT_TOK_MAX_RE]; /* pre-tokenizer split stages (GPT2 mode) */
    pcre2_match_data *md[BT_TOK_MAX_RE]; /* one per stage (stages nest) */
    uint32_t n_re;            /* stages */
    int      ignore_merges;   /* whole pre-token in vocab -> take it as is */
    int      add_bos;         /* model expects BOS */
    int      add_eos;         /* model expects EOS at the end */
    int      add_space_prefix; /* SPM: prepend U+2581 to the text */
    int32_t  bos, eos, unk;   /* -1 if none */
    struct bt_cache cache;    /* GPT2 pre-token cache */
    struct bt_bpe_work work;  /* BPE scratch */
    struct bt_ivec syms;      /* initial symbols scratch */
    char    *scratch;         /* byte scratch (mapped strings, SPM text) */
    size_t   scratch_cap;
};
#endif
