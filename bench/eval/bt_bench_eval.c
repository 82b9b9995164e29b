/* bt_bench_eval.c - model runner speed like llama-bench: prompt processing (pp N, one batch)
 * and token generation (tg N, one token at a time) in tokens/s, printed as JSON.
 * usage: bt_bench_eval MODEL [--backend NAME] [--opt KEY=VALUE]... [--pp 512] [--tg 128] [--reps 3]
 *        [--threads N] [--q8]   (--opt: the named backend's options, e.g. --opt graphs=true) */
#include "bt_eval.h"
#include "bt_model.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what, const bt_err *err) {
    fprintf(stderr, "bt_bench_eval: %s: %s\n", what, err->msg);
    return 1;
}

int main(int argc, char **argv) {
    const char *path = NULL, *bname = "auto";
    int pp = 512, tg = 128, reps = 3, threads = 0, q8 = 0, n_opt = 0;
    const char *opt[16];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backend") && i + 1 < argc) bname = argv[++i];
        else if (!strcmp(argv[i], "--pp") && i + 1 < argc) pp = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tg") && i + 1 < argc) tg = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--q8")) q8 = 1;
        else if (!strcmp(argv[i], "--opt") && i + 1 < argc && n_opt < 16) opt[n_opt++] = argv[++i];
        else if (argv[i][0] != '-') path = argv[i];
        else { fprintf(stderr, "bt_bench_eval: unknown option %s\n", argv[i]); return 2; }
    }
    if (!path || pp < 1 || tg < 1 || reps < 1) {
        fprintf(stderr, "usage: bt_bench_eval MODEL [--backend NAME] [--opt KEY=VALUE]... [--pp 512] "
                        "[--tg 128] [--reps 3] [--threads N] [--q8]\n");
        return 2;
    }
    bt_threads_set(threads);
    bt_err err = {0};
    bt_registry *reg = NULL;
    struct bt_reader *r = NULL;
    struct bt_backend *b = NULL;
    bt_model *m = NULL;
    int rc = 1;
    if (bt_registry_new(&reg)) { fprintf(stderr, "bt_bench_eval: out of memory\n"); return 1; }
    bt_registry_scan_default(reg, NULL, NULL);
    if (bt_reader_open(reg, "auto", path, NULL, &r, &err)) { rc = fail(path, &err); goto done; }
    bt_optset *bo = NULL; /* --opt values, checked against the backend's option table */
    if (n_opt) {
        const struct bt_plugin_entry *e = bt_registry_find(reg, BT_KIND_BACKEND, bname);
        if (!e || !(bo = bt_optset_new(e->desc->options))) {
            bt_err_set(&err, BT_E_INVAL, "--opt needs a named backend plugin that loads here ('%s')", bname);
            rc = fail("backend", &err);
            goto done;
        }
        for (int k = 0; k < n_opt; k++) {
            char kv[256];
            snprintf(kv, sizeof kv, "%s", opt[k]);
            char *eq = strchr(kv, '=');
            if (eq) *eq = 0;
            if (!eq || !bt_optset_has(bo, kv) || bt_optset_set(bo, kv, eq + 1, NULL, &err)) {
                if (!err.status) bt_err_set(&err, BT_E_INVAL, "--opt %s: not KEY=VALUE of an option of '%s'", opt[k], bname);
                bt_optset_free(bo);
                rc = fail("backend", &err);
                goto done;
            }
        }
    }
    if (strcmp(bname, "none") != 0 && bt_backend_open(reg, bname, bo, &b, &err)) {
        rc = fail("backend", &err);
        goto done;
    }
    struct bt_model_opts mo = {.n_ctx = pp + tg + 8, .n_batch = 512, .act_q8 = q8 ? 2 : 0};
    if (bt_model_load(r, b, &mo, &m, &err)) { rc = fail(path, &err); goto done; }
    const struct bt_model_hparams *hp = bt_model_hparams(m);
    int32_t *tok = malloc((size_t)(pp + tg) * sizeof *tok);
    float *logits = malloc((size_t)hp->n_vocab * sizeof(float));
    if (!tok || !logits) { free(tok); free(logits); goto done; }
    for (int i = 0; i < pp + tg; i++) tok[i] = (int32_t)((i * 7919 + 13) % hp->n_vocab);
    double best_pp = 0, best_tg = 0;
    for (int rep = 0; rep <= reps; rep++) { /* rep 0 warms the page cache */
        bt_model_reset(m);
        double t0 = now_s();
        if (bt_model_forward(m, tok, pp, 0, logits, 0, &err)) { rc = fail("pp", &err); break; }
        double t1 = now_s();
        bt_model_reset(m);
        double t2 = now_s();
        for (int i = 0; i < tg && !err.status; i++) bt_model_forward(m, tok + i, 1, i, logits, 0, &err);
        double t3 = now_s();
        if (err.status) { rc = fail("tg", &err); break; }
        if (rep > 0 && pp / (t1 - t0) > best_pp) best_pp = pp / (t1 - t0);
        if (rep > 0 && tg / (t3 - t2) > best_tg) best_tg = tg / (t3 - t2);
        if (rep == reps) rc = 0;
    }
    if (rc == 0)
        printf("{\"model\": \"%s\", \"backend\": \"%s\", \"threads\": %d, \"act\": \"%s\", "
               "\"pp\": %d, \"pp_tps\": %.1f, \"tg\": %d, \"tg_tps\": %.1f}\n",
               path, b ? b->entry->desc->name : "builtin", bt_threads_get(), q8 ? "q8" : "f32",
               pp, best_pp, tg, best_tg);
    free(tok);
    free(logits);
done:
    bt_model_free(m);
    bt_backend_close(b);
    bt_reader_close(r);
    bt_registry_free(reg);
    return rc;
}
