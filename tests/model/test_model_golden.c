/* test_model_golden.c - golden test of the model runner against the HF reference: logits of the
 * 64 reference input ids vs ref_logits64.npy (max abs diff <= 1e-2), paragraph tokenization vs
 * eval_kjv.tokens.json, and perplexity on eval_kjv.txt within 0.5% of reference.json.
 * usage: test_model_golden MODEL_DIR SHARED_DIR [backend] [--no-ppl] */
#include "../bt_test.h"
#include "bt_eval.h"
#include "bt_model.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* minimal .npy reader: '<f4' C-order 2-D; returns data (caller frees) and shape */
static float *npy_load(const char *path, int64_t *r, int64_t *c) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char pre[10];
    float *data = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] != 1) goto out;
    size_t hl = pre[8] | (size_t)pre[9] << 8;
    char hdr[1024];
    if (hl >= sizeof hdr || fread(hdr, 1, hl, f) != hl) goto out;
    hdr[hl] = 0;
    if (!strstr(hdr, "'<f4'") || !strstr(hdr, "'fortran_order': False")) goto out;
    const char *s = strstr(hdr, "'shape': (");
    if (!s || sscanf(s, "'shape': (%ld, %ld)", (long *)r, (long *)c) != 2) goto out;
    data = malloc((size_t)(*r * *c) * sizeof(float));
    if (data && fread(data, sizeof(float), (size_t)(*r * *c), f) != (size_t)(*r * *c)) {
        free(data);
        data = NULL;
    }
out:
    fclose(f);
    return data;
}

static int32_t *json_ids(json_object *arr, int64_t *n) {
    *n = (int64_t)json_object_array_length(arr);
    int32_t *ids = malloc((size_t)(*n ? *n : 1) * sizeof *ids);
    for (int64_t i = 0; ids && i < *n; i++)
        ids[i] = json_object_get_int(json_object_array_get_idx(arr, (size_t)i));
    return ids;
}

static void test_logits(bt_model *m, const char *dir, json_object *ref, double tol) {
    char path[4096];
    snprintf(path, sizeof path, "%s/ref_logits64.npy", dir);
    int64_t R = 0, C = 0;
    float *want = npy_load(path, &R, &C);
    CHECK(want != NULL);
    json_object *rl, *jids;
    CHECK(json_object_object_get_ex(ref, "ref_logits64", &rl));
    CHECK(json_object_object_get_ex(rl, "input_ids", &jids));
    if (!want || !jids) { free(want); return; }
    int64_t n;
    int32_t *ids = json_ids(jids, &n);
    CHECK_EQ(n, R);
    CHECK_EQ(C, bt_model_hparams(m)->n_vocab);
    float *got = malloc((size_t)(R * C) * sizeof(float));
    bt_err err = {0};
    bt_model_reset(m);
    bt_status st = bt_model_forward(m, ids, (int)n, 0, got, 1, &err);
    if (st) fprintf(stderr, "forward: %s\n", err.msg);
    CHECK_EQ(st, BT_OK);
    double mx = 0;
    for (int64_t i = 0; !st && i < R * C; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (d > mx) mx = d;
    }
    printf("%s: logits max abs diff %.3g over %lld x %lld\n", dir, mx, (long long)R, (long long)C);
    CHECK(mx <= tol);
    /* incremental decoding through the KV cache must give the same last-token logits */
    bt_model_reset(m);
    st = bt_model_forward(m, ids, 40, 0, NULL, 0, &err);
    for (int t = 40; t < n && !st; t++) st = bt_model_forward(m, ids + t, 1, t, got, 0, &err);
    CHECK_EQ(st, BT_OK);
    double mx2 = 0;
    for (int64_t v = 0; v < C; v++) {
        double d = fabs((double)got[v] - want[(R - 1) * C + v]);
        if (d > mx2) mx2 = d;
    }
    printf("%s: incremental last-token max abs diff %.3g\n", dir, mx2);
    CHECK(mx2 <= tol);
    free(got);
    free(ids);
    free(want);
}

