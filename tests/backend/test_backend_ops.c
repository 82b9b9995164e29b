/* test_backend_ops.c - backend conformance harness (plugin ABI 2).
 *
 * usage: test_backend_ops PLUGIN_DIR [--backend NAME] [--op NAME] [-o NAME=VALUE]... [-t N] [-v]
 *        [--quick] [--require OP_OR_FMT,...]
 *
 * Loads libbt-backend-cpu.so from PLUGIN_DIR as the reference and every other
 * libbt-backend-*.so there (or only --backend NAME) as a backend under test; one that does not
 * load, has score() 0 or fails to open is reported "skipped: <reason>", not failed (CI has no
 * GPU). -o gives backend options (e.g. -o device=1; each plugin's declared defaults otherwise).
 * Every case (test_backend_ops_cases.c: each op x weight format x shape, fixed seeds) runs:
 *   1. on the reference, checked against a plain-C model (double precision on bt_to_f32
 *      weights): the reference itself is tested, not only compared with itself;
 *   2. on each backend under test, checked against the reference's output.
 * Cases: weight formats F32 F16 BF16 Q8_0 Q4_0 TQ1_0 TQ2_0 and MTQ planes 1-4 x block 64/128/256 x
 * layout 0/1 (+ 8 planes); rows 1/3/17/67, cols 1/3/5 blocks and 512 (1/7/33/512 for scalar
 * types), ntok 1/2/5/33/130; BT_ACT_Q8 where cols % 256 == 0; SAME_INPUT lists; weights at
 * offsets, activations and outputs in one arena buffer, weights through buf_wrap (where the
 * backend has it). View offsets are multiples of 4 bytes (weights: of 64).
 * Bytes of every buffer outside the op outputs must come back unchanged (guards are NaN, unused
 * KV-cache rows are NaN: reading them shows). A supports_op() of 0 for a case is a failure: all
 * cases are in the set every backend must run, except those of optional formats (vq; ggml Q4_1..IQ4_XS)
 * and ops (RELU2, QUANT_ROW), which a backend other than the CPU ones may decline for a whole
 * group ("not supported"; --require names those that must run: ops by name, formats by the
 * prefix of their label, e.g. --require vq,relu2). CPU backends ("cpu*") must also give bit-identical
 * results with 1 and N threads (MATMUL with ntok > 1, ATTN, op lists) and for a Q8 MATMUL batch
 * and the same tokens one at a time. Error paths: unknown op codes, bad formats, bad shapes and
 * out-of-range views must be rejected by supports_op (where it can know) and by run() with a
 * message naming the op (and the format where that is the reason): group "errors"; partial
 * buffer reads/writes and an empty run: group "buffers". -t N: host threads (default 3).
 * --quick: without the big MATMUL shapes (rows up to 1001, cols up to 2048), for runs under
 * emulation (scripts/ci_arm64.sh runs cpu-neon under qemu-user, ~100x slower).
 *
 * Tolerances (per output element; err/tol is reported, > 1 fails):
 *   MATMUL          |y - yref| <= 1e-4 * sum_c |w_rc x_tc| + 1e-6, w = bt_to_f32 of the weights,
 *                   x = the activations (BT_ACT_Q8: their int8 round trip)
 *   RMSNORM, ROPE,  1e-5 relative: |y - yref| <= 1e-5 * m; m = |y| (RMSNORM, SWIGLU),
 *   ADD, SWIGLU     |a| + |b| (ADD), |x_i| + |x_j| of the rotated pair (ROPE; the angle is the
 *                   f32 product pos * freq)
 *   ATTN            |o - oref| <= 1e-4 * sum_p softmax_p |v_pd| + 1e-6
 *   DEQUANT, GET_ROWS, CPY, SCALE   bit-identical (to bt_to_f32 / the source / x * scale in f32)
 *   KMEANS          the same index, or a near tie: d(got) <= (1 + 1e-5) d(min) and no lower
 *                   index with term-for-term the same distance (exact ties take the lowest k)
 *   op lists (seq)  vs the reference only: |y - yref| <= 1e-4 * (|yref| + RMS of the ref row)
 * Output: one line per (backend, op, format) group: cases, max err/tol, PASS/FAIL; the first
 * failures of each group in detail. Exit status 1 on any failure. */
#include "bk_host.h"
#include "test_backend_ops.h"

#include <dirent.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS 16

struct target {
    struct bk_backend     b;
    char                  name[64];
    int                   cpu;      /* "cpu*": the thread / batch determinism contract */
    int                   ok;       /* loaded and open */
    struct bt_device_info di;
    double                seconds;  /* time in run() and the buffer calls */
};

