/* cmd_stubs.c - sub-commands whose runtime library is not built in this configuration. */
#include "cli.h"

#include <stdio.h>

#ifndef BT_HAVE_RUNTIME
static int missing(const char *what) {
    fprintf(stderr, "bt-pipeline: %s is not available in this build (runtime library missing)\n", what);
    return 2;
}
int bt_cli_eval(const struct bt_cli_opts *o, const struct bt_cli_args *a) { return missing("eval"); }
int bt_cli_generate(const struct bt_cli_opts *o, const struct bt_cli_args *a) { return missing("generate"); }
int bt_cli_calibrate(const struct bt_cli_opts *o, const struct bt_cli_args *a) { return missing("calibrate"); }
const struct bt_stage *bt_cli_stages(int *n) { *n = 0; return NULL; }
#endif
#ifndef BT_HAVE_TOKENIZER
int bt_cli_tokenize(const struct bt_cli_opts *o, const struct bt_cli_args *a) {
    fprintf(stderr, "bt-pipeline: tokenize is not available in this build\n");
    return 2;
}
#endif
