/* test_model_api.c - model runner API on bt-tiny (and bt-small as a second vocabulary-compatible
 * model): math helpers, eval (compare/KLD/top-1, second_half, report JSON, input errors),
 * generation (KV cache vs recompute, seeded sampling), calibration Gram vs direct computation,
 * sequential calibration vs the parallel file (layer 0, and every layer with unquantized weights).
 * RMSNorm/RoPE as issued by the model through the backend.
 * usage: test_model_api SHARED_DIR WORK_DIR */
#include "../bt_test.h"
#include "bt_calib.h"
#include "bt_eval.h"
#include "bt_model.h"
#include "bt_model_int.h"
#include "bt_types.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

static const char *g_shared, *g_work;

/* ---- math: RMSNorm and RoPE as the model issues them, through the backend ------------------ */
static void run_op(struct bt_backend *b, struct bt_op *op, float *io, int64_t n, const float *par,
                   int64_t npar) {
    bt_err err = {0};
    bt_buf *bx = NULL, *bp = NULL;
    CHECK_EQ(bt_be_alloc(b, (uint64_t)n * 4, BT_BUF_ACT, &bx, &err), BT_OK);
    CHECK_EQ(bt_be_alloc(b, (uint64_t)npar * 4, BT_BUF_ACT, &bp, &err), BT_OK);
    if (!bx || !bp) return;
    CHECK_EQ(bt_be_write(b, bx, 0, io, (uint64_t)n * 4, &err), BT_OK);
    CHECK_EQ(bt_be_write(b, bp, 0, par, (uint64_t)npar * 4, &err), BT_OK);
    struct bt_tfmt f32 = {BT_TYPE_F32, 0, 0, 0};
    struct bt_view x = bt_view_of(bx, 0, f32, 1, n), p = bt_view_of(bp, 0, f32, 1, npar);
    op->dst = op->src[0] = x;
    op->src[1] = p;
    CHECK_EQ(bt_be_run(b, op, 1, &err), BT_OK);
    CHECK_EQ(bt_be_read(b, bx, 0, io, (uint64_t)n * 4, &err), BT_OK);
    bt_be_free(b, bx);
    bt_be_free(b, bp);
}

static void test_math(struct bt_backend *b) {
    float x[64], w[64], y[64], q[64], qi[64], tmp[64], inv[32];
    struct bt_op op;
    for (int i = 0; i < 64; i++) { x[i] = sinf(i * 0.7f) * 3; w[i] = 1 + 0.01f * i; }
    memcpy(y, x, sizeof y);
    memset(&op, 0, sizeof op);
    op.code = BT_OP_RMSNORM;
    op.eps = 1e-5f;
    run_op(b, &op, y, 64, w, 64);
    double ss = 0;
    for (int i = 0; i < 64; i++) ss += (double)x[i] * x[i];
    for (int i = 0; i < 64; i++) CHECK_NEAR(y[i], w[i] * x[i] / sqrt(ss / 64 + 1e-5), 1e-5);
    /* rope: halves order == interleaved order after the GGUF permutation of rows */
    for (int k = 0; k < 32; k++) inv[k] = powf(10000.0f, -2.0f * k / 64);
    for (int i = 0; i < 64; i++) q[i] = cosf(i * 1.3f);
    for (int k = 0; k < 32; k++) { qi[2 * k] = q[k]; qi[2 * k + 1] = q[k + 32]; }
    memset(&op, 0, sizeof op);
    op.code = BT_OP_ROPE;
    op.head_dim = 64;
    op.n_rot = 64;
    op.pos0 = 17;
    op.halves = 1;
    run_op(b, &op, q, 64, inv, 32);
    op.halves = 0;
    run_op(b, &op, qi, 64, inv, 32);
    for (int k = 0; k < 32; k++) { tmp[k] = qi[2 * k]; tmp[k + 32] = qi[2 * k + 1]; }
    double md = 0;
    for (int i = 0; i < 64; i++) md = fmax(md, fabs(tmp[i] - q[i]));
    CHECK(md < 1e-6);
    /* rotation keeps the norm of each pair and really rotates */
    for (int i = 0; i < 64; i++) tmp[i] = cosf(i * 1.3f);
    CHECK_NEAR(q[3] * q[3] + q[35] * q[35], tmp[3] * tmp[3] + tmp[35] * tmp[35], 1e-5);
    CHECK(fabs(q[0] - tmp[0]) > 1e-3);
}

