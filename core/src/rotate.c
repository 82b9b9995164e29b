/* rotate.c - [quantize] rotate: a reader wrapper that serves a Llama model with an orthogonal
 * rotation Q of the residual stream (and R per attention head on v / attn_output) folded into
 * its weights, so quantization sees outlier-free weights while the model computes the same
 * function with no extra ops (QuaRot/SpinQuant style); plus the matching transform of the
 * calibration Hessians and column weights. Column-vector convention, x' = Q^T x:
 *   q/k/gate/up  W D Q            v  Rb^T W D Q      attn_output  Q^T W Rb     ffn_down  Q^T W
 *   token_embd   E Q              output  W D_f Q (tied: E D_f Q, appended)    norms  -> ones
 * The matrices and their application are in rotate_orth.c. */
#include "rotate.h"
#include "convert.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_ENTRY 0xffffffffu /* no calibration entry */

/* ---- the rotated model ------------------------------------------------------------------------ */
enum role { R_PASS, R_NORM, R_IN, R_V, R_O, R_DOWN, R_EMBD, R_OUT };

struct rtensor {
    struct bt_tensor t;    /* as served (names borrowed from the inner reader, or static) */
    uint32_t         src;  /* inner tensor the data comes from */
    int              role; /* enum role */
    int64_t          norm; /* row of rot->norms folded into the columns, -1: none */
    float           *data; /* (rows x cols) rotated, from the first read until release (mu) */
};

struct hslot {             /* a rotated calibration matrix, by calibration entry */
    int64_t entry, n;
    float  *G;             /* (n x n) */
};

struct bt_rotation {
    struct bt_reader *inner;
    int               kind;
    uint64_t          seed;
    int64_t           n_embd, n_layer, n_head, n_head_kv, head_dim;
    struct bt_orth    Q, R;       /* residual stream (n_embd), per head (head_dim) */
    float            *norms;      /* (2 n_layer + 1) x n_embd: attn_norm, ffn_norm per layer, output_norm */
    float            *ones;       /* (n_embd) */
    struct rtensor   *t;          /* (n_t) served tensors: the inner ones, then output.weight if tied */
    uint32_t          n_t, n_kv;  /* served tensors, inner key/values */
    int               untied;     /* output.weight appended */
    pthread_mutex_t   mu;
    /* calibration hooks: the originals, rotated on the way through */
    struct bt_convert_args *args;
    const float *(*colw0)(void *ctx, const char *name, int64_t cols);
    bt_status (*hess0)(void *ctx, const char *tensor, int64_t cols, int want, const float **H,
                       uint32_t *entry, bt_err *err);
    const char *(*entry0)(void *ctx, uint32_t i);
    bt_status (*done0)(void *ctx, const char *tensor, const struct bt_tfmt *fmt, const void *data,
                       uint64_t nbytes, bt_err *err);
    void             *ctx0;
    struct hslot      slot[4];
    int               next_slot;
    float            *colw;       /* (colw_cap) last column weights returned */
    int64_t           colw_cap;
};

/* role of a GGUF tensor name; *norm: the norms row folded into its columns (-1: none); -1 if
 * the name is not part of a Llama model */
static int role_of(const char *name, int64_t n_layer, int64_t *norm) {
    *norm = -1;
    if (!strcmp(name, "token_embd.weight")) return R_EMBD;
    if (!strcmp(name, "output_norm.weight")) return R_NORM;
    if (!strcmp(name, "rope_freqs.weight")) return R_PASS;
    if (!strcmp(name, "output.weight")) { *norm = 2 * n_layer; return R_OUT; }
    int l = -1, end = 0;
    char part[32];
    if (sscanf(name, "blk.%d.%31[a-z_].weight%n", &l, part, &end) != 2 || name[end] || l < 0 || l >= n_layer)
        return -1;
    static const struct { const char *part; int role, norm; } map[] = {
        {"attn_q", R_IN, 0},   {"attn_k", R_IN, 0}, {"attn_v", R_V, 0},   {"attn_output", R_O, -1},
        {"ffn_gate", R_IN, 1}, {"ffn_up", R_IN, 1}, {"ffn_down", R_DOWN, -1},
        {"attn_norm", R_NORM, -1}, {"ffn_norm", R_NORM, -1},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(part, map[i].part)) {
            if (map[i].norm >= 0) *norm = 2 * l + map[i].norm;
            return map[i].role;
        }
    return -1;
}