struct group {
    int    target;
    char   op[16], fmt[40];
    int    cases, fails, details, unsup;
    double maxr;
};

static struct target T[MAX_TARGETS];
static int           n_targets; /* T[0] is the reference */
static struct group *G;
static int           n_groups, cap_groups;
static int           verbose, n_threads = 3, any_fail;
static const char   *require; /* --require a,b: optional ops / formats (name prefixes) made required */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static struct group *group_of(int t, const char *op, const char *fmt) {
    for (int i = 0; i < n_groups; i++)
        if (G[i].target == t && !strcmp(G[i].op, op) && !strcmp(G[i].fmt, fmt)) return &G[i];
    if (n_groups == cap_groups) {
        cap_groups = cap_groups ? 2 * cap_groups : 256;
        G = realloc(G, sizeof(*G) * (size_t)cap_groups);
        if (!G) abort();
    }
    struct group *g = &G[n_groups++];
    memset(g, 0, sizeof(*g));
    g->target = t;
    snprintf(g->op, sizeof(g->op), "%s", op);
    snprintf(g->fmt, sizeof(g->fmt), "%s", fmt);
    return g;
}

/* a failure in group g: counted once per case by the caller; details for the first 3 */
static void fail_detail(struct group *g, const char *desc, const char *fmt, ...) {
    any_fail = 1;
    if (g->details++ >= 3 && !verbose) return;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    printf("  FAIL %s %s %s [%s]: %s\n", T[g->target].name, g->op, g->fmt, desc, msg);
}

static int has_word(const char *msg, const char *w) { /* case-insensitive strstr */
    size_t n = strlen(w);
    for (; *msg; msg++)
        if (!strncasecmp(msg, w, n)) return 1;
    return 0;
}

/* ---- running a case ------------------------------------------------------------------------- */
enum { RUN_OK = 0, RUN_UNSUPPORTED = 1, RUN_ERROR = 2 };

/* run c on target t; got[i] = buffer i read back (malloc'd; NULL on failure) */
static int run_on(struct target *tg, const struct bo_case *c, uint8_t **got, char *msg, size_t mn) {
    const struct bt_backend_i *be = tg->b.be;
    void *ctx = tg->b.ctx;
    bt_buf *bufs[BO_MAX_BUFS] = {0};
    bt_err err = {0, ""};
    int rc = RUN_ERROR;
    double t0 = now();
    for (int i = 0; i < c->nbuf; i++) got[i] = NULL;
    for (int i = 0; i < c->nbuf; i++) {
        if (i == 0 && c->wrap && tg->di.host_memory &&
            be->struct_size > offsetof(struct bt_backend_i, buf_wrap) && be->buf_wrap) {
            bt_status st = be->buf_wrap(ctx, c->img[0], c->size[0], &bufs[0], &err);
            if (st != BT_OK && st != BT_E_UNSUPPORTED) {
                snprintf(msg, mn, "buf_wrap of %zu bytes: %s", c->size[0], err.msg);
                goto out;
            }
            if (st == BT_OK) continue;
            bufs[0] = NULL;
        }
        if (be->buf_alloc(ctx, c->size[i], c->usage[i], &bufs[i], &err) != BT_OK ||
            be->buf_write(ctx, bufs[i], 0, c->img[i], c->size[i], &err) != BT_OK) {
            snprintf(msg, mn, "buffer %d (%zu bytes): %s", i, c->size[i], err.msg);
            goto out;
        }
    }
    struct bt_op ops[BO_MAX_OPS];
    memcpy(ops, c->ops, sizeof(ops[0]) * (size_t)c->nops);
    for (int k = 0; k < c->nops; k++) {
        struct bt_view *v[4] = {&ops[k].dst, &ops[k].src[0], &ops[k].src[1], &ops[k].src[2]};
        for (int j = 0; j < 4; j++) {
            if (v[j]->buf) v[j]->buf = bufs[BO_BUF_INDEX(v[j]->buf)];
            for (int p = 0; p < BT_MAX_PARTS; p++)
                if (v[j]->parts[p]) v[j]->parts[p] = bufs[BO_BUF_INDEX(v[j]->parts[p])];
        }
    }
    for (int k = 0; k < c->nops; k++)
        if (!be->supports_op(ctx, &ops[k])) {
            char fs[32];
            bt_fmt_str(&ops[k].src[0].fmt, fs, sizeof(fs));
            snprintf(msg, mn, "supports_op = 0 for op %d of the list (%s, src0 %s)", k,
                     bo_op_name(ops[k].code), fs);
            rc = RUN_UNSUPPORTED;
            goto out;
        }
    if (be->run(ctx, ops, (uint32_t)c->nops, &err) != BT_OK) {
        snprintf(msg, mn, "run: %s", err.msg[0] ? err.msg : "(no message)");
        goto out;
    }
    for (int i = 0; i < c->nbuf; i++) {
        got[i] = malloc(c->size[i] ? c->size[i] : 1);
        if (!got[i]) abort();
        if (be->buf_read(ctx, bufs[i], 0, got[i], c->size[i], &err) != BT_OK) {
            snprintf(msg, mn, "buf_read of buffer %d: %s", i, err.msg);
            goto out;
        }
    }
    rc = RUN_OK;
out:
    for (int i = 0; i < c->nbuf; i++) be->buf_free(ctx, bufs[i]);
    if (rc != RUN_OK)
        for (int i = 0; i < c->nbuf; i++) { free(got[i]); got[i] = NULL; }
    tg->seconds += now() - t0;
    return rc;
}

