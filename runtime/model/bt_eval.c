/* bt_eval.c - the [eval] stage: perplexity over non-overlapping BOS-prefixed windows, optional
 * comparison with the original model (ppl ratio, mean KL(P_orig || P_model), top-1 agreement),
 * atomic JSON report (json-c). */
#include "bt_eval.h"
#include "bt_types.h"
#include "bt_model_int.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- text ------------------------------------------------------------------------------------ */
/* offset of the first invalid UTF-8 sequence, or -1 if valid */
static int64_t utf8_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t   k;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xe0) == 0xc0) { k = 1; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { k = 2; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { k = 3; cp = c & 0x07; }
        else return (int64_t)i;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xc0) != 0x80) return (int64_t)i;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return (int64_t)i;
        i += k + 1;
    }
    return -1;
}

bt_status bt_eval_read_text(const char *path, char **text, size_t *len, bt_err *err) {
    *text = NULL;
    *len  = 0;
    char *buf = NULL;
    size_t n = 0;
    bt_status st = bt_file_read_all(path, &buf, &n, err);
    if (st) return st;
    if (n == 0) { free(buf); return bt_err_set(err, BT_E_INVAL, "%s: text is empty", path); }
    int64_t at = utf8_invalid_at((const unsigned char *)buf, n);
    if (at >= 0) {
        free(buf);
        return bt_err_set(err, BT_E_INVAL, "%s: not valid UTF-8 (byte offset %lld)", path,
                          (long long)at);
    }
    buf[n] = 0;
    *text  = buf;
    *len   = n;
    return BT_OK;
}

/* append ids to a growing array */
static bt_status ids_append(int32_t **all, int64_t *n, int64_t *cap, const int32_t *ids,
                            int64_t k, bt_err *err) {
    if (*n + k > *cap) {
        int64_t nc = *cap ? *cap : 4096;
        while (nc < *n + k) nc *= 2;
        int32_t *na = realloc(*all, (size_t)nc * sizeof(int32_t));
        if (!na) return bt_err_set(err, BT_E_NOMEM, "eval: out of memory");
        *all = na;
        *cap = nc;
    }
    memcpy(*all + *n, ids, (size_t)k * sizeof(int32_t));
    *n += k;
    return BT_OK;
}

bt_status bt_eval_tokenize(bt_model *m, const char *text, size_t len, int32_t mode,
                           int32_t **ids, int64_t *n, bt_err *err) {
    if (mode == BT_EVAL_TOK_WHOLE) return bt_model_tokenize(m, text, len, ids, n, err);
    /* paragraphs: Python's text.split("\n\n"), each part + "\n\n" encoded on its own */
    int32_t *all = NULL;
    int64_t  na = 0, cap = 0;
    char    *part = malloc(len + 3);
    if (!part) return bt_err_set(err, BT_E_NOMEM, "eval: out of memory");
    size_t start = 0;
    bt_status st = BT_OK;
    for (;;) {
        const char *hit = NULL;
        for (size_t i = start; i + 1 < len; i++)
            if (text[i] == '\n' && text[i + 1] == '\n') { hit = text + i; break; }
        size_t end = hit ? (size_t)(hit - text) : len;
        memcpy(part, text + start, end - start);
        memcpy(part + (end - start), "\n\n", 2);
        int32_t *pid = NULL;
        int64_t  pn = 0;
        st = bt_model_tokenize(m, part, end - start + 2, &pid, &pn, err);
        if (st == BT_OK) st = ids_append(&all, &na, &cap, pid, pn, err);
        free(pid);
        if (st || !hit) break;
        start = end + 2;
    }
    free(part);
    if (st) { free(all); return st; }
    *ids = all;
    *n   = na;
    return BT_OK;
}

/* ---- scoring ---------------------------------------------------------------------------------- */
struct score_job {
    const float   *lq;     /* model logits (wlen x vocab) */
    const float   *lo;     /* original logits or NULL */
    const int32_t *tgt;    /* target of position j = buf[j + 1] */
    int            j0;     /* first scored position */
    int            vocab;  /* n_vocab */
    double        *nll;    /* per scored position: -log p_model(target) */
    double        *nllo;   /* same for the original */
    double        *kl;     /* KL(P_orig || P_model) */
    int           *agree;  /* argmax equal */
};

static double lse(const float *l, int n, int *amax) {
    float mx = l[0];
    int   am = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > mx) { mx = l[i]; am = i; }
    double s = 0.0;
    for (int i = 0; i < n; i++) s += exp((double)l[i] - mx);
    *amax = am;
    return mx + log(s);
}

