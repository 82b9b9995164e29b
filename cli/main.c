/* main.c - bt-pipeline: command-line front end (run, plugins, inspect, tokenize, eval,
 * generate, calibrate). Exit codes: 0 ok, 1 failure while working (I/O, malformed input),
 * 2 usage or configuration error, 3 plugin error, 4 quality gate failed. */
#include "bt/bt.h"
#include "bt/bt_pipeline.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: bt-pipeline [-q] [-v] COMMAND ...\n"
            "\n"
            "commands:\n"
            "  run FILE.ini            run a pipeline (convert, eval, ...) described by an INI file\n"
            "  plugins                 list loaded plugins (kind, name, version, ABI, options)\n"
            "  ini-reference           every INI key of every section and plugin, as markdown\n"
            "  inspect FILE            show metadata and tensors of a safetensors model or GGUF file\n"
            "  tokenize --model M FILE print the token ids of FILE (space separated, no BOS)\n"
            "  eval --model M --text F [--ctx N] [--compare ORIG] [--backend B]\n"
            "                          perplexity (and KLD vs ORIG) of a model on a text\n"
            "  generate --model M --prompt TEXT [-n N] [--temp T] [--top-p P] [--seed S]\n"
            "                          generate text (greedy by default)\n"
            "  calibrate --model M --text F --out FILE [--ctx N] [--windows W]\n"
            "                          collect per-layer input Gram matrices X^T X\n"
            "\n"
            "options:\n"
            "  -q, --quiet   no progress or summary output\n"
            "  -v, --verbose more log output (repeat for debug)\n"
            "  -h, --help    this help\n"
            "  --version     print the version and ABI\n"
            "  --plugin-dir DIR  search DIR for plugins first (it must exist)\n"
            "  --override NAMES  plugins in user folders that may replace built-in ones\n"
            "                    ([kind:]name, comma separated; see docs/plugins-trust.md)\n"
            "\n"
            "exit codes: 0 ok, 1 failure while working (I/O, malformed input), 2 usage or\n"
            "configuration error, 3 plugin error, 4 a quality gate of [eval] failed. Plugins are\n"
            "searched in --plugin-dir / plugin_dir, $BT_PLUGIN_PATH (absolute folders), then\n"
            "<exe>/../lib/bt and the install folder. Progress goes to stderr: a live line on a\n"
            "terminal, else a line every $BT_PROGRESS_INTERVAL seconds (default 5); none with -q.\n");
}

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

int main(int argc, char **argv) {
    struct bt_cli_opts o = {0};
    int i = 1, verbose = 0;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) o.quiet = 1;
        else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) verbose++;
        else if (!strcmp(argv[i], "-vv")) verbose += 2;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else if (!strcmp(argv[i], "--version")) {
            printf("bt-pipeline %s (plugin ABI %d.%d)\n", BT_VERSION, BT_ABI_MAJOR, BT_ABI_MINOR);
            return 0;
        } else if (!strcmp(argv[i], "--plugin-dir") && i + 1 < argc) o.plugin_dir = argv[++i];
        else if (!strcmp(argv[i], "--override") && i + 1 < argc) o.override = argv[++i];
        else { fprintf(stderr, "bt-pipeline: unknown option '%s'\n", argv[i]); usage(stderr); return 2; }
    }
    bt_log_set_level(verbose >= 2 ? BT_LOG_DEBUG : verbose ? BT_LOG_INFO : BT_LOG_WARN);
    if (i >= argc) { usage(stderr); return 2; }
    const char *cmd = argv[i++];
    o.progress = !o.quiet && isatty(2);
    const char *pi = getenv("BT_PROGRESS_INTERVAL"); /* seconds between progress lines when piped */
    bt_progress_set_mode(o.quiet ? BT_PROGRESS_OFF : o.progress ? BT_PROGRESS_TTY : BT_PROGRESS_LINES,
                         pi ? atof(pi) : -1);
    int ac = argc - i;
    char **av = argv + i;
    if (!strcmp(cmd, "run")) return bt_cli_run(&o, ac, av);
    if (!strcmp(cmd, "plugins")) return bt_cli_plugins(&o, ac, av);
    if (!strcmp(cmd, "ini-reference")) return bt_cli_ini_reference(&o, ac, av);
    if (!strcmp(cmd, "inspect")) return bt_cli_inspect(&o, ac, av);
    if (!strcmp(cmd, "tokenize")) return bt_cli_tokenize(&o, ac, av);
    if (!strcmp(cmd, "eval")) return bt_cli_eval(&o, ac, av);
    if (!strcmp(cmd, "generate")) return bt_cli_generate(&o, ac, av);
    if (!strcmp(cmd, "calibrate")) return bt_cli_calibrate(&o, ac, av);
    if (!strcmp(cmd, "help")) { usage(stdout); return 0; }
    fprintf(stderr, "bt-pipeline: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
