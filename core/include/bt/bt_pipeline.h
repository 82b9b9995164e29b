/* bt_pipeline.h - the INI pipeline runner: validates a whole INI file against the core's and
 * the plugins' option tables, then runs conversion (input -> quantize -> output) and any extra
 * stages (e.g. [eval]) that the application registers. */
#ifndef BT_PIPELINE_H
#define BT_PIPELINE_H
#include "bt/bt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a stage sees when it runs (after conversion, if any). */
struct bt_stage_ctx {
    bt_registry *reg;
    const char  *ini_path;
    const char  *input_path;   /* resolved [input] path (NULL if no [input]) */
    const char  *input_reader; /* [input] reader name */
    const char  *output_path;  /* resolved [output] path, NULL if no conversion ran */
    const char  *backend;      /* [pipeline] backend */
    const bt_optset *backend_opts; /* its own options from [pipeline] (NULL for auto); give
                                    * bt_backend_open a bt_optset_clone of it */
    int          quiet;
    void       **calib;        /* a before-stage may hand the conversion a calibration context
                                * here (used with bt_run_opts' calib_* callbacks; closed by
                                * calib_close), e.g. [calibrate] mode = sequential */
    const bt_optset *input_opts; /* [input]'s reader options (of input_reader; NULL: defaults);
                                  * give bt_reader_open a bt_optset_clone of it */
};

/* An extra INI section handled by the application (runtime/ provides eval, generate, ...). */
struct bt_stage {
    const char             *section; /* "eval" */
    int                     before;  /* 1: runs before the conversion (e.g. calibrate) */
    const struct bt_option *options; /* accepted keys; validated before any work starts */
    bt_status (*run)(const struct bt_stage_ctx *sc, const bt_optset *o, bt_err *err);
    /* (optional) 1 if run() with these options sets *sc->calib (checked before any work) */
    int (*provides_calibration)(const bt_optset *o);
    /* (optional) the stage's own checks of its values together, before any work (converting: 1
     * when the file has an [output] section): BT_OK, or an error message in why and the key it
     * is about in *key (the runner adds file:line) */
    bt_status (*check)(const bt_optset *o, int converting, const char **key, char *why, size_t nwhy);
};

struct bt_run_opts {
    int quiet;    /* no progress, no summary */
    int progress; /* per-tensor progress lines (the CLI sets it when stderr is a TTY) */
    /* calibration files for [quantize] calibration = FILE (provided by the application):
     * open the file, then per-column weights (cols floats, mean 1) for a tensor or NULL */
    bt_status (*calib_open)(const char *path, void **ctx, bt_err *err);
    const float *(*calib_colw)(void *ctx, const char *tensor, int64_t cols);
    void (*calib_close)(void *ctx);
    /* the tensor's input E[x x^T] (cols x cols, owned by ctx, valid until the next call) when
     * want != 0, else only the checks. BT_OK with *H = NULL when the file has no entry for the
     * tensor; an error naming the tensor when the entry's size differs or (want) the file holds
     * only diagonals. H may be NULL when want == 0; *entry (may be NULL) gets the entry index. */
    bt_status (*calib_hess)(void *ctx, const char *tensor, int64_t cols, int want, const float **H,
                            uint32_t *entry, bt_err *err);
    /* comma-separated tensor names of entry i, NULL past the last */
    const char *(*calib_entry)(void *ctx, uint32_t i);
    /* (optional) the tensor is final in fmt: a sequential calibration continues with it */
    bt_status (*calib_done)(void *ctx, const char *tensor, const struct bt_tfmt *fmt, const void *data,
                            uint64_t nbytes, bt_err *err);
    /* (optional) 1 if ctx needs the tensors layer by layer (q k v o gate up down) and calib_done */
    int (*calib_sequential)(void *ctx);
    /* (optional) the command line's plugin folder and override list (struct bt_plugin_search);
     * searched / applied beside [pipeline] plugin_dir and override */
    const char *plugin_dir;
    const char *override;
};

/* Run the pipeline in ini_path. Returns BT_OK, or an error whose message names file:line for
 * configuration problems and the file/tensor for input problems. */
bt_status bt_pipeline_run(const char *ini_path, const struct bt_stage *stages, int n_stages,
                          const struct bt_run_opts *ro, bt_err *err);

/* the core's option table of [pipeline], [input], [quantize] or [output] (NULL for another
 * section); the chosen plugin's options come on top (docs/ini-reference.md is made from these) */
const struct bt_option *bt_pipeline_section_options(const char *section);

/* glob patterns (space separated) against a tensor's names: 1 if any pattern matches name or
 * src_name, with or without a trailing ".weight"/".bias" */
int bt_keep_match(const char *patterns, const char *name, const char *src_name);

#ifdef __cplusplus
}
#endif
#endif
