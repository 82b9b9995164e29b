/* bt_eval.h - perplexity / KL-divergence evaluation (the INI [eval] stage) and text generation
 * on top of bt_model. */
#ifndef BT_EVAL_H
#define BT_EVAL_H

#include "bt_model.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { BT_EVAL_SCORE_ALL = 0, BT_EVAL_SCORE_SECOND_HALF = 1 };
enum { BT_EVAL_TOK_PARAGRAPHS = 0, BT_EVAL_TOK_WHOLE = 1 };

/* [eval] options. Zeroed fields take the defaults noted. */
struct bt_eval_opts {
    const char *text_path;   /* text = FILE (UTF-8); required by bt_eval_run */
    int32_t     ctx;         /* ctx = 512: window length incl. BOS (ctx-1 text tokens each) */
    int32_t     scoring;     /* BT_EVAL_SCORE_*: all text tokens, or only positions >= ctx/2 */
    int32_t     tokenize;    /* BT_EVAL_TOK_*: paragraphs = split on "\n\n", each part + "\n\n"
                              * encoded separately (reference method); whole = one encode */
    const char *report_path; /* report = EVAL.json (NULL: no report) */
    const char *model_path;  /* for the report only (may be NULL) */
    const char *orig_path;   /* for the report only (may be NULL) */
    int32_t     max_windows; /* 0 = all windows; else stop after this many */
    int32_t     verbose;     /* 1: log progress per window at BT_LOG_INFO */
    const char *scoring_name; /* for the report only: overrides the name of `scoring` (NULL: none) */
    /* quality gates ([eval] max_ratio, max_kld, min_top1; 0 = off; they need orig): checked
     * after the evaluation, recorded in the report, the first failure named in gate_failed */
    double      max_ratio, max_kld, min_top1;
};

struct bt_eval_result {
    double  ppl;       /* exp(mean NLL) of the evaluated model */
    double  ppl_orig;  /* same for the original model (0 without compare) */
    double  ratio;     /* ppl / ppl_orig (0 without compare) */
    double  kld_mean;  /* mean over scored tokens of KL(P_orig || P_model), nats */
    double  top1;      /* fraction of scored tokens where both argmax agree */
    int64_t tokens;    /* scored tokens */
    int32_t windows;   /* windows evaluated */
    double  seconds;   /* wall time of the evaluation (tokenization excluded) */
    char    gate_failed[192]; /* "" if every gate passed (or none was set), else what failed */
};

/* Evaluate on a text file: read, check UTF-8, tokenize with m's tokenizer, window, score.
 * orig (compare = original) may be NULL (compare = none); it must have the same vocabulary.
 * Windows need ctx <= bt_model_n_ctx of both models (and so <= context_length).
 * Writes the JSON report atomically (temp + rename) when o->report_path is set. */
bt_status bt_eval_run(bt_model *m, bt_model *orig, const struct bt_eval_opts *o,
                      struct bt_eval_result *res, bt_err *err);
/* the same on already-tokenized text (ids without BOS); o->text_path only goes in the report */
bt_status bt_eval_ids(bt_model *m, bt_model *orig, const int32_t *ids, int64_t n,
                      const struct bt_eval_opts *o, struct bt_eval_result *res, bt_err *err);
/* tokenize text the way [eval] does (tokenize = paragraphs|whole); *ids caller frees (free) */
bt_status bt_eval_tokenize(bt_model *m, const char *text, size_t len, int32_t mode,
                           int32_t **ids, int64_t *n, bt_err *err);
/* read a whole text file, refusing empty and non-UTF-8 content; *text caller frees (free) */
bt_status bt_eval_read_text(const char *path, char **text, size_t *len, bt_err *err);

/* ---- generation ---------------------------------------------------------------------------- */
/* Streaming callback: bytes of one generated token; return non-zero to stop. */
typedef int (*bt_gen_token_fn)(void *user, int32_t id, const char *piece, size_t len);

struct bt_gen_opts {
    int32_t  n_predict;   /* max new tokens (0 = 128) */
    float    temperature; /* <= 0: greedy (default) */
    float    top_p;       /* nucleus mass in (0, 1]; 0 = 1 */
    uint64_t seed;        /* RNG seed for sampling */
    int32_t  no_bos;      /* 1: do not prepend BOS */
    int32_t  ignore_eos;  /* 1: keep going after EOS */
    int32_t  top_k;          /* sample among the k most likely (0 = all) */
    float    min_p;          /* drop tokens below min_p x the most likely one's probability */
    float    repeat_penalty; /* penalize the last repeat_last_n tokens' logits (1 or 0 = off) */
    int32_t  repeat_last_n;  /* 0 = no penalty */
    int32_t  n_cached;       /* the model's cache already holds the first n_cached prompt tokens
                              * (a conversation going on); 0 = start afresh */
    const int32_t *stop_ids; /* more tokens that end the generation (a chat's end of turn) */
    int32_t  n_stop;
};

struct bt_gen_result {
    int32_t n_prompt;   /* prompt tokens incl. BOS */
    int32_t n_gen;      /* generated tokens */
    int32_t hit_eos;    /* 1 if generation stopped at EOS */
    double  pp_tps;     /* prompt processing tokens/s */
    double  tg_tps;     /* generation tokens/s (excludes the prompt pass) */
};

/* Generate from a text prompt. Each new token's bytes go to cb (if set) and to out (if set,
 * flushed per token). Stops at EOS, after n_predict tokens, at the context end or when cb
 * asks. The KV cache is reset first. */
bt_status bt_generate(bt_model *m, const char *prompt, const struct bt_gen_opts *o, FILE *out,
                      bt_gen_token_fn cb, void *user, struct bt_gen_result *res, bt_err *err);
/* the same from prompt ids (used as given: no BOS is added); out_ids (may be NULL) receives up
 * to n_predict generated ids */
bt_status bt_generate_ids(bt_model *m, const int32_t *prompt, int n_prompt,
                          const struct bt_gen_opts *o, FILE *out, bt_gen_token_fn cb, void *user,
                          int32_t *out_ids, struct bt_gen_result *res, bt_err *err);

#ifdef __cplusplus
}
#endif
#endif