static void score_range(void *arg, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    struct score_job *j = arg;
    for (int64_t i = i0; i < i1; i++) {
        int64_t      pos = j->j0 + i;
        const float *q = j->lq + pos * j->vocab;
        int          aq, ao;
        double       zq = lse(q, j->vocab, &aq);
        j->nll[i] = zq - q[j->tgt[pos]];
        if (!j->lo) continue;
        const float *o = j->lo + pos * j->vocab;
        double zo = lse(o, j->vocab, &ao), kl = 0.0;
        for (int v = 0; v < j->vocab; v++) {
            double lpo = o[v] - zo, lpq = q[v] - zq;
            kl += exp(lpo) * (lpo - lpq);
        }
        j->nllo[i]  = zo - o[j->tgt[pos]];
        j->kl[i]    = kl;
        j->agree[i] = aq == ao;
    }
}

struct eval_acc {
    double  nll, nllo, kl; /* sums over scored tokens */
    int64_t agree, tokens; /* counts */
};

static bt_status eval_window(bt_model *m, bt_model *orig, const int32_t *buf, int len, int j0,
                             float *lq, float *lo, struct eval_acc *acc, bt_err *err) {
    bt_status st;
    bt_model_reset(m);
    if ((st = bt_model_forward(m, buf, len, 0, lq, 1, err))) return st;
    if (orig) {
        bt_model_reset(orig);
        if ((st = bt_model_forward(orig, buf, len, 0, lo, 1, err))) return st;
    }
    int nsc = len - 1 - j0;
    if (nsc <= 0) return BT_OK;
    double *tmp = calloc((size_t)nsc * 3, sizeof(double));
    int *agree  = calloc((size_t)nsc, sizeof(int));
    if (!tmp || !agree) { free(tmp); free(agree); return bt_err_set(err, BT_E_NOMEM, "eval: out of memory"); }
    struct score_job j = {lq, orig ? lo : NULL, buf + 1, j0, m->hp.n_vocab, tmp, tmp + nsc,
                          tmp + 2 * nsc, agree};
    bt_parallel_for(nsc, 8, score_range, &j);
    for (int i = 0; i < nsc; i++) { /* sequential sums: identical on any thread count */
        acc->nll += tmp[i];
        if (orig) { acc->nllo += tmp[nsc + i]; acc->kl += tmp[2 * nsc + i]; acc->agree += agree[i]; }
    }
    acc->tokens += nsc;
    free(tmp);
    free(agree);
    return BT_OK;
}

/* ---- quality gates ------------------------------------------------------------------------------ */
static void check_gates(const struct bt_eval_opts *o, struct bt_eval_result *r) {
    size_t n = sizeof r->gate_failed;
    r->gate_failed[0] = 0;
    if (o->max_ratio > 0 && !(r->ratio <= o->max_ratio))
        snprintf(r->gate_failed, n, "max_ratio: perplexity ratio %.4f is above %g", r->ratio, o->max_ratio);
    else if (o->max_kld > 0 && !(r->kld_mean <= o->max_kld))
        snprintf(r->gate_failed, n, "max_kld: mean KLD %.5f is above %g", r->kld_mean, o->max_kld);
    else if (o->min_top1 > 0 && !(r->top1 >= o->min_top1))
        snprintf(r->gate_failed, n, "min_top1: top-1 agreement %.4f is below %g", r->top1, o->min_top1);
}

/* a path as the report records it: resolved (realpath: no "a/../b", no symlinks) when it exists */
static json_object *json_path(const char *p) {
    char real[PATH_MAX];
    return p ? json_object_new_string(realpath(p, real) ? real : p) : NULL;
}