/* ---- helpers ------------------------------------------------------------------------------------ */
struct loaded {
    struct bt_reader *r; /* reader */
    bt_model         *m; /* model */
};

static int load(bt_registry *reg, struct bt_backend *b, const char *name, int n_ctx,
                struct loaded *L) {
    char path[4096];
    bt_err err = {0};
    snprintf(path, sizeof path, "%s/models/%s", g_shared, name);
    struct bt_model_opts mo = {.n_ctx = n_ctx, .rope_bf16 = 1};
    if (bt_reader_open(reg, "auto", path, NULL, &L->r, &err) ||
        bt_model_load(L->r, b, &mo, &L->m, &err)) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return 1;
    }
    return 0;
}

static void write_file(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(data, 1, n, f); fclose(f); }
}

/* ---- eval ---------------------------------------------------------------------------------------- */
static void test_eval(bt_model *tiny, bt_model *small) {
    char text[4096], rep[4096];
    snprintf(text, sizeof text, "%s/data/eval_kjv.txt", g_shared);
    snprintf(rep, sizeof rep, "%s/eval_report.json", g_work);
    struct bt_eval_opts o = {.text_path = text, .ctx = 128, .max_windows = 3, .report_path = rep,
                             .model_path = "tiny", .orig_path = "tiny"};
    struct bt_eval_result self, plain, cmp, half;
    bt_err err = {0};
    CHECK_EQ(bt_eval_run(tiny, tiny, &o, &self, &err), BT_OK);
    printf("self-compare: ppl %.4f ratio %.6f kld %.3g top1 %.4f tokens %lld\n", self.ppl,
           self.ratio, self.kld_mean, self.top1, (long long)self.tokens);
    CHECK_EQ(self.tokens, 3 * 127);
    CHECK_NEAR(self.ratio, 1.0, 1e-12);
    CHECK(fabs(self.kld_mean) < 1e-9);
    CHECK_NEAR(self.top1, 1.0, 0);
    json_object *j = json_object_from_file(rep), *v;
    CHECK(j != NULL);
    CHECK(j && json_object_object_get_ex(j, "perplexity", &v) &&
          fabs(json_object_get_double(v) - self.ppl) < 1e-9);
    CHECK(j && json_object_object_get_ex(j, "kld_mean", &v));
    CHECK(j && json_object_object_get_ex(j, "windows", &v) && json_object_get_int(v) == 3);
    CHECK(j && json_object_object_get_ex(j, "tokens", &v) && json_object_get_int(v) == 381);
    json_object_put(j);
    /* tiny against small: ratio and ppl consistent with separate runs, KLD > 0 */
    o.report_path = NULL;
    CHECK_EQ(bt_eval_run(tiny, NULL, &o, &plain, &err), BT_OK);
    CHECK_NEAR(plain.ppl, self.ppl, 1e-12);
    CHECK_EQ(bt_eval_run(tiny, small, &o, &cmp, &err), BT_OK);
    printf("tiny vs small: ppl %.4f orig %.4f ratio %.4f kld %.4f top1 %.4f\n", cmp.ppl,
           cmp.ppl_orig, cmp.ratio, cmp.kld_mean, cmp.top1);
    CHECK_NEAR(cmp.ppl, plain.ppl, 1e-12);
    CHECK_NEAR(cmp.ratio, cmp.ppl / cmp.ppl_orig, 1e-12);
    CHECK(cmp.kld_mean > 0.01 && cmp.top1 > 0.2 && cmp.top1 < 1.0);
    /* second half: ctx/2 .. ctx-2 scored per full window */
    o.scoring = BT_EVAL_SCORE_SECOND_HALF;
    CHECK_EQ(bt_eval_run(tiny, NULL, &o, &half, &err), BT_OK);
    CHECK_EQ(half.tokens, 3 * (127 - 64));
    CHECK(half.ppl < plain.ppl); /* later tokens have more context */
    /* errors */
    char bad[4096];
    snprintf(bad, sizeof bad, "%s/empty.txt", g_work);
    write_file(bad, "", 0);
    o.text_path = bad;
    CHECK_EQ(bt_eval_run(tiny, NULL, &o, &half, &err), BT_E_INVAL);
    CHECK(strstr(err.msg, "empty") != NULL);
    snprintf(bad, sizeof bad, "%s/latin1.txt", g_work);
    write_file(bad, "caf\xe9 au lait", 12);
    bt_err_clear(&err);
    CHECK_EQ(bt_eval_run(tiny, NULL, &o, &half, &err), BT_E_INVAL);
    CHECK(strstr(err.msg, "UTF-8") != NULL);
    o.text_path = text;
    o.ctx = 4096;
    bt_err_clear(&err);
    CHECK_EQ(bt_eval_run(tiny, NULL, &o, &half, &err), BT_E_INVAL);
    CHECK(strstr(err.msg, "context_length 2048") != NULL);
    o.ctx = 1024; /* within context_length but beyond the loaded KV cache */
    bt_err_clear(&err);
    CHECK_EQ(bt_eval_run(tiny, NULL, &o, &half, &err), BT_E_INVAL);
    CHECK(strstr(err.msg, "KV cache") != NULL);
}

