/* dump_logits.c - test helper: load a model (HF folder or GGUF) with the runner and write the
 * logits of every position of a token sequence as raw little-endian f32 (n x n_vocab), so Python
 * tests can compare them with a numpy reference forward pass. Also runs the same ids one token at
 * a time through the KV cache and fails if the last token's logits differ from the batch run.
 * usage: dump_logits MODEL IDS OUT.f32 [backend] [act_q8] [tol] [key=value]   (IDS: comma-separated
 * token ids; tol: the largest incremental-vs-batch difference accepted, default 1e-3; key=value:
 * an option of the gguf reader, e.g. i2s_layout=arm) */
#include "bt_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_ids(const char *s, int32_t **ids) {
    int n = 1;
    for (const char *p = s; *p; p++) n += *p == ',';
    *ids = malloc((size_t)n * sizeof **ids);
    if (!*ids) return -1;
    char *end;
    for (int i = 0; i < n; i++) {
        long v = strtol(s, &end, 10);
        if (end == s || (*end && *end != ',')) return -1;
        (*ids)[i] = (int32_t)v;
        s = *end ? end + 1 : end;
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL IDS OUT.f32 [backend] [act_q8] [tol] [key=value]\n", argv[0]);
        return 2;
    }
    const char *bname = argc > 4 ? argv[4] : "cpu";
    int32_t *ids = NULL;
    int n = parse_ids(argv[2], &ids);
    if (n <= 0) { fprintf(stderr, "bad ids '%s'\n", argv[2]); free(ids); return 2; }
    bt_err err = {0};
    bt_registry *reg = NULL;
    struct bt_reader *r = NULL;
    struct bt_backend *b = NULL;
    bt_model *m = NULL;
    float *lg = NULL, *last = NULL;
    int rc = 1;
    if (bt_registry_new(&reg)) goto out;
    bt_registry_scan_default(reg, NULL, NULL);
    bt_optset *ro = NULL;
    if (argc > 7) { /* one option of the gguf reader */
        const struct bt_plugin_entry *pe = bt_registry_find(reg, BT_KIND_READER, "gguf");
        char key[128];
        const char *eq = strchr(argv[7], '=');
        if (!pe || !eq || eq - argv[7] >= (long)sizeof key || !(ro = bt_optset_new(pe->desc->options))) {
            fprintf(stderr, "bad reader option '%s'\n", argv[7]);
            goto out;
        }
        snprintf(key, sizeof key, "%.*s", (int)(eq - argv[7]), argv[7]);
        if (bt_optset_set(ro, key, eq + 1, NULL, &err)) { bt_optset_free(ro); goto fail; }
    }
    if (bt_reader_open(reg, ro ? "gguf" : "auto", argv[1], ro, &r, &err)) goto fail;
    if (bt_backend_open(reg, bname, NULL, &b, &err)) goto fail;
    struct bt_model_opts mo = {.n_ctx = n, .n_batch = n, .act_q8 = argc > 5 ? atoi(argv[5]) : 0};
    if (bt_model_load(r, b, &mo, &m, &err)) goto fail;
    int64_t V = bt_model_hparams(m)->n_vocab;
    lg = malloc((size_t)(n * V) * sizeof *lg);
    last = malloc((size_t)V * sizeof *last);
    if (!lg || !last) { fprintf(stderr, "out of memory\n"); goto out; }
    if (bt_model_forward(m, ids, n, 0, lg, 1, &err)) goto fail;
    bt_model_reset(m);
    for (int t = 0; t < n; t++)
        if (bt_model_forward(m, ids + t, 1, t, last, 0, &err)) goto fail;
    double mx = 0;
    for (int64_t v = 0; v < V; v++) mx = fmax(mx, fabs((double)last[v] - lg[(int64_t)(n - 1) * V + v]));
    printf("vocab %lld, tokens %d, incremental vs batch max abs diff %.3g\n", (long long)V, n, mx);
    FILE *f = fopen(argv[3], "wb");
    if (!f || fwrite(lg, sizeof *lg, (size_t)(n * V), f) != (size_t)(n * V)) {
        fprintf(stderr, "%s: cannot write\n", argv[3]);
        if (f) fclose(f);
        goto out;
    }
    fclose(f);
    rc = mx <= (argc > 6 ? atof(argv[6]) : 1e-3) ? 0 : 1;
    if (rc) fprintf(stderr, "incremental decoding disagrees with the batch run\n");
    goto out;
fail:
    fprintf(stderr, "%s\n", err.msg);
out:
    free(lg);
    free(last);
    free(ids);
    bt_model_free(m);
    bt_backend_close(b);
    bt_reader_close(r);
    bt_registry_free(reg);
    return rc;
}