/* W (rows x cols, the inner tensor) -> the rotated tensor, in place */
static bt_status rotate_tensor(const struct bt_rotation *R, const struct rtensor *x, float *W, bt_err *err) {
    int64_t rows = bt_tensor_rows(&x->t), cols = bt_tensor_cols(&x->t), hd = R->head_dim;
    bt_status st = BT_OK;
    if (x->norm >= 0) {
        const float *g = R->norms + x->norm * R->n_embd;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) W[r * cols + c] *= g[c];
    }
    switch (x->role) {
    case R_IN: case R_EMBD: case R_OUT:
        return bt_orth_apply(&R->Q, W, rows, cols, 0, err);
    case R_V:
        st = bt_orth_apply(&R->Q, W, rows, cols, 0, err);
        for (int64_t h = 0; h < R->n_head_kv && !st; h++) st = bt_orth_apply(&R->R, W + h * hd * cols, cols, cols, 1, err);
        return st;
    case R_O:
        for (int64_t h = 0; h < R->n_head && !st; h++) st = bt_orth_apply(&R->R, W + h * hd, rows, cols, 0, err);
        return st ? st : bt_orth_apply(&R->Q, W, cols, cols, 1, err);
    case R_DOWN:
        return bt_orth_apply(&R->Q, W, cols, cols, 1, err);
    default:
        return bt_err_set(err, BT_E_INVAL, "rotate: %s is not rotated", x->t.name);
    }
}

/* the rotated data of x, computed once (mu held) */
static bt_status ensure(struct bt_rotation *R, struct rtensor *x, bt_err *err) {
    pthread_mutex_lock(&R->mu);
    bt_status st = BT_OK;
    if (!x->data) {
        int64_t rows = bt_tensor_rows(&x->t), cols = bt_tensor_cols(&x->t);
        float *W = malloc((size_t)(rows * cols) * sizeof(float));
        if (!W) st = bt_err_set(err, BT_E_NOMEM, "%s: out of memory for the rotated tensor", x->t.name);
        else st = bt_reader_read_f32(R->inner, x->src, 0, rows, W, err);
        if (!st) st = rotate_tensor(R, x, W, err);
        bt_reader_release(R->inner, x->src);
        if (st) free(W);
        else x->data = W;
    }
    pthread_mutex_unlock(&R->mu);
    return st;
}

/* ---- reader interface -------------------------------------------------------------------------- */
static void hooks_restore(struct bt_rotation *R);

static void rot_close(void *ctx) {
    struct bt_rotation *R = ctx;
    hooks_restore(R);
    for (uint32_t i = 0; R->t && i < R->n_t; i++) free(R->t[i].data);
    for (int k = 0; k < 4; k++) free(R->slot[k].G);
    free(R->t);
    free(R->norms);
    free(R->ones);
    free(R->colw);
    bt_orth_free(&R->Q);
    bt_orth_free(&R->R);
    pthread_mutex_destroy(&R->mu);
    bt_reader_close(R->inner);
}

static uint32_t rot_tensor_count(void *ctx) { return ((struct bt_rotation *)ctx)->n_t; }

static bt_status rot_tensor_get(void *ctx, uint32_t i, struct bt_tensor *out, bt_err *err) {
    struct bt_rotation *R = ctx;
    if (i >= R->n_t) return bt_err_set(err, BT_E_INVAL, "rotate: tensor index %u out of range", i);
    *out = R->t[i].t;
    return BT_OK;
}

static uint32_t rot_kv_count(void *ctx) { return ((struct bt_rotation *)ctx)->n_kv + 2; }

