/* cmd_chat.c - `generate --chat` and `generate -i`: the conversation rendered with the model's
 * chat template family (runtime/model/bt_chat.c), tokenized with its special tokens, answered
 * turn by turn; the KV cache keeps what the next turn's tokens share with the last ones. */
#ifdef BT_HAVE_RUNTIME
#include "bt_chat.h"
#include "bt_eval.h"
#include "bt_model.h"
#include "bt_types.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the model's template text: tokenizer.chat_template from the reader's metadata (GGUF, or
 * tokenizer_config.json for HF folders), NULL if none */
static const char *model_template(struct bt_reader *r) {
    uint32_t n = r->i->kv_count(r->ctx);
    for (uint32_t i = 0; i < n; i++) {
        struct bt_kv kv;
        if (r->i->kv_get(r->ctx, i, &kv) == BT_OK && kv.type == BT_KV_STRING && !strcmp(kv.key, "tokenizer.chat_template"))
            return kv.v.s;
    }
    return NULL;
}

static bt_status pick_family(struct bt_reader *r, const char *model, const char *forced, int *family, bt_err *err) {
    if (forced && strcmp(forced, "model") != 0) {
        *family = bt_chat_family_by_name(forced);
        if (!*family) return bt_err_set(err, BT_E_INVAL, "--chat-template %s: not a template family bt knows", forced);
        return BT_OK;
    }
    const char *t = model_template(r);
    if (!t)
        return bt_err_set(err, BT_E_UNSUPPORTED, "%s has no chat template (GGUF tokenizer.chat_template, "
                          "tokenizer_config.json chat_template): name a family with --chat-template "
                          "(llama3, chatml, llama2, mistral, gemma, phi3, zephyr), or generate without --chat", model);
    if (!(*family = bt_chat_detect(t)))
        return bt_err_set(err, BT_E_UNSUPPORTED, "%s: its chat template is not one bt supports (bt recognises "
                          "the llama3, chatml, llama2/mistral [INST], gemma, phi3 and zephyr families): name the "
                          "family it follows with --chat-template, or generate without --chat (template starts: %.60s)",
                          model, t);
    return BT_OK;
}

/* the reply's bytes, gathered while they stream */
struct reply {
    char  *p;
    size_t n, cap;
};

static int on_token(void *user, int32_t id, const char *piece, size_t len) {
    struct reply *r = user;
    (void)id;
    if (r->n + len + 1 > r->cap) {
        size_t nc = r->cap ? 2 * r->cap : 1024;
        while (nc < r->n + len + 1) nc *= 2;
        char *np = realloc(r->p, nc);
        if (!np) return 1;
        r->p = np;
        r->cap = nc;
    }
    memcpy(r->p + r->n, piece, len);
    r->n += len;
    r->p[r->n] = 0;
    return 0;
}

struct convo {
    struct bt_chat_msg *msgs;
    char              **owned; /* texts of msgs we allocated */
    int                 n, cap;
};

static bt_status convo_add(struct convo *c, const char *role, const char *text, bt_err *err) {
    if (c->n == c->cap) {
        int nc = c->cap ? 2 * c->cap : 16;
        struct bt_chat_msg *nm = realloc(c->msgs, (size_t)nc * sizeof(*nm));
        if (nm) c->msgs = nm;
        char **no = nm ? realloc(c->owned, (size_t)nc * sizeof(*no)) : NULL;
        if (no) c->owned = no;
        if (!nm || !no) return bt_err_set(err, BT_E_NOMEM, "chat: out of memory");
        c->cap = nc;
    }
    char *t = strdup(text);
    if (!t) return bt_err_set(err, BT_E_NOMEM, "chat: out of memory");
    c->owned[c->n] = t;
    c->msgs[c->n++] = (struct bt_chat_msg){role, t};
    return BT_OK;
}

static void convo_free(struct convo *c) {
    for (int i = 0; i < c->n; i++) free(c->owned[i]);
    free(c->owned);
    free(c->msgs);
}

/* answer the conversation so far; the reply is appended to it. hist/n_hist: the tokens the
 * model's cache was filled from (prompt + reply of the last turn), replaced by this turn's */
