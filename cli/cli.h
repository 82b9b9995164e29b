/* cli.h - the sub-commands of bt-pipeline. Each returns the process exit code. */
#ifndef BT_CLI_H
#define BT_CLI_H
#include "bt/bt.h"

struct bt_cli_opts {
    int         quiet;      /* -q */
    int         progress;   /* stderr is a TTY and not quiet */
    const char *plugin_dir; /* --plugin-dir */
    const char *override;   /* --override */
};

int bt_cli_exit_code(bt_status st);
/* a registry with the plugin folders scanned (--plugin-dir, --override, $BT_PLUGIN_PATH, ...) */
bt_status    bt_cli_registry(const struct bt_cli_opts *o, bt_registry **out, bt_err *err);
/* the same, printing the error: NULL and *rc = the exit code on failure */
bt_registry *bt_cli_registry_or_report(const struct bt_cli_opts *o, int *rc);
int bt_cli_run(const struct bt_cli_opts *o, int argc, char **argv);
int bt_cli_plugins(const struct bt_cli_opts *o, int argc, char **argv);
int bt_cli_ini_reference(const struct bt_cli_opts *o, int argc, char **argv);
int bt_cli_inspect(const struct bt_cli_opts *o, int argc, char **argv);
int bt_cli_tokenize(const struct bt_cli_opts *o, int argc, char **argv);
int bt_cli_eval(const struct bt_cli_opts *o, int argc, char **argv);
int bt_cli_generate(const struct bt_cli_opts *o, int argc, char **argv);
int bt_cli_calibrate(const struct bt_cli_opts *o, int argc, char **argv);
/* stages the INI runner accepts besides the conversion sections */
const struct bt_stage *bt_cli_stages(int *n);
/* calibration hooks (runtime builds) */
bt_status    bt_cli_calib_open(const char *path, void **ctx, bt_err *err);
const float *bt_cli_calib_colw(void *ctx, const char *tensor, int64_t cols);
void         bt_cli_calib_close(void *ctx);
bt_status    bt_cli_calib_hess(void *ctx, const char *tensor, int64_t cols, int want, const float **H,
                          uint32_t *entry, bt_err *err);
const char  *bt_cli_calib_entry(void *ctx, uint32_t i);
bt_status    bt_cli_calib_done(void *ctx, const char *tensor, const struct bt_tfmt *fmt, const void *data,
                               uint64_t nbytes, bt_err *err);
int          bt_cli_calib_sequential(void *ctx);
#endif
