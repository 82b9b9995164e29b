/* bt_pretok.c - the table of byte-level BPE pre-tokenizers (tokenizer.ggml.pre name -> split
 * regexes), written from the pre_tokenizer definitions the models publish in their
 * tokenizer.json (Split regexes, ByteLevel's GPT-2 regex, Digits, Punctuation). To add a
 * family: add its regex list below and one table row naming it (docs/formats.md lists them). */
#include "bt_pretok.h"

#include <stdio.h>
#include <string.h>

/* ---- split regexes --------------------------------------------------------------------- */

const char bt_pretok_re_gpt2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
/* Unicode punctuation plus the ASCII symbols Rust's is_ascii_punctuation adds */
const char bt_pretok_re_punct[] = "[\\p{P}\\$\\+<=>\\^~\\|`]";

/* Llama 3: case-insensitive contractions, letters with one leading non-letter, digits in
 * runs of at most three, punctuation with trailing newlines */
static const char re_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* Qwen2: the Llama 3 rules with single digits */
static const char re_qwen2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* Mistral tekken: words split at lower->upper case changes, single digits, '/' kept with
 * punctuation runs */
static const char re_tekken[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* GPT-4o (o200k): tekken's case-aware words with optional contractions, digits by 1-3 */
static const char re_gpt4o[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* DeepSeek: CJK ideographs + the block below them + Hangul as runs */
static const char re_ds_cjk[] = "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+";
/* DeepSeek LLM: cased letters (Lu/Ll/Lt), ASCII + fullwidth punctuation and quotes */
static const char re_ds_cased[] = "\\s?[\\p{Lu}\\p{Ll}\\p{Lt}]+";
static const char re_ds_punct[] =
    "\\s?[\\x{21}-\\x{2F}\\x{3A}-\\x{7E}\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}"
    "\\x{3000}-\\x{3002}]+";
/* DeepSeek V3: digits by three, CJK + kana runs, then Llama-3-like rules with marks */
static const char re_ds3_cjk[] = "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+";
static const char re_ds3_words[] =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
    "| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* Falcon: contiguous punctuation first, then GPT-2, digit runs, digits by three */
static const char re_punct_run[] = "[\\p{P}\\$\\+<=>\\^~\\|`]+";

/* ---- regex lists ---------------------------------------------------------------------- */

static const char *const l_gpt2[] = {bt_pretok_re_gpt2, NULL};
static const char *const l_llama3[] = {re_llama3, NULL};
static const char *const l_qwen2[] = {re_qwen2, NULL};
static const char *const l_tekken[] = {re_tekken, NULL};
static const char *const l_gpt4o[] = {re_gpt4o, NULL};
/* StarCoder-style: Digits(individual) then ByteLevel */
static const char *const l_starcoder[] = {"\\p{N}", bt_pretok_re_gpt2, NULL};
static const char *const l_falcon[] = {re_punct_run, bt_pretok_re_gpt2, "\\p{N}+",
                                       "[0-9][0-9][0-9]", NULL};
static const char *const l_ds_llm[] = {"[\\r\\n]", re_ds_cased, re_ds_punct, "\\s+$", re_ds_cjk,
                                       "\\p{N}+", NULL};
static const char *const l_ds_coder[] = {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", re_ds_cjk,
                                         "\\p{N}", NULL};
static const char *const l_ds3[] = {"\\p{N}{1,3}", re_ds3_cjk, re_ds3_words, NULL};

/* ---- the table: first match of a regex list wins in bt_pretok_match ------------------- */

static const struct bt_pretok table[] = {
    {{"llama-bpe", "llama3", "llama-v3", "falcon3", "pixtral"}, l_llama3, 1, 1},
    {{"dbrx", "smaug-bpe"}, l_llama3, 0, 0},
    {{"gpt-2", "gpt2", "mpt", "olmo", "jais"}, l_gpt2, 0, 0},
    {{"falcon"}, l_falcon, 0, 0},
    {{"default"}, l_falcon, 0, 0}, /* a GGUF without tokenizer.ggml.pre (llama.cpp: the same) */
    {{"starcoder", "smollm", "refact", "command-r", "codeshell", "exaone", "minerva-7b"},
     l_starcoder, 0, 0},
    {{"qwen2", "deepseek-r1-qwen"}, l_qwen2, 0, 0},
    {{"tekken"}, l_tekken, 1, 1},
    {{"gpt-4o"}, l_gpt4o, 0, 0},
    {{"deepseek-llm"}, l_ds_llm, 0, 0},
    {{"deepseek-coder"}, l_ds_coder, 0, 0},
    {{"deepseek-v3"}, l_ds3, 0, 0},
};
#define N_TABLE (sizeof(table) / sizeof(table[0]))

const struct bt_pretok *bt_pretok_find(const char *name) {
    if (!name) name = "default";
    for (size_t i = 0; i < N_TABLE; i++)
        for (int k = 0; k < BT_PRETOK_MAX_NAMES && table[i].names[k]; k++)
            if (strcmp(table[i].names[k], name) == 0) return &table[i];
    return NULL;
}

const struct bt_pretok *bt_pretok_match(const char *const *re, size_t n) {
    for (size_t i = 0; i < N_TABLE; i++) {
        size_t k = 0;
        while (k < n && table[i].re[k] && strcmp(table[i].re[k], re[k]) == 0) k++;
        if (k == n && !table[i].re[k]) return &table[i];
    }
    return NULL;
}

char *bt_pretok_names(char *buf, size_t cap) {
    size_t o = 0;
    if (!cap) return buf;
    buf[0] = 0;
    for (size_t i = 0; i < N_TABLE; i++)
        for (int k = 0; k < BT_PRETOK_MAX_NAMES && table[i].names[k]; k++) {
            int w = snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", table[i].names[k]);
            if (w < 0 || (size_t)w >= cap - o) return buf;
            o += (size_t)w;
        }
    return buf;
}
