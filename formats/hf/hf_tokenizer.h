/* hf_tokenizer.h - Hugging Face tokenizer.json (+ tokenizer_config.json beside it) -> GGUF
 * tokenizer metadata (tokenizer.ggml.* keys as llama.cpp's converter writes them, plus
 * bt.tokenizer.regex / bt.tokenizer.ignore_merges). */
#ifndef BT_HF_TOKENIZER_H
#define BT_HF_TOKENIZER_H
#include <stddef.h>

#include "bt_kvlist.h"

/* Llama-3 / GPT-2 pre-tokenizer split patterns (exact tokenizer.json spelling). */
extern const char bt_hf_regex_llama3[];
extern const char bt_hf_regex_gpt2[];

/* Appends the tokenizer keys to *out (which the caller owns and frees with bt_kvlist_free).
 * Byte-level BPE -> tokenizer.ggml.model "gpt2"; SentencePiece-style BPE (Metaspace / "▁"
 * normalizer + byte_fallback) -> "llama" with scores. Other model types -> BT_E_UNSUPPORTED.
 * err (may be NULL) is cleared first. On failure it gets the status and "tokenizer.json: ..."
 * (file path included for I/O and parse errors); on BT_OK err->status is BT_OK and err->msg
 * holds the first warning (e.g. unknown pre-tokenizer regex) or "" if none. Keys already added
 * to *out on failure stay there (the caller frees the list either way). */
bt_status bt_hf_tokenizer_kvs(const char *tokenizer_json_path, struct bt_kvlist *out,
                              bt_err *err);
/* The same for callers that cannot read a bt_err (plugins, where it is opaque): err is written
 * only on failure, and the first warning goes to log(BT_LOG_WARN, "%s", text) (host->log fits)
 * if log is not NULL. */
bt_status bt_hf_tokenizer_kvs_log(const char *tokenizer_json_path, struct bt_kvlist *out,
                                  bt_err *err, void (*log)(int level, const char *fmt, ...));
#endif