static bt_status rot_kv_get(void *ctx, uint32_t i, struct bt_kv *out) {
    struct bt_rotation *R = ctx;
    if (i < R->n_kv) {
        bt_status st = R->inner->i->kv_get(R->inner->ctx, i, out);
        if (!st && R->untied && out->key && !strcmp(out->key, "bt.tie_word_embeddings")) out->v.u = 0;
        return st;
    }
    if (i == R->n_kv) {
        const char *k = R->Q.dense ? "orthogonal" : "hadamard";
        *out = (struct bt_kv){.key = "bt.rotation", .type = BT_KV_STRING, .n = strlen(k), .v.s = k};
        return BT_OK;
    }
    if (i == R->n_kv + 1) {
        *out = (struct bt_kv){.key = "bt.rotation_seed", .type = BT_KV_U64, .v.u = R->seed};
        return BT_OK;
    }
    return BT_E_INVAL;
}

static bt_status rot_read_f32(void *ctx, uint32_t i, int64_t row0, int64_t nrows, float *dst, bt_err *err) {
    struct bt_rotation *R = ctx;
    if (i >= R->n_t) return bt_err_set(err, BT_E_INVAL, "rotate: tensor index %u out of range", i);
    struct rtensor *x = &R->t[i];
    int64_t rows = bt_tensor_rows(&x->t), cols = bt_tensor_cols(&x->t);
    if (row0 < 0 || nrows < 0 || row0 + nrows > rows)
        return bt_err_set(err, BT_E_INVAL, "%s: rows %lld..%lld out of range", x->t.name, (long long)row0,
                          (long long)(row0 + nrows));
    if (x->role == R_PASS) return bt_reader_read_f32(R->inner, x->src, row0, nrows, dst, err);
    if (x->role == R_NORM) {
        for (int64_t k = 0; k < nrows * cols; k++) dst[k] = 1.0f;
        return BT_OK;
    }
    bt_status st = ensure(R, x, err);
    if (!st) memcpy(dst, x->data + row0 * cols, (size_t)(nrows * cols) * sizeof(float));
    return st;
}

static void rot_release(void *ctx, uint32_t i) {
    struct bt_rotation *R = ctx;
    if (i >= R->n_t) return;
    struct rtensor *x = &R->t[i];
    pthread_mutex_lock(&R->mu);
    free(x->data);
    x->data = NULL;
    pthread_mutex_unlock(&R->mu);
    bt_reader_release(R->inner, x->src);
}

static const struct bt_reader_i rot_iface = {
    .struct_size = sizeof(struct bt_reader_i),
    .close = rot_close, .tensor_count = rot_tensor_count, .tensor_get = rot_tensor_get,
    .kv_count = rot_kv_count, .kv_get = rot_kv_get, .read_f32 = rot_read_f32, .release = rot_release,
};

const struct bt_rotation *bt_rotate_of(const struct bt_reader *r) {
    return r && r->i == &rot_iface ? r->ctx : NULL;
}

/* ---- setup ----------------------------------------------------------------------------------- */
static bt_status kv_int(struct bt_reader *r, const char *key, int64_t def, int64_t *out, bt_err *err) {
    struct bt_kv tmp;
    const struct bt_kv *kv = bt_reader_kv(r, key, &tmp);
    if (!kv) {
        if (def < 0) return bt_err_set(err, BT_E_UNSUPPORTED, "rotate: metadata key '%s' missing (rotate needs a llama model)", key);
        *out = def;
        return BT_OK;
    }
    switch (kv->type) {
    case BT_KV_U8: case BT_KV_U16: case BT_KV_U32: case BT_KV_U64: *out = (int64_t)kv->v.u; break;
    case BT_KV_I8: case BT_KV_I16: case BT_KV_I32: case BT_KV_I64: *out = kv->v.i; break;
    default: return bt_err_set(err, BT_E_UNSUPPORTED, "rotate: metadata key '%s' is not one integer (per-layer values are not supported)", key);
    }
    if (*out <= 0) return bt_err_set(err, BT_E_UNSUPPORTED, "rotate: metadata key '%s' = %lld", key, (long long)*out);
    return BT_OK;
}