static void free_got(const struct bo_case *c, uint8_t **got) {
    for (int i = 0; i < c->nbuf; i++) { free(got[i]); got[i] = NULL; }
}

/* ---- comparing -------------------------------------------------------------------------------- */
/* distance of point i to centroid k as the op defines it (double) */
static double km_dist(const struct bo_kmeans *km, int64_t i, int64_t k) {
    double s = 0;
    for (int64_t j = 0; j < km->d; j++) {
        double e = (double)km->pts[i * km->d + j] - km->cent[k * km->d + j];
        s += (km->w ? km->w[j] : 1.0) * e * e;
    }
    return s;
}
/* 1 if centroids a and b give term-for-term the same distance (equal wherever w != 0) */
static int km_same(const struct bo_kmeans *km, int64_t a, int64_t b) {
    for (int64_t j = 0; j < km->d; j++)
        if ((!km->w || km->w[j] != 0.0f) && km->cent[a * km->d + j] != km->cent[b * km->d + j])
            return 0;
    return 1;
}

/* got vs want (the reference's buffers, or NULL: the case's model values); returns the largest
 * err/tol of the case (INFINITY on a mismatch of an exact region) and reports in g */
static double compare(const struct bo_case *c, uint8_t *const *got, uint8_t *const *ref,
                      int cpu, struct group *g) {
    double worst = 0;
    uint8_t *mask[BO_MAX_BUFS];
    for (int i = 0; i < c->nbuf; i++) {
        mask[i] = calloc(1, c->size[i] ? c->size[i] : 1);
        if (!mask[i]) abort();
    }
    for (int ri = 0; ri < c->nreg; ri++) {
        const struct bo_region *r = &c->reg[ri];
        memset(mask[r->buf] + r->off, 1, (size_t)r->n * 4);
        const void *wv = ref ? (const void *)(ref[r->buf] + r->off) : r->want;
        if (r->kind == BO_SCRATCH || !wv) continue;
        const float *gf = (const float *)(got[r->buf] + r->off), *wf = wv;
        const int32_t *gi = (const int32_t *)gf, *wi = wv;
        double rr = 0;
        int64_t at = -1;
        double rms = 0; /* seq regions without a magnitude: the reference row's RMS */
        for (int64_t e = 0; e < r->n; e++) {
            double q = 0;
            if (r->kind == BO_TOL) {
                double m;
                if (r->mag) m = r->mag[e];
                else {
                    if (e % r->cols == 0) {
                        double s = 0;
                        for (int64_t j = 0; j < r->cols; j++) s += (double)wf[e + j] * wf[e + j];
                        rms = sqrt(s / (double)r->cols);
                    }
                    m = fabs(wf[e]) + rms;
                }
                double tol = r->rtol * m + r->atol, d = fabs((double)gf[e] - (double)wf[e]);
                if (isnan(d) || isnan(tol)) q = INFINITY;
                else q = tol > 0 ? d / tol : (d > 0 ? INFINITY : 0);
            } else if (r->kind == BO_EXACT) {
                q = memcmp(gf + e, wf + e, 4) ? INFINITY : 0;
            } else if (gi[e] != wi[e]) { /* BO_KMEANS */
                const struct bo_kmeans *km = &c->km;
                int64_t k = gi[e], w = wi[e];
                if (k < 0 || k >= km->k) q = INFINITY;
                else {
                    double dk = km_dist(km, e, k), dw = km_dist(km, e, w);
                    double dmin = dk < dw ? dk : dw;
                    q = dmin > 0 ? (dk - dmin) / (1e-5 * dmin) : (dk > 0 ? INFINITY : 0);
                    for (int64_t j = 0; j < k && q <= 1; j++)
                        if (km_same(km, j, k)) q = INFINITY; /* an exact tie: lowest k wins */
                }
            }
            if (!(q <= rr)) { rr = q; at = e; }
        }
        if (!(rr <= 1)) {
            int64_t e = at, row = e / r->cols, col = e % r->cols;
            if (r->kind == BO_KMEANS)
                fail_detail(g, c->desc, "point %lld: centroid %d, want %d", (long long)e, gi[e], wi[e]);
            else
                fail_detail(g, c->desc, "output %d [%lld, %lld]: got %.9g want %.9g (err/tol %.3g)",
                            ri, (long long)row, (long long)col, gf[e], wf[e], rr);
        }
        if (!(rr <= worst)) worst = rr;
        /* cpu backends: bit-identical to another region (batch vs token by token) */
        if (cpu && r->same_as >= 0) {
            const struct bo_region *o = &c->reg[r->same_as];
            if (memcmp(got[r->buf] + r->off, got[o->buf] + o->off, (size_t)r->n * 4)) {
                fail_detail(g, c->desc, "output %d differs from output %d in bits (cpu backends: a "
                            "batch gives the floats of one token at a time)", ri, r->same_as);
                worst = INFINITY;
            }
        }
    }
    for (int i = 0; i < c->nbuf; i++) { /* everything else unchanged */
        for (size_t j = 0; j < c->size[i]; j++)
            if (!mask[i][j] && got[i][j] != c->img[i][j]) {
                fail_detail(g, c->desc, "buffer %d byte %zu changed outside the outputs", i, j);
                worst = INFINITY;
                break;
            }
        free(mask[i]);
    }
    return worst;
}