static void test_ppl(bt_model *m, const char *shared, json_object *ref) {
    char path[4096];
    snprintf(path, sizeof path, "%s/data/eval_kjv.tokens.json", shared);
    json_object *tj = json_object_from_file(path), *pj;
    CHECK(tj != NULL);
    if (!tj || !json_object_object_get_ex(tj, "paragraph_ids", &pj)) { json_object_put(tj); return; }
    int64_t n;
    int32_t *want = json_ids(pj, &n);
    snprintf(path, sizeof path, "%s/data/eval_kjv.txt", shared);
    struct bt_eval_opts o = {0};
    o.text_path = path;
    o.ctx = 512;
    struct bt_eval_result res;
    bt_err err = {0};
    bt_status st;
    if (bt_model_has_tokenizer(m)) { /* our tokenizer + paragraph split must give the same ids */
        char *text = NULL;
        size_t len = 0;
        int32_t *ids = NULL;
        int64_t ni = 0;
        CHECK_EQ(bt_eval_read_text(path, &text, &len, &err), BT_OK);
        CHECK_EQ(bt_eval_tokenize(m, text, len, BT_EVAL_TOK_PARAGRAPHS, &ids, &ni, &err), BT_OK);
        CHECK_EQ(ni, n);
        int same = ni == n;
        for (int64_t i = 0; same && i < n; i++) same = ids[i] == want[i];
        CHECK(same);
        free(ids);
        free(text);
        st = bt_eval_run(m, NULL, &o, &res, &err);
    } else {
        fprintf(stderr, "note: no tokenizer, using the reference ids\n");
        st = bt_eval_ids(m, NULL, want, n, &o, &res, &err);
    }
    if (st) fprintf(stderr, "eval: %s\n", err.msg);
    CHECK_EQ(st, BT_OK);
    json_object *pr;
    double ref_ppl = json_object_object_get_ex(ref, "perplexity_eval_kjv_bf16", &pr)
                         ? json_object_get_double(pr) : 0;
    printf("perplexity %.4f (reference %.3f, rel %.4f%%), %lld tokens, %d windows, %.1f s "
           "(%.0f tok/s)\n", res.ppl, ref_ppl, 100 * fabs(res.ppl / ref_ppl - 1),
           (long long)res.tokens, res.windows, res.seconds, res.tokens / res.seconds);
    CHECK_EQ(res.tokens, n);
    CHECK(fabs(res.ppl / ref_ppl - 1) <= 0.005);
    free(want);
    json_object_put(tj);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR SHARED_DIR [backend] [--no-ppl]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *shared = argv[2];
    const char *bname = argc > 3 && argv[3][0] != '-' ? argv[3] : "auto";
    int no_ppl = argc > 3 && !strcmp(argv[argc - 1], "--no-ppl");
    bt_err err = {0};
    bt_registry *reg = NULL;
    struct bt_reader *r = NULL;
    struct bt_backend *b = NULL;
    bt_model *m = NULL;
    CHECK_EQ(bt_registry_new(&reg), BT_OK);
    bt_registry_scan_default(reg, NULL, NULL);
    if (bt_reader_open(reg, "auto", dir, NULL, &r, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    if (strcmp(bname, "none") != 0 && bt_backend_open(reg, bname, NULL, &b, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    /* exact rope first (differs from HF's bf16-rounded inv_freq by ~3e-2), then HF-compatible */
    struct bt_model_opts mo = {.n_ctx = 512, .n_batch = 512};
    bt_status st = bt_model_load(r, b, &mo, &m, &err);
    if (st) fprintf(stderr, "load: %s\n", err.msg);
    CHECK_EQ(st, BT_OK);
    char path[4096];
    snprintf(path, sizeof path, "%s/reference.json", dir);
    json_object *ref = json_object_from_file(path);
    CHECK(ref != NULL);
    if (m && ref) {
        printf("rope exact (f32 inv_freq):\n");
        test_logits(m, dir, ref, 5e-2);
    }
    bt_model_free(m);
    m = NULL;
    mo.rope_bf16 = 1;
    st = bt_model_load(r, b, &mo, &m, &err);
    if (st) fprintf(stderr, "load: %s\n", err.msg);
    CHECK_EQ(st, BT_OK);
    if (m && ref) {
        printf("backend: %s; rope_bf16 (HF-compatible):\n", b ? b->entry->desc->name : "builtin");
        test_logits(m, dir, ref, 1e-2);
        if (!no_ppl) test_ppl(m, shared, ref);
    }
    json_object_put(ref);
    bt_model_free(m);
    bt_backend_close(b);
    bt_reader_close(r);
    bt_registry_free(reg);
    TEST_DONE();
}