static bt_status read_hparams(struct bt_rotation *R, bt_err *err) {
    struct bt_kv tmp;
    const struct bt_kv *arch = bt_reader_kv(R->inner, "general.architecture", &tmp);
    if (!arch || arch->type != BT_KV_STRING || strcmp(arch->v.s, "llama") != 0)
        return bt_err_set(err, BT_E_UNSUPPORTED, "rotate: general.architecture is '%s', rotate supports llama models only",
                          arch && arch->type == BT_KV_STRING ? arch->v.s : "(missing)");
    bt_status st;
    int64_t vl = 0;
    if ((st = kv_int(R->inner, "llama.embedding_length", -1, &R->n_embd, err)) ||
        (st = kv_int(R->inner, "llama.block_count", -1, &R->n_layer, err)) ||
        (st = kv_int(R->inner, "llama.attention.head_count", -1, &R->n_head, err)) ||
        (st = kv_int(R->inner, "llama.attention.head_count_kv", R->n_head, &R->n_head_kv, err)) ||
        (st = kv_int(R->inner, "llama.attention.key_length", R->n_embd / R->n_head, &R->head_dim, err)) ||
        (st = kv_int(R->inner, "llama.attention.value_length", R->head_dim, &vl, err)))
        return st;
    if (vl != R->head_dim || R->n_head % R->n_head_kv != 0 || R->n_layer > (1 << 20))
        return bt_err_set(err, BT_E_UNSUPPORTED, "rotate: unsupported attention shape (heads %lld/%lld, key_length %lld, "
                          "value_length %lld)", (long long)R->n_head, (long long)R->n_head_kv, (long long)R->head_dim, (long long)vl);
    return BT_OK;
}

/* 1 if t has the shape its role needs */
static int shape_ok(const struct bt_rotation *R, int role, const struct bt_tensor *t) {
    int64_t E = R->n_embd, hd = R->head_dim;
    if (role == R_NORM) return t->n_dims == 1 && t->shape[0] == E;
    if (role == R_PASS) return 1;
    if (t->n_dims != 2) return 0;
    switch (role) {
    case R_V: return t->shape[1] == E && t->shape[0] == R->n_head_kv * hd;
    case R_O: return t->shape[0] == E && t->shape[1] == R->n_head * hd;
    case R_DOWN: return t->shape[0] == E;
    default: return t->shape[1] == E;
    }
}

