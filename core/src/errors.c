/* errors.c - status strings, the error sink behind bt_err, and logging to stderr. */
#include "bt/bt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int log_level = BT_LOG_WARN;

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
    default: return "unknown error";
    }
}

static bt_status err_vset(bt_err *err, bt_status status, const char *fmt, va_list ap) {
    if (!err) return status;
    err->status = status;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    return status;
}

bt_status bt_err_set(bt_err *err, bt_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, status, fmt, ap);
    va_end(ap);
    return status;
}

/* host->set_error has the same shape; plugins reach it through the host table */
bt_status bt_host_set_error(bt_err *err, bt_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, status, fmt, ap);
    va_end(ap);
    return status;
}

void bt_log_set_level(int level) { log_level = level; }

static void vlog(int level, const char *fmt, va_list ap) {
    static const char *names[] = {"error", "warning", "info", "debug"};
    if (level > log_level) return;
    fprintf(stderr, "bt: %s: ", names[level < 0 ? 0 : level > 3 ? 3 : level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void bt_log(int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}
