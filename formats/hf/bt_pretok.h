/* bt_pretok.h - the byte-level BPE pre-tokenizers that GGUF names in tokenizer.ggml.pre, as
 * data: each name denotes a list of split regexes applied in turn (every regex splits each
 * piece of the previous stage into its matches and the gaps between them, like a Hugging Face
 * Split with behavior Isolated), plus the two defaults that go with the name. */
#ifndef BT_PRETOK_H
#define BT_PRETOK_H
#include <stddef.h>

#define BT_PRETOK_MAX_NAMES 8

struct bt_pretok {
    const char *names[BT_PRETOK_MAX_NAMES]; /* tokenizer.ggml.pre spellings, first = canonical */
    const char *const *re;                  /* split regexes (PCRE2 syntax), NULL-terminated */
    int ignore_merges;                      /* a whole pre-token in the vocabulary is one token */
    int add_bos;                            /* default of tokenizer.ggml.add_bos_token */
};

/* GPT-2's split regex (also what a Hugging Face ByteLevel pre-tokenizer with use_regex uses) */
extern const char bt_pretok_re_gpt2[];
/* the class a Hugging Face Punctuation pre-tokenizer splits on */
extern const char bt_pretok_re_punct[];

/* the entry a tokenizer.ggml.pre name denotes; NULL if unknown (NULL name = "default") */
const struct bt_pretok *bt_pretok_find(const char *name);
/* the first entry whose regex list equals re[0..n); NULL if none */
const struct bt_pretok *bt_pretok_match(const char *const *re, size_t n);
/* all known names, comma separated, into buf (cut at cap, NUL-terminated); returns buf */
char *bt_pretok_names(char *buf, size_t cap);
#endif