static void record(struct group *g, double r, int failed) {
    g->cases++;
    if (failed || !(r <= 1)) g->fails++;
    if (!(r <= g->maxr)) g->maxr = r;
}

/* 1 if --require names c's op or a prefix of its format label */
static int required(const struct bo_case *c) {
    for (const char *p = require; p && *p;) {
        size_t n = strcspn(p, ",");
        if (n && ((strlen(c->op) == n && !strncmp(c->op, p, n)) || !strncmp(c->fmt, p, n))) return 1;
        p += n + (p[n] == ',');
    }
    return 0;
}

/* ---- one case on every target ------------------------------------------------------------------ */
static void one_case(struct bo_case *c, void *user) {
    (void)user;
    uint8_t *ref[BO_MAX_BUFS], *got[BO_MAX_BUFS], *got1[BO_MAX_BUFS];
    char msg[1200];
    int ref_ok = 0;
    for (int t = 0; t < n_targets; t++) {
        struct target *tg = &T[t];
        if (!tg->ok) continue;
        struct group *g = group_of(t, c->op, c->fmt);
        uint8_t **out = t == 0 ? ref : got;
        int rc = run_on(tg, c, out, msg, sizeof(msg));
        if (rc == RUN_UNSUPPORTED && c->optional && !tg->cpu && !required(c)) { /* it may leave these */
            g->unsup++;
            continue;
        }
        if (rc != RUN_OK) {
            fail_detail(g, c->desc, "%s", msg);
            record(g, INFINITY, 1);
            continue;
        }
        /* the reference against the model; the others against the reference (or the model) */
        double r = compare(c, out, t == 0 || !ref_ok ? NULL : ref, tg->cpu, g);
        int failed = !(r <= 1);
        if (tg->cpu && c->threads_check) { /* the same bits with 1 thread */
            bk_set_threads(1);
            rc = run_on(tg, c, got1, msg, sizeof(msg));
            bk_set_threads(n_threads);
            if (rc != RUN_OK) {
                fail_detail(g, c->desc, "with 1 thread: %s", msg);
                failed = 1;
            } else {
                for (int i = 0; i < c->nbuf; i++)
                    if (memcmp(out[i], got1[i], c->size[i])) {
                        fail_detail(g, c->desc, "buffer %d: 1 thread and %d threads differ in bits",
                                    i, n_threads);
                        failed = 1;
                        break;
                    }
                free_got(c, got1);
            }
        }
        if (verbose)
            printf("  %-10s %-8s %-12s %s: err/tol %.3g%s\n", tg->name, c->op, c->fmt, c->desc, r,
                   failed ? "  FAIL" : "");
        record(g, r, failed);
        if (t == 0) ref_ok = 1;
        else free_got(c, got);
    }
    if (ref_ok) free_got(c, ref);
}

