/* bt_err.c - the bt_err error sink: bt_err_set (records status + formatted message; a NULL
 * err is allowed and only returns the status) and bt_status_str. Lives in bt_types so that
 * libraries which do not link bt_core (e.g. bt_tokenizer) can report through bt_err too. */
#include "bt/bt.h"

#include <stdarg.h>
#include <stdio.h>

const char *bt_status_str(bt_status s) {
    switch (s) {
    case BT_OK: return "ok";
    case BT_E_NOMEM: return "out of memory";
    case BT_E_INVAL: return "invalid argument";
    case BT_E_IO: return "i/o error";
    case BT_E_FORMAT: return "malformed input";
    case BT_E_UNSUPPORTED: return "unsupported";
    case BT_E_ABI: return "plugin abi mismatch";
    case BT_E_PLUGIN: return "plugin error";
    case BT_E_BACKEND: return "backend error";
    case BT_E_ABORTED: return "aborted";
    case BT_E_QUALITY: return "quality gate failed";
    default: return "unknown error";
    }
}

bt_status bt_err_set(bt_err *err, bt_status status, const char *fmt, ...) {
    if (!err) return status;
    va_list ap;
    va_start(ap, fmt);
    err->status = status;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return status;
}
