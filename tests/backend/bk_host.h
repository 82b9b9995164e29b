/* bk_host.h - a minimal struct bt_host for loading backend plugins with dlopen in tests and the
 * kernel bench: log to stderr, error buffer, 64-byte aligned alloc, a persistent pthread pool,
 * option values (the plugin's declared defaults, overridden from a small name=value table) and
 * the type services of bt_types (link bt_types). Header-only (static functions); include it in
 * one translation unit per executable. */
#ifndef BK_HOST_H
#define BK_HOST_H

#include "bt/bt_plugin.h"
#include "bt_types.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BK_MAX_THREADS 64


static struct {
    pthread_mutex_t mu;       /* guards everything below */
    pthread_cond_t  cv_work;  /* a new job (generation bumped) */
    pthread_cond_t  cv_done;  /* active dropped to 0 */
    pthread_t       tid[BK_MAX_THREADS]; /* workers 1..n_started */
    int             n_threads;  /* threads used per job, incl. the caller */
    int             n_started;  /* workers started */
    unsigned long   generation; /* job counter */
    int             active;     /* workers still running the job */
    int             quit;       /* workers exit */
    bt_range_fn     fn;         /* job: function */
    void           *arg;        /* job: argument */
    int64_t         n, grain;   /* job: range and minimum chunk */
    int             job_nt;     /* job: threads taking part (fixed when the job is published) */
} bk_pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv_work = PTHREAD_COND_INITIALIZER,
             .cv_done = PTHREAD_COND_INITIALIZER};

/* chunk k of nt: contiguous, at least grain items (some chunks may be empty) */
static void bk_chunk(int64_t n, int64_t grain, int nt, int k, int64_t *i0, int64_t *i1) {
    int64_t c = (n + nt - 1) / nt;
    if (c < grain) c = grain;
    *i0 = c * k < n ? c * k : n;
    *i1 = c * (k + 1) < n ? c * (k + 1) : n;
}

static void *bk_worker(void *p) {
    int id = (int)(intptr_t)p;
    unsigned long seen = 0;
    pthread_mutex_lock(&bk_pool.mu);
    for (;;) {
        while (bk_pool.generation == seen && !bk_pool.quit)
            pthread_cond_wait(&bk_pool.cv_work, &bk_pool.mu);
        if (bk_pool.quit) break;
        seen = bk_pool.generation;
        if (id >= bk_pool.job_nt) continue;
        int64_t i0, i1;
        bk_chunk(bk_pool.n, bk_pool.grain, bk_pool.job_nt, id, &i0, &i1);
        bt_range_fn fn = bk_pool.fn; /* snapshot the job under the lock */
        void *arg = bk_pool.arg;
        pthread_mutex_unlock(&bk_pool.mu);
        if (i0 < i1) fn(arg, i0, i1, id);
        pthread_mutex_lock(&bk_pool.mu);
        if (--bk_pool.active == 0) pthread_cond_signal(&bk_pool.cv_done);
    }
    pthread_mutex_unlock(&bk_pool.mu);
    return NULL;
}

static void bk_parallel_for(int64_t n, int64_t grain, bt_range_fn fn, void *arg) {
    int nt = bk_pool.n_threads < 1 ? 1 : bk_pool.n_threads;
    if (grain < 1) grain = 1;
    if (n <= 0) return;
    if (nt == 1 || n <= grain) { fn(arg, 0, n, 0); return; }
    pthread_mutex_lock(&bk_pool.mu);
    while (bk_pool.n_started < nt - 1) {
        int id = bk_pool.n_started + 1;
        if (pthread_create(&bk_pool.tid[id], NULL, bk_worker, (void *)(intptr_t)id)) abort();
        bk_pool.n_started++;
    }
    bk_pool.fn = fn;
    bk_pool.arg = arg;
    bk_pool.n = n;
    bk_pool.grain = grain;
    bk_pool.job_nt = nt;
    bk_pool.active = nt - 1;
    bk_pool.generation++;
    pthread_cond_broadcast(&bk_pool.cv_work);
    pthread_mutex_unlock(&bk_pool.mu);
    int64_t i0, i1;
    bk_chunk(n, grain, nt, 0, &i0, &i1);
    if (i0 < i1) fn(arg, i0, i1, 0);
    pthread_mutex_lock(&bk_pool.mu);
    while (bk_pool.active > 0) pthread_cond_wait(&bk_pool.cv_done, &bk_pool.mu);
    pthread_mutex_unlock(&bk_pool.mu);
}