/* classify every inner tensor, load the norm weights, append output.weight if tied */
static bt_status plan_tensors(struct bt_rotation *R, bt_err *err) {
    uint32_t n = R->inner->i->tensor_count(R->inner->ctx);
    int64_t E = R->n_embd, n_norms = 2 * R->n_layer + 1, embd = -1, have_out = 0;
    R->t = calloc((size_t)n + 1, sizeof(*R->t));
    R->norms = malloc((size_t)(n_norms * E) * sizeof(float));
    R->ones = malloc((size_t)E * sizeof(float));
    char *seen = calloc((size_t)n_norms, 1);
    bt_status st = BT_OK;
    if (!R->t || !R->norms || !R->ones || !seen) { free(seen); return bt_err_set(err, BT_E_NOMEM, "rotate: out of memory"); }
    for (int64_t k = 0; k < E; k++) R->ones[k] = 1.0f;
    for (uint32_t i = 0; i < n && !st; i++) {
        struct rtensor *x = &R->t[i];
        if ((st = R->inner->i->tensor_get(R->inner->ctx, i, &x->t, err))) break;
        x->src = i;
        x->role = role_of(x->t.name, R->n_layer, &x->norm);
        if (x->role < 0) {
            st = bt_err_set(err, BT_E_UNSUPPORTED, "rotate: tensor '%s' is not part of a Llama model (rotate needs "
                            "token_embd, blk.N.attn_{q,k,v,output,norm}, blk.N.ffn_{gate,up,down,norm}, output_norm, "
                            "output)", x->t.name);
            break;
        }
        if (!shape_ok(R, x->role, &x->t)) {
            st = bt_err_set(err, BT_E_UNSUPPORTED, "rotate: tensor '%s' has an unexpected shape {%lld, %lld} (%u-D) for "
                            "embedding_length %lld, heads %lld/%lld of %lld", x->t.name, (long long)x->t.shape[0],
                            (long long)(x->t.n_dims > 1 ? x->t.shape[1] : 0), x->t.n_dims, (long long)R->n_embd,
                            (long long)R->n_head, (long long)R->n_head_kv, (long long)R->head_dim);
            break;
        }
        if (x->role == R_EMBD) embd = i;
        if (x->role == R_OUT) have_out = 1;
        if (x->role == R_NORM) { /* row: attn_norm 2l, ffn_norm 2l+1, output_norm 2L */
            int l = 0;
            int64_t row = sscanf(x->t.name, "blk.%d.", &l) == 1 ? 2 * l + (strstr(x->t.name, "ffn_norm") != NULL) : 2 * R->n_layer;
            if ((st = bt_reader_read_f32(R->inner, i, 0, 1, R->norms + row * E, err))) break;
            seen[row] = 1;
            x->t.data = R->ones;
        } else if (x->role != R_PASS) {
            x->t.data = NULL;
        }
        if (x->role != R_PASS) {
            x->t.fmt = (struct bt_tfmt){BT_TYPE_F32, 0, 0, 0};
            x->t.nbytes = (uint64_t)bt_tensor_numel(&x->t) * sizeof(float);
        }
    }
    for (int64_t k = 0; k < n_norms && !st; k++)
        if (!seen[k]) {
            char nm[64];
            if (k == 2 * R->n_layer) snprintf(nm, sizeof(nm), "output_norm.weight");
            else snprintf(nm, sizeof(nm), "blk.%lld.%s_norm.weight", (long long)(k / 2), k % 2 ? "ffn" : "attn");
            st = bt_err_set(err, BT_E_UNSUPPORTED, "rotate: tensor '%s' missing (its weight is folded into the next layer)", nm);
        }
    free(seen);
    if (st) return st;
    R->n_t = n;
    if (!have_out) { /* tied: output.weight = E D_f Q, so token_embd rotates on its own */
        if (embd < 0) return bt_err_set(err, BT_E_UNSUPPORTED, "rotate: tensor 'token_embd.weight' missing");
        struct rtensor *x = &R->t[n];
        *x = R->t[embd];
        x->t.name = "output.weight";
        x->t.src_name = "lm_head.weight";
        x->role = R_OUT;
        x->norm = 2 * R->n_layer;
        R->n_t = n + 1;
        R->untied = 1;
    }
    return BT_OK;
}

static void hooks_install(struct bt_rotation *R, struct bt_convert_args *a);

bt_status bt_rotate_wrap(struct bt_reader **r, int kind, uint64_t seed, struct bt_convert_args *hooks,
                         bt_err *err) {
    if (kind != BT_ROTATE_HADAMARD && kind != BT_ROTATE_DENSE)
        return bt_err_set(err, BT_E_INVAL, "rotate: unknown rotation kind %d", kind);
    if (hooks && hooks->sequential) /* it would run the original model on rotated tensors */
        return bt_err_set(err, BT_E_UNSUPPORTED, "[quantize] rotate does not work with a sequential calibration yet "
                          "(use calibration = FILE)");
    struct bt_rotation *R = calloc(1, sizeof(*R));
    struct bt_reader *w = calloc(1, sizeof(*w));
    if (!R || !w) { free(R); free(w); return bt_err_set(err, BT_E_NOMEM, "rotate: out of memory"); }
    pthread_mutex_init(&R->mu, NULL);
    R->inner = *r;
    R->kind = kind;
    R->seed = seed;
    R->n_kv = R->inner->i->kv_count(R->inner->ctx);
    bt_status st = read_hparams(R, err);
    if (!st) st = plan_tensors(R, err);
    if (!st) st = bt_orth_init(&R->Q, kind, seed, 1, R->n_embd, err);
    if (!st) st = bt_orth_init(&R->R, kind, seed, 2, R->head_dim, err);
    if (st) {
        R->inner = NULL; /* the caller still owns it */
        free(R->t); free(R->norms); free(R->ones);
        bt_orth_free(&R->Q); bt_orth_free(&R->R);
        pthread_mutex_destroy(&R->mu);
        free(R); free(w);
        return st;
    }
    w->entry = (*r)->entry;
    w->i = &rot_iface;
    w->ctx = R;
    if (hooks) hooks_install(R, hooks);
    *r = w;
    return BT_OK;
}

