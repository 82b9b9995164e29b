/* cmd_runtime.c - model commands and INI stages backed by runtime/: eval, generate, calibrate,
 * and the calibration hooks behind [quantize] calibration = FILE. */
#include "bt/bt_pipeline.h"
#include "bt_calib.h"
#include "bt_eval.h"
#include "bt_model.h"
#include "bt_sample.h"
#include "bt_types.h"
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* ---- a loaded model: reader + backend + runner ------------------------------------------------ */
struct loaded {
    struct bt_reader  *r;
    struct bt_backend *b;
    bt_model          *m;
};

static void loaded_free(struct loaded *l) {
    bt_model_free(l->m);
    bt_backend_close(l->b);
    bt_reader_close(l->r);
    memset(l, 0, sizeof(*l));
}

/* a backend choice: plugin name (or "auto") and its options (NULL: defaults) */
struct be_sel {
    const char      *name;
    const bt_optset *opts;
    const char      *rd_name; /* a reader and its options (the [input] keys, --i2s-layout) for */
    const bt_optset *rd_opts; /* the model files that reader opens; NULL: auto, defaults */
};

static bt_status load_model(bt_registry *reg, const char *path, const struct be_sel *be,
                            const struct bt_model_opts *mo, struct loaded *l, bt_err *err) {
    memset(l, 0, sizeof(*l));
    const struct bt_plugin_entry *pe = be->rd_opts && be->rd_name ? bt_registry_probe_reader(reg, path) : NULL;
    const char *pr = pe ? pe->desc->name : NULL;
    bt_optset *ro = pr && !strcmp(pr, be->rd_name) ? bt_optset_clone(be->rd_opts) : NULL;
    bt_status st = bt_reader_open(reg, ro ? pr : "auto", path, ro, &l->r, err);
    int is_auto = !be->name || !strcmp(be->name, "auto");
    const char *skip[8];
    int n_skip = 0;
    bt_err first;
    bt_err_clear(&first);
    for (;;) { /* auto: the best backend that runs every op and format of this model */
        bt_optset *bo = be->opts ? bt_optset_clone(be->opts) : NULL;
        if (be->opts && !bo) st = st ? st : bt_err_set(err, BT_E_NOMEM, "out of memory");
        if (!st) st = bt_backend_open_skip(reg, is_auto ? "auto" : be->name, bo, skip, n_skip, &l->b, err);
        else bt_optset_free(bo);
        if (!st) st = bt_model_load(l->r, l->b, mo, &l->m, err);
        if (st != BT_E_UNSUPPORTED || !is_auto || !l->b || n_skip == 8) break;
        bt_log(BT_LOG_INFO, "backend auto: %s; trying the next backend", err->msg);
        if (!n_skip) first = *err;
        skip[n_skip++] = bt_backend_name(l->b);
        bt_model_free(l->m);
        l->m = NULL;
        bt_backend_close(l->b);
        l->b = NULL;
        bt_err_clear(err);
        st = BT_OK;
    }
    if (st && n_skip && first.status) *err = first; /* none could: the best one's reason */
    if (st) loaded_free(l);
    return st;
}

#define SCORE_LLAMA 100 /* llama-perplexity's windows: see llama_windows() */
static int scoring_of(const char *s) {
    if (s && !strcmp(s, "llama")) return SCORE_LLAMA;
    return s && !strcmp(s, "second_half") ? BT_EVAL_SCORE_SECOND_HALF : BT_EVAL_SCORE_ALL;
}

/* llama.cpp's perplexity tool tokenizes the whole text with a leading BOS, cuts chunks of ctx
 * tokens and overwrites the first token of every chunk with BOS, so chunk k holds text tokens
 * [k*ctx, (k+1)*ctx - 1) and text token (k+1)*ctx - 1 is never seen; only whole chunks count.
 * Dropping those tokens makes our BOS + (ctx-1) windows identical to its chunks. */
static bt_status eval_llama_windows(bt_model *m, bt_model *orig, struct bt_eval_opts *eo,
                                    struct bt_eval_result *res, bt_err *err) {
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    int64_t n = 0;
    bt_status st = bt_eval_read_text(eo->text_path, &text, &len, err);
    if (!st) st = bt_eval_tokenize(m, text, len, BT_EVAL_TOK_WHOLE, &ids, &n, err);
    free(text);
    if (st) return st;
    int64_t ctx = eo->ctx, chunks = (n + 1) / ctx, k = 0;
    if (chunks < 1) { free(ids); return bt_err_set(err, BT_E_INVAL, "%s: text shorter than one window of %lld tokens", eo->text_path, (long long)ctx); }
    for (int64_t c = 0; c < chunks; c++)
        for (int64_t i = c * ctx; i < (c + 1) * ctx - 1; i++) ids[k++] = ids[i];
    int32_t tok = eo->tokenize;
    eo->scoring = BT_EVAL_SCORE_SECOND_HALF;
    eo->tokenize = BT_EVAL_TOK_WHOLE; /* what this path did; for the report */
    eo->scoring_name = "llama";
    st = bt_eval_ids(m, orig, ids, k, eo, res, err);
    eo->scoring = SCORE_LLAMA;
    eo->tokenize = tok;
    eo->scoring_name = NULL;
    free(ids);
    return st;
}
static int tok_of(const char *s) { return s && !strcmp(s, "whole") ? BT_EVAL_TOK_WHOLE : BT_EVAL_TOK_PARAGRAPHS; }

