/* test_backend_agree.c - a whole model on a backend under test against the CPU backend, end to
 * end through the runtime: all-position logits of the reference ids within 1e-3 of the logit
 * range with f32 activations (3e-2 with int8 activations, see check_logits), token-by-token decoding through the KV cache, perplexity on
 * eval_kjv.txt within 0.2 %, and greedy generation. Exits 77 (ctest: skipped) when the backend
 * cannot open here (no OpenCL platform, no GPU).
 * usage: test_backend_agree MODEL IDS_DIR SHARED_DIR BACKEND [REF_BACKEND=cpu-avx2] [PPL_WINDOWS=0]
 *        (MODEL: a HF folder or a GGUF file; IDS_DIR: the folder whose reference.json holds the
 *        reference ids) */
#include "../bt_test.h"
#include "bt_eval.h"
#include "bt_model.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

struct side {
    struct bt_reader  *r;
    struct bt_backend *b;
    bt_model          *m;
};

static int open_side(bt_registry *reg, const char *dir, const char *bname, int act_q8, struct side *s,
                     bt_err *err) {
    struct bt_model_opts mo = {.n_ctx = 512, .n_batch = 512, .act_q8 = act_q8, .rope_bf16 = 1};
    memset(s, 0, sizeof *s);
    if (bt_backend_open(reg, bname, NULL, &s->b, err)) return 77;
    if (bt_reader_open(reg, "auto", dir, NULL, &s->r, err) || bt_model_load(s->r, s->b, &mo, &s->m, err))
        return 1;
    return 0;
}

static void close_side(struct side *s) {
    bt_model_free(s->m);
    bt_reader_close(s->r);
    bt_backend_close(s->b);
    memset(s, 0, sizeof *s);
}

