/* bt_calib.c - calibration: accumulate per linear-layer input Gram matrices (f64) through the
 * model's forward hook, write/read the BTCAL1 file described in bt_calib.h. */
#include "bt_calib.h"
#include "bt_model_int.h"
#include "bt_types.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- accumulation ------------------------------------------------------------------------------ */
struct cal_acc {
    int32_t  n;     /* input features */
    uint64_t count; /* rows seen */
    double  *G;     /* (n x n) upper triangle used; NULL if diag only */
    double  *diag;  /* (n) */
};

struct cal_state {
    struct cal_acc *acc;       /* (n_layer x BT_HOOK_COUNT) */
    int             n_layer;   /* layers */
    int             diag_only; /* no full matrices */
    int             failed;    /* 1: dimension mismatch seen, 2: out of memory */
};

static void cal_hook(void *user, int layer, int which, const float *X, int ntok, int dim) {
    struct cal_state *s = user;
    if (layer < 0 || layer >= s->n_layer || which < 0 || which >= BT_HOOK_COUNT) return;
    struct cal_acc *a = &s->acc[layer * BT_HOOK_COUNT + which];
    if (a->n != dim) { s->failed = 1; return; }
    for (int t = 0; t < ntok; t++)
        for (int i = 0; i < dim; i++) {
            double v = X[(int64_t)t * dim + i];
            a->diag[i] += v * v;
        }
    a->count += (uint64_t)ntok;
    if (a->G && bt_gram_accumulate(a->G, dim, X, ntok) != BT_OK) s->failed = 2;
}

/* ---- writing ------------------------------------------------------------------------------------ */
static void entry_names(int layer, int which, char *buf, size_t n) {
    switch (which) {
    case BT_HOOK_ATTN_IN:
        snprintf(buf, n, "blk.%d.attn_q.weight,blk.%d.attn_k.weight,blk.%d.attn_v.weight", layer,
                 layer, layer);
        break;
    case BT_HOOK_ATTN_OUT: snprintf(buf, n, "blk.%d.attn_output.weight", layer); break;
    case BT_HOOK_FFN_IN:
        snprintf(buf, n, "blk.%d.ffn_gate.weight,blk.%d.ffn_up.weight", layer, layer);
        break;
    default: snprintf(buf, n, "blk.%d.ffn_down.weight", layer); break;
    }
}

static int put(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : 1; }

static int write_entry(FILE *f, const struct cal_acc *a, const char *names, float *row) {
    uint32_t nl = (uint32_t)strlen(names), n = (uint32_t)a->n, storage = a->G ? 1u : 0u;
    int bad = put(f, &nl, 4) | put(f, names, nl) | put(f, &n, 4) | put(f, &storage, 4) |
              put(f, &a->count, 8) | put(f, a->diag, (size_t)n * 8);
    for (uint32_t i = 0; a->G && i < n && !bad; i++) {
        for (uint32_t j = 0; j < n; j++)
            row[j] = (float)(j >= i ? a->G[(size_t)i * n + j] : a->G[(size_t)j * n + i]);
        bad |= put(f, row, (size_t)n * 4);
    }
    return bad;
}