/* ---- generate ------------------------------------------------------------------------------------ */
static void test_generate(bt_model *m) {
    struct bt_gen_opts go = {.n_predict = 12};
    struct bt_gen_result gr;
    bt_err err = {0};
    int32_t prompt[8] = {0, 5878, 366, 1402, 293, 1099, 294, 267}, got[12], seq[32];
    CHECK_EQ(bt_generate_ids(m, prompt, 8, &go, NULL, NULL, NULL, got, &gr, &err), BT_OK);
    CHECK_EQ(gr.n_gen + gr.hit_eos * 0, gr.n_gen);
    /* recompute each step without the cache: greedy argmax must agree */
    int vocab = bt_model_hparams(m)->n_vocab, same = 1;
    float *lg = malloc((size_t)vocab * sizeof(float));
    memcpy(seq, prompt, sizeof prompt);
    for (int i = 0; i < gr.n_gen; i++) {
        bt_model_reset(m);
        CHECK_EQ(bt_model_forward(m, seq, 8 + i, 0, lg, 0, &err), BT_OK);
        int best = 0;
        for (int v = 1; v < vocab; v++) if (lg[v] > lg[best]) best = v;
        same &= best == got[i];
        seq[8 + i] = best;
    }
    CHECK(same);
    /* a conversation going on (n_cached): the cache still holds the prompt and the output but
     * its last token; continuing from it gives what a fresh run of the longer prompt gives */
    if (gr.n_gen >= 7) {
        int32_t p2[16], a[12], b[12];
        memcpy(p2, prompt, sizeof prompt);
        memcpy(p2 + 8, got, 6 * sizeof(int32_t));
        p2[14] = 5878, p2[15] = 366;
        struct bt_gen_opts g2 = {.n_predict = 12, .n_cached = 14, .repeat_penalty = 1.3f, .repeat_last_n = 16};
        struct bt_gen_result ra, rb;
        CHECK_EQ(bt_generate_ids(m, p2, 16, &g2, NULL, NULL, NULL, a, &ra, &err), BT_OK);
        g2.n_cached = 0;
        CHECK_EQ(bt_generate_ids(m, p2, 16, &g2, NULL, NULL, NULL, b, &rb, &err), BT_OK);
        CHECK_EQ(ra.n_gen, rb.n_gen);
        CHECK(memcmp(a, b, (size_t)ra.n_gen * sizeof(int32_t)) == 0);
    }
    printf("greedy: %d tokens, pp %.0f t/s, tg %.0f t/s\n", gr.n_gen, gr.pp_tps, gr.tg_tps);
    /* seeded sampling is reproducible */
    int32_t s1[12], s2[12];
    go.temperature = 0.8f;
    go.top_p = 0.9f;
    go.seed = 42;
    struct bt_gen_result r1, r2;
    CHECK_EQ(bt_generate_ids(m, prompt, 8, &go, NULL, NULL, NULL, s1, &r1, &err), BT_OK);
    CHECK_EQ(bt_generate_ids(m, prompt, 8, &go, NULL, NULL, NULL, s2, &r2, &err), BT_OK);
    CHECK_EQ(r1.n_gen, r2.n_gen);
    CHECK(memcmp(s1, s2, (size_t)r1.n_gen * sizeof(int32_t)) == 0);
    if (bt_model_has_tokenizer(m)) {
        char out[4096];
        FILE *f = fmemopen(out, sizeof out, "w");
        go.temperature = 0;
        CHECK_EQ(bt_generate(m, "And it came to pass", &go, f, NULL, NULL, &r1, &err), BT_OK);
        fclose(f);
        printf("generated: \"%s\"\n", out);
        CHECK(strlen(out) > 0);
    }
    free(lg);
}

/* ---- calibration --------------------------------------------------------------------------------- */
struct capture {
    int     layer, which; /* what to capture */
    double *G;            /* (n x n) direct X^T X */
    int     n;            /* dim */
    int64_t rows;         /* rows seen */
};