/* max |a - b| / max |b| over n values */
static double rel_diff(const float *a, const float *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d; /* NaN propagates as a failure */
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static int32_t *ref_ids(const char *dir, int64_t *n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/reference.json", dir);
    json_object *ref = json_object_from_file(path), *rl, *jids;
    int32_t *ids = NULL;
    if (ref && json_object_object_get_ex(ref, "ref_logits64", &rl) &&
        json_object_object_get_ex(rl, "input_ids", &jids)) {
        *n = (int64_t)json_object_array_length(jids);
        ids = malloc((size_t)*n * sizeof *ids);
        for (int64_t i = 0; ids && i < *n; i++)
            ids[i] = json_object_get_int(json_object_array_get_idx(jids, (size_t)i));
    }
    json_object_put(ref);
    return ids;
}

/* logits of every position, then the last 16 positions one token at a time. tol: 1e-3 with f32
 * activations; with int8 activations the rounding to int8 is discontinuous (a last-bit
 * difference upstream, e.g. in attention, moves a value across a rounding boundary and changes
 * that activation by a whole step), so there the bound is 3e-2 and perplexity carries the 0.2 %
 * requirement. */
static void check_logits(struct side *t, struct side *c, const int32_t *ids, int64_t n, const char *what,
                         double tol) {
    bt_err err = {0};
    int64_t V = bt_model_hparams(c->m)->n_vocab;
    float *lt = malloc((size_t)(n * V) * sizeof(float)), *lc = malloc((size_t)(n * V) * sizeof(float));
    bt_model_reset(t->m);
    bt_model_reset(c->m);
    CHECK_EQ(bt_model_forward(t->m, ids, (int)n, 0, lt, 1, &err), BT_OK);
    CHECK_EQ(bt_model_forward(c->m, ids, (int)n, 0, lc, 1, &err), BT_OK);
    double d = rel_diff(lt, lc, n * V);
    printf("%s: all-position logits: max |diff| / max |logit| = %.3g\n", what, d);
    CHECK(d <= tol);
    int64_t n0 = n - 16 > 1 ? n - 16 : 1;
    double dd = 0;
    bt_model_reset(t->m);
    CHECK_EQ(bt_model_forward(t->m, ids, (int)n0, 0, NULL, 0, &err), BT_OK);
    for (int64_t p = n0; p < n; p++) {
        CHECK_EQ(bt_model_forward(t->m, ids + p, 1, (int)p, lt, 0, &err), BT_OK);
        double dp = rel_diff(lt, lc + p * V, V);
        if (!(dp <= dd)) dd = dp;
    }
    printf("%s: decode through the KV cache vs the reference batch: %.3g\n", what, dd);
    CHECK(dd <= tol);
    if (err.status) fprintf(stderr, "%s\n", err.msg);
    free(lt);
    free(lc);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL IDS_DIR SHARED_DIR BACKEND [REF_BACKEND] [PPL_WINDOWS]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *ids_dir = argv[2], *shared = argv[3], *bname = argv[4];
    const char *rname = argc > 5 ? argv[5] : "cpu-avx2";
    int pw = argc > 6 ? atoi(argv[6]) : 0;
    bt_registry *reg = NULL;
    bt_err err = {0};
    CHECK_EQ(bt_registry_new(&reg), BT_OK);
    bt_registry_scan_default(reg, NULL, NULL);
    struct bt_backend *probe = NULL;
    if (bt_backend_open(reg, rname, NULL, &probe, &err)) rname = "cpu"; /* no AVX2 here */
    bt_backend_close(probe);
    int64_t n = 0;
    int32_t *ids = ref_ids(ids_dir, &n);
    CHECK(ids != NULL && n > 16);
    for (int q8 = 0; q8 < 2 && ids; q8++) {
        struct side t, c;
        int rc = open_side(reg, dir, bname, q8 ? 2 : 0, &t, &err);
        if (rc == 77) {
            printf("skipped: backend '%s' cannot run here: %s\n", bname, err.msg);
            bt_registry_free(reg);
            free(ids);
            return 77;
        }
        if (rc || open_side(reg, dir, rname, q8 ? 2 : 0, &c, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        char what[160];
        snprintf(what, sizeof what, "%s vs %s, %s activations", bname, rname, q8 ? "int8" : "f32");
        check_logits(&t, &c, ids, n, what, q8 ? 3e-2 : 1e-3);
        if (q8) { /* perplexity and generation with the runtime's defaults (int8 for ternary) */
            char text[4096];
            snprintf(text, sizeof text, "%s/data/eval_kjv.txt", shared);
            struct bt_eval_opts o = {.text_path = text, .ctx = 512, .max_windows = pw};
            struct bt_eval_result rt, rc2;
            CHECK_EQ(bt_eval_run(t.m, NULL, &o, &rt, &err), BT_OK);
            CHECK_EQ(bt_eval_run(c.m, NULL, &o, &rc2, &err), BT_OK);
            printf("perplexity: %s %.5f, %s %.5f (%lld tokens): rel diff %.3g\n", bname, rt.ppl,
                   rname, rc2.ppl, (long long)rt.tokens, fabs(rt.ppl / rc2.ppl - 1));
            CHECK(rt.tokens == rc2.tokens && rt.tokens > 0);
            CHECK(fabs(rt.ppl / rc2.ppl - 1) <= 2e-3);
            struct bt_gen_opts go = {.n_predict = 24, .top_p = 1.0f, .seed = 1};
            int32_t gt[24] = {0}, gc[24] = {0};
            struct bt_gen_result gr;
            CHECK_EQ(bt_generate_ids(t.m, ids, 8, &go, NULL, NULL, NULL, gt, &gr, &err), BT_OK);
            int nt = gr.n_gen;
            CHECK_EQ(bt_generate_ids(c.m, ids, 8, &go, NULL, NULL, NULL, gc, &gr, &err), BT_OK);
            int same = 0;
            while (same < nt && same < gr.n_gen && gt[same] == gc[same]) same++;
            printf("greedy generation: %d tokens, first %d identical\n", nt, same);
            CHECK(nt == gr.n_gen && nt > 0);
            CHECK(same >= nt / 2); /* a near tie may flip a late argmax; a broken cache cannot pass */
        }
        close_side(&t);
        close_side(&c);
    }
    free(ids);
    bt_registry_free(reg);
    TEST_DONE();
}