static bt_status cal_write(const struct cal_state *s, uint64_t ntok, uint32_t nwin, uint32_t ctx,
                           const char *path, bt_err *err) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    float *row = NULL;
    int32_t maxn = 0;
    for (int e = 0; e < s->n_layer * BT_HOOK_COUNT; e++)
        if (s->acc[e].n > maxn) maxn = s->acc[e].n;
    row = malloc((size_t)maxn * sizeof *row);
    if (!tmp || !row) { free(tmp); free(row); return bt_err_set(err, BT_E_NOMEM, "calibrate: out of memory"); }
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = NULL;
    bt_status st = bt_file_make_parents(path, err);
    if (st != BT_OK) goto done;
    f = fopen(tmp, "wb");
    if (!f) {
        st = bt_err_set(err, BT_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    uint32_t ver = 1, ne = (uint32_t)(s->n_layer * BT_HOOK_COUNT);
    int bad = put(f, BT_CALIB_MAGIC, 8) | put(f, &ver, 4) | put(f, &ne, 4) | put(f, &ntok, 8) |
              put(f, &nwin, 4) | put(f, &ctx, 4);
    for (int l = 0; l < s->n_layer && !bad; l++)
        for (int w = 0; w < BT_HOOK_COUNT && !bad; w++) {
            char names[256];
            entry_names(l, w, names, sizeof names);
            bad |= write_entry(f, &s->acc[l * BT_HOOK_COUNT + w], names, row);
        }
    bad |= fclose(f) != 0;
    if (bad) st = bt_err_set(err, BT_E_IO, "%s: write failed", tmp);
    else if (rename(tmp, path) != 0)
        st = bt_err_set(err, BT_E_IO, "%s: cannot rename into place: %s", path, strerror(errno));
    if (st) remove(tmp);
done:
    free(tmp);
    free(row);
    return st;
}

/* ---- public: calibrate --------------------------------------------------------------------------- */
static void cal_free(struct cal_state *s) {
    for (int e = 0; s->acc && e < s->n_layer * BT_HOOK_COUNT; e++) {
        free(s->acc[e].G);
        free(s->acc[e].diag);
    }
    free(s->acc);
}

static bt_status cal_init(bt_model *m, struct cal_state *s, int diag_only, bt_err *err) {
    const struct bt_model_hparams *hp = &m->hp;
    s->n_layer   = hp->n_layer;
    s->diag_only = diag_only;
    s->acc       = calloc((size_t)hp->n_layer * BT_HOOK_COUNT, sizeof *s->acc);
    if (!s->acc) return bt_err_set(err, BT_E_NOMEM, "calibrate: out of memory");
    int32_t dims[BT_HOOK_COUNT] = {hp->n_embd, hp->n_head * hp->head_dim, hp->n_embd, hp->n_ff};
    for (int e = 0; e < hp->n_layer * BT_HOOK_COUNT; e++) {
        struct cal_acc *a = &s->acc[e];
        a->n    = dims[e % BT_HOOK_COUNT];
        a->diag = calloc((size_t)a->n, sizeof(double));
        a->G    = diag_only ? NULL : calloc((size_t)a->n * a->n, sizeof(double));
        if (!a->diag || (!diag_only && !a->G))
            return bt_err_set(err, BT_E_NOMEM, "calibrate: out of memory for %d x %d Gram "
                              "matrices (try diag_only)", a->n, a->n);
    }
    return BT_OK;
}

bt_status bt_calibrate_ids(bt_model *m, const int32_t *ids, int64_t n,
                           const struct bt_calib_opts *o, const char *out_path, bt_err *err) {
    struct bt_calib_opts co = {0};
    if (o) co = *o;
    int ctx = co.ctx ? co.ctx : 512;
    if (ctx < 2 || ctx > m->n_ctx)
        return bt_err_set(err, BT_E_INVAL, "calibrate: ctx %d outside [2, %d] (model context)",
                          ctx, m->n_ctx);
    if (n <= 0) return bt_err_set(err, BT_E_INVAL, "calibrate: no text tokens");
    if (m->hp.bos_id < 0) return bt_err_set(err, BT_E_INVAL, "calibrate: the model has no BOS id");
    struct cal_state s = {0};
    bt_status st = cal_init(m, &s, co.diag_only, err);
    int32_t *buf = malloc((size_t)ctx * sizeof *buf);
    if (!st && !buf) st = bt_err_set(err, BT_E_NOMEM, "calibrate: out of memory");
    uint64_t ntok = 0;
    uint32_t nwin = 0;
    bt_model_hook_fn old = m->hook;
    void *old_user = m->hook_user;
    bt_model_set_hook(m, cal_hook, &s);
    int64_t n_win = (n + ctx - 2) / (ctx - 1);
    if (co.max_windows > 0 && n_win > co.max_windows) n_win = co.max_windows;
    struct bt_progress pg;
    bt_progress_start(&pg, "calibrate");
    for (int64_t off = 0; !st && off < n; off += ctx - 1) {
        int wl = n - off < ctx - 1 ? (int)(n - off) : ctx - 1;
        buf[0] = m->hp.bos_id;
        memcpy(buf + 1, ids + off, (size_t)wl * sizeof *buf);
        bt_model_reset(m);
        st = bt_model_forward(m, buf, wl + 1, 0, NULL, 0, err);
        ntok += (uint64_t)wl + 1;
        nwin++;
        if (!st) bt_progress_step(&pg, nwin, (double)n_win, "window %u/%lld, %llu tokens", nwin, (long long)n_win,
                                  (unsigned long long)ntok);
        if (co.max_windows > 0 && (int)nwin >= co.max_windows) break;
    }
    bt_progress_end(&pg);
    bt_model_set_hook(m, old, old_user);
    if (!st && s.failed == 2) st = bt_err_set(err, BT_E_NOMEM, "calibrate: out of memory");
    if (!st && s.failed == 1) st = bt_err_set(err, BT_E_INVAL, "calibrate: activation size mismatch");
    if (!st) st = cal_write(&s, ntok, nwin, (uint32_t)ctx, out_path, err);
    cal_free(&s);
    free(buf);
    return st;
}

bt_status bt_calibrate(bt_model *m, const char *text_path, const struct bt_calib_opts *o,
                       const char *out_path, bt_err *err) {
    char *text = NULL;
    size_t len = 0;
    bt_status st = bt_eval_read_text(text_path, &text, &len, err);
    if (st) return st;
    int32_t *ids = NULL;
    int64_t n = 0;
    st = bt_eval_tokenize(m, text, len, o ? o->tokenize : 0, &ids, &n, err);
    free(text);
    if (!st) st = bt_calibrate_ids(m, ids, n, o, out_path, err);
    free(ids);
    return st;
}