/* ---- Hessians and column weights ------------------------------------------------------------ */
bt_status bt_rotate_hessian(const struct bt_rotation *R, const char *tensor_name, const float *G, int64_t n,
                            float *out, bt_err *err) {
    int64_t norm, hd = R->head_dim;
    int role = role_of(tensor_name, R->n_layer, &norm);
    int64_t want = role == R_O ? R->n_head * hd : role == R_DOWN ? -1 : R->n_embd;
    if (role != R_IN && role != R_V && role != R_OUT && role != R_O && role != R_DOWN)
        return bt_err_set(err, BT_E_INVAL, "%s: rotate has no input transform for this tensor", tensor_name);
    if (want > 0 && n != want)
        return bt_err_set(err, BT_E_INVAL, "%s: calibration matrix is %lld x %lld, the tensor's input has %lld",
                          tensor_name, (long long)n, (long long)n, (long long)want);
    if (out != G) memcpy(out, G, (size_t)(n * n) * sizeof(float));
    if (role == R_DOWN) return BT_OK;
    bt_status st = BT_OK;
    if (role == R_O) {
        for (int64_t h = 0; h < R->n_head && !st; h++) {
            st = bt_orth_apply(&R->R, out + h * hd * n, n, n, 1, err);
            if (!st) st = bt_orth_apply(&R->R, out + h * hd, n, n, 0, err);
        }
        return st;
    }
    const float *g = R->norms + norm * R->n_embd;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            float gi = g[i] != 0 ? 1.0f / g[i] : 0.0f, gj = g[j] != 0 ? 1.0f / g[j] : 0.0f;
            out[i * n + j] *= gi * gj;
        }
    st = bt_orth_apply(&R->Q, out, n, n, 1, err);
    return st ? st : bt_orth_apply(&R->Q, out, n, n, 0, err);
}

/* the rotated input matrix of tensor (NULL when the calibration has no entry for it), cached by
 * calibration entry (tensors sharing an input share it), a few entries at a time */
static bt_status hess_rotated(struct bt_rotation *R, const char *tensor, int64_t n, const float **out,
                              uint32_t *entry, bt_err *err) {
    uint32_t e = NO_ENTRY;
    const float *G = NULL;
    *out = NULL;
    bt_status st = R->hess0(R->ctx0, tensor, n, 0, NULL, &e, err);
    if (entry && e != NO_ENTRY) *entry = e;
    if (st || e == NO_ENTRY) return st;
    for (int k = 0; k < 4; k++)
        if (R->slot[k].G && R->slot[k].entry == (int64_t)e && R->slot[k].n == n) { *out = R->slot[k].G; return BT_OK; }
    if ((st = R->hess0(R->ctx0, tensor, n, 1, &G, &e, err)) || !G) return st;
    struct hslot *s = &R->slot[R->next_slot];
    R->next_slot = (R->next_slot + 1) % 4;
    if (s->n != n || !s->G) {
        free(s->G);
        s->n = n;
        if (!(s->G = malloc((size_t)(n * n) * sizeof(float))))
            return bt_err_set(err, BT_E_NOMEM, "%s: out of memory for the rotated Hessian", tensor);
    }
    s->entry = -1;
    if ((st = bt_rotate_hessian(R, tensor, G, n, s->G, err))) return st;
    s->entry = e;
    *out = s->G;
    return BT_OK;
}

static bt_status hook_hess(void *ctx, const char *tensor, int64_t cols, int want, const float **H, uint32_t *entry,
                           bt_err *err) {
    struct bt_rotation *R = ctx;
    int64_t norm;
    if (!want || role_of(tensor, R->n_layer, &norm) == R_DOWN) /* checks only, or not rotated */
        return R->hess0(R->ctx0, tensor, cols, want, H, entry, err);
    const float *G = NULL;
    bt_status st = hess_rotated(R, tensor, cols, &G, entry, err);
    if (H) *H = G;
    return st;
}

/* diag of the rotated input from the original diagonal alone (diag-only calibration files):
 * exact when the original input's columns are uncorrelated */
