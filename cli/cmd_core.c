/* cmd_core.c - `run` and `plugins` (`inspect` is in cmd_inspect.c). */
#include "bt/bt_pipeline.h"
#include "bt_types.h"
#include "cli.h"

#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

int bt_cli_run(const struct bt_cli_opts *o, const struct bt_cli_args *a) {
    struct bt_run_opts ro;
    bt_cli_run_opts(o, &ro);
    bt_err err;
    bt_err_clear(&err);
    int n = 0;
    const struct bt_stage *stages = bt_cli_stages(&n);
    const char *ini = a->pos[0];
    bt_status st;
    if (!strcmp(ini, "-")) { /* the INI from stdin: relative paths resolve against the current folder */
        char *text = NULL;
        size_t len = 0;
        st = bt_cli_read_input("-", &text, &len, &err);
        if (!st) st = bt_pipeline_run_text(text, "<stdin>", ".", stages, n, &ro, &err);
        free(text);
    } else {
        st = bt_pipeline_run(ini, stages, n, &ro, &err);
    }
    return bt_cli_report(st, &err);
}

static void print_options(const struct bt_option *op) {
    static const char *tn[] = {"bool", "int", "float", "string", "enum", "path"};
    for (; op && op->name; op++) {
        printf("      %-14s %-6s default=%-8s", op->name, op->type <= 5 ? tn[op->type] : "?", op->def ? op->def : "(required)");
        if (op->type == BT_OPT_ENUM && op->choices) printf(" {%s}", op->choices);
        if ((op->type == BT_OPT_INT || op->type == BT_OPT_FLOAT) && op->min <= op->max) printf(" [%g..%g]", op->min, op->max);
        printf("  %s\n", op->help ? op->help : "");
    }
}

/* ---- ini-reference: every INI key from the option tables, as markdown ------------------------ */
static void md_table(const struct bt_option *op) {
    static const char *tn[] = {"bool", "int", "float", "string", "enum", "path"};
    printf("| key | type | default | meaning |\n|---|---|---|---|\n");
    for (; op && op->name; op++) {
        char ty[96];
        if (op->type == BT_OPT_ENUM && op->choices) snprintf(ty, sizeof ty, "%s", op->choices);
        else if ((op->type == BT_OPT_INT || op->type == BT_OPT_FLOAT) && op->min <= op->max)
            snprintf(ty, sizeof ty, "%s %g..%g", tn[op->type], op->min, op->max);
        else snprintf(ty, sizeof ty, "%s", op->type <= 5 ? tn[op->type] : "?");
        for (char *c = ty; *c; c++) if (*c == '|') *c = ','; /* (a table cell) */
        printf("| `%s` | %s | %s%s%s | ", op->name, ty, op->def ? "`" : "",
               op->def ? (*op->def ? op->def : "\"\"") : "required", op->def ? "`" : "");
        for (const char *h = op->help ? op->help : ""; *h; h++) {
            if (*h == '|') fputs("\\|", stdout);
            else putchar(*h);
        }
        printf(" |\n");
    }
}

int bt_cli_ini_reference(const struct bt_cli_opts *o, const struct bt_cli_args *a) {
    (void)a;
    int rc;
    bt_registry *reg = bt_cli_registry_or_report(o, &rc);
    if (!reg) return rc;
    static const struct { const char *sec; uint32_t kind; } secs[] = {
        {"pipeline", 0}, {"input", BT_KIND_READER}, {"quantize", BT_KIND_QUANTIZER}, {"output", BT_KIND_WRITER},
    };
    for (size_t k = 0; k < sizeof secs / sizeof secs[0]; k++) {
        printf("### [%s]\n\n", secs[k].sec);
        md_table(bt_pipeline_section_options(secs[k].sec));
        const char *last = "";
        for (;;) { /* plugins of the section's kind by name, for a stable document */
            const struct bt_plugin *d = NULL;
            for (uint32_t i = 0; secs[k].kind && i < bt_registry_count(reg); i++) {
                const struct bt_plugin *x = bt_registry_at(reg, i)->desc;
                if (x->kind == secs[k].kind && x->options && x->options->name && strcmp(x->name, last) > 0 &&
                    (!d || strcmp(x->name, d->name) < 0))
                    d = x;
            }
            if (!d) break;
            last = d->name;
            printf("\nwith %s %s:\n\n", secs[k].kind == BT_KIND_READER ? "reader =" : secs[k].kind == BT_KIND_WRITER
                   ? "writer =" : "method =", d->name);
            md_table(d->options);
        }
        printf("\n");
    }
    int n = 0;
    const struct bt_stage *st = bt_cli_stages(&n);
    for (int k = 0; k < n; k++) {
        printf("### [%s]\n\n", st[k].section);
        md_table(st[k].options);
        printf("\n");
    }
    bt_registry_free(reg);
    return 0;
}

int bt_cli_plugins(const struct bt_cli_opts *o, const struct bt_cli_args *a) {
    int rc;
    bt_registry *reg = bt_cli_registry_or_report(o, &rc);
    if (!reg) return rc;
    for (uint32_t k = BT_KIND_READER; k <= BT_KIND_BACKEND; k++)
        for (uint32_t i = 0; i < bt_registry_count(reg); i++) {
            const struct bt_plugin_entry *e = bt_registry_at(reg, i);
            const struct bt_plugin *d = e->desc;
            if (d->kind != k) continue;
            printf("%-9s %-12s %-8s ABI %u.%u  %s\n    %s\n", bt_kind_name(d->kind), d->name, d->version,
                   BT_ABI_MAJOR_OF(d->abi_version), BT_ABI_MINOR_OF(d->abi_version),
                   d->description ? d->description : "", e->path);
            print_options(d->options);
        }
    for (uint32_t i = 0; i < bt_registry_reject_count(reg); i++)
        printf("refused   %s\n", bt_registry_reject_at(reg, i));
    int empty = bt_registry_count(reg) == 0;
    if (empty) fprintf(stderr, "bt-pipeline: no plugins found\n");
    bt_registry_free(reg);
    return empty ? 3 : 0;
}