/* ---- error paths --------------------------------------------------------------------------------- */
struct errctx {
    struct target *tg;
    struct group  *g;
    int            fails;
};

/* op must be rejected: supports_op 0 (if sup0) and run() not OK with a message that contains
 * every word of words (space-separated, case-insensitive) */
static void expect_reject(struct errctx *e, const char *what, const struct bt_op *op, int sup0,
                          const char *words) {
    const struct bt_backend_i *be = e->tg->b.be;
    bt_err err = {0, ""};
    e->g->cases++;
    int bad = 0;
    if (sup0 && be->supports_op(e->tg->b.ctx, op)) {
        fail_detail(e->g, what, "supports_op returned 1");
        bad = 1;
    }
    bt_status st = be->run(e->tg->b.ctx, op, 1, &err);
    if (st == BT_OK) {
        fail_detail(e->g, what, "run() returned OK");
        bad = 1;
    } else if (!err.msg[0]) {
        fail_detail(e->g, what, "run() returned %d without a message", st);
        bad = 1;
    } else {
        char w[64];
        for (const char *p = words; p && *p;) {
            size_t n = strcspn(p, " ");
            snprintf(w, sizeof(w), "%.*s", (int)n, p);
            if (n && !has_word(err.msg, w)) {
                fail_detail(e->g, what, "the message does not name '%s': %s", w, err.msg);
                bad = 1;
            }
            p += n + (p[n] == ' ');
        }
        if (verbose) printf("  %-10s errors: %s -> %d \"%s\"\n", e->tg->name, what, st, err.msg);
    }
    if (bad) e->g->fails++;
}

