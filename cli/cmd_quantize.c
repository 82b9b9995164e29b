/* cmd_quantize.c - `bt-pipeline quantize IN OUT TYPE`: one-line conversion. The command line
 * becomes INI text (the same sections and keys a user would write, shown by --print-ini) that
 * goes to the same runner as `bt-pipeline run` (bt_pipeline_run_text), so both give the same
 * file. The TYPE names are data: one row per conversion. */
#include "bt_types.h"
#include "cli.h"
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qtype {
    const char *name;   /* TYPE on the command line */
    const char *method; /* [quantize] method */
    const char *type;   /* [output] type, NULL: none (method = none) */
    const char *keys;   /* more [quantize] keys, "key = value" lines */
};

static const struct qtype qtypes[] = {
    {"tq2_0", "absmean", "tq2_0", NULL},
    {"tq1_0", "absmean", "tq1_0", NULL},
    {"mtq1", "residual", "mtq", "bases = 1\n"},
    {"mtq2", "residual", "mtq", "bases = 2\n"},
    {"mtq3", "residual", "mtq", "bases = 3\n"},
    {"mtq4", "residual", "mtq", "bases = 4\n"},
    {"vq2", "vptq", "vq", "vector_len = 4\ncentroids = 256\n"},
    {"f16", "none", NULL, NULL},
    {"bf16", "none", NULL, NULL},
    {"q8_0", "none", NULL, NULL},
};

/* INI text being built */
struct ini {
    char  *p;
    size_t n, cap;
    int    oom;
};

static void add(struct ini *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->oom || need < 0) { b->oom = 1; return; }
    if (b->n + (size_t)need + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        while (nc < b->n + (size_t)need + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = nc;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
}

/* a value the INI can hold as it is: one line, no inline comment, no edge blanks */
static int ini_safe(const char *what, const char *v) {
    size_t n = strlen(v);
    int bad = strchr(v, '\n') || strchr(v, '\r') || (n && (v[0] == ' ' || v[n - 1] == ' '));
    for (size_t i = 1; i < n && !bad; i++) bad = (v[i] == ';' || v[i] == '#') && (v[i - 1] == ' ' || v[i - 1] == '\t');
    if (bad)
        fprintf(stderr, "bt-pipeline quantize: error: %s '%s': a line break, a blank before ';' or '#', or blanks at "
                        "either end cannot be written to the pipeline's INI; rename it or write the INI yourself\n",
                what, v);
    return !bad;
}

static void list_types(FILE *f) {
    fprintf(f, "TYPE is one of:");
    for (size_t i = 0; i < sizeof(qtypes) / sizeof(qtypes[0]); i++) fprintf(f, " %s", qtypes[i].name);
    fprintf(f, " auto:BPW (e.g. auto:2.5)\n");
}

int bt_cli_quantize(const struct bt_cli_opts *o, const struct bt_cli_args *a) {
    const char *in = a->pos[0], *out = a->pos[1], *tname = a->pos[2];
    const char *calib = bt_cli_str(a, "calibration"), *keep = bt_cli_str(a, "keep");
    const char *keep_type = bt_cli_str(a, "keep-type"), *report = bt_cli_str(a, "report");
    const char *backend = bt_cli_str(a, "backend"), *threads = bt_cli_str(a, "threads");
    const struct qtype *qt = NULL;
    double budget = 0;
    for (size_t i = 0; i < sizeof(qtypes) / sizeof(qtypes[0]); i++)
        if (!strcmp(qtypes[i].name, tname)) qt = &qtypes[i];
    if (!qt && !strncmp(tname, "auto:", 5)) {
        char *end;
        budget = strtod(tname + 5, &end);
        if (end == tname + 5 || *end || !isfinite(budget) || budget < 1.0 || budget > 16.0) {
            fprintf(stderr, "bt-pipeline quantize: error: TYPE '%s': auto: needs a budget in bits/weight from 1 to 16 "
                            "(auto:2.5)\n", tname);
            return 2;
        }
    } else if (!qt) {
        fprintf(stderr, "bt-pipeline quantize: error: unknown TYPE '%s'\n", tname);
        list_types(stderr);
        return 2;
    }
    int none = qt && !qt->type;
    if (none && keep_type) {
        fprintf(stderr, "bt-pipeline quantize: error: --keep-type %s with TYPE %s: every tensor is written as %s "
                        "already; drop one of the two\n", keep_type, tname, tname);
        return 2;
    }
    if (none && (calib || keep)) {
        fprintf(stderr, "bt-pipeline quantize: error: %s with TYPE %s: nothing is quantized, so it would have no "
                        "effect\n", calib ? "--calibration" : "--keep", tname);
        return 2;
    }
    if (report && !strcmp(report, "-")) {
        fprintf(stderr, "bt-pipeline quantize: error: --report -: the conversion report is a file (the table goes "
                        "to stdout already); give a path\n");
        return 2;
    }
    const char *vals[][2] = {{"IN", in}, {"OUT", out}, {"--calibration", calib}, {"--keep", keep},
                             {"--report", report}, {"--backend", backend}};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        if (vals[i][1] && !ini_safe(vals[i][0], vals[i][1])) return 2;
    struct ini b = {0};
    add(&b, "; bt-pipeline quantize %s %s %s as an INI file: `bt-pipeline run` on it gives the same output\n", in, out,
        tname);
    add(&b, "; (relative paths are against the folder the INI is in; these were given against the current one)\n");
    if (threads || backend) {
        add(&b, "[pipeline]\n");
        if (backend) add(&b, "backend = %s\n", backend);
        if (threads) add(&b, "threads = %s\n", threads);
    }
    add(&b, "[input]\npath = %s\n[quantize]\nmethod = %s\n", in, qt ? qt->method : "residual");
    if (qt && qt->keys) add(&b, "%s", qt->keys);
    if (!qt) add(&b, "bases = auto\nbudget_bpw = %s\n", tname + 5);
    if (keep) add(&b, "keep = %s\n", keep);
    if (calib) add(&b, "calibration = %s\nsecond_order = on\n", calib);
    add(&b, "[output]\npath = %s\n", out);
    if (!none) add(&b, "type = %s\n", qt ? qt->type : "mtq");
    if (none) add(&b, "keep_type = %s\n", tname);
    else if (keep_type) add(&b, "keep_type = %s\n", keep_type);
    if (report) add(&b, "report = %s\n", report);
    if (b.oom) { free(b.p); fprintf(stderr, "bt-pipeline quantize: out of memory\n"); return 1; }
    if (bt_cli_count(a, "print-ini")) {
        fputs(b.p, stdout);
        free(b.p);
        return 0;
    }
    struct bt_run_opts ro;
    bt_cli_run_opts(o, &ro);
    bt_err err;
    bt_err_clear(&err);
    int n = 0;
    const struct bt_stage *stages = bt_cli_stages(&n);
    bt_status st = bt_pipeline_run_text(b.p, "quantize (see --print-ini)", ".", stages, n, &ro, &err);
    free(b.p);
    return bt_cli_report(st, &err);
}
