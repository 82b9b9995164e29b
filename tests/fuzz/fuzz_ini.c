/* fuzz_ini.c - libFuzzer target for the INI runner's parsing and validation (core/src/config.c,
 * pipeline.c through bt_pipeline_check: sections, every key against the core's and the plugins'
 * option tables, path guards), without any conversion work. Plugins come from the build's
 * lib/bt beside the executable's bin/ (as for bt-pipeline); two stages like the CLI's ([eval],
 * [calibrate]) are registered so stage sections are validated too. */
#include "fuzz_util.h"

#include "bt/bt_pipeline.h"
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bt_status never(const struct bt_stage_ctx *sc, const bt_optset *o, bt_err *err) {
    abort(); /* bt_pipeline_check must not run stages */
}

static int sequential(const bt_optset *o) { return !strcmp(bt_opt_str(o, "mode"), "sequential"); }

static const struct bt_option eval_opts[] = {
    {"text", BT_OPT_PATH, NULL, 0, -1, NULL, "text to score"},
    {"ctx", BT_OPT_INT, "512", 2, 1 << 20, NULL, "window length"},
    {"compare", BT_OPT_ENUM, "original", 0, -1, "original|none", "also score the input"},
    {"report", BT_OPT_PATH, "", 0, -1, NULL, "EVAL.json"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};
static const struct bt_option calib_opts[] = {
    {"text", BT_OPT_PATH, NULL, 0, -1, NULL, "calibration text"},
    {"mode", BT_OPT_ENUM, "parallel", 0, -1, "parallel|sequential", "when"},
    {"out", BT_OPT_PATH, "", 0, -1, NULL, "calibration file to write"},
    {"ctx", BT_OPT_INT, "512", 2, 1 << 20, NULL, "window length"},
    {"windows", BT_OPT_INT, "0", 0, 1e9, NULL, "windows to use"},
    {"diag_only", BT_OPT_BOOL, "false", 0, -1, NULL, "diagonal only"},
    {"damp", BT_OPT_FLOAT, "0.01", 0, 1, NULL, "a float"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};
static const struct bt_stage stages[] = {
    {"calibrate", 1, calib_opts, never, sequential, NULL},
    {"eval", 0, eval_opts, never, NULL, NULL},
};

/* Load the build's plugins once and keep them loaded: the registry's dlopen/dlclose per input
 * then never maps a module again (libFuzzer registers every newly mapped instrumented module and
 * has room for a few thousand; it is also faster). */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char exe[4096], dir[4200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) return 0;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    snprintf(dir, sizeof(dir), "%s/../lib/bt", exe);
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, "libbt-", 6) || l < 10 || strcmp(de->d_name + l - 3, ".so")) continue;
        char p[4500];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (!dlopen(p, RTLD_NOW | RTLD_LOCAL)) fprintf(stderr, "fuzz_ini: %s\n", dlerror());
    }
    closedir(d);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write("run.ini", data, size);
    bt_err err = {0};
    bt_status st = bt_pipeline_check(path, stages, 2, &err);
    fz_note("check", st, err.msg);
    if (st != BT_OK && (err.status != st || !err.msg[0])) abort(); /* every refusal says why */
    return 0;
}
