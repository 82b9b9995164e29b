/* cli.h - the sub-commands of bt-pipeline. Each returns the process exit code. */
#ifndef BT_CLI_H
#define BT_CLI_H
#include "bt/bt.h"
#include "bt/bt_pipeline.h"
#include "cli_args.h"

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
int bt_cli_run(const struct bt_cli_opts *o, const struct bt_cli_args *a);
int bt_cli_quantize(const struct bt_cli_opts *o, const struct bt_cli_args *a);
int bt_cli_plugins(const struct bt_cli_opts *o, const struct bt_cli_args *a);
int bt_cli_inspect(const struct bt_cli_opts *o, const struct bt_cli_args *a);
int bt_cli_tokenize(const struct bt_cli_opts *o, const struct bt_cli_args *a);
int bt_cli_eval(const struct bt_cli_opts *o, const struct bt_cli_args *a);
int bt_cli_generate(const struct bt_cli_opts *o, const struct bt_cli_args *a);
int bt_cli_calibrate(const struct bt_cli_opts *o, const struct bt_cli_args *a);
/* the runner options for o (quiet, progress, plugin folders, the calibration hooks) */
void bt_cli_run_opts(const struct bt_cli_opts *o, struct bt_run_opts *ro);
/* print "bt-pipeline: error: ..." for st and return its exit code */
int  bt_cli_report(bt_status st, const bt_err *err);
/* a whole file, or stdin for "-" (*text NUL-terminated; caller frees) */
bt_status bt_cli_read_input(const char *path, char **text, size_t *len, bt_err *err);
/* generate --chat / -i (cmd_chat.c): the model's template family (or template_name's), the
 * prompt as the first user turn, then (interactive) one user turn per line of stdin */
struct bt_cli_chat_opts {
    const char *template_name; /* "model" or a family name */
    const char *system;        /* system message or NULL */
    const char *prompt;        /* first user turn or NULL */
    int         interactive;
    int         quiet;
};
struct bt_model;
struct bt_gen_opts;
bt_status bt_cli_chat(struct bt_model *m, struct bt_reader *r, const char *model, const struct bt_cli_chat_opts *co,
                      const struct bt_gen_opts *go, bt_err *err);
int bt_cli_ini_reference(const struct bt_cli_opts *o, const struct bt_cli_args *a);
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
