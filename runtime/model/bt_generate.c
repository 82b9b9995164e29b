/* bt_generate.c - text generation: prompt pass, then token-by-token decoding with greedy or
 * temperature / top-p sampling (seeded, reproducible), streaming each token's bytes. */
#include "bt_eval.h"
#include "bt_model_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double gen_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* splitmix64: a small deterministic generator */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

struct cand {
    float p;  /* probability */
    int   id; /* token id */
};
static int cand_cmp(const void *a, const void *b) {
    const struct cand *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id - y->id;
}

/* greedy when temp <= 0; else softmax(l / temp), nucleus top_p, draw */
static int32_t sample(const float *l, int n, float temp, float top_p, uint64_t *rng,
                      struct cand *c) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    if (temp <= 0.0f) return best;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].id = i;
        c[i].p  = (float)exp((double)(l[i] - l[best]) / temp);
        sum += c[i].p;
    }
    qsort(c, (size_t)n, sizeof *c, cand_cmp);
    double keep = (top_p > 0.0f && top_p < 1.0f ? top_p : 1.0) * sum, acc = 0.0;
    int k = 0;
    while (k < n && (k == 0 || acc < keep)) acc += c[k++].p;
    double r = rng_unit(rng) * acc;
    for (int i = 0; i < k; i++) {
        r -= c[i].p;
        if (r <= 0.0) return c[i].id;
    }
    return c[k - 1].id;
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
    float *logits = malloc((size_t)vocab * sizeof(float));
    struct cand *c = go.temperature > 0.0f ? malloc((size_t)vocab * sizeof *c) : NULL;
    if (!logits || (go.temperature > 0.0f && !c)) {
        free(logits); free(c);
        return bt_err_set(err, BT_E_NOMEM, "generate: out of memory");
    }
    uint64_t rng = go.seed;
    bt_model_reset(m);
    double t0 = gen_now();
    bt_status st = bt_model_forward(m, prompt, n_prompt, 0, logits, 0, err);
    double t1 = gen_now();
    res->n_prompt = n_prompt;
    res->pp_tps   = st ? 0.0 : n_prompt / (t1 - t0 > 1e-9 ? t1 - t0 : 1e-9);
    double tg_time = 0.0;
    int n_dec = 0, pos = n_prompt;
    char piece[256];
    for (int i = 0; st == BT_OK && i < go.n_predict; i++) {
        int32_t id = sample(logits, vocab, go.temperature, go.top_p, &rng, c);
        if (id == m->hp.eos_id && !go.ignore_eos) { res->hit_eos = 1; break; }
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
