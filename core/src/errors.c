/* errors.c - logging to stderr. bt_err_set (also the host's set_error) and bt_status_str live in
 * core/types/bt_err.c (bt_types). */
#include "bt/bt.h"

#include <stdarg.h>
#include <stdio.h>

static int log_level = BT_LOG_WARN;

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