static void bk_set_threads(int n) {
    bk_pool.n_threads = n < 1 ? 1 : n > BK_MAX_THREADS ? BK_MAX_THREADS : n;
}

static void bk_shutdown(void) {
    pthread_mutex_lock(&bk_pool.mu);
    bk_pool.quit = 1;
    pthread_cond_broadcast(&bk_pool.cv_work);
    pthread_mutex_unlock(&bk_pool.mu);
    for (int i = 1; i <= bk_pool.n_started; i++) pthread_join(bk_pool.tid[i], NULL);
    bk_pool.n_started = 0;
    bk_pool.quit = 0;
}

static int bk_log_quiet = 0; /* 1: drop log lines below WARN */

static void bk_log(int level, const char *fmt, ...) {
    if (bk_log_quiet && level > BT_LOG_WARN) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[plugin] ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static bt_status bk_set_error(bt_err *err, bt_status st, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = st;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return st;
}

static void *bk_alloc(size_t n) { return aligned_alloc(64, (n + 63) / 64 * 64); }
static void bk_free(void *p) { free(p); }
static int bk_n_threads(void) { return bk_pool.n_threads < 1 ? 1 : bk_pool.n_threads; }

/* ---- options: a small name -> text table (the core's validated optset, simplified) ---------- */
#define BK_MAX_OPTS 32
struct bt_optset {
    int         n;
    const char *name[BK_MAX_OPTS];
    char        val[BK_MAX_OPTS][256];
};

static const char *bk_opt_find(const bt_optset *o, const char *name) {
    for (int i = 0; o && i < o->n; i++)
        if (strcmp(o->name[i], name) == 0) return o->val[i];
    return NULL;
}
/* set (or replace) name = val; 0, or -1 when the table is full */
static int bk_opt_set(bt_optset *o, const char *name, const char *val) {
    int i = 0;
    while (i < o->n && strcmp(o->name[i], name) != 0) i++;
    if (i == o->n) {
        if (o->n == BK_MAX_OPTS) return -1;
        o->name[o->n++] = name;
    }
    snprintf(o->val[i], sizeof(o->val[i]), "%s", val);
    return 0;
}
/* the plugin's declared defaults, then every "name=value" of user[] (n_user entries) whose name
 * the plugin declares (others are meant for other plugins and ignored) */
static void bk_opts_fill(bt_optset *o, const struct bt_option *decl, const char *const *user,
                         int n_user) {
    memset(o, 0, sizeof(*o));
    for (const struct bt_option *d = decl; d && d->name; d++) {
        bk_opt_set(o, d->name, d->def ? d->def : "");
        for (int i = 0; i < n_user; i++) {
            size_t k = strlen(d->name);
            if (strncmp(user[i], d->name, k) == 0 && user[i][k] == '=')
                bk_opt_set(o, d->name, user[i] + k + 1);
        }
    }
}
static const char *bk_opt_str(const bt_optset *o, const char *name) {
    const char *v = bk_opt_find(o, name);
    return v ? v : "";
}
static int64_t bk_opt_int(const bt_optset *o, const char *name) {
    const char *v = bk_opt_find(o, name);
    if (!v) return 0;
    if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) return 1;
    return strtoll(v, NULL, 0);
}
static double bk_opt_float(const bt_optset *o, const char *name) {
    const char *v = bk_opt_find(o, name);
    return v ? strtod(v, NULL) : 0.0;
}

static size_t bk_row_bytes(const struct bt_tfmt *fmt, int64_t ncols) {
    return bt_fmt_row_bytes(fmt, ncols);
}
static bt_status bk_to_f32(const struct bt_tfmt *fmt, const void *src, float *dst, int64_t n) {
    return bt_to_f32(fmt, src, dst, n);
}

static const struct bt_host bk_host = {
    BT_ABI_VERSION, sizeof(struct bt_host), "test", bk_log, bk_set_error, bk_alloc, bk_free,
    bk_parallel_for, bk_n_threads, bk_opt_str, bk_opt_int, bk_opt_float, bk_row_bytes, bk_to_f32,
    NULL, NULL, NULL, /* no second-order engine in backend tests */
    bt_format_get, bt_format_by_name, NULL /* kmeans_assign */,
};