static void diag_rotate(const struct bt_rotation *R, int role, int64_t norm, const float *w, int64_t n, float *out) {
    const struct bt_orth *o = role == R_O ? &R->R : &R->Q;
    int64_t b = o->n;
    for (int64_t h = 0; h < n / b; h++) {
        const float *wb = w + h * b;
        float *ob = out + h * b;
        double mean = 0;
        for (int64_t i = 0; i < b; i++) {
            float gi = norm < 0 ? 1.0f : R->norms[norm * R->n_embd + h * b + i];
            ob[i] = gi != 0 ? wb[i] / (gi * gi) : 0.0f;
            mean += ob[i] / (double)b;
        }
        if (!o->dense) { /* every |Q_ij|^2 is 1/n */
            for (int64_t j = 0; j < b; j++) ob[j] = (float)mean;
            continue;
        }
        double *acc = calloc((size_t)b, sizeof(double));
        if (!acc) continue;
        for (int64_t i = 0; i < b; i++)
            for (int64_t j = 0; j < b; j++) acc[j] += (double)o->M[i * b + j] * o->M[i * b + j] * ob[i];
        for (int64_t j = 0; j < b; j++) ob[j] = (float)acc[j];
        free(acc);
    }
}

/* E[x'_j^2] of the rotated input: diag of the rotated matrix when the file has it, else from
 * the original weights; floored at 1e-3 x mean like the original column weights */
static const float *hook_colw(void *ctx, const char *tensor, int64_t cols) {
    struct bt_rotation *R = ctx;
    int64_t norm;
    int role = role_of(tensor, R->n_layer, &norm);
    if (role != R_IN && role != R_V && role != R_O && role != R_OUT) return R->colw0(R->ctx0, tensor, cols);
    if (R->colw_cap < cols) {
        float *nb = realloc(R->colw, (size_t)cols * sizeof(float));
        if (!nb) return NULL;
        R->colw = nb;
        R->colw_cap = cols;
    }
    bt_err e2;
    bt_err_clear(&e2);
    const float *G = NULL;
    if (R->hess0 && hess_rotated(R, tensor, cols, &G, NULL, &e2) == BT_OK && G) {
        for (int64_t j = 0; j < cols; j++) R->colw[j] = G[j * cols + j];
    } else {
        const float *w = R->colw0(R->ctx0, tensor, cols);
        if (!w) return NULL;
        diag_rotate(R, role, norm, w, cols, R->colw);
    }
    double mean = 0;
    for (int64_t j = 0; j < cols; j++) mean += R->colw[j] / (double)cols;
    if (!(mean > 0)) return NULL;
    for (int64_t j = 0; j < cols; j++) R->colw[j] = (float)fmax(R->colw[j], 1e-3 * mean);
    return R->colw;
}

static const char *hook_entry(void *ctx, uint32_t i) {
    struct bt_rotation *R = ctx;
    return R->entry0(R->ctx0, i);
}

static bt_status hook_done(void *ctx, const char *tensor, const struct bt_tfmt *fmt, const void *data,
                           uint64_t nbytes, bt_err *err) {
    struct bt_rotation *R = ctx;
    return R->done0(R->ctx0, tensor, fmt, data, nbytes, err);
}

static void hooks_install(struct bt_rotation *R, struct bt_convert_args *a) {
    if (!a->colw_fn && !a->hess_fn && !a->entry_fn && !a->done_fn) return;
    R->args = a;
    R->colw0 = a->colw_fn;
    R->hess0 = a->hess_fn;
    R->entry0 = a->entry_fn;
    R->done0 = a->done_fn;
    R->ctx0 = a->colw_ctx;
    if (a->colw_fn) a->colw_fn = hook_colw;
    if (a->hess_fn) a->hess_fn = hook_hess;
    if (a->entry_fn) a->entry_fn = hook_entry;
    if (a->done_fn) a->done_fn = hook_done;
    a->colw_ctx = R;
}

static void hooks_restore(struct bt_rotation *R) {
    struct bt_convert_args *a = R->args;
    if (!a) return;
    a->colw_fn = R->colw0;
    a->hess_fn = R->hess0;
    a->entry_fn = R->entry0;
    a->done_fn = R->done0;
    a->colw_ctx = R->ctx0;
    R->args = NULL;
}
