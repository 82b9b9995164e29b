/* report.h - conversion report: per-tensor rows and totals, printed and written as JSON. */
#ifndef BT_REPORT_H
#define BT_REPORT_H
#include "bt/bt.h"

struct bt_report_row {
    char    name[96];
    int64_t shape[BT_MAX_DIMS];
    int     n_dims;
    char    type_in[24], type_out[24];
    double  bpw;       /* bits per weight of the output */
    double  rel_rmse;  /* ||W - What|| / ||W|| (0 for lossless) */
    double  herr2;     /* second_order: sum_rows (w - q)^T H (w - q), else 0 */
    double  seconds;
    uint64_t bytes_in, bytes_out;
    char    note[96];  /* e.g. "kept (pattern)", "fallback: cols % 256 != 0" */
};

struct bt_report {
    struct bt_report_row *rows;
    int                   n, cap;
    char                  input[512], output[512], method[64];
    double                wall;
    uint64_t              bytes_in, bytes_out;
    uint64_t              file_bytes;    /* the output file's size on disk (compression included) */
    const void           *config;        /* json-c object: every section's effective keys (borrowed) */
    char                  calib[512];    /* calibration file ("" for none) */
    char                  calib_sha[65]; /* its sha256 (hex) */
};

bt_status bt_report_add(struct bt_report *r, const struct bt_report_row *row);
void      bt_report_free(struct bt_report *r);
void      bt_report_print(const struct bt_report *r, FILE *f);
/* write JSON atomically (temp + rename) */
bt_status bt_report_write_json(const struct bt_report *r, const char *path, bt_err *err);
/* the effective configuration, as a json-c object {section: {key: value}}: every key of each
 * option set, defaults included (typed by the table); freed with bt_report_config_free */
void     *bt_report_config_new(void);
void      bt_report_config_add(void *config, const char *section, const bt_optset *o);
void      bt_report_config_free(void *config);
/* sha256 of a file as 64 hex digits into hex[65] */
bt_status bt_file_sha256(const char *path, char hex[65], bt_err *err);
/* write any json-c object atomically */
bt_status bt_json_write_atomic(void *json_object, const char *path, bt_err *err);
#endif