/* A loaded backend with one open instance. */
struct bk_backend {
    void                      *dl;    /* dlopen handle */
    const struct bt_plugin    *desc;  /* descriptor */
    const struct bt_backend_i *be;    /* iface */
    void                      *ctx;   /* zeroed ctx_size bytes */
    bt_optset                  opts;  /* the options it was opened with */
};

enum { BK_OK = 0, BK_E_LOAD = -1 /* not a loadable backend of this ABI */,
       BK_E_SCORE = -2 /* score() == 0 */, BK_E_OPEN = -3 /* open failed */ };

/* dlopen path, check the descriptor and score(), open an instance with the plugin's option
 * defaults overridden by user[] ("name=value"). BK_OK, or BK_E_* with the reason in why. */
static int bk_load_ex(const char *path, const char *const *user, int n_user, struct bk_backend *b,
                      char *why, size_t why_n) {
    memset(b, 0, sizeof(*b));
    /* NODELETE: the opencl backend's score() initializes the OpenCL ICD loader, whose state
     * would leak (77 bytes, "<unknown module>" under LSan) once dlclose unmaps it */
    b->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!b->dl) { snprintf(why, why_n, "dlopen: %s", dlerror()); return BK_E_LOAD; }
    bt_plugin_init_fn init = (bt_plugin_init_fn)dlsym(b->dl, BT_PLUGIN_INIT_SYMBOL);
    if (!init || init(&bk_host, &b->desc) != BT_OK || !b->desc ||
        b->desc->kind != BT_KIND_BACKEND || !b->desc->iface) {
        snprintf(why, why_n, "not a backend plugin");
        dlclose(b->dl);
        memset(b, 0, sizeof(*b));
        return BK_E_LOAD;
    }
    if (BT_ABI_MAJOR_OF(b->desc->abi_version) != BT_ABI_MAJOR) {
        snprintf(why, why_n, "ABI major %u, host has %u", BT_ABI_MAJOR_OF(b->desc->abi_version),
                 (unsigned)BT_ABI_MAJOR);
        dlclose(b->dl);
        memset(b, 0, sizeof(*b));
        return BK_E_LOAD;
    }
    b->be = b->desc->iface;
    if (b->be->score && b->be->score() <= 0) {
        snprintf(why, why_n, "score 0 (cannot run on this machine)");
        return BK_E_SCORE;
    }
    bk_opts_fill(&b->opts, b->desc->options, user, n_user);
    b->ctx = calloc(1, b->desc->ctx_size ? b->desc->ctx_size : 1);
    bt_err err = {0, ""};
    if (!b->ctx || b->be->open(b->ctx, &bk_host, &b->opts, &err) != BT_OK) {
        snprintf(why, why_n, "open failed: %s", err.msg);
        free(b->ctx); /* a failed open is not closed */
        b->ctx = NULL;
        return BK_E_OPEN;
    }
    return BK_OK;
}

/* dlopen path, check the descriptor, open an instance; 0 on success, message on stderr */
static inline int bk_load(const char *path, struct bk_backend *b) {
    char why[1200];
    int rc = bk_load_ex(path, NULL, 0, b, why, sizeof(why));
    if (rc == BK_E_SCORE) rc = BK_OK; /* callers check score() themselves */
    if (rc == BK_OK && !b->ctx) { /* score 0: open anyway, as before */
        bt_err err = {0, ""};
        b->ctx = calloc(1, b->desc->ctx_size ? b->desc->ctx_size : 1);
        bk_opts_fill(&b->opts, b->desc->options, NULL, 0);
        if (!b->ctx || b->be->open(b->ctx, &bk_host, &b->opts, &err) != BT_OK) {
            snprintf(why, sizeof(why), "open failed: %s", err.msg);
            free(b->ctx);
            b->ctx = NULL;
            rc = BK_E_OPEN;
        }
    }
    if (rc != BK_OK) { fprintf(stderr, "%s: %s\n", path, why); return -1; }
    return 0;
}

static void bk_unload(struct bk_backend *b) {
    if (b->ctx && b->be) b->be->close(b->ctx);
    free(b->ctx);
    if (b->dl) dlclose(b->dl);
    memset(b, 0, sizeof(*b));
}

#endif