static void print_eval(const struct bt_eval_result *res, int compare) {
    printf("perplexity %.4f over %lld tokens (%d windows, %.1f s)\n", res->ppl, (long long)res->tokens,
           res->windows, res->seconds);
    if (compare)
        printf("original   %.4f  ratio %.4f  mean KLD %.5f  top-1 agreement %.4f\n", res->ppl_orig,
               res->ratio, res->kld_mean, res->top1);
}

/* the eval work shared by the CLI command and the [eval] stage */
static bt_status do_eval(bt_registry *reg, const char *model, const char *orig, const struct be_sel *backend,
                         const struct bt_model_opts *mo, struct bt_eval_opts *eo, int quiet,
                         char *gate_failed, bt_err *err) {
    struct loaded a, b;
    memset(&b, 0, sizeof(b));
    /* the report's folder is made before the work (output folders are created, everywhere) */
    bt_status st = eo->report_path ? bt_file_make_parents(eo->report_path, err) : BT_OK;
    if (!st) st = load_model(reg, model, backend, mo, &a, err);
    if (st) return st;
    if (orig && (st = load_model(reg, orig, backend, mo, &b, err))) { loaded_free(&a); return st; }
    eo->model_path = model;
    eo->orig_path = orig;
    struct bt_eval_result res;
    memset(&res, 0, sizeof(res));
    if (eo->scoring == SCORE_LLAMA) st = eval_llama_windows(a.m, orig ? b.m : NULL, eo, &res, err);
    else st = bt_eval_run(a.m, orig ? b.m : NULL, eo, &res, err);
    if (res.tokens > 0 && !quiet) print_eval(&res, orig != NULL); /* also when the report failed */
    if (gate_failed) snprintf(gate_failed, 192, "%s", res.gate_failed);
    loaded_free(&b);
    loaded_free(&a);
    return st;
}

/* ---- INI stages ------------------------------------------------------------------------------ */
static const struct bt_option eval_opts[] = {
    {"text", BT_OPT_PATH, NULL, 0, -1, NULL, "UTF-8 text to score"},
    {"ctx", BT_OPT_INT, "512", 2, 1 << 20, NULL, "window length in tokens, BOS included"},
    {"compare", BT_OPT_ENUM, "original", 0, -1, "original|none", "also score the unconverted input: ratio, KLD, top-1 agreement"},
    {"report", BT_OPT_PATH, "", 0, -1, NULL, "EVAL.json"},
    {"scoring", BT_OPT_ENUM, "all", 0, -1, "all|second_half|llama",
     "score every token, only the second half of each window, or exactly llama-perplexity's chunks (whole-text tokens, second half)"},
    {"tokenize", BT_OPT_ENUM, "paragraphs", 0, -1, "paragraphs|whole", "encode paragraph by paragraph (reference method) or the whole text at once"},
    {"max_windows", BT_OPT_INT, "0", 0, 1e9, NULL, "stop after this many windows (0 = all)"},
    {"rope", BT_OPT_ENUM, "exact", 0, -1, "exact|bf16", "bf16: round rope frequencies to bf16 like HF transformers on bf16 checkpoints"},
    {"act", BT_OPT_ENUM, "f32", 0, -1, "f32|q8|auto", "activations of integer-dot matmuls (ternary, Q8_0, Q4_0): f32, or int8 per 256-block (q8; auto is the same)"},
    {"max_ratio", BT_OPT_FLOAT, "0", 0, 1e9, NULL,
     "quality gate: fail (exit 4, output renamed NAME.REJECTED.ext) when perplexity / original's is above this (0 = off)"},
    {"max_kld", BT_OPT_FLOAT, "0", 0, 1e9, NULL, "quality gate: fail when the mean KL divergence from the original is above this (0 = off)"},
    {"min_top1", BT_OPT_FLOAT, "0", 0, 1, NULL, "quality gate: fail when the top-1 agreement with the original is below this (0 = off)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int has_gates(const bt_optset *o) {
    return bt_opt_float(o, "max_ratio") > 0 || bt_opt_float(o, "max_kld") > 0 || bt_opt_float(o, "min_top1") > 0;
}

/* the gates compare the conversion with its input: they need both */
static bt_status check_eval(const bt_optset *o, int converting, const char **key, char *why, size_t nwhy) {
    if (!has_gates(o)) return BT_OK;
    *key = bt_optset_is_set(o, "max_ratio") ? "max_ratio" : bt_optset_is_set(o, "max_kld") ? "max_kld" : "min_top1";
    if (!converting) {
        snprintf(why, nwhy, "%s: quality gates judge a conversion: add an [output] section", *key);
        return BT_E_INVAL;
    }
    if (strcmp(bt_opt_str(o, "compare"), "original") != 0) {
        snprintf(why, nwhy, "%s: quality gates compare with the original: remove compare = none", *key);
        return BT_E_INVAL;
    }
    return BT_OK;
}

/* NAME.ext -> NAME.REJECTED.ext (NAME.REJECTED without an extension): caller frees */
static char *rejected_path(const char *path) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (dot && slash && dot < slash) dot = NULL;
    if (dot == path || (slash && dot == slash + 1)) dot = NULL; /* a hidden file's leading dot */
    size_t n = strlen(path) + 16, pre = dot ? (size_t)(dot - path) : strlen(path);
    char *out = malloc(n);
    if (out) snprintf(out, n, "%.*s.REJECTED%s", (int)pre, path, dot ? dot : "");
    return out;
}

