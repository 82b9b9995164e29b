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