static void cap_hook(void *user, int layer, int which, const float *X, int ntok, int dim) {
    struct capture *c = user;
    for (int k = 0; k < 3; k++) {
        if (c[k].layer != layer || c[k].which != which) continue;
        if (!c[k].G) { c[k].n = dim; c[k].G = calloc((size_t)dim * dim, sizeof(double)); }
        for (int t = 0; t < ntok; t++)
            for (int i = 0; i < dim; i++)
                for (int jj = 0; jj < dim; jj++)
                    c[k].G[(size_t)i * dim + jj] += (double)X[t * dim + i] * X[t * dim + jj];
        c[k].rows += ntok;
    }
}

/* the calibration test's token ids, file path and options (shared by the parallel and the
 * sequential test, which reads the parallel test's file) */
static struct bt_calib_opts calib_setup(int32_t ids[300], char *path, size_t n) {
    for (int i = 0; i < 300; i++) ids[i] = (i * 131 + 7) % 8000 + 2;
    snprintf(path, n, "%s/calib.btcal", g_work);
    return (struct bt_calib_opts){.ctx = 64, .max_windows = 3};
}

static void test_calib(bt_model *m) {
    int32_t ids[300];
    char path[4096];
    struct bt_calib_opts co = calib_setup(ids, path, sizeof path);
    bt_err err = {0};
    CHECK_EQ(bt_calibrate_ids(m, ids, 300, &co, path, &err), BT_OK);
    /* the same windows by hand, capturing X through the hook */
    struct capture cap[3] = {{0, BT_HOOK_ATTN_IN, NULL, 0, 0}, {1, BT_HOOK_FFN_DOWN, NULL, 0, 0},
                             {3, BT_HOOK_ATTN_OUT, NULL, 0, 0}};
    bt_model_set_hook(m, cap_hook, cap);
    int32_t buf[64];
    for (int w = 0; w < 3; w++) {
        buf[0] = bt_model_hparams(m)->bos_id;
        memcpy(buf + 1, ids + w * 63, 63 * sizeof(int32_t));
        bt_model_reset(m);
        CHECK_EQ(bt_model_forward(m, buf, 64, 0, NULL, 0, &err), BT_OK);
    }
    bt_model_set_hook(m, NULL, NULL);
    bt_calib *c = NULL;
    CHECK_EQ(bt_calib_load(path, &c, &err), BT_OK);
    if (!c) return;
    CHECK_EQ(bt_calib_count(c), 4 * bt_model_hparams(m)->n_layer);
    CHECK_EQ(bt_calib_tokens(c), 192);
    const char *names[3] = {"blk.0.attn_k.weight", "blk.1.ffn_down.weight", "blk.3.attn_output.weight"};
    for (int k = 0; k < 3; k++) {
        const struct bt_calib_entry *e = bt_calib_find(c, names[k]);
        CHECK(e != NULL && e->mat != NULL && cap[k].G != NULL);
        if (!e || !e->mat || !cap[k].G) continue;
        CHECK_EQ(e->n, cap[k].n);
        CHECK_EQ(e->count, cap[k].rows);
        double mx = 0, md = 0, scale = 0;
        for (int i = 0; i < e->n; i++) {
            scale = fmax(scale, fabs(cap[k].G[(size_t)i * e->n + i]));
            md = fmax(md, fabs(e->diag[i] - cap[k].G[(size_t)i * e->n + i]));
            for (int jj = 0; jj < e->n; jj++)
                mx = fmax(mx, fabs(e->mat[(size_t)i * e->n + jj] - cap[k].G[(size_t)i * e->n + jj]));
        }
        printf("calib %s: n %d, max |G - XtX| %.3g, diag %.3g (scale %.3g)\n", names[k], e->n, mx,
               md, scale);
        CHECK(mx <= 1e-5 * scale);
        CHECK(md <= 1e-9 * scale);
        int32_t dn = 0;
        CHECK(bt_calib_diag(c, names[k], &dn) == e->diag && dn == e->n);
    }
    CHECK(bt_calib_find(c, "blk.0.attn") == NULL);
    CHECK(bt_calib_find(c, "blk.0.attn_q.weight") == bt_calib_find(c, "blk.0.attn_v.weight"));
    bt_calib_free(c);
    for (int k = 0; k < 3; k++) free(cap[k].G);
    /* truncated file -> format error, no crash */
    FILE *f = fopen(path, "rb");
    char *data = malloc(1 << 20);
    size_t n = f ? fread(data, 1, 1 << 20, f) : 0;
    if (f) fclose(f);
    char tpath[4096];
    snprintf(tpath, sizeof tpath, "%s/calib_trunc.btcal", g_work);
    write_file(tpath, data, n / 2);
    bt_err_clear(&err);
    CHECK_EQ(bt_calib_load(tpath, &c, &err), BT_E_FORMAT);
    CHECK(c == NULL && strstr(err.msg, "calib_trunc") != NULL);
    free(data);
}

