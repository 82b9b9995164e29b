/* cmd_core.c - `run` and `plugins` (`inspect` is in cmd_inspect.c). */
#include "bt/bt_pipeline.h"
#include "bt_types.h"
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int bt_cli_run(const struct bt_cli_opts *o, int argc, char **argv) {
    if (argc != 1) { fprintf(stderr, "usage: bt-pipeline run FILE.ini\n"); return 2; }
    struct bt_run_opts ro = {.quiet = o->quiet, .progress = o->progress,
                             .plugin_dir = o->plugin_dir, .override = o->override};
#ifdef BT_HAVE_RUNTIME
    ro.calib_open = bt_cli_calib_open;
    ro.calib_colw = bt_cli_calib_colw;
    ro.calib_close = bt_cli_calib_close;
    ro.calib_hess = bt_cli_calib_hess;
    ro.calib_entry = bt_cli_calib_entry;
    ro.calib_done = bt_cli_calib_done;
    ro.calib_sequential = bt_cli_calib_sequential;
#endif
    bt_err err;
    bt_err_clear(&err);
    int n = 0;
    const struct bt_stage *stages = bt_cli_stages(&n);
    bt_status st = bt_pipeline_run(argv[0], stages, n, &ro, &err);
    if (st) {
        fprintf(stderr, "bt-pipeline: error: %s\n", err.msg[0] ? err.msg : bt_status_str(st));
        return bt_cli_exit_code(st);
    }
    return 0;
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

int bt_cli_plugins(const struct bt_cli_opts *o, int argc, char **argv) {
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