static void check_errors(int t) {
    struct target *tg = &T[t];
    const struct bt_backend_i *be = tg->b.be;
    void *ctx = tg->b.ctx;
    struct errctx e = {tg, group_of(t, "errors", "-"), 0};
    bt_err err = {0, ""};
    bt_buf *bw = NULL, *ba = NULL, *bd = NULL;
    static float zero[16384];
    if (be->buf_alloc(ctx, sizeof(zero), BT_BUF_WEIGHTS, &bw, &err) ||
        be->buf_alloc(ctx, sizeof(zero), BT_BUF_ACT, &ba, &err) ||
        be->buf_alloc(ctx, sizeof(zero), BT_BUF_ACT, &bd, &err) ||
        be->buf_write(ctx, bw, 0, zero, sizeof(zero), &err) ||
        be->buf_write(ctx, ba, 0, zero, sizeof(zero), &err)) {
        fail_detail(e.g, "buffers", "%s", err.msg);
        e.g->cases++;
        e.g->fails++;
        goto out;
    }
    struct bt_tfmt f32 = bt_fmt(BT_TYPE_F32), tq2 = bt_fmt(BT_TYPE_TQ2_0);
    /* a valid MATMUL: F32 weights 4 x 256, 2 tokens; must run */
    struct bt_op ok = {0};
    ok.code = BT_OP_MATMUL;
    ok.src[0] = bt_view_of(bw, 0, f32, 4, 256);
    ok.src[1] = bt_view_of(ba, 0, f32, 2, 256);
    ok.dst = bt_view_of(bd, 0, f32, 2, 4);
    e.g->cases++;
    if (!be->supports_op(ctx, &ok) || be->run(ctx, &ok, 1, &err) != BT_OK) {
        fail_detail(e.g, "a valid matmul", "rejected: %s", err.msg);
        e.g->fails++;
    }
    struct bt_op o = ok;
    o.code = BT_OP_COUNT + 5;
    expect_reject(&e, "op code BT_OP_COUNT+5", &o, 1, NULL);
    o.code = 0;
    expect_reject(&e, "op code 0", &o, 1, NULL);
    o = ok;
    o.src[0].fmt = bt_fmt(BT_TYPE_I32);
    expect_reject(&e, "matmul on i32 weights", &o, 1, "matmul i32");
    o.src[0].fmt = (struct bt_tfmt){BT_TYPE_MTQ, 9, 256, 0};
    expect_reject(&e, "matmul on mtq with 9 planes", &o, 1, "matmul mtq");
    o.src[0].fmt = (struct bt_tfmt){BT_TYPE_MTQ, 2, 96, 0};
    expect_reject(&e, "matmul on mtq blocks of 96", &o, 1, "matmul mtq");
    o.src[0].fmt = bt_fmt(BT_TYPE_COUNT + 3);
    expect_reject(&e, "matmul on an unknown type", &o, 1, "matmul");
    o = ok;
    o.src[0].fmt = tq2;
    o.src[0].cols = o.src[1].cols = 100;
    expect_reject(&e, "tq2_0 with 100 columns", &o, 1, "matmul tq2_0");
    o = ok;
    o.src[1].cols = 128;
    expect_reject(&e, "matmul src1 cols != src0 cols", &o, 1, NULL);
    o = ok;
    o.dst.cols = 5;
    expect_reject(&e, "matmul dst cols != src0 rows", &o, 1, NULL);
    o = ok;
    o.dst.rows = 3;
    expect_reject(&e, "matmul dst rows != src1 rows", &o, 1, NULL);
    o = ok;
    o.src[0].cols = o.src[1].cols = 100;
    o.act = BT_ACT_Q8;
    expect_reject(&e, "q8 activations with 100 columns", &o, 1, NULL);
    o = ok;
    o.act = 7;
    expect_reject(&e, "matmul act 7", &o, 1, NULL);
    o = ok;
    o.src[1].off = sizeof(zero) - 1024; /* 2 x 256 floats = 2048 bytes: past the end */
    expect_reject(&e, "src1 view past the end of its buffer", &o, 0, NULL);
    o = ok;
    o.src[1].buf = NULL;
    expect_reject(&e, "matmul without src1", &o, 0, "matmul");
    /* ROPE: n_rot odd / > head_dim; ATTN: heads not a multiple; cache too short */
    struct bt_op r = {0};
    r.code = BT_OP_ROPE;
    r.src[0] = r.dst = bt_view_of(ba, 0, f32, 2, 128);
    r.src[1] = bt_view_of(bw, 0, f32, 1, 32);
    r.head_dim = 64;
    r.n_head = 2;
    r.n_rot = 64;
    e.g->cases++;
    if (!be->supports_op(ctx, &r) || be->run(ctx, &r, 1, &err) != BT_OK) {
        fail_detail(e.g, "a valid rope", "rejected: %s", err.msg);
        e.g->fails++;
    }
    r.n_rot = 66;
    r.src[1].cols = 33;
    expect_reject(&e, "rope n_rot > head_dim", &r, 1, NULL);
    r.n_rot = 31;
    r.src[1].cols = 15;
    expect_reject(&e, "rope odd n_rot", &r, 1, NULL);
    struct bt_op a = {0};
    a.code = BT_OP_ATTN;
    a.src[0] = bt_view_of(ba, 0, f32, 2, 6 * 8);
    a.src[1] = bt_view_of(bw, 0, f32, 8, 4 * 8);
    a.src[2] = bt_view_of(bw, 4096, f32, 8, 4 * 8);
    a.dst = bt_view_of(bd, 0, f32, 2, 6 * 8);
    a.n_head = 6;
    a.n_head_kv = 4;
    a.head_dim = 8;
    a.scale = 0.3f;
    expect_reject(&e, "attn 6 heads over 4 kv heads", &a, 1, NULL);
    a.n_head_kv = 3;
    a.src[1].cols = a.src[2].cols = 3 * 8;
    a.pos0 = 7; /* 7 + 2 positions in a cache of 8 */
    expect_reject(&e, "attn past the cache", &a, 1, NULL);
    /* GET_ROWS with an id out of range; KMEANS into f32 */
    int32_t ids[2] = {1, 4};
    struct bt_op gr = {0};
    gr.code = BT_OP_GET_ROWS;
    gr.src[0] = bt_view_of(bw, 0, f32, 4, 256);
    gr.dst = bt_view_of(bd, 0, f32, 2, 256);
    gr.ids = ids;
    expect_reject(&e, "get_rows with id 4 of 4 rows", &gr, 0, NULL);
    struct bt_op km = {0};
    km.code = BT_OP_KMEANS;
    km.src[0] = bt_view_of(ba, 0, f32, 10, 4);
    km.src[1] = bt_view_of(bw, 0, f32, 3, 4);
    km.dst = bt_view_of(bd, 0, f32, 10, 1);
    expect_reject(&e, "kmeans into an f32 dst", &km, 1, NULL);
    struct bt_op rn = {0};
    rn.code = BT_OP_RMSNORM;
    rn.src[0] = rn.dst = bt_view_of(ba, 0, f32, 2, 64);
    rn.src[1] = bt_view_of(bw, 0, f32, 1, 32);
    rn.eps = 1e-5f;
    expect_reject(&e, "rmsnorm weight of 32 for rows of 64", &rn, 1, NULL);
    /* a list whose second op is bad fails as a whole */
    struct bt_op two[2] = {ok, ok};
    two[1].code = BT_OP_COUNT + 5;
    e.g->cases++;
    err.msg[0] = 0;
    if (be->run(ctx, two, 2, &err) == BT_OK || !err.msg[0]) {
        fail_detail(e.g, "a list with a bad second op", "run() returned OK or no message");
        e.g->fails++;
    }
out:
    be->buf_free(ctx, bw);
    be->buf_free(ctx, ba);
    be->buf_free(ctx, bd);
}

