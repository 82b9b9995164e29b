/* bt.h - the application API of libbt_core: registry and plugin loader, plugin instances,
 * option sets, thread pool, errors. Used by cli/ and runtime/; never by plugins. */
#ifndef BT_H
#define BT_H

#include "bt/bt_plugin.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BT_VERSION "0.1.0"

/* ---- errors -------------------------------------------------------------------------------- */
/* The concrete error sink behind the opaque bt_err of the plugin ABI. */
const char *bt_status_str(bt_status s);
bt_status   bt_err_set(bt_err *err, bt_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void bt_err_clear(bt_err *err) { err->status = BT_OK; err->msg[0] = 0; }

/* ---- logging ------------------------------------------------------------------------------- */
void bt_log_set_level(int level); /* BT_LOG_*; default BT_LOG_WARN */
void bt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- progress of long stages (core/src/progress.c) -------------------------------------------- */
enum { BT_PROGRESS_OFF = 0, BT_PROGRESS_TTY = 1, BT_PROGRESS_LINES = 2 };
/* the CLI's choice: off (-q), a live line (stderr is a terminal), or a line every interval_s
 * seconds (piped; < 0 keeps the current interval, default 5) */
void bt_progress_set_mode(int mode, double interval_s);
int  bt_progress_mode(void);
struct bt_progress {
    const char *what;    /* stage name on the line ("convert", "eval"); NULL when ended */
    double      t0, last; /* start and last printed line (monotonic seconds) */
    int         shown;   /* a line was printed */
};
void bt_progress_start(struct bt_progress *p, const char *what);
/* done of total units (bytes, windows): percentage, elapsed time, ETA, then the printf extra */
void bt_progress_step(struct bt_progress *p, double done, double total, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void bt_progress_end(struct bt_progress *p);

/* ---- host services, thread pool -------------------------------------------------------------- */
const struct bt_host *bt_host(void);
#define BT_THREADS_MAX 256 /* the most worker threads (INI, command line, pool) */
void bt_threads_set(int n); /* 0 = number of online CPUs */
int  bt_threads_get(void);
void bt_parallel_for(int64_t n, int64_t grain, bt_range_fn fn, void *arg);

/* ---- dense linear algebra (OpenBLAS on fixed tiles; same bits for any thread count) ---------- */
/* G (n x n, row-major f64, upper triangle incl. diagonal updated) += X^T X for X (ntok x n f32) */
bt_status bt_gram_accumulate(double *G, int64_t n, const float *X, int64_t ntok);

/* ---- option sets ------------------------------------------------------------------------------ */
/* An option set holds validated values for one plugin's option table. */
bt_optset *bt_optset_new(const struct bt_option *table);   /* defaults filled in; NULL on OOM */
void       bt_optset_free(bt_optset *o);
/* validate and set; err gets "key: reason" (caller prefixes file:line). base_dir resolves PATH. */
bt_status  bt_optset_set(bt_optset *o, const char *key, const char *value, const char *base_dir,
                         bt_err *err);
int        bt_optset_has(const bt_optset *o, const char *key);  /* key is in the table */
int        bt_optset_is_set(const bt_optset *o, const char *key); /* given explicitly */
bt_status  bt_optset_check_required(const bt_optset *o, bt_err *err);
bt_optset *bt_optset_clone(const bt_optset *o); /* NULL for NULL or out of memory */
const struct bt_option *bt_optset_table(const bt_optset *o); /* its table (borrowed), NULL for NULL */
const char *bt_opt_str(const bt_optset *o, const char *name);
int64_t     bt_opt_int(const bt_optset *o, const char *name);
double      bt_opt_float(const bt_optset *o, const char *name);

/* ---- registry / loader ------------------------------------------------------------------------- */
typedef struct bt_registry bt_registry;

struct bt_plugin_entry {
    const struct bt_plugin *desc;
    char                   *path;    /* .so path */
};

/* Scan dirs (in order; later duplicates are refused). Refusals are logged and kept in the
 * registry's reject list; they never fail the whole scan. */
bt_status bt_registry_new(bt_registry **out);
void      bt_registry_free(bt_registry *reg);
/* load one file (its ELF symbols are checked before dlopen runs any of its code);
 * BT_E_ABI/BT_E_PLUGIN with err naming the file and the reason */
bt_status bt_registry_load_file(bt_registry *reg, const char *path, bt_err *err);
/* scan one directory for libbt-*.so, no questions asked (tests, tools); returns the number
 * loaded (>= 0) */
int       bt_registry_scan_dir(bt_registry *reg, const char *dir);

/* What a program asks the plugin search for (docs/plugins-trust.md). Folders are searched in
 * this order: the user folders dir[] (--plugin-dir, [pipeline] plugin_dir; a relative one is
 * resolved against the current folder), then each entry of $BT_PLUGIN_PATH (absolute only),
 * then the built-in folders <exe>/../lib/bt and the install folder. A user folder that does not
 * exist, a relative $BT_PLUGIN_PATH entry and a bad or unused override are errors (BT_E_INVAL,
 * the message naming the entry and where it came from). A plugin in a user folder with the
 * kind and name of a built-in one is refused without being loaded, unless it is named in
 * override[] or $BT_PLUGIN_OVERRIDE: then it replaces the built-in. */
#define BT_PLUGIN_MAX_DIRS 4
struct bt_plugin_search {
    const char *dir[BT_PLUGIN_MAX_DIRS];      /* user folders; NULL or "" = unused */
    const char *dir_from[BT_PLUGIN_MAX_DIRS]; /* where each was named ("--plugin-dir") */
    const char *override[2];      /* lists of [kind:]name, ',' or blank separated; NULL = none */
    const char *override_from[2]; /* where each list was given */
};
/* s may be NULL (only $BT_PLUGIN_PATH, $BT_PLUGIN_OVERRIDE and the built-in folders) */
bt_status bt_registry_scan_default(bt_registry *reg, const struct bt_plugin_search *s, bt_err *err);
uint32_t  bt_registry_count(const bt_registry *reg);
const struct bt_plugin_entry *bt_registry_at(const bt_registry *reg, uint32_t i);
const struct bt_plugin_entry *bt_registry_find(const bt_registry *reg, uint32_t kind,
                                               const char *name);
/* the reader `reader = auto` picks for path (the highest probe score); NULL if none or !path */
const struct bt_plugin_entry *bt_registry_probe_reader(const bt_registry *reg, const char *path);
uint32_t    bt_registry_reject_count(const bt_registry *reg);
const char *bt_registry_reject_at(const bt_registry *reg, uint32_t i); /* "path: reason" */
const char *bt_kind_name(uint32_t kind);

/* ---- plugin instances ---------------------------------------------------------------------------- */
struct bt_reader {
    const struct bt_plugin_entry *entry;
    const struct bt_reader_i     *i;
    void                         *ctx;
    bt_optset                    *opts;
};
struct bt_writer {
    const struct bt_plugin_entry *entry;
    const struct bt_writer_i     *i;
    void                         *ctx;
    bt_optset                    *opts;
};
struct bt_quantizer {
    const struct bt_plugin_entry *entry;
    const struct bt_quantizer_i  *i;
    void                         *ctx;
    bt_optset                    *opts;
};
struct bt_backend {
    const struct bt_plugin_entry *entry;
    const struct bt_backend_i    *i;
    void                         *ctx;
    bt_optset                    *opts;
};

/* name "auto" picks: readers by probe score, backends by score (highest that opens).
 * opts may be NULL (defaults); it is owned by the instance afterwards. */
bt_status bt_reader_open(bt_registry *reg, const char *name, const char *path, bt_optset *opts,
                         struct bt_reader **out, bt_err *err);
void      bt_reader_close(struct bt_reader *r);
int64_t   bt_reader_find(struct bt_reader *r, const char *name); /* tensor index or -1 */
/* KV lookup by key; NULL if absent (pointer valid until the next kv call) */
const struct bt_kv *bt_reader_kv(struct bt_reader *r, const char *key, struct bt_kv *tmp);
/* rows [row0,row0+nrows) of tensor i as f32 (uses read_f32 or host conversion) */
bt_status bt_reader_read_f32(struct bt_reader *r, uint32_t i, int64_t row0, int64_t nrows,
                             float *dst, bt_err *err);

bt_status bt_writer_open(bt_registry *reg, const char *name, const char *path, bt_optset *opts,
                         const struct bt_kv *kvs, uint32_t n_kv, uint32_t n_tensors,
                         struct bt_writer **out, bt_err *err);
void      bt_writer_close(struct bt_writer *w);

bt_status bt_quantizer_open(bt_registry *reg, const char *name, bt_optset *opts,
                            struct bt_quantizer **out, bt_err *err);
void      bt_quantizer_close(struct bt_quantizer *q);

bt_status bt_backend_open(bt_registry *reg, const char *name, bt_optset *opts,
                          struct bt_backend **out, bt_err *err);
/* the same; with name "auto", backends named in skip[] are not candidates (a caller that found
 * the best one cannot run its model tries the next) */
bt_status bt_backend_open_skip(bt_registry *reg, const char *name, bt_optset *opts,
                               const char *const *skip, int n_skip, struct bt_backend **out,
                               bt_err *err);
void      bt_backend_close(struct bt_backend *b);
/* the quantizers' compute backend (compute.c): host->kmeans_assign opens `backend` (with a copy
 * of opts) on first use between begin and end */
void      bt_compute_begin(bt_registry *reg, const char *backend, const bt_optset *opts);
void      bt_compute_end(void);
bt_status bt_compute_kmeans(const float *pts, int64_t n, int64_t d, const float *cent, int64_t k,
                            const float *w, int32_t *idx, bt_err *err);
/* [quantize] so_backend: where the second-order engine's dense algebra (ops GEMM, CHOL_INV) runs
 * between bt_compute_begin and _end. AUTO: on the compute backend when it was named (not
 * "auto"), its buffers are device memory (host_memory 0) and it runs both ops, else on the
 * host; HOST: always on the host;
 * BACKEND: always on the compute backend (an error if it cannot) */
enum { BT_SO_AUTO = 0, BT_SO_HOST = 1, BT_SO_BACKEND = 2 };
void      bt_compute_so_mode(int mode);

/* optional reader/writer entries through their gates */
void bt_reader_release(struct bt_reader *r, uint32_t i);         /* no-op if absent */
int  bt_writer_supports(struct bt_writer *w, const struct bt_tfmt *fmt);

/* ---- backend calls (core/src/backend.c): one gated wrapper per entry; errors name the backend */
bt_status bt_be_info(struct bt_backend *b, struct bt_device_info *out);
bt_status bt_be_alloc(struct bt_backend *b, uint64_t n, uint32_t usage, bt_buf **out, bt_err *err);
void      bt_be_free(struct bt_backend *b, bt_buf *buf);
bt_status bt_be_write(struct bt_backend *b, bt_buf *buf, uint64_t off, const void *src, uint64_t n,
                      bt_err *err);
bt_status bt_be_read(struct bt_backend *b, bt_buf *buf, uint64_t off, void *dst, uint64_t n,
                     bt_err *err);
/* wrap host memory without a copy; BT_E_UNSUPPORTED (no error set) if the backend cannot */
bt_status bt_be_wrap(struct bt_backend *b, const void *p, uint64_t n, bt_buf **out, bt_err *err);
int       bt_be_supports(struct bt_backend *b, const struct bt_op *op);
bt_status bt_be_run(struct bt_backend *b, const struct bt_op *ops, uint32_t n, bt_err *err);
const char *bt_backend_name(const struct bt_backend *b);

/* total elements of a tensor, rows (all but the last dim), cols (last dim) */
int64_t bt_tensor_numel(const struct bt_tensor *t);
int64_t bt_tensor_rows(const struct bt_tensor *t);
int64_t bt_tensor_cols(const struct bt_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
