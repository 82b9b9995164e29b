/* progress.c - the one progress printer every long stage uses (conversion, eval, calibration):
 * on stderr beside the log, a live line on a terminal, a plain line every few seconds when
 * piped, nothing with -q. The CLI picks the mode once (bt_progress_set_mode). */
#include "bt/bt.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int    g_mode     = BT_PROGRESS_OFF;
static double g_interval = 5.0; /* seconds between lines when piped */

void bt_progress_set_mode(int mode, double interval_s) {
    g_mode = mode;
    if (interval_s >= 0) g_interval = interval_s;
}

int bt_progress_mode(void) { return g_mode; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void bt_progress_start(struct bt_progress *p, const char *what) {
    p->what = what;
    p->t0 = now_s();
    p->last = p->t0;
    p->shown = 0;
}

static void fmt_time(double s, char *buf, size_t n) {
    if (s < 0) s = 0;
    if (s < 60) snprintf(buf, n, "%.0fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

void bt_progress_step(struct bt_progress *p, double done, double total, const char *fmt, ...) {
    if (g_mode == BT_PROGRESS_OFF || !p->what) return;
    double t = now_s();
    int last = total > 0 && done >= total;
    if (g_mode == BT_PROGRESS_LINES && t - p->last < g_interval && !(last && p->shown)) return;
    p->last = t;
    char extra[256] = "", el[16], eta[16];
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(extra, sizeof extra, fmt, ap);
        va_end(ap);
    }
    double e = t - p->t0;
    fmt_time(e, el, sizeof el);
    if (done > 0 && total > done) fmt_time(e * (total - done) / done, eta, sizeof eta);
    else snprintf(eta, sizeof eta, "-");
    fprintf(stderr, "%s%s: %3.0f%% %s elapsed, ETA %s  %s%s", g_mode == BT_PROGRESS_TTY ? "\r" : "",
            p->what, total > 0 ? 100.0 * done / total : 0.0, el, eta, extra,
            g_mode == BT_PROGRESS_TTY ? "\033[K" : "\n");
    fflush(stderr);
    p->shown = 1;
}

void bt_progress_end(struct bt_progress *p) {
    if (g_mode == BT_PROGRESS_TTY && p->shown) { /* the live line gives way to what follows */
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->what = NULL;
}