/* ---- buffers and runs ----------------------------------------------------------------------------
 * partial buf_write / buf_read, out-of-range access, an empty run */
static void check_runs(int t) {
    struct target *tg = &T[t];
    const struct bt_backend_i *be = tg->b.be;
    void *ctx = tg->b.ctx;
    struct group *g = group_of(t, "buffers", "-");
    bt_err err = {0, ""};
    bt_buf *bw = NULL, *bx = NULL;
    enum { R = 8, C = 512 };
    static float w[R * C], x[C], tmp[C];
    for (int i = 0; i < R * C; i++) w[i] = (float)((i * 7919) % 13 - 6) * 0.125f;
    for (int i = 0; i < C; i++) x[i] = (float)((i * 31) % 17 - 8);
    g->cases += 3;
    if (be->buf_alloc(ctx, sizeof(w), BT_BUF_WEIGHTS, &bw, &err) ||
        be->buf_alloc(ctx, sizeof(x), BT_BUF_ACT, &bx, &err) ||
        be->buf_write(ctx, bw, 0, w, sizeof(w) / 2, &err) || /* in two parts */
        be->buf_write(ctx, bw, sizeof(w) / 2, (const char *)w + sizeof(w) / 2, sizeof(w) / 2, &err) ||
        be->buf_write(ctx, bx, 0, x, sizeof(x), &err)) {
        fail_detail(g, "alloc and write", "%s", err.msg);
        g->fails++;
        goto out;
    }
    if (be->buf_read(ctx, bw, 4 * 1000, tmp, 4 * 100, &err) || memcmp(tmp, w + 1000, 4 * 100)) {
        fail_detail(g, "read back 100 floats at float 1000", "%s", err.msg[0] ? err.msg : "wrong values");
        g->fails++;
    }
    err.msg[0] = 0;
    if (be->buf_read(ctx, bx, 8, tmp, sizeof(x), &err) == BT_OK || !err.msg[0]) {
        fail_detail(g, "buf_read past the end", "returned OK or no message");
        g->fails++;
    }
    if (be->run(ctx, NULL, 0, &err) != BT_OK) {
        fail_detail(g, "an empty run", "%s", err.msg);
        g->fails++;
    }
out:
    be->buf_free(ctx, bw);
    be->buf_free(ctx, bx);
}