static void model_opts_from(const bt_optset *o, int ctx, struct bt_model_opts *mo) {
    memset(mo, 0, sizeof(*mo));
    mo->n_ctx = ctx;
    const char *rope = bt_opt_str(o, "rope"), *act = bt_opt_str(o, "act");
    mo->rope_bf16 = rope && !strcmp(rope, "bf16");
    mo->act_q8 = act && !strcmp(act, "q8") ? 1 : act && !strcmp(act, "auto") ? 2 : 0;
}

static bt_status stage_eval(const struct bt_stage_ctx *sc, const bt_optset *o, bt_err *err) {
    const char *model = sc->output_path ? sc->output_path : sc->input_path;
    const char *cmp = bt_opt_str(o, "compare");
    const char *orig = sc->output_path && cmp && !strcmp(cmp, "original") ? sc->input_path : NULL;
    struct bt_model_opts mo;
    model_opts_from(o, (int)bt_opt_int(o, "ctx"), &mo);
    const char *rep = bt_opt_str(o, "report");
    struct bt_eval_opts eo = {
        .text_path = bt_opt_str(o, "text"), .ctx = (int32_t)bt_opt_int(o, "ctx"),
        .scoring = scoring_of(bt_opt_str(o, "scoring")), .tokenize = tok_of(bt_opt_str(o, "tokenize")),
        .report_path = rep && *rep ? rep : NULL, .max_windows = (int32_t)bt_opt_int(o, "max_windows"),
    };
    eo.max_ratio = bt_opt_float(o, "max_ratio");
    eo.max_kld = bt_opt_float(o, "max_kld");
    eo.min_top1 = bt_opt_float(o, "min_top1");
    if (!sc->quiet) printf("eval: %s%s%s\n", model, orig ? " vs " : "", orig ? orig : "");
    struct be_sel be = {sc->backend, sc->backend_opts, sc->input_reader, sc->input_opts};
    char failed[192] = "";
    bt_status st = do_eval(sc->reg, model, orig, &be, &mo, &eo, sc->quiet, failed, err);
    if (st || !failed[0] || !sc->output_path) return st;
    /* a quality gate failed: the output stays, renamed so that nobody ships it by mistake */
    char *rej = rejected_path(sc->output_path);
    if (!rej) return bt_err_set(err, BT_E_NOMEM, "out of memory");
    if (rename(sc->output_path, rej) != 0)
        st = bt_err_set(err, BT_E_IO, "%s: quality gate failed (%s) and the output could not be renamed to %s: %s",
                        sc->output_path, failed, rej, strerror(errno));
    else
        st = bt_err_set(err, BT_E_QUALITY, "%s: quality gate failed: %s ([eval] %.*s); the output is kept as %s",
                        sc->ini_path, failed, (int)strcspn(failed, ":"), failed, rej);
    free(rej);
    return st;
}