/* ---- report ------------------------------------------------------------------------------------ */
static bt_status write_report(const struct bt_eval_opts *o, int compare,
                              const struct bt_eval_result *r, bt_err *err) {
    json_object *j = json_object_new_object();
    if (!j) return bt_err_set(err, BT_E_NOMEM, "eval: out of memory");
    json_object_object_add(j, "perplexity", json_object_new_double(r->ppl));
    json_object_object_add(j, "perplexity_original", compare ? json_object_new_double(r->ppl_orig) : NULL);
    json_object_object_add(j, "ratio", compare ? json_object_new_double(r->ratio) : NULL);
    json_object_object_add(j, "kld_mean", compare ? json_object_new_double(r->kld_mean) : NULL);
    json_object_object_add(j, "top1_agreement", compare ? json_object_new_double(r->top1) : NULL);
    json_object_object_add(j, "tokens", json_object_new_int64(r->tokens));
    json_object_object_add(j, "seconds", json_object_new_double(r->seconds));
    json_object_object_add(j, "ctx", json_object_new_int(o->ctx));
    json_object_object_add(j, "windows", json_object_new_int(r->windows));
    json_object_object_add(j, "scoring", json_object_new_string(
        o->scoring_name ? o->scoring_name : o->scoring == BT_EVAL_SCORE_SECOND_HALF ? "second_half" : "all"));
    json_object_object_add(j, "tokenize", json_object_new_string(
        o->tokenize == BT_EVAL_TOK_WHOLE ? "whole" : "paragraphs"));
    json_object_object_add(j, "compare", json_object_new_string(compare ? "original" : "none"));
    json_object_object_add(j, "text", json_path(o->text_path));
    json_object_object_add(j, "model", json_path(o->model_path));
    json_object_object_add(j, "original", json_path(o->orig_path));
    if (o->max_ratio > 0 || o->max_kld > 0 || o->min_top1 > 0) { /* quality gates */
        json_object *g = json_object_new_object();
        const struct { const char *name; double limit, value; int upper; } gs[] = {
            {"max_ratio", o->max_ratio, r->ratio, 1}, {"max_kld", o->max_kld, r->kld_mean, 1},
            {"min_top1", o->min_top1, r->top1, 0},
        };
        for (int i = 0; i < 3; i++) {
            if (!(gs[i].limit > 0)) continue;
            json_object *e = json_object_new_object();
            json_object_object_add(e, "limit", json_object_new_double(gs[i].limit));
            json_object_object_add(e, "value", json_object_new_double(gs[i].value));
            json_object_object_add(e, "passed", json_object_new_boolean(
                gs[i].upper ? gs[i].value <= gs[i].limit : gs[i].value >= gs[i].limit));
            json_object_object_add(g, gs[i].name, e);
        }
        json_object_object_add(g, "passed", json_object_new_boolean(!r->gate_failed[0]));
        json_object_object_add(g, "failed", r->gate_failed[0] ? json_object_new_string(r->gate_failed) : NULL);
        json_object_object_add(j, "gates", g);
    }
    const char *s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!strcmp(o->report_path, "-")) { /* stdout (`eval --report -`) */
        int bad = puts(s) < 0 || fflush(stdout) != 0;
        json_object_put(j);
        return bad ? bt_err_set(err, BT_E_IO, "eval report: cannot write to stdout: %s", strerror(errno)) : BT_OK;
    }
    size_t plen = strlen(o->report_path);
    char *tmp = malloc(plen + 32);
    bt_status st = BT_OK;
    if (!tmp) { json_object_put(j); return bt_err_set(err, BT_E_NOMEM, "eval: out of memory"); }
    snprintf(tmp, plen + 32, "%s.tmp.%ld", o->report_path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = bt_err_set(err, BT_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
    } else {
        int bad = fputs(s, f) < 0 || fputc('\n', f) == EOF;
        bad |= fclose(f) != 0;
        if (bad) st = bt_err_set(err, BT_E_IO, "%s: write failed", tmp);
        else if (rename(tmp, o->report_path) != 0)
            st = bt_err_set(err, BT_E_IO, "%s: cannot rename into place: %s", o->report_path,
                            strerror(errno));
        if (st) remove(tmp);
    }
    free(tmp);
    json_object_put(j);
    return st;
}

/* ---- public ------------------------------------------------------------------------------------ */
static bt_status check_models(bt_model *m, bt_model *orig, int ctx, bt_err *err) {
    const struct bt_model_hparams *hp = bt_model_hparams(m);
    if (ctx < 2) return bt_err_set(err, BT_E_INVAL, "eval: ctx %d is too small (>= 2)", ctx);
    bt_model *ms[2] = {m, orig};
    for (int i = 0; i < 2 && ms[i]; i++) {
        const struct bt_model_hparams *h = bt_model_hparams(ms[i]);
        const char *who = i ? "original model" : "model";
        if (h->n_ctx_train > 0 && ctx > h->n_ctx_train)
            return bt_err_set(err, BT_E_INVAL, "eval: ctx %d exceeds the %s's context_length %d",
                              ctx, who, h->n_ctx_train);
        if (ctx > bt_model_n_ctx(ms[i]))
            return bt_err_set(err, BT_E_INVAL, "eval: ctx %d exceeds the %s's KV cache (%d); load "
                              "it with n_ctx >= %d", ctx, who, bt_model_n_ctx(ms[i]), ctx);
    }
    if (orig && bt_model_hparams(orig)->n_vocab != hp->n_vocab)
        return bt_err_set(err, BT_E_INVAL, "eval: vocabularies differ (%d vs original %d)",
                          hp->n_vocab, bt_model_hparams(orig)->n_vocab);
    if (hp->bos_id < 0 || hp->bos_id >= hp->n_vocab)
        return bt_err_set(err, BT_E_INVAL, "eval: the model has no BOS token id");
    return BT_OK;
}

