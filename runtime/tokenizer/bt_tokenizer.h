/* bt_tokenizer.h - BPE tokenizer built from GGUF tokenizer metadata (tokenizer.ggml.*):
 * byte-level BPE ("gpt2", regex pre-tokenizer via PCRE2) and SentencePiece-style BPE ("llama",
 * byte fallback). Works the same for a HF folder (via bt_hf_tokenizer_kvs) and a GGUF file. */
#ifndef BT_TOKENIZER_H
#define BT_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>

#include "bt/bt.h" /* bt_err (status + msg), bt_err_set/bt_err_clear (bt_types) */

struct bt_tokenizer;

/* Builds a tokenizer from metadata key/values (copied; kvs may be freed afterwards).
 * Reads tokenizer.ggml.{model,tokens,token_type,merges,scores,pre,bos_token_id,eos_token_id,
 * unknown_token_id,add_bos_token,add_eos_token,add_space_prefix} and
 * bt.tokenizer.{regex,ignore_merges}. The split rules of a gpt2 tokenizer: bt.tokenizer.regex
 * (string or string array) if present, else the list tokenizer.ggml.pre names (bt_pretok.h;
 * missing = "default"); an unknown name is BT_E_UNSUPPORTED naming it and the known ones.
 * err is cleared on entry; on failure *out = NULL and err holds the status and
 * "tokenizer: ...". err may be NULL. */
bt_status bt_tokenizer_from_kvs(const struct bt_kv *kvs, uint32_t n, struct bt_tokenizer **out,
                                bt_err *err);
/* dir/tokenizer.json (+ dir/tokenizer_config.json) through bt_hf_tokenizer_kvs; err as above
 * (messages from bt_hf_tokenizer_kvs are passed through unchanged). */
bt_status bt_tokenizer_from_hf_dir(const char *dir, struct bt_tokenizer **out, bt_err *err);
void bt_tokenizer_free(struct bt_tokenizer *tok); /* NULL is a no-op */

/* Encodes len bytes of text (any bytes: invalid UTF-8 and NULs are encoded losslessly through
 * the byte tokens). Never adds BOS: prepend bt_tokenizer_bos() when bt_tokenizer_add_bos().
 * Added tokens of type user-defined are always matched verbatim; control tokens (e.g.
 * "<|begin_of_text|>") only when parse_special != 0, otherwise they are encoded as text.
 * *ids is caller-owned: free with bt_tokenizer_free_ids (plain free() works too). On failure
 * *ids = NULL, *n = 0 (BT_E_INVAL for bad arguments or len > 1 GiB, BT_E_NOMEM). A tokenizer is not thread-safe (it keeps scratch buffers and a cache):
 * use one per thread. */
bt_status bt_tokenizer_encode(struct bt_tokenizer *tok, const char *text, size_t len,
                              int parse_special, int32_t **ids, size_t *n);
void bt_tokenizer_free_ids(int32_t *ids);

/* Concatenates the pieces of ids (control tokens included verbatim). For SentencePiece
 * tokenizers with add_space_prefix, one leading space of the first piece is dropped.
 * *text is caller-owned (free with free()), NUL-terminated, *len excludes the NUL.
 * An id out of range -> BT_E_INVAL. */
bt_status bt_tokenizer_decode(const struct bt_tokenizer *tok, const int32_t *ids, size_t n,
                              char **text, size_t *len);

/* The bytes one token decodes to (borrowed, valid while tok lives; not NUL-terminated, *len
 * set), for streaming output. NULL for an id out of range. No leading-space stripping. */
const char *bt_tokenizer_token(const struct bt_tokenizer *tok, int32_t id, size_t *len);
/* the token's string as stored in the vocabulary (e.g. "Ġthe"), NUL-terminated */
const char *bt_tokenizer_token_text(const struct bt_tokenizer *tok, int32_t id);
/* GGUF token type (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), 0 if
 * the id is out of range */
int32_t bt_tokenizer_token_type(const struct bt_tokenizer *tok, int32_t id);
/* id of a token string, -1 if absent */
int32_t bt_tokenizer_find(const struct bt_tokenizer *tok, const char *s, size_t len);

uint32_t bt_tokenizer_n_vocab(const struct bt_tokenizer *tok);
int32_t  bt_tokenizer_bos(const struct bt_tokenizer *tok);     /* -1 if none */
int32_t  bt_tokenizer_eos(const struct bt_tokenizer *tok);     /* -1 if none */
int      bt_tokenizer_add_bos(const struct bt_tokenizer *tok); /* 1 if the model expects BOS */
int      bt_tokenizer_add_eos(const struct bt_tokenizer *tok); /* 1 if it expects EOS last */
#endif