/* ---- main ---------------------------------------------------------------------------------------- */
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv) {
    const char *dir = NULL, *only = NULL, *op = NULL, *opts[32];
    int n_opts = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backend") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--op") && i + 1 < argc) op = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc && n_opts < 32) opts[n_opts++] = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-v")) verbose = 1;
        else if (!strcmp(argv[i], "--quick")) bo_quick = 1;
        else if (!strcmp(argv[i], "--require") && i + 1 < argc) require = argv[++i];
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else {
            fprintf(stderr, "usage: %s PLUGIN_DIR [--backend NAME] [--op NAME] [-o NAME=VALUE]... "
                    "[-t THREADS] [-v] [--quick] [--require OP_OR_FMT,...]\n", argv[0]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: %s PLUGIN_DIR [--backend NAME] [--op NAME] [-v]\n", argv[0]);
        return 2;
    }
    if (op) {
        int known = 0;
        for (int i = 0; bo_ops[i]; i++) known |= !strcmp(bo_ops[i], op);
        if (!known && strcmp(op, "errors")) {
            fprintf(stderr, "unknown op '%s' (ops:", op);
            for (int i = 0; bo_ops[i]; i++) fprintf(stderr, " %s", bo_ops[i]);
            fprintf(stderr, " errors)\n");
            return 2;
        }
    }
    bk_log_quiet = !verbose;
    bk_set_threads(n_threads);
    double t_start = now();

    /* the plugins: cpu first (reference), the others sorted */
    char *names[64];
    int n_names = 0;
    DIR *d = opendir(dir);
    if (!d) { fprintf(stderr, "%s: cannot open the plugin folder\n", dir); return 1; }
    for (struct dirent *de; (de = readdir(d)) && n_names < 64;) {
        size_t n = strlen(de->d_name);
        if (n > 17 && !strncmp(de->d_name, "libbt-backend-", 14) && !strcmp(de->d_name + n - 3, ".so")) {
            names[n_names] = strndup(de->d_name + 14, n - 17);
            if (strcmp(names[n_names], "cpu")) n_names++;
            else free(names[n_names]);
        }
    }
    closedir(d);
    qsort(names, (size_t)n_names, sizeof(names[0]), cmp_str);
    char path[4096], why[1200];
    snprintf(T[0].name, sizeof(T[0].name), "cpu");
    snprintf(path, sizeof(path), "%s/libbt-backend-cpu.so", dir);
    if (bk_load_ex(path, opts, n_opts, &T[0].b, why, sizeof(why)) != BK_OK) {
        printf("reference backend cpu: %s: %s\n", path, why);
        return 1;
    }
    n_targets = 1;
    int found_only = only && !strcmp(only, "cpu");
    for (int i = 0; i < n_names; i++) {
        if ((only && strcmp(only, names[i])) || n_targets == MAX_TARGETS) { free(names[i]); continue; }
        found_only = 1;
        struct target *tg = &T[n_targets++];
        snprintf(tg->name, sizeof(tg->name), "%s", names[i]);
        snprintf(path, sizeof(path), "%s/libbt-backend-%s.so", dir, names[i]);
        free(names[i]);
        if (bk_load_ex(path, opts, n_opts, &tg->b, why, sizeof(why)) != BK_OK)
            printf("backend %-10s skipped: %s\n", tg->name, why);
        else
            tg->ok = 1;
    }
    if (only && !found_only) printf("backend %-10s skipped: no libbt-backend-%s.so in %s\n", only, only, dir);
    if (only && strcmp(only, "cpu")) { /* the one backend asked for is skipped: nothing to run */
        int any = 0;
        for (int t = 1; t < n_targets; t++) any |= T[t].ok;
        if (!any) {
            for (int t = 0; t < n_targets; t++) bk_unload(&T[t].b);
            bk_shutdown();
            printf("nothing to test (%.1f s)\n", now() - t_start);
            return 0;
        }
    }
    for (int t = 0; t < n_targets; t++) {
        struct target *tg = &T[t];
        if (t == 0) tg->ok = 1;
        if (!tg->ok) continue;
        tg->cpu = !strncmp(tg->name, "cpu", 3);
        if (strcmp(tg->b.desc->name, tg->name)) {
            printf("backend %-10s FAIL: the descriptor names itself '%s'\n", tg->name, tg->b.desc->name);
            any_fail = 1;
        }
        bt_err err = {0, ""};
        if (tg->b.be->device_info(tg->b.ctx, &tg->di) != BT_OK) {
            printf("backend %-10s device_info failed: %s\n", tg->name, err.msg);
            any_fail = 1;
        }
        printf("backend %-10s %s: %s (%.0f MiB%s)\n", tg->name, t ? "under test" : "reference",
               tg->di.name, (double)tg->di.mem_bytes / 1048576.0, tg->di.host_memory ? ", host memory" : "");
    }

    if (!op || !strcmp(op, "errors"))
        for (int t = 0; t < n_targets; t++)
            if (T[t].ok) {
                check_errors(t);
                check_runs(t);
            }
    if (!op || strcmp(op, "errors")) bo_generate(op, one_case, NULL);

    /* report: the reference (against the C models) first, then each backend (against it) */
    for (int t = 0; t < n_targets; t++) {
        if (!T[t].ok) continue;
        printf("\n%s (%s), %.2f s in the backend:\n", T[t].name,
               t ? "against cpu" : "reference, against the plain-C models", T[t].seconds);
        for (int i = 0; i < n_groups; i++) {
            struct group *g = &G[i];
            if (g->target != t) continue;
            if (g->unsup && !g->cases) {
                printf("  %-10s %-9s %-13s %4d cases  not supported (optional)\n", T[t].name,
                       g->op, g->fmt, g->unsup);
                continue;
            }
            printf("  %-10s %-9s %-13s %4d cases  max err/tol %-9.3g %s\n", T[t].name, g->op,
                   g->fmt, g->cases, g->maxr, g->fails || g->unsup ? "FAIL" : "PASS");
            if (g->unsup) g->fails++;
            if (g->fails) any_fail = 1;
        }
    }
    for (int t = 0; t < n_targets; t++) bk_unload(&T[t].b);
    bk_shutdown();
    free(G);
    printf("\n%s (%.1f s)\n", any_fail ? "FAILED" : "all passed", now() - t_start);
    return any_fail ? 1 : 0;
}