bt_status bt_eval_ids(bt_model *m, bt_model *orig, const int32_t *ids, int64_t n,
                      const struct bt_eval_opts *o, struct bt_eval_result *res, bt_err *err) {
    memset(res, 0, sizeof *res);
    struct bt_progress pg = {0};
    struct bt_eval_opts oo = *o;
    if (oo.ctx == 0) oo.ctx = 512;
    bt_status st = check_models(m, orig, oo.ctx, err);
    if (st) return st;
    if (n <= 0) return bt_err_set(err, BT_E_INVAL, "eval: no text tokens");
    int ctx = oo.ctx, vocab = m->hp.n_vocab;
    int j0 = oo.scoring == BT_EVAL_SCORE_SECOND_HALF ? ctx / 2 : 0;
    int32_t *buf = malloc((size_t)ctx * sizeof *buf);
    float *lq = malloc((size_t)ctx * vocab * sizeof(float));
    float *lo = orig ? malloc((size_t)ctx * vocab * sizeof(float)) : NULL;
    if (!buf || !lq || (orig && !lo)) { st = bt_err_set(err, BT_E_NOMEM, "eval: out of memory"); goto done; }
    struct eval_acc acc = {0};
    double t0 = now_s();
    int64_t n_win = (n + ctx - 2) / (ctx - 1);
    if (oo.max_windows > 0 && n_win > oo.max_windows) n_win = oo.max_windows;
    bt_progress_start(&pg, "eval");
    for (int64_t off = 0; off < n; off += ctx - 1) {
        int wl = n - off < ctx - 1 ? (int)(n - off) : ctx - 1;
        buf[0] = m->hp.bos_id;
        memcpy(buf + 1, ids + off, (size_t)wl * sizeof *buf);
        if ((st = eval_window(m, orig, buf, wl + 1, j0, lq, lo, &acc, err))) goto done;
        res->windows++;
        bt_progress_step(&pg, res->windows, (double)n_win, "window %d/%lld, perplexity so far %.4f%s", res->windows,
                         (long long)n_win, acc.tokens ? exp(acc.nll / acc.tokens) : 0.0, orig ? " (converted)" : "");
        if (oo.verbose)
            bt_log(BT_LOG_INFO, "eval: window %d: %lld tokens, ppl %.4f", res->windows,
                   (long long)acc.tokens, acc.tokens ? exp(acc.nll / acc.tokens) : 0.0);
        if (oo.max_windows > 0 && res->windows >= oo.max_windows) break;
    }
    res->seconds = now_s() - t0;
    if (acc.tokens == 0) { st = bt_err_set(err, BT_E_INVAL, "eval: no token was scored (text too short for ctx %d)", ctx); goto done; }
    res->tokens = acc.tokens;
    res->ppl    = exp(acc.nll / acc.tokens);
    if (orig) {
        res->ppl_orig = exp(acc.nllo / acc.tokens);
        res->ratio    = res->ppl / res->ppl_orig;
        res->kld_mean = acc.kl / acc.tokens;
        res->top1     = (double)acc.agree / acc.tokens;
    }
    if (orig) check_gates(&oo, res);
    if (oo.report_path) st = write_report(&oo, orig != NULL, res, err);
done:
    bt_progress_end(&pg);
    free(buf);
    free(lq);
    free(lo);
    return st;
}

bt_status bt_eval_run(bt_model *m, bt_model *orig, const struct bt_eval_opts *o,
                      struct bt_eval_result *res, bt_err *err) {
    memset(res, 0, sizeof *res);
    if (!o->text_path) return bt_err_set(err, BT_E_INVAL, "eval: no text file given");
    int ctx = o->ctx ? o->ctx : 512;
    bt_status st = check_models(m, orig, ctx, err);
    if (st) return st;
    char *text = NULL;
    size_t len = 0;
    if ((st = bt_eval_read_text(o->text_path, &text, &len, err))) return st;
    int32_t *ids = NULL;
    int64_t n = 0;
    st = bt_eval_tokenize(m, text, len, o->tokenize, &ids, &n, err);
    free(text);
    if (st == BT_OK) st = bt_eval_ids(m, orig, ids, n, o, res, err);
    free(ids);
    return st;
}
