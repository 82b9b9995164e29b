/* main.c - bt-pipeline: command-line front end (run, plugins, inspect, tokenize, eval,
 * generate, calibrate). Exit codes: 0 ok, 1 failure while working (I/O, malformed input),
 * 2 usage or configuration error, 3 plugin error, 4 quality gate failed. */
#include "bt/bt.h"
#include "bt/bt_pipeline.h"
#include "bt_types.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int bt_cli_exit_code(bt_status st) {
    switch (st) {
    case BT_OK: return 0;
    case BT_E_INVAL: return 2;
    case BT_E_ABI:
    case BT_E_PLUGIN: return 3;
    case BT_E_QUALITY: return 4;
    default: return 1;
    }
}

bt_status bt_cli_registry(const struct bt_cli_opts *o, bt_registry **out, bt_err *err) {
    *out = NULL;
    bt_registry *reg = NULL;
    if (bt_registry_new(&reg) != BT_OK) return bt_err_set(err, BT_E_NOMEM, "out of memory");
    struct bt_plugin_search s = {.dir = {o->plugin_dir}, .dir_from = {"--plugin-dir"},
                                 .override = {o->override}, .override_from = {"--override"}};
    bt_status st = bt_registry_scan_default(reg, &s, err);
    if (st) { bt_registry_free(reg); return st; }
    *out = reg;
    return BT_OK;
}

bt_registry *bt_cli_registry_or_report(const struct bt_cli_opts *o, int *rc) {
    bt_registry *reg;
    bt_err err;
    bt_err_clear(&err);
    bt_status st = bt_cli_registry(o, &reg, &err);
    if (st) {
        fprintf(stderr, "bt-pipeline: error: %s\n", err.msg[0] ? err.msg : bt_status_str(st));
        *rc = bt_cli_exit_code(st);
        return NULL;
    }
    *rc = 0;
    return reg;
}

int bt_cli_report(bt_status st, const bt_err *err) {
    if (st) fprintf(stderr, "bt-pipeline: error: %s\n", err->msg[0] ? err->msg : bt_status_str(st));
    return bt_cli_exit_code(st);
}

void bt_cli_run_opts(const struct bt_cli_opts *o, struct bt_run_opts *ro) {
    memset(ro, 0, sizeof(*ro));
    ro->quiet = o->quiet;
    ro->progress = o->progress;
    ro->plugin_dir = o->plugin_dir;
    ro->override = o->override;
#ifdef BT_HAVE_RUNTIME
    ro->calib_open = bt_cli_calib_open;
    ro->calib_colw = bt_cli_calib_colw;
    ro->calib_close = bt_cli_calib_close;
    ro->calib_hess = bt_cli_calib_hess;
    ro->calib_entry = bt_cli_calib_entry;
    ro->calib_done = bt_cli_calib_done;
    ro->calib_sequential = bt_cli_calib_sequential;
#endif
}

bt_status bt_cli_read_input(const char *path, char **text, size_t *len, bt_err *err) {
    if (strcmp(path, "-") != 0) return bt_file_read_all(path, text, len, err);
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n - 1, stdin);
        if (ferror(stdin)) { free(b); return bt_err_set(err, BT_E_IO, "stdin: cannot read: %m"); }
        if (feof(stdin)) break;
        if (n + 1 == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    }
    if (!b) return bt_err_set(err, BT_E_NOMEM, "stdin: out of memory");
    b[n] = 0;
    *text = b;
    *len = n;
    return BT_OK;
}

typedef int (*cmd_fn)(const struct bt_cli_opts *o, const struct bt_cli_args *a);
static int cmd_help(const struct bt_cli_opts *o, const struct bt_cli_args *a) {
    if (bt_cli_count(a, "markdown")) { bt_cli_markdown(stdout); return 0; }
    if (!a->npos) { bt_cli_usage(stdout); return 0; }
    const struct bt_cli_cmd *c = bt_cli_find(a->pos[0]);
    if (!c) { fprintf(stderr, "bt-pipeline: unknown command '%s' (`bt-pipeline help` lists them)\n", a->pos[0]); return 2; }
    bt_cli_help(stdout, c);
    return 0;
}

static const struct { const char *name; cmd_fn fn; } commands[] = {
    {"run", bt_cli_run},           {"quantize", bt_cli_quantize}, {"plugins", bt_cli_plugins},
    {"inspect", bt_cli_inspect},   {"tokenize", bt_cli_tokenize}, {"eval", bt_cli_eval},
    {"generate", bt_cli_generate}, {"calibrate", bt_cli_calibrate}, {"help", cmd_help},
    {"ini-reference", bt_cli_ini_reference},
};

static int is_global_with_value(const char *s) { return !strcmp(s, "--plugin-dir") || !strcmp(s, "--override"); }

int main(int argc, char **argv) {
    /* the command is the first word that is neither an option nor a global option's value */
    int ci = 0;
    for (int i = 1; i < argc && !ci; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (argv[i][0] != '-' || !argv[i][1]) { ci = i; break; }
        if (!strcmp(argv[i], "--version")) {
            printf("bt-pipeline %s (plugin ABI %d.%d)\n", BT_VERSION, BT_ABI_MAJOR, BT_ABI_MINOR);
            return 0;
        }
        if (is_global_with_value(argv[i])) i++;
    }
    if (!ci) { /* no command: the overview, or an error naming what was given */
        for (int i = 1; i < argc; i++)
            if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { bt_cli_usage(stdout); return 0; }
        struct bt_cli_args a;
        int rc = bt_cli_parse(bt_cli_find("help"), argc - 1, argv + 1, &a);
        if (rc >= 0) return rc;
        if (bt_cli_count(&a, "markdown")) { bt_cli_markdown(stdout); return 0; }
        fprintf(stderr, "bt-pipeline: error: no command given\n\n");
        bt_cli_usage(stderr);
        return 2;
    }
    const struct bt_cli_cmd *cmd = bt_cli_find(argv[ci]);
    cmd_fn fn = NULL;
    for (size_t k = 0; cmd && k < sizeof(commands) / sizeof(commands[0]); k++)
        if (!strcmp(commands[k].name, cmd->name)) fn = commands[k].fn;
    if (!fn) {
        fprintf(stderr, "bt-pipeline: error: unknown command '%s' (`bt-pipeline help` lists them)\n", argv[ci]);
        return 2;
    }
    /* the words before and after the command, in order: global options may be anywhere */
    char **sub = malloc((size_t)argc * sizeof(*sub));
    if (!sub) { fprintf(stderr, "bt-pipeline: out of memory\n"); return 1; }
    int n = 0;
    for (int i = 1; i < argc; i++)
        if (i != ci) sub[n++] = argv[i];
    struct bt_cli_args a;
    int rc = bt_cli_parse(cmd, n, sub, &a);
    if (rc < 0) {
        struct bt_cli_opts o = {.quiet = a.quiet, .plugin_dir = a.plugin_dir, .override = a.override};
        bt_log_set_level(a.verbose >= 2 ? BT_LOG_DEBUG : a.verbose ? BT_LOG_INFO : BT_LOG_WARN);
        o.progress = !o.quiet && isatty(2);
        const char *pi = getenv("BT_PROGRESS_INTERVAL"); /* seconds between progress lines when piped */
        bt_progress_set_mode(o.quiet ? BT_PROGRESS_OFF : o.progress ? BT_PROGRESS_TTY : BT_PROGRESS_LINES,
                             pi ? atof(pi) : -1);
        rc = fn(&o, &a);
    }
    free(sub);
    return rc;
}
