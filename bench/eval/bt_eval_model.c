/* bt_eval_model.c - standalone driver of the [eval] stage (until the CLI wires it): perplexity
 * of MODEL on a text, optionally against an original model (ratio, KLD, top-1), JSON report.
 * usage: bt_eval_model MODEL --text FILE [--orig MODEL] [--ctx 512] [--q8] [--second-half]
 *        [--whole] [--max-windows N] [--report FILE] [--backend NAME] [--hf-rope] */
#include "bt_eval.h"
#include "bt_model.h"

#include <stdlib.h>
#include <string.h>

struct opened {
    struct bt_reader *r; /* reader */
    bt_model         *m; /* model */
};

static int open_model(bt_registry *reg, struct bt_backend *b, const char *path,
                      const struct bt_model_opts *mo, struct opened *o) {
    bt_err err = {0};
    if (bt_reader_open(reg, "auto", path, NULL, &o->r, &err) ||
        bt_model_load(o->r, b, mo, &o->m, &err)) {
        fprintf(stderr, "bt_eval_model: %s\n", err.msg);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *model = NULL, *orig = NULL, *bname = "auto";
    struct bt_eval_opts eo = {.ctx = 512};
    struct bt_model_opts mo = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *nx = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--text") && nx) eo.text_path = argv[++i];
        else if (!strcmp(a, "--orig") && nx) orig = argv[++i];
        else if (!strcmp(a, "--ctx") && nx) eo.ctx = atoi(argv[++i]);
        else if (!strcmp(a, "--max-windows") && nx) eo.max_windows = atoi(argv[++i]);
        else if (!strcmp(a, "--report") && nx) eo.report_path = argv[++i];
        else if (!strcmp(a, "--backend") && nx) bname = argv[++i];
        else if (!strcmp(a, "--q8")) mo.act_q8 = 1;
        else if (!strcmp(a, "--hf-rope")) mo.rope_bf16 = 1;
        else if (!strcmp(a, "--second-half")) eo.scoring = BT_EVAL_SCORE_SECOND_HALF;
        else if (!strcmp(a, "--whole")) eo.tokenize = BT_EVAL_TOK_WHOLE;
        else if (a[0] != '-' && !model) model = a;
        else { fprintf(stderr, "bt_eval_model: bad argument %s\n", a); return 2; }
    }
    if (!model || !eo.text_path) {
        fprintf(stderr, "usage: bt_eval_model MODEL --text FILE [--orig MODEL] [--ctx 512] [--q8] "
                        "[--second-half] [--whole] [--max-windows N] [--report FILE] "
                        "[--backend NAME] [--hf-rope]\n");
        return 2;
    }
    mo.n_ctx = eo.ctx;
    eo.model_path = model;
    eo.orig_path = orig;
    bt_log_set_level(BT_LOG_INFO);
    bt_err err = {0};
    bt_registry *reg = NULL;
    struct bt_backend *b = NULL;
    struct opened q = {0}, o = {0};
    int rc = 1;
    if (bt_registry_new(&reg)) return 1;
    bt_registry_scan_default(reg, NULL);
    if (strcmp(bname, "none") && bt_backend_open(reg, bname, NULL, &b, &err)) {
        fprintf(stderr, "bt_eval_model: %s\n", err.msg);
        goto done;
    }
    struct bt_model_opts oo = mo;
    oo.act_q8 = 0;
    if (open_model(reg, b, model, &mo, &q) || (orig && open_model(reg, b, orig, &oo, &o)))
        goto done;
    struct bt_eval_result res;
    if (bt_eval_run(q.m, o.m, &eo, &res, &err)) {
        fprintf(stderr, "bt_eval_model: %s\n", err.msg);
        goto done;
    }
    printf("{\"perplexity\": %.4f, \"perplexity_original\": %.4f, \"ratio\": %.4f, "
           "\"kld_mean\": %.5f, \"top1_agreement\": %.4f, \"tokens\": %lld, \"windows\": %d, "
           "\"seconds\": %.2f, \"act\": \"%s\", \"backend\": \"%s\"}\n",
           res.ppl, res.ppl_orig, res.ratio, res.kld_mean, res.top1, (long long)res.tokens,
           res.windows, res.seconds, mo.act_q8 ? "q8" : "f32",
           b ? b->entry->desc->name : "builtin");
    rc = 0;
done:
    bt_model_free(q.m);
    bt_model_free(o.m);
    bt_reader_close(q.r);
    bt_reader_close(o.r);
    bt_backend_close(b);
    bt_registry_free(reg);
    return rc;
}
