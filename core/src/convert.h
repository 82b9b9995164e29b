/* convert.h - the conversion stage: stream tensors from a reader through a quantizer into a
 * writer, with bounded memory, and report what it cost. */
#ifndef BT_CONVERT_H
#define BT_CONVERT_H
#include "bt/bt.h"

struct bt_convert_args {
    bt_registry *reg;
    const char  *reader, *in_path;   /* reader plugin name (or auto) and input */
    bt_optset   *reader_opts;        /* owned by bt_convert (may be NULL) */
    const char  *method, *keep;      /* quantizer name (or none) and keep patterns */
    bt_optset   *quant_opts;         /* owned */
    const char  *writer, *out_path;
    bt_optset   *writer_opts;        /* owned */
    const char  *type, *keep_type;   /* tq2_0|tq1_0|mtq ; f16|bf16|f32|q8_0 */
    const char  *report;             /* JSON path or "" */
    int          quiet, progress;
};

bt_status bt_convert(struct bt_convert_args *a, bt_err *err);
#endif
