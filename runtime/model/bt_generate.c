/* bt_generate.c - text generation: prompt pass (or only its new part when a conversation goes
 * on), then token-by-token decoding with greedy or sampled choice (bt_sample.c: repeat penalty,
 * top-k, temperature, min-p, top-p; seeded, reproducible), streaming each token's bytes. */
#include "bt_eval.h"
#include "bt_model_int.h"
#include "bt_sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double gen_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bt_status bt_generate_ids(bt_model *m, const int32_t *prompt, int n_prompt,
                          const struct bt_gen_opts *o, FILE *out, bt_gen_token_fn cb, void *user,
                          int32_t *out_ids, struct bt_gen_result *res, bt_err *err) {
    struct bt_gen_opts go = {0};
    if (o) go = *o;
    if (go.n_predict <= 0) go.n_predict = 128;
    memset(res, 0, sizeof *res);
    if (n_prompt <= 0) return bt_err_set(err, BT_E_INVAL, "generate: empty prompt");
    if (n_prompt >= m->n_ctx)
        return bt_err_set(err, BT_E_INVAL, "generate: prompt of %d tokens does not fit the "
                          "context of %d", n_prompt, m->n_ctx);
    if ((int64_t)n_prompt + go.n_predict - 1 > m->n_ctx) /* said, never silently cut short */
        return bt_err_set(err, BT_E_INVAL, "generate: %d new tokens after the prompt's %d do not fit the "
                          "model's context of %d tokens: ask for at most %d (-n, [generate] n)",
                          go.n_predict, n_prompt, m->n_ctx, m->n_ctx - n_prompt + 1);
    int vocab = m->hp.n_vocab;
    int n_hist = n_prompt + go.n_predict;
    float *logits = malloc((size_t)vocab * sizeof(float));
    struct bt_cand *c = malloc((size_t)vocab * sizeof *c);
    int32_t *hist = malloc((size_t)n_hist * sizeof *hist); /* prompt + generated: the penalty's window */
    if (!logits || !c || !hist) {
        free(logits); free(c); free(hist);
        return bt_err_set(err, BT_E_NOMEM, "generate: out of memory");
    }
    memcpy(hist, prompt, (size_t)n_prompt * sizeof *hist);
    struct bt_sample_opts so = {.temperature = go.temperature, .top_k = go.top_k, .top_p = go.top_p,
                                .min_p = go.min_p,
                                .repeat_penalty = go.repeat_last_n > 0 ? go.repeat_penalty : 1.0f};
    uint64_t rng = go.seed;
    int cached = go.n_cached < 0 ? 0 : go.n_cached >= n_prompt ? n_prompt - 1 : go.n_cached;
    if (cached > m->n_past) cached = m->n_past;
    if (!cached) bt_model_reset(m);
    double t0 = gen_now();
    bt_status st = bt_model_forward(m, prompt + cached, n_prompt - cached, cached, logits, 0, err);
    double t1 = gen_now();
    res->n_prompt = n_prompt;
    res->pp_tps   = st ? 0.0 : (n_prompt - cached) / (t1 - t0 > 1e-9 ? t1 - t0 : 1e-9);
    double tg_time = 0.0;
    int n_dec = 0, pos = n_prompt, len_hist = n_prompt;
    char piece[256];
    for (int i = 0; st == BT_OK && i < go.n_predict; i++) {
        int n_recent = len_hist < go.repeat_last_n ? len_hist : go.repeat_last_n;
        int32_t id = bt_sample(logits, vocab, &so, hist + len_hist - n_recent, n_recent, &rng, c);
        int stop = id == m->hp.eos_id && !go.ignore_eos;
        for (int k = 0; k < go.n_stop && !stop; k++) stop = id == go.stop_ids[k];
        if (stop) { res->hit_eos = 1; break; }
        hist[len_hist++] = id;
        if (out_ids) out_ids[i] = id;
        res->n_gen++;
        int len = bt_model_token_piece(m, id, piece, (int)sizeof piece);
        if (len > 0 && out) { fwrite(piece, 1, (size_t)len, out); fflush(out); }
        if (cb && cb(user, id, piece, len > 0 ? (size_t)len : 0)) break;
        if (i + 1 == go.n_predict || pos >= m->n_ctx) break;
        double a = gen_now();
        st = bt_model_forward(m, &id, 1, pos, logits, 0, err);
        tg_time += gen_now() - a;
        n_dec++;
        pos++;
    }
    res->tg_tps = n_dec ? n_dec / (tg_time > 1e-9 ? tg_time : 1e-9) : 0.0;
    free(logits);
    free(c);
    free(hist);
    return st;
}

bt_status bt_generate(bt_model *m, const char *prompt, const struct bt_gen_opts *o, FILE *out,
                      bt_gen_token_fn cb, void *user, struct bt_gen_result *res, bt_err *err) {
    memset(res, 0, sizeof *res);
    if (!prompt) return bt_err_set(err, BT_E_INVAL, "generate: no prompt");
    int32_t *ids = NULL;
    int64_t n = 0;
    bt_status st = bt_model_tokenize(m, prompt, strlen(prompt), &ids, &n, err);
    if (st) return st;
    int add_bos = !(o && o->no_bos) && m->hp.bos_id >= 0;
    int32_t *all = malloc((size_t)(n + 1) * sizeof *all);
    if (!all) { free(ids); return bt_err_set(err, BT_E_NOMEM, "generate: out of memory"); }
    if (add_bos) all[0] = m->hp.bos_id;
    if (n) memcpy(all + add_bos, ids, (size_t)n * sizeof *all);
    free(ids);
    st = bt_generate_ids(m, all, (int)n + add_bos, o, out, cb, user, NULL, res, err);
    free(all);
    return st;
}
