/* bt_chat.c - the chat template families (bt_chat.h): recognition by the markers each family's
 * template contains, and rendering into a growing string, message by message. */
#include "bt_chat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"unknown", "llama3", "chatml", "llama2", "mistral", "gemma", "phi3", "zephyr"};

const char *bt_chat_family_name(int f) {
    return f > 0 && f < (int)(sizeof names / sizeof names[0]) ? names[f] : names[0];
}

int bt_chat_family_by_name(const char *name) {
    for (int f = 1; f < (int)(sizeof names / sizeof names[0]); f++)
        if (!strcmp(names[f], name)) return f;
    return 0;
}

int bt_chat_detect(const char *t) {
    if (!t) return BT_CHAT_UNKNOWN;
    if (strstr(t, "<|start_header_id|>") && strstr(t, "<|eot_id|>")) return BT_CHAT_LLAMA3;
    if (strstr(t, "<|im_start|>")) return BT_CHAT_CHATML;
    if (strstr(t, "<start_of_turn>")) return BT_CHAT_GEMMA;
    if (strstr(t, "[INST]")) return strstr(t, "<<SYS>>") ? BT_CHAT_LLAMA2 : BT_CHAT_MISTRAL;
    if (strstr(t, "<|user|>") && strstr(t, "<|assistant|>"))
        return strstr(t, "<|end|>") ? BT_CHAT_PHI3 : BT_CHAT_ZEPHYR;
    return BT_CHAT_UNKNOWN;
}

const char *bt_chat_end_of_turn(int f, const char *eos) {
    switch (f) {
    case BT_CHAT_LLAMA3: return "<|eot_id|>";
    case BT_CHAT_CHATML: return "<|im_end|>";
    case BT_CHAT_GEMMA: return "<end_of_turn>";
    case BT_CHAT_PHI3: return "<|end|>";
    default: return eos;
    }
}

struct sbuf {
    char  *p;
    size_t n, cap;
    int    oom;
};

static void put(struct sbuf *b, const char *s, size_t len) {
    if (b->oom) return;
    if (b->n + len + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + len + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = 0;
}

static void puts_(struct sbuf *b, const char *s) { put(b, s, strlen(s)); }

/* s without leading and trailing white space (Jinja's strip()) */
static void put_stripped(struct sbuf *b, const char *s) {
    const char *ws = " \t\n\r\v\f";
    while (*s && strchr(ws, *s)) s++;
    size_t n = strlen(s);
    while (n && strchr(ws, s[n - 1])) n--;
    put(b, s, n);
}

static int is(const struct bt_chat_msg *m, const char *role) { return !strcmp(m->role, role); }

bt_status bt_chat_render(int f, const struct bt_chat_msg *msgs, int n, int gen, const char *bos, const char *eos,
                         char **out, bt_err *err) {
    struct sbuf b = {0};
    *out = NULL;
    if (!bos) bos = "";
    if (!eos) eos = "";
    for (int i = 0; i < n; i++)
        if (!is(&msgs[i], "system") && !is(&msgs[i], "user") && !is(&msgs[i], "assistant"))
            return bt_err_set(err, BT_E_INVAL, "chat: role '%s' is not one of system, user, assistant", msgs[i].role);
    /* a leading system message, for the families that fold it into the first user turn */
    const char *sys = n && is(&msgs[0], "system") ? msgs[0].content : NULL;
    int first = sys ? 1 : 0;
    switch (f) {
    case BT_CHAT_LLAMA3:
        puts_(&b, bos);
        for (int i = 0; i < n; i++) {
            puts_(&b, "<|start_header_id|>");
            puts_(&b, msgs[i].role);
            puts_(&b, "<|end_header_id|>\n\n");
            put_stripped(&b, msgs[i].content);
            puts_(&b, "<|eot_id|>");
        }
        if (gen) puts_(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case BT_CHAT_CHATML:
        for (int i = 0; i < n; i++) {
            puts_(&b, "<|im_start|>");
            puts_(&b, msgs[i].role);
            puts_(&b, "\n");
            puts_(&b, msgs[i].content);
            puts_(&b, "<|im_end|>\n");
        }
        if (gen) puts_(&b, "<|im_start|>assistant\n");
        break;
    case BT_CHAT_LLAMA2:
    case BT_CHAT_MISTRAL:
        if (f == BT_CHAT_MISTRAL) puts_(&b, bos);
        for (int i = first; i < n; i++) {
            if (is(&msgs[i], "system"))
                return bt_err_set(err, BT_E_INVAL, "chat: the %s template takes a system message only first",
                                  bt_chat_family_name(f));
            if (((i - first) % 2 == 0) != is(&msgs[i], "user"))
                return bt_err_set(err, BT_E_INVAL, "chat: the %s template needs user and assistant turns to alternate",
                                  bt_chat_family_name(f));
            if (is(&msgs[i], "user")) {
                if (f == BT_CHAT_LLAMA2) puts_(&b, bos);
                puts_(&b, "[INST] ");
                if (f == BT_CHAT_LLAMA2) { /* the system block and the turn, stripped as one */
                    struct sbuf t = {0};
                    if (sys && i == first) {
                        puts_(&t, "<<SYS>>\n");
                        puts_(&t, sys);
                        puts_(&t, "\n<</SYS>>\n\n");
                    }
                    puts_(&t, msgs[i].content);
                    if (t.oom) b.oom = 1;
                    else put_stripped(&b, t.p);
                    free(t.p);
                } else {
                    if (sys && i == first) {
                        puts_(&b, sys);
                        puts_(&b, "\n\n");
                    }
                    puts_(&b, msgs[i].content);
                }
                puts_(&b, " [/INST]");
            } else if (f == BT_CHAT_LLAMA2) {
                puts_(&b, " ");
                put_stripped(&b, msgs[i].content);
                puts_(&b, " ");
                puts_(&b, eos);
            } else {
                puts_(&b, msgs[i].content);
                puts_(&b, eos);
            }
        }
        break; /* the generation prompt is the "[/INST]" already written */
    case BT_CHAT_GEMMA:
        if (sys) return bt_err_set(err, BT_E_INVAL, "chat: the gemma template has no system role");
        puts_(&b, bos);
        for (int i = 0; i < n; i++) {
            puts_(&b, "<start_of_turn>");
            puts_(&b, is(&msgs[i], "assistant") ? "model" : msgs[i].role);
            puts_(&b, "\n");
            put_stripped(&b, msgs[i].content);
            puts_(&b, "<end_of_turn>\n");
        }
        if (gen) puts_(&b, "<start_of_turn>model\n");
        break;
    case BT_CHAT_PHI3:
    case BT_CHAT_ZEPHYR:
        for (int i = 0; i < n; i++) {
            puts_(&b, "<|");
            puts_(&b, msgs[i].role);
            puts_(&b, "|>\n");
            puts_(&b, msgs[i].content);
            puts_(&b, f == BT_CHAT_PHI3 ? "<|end|>" : eos);
            puts_(&b, "\n");
        }
        if (gen) puts_(&b, "<|assistant|>\n");
        else if (f == BT_CHAT_PHI3) puts_(&b, eos);
        break;
    default:
        return bt_err_set(err, BT_E_UNSUPPORTED, "chat: template family %d is not supported", f);
    }
    if (b.oom || !b.p) {
        free(b.p);
        return b.oom ? bt_err_set(err, BT_E_NOMEM, "chat: out of memory") : bt_err_set(err, BT_E_INVAL, "chat: nothing to render");
    }
    *out = b.p;
    return BT_OK;
}