static const struct bt_option gen_opts[] = {
    {"prompt", BT_OPT_STRING, NULL, 0, -1, NULL, "prompt text"},
    {"n", BT_OPT_INT, "64", 1, 1 << 20, NULL, "tokens to generate"},
    {"temp", BT_OPT_FLOAT, "0", 0, 100, NULL, "temperature (0 = greedy)"},
    {"top_p", BT_OPT_FLOAT, "1", 0, 1, NULL, "nucleus sampling mass"},
    {"seed", BT_OPT_INT, "1", 0, 1e18, NULL, "sampling seed"},
    {"top_k", BT_OPT_INT, "0", 0, 1 << 30, NULL, "sample among the k most likely tokens (0 = all)"},
    {"min_p", BT_OPT_FLOAT, "0", 0, 1, NULL, "drop tokens below min_p x the most likely one's probability"},
    {"repeat_penalty", BT_OPT_FLOAT, "1", 0, 100, NULL, "penalty on the logits of recent tokens (1 = off)"},
    {"repeat_last_n", BT_OPT_INT, "64", 0, 1 << 20, NULL, "recent tokens the penalty looks at"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static bt_status do_generate(bt_registry *reg, const char *model, const struct be_sel *backend, const char *prompt,
                             const struct bt_gen_opts *go, int n_ctx, const struct bt_cli_chat_opts *chat, int quiet,
                             bt_err *err) {
    struct loaded l;
    struct bt_model_opts mo;
    memset(&mo, 0, sizeof(mo));
    mo.act_q8 = 2; /* int8 activations for integer-dot formats (ternary: multiplication-free) */
    mo.n_ctx = n_ctx;
    bt_status st = load_model(reg, model, backend, &mo, &l, err);
    if (st) return st;
    if (chat) {
        st = bt_cli_chat(l.m, l.r, model, chat, go, err);
        loaded_free(&l);
        return st;
    }
    struct bt_gen_result gr;
    memset(&gr, 0, sizeof(gr));
    fputs(prompt, stdout);
    fflush(stdout);
    st = bt_generate(l.m, prompt, go, stdout, NULL, NULL, &gr, err);
    printf("\n");
    if (!st && !quiet)
        fprintf(stderr, "prompt: %d tokens, %.1f tokens/s; generated: %d tokens, %.1f tokens/s%s\n",
                gr.n_prompt, gr.pp_tps, gr.n_gen, gr.tg_tps, gr.hit_eos ? " (stopped at EOS)" : "");
    loaded_free(&l);
    return st;
}

static bt_status stage_generate(const struct bt_stage_ctx *sc, const bt_optset *o, bt_err *err) {
    struct bt_gen_opts go = {
        .n_predict = (int32_t)bt_opt_int(o, "n"), .temperature = (float)bt_opt_float(o, "temp"),
        .top_p = (float)bt_opt_float(o, "top_p"), .seed = (uint64_t)bt_opt_int(o, "seed"),
        .top_k = (int32_t)bt_opt_int(o, "top_k"), .min_p = (float)bt_opt_float(o, "min_p"),
        .repeat_penalty = (float)bt_opt_float(o, "repeat_penalty"), .repeat_last_n = (int32_t)bt_opt_int(o, "repeat_last_n"),
    };
    struct be_sel be = {sc->backend, sc->backend_opts, sc->input_reader, sc->input_opts};
    return do_generate(sc->reg, sc->output_path ? sc->output_path : sc->input_path, &be,
                       bt_opt_str(o, "prompt"), &go, 0, NULL, sc->quiet, err);
}

static const struct bt_option calib_opts[] = {
    {"text", BT_OPT_PATH, NULL, 0, -1, NULL, "calibration text (training-domain, not the eval text)"},
    {"mode", BT_OPT_ENUM, "parallel", 0, -1, "parallel|sequential",
     "parallel: every layer's inputs from the original model, written to `out`; sequential: layer by layer "
     "during the conversion, with the layers before already quantized (needs [quantize] second_order)"},
    {"out", BT_OPT_PATH, "", 0, -1, NULL, "mode = parallel: calibration file to write (BTCAL1)"},
    {"ctx", BT_OPT_INT, "512", 2, 1 << 20, NULL, "window length"},
    {"windows", BT_OPT_INT, "0", 0, 1e9, NULL, "windows to use (0 = all)"},
    {"diag_only", BT_OPT_BOOL, "false", 0, -1, NULL, "store only diag(X^T X) (small; enough for column weighting)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static bt_status do_calibrate(bt_registry *reg, const char *model, const struct be_sel *backend, const char *text,
                              const char *out, const struct bt_calib_opts *co, int quiet, bt_err *err) {
    struct loaded l;
    struct bt_model_opts mo;
    memset(&mo, 0, sizeof(mo));
    mo.n_ctx = co->ctx;
    bt_status st = load_model(reg, model, backend, &mo, &l, err);
    if (st) return st;
    st = bt_calibrate(l.m, text, co, out, err);
    struct stat sb;
    if (!st && !quiet && stat(out, &sb) == 0)
        printf("wrote %s: %.2f MB on disk\n", out, (double)sb.st_size / 1e6);
    loaded_free(&l);
    return st;
}

static int is_sequential(const bt_optset *o) { return !strcmp(bt_opt_str(o, "mode"), "sequential"); }

/* mode and out agree (checked before any work, with the line of the key) */
static bt_status check_calibrate(const bt_optset *o, int converting, const char **key, char *why, size_t nwhy) {
    (void)converting;
    int has_out = *bt_opt_str(o, "out") != 0;
    if (!is_sequential(o) && !has_out) {
        *key = "mode";
        snprintf(why, nwhy, "mode = parallel writes a calibration file: add out = FILE.btcal");
        return BT_E_INVAL;
    }
    if (is_sequential(o) && has_out) {
        *key = "out";
        snprintf(why, nwhy, "out: mode = sequential writes no file (it calibrates during the conversion): remove out");
        return BT_E_INVAL;
    }
    return BT_OK;
}

static bt_status seq_open(const struct bt_stage_ctx *sc, const bt_optset *o, const struct bt_calib_opts *co,
                          bt_err *err);

static bt_status stage_calibrate(const struct bt_stage_ctx *sc, const bt_optset *o, bt_err *err) {
    struct bt_calib_opts co = {.ctx = (int32_t)bt_opt_int(o, "ctx"), .max_windows = (int32_t)bt_opt_int(o, "windows"),
                               .diag_only = (int32_t)bt_opt_int(o, "diag_only")};
    if (is_sequential(o)) return seq_open(sc, o, &co, err);
    if (!*bt_opt_str(o, "out"))
        return bt_err_set(err, BT_E_INVAL, "%s: [calibrate] mode = parallel needs out = FILE", sc->ini_path);
    struct be_sel be = {sc->backend, sc->backend_opts, sc->input_reader, sc->input_opts};
    return do_calibrate(sc->reg, sc->input_path, &be, bt_opt_str(o, "text"), bt_opt_str(o, "out"), &co,
                        sc->quiet, err);
}

static const struct bt_stage stages[] = {
    {"calibrate", 1, calib_opts, stage_calibrate, is_sequential, check_calibrate},
    {"eval", 0, eval_opts, stage_eval, NULL, check_eval},
    {"generate", 0, gen_opts, stage_generate, NULL, NULL},
};

const struct bt_stage *bt_cli_stages(int *n) {
    *n = (int)(sizeof(stages) / sizeof(stages[0]));
    return stages;
}

/* ---- calibration hooks for [quantize] calibration = FILE or [calibrate] mode = sequential -------- */
struct calib_view {
    bt_calib     *c;    /* a file, or ... */
    bt_calib_seq *seq;  /* ... a sequential calibration on ... */
    struct loaded l;    /* ... this model */
    char     *path;
    float    *buf;  /* last weights returned */
    int64_t   cap;
    float    *H;    /* last matrix returned (E[x x^T]) and its entry */
    const struct bt_calib_entry *H_of;
};

bt_status bt_cli_calib_open(const char *path, void **ctx, bt_err *err) {
    struct calib_view *v = calloc(1, sizeof(*v));
    if (!v || !(v->path = strdup(path))) { free(v); return bt_err_set(err, BT_E_NOMEM, "out of memory"); }
    bt_status st = bt_calib_open(path, &v->c, err);
    if (st) { free(v->path); free(v); return st; }
    *ctx = v;
    return BT_OK;
}

/* E[x_j^2] of the tensor's input columns: diag(X^T X) / rows. Absolute (not normalized), so the
 * weighted errors of different tensors are comparable (expected output error, diagonal
 * approximation) for budget allocation. Dead columns get a floor of 1e-3 x the mean. */
static bt_status seq_open(const struct bt_stage_ctx *sc, const bt_optset *o, const struct bt_calib_opts *co,
                          bt_err *err) {
    if (!sc->calib) return bt_err_set(err, BT_E_UNSUPPORTED, "[calibrate] mode = sequential: not available here");
    struct calib_view *v = calloc(1, sizeof(*v));
    if (!v || !(v->path = strdup(bt_opt_str(o, "text")))) { free(v); return bt_err_set(err, BT_E_NOMEM, "out of memory"); }
    struct bt_model_opts mo;
    memset(&mo, 0, sizeof(mo));
    mo.n_ctx = co->ctx;
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    int64_t n = 0;
    struct be_sel be = {sc->backend, sc->backend_opts, sc->input_reader, sc->input_opts};
    bt_status st = load_model(sc->reg, sc->input_path, &be, &mo, &v->l, err);
    if (!st) st = bt_eval_read_text(v->path, &text, &len, err);
    if (!st) st = bt_eval_tokenize(v->l.m, text, len, co->tokenize, &ids, &n, err);
    if (!st) st = bt_calib_seq_new(v->l.m, ids, n, co, &v->seq, err);
    free(text);
    free(ids);
    if (st) { bt_cli_calib_close(v); return st; }
    *sc->calib = v;
    return BT_OK;
}

int bt_cli_calib_sequential(void *ctx) { return ((struct calib_view *)ctx)->seq != NULL; }

bt_status bt_cli_calib_done(void *ctx, const char *tensor, const struct bt_tfmt *fmt, const void *data,
                            uint64_t nbytes, bt_err *err) {
    struct calib_view *v = ctx;
    return v->seq ? bt_calib_seq_done(v->seq, tensor, fmt, data, nbytes, err) : BT_OK;
}

const float *bt_cli_calib_colw(void *ctx, const char *tensor, int64_t cols) {
    struct calib_view *v = ctx;
    if (!v->c) return NULL;
    const struct bt_calib_entry *e = bt_calib_find(v->c, tensor);
    if (!e || e->n != cols || !e->count) return NULL;
    if (v->cap < cols) {
        float *nb = realloc(v->buf, (size_t)cols * sizeof(float));
        if (!nb) return NULL;
        v->buf = nb;
        v->cap = cols;
    }
    double mean = 0;
    for (int64_t j = 0; j < cols; j++) mean += e->diag[j] / (double)e->count;
    mean /= (double)cols;
    if (!(mean > 0)) return NULL;
    for (int64_t j = 0; j < cols; j++) v->buf[j] = (float)fmax(e->diag[j] / (double)e->count, 1e-3 * mean);
    return v->buf;
}

bt_status bt_cli_calib_hess(void *ctx, const char *tensor, int64_t cols, int want, const float **H,
                            uint32_t *entry, bt_err *err) {
    struct calib_view *v = ctx;
    if (H) *H = NULL;
    if (v->seq) {
        if (!want) return BT_OK;
        int key = 0;
        bt_status st = bt_calib_seq_hess(v->seq, tensor, cols, H, &key, err);
        if (entry) *entry = (uint32_t)key;
        return st;
    }
    const struct bt_calib_entry *e = bt_calib_find(v->c, tensor);
    if (!e) return BT_OK;
    if (entry)
        for (uint32_t i = 0; i < bt_calib_count(v->c); i++)
            if (bt_calib_at(v->c, i) == e) *entry = i;
    if (e->n != cols)
        return bt_err_set(err, BT_E_INVAL, "%s: calibration %s was made for %d input columns, the tensor has %lld "
                          "(calibrated on a different model?)", tensor, v->path, e->n, (long long)cols);
    if (!e->count) return bt_err_set(err, BT_E_FORMAT, "%s: calibration %s saw no activations for it", tensor, v->path);
    if (!want) return BT_OK;
    if (!e->full)
        return bt_err_set(err, BT_E_UNSUPPORTED, "%s: calibration %s holds only diagonals (diag_only); "
                          "second_order needs the full X^T X: calibrate again without diag_only", tensor, v->path);
    if (v->H_of != e) {
        free(v->H);
        v->H_of = NULL;
        if (!(v->H = malloc((size_t)cols * cols * sizeof(float))))
            return bt_err_set(err, BT_E_NOMEM, "%s: out of memory for the %lld x %lld Hessian", tensor, (long long)cols, (long long)cols);
        bt_status st = bt_calib_matrix(v->c, e, v->H, err);
        if (st) return st;
        float inv = (float)(1.0 / (double)e->count);
        for (size_t i = 0; i < (size_t)cols * cols; i++) v->H[i] *= inv;
        v->H_of = e;
    }
    *H = v->H;
    return BT_OK;
}

const char *bt_cli_calib_entry(void *ctx, uint32_t i) {
    struct calib_view *v = ctx;
    if (!v->c) return NULL;
    const struct bt_calib_entry *e = bt_calib_at(v->c, i);
    return e ? e->names : NULL;
}

void bt_cli_calib_close(void *ctx) {
    struct calib_view *v = ctx;
    if (!v) return;
    bt_calib_free(v->c);
    loaded_free(&v->l);         /* the model first: its weights may point at the copies... */
    bt_calib_seq_free(v->seq);  /* ...the sequential calibration keeps */
    free(v->buf);
    free(v->H);
    free(v->path);
    free(v);
}

/* ---- commands ---------------------------------------------------------------------------------- */
/* --backend NAME[:key=value,...] [--device N] -> a backend choice with validated options (*owned
 * is freed by the caller) */
static bt_status cli_backend(bt_registry *reg, const char *spec, const char *device,
                             struct be_sel *be, bt_optset **owned, char *name, size_t nname,
                             bt_err *err) {
    *owned = NULL;
    snprintf(name, nname, "%s", spec);
    char *colon = strchr(name, ':');
    if (colon) *colon = 0;
    memset(be, 0, sizeof *be);
    be->name = name;
    if (!colon && !device) return BT_OK;
    const struct bt_plugin_entry *e = bt_registry_find(reg, BT_KIND_BACKEND, name);
    if (!e)
        return bt_err_set(err, BT_E_INVAL, "--backend %s: options need a named backend plugin "
                          "(see `bt-pipeline plugins`)", spec);
    bt_optset *o = bt_optset_new(e->desc->options);
    if (!o) return bt_err_set(err, BT_E_NOMEM, "out of memory");
    char *p = colon ? colon + 1 : NULL;
    bt_status st = BT_OK;
    while (p && *p && !st) {
        char *next = strchr(p, ',');
        if (next) *next++ = 0;
        char *eq = strchr(p, '=');
        if (!eq) st = bt_err_set(err, BT_E_INVAL, "--backend %s: '%s' is not key=value", spec, p);
        else {
            *eq = 0;
            bt_err e2;
            bt_err_clear(&e2);
            if (!bt_optset_has(o, p))
                st = bt_err_set(err, BT_E_INVAL, "--backend %s: '%s' is not an option of backend "
                                "'%s'", spec, p, name);
            else if (bt_optset_set(o, p, eq + 1, NULL, &e2))
                st = bt_err_set(err, BT_E_INVAL, "--backend %s: %s", spec, e2.msg);
        }
        p = next;
    }
    if (!st && device) {
        bt_err e2;
        bt_err_clear(&e2);
        if (!bt_optset_has(o, "device"))
            st = bt_err_set(err, BT_E_INVAL, "--device: backend '%s' has no device option", name);
        else if (bt_optset_set(o, "device", device, NULL, &e2))
            st = bt_err_set(err, BT_E_INVAL, "--device %s: %s", device, e2.msg);
    }
    if (st) { bt_optset_free(o); return st; }
    *owned = o;
    be->opts = o;
    return BT_OK;
}

/* --i2s-layout L: the gguf reader's i2s_layout for the model files it opens (*owned: the set) */
static bt_status cli_reader(bt_registry *reg, const char *layout, struct be_sel *be, bt_optset **owned,
                            bt_err *err) {
    *owned = NULL;
    if (!layout) return BT_OK;
    const struct bt_plugin_entry *e = bt_registry_find(reg, BT_KIND_READER, "gguf");
    if (!e) return bt_err_set(err, BT_E_INVAL, "--i2s-layout: no gguf reader plugin is loaded");
    bt_optset *o = bt_optset_new(e->desc->options);
    if (!o) return bt_err_set(err, BT_E_NOMEM, "out of memory");
    bt_err e2;
    bt_err_clear(&e2);
    if (bt_optset_set(o, "i2s_layout", layout, NULL, &e2)) {
        bt_optset_free(o);
        return bt_err_set(err, BT_E_INVAL, "--i2s-layout: %s", e2.msg);
    }
    be->rd_name = "gguf";
    be->rd_opts = *owned = o;
    return BT_OK;
}

/* run a command body with the backend choice and reader options built from the flags */
#define WITH_BACKEND(reg, spec, device, layout, be, body)                                     \
    do {                                                                                      \
        bt_optset *owned_, *rowned_ = NULL;                                                   \
        char name_[128];                                                                      \
        struct be_sel be;                                                                     \
        bt_status st_ = cli_backend(reg, spec, device, &be, &owned_, name_, sizeof name_, &err); \
        if (!st_) st_ = cli_reader(reg, layout, &be, &rowned_, &err);                         \
        if (!st_) st_ = (body);                                                               \
        bt_optset_free(owned_);                                                               \
        bt_optset_free(rowned_);                                                              \
        return finish(reg, st_, &err);                                                        \
    } while (0)

/* --threads N (range-checked by the parser) */
static void set_threads(const struct bt_cli_args *a) {
    if (bt_cli_str(a, "threads")) bt_threads_set((int)bt_cli_int(a, "threads", 0));
}

/* the input is sacred: a file the command writes must not be, or land inside, one of its inputs */
static bt_status guard_out(const char *flag, const char *out, const char *const *ins, int n, bt_err *err) {
    for (int i = 0; out && *out && i < n; i++)
        if (ins[i] && bt_path_touches(ins[i], out))
            return bt_err_set(err, BT_E_INVAL, "%s %s would write over the input %s; bt never modifies "
                              "its inputs: choose a path outside it", flag, out, ins[i]);
    return BT_OK;
}

static int finish(bt_registry *reg, bt_status st, bt_err *err) {
    if (st) fprintf(stderr, "bt-pipeline: error: %s\n", err->msg[0] ? err->msg : bt_status_str(st));
    bt_registry_free(reg);
    return bt_cli_exit_code(st);
}

int bt_cli_eval(const struct bt_cli_opts *o, const struct bt_cli_args *a) {
    const char *model = bt_cli_str(a, "model"), *text = bt_cli_str(a, "text"), *cmp = bt_cli_str(a, "compare");
    const char *report = bt_cli_str(a, "report"), *backend = bt_cli_str(a, "backend"), *device = bt_cli_str(a, "device");
    const char *act = bt_cli_str(a, "act"), *rope = bt_cli_str(a, "rope");
    struct bt_eval_opts eo = {.ctx = (int32_t)bt_cli_int(a, "ctx", 512),
                              .max_windows = (int32_t)bt_cli_int(a, "max-windows", 0),
                              .scoring = scoring_of(bt_cli_str(a, "scoring")),
                              .tokenize = tok_of(bt_cli_str(a, "tokenize"))};
    struct bt_model_opts mo;
    memset(&mo, 0, sizeof(mo));
    mo.rope_bf16 = rope && !strcmp(rope, "bf16");
    mo.act_q8 = !act ? 0 : !strcmp(act, "q8") ? 1 : !strcmp(act, "auto") ? 2 : 0;
    set_threads(a);
    if (!backend) backend = "auto";
    mo.n_ctx = eo.ctx;
    eo.text_path = text;
    eo.report_path = report;
    int rc;
    bt_registry *reg = bt_cli_registry_or_report(o, &rc);
    if (!reg) return rc;
    bt_err err;
    bt_err_clear(&err);
    const char *ins[3] = {model, text, cmp};
    if (report && strcmp(report, "-") && guard_out("--report", report, ins, 3, &err)) return finish(reg, err.status, &err);
    WITH_BACKEND(reg, backend, device, bt_cli_str(a, "i2s-layout"), be, do_eval(reg, model, cmp, &be, &mo, &eo, o->quiet, NULL, &err));
}

int bt_cli_generate(const struct bt_cli_opts *o, const struct bt_cli_args *a) {
    const char *model = bt_cli_str(a, "model"), *prompt = bt_cli_str(a, "prompt"), *pfile = bt_cli_str(a, "prompt-file");
    const char *backend = bt_cli_str(a, "backend"), *device = bt_cli_str(a, "device");
    struct bt_gen_opts go = {
        .n_predict = (int32_t)bt_cli_int(a, "n-predict", 64), .temperature = (float)bt_cli_float(a, "temp", 0),
        .top_k = (int32_t)bt_cli_int(a, "top-k", 0), .top_p = (float)bt_cli_float(a, "top-p", 1),
        .min_p = (float)bt_cli_float(a, "min-p", 0), .repeat_penalty = (float)bt_cli_float(a, "repeat-penalty", 1),
        .repeat_last_n = (int32_t)bt_cli_int(a, "repeat-last-n", 64), .ignore_eos = bt_cli_count(a, "ignore-eos") > 0,
    };
    int interactive = bt_cli_count(a, "interactive") > 0, chat = interactive || bt_cli_count(a, "chat") > 0;
    if (prompt && pfile) {
        fprintf(stderr, "bt-pipeline generate: error: give the prompt once: -p/--prompt or -f/--prompt-file\n");
        return 2;
    }
    if (interactive && ((prompt && !strcmp(prompt, "-")) || (pfile && !strcmp(pfile, "-")))) {
        fprintf(stderr, "bt-pipeline generate: error: -i reads the conversation from stdin: the prompt cannot come "
                        "from it too (use -p TEXT or -f FILE)\n");
        return 2;
    }
    /* the seed: given, or a random one that is printed so the run can be repeated */
    const char *seed = bt_cli_str(a, "seed");
    go.seed = seed ? (uint64_t)bt_cli_int(a, "seed", 0) : bt_sample_random_seed();
    if (!o->quiet && go.temperature > 0.0f) fprintf(stderr, "seed %llu\n", (unsigned long long)go.seed);
    set_threads(a);
    if (!backend) backend = "auto";
    bt_err err;
    bt_err_clear(&err);
    char *text = NULL;
    const char *src = pfile ? pfile : prompt && !strcmp(prompt, "-") ? "-" : NULL;
    if (!prompt && !pfile && !interactive) {
        if (isatty(0)) {
            fprintf(stderr, "bt-pipeline generate: error: no prompt: give -p TEXT, -f FILE, pipe it to stdin, or "
                            "chat with -i\n(see `bt-pipeline generate --help`)\n");
            return 2;
        }
        src = "-";
    }
    if (src) {
        size_t len;
        bt_status st = bt_cli_read_input(src, &text, &len, &err);
        if (st) return bt_cli_report(st, &err);
        if (len && text[len - 1] == '\n') text[--len] = 0; /* the line end of a file or `echo` */
        if (!len && !interactive) {
            fprintf(stderr, "bt-pipeline generate: error: the prompt from %s is empty\n", strcmp(src, "-") ? src : "stdin");
            free(text);
            return 2;
        }
        prompt = text;
    }
    int rc;
    bt_registry *reg = bt_cli_registry_or_report(o, &rc);
    if (!reg) { free(text); return rc; }
    struct bt_cli_chat_opts co = {.template_name = bt_cli_str(a, "chat-template"), .system = bt_cli_str(a, "system"),
                                  .prompt = prompt, .interactive = interactive, .quiet = o->quiet};
    int n_ctx = (int)bt_cli_int(a, "ctx", 0);
    bt_optset *owned, *rowned = NULL;
    char name[128];
    struct be_sel be;
    bt_status st = cli_backend(reg, backend, device, &be, &owned, name, sizeof name, &err);
    if (!st) st = cli_reader(reg, bt_cli_str(a, "i2s-layout"), &be, &rowned, &err);
    if (!st) st = do_generate(reg, model, &be, prompt, &go, n_ctx, chat ? &co : NULL, o->quiet, &err);
    bt_optset_free(owned);
    bt_optset_free(rowned);
    free(text);
    return finish(reg, st, &err);
}

int bt_cli_calibrate(const struct bt_cli_opts *o, const struct bt_cli_args *a) {
    const char *model = bt_cli_str(a, "model"), *text = bt_cli_str(a, "text"), *out = bt_cli_str(a, "out");
    const char *backend = bt_cli_str(a, "backend"), *device = bt_cli_str(a, "device");
    struct bt_calib_opts co = {.ctx = (int32_t)bt_cli_int(a, "ctx", 512),
                               .max_windows = (int32_t)bt_cli_int(a, "windows", 0),
                               .diag_only = bt_cli_count(a, "diag-only") > 0};
    set_threads(a);
    if (!backend) backend = "auto";
    int rc;
    bt_registry *reg = bt_cli_registry_or_report(o, &rc);
    if (!reg) return rc;
    bt_err err;
    bt_err_clear(&err);
    const char *ins[2] = {model, text};
    if (guard_out("--out", out, ins, 2, &err)) return finish(reg, err.status, &err);
    WITH_BACKEND(reg, backend, device, bt_cli_str(a, "i2s-layout"), be, do_calibrate(reg, model, &be, text, out, &co, o->quiet, &err));
}
