/* bt_chat.h - chat templates: a model's Jinja template (GGUF tokenizer.chat_template,
 * tokenizer_config.json chat_template) recognised as one of the common families by distinctive
 * substrings, and each family rendered by bt's own code (no Jinja interpreter). */
#ifndef BT_CHAT_H
#define BT_CHAT_H
#include "bt/bt.h"

enum bt_chat_family {
    BT_CHAT_UNKNOWN = 0,
    BT_CHAT_LLAMA3,  /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    BT_CHAT_CHATML,  /* <|im_start|>role\n...<|im_end|>\n */
    BT_CHAT_LLAMA2,  /* <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s> */
    BT_CHAT_MISTRAL, /* <s>[INST] ... [/INST]...</s> (no <<SYS>> block) */
    BT_CHAT_GEMMA,   /* <start_of_turn>user\n...<end_of_turn>\n, assistant = "model" */
    BT_CHAT_PHI3,    /* <|user|>\n...<|end|>\n */
    BT_CHAT_ZEPHYR,  /* <|user|>\n...</s>\n */
};

struct bt_chat_msg {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
};

/* the family of a template's text, BT_CHAT_UNKNOWN if none matches */
int         bt_chat_detect(const char *tmpl);
/* "llama3", ... ("unknown" for 0); by name: 0 if no family has it */
const char *bt_chat_family_name(int family);
int         bt_chat_family_by_name(const char *name);
/* the token that ends an assistant turn in this family ("<|eot_id|>"; eos for the families that
 * end turns with it) */
const char *bt_chat_end_of_turn(int family, const char *eos);

/* The conversation as the family's template renders it with add_generation_prompt (the
 * assistant's header after the last message); bos/eos are the model's token texts, written where
 * the template writes them. *out: caller frees. A role the family cannot express is an error. */
bt_status bt_chat_render(int family, const struct bt_chat_msg *msgs, int n, int add_generation_prompt,
                         const char *bos, const char *eos, char **out, bt_err *err);
#endif