static bt_status answer(bt_model *m, int family, struct convo *c, const struct bt_gen_opts *go0, int32_t **hist,
                        int *n_hist, int quiet, bt_err *err) {
    const struct bt_model_hparams *hp = bt_model_hparams(m);
    const char *bos = bt_model_token_text(m, hp->bos_id), *eos = bt_model_token_text(m, hp->eos_id);
    char *text = NULL;
    int32_t *ids = NULL, *out = NULL;
    int64_t n = 0;
    struct reply rep = {0};
    struct bt_gen_opts go = *go0;
    bt_status st = bt_chat_render(family, c->msgs, c->n, 1, bos, eos, &text, err);
    if (!st) st = bt_model_tokenize_special(m, text, strlen(text), &ids, &n, err);
    /* the end of a turn stops the reply (it is not printed) */
    int32_t *eot = NULL;
    int64_t n_eot = 0;
    const char *eot_text = bt_chat_end_of_turn(family, eos);
    if (!st && eot_text && bt_model_tokenize_special(m, eot_text, strlen(eot_text), &eot, &n_eot, err) == BT_OK &&
        n_eot == 1) {
        go.stop_ids = eot;
        go.n_stop = 1;
    }
    bt_err_clear(err);
    if (!st && !(out = malloc((size_t)go.n_predict * sizeof(*out)))) st = bt_err_set(err, BT_E_NOMEM, "chat: out of memory");
    if (!st) {
        int same = 0;
        while (same < *n_hist && same < n && (*hist)[same] == ids[same]) same++;
        go.n_cached = same;
        go.no_bos = 1; /* the template wrote BOS where it wants one */
        struct bt_gen_result gr;
        st = bt_generate_ids(m, ids, (int)n, &go, stdout, on_token, &rep, out, &gr, err);
        printf("\n");
        fflush(stdout);
        if (!st && !quiet)
            fprintf(stderr, "[%d prompt tokens (%d new), %.1f tokens/s; %d generated, %.1f tokens/s%s]\n", gr.n_prompt,
                    gr.n_prompt - (same < n ? same : (int)n - 1), gr.pp_tps, gr.n_gen, gr.tg_tps,
                    gr.hit_eos ? "" : ", stopped at -n");
        if (!st) st = convo_add(c, "assistant", rep.p ? rep.p : "", err);
        if (!st) {
            int32_t *nh = realloc(*hist, (size_t)(n + gr.n_gen) * sizeof(*nh));
            if (!nh) st = bt_err_set(err, BT_E_NOMEM, "chat: out of memory");
            else {
                memcpy(nh, ids, (size_t)n * sizeof(*nh));
                memcpy(nh + n, out, (size_t)gr.n_gen * sizeof(*nh));
                *hist = nh;
                *n_hist = (int)n + gr.n_gen;
            }
        }
    }
    free(text);
    free(ids);
    free(eot);
    free(out);
    free(rep.p);
    return st;
}

bt_status bt_cli_chat(bt_model *m, struct bt_reader *r, const char *model, const struct bt_cli_chat_opts *co,
                      const struct bt_gen_opts *go, bt_err *err) {
    int family = 0;
    bt_status st = pick_family(r, model, co->template_name, &family, err);
    if (st) return st;
    if (!co->quiet) fprintf(stderr, "chat template: %s\n", bt_chat_family_name(family));
    struct convo c = {0};
    int32_t *hist = NULL;
    int n_hist = 0;
    if (co->system && *co->system) st = convo_add(&c, "system", co->system, err);
    if (!st && co->prompt) {
        st = convo_add(&c, "user", co->prompt, err);
        if (!st) st = answer(m, family, &c, go, &hist, &n_hist, co->quiet, err);
    }
    if (!st && co->interactive) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        for (;;) {
            if (!co->quiet) { fprintf(stderr, "> "); fflush(stderr); }
            if ((len = getline(&line, &cap, stdin)) < 0) break;
            while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
            if (!len) continue;
            if ((st = convo_add(&c, "user", line, err))) break;
            if ((st = answer(m, family, &c, go, &hist, &n_hist, co->quiet, err))) break;
        }
        if (!co->quiet) fprintf(stderr, "\n");
        free(line);
    }
    free(hist);
    convo_free(&c);
    return st;
}
#endif