/* the packed rows of tensor `name` in the model's reader (mmap) */
static const void *reader_data(bt_model *m, const char *name, struct bt_tfmt *fmt) {
    struct bt_tensor t;
    bt_err err = {0};
    int64_t i = bt_reader_find(m->r, name);
    if (i < 0 || m->r->i->tensor_get(m->r->ctx, (uint32_t)i, &t, &err)) return NULL;
    if (fmt) *fmt = t.fmt;
    return t.data;
}

/* point every layer weight back at the reader's data */
static void restore_layers(bt_model *m) {
    static const char *roles[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    bt_err err = {0};
    char name[64];
    for (int l = 0; l < bt_model_hparams(m)->n_layer; l++) {
        struct bt_layer *L = &m->layers[l];
        struct bt_lin *w[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
        for (int r = 0; r < 7; r++) {
            struct bt_tfmt f;
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, roles[r]);
            const void *d = reader_data(m, name, &f);
            CHECK(d != NULL);
            if (d) CHECK_EQ(bt_lin_set(m, w[r], &f, d, w[r]->rows * bt_fmt_row_bytes(&f, w[r]->cols), &err), BT_OK);
        }
    }
}

/* max |H_seq - G/count| / max |G/count| of entry e */
static double seq_vs_file(const float *H, const struct bt_calib_entry *e) {
    double mx = 0, sc = 0, inv = 1.0 / (double)e->count;
    for (size_t i = 0; i < (size_t)e->n * e->n; i++) {
        sc = fmax(sc, fabs(e->mat[i] * inv));
        mx = fmax(mx, fabs(H[i] - e->mat[i] * inv));
    }
    return sc > 0 ? mx / sc : 1;
}

static void test_calib_seq(bt_model *m) {
    static const char *roles[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    int32_t ids[300];
    char path[4096];
    struct bt_calib_opts co = calib_setup(ids, path, sizeof path);
    bt_err err = {0};
    bt_calib *c = NULL;
    CHECK_EQ(bt_calib_load(path, &c, &err), BT_OK); /* written by test_calib from the same ids */
    if (!c) return;
    int nl = bt_model_hparams(m)->n_layer;
    /* unquantized weights handed back: sequential == parallel at every layer */
    bt_calib_seq *s = NULL;
    CHECK_EQ(bt_calib_seq_new(m, ids, 300, &co, &s, &err), BT_OK);
    double worst = 0;
    char name[64];
    const float *H = NULL;
    for (int l = 0; l < nl && s; l++) {
        struct bt_layer *L = &m->layers[l];
        const struct bt_lin *w[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
        for (int r = 0; r < 7; r++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, roles[r]);
            int key = -1;
            bt_err_clear(&err);
            CHECK_EQ(bt_calib_seq_hess(s, name, w[r]->cols, &H, &key, &err), BT_OK);
            const struct bt_calib_entry *e = bt_calib_find(c, name);
            CHECK(H != NULL && e != NULL && e->n == w[r]->cols);
            if (H && e) worst = fmax(worst, seq_vs_file(H, e));
            struct bt_tfmt f;
            const void *d = reader_data(m, name, &f);
            CHECK_EQ(bt_calib_seq_done(s, name, &f, d, w[r]->row_bytes * w[r]->rows, &err), BT_OK);
        }
    }
    printf("sequential (unquantized) vs parallel calibration: max rel diff %.3g over %d layers\n", worst, nl);
    CHECK(worst <= 1e-5);
    restore_layers(m); /* they pointed at copies owned by s */
    bt_calib_seq_free(s);
    /* order and size errors name the tensor */
    CHECK_EQ(bt_calib_seq_new(m, ids, 300, &co, &s, &err), BT_OK);
    bt_err_clear(&err);
    CHECK_EQ(bt_calib_seq_hess(s, "blk.1.attn_q.weight", m->layers[1].wq.cols, &H, NULL, &err), BT_E_INVAL);
    CHECK(strstr(err.msg, "blk.1.attn_q.weight") != NULL);
    bt_err_clear(&err);
    CHECK_EQ(bt_calib_seq_hess(s, "blk.0.attn_output.weight", m->layers[0].wo.cols, &H, NULL, &err), BT_E_INVAL);
    bt_err_clear(&err);
    CHECK_EQ(bt_calib_seq_hess(s, "blk.0.attn_q.weight", 7, &H, NULL, &err), BT_E_INVAL);
    CHECK(strstr(err.msg, "blk.0.attn_q.weight") != NULL);
    /* layer 0 inputs agree with the file; a changed v (x2, given as F32) reaches attn_output's
     * input: H_o becomes 4 H_o */
    bt_err_clear(&err);
    CHECK_EQ(bt_calib_seq_hess(s, "blk.0.attn_q.weight", m->layers[0].wq.cols, &H, NULL, &err), BT_OK);
    const struct bt_calib_entry *eq = bt_calib_find(c, "blk.0.attn_q.weight");
    CHECK(H && eq && seq_vs_file(H, eq) <= 1e-5);
    struct bt_lin v = m->layers[0].wv;
    float *v2 = malloc((size_t)v.rows * v.cols * sizeof(float));
    CHECK_EQ(bt_to_f32(&v.fmt, reader_data(m, "blk.0.attn_v.weight", NULL), v2, v.rows * v.cols), BT_OK);
    for (int64_t i = 0; i < v.rows * v.cols; i++) v2[i] *= 2;
    struct bt_tfmt f32 = {BT_TYPE_F32, 0, 0, 0};
    const char *qkv[3] = {"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight"};
    struct bt_lin *lq[3] = {&m->layers[0].wq, &m->layers[0].wk, &m->layers[0].wv};
    for (int r = 0; r < 2; r++)
        CHECK_EQ(bt_calib_seq_done(s, qkv[r], &lq[r]->fmt, reader_data(m, qkv[r], NULL), lq[r]->row_bytes * lq[r]->rows, &err), BT_OK);
    CHECK_EQ(bt_calib_seq_done(s, qkv[2], &f32, v2, (uint64_t)v.rows * v.cols * 4, &err), BT_OK);
    CHECK_EQ(bt_calib_seq_hess(s, "blk.0.attn_output.weight", m->layers[0].wo.cols, &H, NULL, &err), BT_OK);
    const struct bt_calib_entry *eo = bt_calib_find(c, "blk.0.attn_output.weight");
    double mx = 0, sc = 0;
    for (size_t i = 0; H && eo && i < (size_t)eo->n * eo->n; i++) {
        double ref = 4.0 * eo->mat[i] / (double)eo->count;
        sc = fmax(sc, fabs(ref));
        mx = fmax(mx, fabs(H[i] - ref));
    }
    printf("sequential: attn_output input with v x2: max rel diff to 4 H_o %.3g\n", sc > 0 ? mx / sc : 1);
    CHECK(sc > 0 && mx <= 1e-5 * sc);
    restore_layers(m);
    bt_calib_seq_free(s);
    free(v2);
    bt_calib_free(c);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) { fprintf(stderr, "usage: %s SHARED_DIR WORK_DIR\n", argv[0]); return 2; }
    g_shared = argv[1];
    g_work = argv[2];
    bt_registry *reg = NULL;
    struct bt_backend *b = NULL;
    bt_err err = {0};
    CHECK_EQ(bt_registry_new(&reg), BT_OK);
    bt_registry_scan_default(reg, NULL, NULL);
    if (bt_backend_open(reg, "auto", NULL, &b, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    test_math(b);
    struct loaded tiny = {0}, small = {0};
    if (load(reg, b, "bt-tiny", 512, &tiny) || load(reg, b, "bt-small", 512, &small)) return 1;
    /* load errors: ctx beyond context_length */
    struct bt_model_opts big = {.n_ctx = 4096};
    bt_model *bad = NULL;
    CHECK_EQ(bt_model_load(tiny.r, b, &big, &bad, &err), BT_E_INVAL);
    CHECK(bad == NULL && strstr(err.msg, "context_length") != NULL);
    test_eval(tiny.m, small.m);
    test_generate(tiny.m);
    test_calib(tiny.m);
    test_calib_seq(tiny.m);
    bt_model_free(tiny.m);
    bt_model_free(small.m);
    bt_reader_close(tiny.r);
    bt_reader_close(small.r);
    bt_backend_close(b);
    bt_registry_free(reg);
    TEST_DONE();
}
