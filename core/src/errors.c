/* errors.c - the host's set_error entry (same shape as bt_err_set) and logging to stderr.
 * bt_err_set and bt_status_str live in core/types/bt_err.c (bt_types). */
#include "bt/bt.h"

#include <stdarg.h>
#include <stdio.h>

static int log_level = BT_LOG_WARN;

/* host->set_error has the same shape; plugins reach it through the host table */
bt_status bt_host_set_error(bt_err *err, bt_status status, const char *fmt, ...) {
    if (!err) return status;
    va_list ap;
    va_start(ap, fmt);
    err->status = status;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
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
